// ActivationStore: collecting hook activations per position, in memory or in an unlinked
// temporary file, and serving them as seeded shuffled batches (see activation_store.h).
#include "core/features/activation_store.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/model/model.h"
#include "hooks/activation_cache.h"
#include "core/base/splitmix.h"
#include "hooks/hook_names.h"

namespace ms {
namespace {

constexpr int64_t kChunksPerBuffer = 8;

}  // namespace

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t s = seed * 0x2545F4914F6CDD1Dull ^ (a + 1) * 0x9E3779B97F4A7C15ull ^ (b + 7) * 0xD1B54A32D192ED03ull;
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(splitmix64(s) % static_cast<uint64_t>(i + 1));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

ActivationStore::~ActivationStore() {
  if (m_fd >= 0) ::close(m_fd);
}

void ActivationStore::append(const at::Tensor& rows_in, const at::Tensor& y) {
  at::Tensor rows = (y.defined() ? at::cat({rows_in, y}, 1) : rows_in).to(at::kFloat).cpu().contiguous();
  if (m_width == 0) m_width = rows.size(1);
  const int64_t n = rows.size(0);
  if (m_fd < 0 && (m_pending_rows + n) * m_width * 4 > m_opts.max_memory_bytes) {
    // Past the bound: from now on the rows live in a temporary file, unlinked at once.
    std::string dir = m_opts.spill_dir.empty() ? std::filesystem::temp_directory_path().string() : m_opts.spill_dir;
    std::string tmpl = dir + "/mechscope-acts-XXXXXX";
    m_fd = ::mkstemp(tmpl.data());
    if (m_fd < 0) fail_input(dir + ": cannot create the activation store's temporary file: " + std::strerror(errno));
    ::unlink(tmpl.c_str());
    m_path = tmpl;
    std::vector<at::Tensor> pending = std::move(m_pending);
    m_pending.clear();
    m_rows -= m_pending_rows;  // counted again as they are written
    m_pending_rows = 0;
    for (const at::Tensor& p : pending) append(p, at::Tensor());
  }
  if (m_fd >= 0) {
    const char* data = static_cast<const char*>(rows.data_ptr());
    size_t left = static_cast<size_t>(rows.nbytes());
    while (left > 0) {
      ssize_t w = ::write(m_fd, data, left);
      if (w <= 0) fail_input(m_path + ": writing the activation store failed: " + std::strerror(errno));
      data += w;
      left -= static_cast<size_t>(w);
    }
  } else {
    m_pending.push_back(rows);
    m_pending_rows += n;
  }
  m_rows += n;
}

void ActivationStore::finish() {
  if (m_rows == 0) fail_input("the activation store is empty: no positions were collected");
  if (m_fd < 0) {
    m_all = at::cat(m_pending, 0);
    m_pending.clear();
    return;
  }
  const int64_t buffer_rows = std::max<int64_t>(kChunksPerBuffer, m_opts.max_memory_bytes / (m_width * 4));
  m_chunk_rows = std::max<int64_t>(1, buffer_rows / kChunksPerBuffer);
  m_chunks_per_buffer = kChunksPerBuffer;
}

std::unique_ptr<ActivationStore> ActivationStore::from_tensors(const at::Tensor& x, const at::Tensor& y,
                                                               const ActivationStoreOptions& opts) {
  std::unique_ptr<ActivationStore> s(new ActivationStore());
  s->m_opts = opts;
  s->m_d_in = x.size(1);
  s->m_has_y = y.defined();
  s->m_d_out = y.defined() ? y.size(1) : x.size(1);
  const int64_t step = 4096;
  for (int64_t i = 0; i < x.size(0); i += step) {
    const int64_t n = std::min(step, x.size(0) - i);
    s->append(x.narrow(0, i, n), y.defined() ? y.narrow(0, i, n) : at::Tensor());
  }
  s->finish();
  return s;
}

Result<std::unique_ptr<ActivationStore>> ActivationStore::collect(
    const Model& model, const std::vector<std::vector<int32_t>>& sequences, const ActivationStoreOptions& opts,
    const std::function<void(int64_t, int64_t)>& progress, const std::atomic<bool>* cancel) {
  return guard([&]() -> std::unique_ptr<ActivationStore> {
    c10::InferenceMode guard;
    std::unique_ptr<ActivationStore> s(new ActivationStore());
    s->m_opts = opts;
    s->m_has_y = !opts.hook_name_out.empty();
    for (const std::string& h : {opts.hook_name, opts.hook_name_out}) {
      if (!h.empty() && model.hook_points().find(h) < 0)
        fail_input("hook point '" + h + "' does not exist in " + model.source() + " (`mechscope info --hooks` lists them)");
    }
    if (opts.hook_name.empty()) fail_usage("the activation store needs a hook point");
    int stop = -1;  // the residual stream is enough once the last point needed has run
    for (const std::string& h : {opts.hook_name, opts.hook_name_out}) {
      if (h.empty()) continue;
      const int l = hook_layer(h);
      stop = l < 0 ? model.config().n_layers : std::max(stop, l + 1);
    }
    const int64_t ctx = std::min<int64_t>(opts.context_size, model.config().n_ctx);
    const int64_t total = static_cast<int64_t>(sequences.size());
    for (int64_t i = 0; i < total; ++i) {
      if (cancel && cancel->load()) break;
      if (opts.n_tokens > 0 && s->m_rows >= opts.n_tokens) break;
      std::vector<int32_t> ids = sequences[static_cast<size_t>(i)];
      if (static_cast<int64_t>(ids.size()) > ctx) ids.resize(static_cast<size_t>(ctx));
      const int64_t first = opts.skip_first ? 1 : 0;
      if (static_cast<int64_t>(ids.size()) <= first) continue;
      HookRegistry reg;
      ActivationCache cache;
      reg.add_forward(opts.hook_name, cache_hook(cache));
      if (s->m_has_y) reg.add_forward(opts.hook_name_out, cache_hook(cache));
      ForwardOptions fo;
      fo.hooks = &reg;
      if (stop >= 0 && stop < model.config().n_layers) fo.stop_at_layer = stop;
      model.forward(model.tokens_tensor(ids), fo);
      auto flat = [&](const std::string& h) {
        at::Tensor a = cache.at(h)[0];  // (pos, ..)
        const bool z = h.size() >= 6 && h.compare(h.size() - 6, 6, "hook_z") == 0;
        if (a.dim() > 2 && !z)
          fail_usage(h + ": an SAE reads a [pos, d] point or hook_z (heads concatenated); this one is " +
                     std::to_string(a.dim()) + "-D per sequence");
        return a.reshape({a.size(0), -1}).narrow(0, first, a.size(0) - first);
      };
      at::Tensor x = flat(opts.hook_name), y = s->m_has_y ? flat(opts.hook_name_out) : at::Tensor();
      if (opts.n_tokens > 0 && s->m_rows + x.size(0) > opts.n_tokens) {
        const int64_t keep = opts.n_tokens - s->m_rows;
        x = x.narrow(0, 0, keep);
        if (y.defined()) y = y.narrow(0, 0, keep);
      }
      if (s->m_d_in == 0) {
        s->m_d_in = x.size(1);
        s->m_d_out = y.defined() ? y.size(1) : x.size(1);
      }
      s->append(x, y);
      if (progress) progress(i + 1, total);
    }
    s->finish();
    return s;
  });
}

void ActivationStore::load_buffer(int64_t epoch, int64_t buffer) const {
  if (epoch == m_loaded_epoch && buffer == m_loaded_buffer) return;
  const int64_t n_chunks = (m_rows + m_chunk_rows - 1) / m_chunk_rows;
  std::vector<int64_t> order = seeded_permutation(n_chunks, m_opts.seed, static_cast<uint64_t>(epoch), 0);
  std::vector<at::Tensor> parts;
  for (int64_t c = buffer * m_chunks_per_buffer; c < std::min(n_chunks, (buffer + 1) * m_chunks_per_buffer); ++c) {
    const int64_t chunk = order[static_cast<size_t>(c)];
    const int64_t r0 = chunk * m_chunk_rows, n = std::min(m_chunk_rows, m_rows - r0);
    at::Tensor t = at::empty({n, m_width}, at::kFloat);
    char* dst = static_cast<char*>(t.data_ptr());
    size_t left = static_cast<size_t>(t.nbytes());
    off_t off = static_cast<off_t>(r0 * m_width * 4);
    while (left > 0) {
      ssize_t r = ::pread(m_fd, dst, left, off);
      if (r <= 0) fail_input(m_path + ": reading the activation store failed: " + std::strerror(errno));
      dst += r, off += r, left -= static_cast<size_t>(r);
    }
    parts.push_back(t);
  }
  at::Tensor buf = at::cat(parts, 0);
  std::vector<int64_t> perm = seeded_permutation(buf.size(0), m_opts.seed, static_cast<uint64_t>(epoch),
                                                 static_cast<uint64_t>(buffer + 1));
  m_buffer = buf.index_select(0, at::tensor(perm, at::kLong));
  m_loaded_epoch = epoch, m_loaded_buffer = buffer;
}

void ActivationStore::batch(int64_t index, int64_t batch_size, at::Tensor* x, at::Tensor* y) const {
  std::vector<at::Tensor> parts;
  int64_t g = index * batch_size, need = batch_size;
  while (need > 0) {
    const int64_t epoch = g / m_rows, p = g % m_rows;
    int64_t take = 0;
    if (m_fd < 0) {
      if (m_perm_epoch != epoch) {
        m_perm = seeded_permutation(m_rows, m_opts.seed, static_cast<uint64_t>(epoch), 0);
        m_perm_epoch = epoch;
      }
      take = std::min(need, m_rows - p);
      at::Tensor idx = at::from_blob(m_perm.data() + p, {take}, at::kLong);
      parts.push_back(m_all.index_select(0, idx));
    } else {
      // Position p of the epoch: find its buffer by walking the chunk order's row counts.
      const int64_t n_chunks = (m_rows + m_chunk_rows - 1) / m_chunk_rows;
      std::vector<int64_t> order = seeded_permutation(n_chunks, m_opts.seed, static_cast<uint64_t>(epoch), 0);
      int64_t start = 0, buffer = 0;
      for (;; ++buffer) {
        int64_t rows = 0;
        for (int64_t c = buffer * m_chunks_per_buffer; c < std::min(n_chunks, (buffer + 1) * m_chunks_per_buffer); ++c)
          rows += std::min(m_chunk_rows, m_rows - order[static_cast<size_t>(c)] * m_chunk_rows);
        if (p < start + rows) break;
        start += rows;
      }
      load_buffer(epoch, buffer);
      take = std::min(need, m_buffer.size(0) - (p - start));
      parts.push_back(m_buffer.narrow(0, p - start, take));
    }
    g += take, need -= take;
  }
  at::Tensor rows = parts.size() == 1 ? parts[0].contiguous() : at::cat(parts, 0);
  *x = rows.narrow(1, 0, m_d_in).contiguous();
  if (y) *y = m_has_y ? rows.narrow(1, m_d_in, m_d_out).contiguous() : at::Tensor();
}

at::Tensor ActivationStore::head_rows(int64_t n, bool target) const {
  n = std::min(n, m_rows);
  at::Tensor rows;
  if (m_fd < 0) {
    rows = m_all.narrow(0, 0, n);
  } else {
    rows = at::empty({n, m_width}, at::kFloat);
    char* dst = static_cast<char*>(rows.data_ptr());
    size_t left = static_cast<size_t>(rows.nbytes());
    off_t off = 0;
    while (left > 0) {
      ssize_t r = ::pread(m_fd, dst, left, off);
      if (r <= 0) fail_input(m_path + ": reading the activation store failed: " + std::strerror(errno));
      dst += r, off += r, left -= static_cast<size_t>(r);
    }
  }
  return target && m_has_y ? rows.narrow(1, m_d_in, m_d_out).contiguous() : rows.narrow(1, 0, m_d_in).contiguous();
}

}  // namespace ms
