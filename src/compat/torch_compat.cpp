#include "compat/torch_compat.h"

#include <ATen/autocast_mode.h>

#include <ATen/ATen.h>
#include <torch/version.h>

#include <limits>
#include <optional>

namespace openrm::compat {

namespace {

// The reference path: explicit matmuls and an fp32 softmax, the same
// operations transformers' "eager" attention performs. Used on CPU in every
// LibTorch version so CPU scores do not change with the LibTorch in use.
at::Tensor eager_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& mask, double scale, double softcap, const at::Tensor& bias) {
  const auto B = q.size(0), Hq = q.size(1), L = q.size(2), D = q.size(3);
  const auto Hkv = k.size(1);
  const auto groups = Hq / Hkv;
  // Group the query heads that share a kv head: (B, Hkv, groups, L, D), so the
  // kv heads broadcast instead of being copied `groups` times.
  auto qg = q.reshape({B, Hkv, groups, L, D});
  auto scores = at::matmul(qg, k.unsqueeze(2).transpose(-1, -2)) * scale;  // (B, Hkv, G, L, L)
  if (softcap > 0) scores = at::tanh(scores / softcap) * softcap;
  if (bias.defined()) {
    // (b, h, Lq, Lk) with b in {1, B}, h in {1, Hq} -> the grouped layout.
    const auto h = bias.size(1);
    scores = scores + (h == 1 ? bias.unsqueeze(2) : bias.reshape({bias.size(0), Hkv, groups, bias.size(2), bias.size(3)}));
  }
  if (mask.defined()) {  // undefined: every key is visible
    scores = scores.masked_fill(mask.unsqueeze(1).logical_not(), -std::numeric_limits<float>::infinity());
  }
  auto probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  auto out = at::matmul(probs, v.unsqueeze(2));  // (B, Hkv, G, L, D)
  return out.reshape({B, Hq, L, D});
}

}  // namespace

at::Tensor masked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, double scale, double softcap, const at::Tensor& bias) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects 4-d q, k, v");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads ", q.size(1),
              " not a multiple of kv heads ", k.size(1));
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  if (q.is_cuda() && softcap <= 0 && !bias.defined()) {
    const auto groups = q.size(1) / k.size(1);
    auto expand_kv = [&](const at::Tensor& t) {
      if (groups == 1) return t;
      return t.unsqueeze(2)
          .expand({t.size(0), t.size(1), groups, t.size(2), t.size(3)})
          .reshape({t.size(0), t.size(1) * groups, t.size(2), t.size(3)});
    };
    return at::scaled_dot_product_attention(q, expand_kv(k), expand_kv(v), mask,
                                            /*dropout_p=*/0.0, /*is_causal=*/false, scale);
  }
#endif
  return eager_attention(q, k, v, mask, scale, softcap, bias);
}

// ATen's flash kernels take (total, heads, head_dim) with head_dim a multiple
// of 8 up to 256, in fp16 or bf16. The signature with window sizes and
// optional cumulative lengths is that of LibTorch 2.5 and later; earlier 2.x
// releases keep the padded path.
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define OPENRM_HAS_VARLEN_FLASH 1
#else
#define OPENRM_HAS_VARLEN_FLASH 0
#endif

bool varlen_attention_supported(const at::Tensor& q) {
#if OPENRM_HAS_VARLEN_FLASH
  if (!q.is_cuda() || q.dim() != 3) return false;
  if (q.scalar_type() != at::kHalf && q.scalar_type() != at::kBFloat16) return false;
  const auto d = q.size(2);
  return d % 8 == 0 && d <= 256;
#else
  (void)q;
  return false;
#endif
}

at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens, std::int64_t max_seqlen, double scale,
                            std::int64_t window) {
  return varlen_attention(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, scale, window);
}

