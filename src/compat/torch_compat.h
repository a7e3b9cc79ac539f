// Everything that depends on the LibTorch version lives behind this header:
// CI builds against Debian's LibTorch 1.13 (CPU), the GPU machine against
// PyTorch 2.x's. The rest of openrm is version-free.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace openrm::compat {

// softmax(q k^T * scale, masked) v with grouped-query heads.
//   q: (B, Hq, Lq, D), k and v: (B, Hkv, Lk, D) with Hq % Hkv == 0 (query
//   head h reads kv head h / (Hq / Hkv), as transformers' repeat_kv does),
//   mask: (B, 1, Lq, Lk) bool, true where a query may attend a key, or
//   undefined when every query may attend every key.
// Returns (B, Hq, L, D). Softmax is computed in fp32 whatever the input dtype.
// softcap > 0 caps the scaled scores as Gemma-2 does, before the mask:
// softcap * tanh(scores / softcap); bias, when defined, is added to the
// scaled (and capped) scores, shape (B or 1, Hq or 1, Lq, Lk). Either one
// takes the explicit-matmul path on every device (the fused kernels can do
// neither).
at::Tensor masked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask, double scale, double softcap = 0.0,
                            const at::Tensor& bias = at::Tensor());

// Variable-length (padding-free) attention through ATen's flash-attention
// varlen entry point, LibTorch >= 2.5 on CUDA only.
//   q: (T, Hq, D), k and v: (T, Hkv, D), fp16 or bf16, the B sequences laid
//   end to end; cu_seqlens: (B+1) int32 on q's device; causal; window > 0
//   limits each query to the `window` most recent keys (itself included), as
//   the padded path's mask does. Returns (T, Hq, D).
// varlen_attention_supported() says whether a call with q (and inference, no
// autograd) can take this path; callers fall back to masked_attention.
// The kernel has a backward (LibTorch's autograd formula for
// _flash_attention_forward), so training can take this path too.
bool varlen_attention_supported(const at::Tensor& q);
at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens, std::int64_t max_seqlen, double scale,
                            std::int64_t window);
// The same with key segments of their own: query segment b (cu_seqlens_q)
// attends to key segment b (cu_seqlens_k), which may be longer; the causal
// diagonal is aligned to the ends of the two (flash-attention 2's rule), so
// a query segment continuing a shared prefix sees the prefix's keys first.
at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens_q, const at::Tensor& cu_seqlens_k,
                            std::int64_t max_seqlen_q, std::int64_t max_seqlen_k, double scale,
                            std::int64_t window);

// Turns CUDA autocast on (to `dtype`, e.g. bf16) for its lifetime: matmuls
// and attention run in `dtype`, reductions and the loss stay fp32, the
// weights stay fp32. Does nothing for a CPU device.
class CudaAutocastGuard {
 public:
  CudaAutocastGuard(bool cuda, at::ScalarType dtype);
  ~CudaAutocastGuard();
  CudaAutocastGuard(const CudaAutocastGuard&) = delete;
  CudaAutocastGuard& operator=(const CudaAutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

// The autocast settings of the calling thread, for CPU and CUDA. Gradient
// checkpointing records them when a layer runs forward and re-applies them
// when backward recomputes it, as torch.utils.checkpoint does: a recompute in
// another precision than the forward gives wrong gradients.
struct AutocastState {
  bool cpu_enabled = false;
  at::ScalarType cpu_dtype = at::kBFloat16;
  bool cuda_enabled = false;
  at::ScalarType cuda_dtype = at::kHalf;
};
AutocastState current_autocast();

// Applies `state` for its lifetime, then restores what was in force before.
class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
};

// "1.13.1", "2.11.0", ...
std::string torch_version();

}  // namespace openrm::compat
