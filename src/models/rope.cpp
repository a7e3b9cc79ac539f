#include "models/rope.h"

#include <ATen/ATen.h>

#include <cmath>

namespace openrm {

at::Tensor rope_inverse_frequencies(std::int64_t dim, double theta, const RopeScaling& scaling) {
  // Same operation order and precision as transformers: fp32 exponents
  // 2i/dim, theta raised to them, then the reciprocal.
  auto exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  auto inv_freq = 1.0 / at::pow(theta, exponents);
  switch (scaling.type) {
    case RopeType::kDefault:
      return inv_freq;
    case RopeType::kLinear:
      return inv_freq / scaling.factor;
    case RopeType::kLlama3: {
      const double old_len = static_cast<double>(scaling.original_max_position_embeddings);
      const double low_freq_wavelen = old_len / scaling.low_freq_factor;
      const double high_freq_wavelen = old_len / scaling.high_freq_factor;
      auto wavelen = 2 * M_PI / inv_freq;
      auto scaled = at::where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq);
      auto smooth = (old_len / wavelen - scaling.low_freq_factor) /
                    (scaling.high_freq_factor - scaling.low_freq_factor);
      auto smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
      auto is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
      return at::where(is_medium, smoothed, scaled);
    }
  }
  return inv_freq;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq,
                                               const at::Tensor& position_ids,
                                               c10::ScalarType dtype) {
  auto freqs = position_ids.to(at::kFloat).unsqueeze(1) *
               inv_freq.to(position_ids.device()).unsqueeze(0);  // (T, dim/2)
  auto emb = at::cat({freqs, freqs}, -1);                        // (T, dim)
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const auto half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = at::cat({-x2, x1}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace openrm