at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens_q, const at::Tensor& cu_seqlens_k,
                            std::int64_t max_seqlen_q, std::int64_t max_seqlen_k, double scale,
                            std::int64_t window) {
  TORCH_CHECK(varlen_attention_supported(q), "varlen attention is not available for this tensor or LibTorch");
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "varlen attention expects (T, heads, D) tensors");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads ", q.size(1), " not a multiple of kv heads ", k.size(1));
  TORCH_CHECK(cu_seqlens_q.scalar_type() == at::kInt && cu_seqlens_k.scalar_type() == at::kInt,
              "cu_seqlens must be int32");
  TORCH_CHECK(cu_seqlens_q.numel() == cu_seqlens_k.numel(), "query and key segments differ in number");
#if OPENRM_HAS_VARLEN_FLASH
  const auto dtype = q.scalar_type();
  // Flash's window counts the keys before the query: q - k <= left, so the
  // padded mask's q - k < window is left = window - 1. -1 means unlimited.
  const std::optional<std::int64_t> left = window > 0 ? std::optional<std::int64_t>(window - 1) : std::nullopt;
  const std::optional<std::int64_t> right = window > 0 ? std::optional<std::int64_t>(0) : std::nullopt;
  auto result = at::_flash_attention_forward(q.contiguous(), k.to(dtype).contiguous(), v.to(dtype).contiguous(),
                                             cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                                             /*dropout_p=*/0.0, /*is_causal=*/true,
                                             /*return_debug_mask=*/false, scale, left, right);
  return std::get<0>(result);
#else
  (void)k;
  (void)v;
  (void)max_seqlen_q;
  (void)max_seqlen_k;
  (void)scale;
  (void)window;
  return at::Tensor();
#endif
}

std::string torch_version() { return TORCH_VERSION; }

// The autocast switches were renamed per device in LibTorch 2.4.
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define OPENRM_AUTOCAST_BY_DEVICE 1
#else
#define OPENRM_AUTOCAST_BY_DEVICE 0
#endif

namespace {

void apply_autocast(const AutocastState& s) {
#if OPENRM_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(at::kCPU, s.cpu_dtype);
  at::autocast::set_autocast_enabled(at::kCPU, s.cpu_enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, s.cuda_dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, s.cuda_enabled);
#else
  at::autocast::set_autocast_cpu_dtype(s.cpu_dtype);
  at::autocast::set_cpu_enabled(s.cpu_enabled);
  at::autocast::set_autocast_gpu_dtype(s.cuda_dtype);
  at::autocast::set_enabled(s.cuda_enabled);
#endif
}

bool same_autocast(const AutocastState& a, const AutocastState& b) {
  return a.cpu_enabled == b.cpu_enabled && a.cpu_dtype == b.cpu_dtype &&
         a.cuda_enabled == b.cuda_enabled && a.cuda_dtype == b.cuda_dtype;
}

}  // namespace

AutocastState current_autocast() {
  AutocastState s;
#if OPENRM_AUTOCAST_BY_DEVICE
  s.cpu_enabled = at::autocast::is_autocast_enabled(at::kCPU);
  s.cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
  s.cuda_enabled = at::autocast::is_autocast_enabled(at::kCUDA);
  s.cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
#else
  s.cpu_enabled = at::autocast::is_cpu_enabled();
  s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  s.cuda_enabled = at::autocast::is_enabled();
  s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
#endif
  return s;
}

AutocastScope::AutocastScope(const AutocastState& state) : previous_(current_autocast()) {
  apply_autocast(state);
}

AutocastScope::~AutocastScope() {
  const bool changed = !same_autocast(current_autocast(), previous_);
  apply_autocast(previous_);
  // Casts cached inside the scope belong to it (see CudaAutocastGuard).
  if (changed && !previous_.cpu_enabled && !previous_.cuda_enabled) at::autocast::clear_cache();
}

CudaAutocastGuard::CudaAutocastGuard(bool cuda, at::ScalarType dtype) : active_(cuda) {
  if (!active_) return;
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  was_enabled_ = at::autocast::is_enabled();
  previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(true);
#endif
}

CudaAutocastGuard::~CudaAutocastGuard() {
  if (!active_) return;
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
  at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
#else
  at::autocast::set_enabled(was_enabled_);
  at::autocast::set_autocast_gpu_dtype(previous_dtype_);
#endif
  // Cached casts of the weights are only valid inside one autocast region.
  at::autocast::clear_cache();
}

}  // namespace openrm::compat
