// Writing output files safely: refuse to overwrite unless asked, and write through a temporary
// file in the same folder that is renamed into place, so a failure never leaves a truncated file.
#pragma once

#include <string>

namespace ms {

// Throws a usage error when path exists and !force.
void check_can_write(const std::string& path, bool force);
// Writes bytes to a temporary file beside path, then renames it to path (replacing it).
// Throws InputError naming the path on failure; the temporary file is removed.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace ms
