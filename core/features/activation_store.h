// The activations an SAE or transcoder trains on: a model run over token sequences with the hook
// point's activation (and a transcoder's output point's) kept per position, served in shuffled
// batches. Memory-bounded: past max_memory_bytes the rows go to a temporary file, read back as
// shuffled buffers of randomly chosen chunks. Which rows a batch holds is a pure function of
// (seed, batch index), so a resumed training sees the very batches an uninterrupted one would.
#pragma once

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/base/result.h"

namespace ms {

class Model;

struct ActivationStoreOptions {
  std::string hook_name;      // the input point (hook_z: heads concatenated)
  std::string hook_name_out;  // a transcoder's target point ("" for an SAE)
  int64_t context_size = 128;  // each sequence is cut to this many tokens (and to the model's n_ctx)
  int64_t n_tokens = 0;        // stop after this many positions (0: every position of every sequence)
  bool skip_first = true;      // leave out position 0 (BOS: SAELens' exclude_special_tokens)
  int64_t max_memory_bytes = int64_t{1} << 30;  // rows beyond this go to a temporary file
  std::string spill_dir;                        // its folder ("": the system's temp folder)
  uint64_t seed = 0;
};

class ActivationStore {
 public:
  ~ActivationStore();
  ActivationStore(const ActivationStore&) = delete;
  ActivationStore& operator=(const ActivationStore&) = delete;

  // Runs the model over the sequences (token ids) up to the last point needed. progress counts
  // sequences; a set cancel flag stops collecting (the rows so far are kept). Errors name the hook.
  static Result<std::unique_ptr<ActivationStore>> collect(
      const Model& model, const std::vector<std::vector<int32_t>>& sequences, const ActivationStoreOptions& opts,
      const std::function<void(int64_t, int64_t)>& progress = nullptr, const std::atomic<bool>* cancel = nullptr);
  // Rows given directly (tests, constructed data): x [n, d_in], y [n, d_out] or undefined for an
  // SAE. Spills to disk like collect when past the memory bound.
  static std::unique_ptr<ActivationStore> from_tensors(const at::Tensor& x, const at::Tensor& y,
                                                       const ActivationStoreOptions& opts);

  int64_t size() const { return m_rows; }
  int64_t d_in() const { return m_d_in; }
  int64_t d_out() const { return m_d_out; }  // = d_in for an SAE
  bool has_target() const { return m_has_y; }
  bool on_disk() const { return m_fd >= 0; }
  const ActivationStoreOptions& options() const { return m_opts; }

  // Batch number `index` of batch_size rows: x [B, d_in] and (transcoders) y [B, d_out], float32.
  // Epoch e (every row once) follows epoch e-1; a batch may span the two.
  void batch(int64_t index, int64_t batch_size, at::Tensor* x, at::Tensor* y) const;
  // Up to n rows in stored order (the norm scaling estimate, b_dec's initial mean).
  at::Tensor head_rows(int64_t n, bool target) const;

 private:
  ActivationStore() = default;
  void append(const at::Tensor& x, const at::Tensor& y);  // rows [n, d_in + d_out]
  void finish();
  // Row g of the shuffled stream -> (buffer id, row within the loaded buffer).
  void load_buffer(int64_t epoch, int64_t buffer) const;

  ActivationStoreOptions m_opts;
  int64_t m_rows = 0, m_d_in = 0, m_d_out = 0, m_width = 0;
  bool m_has_y = false;
  // In memory: every row [rows, width]. On disk: the file, chunk size, and one loaded buffer.
  std::vector<at::Tensor> m_pending;  // rows appended before finish()
  int64_t m_pending_rows = 0;
  at::Tensor m_all;
  int m_fd = -1;
  std::string m_path;
  int64_t m_chunk_rows = 0, m_chunks_per_buffer = 0;
  mutable int64_t m_loaded_epoch = -1, m_loaded_buffer = -1;
  mutable at::Tensor m_buffer;            // [rows of the buffer, width], rows shuffled
  mutable std::vector<int64_t> m_perm;    // in memory: this epoch's permutation
  mutable int64_t m_perm_epoch = -1;
};

// A deterministic permutation of [0, n) from (seed, a, b): splitmix64 + Fisher-Yates, the same on
// every platform (std::shuffle's is not).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t a, uint64_t b);

}  // namespace ms
