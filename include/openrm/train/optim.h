// Optimizer pieces for training reward models: AdamW with the usual two
// parameter groups (weight decay on matrices, none on norms and biases), the
// learning-rate schedules of Hugging Face transformers, gradient clipping,
// the finite-gradient check, and optimizer state for resume.
// docs/training.md gives the exact rules and formulas.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace openrm {

// ---- parameter groups ------------------------------------------------------

// True when the parameter `name` of `ndim` dimensions gets weight decay:
// it has at least 2 dimensions (linear weights, embeddings, the score head)
// and its name marks neither a bias ("bias" anywhere in the name) nor a
// normalisation layer (a name component that is "norm", ends in "_norm" or
// contains "layernorm" or "rmsnorm", case-insensitively). 1-dimensional
// parameters (norm weights, biases) never decay. Embeddings decay, as in the
// Hugging Face Trainer.
bool decays(const std::string& name, std::int64_t ndim);

// The trainable parameters of a module split for AdamW. Parameters with
// requires_grad == false are left out of both groups.
struct ParamGroups {
  double weight_decay = 0.0;               // the decay group's weight decay
  std::vector<at::Tensor> decay;           // get weight_decay
  std::vector<std::string> decay_names;    // their names, in module order
  std::vector<at::Tensor> no_decay;        // get weight decay 0
  std::vector<std::string> no_decay_names;

  std::int64_t decay_numel() const;
  std::int64_t no_decay_numel() const;
  // "decay: 14 tensors (123456 values), no decay: 9 tensors (288 values)".
  std::string summary() const;
};

// Splits module.named_parameters() by decays(). Throws openrm::Error for a
// negative weight_decay.
ParamGroups split_decay_groups(torch::nn::Module& module, double weight_decay);

// ---- AdamW -----------------------------------------------------------------

// Defaults are those of transformers' TrainingArguments.
struct AdamWOptions {
  double lr = 5e-5;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// Throws openrm::Error naming the field for lr < 0, betas outside [0, 1),
// eps < 0 or weight_decay < 0 (or any NaN).
void validate(const AdamWOptions& options);

// LibTorch's AdamW (decoupled weight decay: p <- p * (1 - lr * wd) before the
// Adam update) over two parameter groups, always in this order: group 0 the
// decay group with options.weight_decay, group 1 the no-decay group with 0.
// Both groups exist even when one is empty, so the layout (and saved
// optimizer state) does not depend on the weight decay.
std::unique_ptr<torch::optim::AdamW> make_adamw(const ParamGroups& groups,
                                                const AdamWOptions& options);
// split_decay_groups(module, options.weight_decay), then the above.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module,
                                                const AdamWOptions& options);

// ---- learning-rate schedule ------------------------------------------------

struct LrSchedule {
  enum Kind { kCosine, kLinear, kConstant };
  Kind kind = kCosine;
  std::int64_t warmup_steps = 0;  // 0 <= warmup_steps <= total_steps
  std::int64_t total_steps = 0;   // optimizer steps of the whole run, >= 1
  double peak_lr = 0.0;           // >= 0
  // The decay ends at min_lr_ratio * peak_lr (kCosine and kLinear), in [0, 1].
  double min_lr_ratio = 0.0;
};

// "cosine", "linear", "constant"; parse_lr_schedule_kind throws
// openrm::Error listing those for anything else.
const char* to_string(LrSchedule::Kind kind);
LrSchedule::Kind parse_lr_schedule_kind(const std::string& name);

// Throws openrm::Error for warmup_steps < 0, total_steps < 1,
// warmup_steps > total_steps, peak_lr < 0 or min_lr_ratio outside [0, 1].
void validate(const LrSchedule& schedule);

// The learning rate of optimizer step `step` (0-based: the first update uses
// lr_at(s, 0)), following transformers' get_*_schedule_with_warmup:
//   step < W:  peak * step / W                      (so step 0 gets 0)
//   else, with p = (step - W) / max(1, T - W) clamped to [0, 1] and
//   r = min_lr_ratio:
//     kCosine:   peak * (r + (1 - r) * 0.5 * (1 + cos(pi * p)))
//     kLinear:   peak * (r + (1 - r) * (1 - p))
//     kConstant: peak
// With r = 0 these are transformers' formulas exactly for 0 <= step <= T;
// past T the rate stays at its final value (transformers' cosine would rise
// again). Validates the schedule; throws for step < 0.
double lr_at(const LrSchedule& schedule, std::int64_t step);

// Sets the learning rate of every parameter group. Uses only
// OptimizerOptions::set_lr, which LibTorch 1.13 and 2.x both have.
void set_lr(torch::optim::Optimizer& optimizer, double lr);
// The learning rate of the first parameter group (for logging).
double get_lr(const torch::optim::Optimizer& optimizer);

// ---- gradients ---------------------------------------------------------------

// The parameters of a module that have a gradient tensor.
std::vector<at::Tensor> parameters_with_grad(torch::nn::Module& module);

// The global L2 norm of all gradients, sqrt(sum over parameters of
// sum(g^2)), accumulated in float32 (float64 for float64 gradients), before
// clipping; parameters without a gradient are skipped. When max_norm > 0 and
// the norm is finite, every gradient is scaled by
// min(1, max_norm / (norm + 1e-6)), the rule of torch.nn.utils.clip_grad_norm_.
// A non-finite norm leaves the gradients untouched (the step should be
// skipped: see grads_finite). max_norm == 0 only measures. Throws for
// max_norm < 0.
double clip_grad_norm(const std::vector<at::Tensor>& parameters, double max_norm);
double clip_grad_norm(torch::nn::Module& module, double max_norm);

// True when every defined gradient is free of NaN and Inf (one device sync).
bool grads_finite(const std::vector<at::Tensor>& parameters);
bool grads_finite(torch::nn::Module& module);

// ---- optimizer state for resume ----------------------------------------------

// Writes the optimizer's state (per parameter: step, exp_avg, exp_avg_sq) and
// group options with LibTorch's own optimizer serialization, atomically (a
// temporary file renamed into place), plus the shapes of every group's
// parameters, so a load into an optimizer of another layout fails clearly.
void save_optimizer_state(const torch::optim::Optimizer& optimizer, const std::string& path);

// Restores what save_optimizer_state wrote into an optimizer over parameters
// of the same groups, order and shapes (a freshly built one, for resume); the
// state goes to the device of the optimizer's parameters. The group options
// (lr, weight decay, ...) are NOT restored by LibTorch: they stay those the
// optimizer was built with (the schedule sets lr each step anyway). Throws
// openrm::Error naming the group, index and shapes on a layout mismatch.
void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& path);

}  // namespace openrm
