#include "openrm/models/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include "models/blocks.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors.h"

namespace openrm {

namespace {

std::string last_component(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

bool is_adapter_tensor(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

}  // namespace

void LoraOptions::validate() const {
  if (rank <= 0) throw Error("lora options: rank must be positive, got " + std::to_string(rank));
  if (!(alpha > 0)) throw Error("lora options: alpha must be positive, got " + std::to_string(alpha));
  if (!(dropout >= 0 && dropout < 1)) throw Error("lora options: dropout must be in [0, 1), got " + std::to_string(dropout));
  if (targets.empty()) throw Error("lora options: targets is empty");
}

std::vector<std::string> apply_lora(RewardModel& model, const LoraOptions& options, std::uint64_t seed) {
  options.validate();
  const auto head_names = model.head_spec().tensor_names();
  const std::set<std::string> head(head_names.begin(), head_names.end());
  const std::set<std::string> targets(options.targets.begin(), options.targets.end());
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::string> adapted, linear;
  for (const auto& item : model.named_modules()) {
    auto* layer = item.value()->as<LinearImpl>();
    if (layer == nullptr) continue;
    const std::string& name = item.key();
    if (head.count(name + ".weight") != 0 || name.find(".lora_") != std::string::npos) continue;
    linear.push_back(name);
    if (targets.count(last_component(name)) == 0) continue;
    if (layer->has_lora()) throw Error("apply_lora: " + name + " already has an adapter");
    layer->enable_lora(options.rank, options.alpha, options.dropout, generator);
    adapted.push_back(name);
  }
  if (adapted.empty()) {
    std::set<std::string> kinds;
    for (const auto& n : linear) kinds.insert(last_component(n));
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    throw Error("apply_lora: no linear layer is named like the targets; this model's are " +
                (list.empty() ? std::string("none (its layers are not LinearImpl, e.g. GPT-2's Conv1D)") : list));
  }
  for (auto& item : model.named_parameters()) {
    item.value().set_requires_grad(is_adapter_tensor(item.key()) || head.count(item.key()) != 0);
  }
  return adapted;
}

std::int64_t merge_lora(RewardModel& model) {
  std::int64_t merged = 0;
  for (const auto& item : model.named_modules()) {
    auto* layer = item.value()->as<LinearImpl>();
    if (layer == nullptr || !layer->has_lora()) continue;
    layer->merge_lora();
    ++merged;
  }
  for (auto& item : model.named_parameters()) item.value().set_requires_grad(true);
  return merged;
}

void save_lora_adapter(const RewardModel& model, const LoraOptions& options, const std::string& dir,
                       const std::string& base_model) {
  const auto head_names = model.head_spec().tensor_names();
  const std::set<std::string> head(head_names.begin(), head_names.end());
  NamedTensors tensors;
  for (const auto& item : model.named_parameters()) {
    if (is_adapter_tensor(item.key()) || head.count(item.key()) != 0) {
      tensors.emplace_back("base_model.model." + item.key(), item.value().detach());
    }
  }
  if (std::none_of(tensors.begin(), tensors.end(), [](const auto& t) { return is_adapter_tensor(t.first); })) {
    throw Error("save_lora_adapter: the model has no LoRA adapters (apply_lora first)");
  }
  std::filesystem::create_directories(dir);
  save_safetensors(join_path(dir, "adapter_model.safetensors"), tensors);
  std::set<std::string> head_modules;
  for (const auto& n : head_names) head_modules.insert(n.substr(0, n.find('.')));
  nlohmann::ordered_json config = {
      {"peft_type", "LORA"},
      {"task_type", "SEQ_CLS"},
      {"base_model_name_or_path", base_model},
      {"r", options.rank},
      {"lora_alpha", options.alpha},
      {"lora_dropout", options.dropout},
      {"target_modules", options.targets},
      {"modules_to_save", std::vector<std::string>(head_modules.begin(), head_modules.end())},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"use_rslora", false},
      {"use_dora", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
  };
  write_file_atomic(join_path(dir, "adapter_config.json"), config.dump(2) + "\n");
}

}  // namespace openrm
