// AdamW parameter groups, learning-rate schedules, gradient clipping and
// optimizer state files.
#include "openrm/train/optim.h"

#include <ATen/ATen.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors_header.h"

namespace openrm {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string num(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

std::int64_t total_numel(const std::vector<at::Tensor>& tensors) {
  std::int64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

std::vector<at::Tensor> defined_grads(const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> grads;
  for (const auto& p : parameters) {
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

const char* kLayoutKey = "openrm_layout";
constexpr double kPi = 3.14159265358979323846;

// The shapes of every group's parameters, flattened:
// [groups, then per group: count, then per parameter: ndim, sizes...].
std::vector<std::int64_t> layout_of(const torch::optim::Optimizer& optimizer) {
  std::vector<std::int64_t> layout;
  const auto& groups = optimizer.param_groups();
  layout.push_back(static_cast<std::int64_t>(groups.size()));
  for (const auto& group : groups) {
    layout.push_back(static_cast<std::int64_t>(group.params().size()));
    for (const auto& p : group.params()) {
      layout.push_back(p.dim());
      for (auto s : p.sizes()) layout.push_back(s);
    }
  }
  return layout;
}

void check_layout(const std::vector<std::int64_t>& saved, const torch::optim::Optimizer& optimizer) {
  std::size_t at = 0;
  auto next = [&]() -> std::int64_t {
    if (at >= saved.size()) throw Error("the saved parameter layout is truncated");
    return saved[at++];
  };
  const auto& groups = optimizer.param_groups();
  const auto n_groups = next();
  if (n_groups != static_cast<std::int64_t>(groups.size())) {
    throw Error("the file has " + std::to_string(n_groups) + " parameter groups, the optimizer " +
                std::to_string(groups.size()));
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& params = groups[g].params();
    const auto count = next();
    if (count != static_cast<std::int64_t>(params.size())) {
      throw Error("group " + std::to_string(g) + " has " + std::to_string(count) +
                  " parameters in the file, " + std::to_string(params.size()) +
                  " in the optimizer");
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const auto ndim = next();
      std::vector<std::int64_t> shape;
      for (std::int64_t d = 0; d < ndim; ++d) shape.push_back(next());
      if (shape != params[i].sizes().vec()) {
        throw Error("group " + std::to_string(g) + " parameter " + std::to_string(i) +
                    ": shape " + shape_string(shape) + " in the file, " +
                    shape_string(params[i].sizes().vec()) + " in the optimizer");
      }
    }
  }
  if (at != saved.size()) throw Error("the saved parameter layout has trailing entries");
}

}  // namespace

// ---- parameter groups ------------------------------------------------------

bool decays(const std::string& name, std::int64_t ndim) {
  if (ndim < 2) return false;
  const std::string n = lower(name);
  if (n.find("bias") != std::string::npos) return false;
  std::size_t start = 0;
  while (start <= n.size()) {
    std::size_t end = n.find('.', start);
    if (end == std::string::npos) end = n.size();
    const std::string part = n.substr(start, end - start);
    if (part == "norm" || ends_with(part, "_norm") || part.find("layernorm") != std::string::npos ||
        part.find("rmsnorm") != std::string::npos) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

std::int64_t ParamGroups::decay_numel() const { return total_numel(decay); }
std::int64_t ParamGroups::no_decay_numel() const { return total_numel(no_decay); }

std::string ParamGroups::summary() const {
  return "decay (" + num(weight_decay) + "): " + std::to_string(decay.size()) + " tensors (" +
         std::to_string(decay_numel()) + " values), no decay: " + std::to_string(no_decay.size()) +
         " tensors (" + std::to_string(no_decay_numel()) + " values)";
}

ParamGroups split_decay_groups(torch::nn::Module& module, double weight_decay) {
  if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) {
    throw Error("weight_decay must be a finite value >= 0, got " + num(weight_decay));
  }
  ParamGroups groups;
  groups.weight_decay = weight_decay;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const at::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    if (decays(item.key(), p.dim())) {
      groups.decay.push_back(p);
      groups.decay_names.push_back(item.key());
    } else {
      groups.no_decay.push_back(p);
      groups.no_decay_names.push_back(item.key());
    }
  }
  return groups;
}

// ---- AdamW -----------------------------------------------------------------

void validate(const AdamWOptions& o) {
  if (!(o.lr >= 0.0) || !std::isfinite(o.lr)) {
    throw Error("AdamW: lr must be a finite value >= 0, got " + num(o.lr));
  }
  if (!(o.betas.first >= 0.0 && o.betas.first < 1.0)) {
    throw Error("AdamW: beta1 must be in [0, 1), got " + num(o.betas.first));
  }
  if (!(o.betas.second >= 0.0 && o.betas.second < 1.0)) {
    throw Error("AdamW: beta2 must be in [0, 1), got " + num(o.betas.second));
  }
  if (!(o.eps >= 0.0) || !std::isfinite(o.eps)) {
    throw Error("AdamW: eps must be a finite value >= 0, got " + num(o.eps));
  }
  if (!(o.weight_decay >= 0.0) || !std::isfinite(o.weight_decay)) {
    throw Error("AdamW: weight_decay must be a finite value >= 0, got " + num(o.weight_decay));
  }
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const ParamGroups& groups,
                                                const AdamWOptions& options) {
  validate(options);
  torch::optim::AdamWOptions decay(options.lr);
  decay.betas(std::make_tuple(options.betas.first, options.betas.second))
      .eps(options.eps)
      .weight_decay(groups.weight_decay)
      .amsgrad(false);
  torch::optim::AdamWOptions no_decay = decay;
  no_decay.weight_decay(0.0);
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  param_groups.emplace_back(groups.decay, std::make_unique<torch::optim::AdamWOptions>(decay));
  param_groups.emplace_back(groups.no_decay,
                            std::make_unique<torch::optim::AdamWOptions>(no_decay));
  // The defaults equal the decay group's options, so LibTorch versions that
  // merge group options with the defaults give the same result.
  return std::make_unique<torch::optim::AdamW>(std::move(param_groups), decay);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module,
                                                const AdamWOptions& options) {
  validate(options);
  return make_adamw(split_decay_groups(module, options.weight_decay), options);
}

// ---- learning-rate schedule ------------------------------------------------

const char* to_string(LrSchedule::Kind kind) {
  switch (kind) {
    case LrSchedule::kCosine: return "cosine";
    case LrSchedule::kLinear: return "linear";
    case LrSchedule::kConstant: return "constant";
  }
  return "unknown";
}

LrSchedule::Kind parse_lr_schedule_kind(const std::string& name) {
  if (name == "cosine") return LrSchedule::kCosine;
  if (name == "linear") return LrSchedule::kLinear;
  if (name == "constant") return LrSchedule::kConstant;
  throw Error("unknown learning-rate schedule \"" + name + "\" (known: cosine, linear, constant)");
}

void validate(const LrSchedule& s) {
  if (s.kind != LrSchedule::kCosine && s.kind != LrSchedule::kLinear &&
      s.kind != LrSchedule::kConstant) {
    throw Error("lr schedule: unknown kind " + std::to_string(static_cast<int>(s.kind)));
  }
  if (s.total_steps < 1) {
    throw Error("lr schedule: total_steps must be >= 1, got " + std::to_string(s.total_steps));
  }
  if (s.warmup_steps < 0) {
    throw Error("lr schedule: warmup_steps must be >= 0, got " + std::to_string(s.warmup_steps));
  }
  if (s.warmup_steps > s.total_steps) {
    throw Error("lr schedule: warmup_steps (" + std::to_string(s.warmup_steps) +
                ") exceeds total_steps (" + std::to_string(s.total_steps) + ")");
  }
  if (!(s.peak_lr >= 0.0) || !std::isfinite(s.peak_lr)) {
    throw Error("lr schedule: peak_lr must be a finite value >= 0, got " + num(s.peak_lr));
  }
  if (!(s.min_lr_ratio >= 0.0 && s.min_lr_ratio <= 1.0)) {
    throw Error("lr schedule: min_lr_ratio must be in [0, 1], got " + num(s.min_lr_ratio));
  }
}

double lr_at(const LrSchedule& s, std::int64_t step) {
  validate(s);
  if (step < 0) throw Error("lr schedule: step must be >= 0, got " + std::to_string(step));
  if (step < s.warmup_steps) {
    return s.peak_lr * static_cast<double>(step) / static_cast<double>(s.warmup_steps);
  }
  if (s.kind == LrSchedule::kConstant) return s.peak_lr;
  const double span = static_cast<double>(std::max<std::int64_t>(1, s.total_steps - s.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / span);
  const double factor = s.kind == LrSchedule::kCosine
                            ? 0.5 * (1.0 + std::cos(kPi * progress))
                            : 1.0 - progress;
  return s.peak_lr * (s.min_lr_ratio + (1.0 - s.min_lr_ratio) * factor);
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  if (!(lr >= 0.0) || !std::isfinite(lr)) {
    throw Error("set_lr: lr must be a finite value >= 0, got " + num(lr));
  }
  for (auto& group : optimizer.param_groups()) {
    if (group.has_options()) group.options().set_lr(lr);
  }
  optimizer.defaults().set_lr(lr);
}

double get_lr(const torch::optim::Optimizer& optimizer) {
  for (const auto& group : optimizer.param_groups()) {
    if (group.has_options()) return group.options().get_lr();
  }
  return optimizer.defaults().get_lr();
}

// ---- gradients ---------------------------------------------------------------

std::vector<at::Tensor> parameters_with_grad(torch::nn::Module& module) {
  std::vector<at::Tensor> out;
  for (const auto& p : module.parameters(/*recurse=*/true)) {
    if (p.grad().defined()) out.push_back(p);
  }
  return out;
}

double clip_grad_norm(const std::vector<at::Tensor>& parameters, double max_norm) {
  if (!(max_norm >= 0.0)) {
    throw Error("clip_grad_norm: max_norm must be >= 0 (0: measure only), got " + num(max_norm));
  }
  const std::vector<at::Tensor> grads = defined_grads(parameters);
  if (grads.empty()) return 0.0;
  bool any_double = false;
  for (const auto& g : grads) any_double = any_double || g.scalar_type() == at::kDouble;
  const c10::ScalarType acc = any_double ? at::kDouble : at::kFloat;
  const c10::Device device = grads.front().device();
  std::vector<at::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& g : grads) {
    norms.push_back(at::linalg_vector_norm(g.detach(), 2, at::OptionalIntArrayRef(), false, acc).to(device));
  }
  const double norm = at::linalg_vector_norm(at::stack(norms), 2).item<double>();
  if (max_norm > 0.0 && std::isfinite(norm)) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      at::NoGradGuard no_grad;
      for (const auto& g : grads) g.mul_(coef);
    }
  }
  return norm;
}

double clip_grad_norm(torch::nn::Module& module, double max_norm) {
  return clip_grad_norm(parameters_with_grad(module), max_norm);
}

bool grads_finite(const std::vector<at::Tensor>& parameters) {
  const std::vector<at::Tensor> grads = defined_grads(parameters);
  if (grads.empty()) return true;
  const c10::Device device = grads.front().device();
  std::vector<at::Tensor> flags;
  flags.reserve(grads.size());
  for (const auto& g : grads) flags.push_back(at::isfinite(g.detach()).all().to(device));
  return at::stack(flags).all().item<bool>();
}

bool grads_finite(torch::nn::Module& module) { return grads_finite(parameters_with_grad(module)); }

// ---- optimizer state for resume ----------------------------------------------

void save_optimizer_state(const torch::optim::Optimizer& optimizer, const std::string& path) {
  with_context("saving optimizer state " + path, [&] {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.write(kLayoutKey, at::tensor(layout_of(optimizer), at::kLong));
    std::ostringstream bytes;
    archive.save_to(bytes);
    write_file_atomic(path, bytes.str());
  });
}

void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& path) {
  with_context("loading optimizer state " + path, [&] {
    if (!path_exists(path)) throw Error("no such file");
    c10::Device device(c10::kCPU);
    for (const auto& group : optimizer.param_groups()) {
      if (!group.params().empty()) {
        device = group.params().front().device();
        break;
      }
    }
    torch::serialize::InputArchive archive;
    archive.load_from(path, device);
    at::Tensor layout;
    if (!archive.try_read(kLayoutKey, layout)) {
      throw Error("not an openrm optimizer state file (no " + std::string(kLayoutKey) + ")");
    }
    layout = layout.to(at::kCPU).contiguous();
    const auto* data = layout.data_ptr<std::int64_t>();
    check_layout(std::vector<std::int64_t>(data, data + layout.numel()), optimizer);
    // LibTorch's load adds the saved entries to the state map; clearing it
    // first means a parameter without saved state starts fresh.
    optimizer.state().clear();
    // LibTorch 2.x's load also restores the saved group options (lr, betas,
    // weight decay); 1.13's does not. Keeping the caller's makes both the same.
    std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> options;
    for (auto& group : optimizer.param_groups()) {
      options.push_back(group.has_options() ? group.options().clone() : nullptr);
    }
    optimizer.load(archive);
    for (std::size_t i = 0; i < options.size(); ++i) {
      if (options[i]) optimizer.param_groups()[i].set_options(std::move(options[i]));
    }
  });
}

}  // namespace openrm
