// The training memory report (memory_report.h): parameter counts, the
// estimate of a step's memory, and the process's measured memory.
#include "train/memory_report.h"

#include <ATen/core/Tensor.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "openrm/error.h"
#include "openrm/models/reward_model.h"

// OPENRM_WITH_CUDA is set (CMakeLists.txt) for this file only when LibTorch
// has CUDA (PyPI's 2.x); Debian's 1.13 has none, and the CUDA branches below
// then report that nothing can be read.
#if OPENRM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace openrm {

namespace {

// Bytes of one activation value: the trainer's weights are always fp32 (its
// bf16 is CUDA autocast), so on CPU every saved activation is fp32.
constexpr std::int64_t kValueBytes = 4;

std::string format_count(std::int64_t n) {
  char text[32];
  const double x = static_cast<double>(n);
  if (n >= 1'000'000'000) {
    std::snprintf(text, sizeof text, "%.2fB", x / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(text, sizeof text, "%.1fM", x / 1e6);
  } else if (n >= 10'000) {
    std::snprintf(text, sizeof text, "%.1fK", x / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%" PRId64, n);
  }
  return text;
}

}  // namespace

// ---- the estimate ---------------------------------------------------------------
//
// Activations, per token of the micro-batch, for the Llama-style decoder
// layer openrm runs (src/models/decoder.cpp, blocks.cpp), counting what
// autograd keeps from forward to backward. With H = hidden_size, Q =
// num_attention_heads * head_dim, I = intermediate_size, N =
// num_hidden_layers, in fp32 values:
//
//   input_layernorm      its input x (kept by pow and mul), x^2 (kept by
//                        mean in LibTorch 1.13), normed x (kept by the
//                        weight's mul), 1/rms, and its output (the input of
//                        q/k/v_proj)                                  4H + 1
//   rotary embedding     nothing per layer: x * cos keeps cos (shared by all
//                        layers, counted once below), not x
//   attention            q, and k and v widened to Q (the query heads that
//                        share a kv head read one copy) for the two batched
//                        matmuls, and the output (o_proj's input)         4Q
//   post_attention_layernorm  the same on the residual sum        4H + 1
//   MLP                  gate_proj's output (kept by the activation), the
//                        activation's and up_proj's outputs (kept by their
//                        product), the product (down_proj's input)        4I
//
//   full layer = 8H + 4Q + 4I + 2
//
// On CPU the last layer runs its queries, o_proj and MLP on the pooled rows
// only (one per sequence): per token it keeps its input norm's four tensors
// and k and v for the pooled queries' attention: last = 4H + 2Q + 1. On CUDA
// every layer is a full one and the final norm keeps 3H + 1 per token.
// Shared by all layers: rotary cos and sin (2 head_dim values) and the
// embedding's int64 index (8 bytes). Backward then needs one layer's
// gradients in flight on top of what is kept (measured: 1 to 2.5 KiB a
// token on the model of tests/test_memory_report.cpp): counted as the
// gradients of the MLP's two I-wide branches and of the residual stream,
// working set = 2I + 2H.
//
//   CPU:  (N - 1) full + last + working set + shared
//   CUDA: N full + final norm + working set + shared
//
// With gradient checkpointing a checkpointed layer keeps its input only (H)
// and backward recomputes one layer at a time, so at the peak one layer's
// full activations are live besides them. On CPU the last layer is not
// checkpointed (its activations are already small):
//
//   CPU:  (N - 1) H + max(full, last) + working set + shared   (N >= 2)
//   CUDA: N H + full + working set + shared
//
// Attention scores: CPU attention runs one sequence at a time, and each
// full layer keeps the softmax probabilities (num_attention_heads x len x
// len fp32) and the negated causal mask (len x len bool) of every sequence:
// N - 1 layers without checkpointing, the one recomputed layer with it. For
// sequences of at most max_length tokens filling max_tokens, sum(len^2) <=
// max_length * max_tokens, so attention_score_bytes = layers *
// (4 num_attention_heads + 1) * max_length * max_tokens, an upper bound
// (exact when every sequence has max_length tokens). CUDA training attention
// (SDPA's fused kernels) keeps no scores.
//
// Not counted: the pooled rows' share of the last layer, the final norm and
// the head (R rows of a batch, about 1% of the kept bytes at 128 tokens a
// sequence), temporaries inside one forward op (the scores before the
// softmax), BLAS and allocator workspace, and CUDA autocast's bf16 copies
// (under bf16 autocast most kept tensors are bf16, so the CUDA figure is
// then high by up to 2x). Full fine-tuning is assumed: frozen weights let
// autograd keep less. It is an estimate: docs/training.md ("Memory report")
// compares it with measurements.
MemoryReport estimate_training_memory(const RewardModel& model, std::int64_t max_tokens,
                                      bool gradient_checkpointing, std::int64_t max_length) {
  if (max_tokens < 0) throw Error("estimate_training_memory: max_tokens must be >= 0, got " + std::to_string(max_tokens));
  if (max_length < 0) throw Error("estimate_training_memory: max_length must be >= 0, got " + std::to_string(max_length));
  MemoryReport r;
  r.max_tokens = max_tokens;
  r.max_length = max_length;
  r.gradient_checkpointing = gradient_checkpointing;
  const c10::Device device = model.device();
  r.device = device.str();

  // Parameters, each in its own dtype. LibTorch's AdamW keeps exp_avg and
  // exp_avg_sq as zeros_like(parameter) (no max_exp_avg_sq: amsgrad is off,
  // src/train/optim.cpp) plus an int64 step count per tensor on the host,
  // which is not device memory and is left out.
  for (const auto& p : model.parameters(/*recurse=*/true)) {
    const std::int64_t n = p.numel();
    const std::int64_t bytes = n * static_cast<std::int64_t>(p.element_size());
    r.parameters += n;
    r.parameter_bytes += bytes;
    if (p.requires_grad()) {
      r.trainable_parameters += n;
      r.gradient_bytes += bytes;
      r.optimizer_bytes += 2 * bytes;
    }
  }

  const ModelConfig& c = model.config();
  const std::int64_t H = c.hidden_size;
  const std::int64_t heads = c.num_attention_heads;
  const std::int64_t head_dim = c.head_dim > 0 ? c.head_dim : (heads > 0 ? H / heads : 0);
  const std::int64_t I = c.intermediate_size > 0 ? c.intermediate_size : 4 * H;
  const std::int64_t N = std::max<std::int64_t>(c.num_hidden_layers, 0);
  const std::int64_t Q = heads * head_dim;  // k and v are kept widened to Q whatever num_key_value_heads is

  const std::int64_t full = 8 * H + 4 * Q + 4 * I + 2;
  const std::int64_t last_cpu = 4 * H + 2 * Q + 1;
  const std::int64_t final_norm = 3 * H + 1;
  const std::int64_t working_set = 2 * I + 2 * H;
  const std::int64_t shared_bytes = kValueBytes * 2 * head_dim + 8;
  const bool cuda = device.is_cuda();

  std::int64_t values = 0;        // per token, in fp32 values
  std::int64_t score_layers = 0;  // layers whose CPU attention probabilities are kept
  if (N > 0) {
    if (!gradient_checkpointing) {
      values = cuda ? N * full + final_norm : (N - 1) * full + last_cpu;
      score_layers = cuda ? 0 : N - 1;
    } else if (cuda) {
      values = N * H + full;
    } else {
      values = N >= 2 ? (N - 1) * H + std::max(full, last_cpu) : last_cpu;
      score_layers = N >= 2 ? 1 : 0;
    }
    values += working_set;
  }
  r.activation_bytes_per_token = kValueBytes * values + shared_bytes;
  if (max_length > 0) {
    r.attention_score_bytes = score_layers * (kValueBytes * heads + 1) * max_length * max_tokens;
  }
  r.activation_bytes_at_budget = r.activation_bytes_per_token * max_tokens + r.attention_score_bytes;
  return r;
}

std::int64_t MemoryReport::total_bytes() const {
  return parameter_bytes + gradient_bytes + optimizer_bytes + activation_bytes_at_budget;
}

std::string MemoryReport::summary() const {
  std::string s = "about " + format_bytes(total_bytes()) + " for training: weights " + format_bytes(parameter_bytes) +
                  " (" + format_count(parameters) + " parameters, " + format_count(trainable_parameters) +
                  " trainable), gradients " + format_bytes(gradient_bytes) + ", AdamW state " +
                  format_bytes(optimizer_bytes) + ", activations " + format_bytes(activation_bytes_at_budget) + " (" +
                  std::to_string(max_tokens) + " tokens x " + format_bytes(activation_bytes_per_token);
  if (attention_score_bytes > 0) {
    s += " + attention scores " + format_bytes(attention_score_bytes) + " at max length " + std::to_string(max_length);
  }
  s += std::string(", gradient checkpointing ") + (gradient_checkpointing ? "on" : "off") + ", " + device + ")";
  return s;
}

nlohmann::json MemoryReport::to_json() const {
  return nlohmann::json{
      {"parameters", parameters},
      {"trainable_parameters", trainable_parameters},
      {"parameter_bytes", parameter_bytes},
      {"gradient_bytes", gradient_bytes},
      {"optimizer_bytes", optimizer_bytes},
      {"activation_bytes_per_token", activation_bytes_per_token},
      {"activation_bytes_at_budget", activation_bytes_at_budget},
      {"max_tokens", max_tokens},
      {"gradient_checkpointing", gradient_checkpointing},
      {"max_length", max_length},
      {"attention_score_bytes", attention_score_bytes},
      {"device", device},
      {"total_bytes", total_bytes()},
  };
}

// ---- measurements ---------------------------------------------------------------

namespace {

#if OPENRM_WITH_CUDA
// The device's index, or -1 when there is no such GPU.
int cuda_index(const c10::Device& device) {
  const int count = static_cast<int>(c10::cuda::device_count());
  if (count <= 0) return -1;
  const int index = device.has_index() ? static_cast<int>(device.index()) : static_cast<int>(c10::cuda::current_device());
  return index < count ? index : -1;
}

// allocated_bytes[0] is the aggregate over both pools (small and large
// blocks). A caching allocator that has not been initialised (no CUDA tensor
// made yet) refuses the query: nothing has been allocated.
std::int64_t cuda_allocated(const c10::Device& device, bool peak) {
  const int index = cuda_index(device);
  if (index < 0) return -1;
  try {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
    return peak ? stats.allocated_bytes[0].peak : stats.allocated_bytes[0].current;
  } catch (const c10::Error&) {
    return 0;
  }
}
#endif

}  // namespace

std::int64_t peak_memory_bytes(const c10::Device& device) {
  if (device.is_cpu()) {
    struct rusage usage {};
    if (::getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
  }
#if OPENRM_WITH_CUDA
  if (device.is_cuda()) return cuda_allocated(device, /*peak=*/true);
#endif
  return -1;
}

std::int64_t current_memory_bytes(const c10::Device& device) {
  if (device.is_cpu()) {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long long size = 0, resident = 0;
    const int got = std::fscanf(f, "%lld %lld", &size, &resident);
    std::fclose(f);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (got != 2 || page <= 0) return -1;
    return static_cast<std::int64_t>(resident) * page;
  }
#if OPENRM_WITH_CUDA
  if (device.is_cuda()) return cuda_allocated(device, /*peak=*/false);
#endif
  return -1;
}

bool reset_peak_memory(const c10::Device& device) {
  if (device.is_cpu()) {
    std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    const bool wrote = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && wrote;
  }
#if OPENRM_WITH_CUDA
  if (device.is_cuda()) {
    const int index = cuda_index(device);
    if (index < 0) return false;
    try {
      c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
      return true;
    } catch (const c10::Error&) {
      return false;
    }
  }
#endif
  return false;
}

std::string format_bytes(std::int64_t bytes) {
  if (bytes < 0) {
    // -INT64_MIN does not fit; one byte less reads the same.
    return "-" + format_bytes(bytes == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<std::int64_t>::max() : -bytes);
  }
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  // 1023.96 KiB would print as "1024.0 KiB": move up once it rounds to 1024.
  while (value >= 1023.95 && unit + 1 < sizeof kUnits / sizeof kUnits[0]) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

}  // namespace openrm
