// Rotary position embeddings (RoPE) as transformers computes them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

#include "openrm/io/config.h"

namespace openrm {

// (dim / 2) fp32 inverse frequencies for a head of size dim:
// theta^(-2i/dim), then adjusted by the scaling rule (linear: divided by
// factor; llama3: divided by factor for long wavelengths, unchanged for short
// ones, interpolated in between).
at::Tensor rope_inverse_frequencies(std::int64_t dim, double theta, const RopeScaling& scaling);

// cos and sin tables for the given positions: each (T, dim), computed in fp32
// from freqs = position * inv_freq duplicated over both halves, then cast to
// `dtype`.
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq,
                                               const at::Tensor& position_ids,
                                               c10::ScalarType dtype);

// x * cos + rotate_half(x) * sin, where rotate_half(x) = cat(-x2, x1) for the
// two halves of the last dimension. x: (T, heads, dim); cos, sin: (T, dim).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace openrm
