// What training a reward model needs in memory, estimated before the first
// step (weights, gradients, AdamW state, activations for a token budget), and
// what the process has actually used (peak and current resident memory on
// CPU, the caching allocator's allocated bytes on CUDA). docs/training.md
// ("Memory report") gives the formula and how it compares with measurements.
// Internal header: the trainer calls these; they are not part of the
// installed API.
#pragma once

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace openrm {

class RewardModel;

// Every *_bytes field is an estimate in bytes, except the parameter figures,
// which are counted from the model's tensors.
struct MemoryReport {
  std::int64_t parameters = 0;            // values in model.parameters()
  std::int64_t trainable_parameters = 0;  // those with requires_grad
  std::int64_t parameter_bytes = 0;       // all parameters, each in its own dtype
  std::int64_t gradient_bytes = 0;        // one gradient per trainable parameter, same dtype
  std::int64_t optimizer_bytes = 0;       // AdamW: exp_avg + exp_avg_sq per trainable parameter
  // What autograd keeps per token of a micro-batch between forward and
  // backward (fp32), for the attention path of `device` and the
  // checkpointing setting; excludes the attention scores, which grow with
  // the sequence length rather than the token count.
  std::int64_t activation_bytes_per_token = 0;
  // activation_bytes_per_token * max_tokens + attention_score_bytes.
  std::int64_t activation_bytes_at_budget = 0;
  std::int64_t max_tokens = 0;  // the micro-batch token budget the estimate is for
  bool gradient_checkpointing = false;
  // The longest sequence assumed (0: not given, and the scores are left out).
  std::int64_t max_length = 0;
  // CPU attention's softmax probabilities kept for backward, an upper bound
  // for sequences of at most max_length tokens filling max_tokens; 0 on CUDA
  // (the fused kernels keep no scores) or when max_length is 0.
  std::int64_t attention_score_bytes = 0;
  std::string device;  // the model's device, whose attention path was assumed: "cpu", "cuda:0"

  // parameter + gradient + optimizer + activation_bytes_at_budget.
  std::int64_t total_bytes() const;
  // One line for the log, e.g. "about 1.9 GiB for training: weights 476.8 MiB
  // (125.0M parameters, 125.0M trainable), gradients 476.8 MiB, AdamW state
  // 953.7 MiB, activations 38.0 MiB (4096 tokens x 9.5 KiB, gradient
  // checkpointing off)".
  std::string summary() const;
  // Every field above plus "total_bytes".
  nlohmann::json to_json() const;
};

// Counts the model's parameters and estimates what a training step over a
// micro-batch of `max_tokens` tokens needs, for a Llama-style decoder
// (docs/training.md gives the formula; other families are approximated by
// it). max_length > 0 adds CPU attention's scores for sequences of at most
// that many tokens. Throws openrm::Error for max_tokens < 0 or
// max_length < 0.
MemoryReport estimate_training_memory(const RewardModel& model, std::int64_t max_tokens,
                                      bool gradient_checkpointing, std::int64_t max_length = 0);

// The most memory the process has used: on CPU the peak resident set
// (getrusage's ru_maxrss), on CUDA the caching allocator's peak allocated
// bytes on that device (the current device for "cuda" without an index).
// -1 when it cannot be read (a CUDA device in a build without CUDA, or no
// GPU present).
std::int64_t peak_memory_bytes(const c10::Device& device);
// The same, now: the resident set (/proc/self/statm) on CPU, the allocated
// bytes on CUDA.
std::int64_t current_memory_bytes(const c10::Device& device);
// Starts the peak over from the current value: on CPU by writing "5" to
// /proc/self/clear_refs (Linux >= 4.0, which resets the peak that ru_maxrss
// reports too), on CUDA with the caching allocator's resetPeakStats. Returns
// false when that is not possible here.
bool reset_peak_memory(const c10::Device& device);

// Bytes for people, in powers of 1024: "512 B", "1.5 KiB", "476.8 MiB",
// "1.9 GiB", "2.0 TiB" (one decimal from KiB up; negative values get a "-").
std::string format_bytes(std::int64_t bytes);

}  // namespace openrm
