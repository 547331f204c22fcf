// A model's identity in the database: the SHA-256 of its weight files' bytes, so that a changed
// checkpoint is a different model. Hashing a large checkpoint takes a while (about 3 s per GB on
// one core), so each file's hash is cached in the database under its path, size and mtime and only
// recomputed when one of those changes.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace ms {

// The files whose bytes are the weights: the file itself, or a folder's *.safetensors, *.gguf,
// *.bin, *.pt, *.pth (top level, sorted by name).
std::vector<std::string> weight_files(const std::string& source);

// "sha256:<hex>" over lines "<file name>\t<size>\t<sha256 of the file>\n" in name order; each
// file's hash from `file_hash(path)`.
template <class FileHash>
std::string combine_file_hashes(const std::vector<std::string>& files, FileHash&& file_hash);

// For models built in memory (no files): "sha256-tensors:<hex>" over each tensor's name, dtype,
// shape and bytes, in the given order.
std::string tensors_content_hash(const std::vector<std::pair<std::string, at::Tensor>>& named);

// The SHA-256 of a file's bytes, read in 4 MB blocks; throws InputError when unreadable.
std::string sha256_file(const std::string& path);

}  // namespace ms

#include "storage/sha256.h"

#include <filesystem>

namespace ms {
template <class FileHash>
std::string combine_file_hashes(const std::vector<std::string>& files, FileHash&& file_hash) {
  Sha256 h;
  for (const std::string& f : files) {
    std::filesystem::path p(f);
    h.update(p.filename().string() + "\t" + std::to_string(std::filesystem::file_size(p)) + "\t" +
             file_hash(f) + "\n");
  }
  return "sha256:" + h.hex_digest();
}
}  // namespace ms
