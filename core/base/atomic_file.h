// Writing output files safely: refuse to overwrite unless asked, and write through a temporary
// file in the same folder that is renamed into place, so a failure never leaves a truncated file.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace ms {

// Throws a usage error when path exists and !force.
void check_can_write(const std::string& path, bool force);
// Writes bytes to a temporary file beside path, then renames it to path (replacing it).
// Throws InputError naming the path on failure; the temporary file is removed.
void write_file_atomic(const std::string& path, const std::string& bytes);
// The same for a file made of several pieces (a header, then tensor data), written in order
// without first joining them in memory.
void write_file_atomic(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces);

}  // namespace ms
