// Rotary position embedding frequencies, with linear and llama3 rope_scaling.
#include "core/model/rope.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

namespace ms {

at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.rotary_dim / 2;
  std::vector<double> f(static_cast<size_t>(half));
  const double pi = std::acos(-1.0);
  for (int64_t i = 0; i < half; ++i) {
    double inv = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.rotary_dim));
    if (c.rope_scaling_type == "linear") {
      inv /= c.rope_scaling_factor;
    } else if (c.rope_scaling_type == "llama3") {
      const double old_ctx = static_cast<double>(c.rope_original_max_pos);
      const double low_wl = old_ctx / c.rope_low_freq_factor, high_wl = old_ctx / c.rope_high_freq_factor;
      const double wl = 2 * pi / inv;
      if (wl > low_wl) {
        inv /= c.rope_scaling_factor;
      } else if (wl >= high_wl) {
        double smooth = (old_ctx / wl - c.rope_low_freq_factor) /
                        (c.rope_high_freq_factor - c.rope_low_freq_factor);
        inv = (1 - smooth) * inv / c.rope_scaling_factor + smooth * inv;
      }
    }
    f[static_cast<size_t>(i)] = inv;
  }
  return at::tensor(f, at::kDouble);
}

}  // namespace ms
