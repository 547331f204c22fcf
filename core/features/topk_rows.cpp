// topk_relu_rows: per row, a cut from a sample of the row, the values above it collected in one
// pass and selected among (std::nth_element on a copy of the whole row when too few are above it),
// then the activations and the fired mask written; rows spread over ATen's threads.
#include "core/features/topk_rows.h"
#include "core/base/parallel.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ms {

at::Tensor topk_relu_rows(const at::Tensor& pre_in, int64_t k, at::Tensor* fired, at::Tensor* out_buf) {
  TORCH_CHECK(pre_in.dim() == 2 && pre_in.scalar_type() == at::kFloat && pre_in.device().is_cpu(),
              "topk_relu_rows: expected a 2-D float32 CPU tensor");
  const at::Tensor pre = pre_in.contiguous();
  const int64_t rows = pre.size(0), n = pre.size(1);
  k = std::max<int64_t>(0, std::min(k, n));
  auto reuse = [&](at::Tensor* t, at::ScalarType type) {
    if (t && t->defined() && t->sizes() == at::IntArrayRef{rows, n} && t->scalar_type() == type && t->is_contiguous() &&
        t->device().is_cpu())
      return *t;
    return at::empty({rows, n}, type);
  };
  at::Tensor acts = reuse(out_buf, at::kFloat);
  at::Tensor mask = fired ? reuse(fired, at::kBool) : at::Tensor();
  const float* src = pre.data_ptr<float>();
  float* dst = acts.data_ptr<float>();
  bool* mk = fired ? mask.data_ptr<bool>() : nullptr;
  const float kInf = std::numeric_limits<float>::infinity();
  // A grain of a few rows: each row costs O(n); fewer tasks than rows keeps the overhead small.
  ms::parallel_for(0, rows, 4, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(static_cast<size_t>(n)), sample;
    std::vector<std::pair<float, int64_t>> cand;  // (key, index) above the sampled cut, in index order
    // Every 8th value of the row, when k is small enough that a cut taken from them (the 2k/8-th
    // largest sample) leaves about 2k values above it: one compare per value instead of a selection.
    const int64_t stride = 8, n_sample = n / stride, r_sample = (2 * k + stride - 1) / stride;
    const bool sampled = k > 0 && n_sample >= 4 * r_sample && r_sample >= 1;
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = src + r * n;
      float* out = dst + r * n;
      bool* m = mk ? mk + r * n : nullptr;
      auto key = [](float v) { return std::isnan(v) ? std::numeric_limits<float>::infinity() : v; };
      float kth = kInf;       // the k-th largest (NaN as +inf); k == 0 keeps nothing
      int64_t ties_left = 0;  // how many values equal to kth are kept, lowest index first
      cand.clear();
      if (sampled) {
        sample.resize(static_cast<size_t>(n_sample));
        for (int64_t i = 0; i < n_sample; ++i) sample[i] = key(in[i * stride]);
        std::nth_element(sample.begin(), sample.begin() + (r_sample - 1), sample.end(), std::greater<float>());
        const float cut = sample[r_sample - 1];
        for (int64_t j = 0; j < n; ++j)
          if (key(in[j]) > cut) cand.emplace_back(key(in[j]), j);
        if (static_cast<int64_t>(cand.size()) < k) cand.clear();  // too few above the cut: the full selection
      }
      if (!cand.empty()) {  // the k largest are all above the cut, so among cand
        buf.resize(cand.size());
        for (size_t i = 0; i < cand.size(); ++i) buf[i] = cand[i].first;
        std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), std::greater<float>());
        kth = buf[k - 1];
        for (int64_t i = 0; i < k; ++i) ties_left += buf[i] == kth;
        std::fill(out, out + n, 0.0f);
        if (m) std::fill(m, m + n, false);
        for (const auto& [kv, j] : cand) {
          bool keep = kv > kth;
          if (!keep && kv == kth && ties_left > 0) keep = true, --ties_left;
          if (!keep) continue;
          const float v = in[j];
          const float a = !(v <= 0) ? v : 0.0f;  // relu; NaN stays NaN
          out[j] = a;
          if (m) m[j] = a > 0;  // as acts > 0: NaN does not count as fired
        }
        continue;
      }
      if (k > 0) {
        buf.resize(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) buf[j] = key(in[j]);
        std::nth_element(buf.begin(), buf.begin() + (k - 1), buf.end(), std::greater<float>());
        kth = buf[k - 1];  // buf[0, k) holds the k largest: those equal to kth are the ties kept
        for (int64_t i = 0; i < k; ++i) ties_left += buf[i] == kth;
      }
      for (int64_t j = 0; j < n; ++j) {
        const float v = in[j];
        const float kv = key(v);
        bool keep = kv > kth;
        if (!keep && kv == kth && ties_left > 0) keep = true, --ties_left;
        const float a = keep && !(v <= 0) ? v : 0.0f;  // relu; NaN stays NaN
        out[j] = a;
        if (m) m[j] = a > 0;  // as acts > 0: NaN does not count as fired
      }
    }
  });
  if (fired) *fired = mask;
  if (out_buf) *out_buf = acts;
  return acts;
}

}  // namespace ms
