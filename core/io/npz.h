// NumPy .npz archives (np.savez / np.savez_compressed): a zip of .npy files, read through
// libzip (Debian libzip-dev). Used for Gemma Scope's params.npz.
#pragma once

#include <map>
#include <string>

#include "core/base/result.h"

namespace at { class Tensor; }

namespace ms {

// Reads every member "<name>.npy" of the archive as a tensor keyed by <name>. Members that are
// not .npy files are refused. Sizes are untrusted: a member's declared size must fit the archive
// (stored) or deflate's largest ratio (compressed) before anything is allocated, and the bytes
// read must equal it. Errors (kBadInput) name the archive and the member.
Result<std::map<std::string, at::Tensor>> read_npz(const std::string& path);

}  // namespace ms
