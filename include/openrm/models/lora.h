// LoRA adapters on a reward model, in PEFT's layout: low-rank A and B on the
// linear layers whose names match the targets, the base frozen, the reward
// head trained in full (PEFT's modules_to_save for sequence classification),
// and an adapter folder (adapter_config.json + adapter_model.safetensors)
// that PEFT loads onto the base model with the same scores.
#pragma once

#include <openrm/models/reward_model.h>

#include <cstdint>
#include <string>
#include <vector>

namespace openrm {

struct LoraOptions {
  std::int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  // Layers adapted: a linear layer whose last name component is one of
  // these (PEFT's target_modules list form).
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

  // Throws openrm::Error naming the first bad field.
  void validate() const;
};

// Adds adapters (A drawn from `seed`, B zeros: the scores do not change),
// then leaves only the adapters and the head trainable (requires_grad).
// Returns the adapted layers' names. Throws openrm::Error when no layer
// matches, listing the linear layers there are.
std::vector<std::string> apply_lora(RewardModel& model, const LoraOptions& options, std::uint64_t seed = 0);

// Writes `dir`/adapter_model.safetensors (the adapters and the head, under
// PEFT's "base_model.model." names) and adapter_config.json (peft_type LORA,
// task_type SEQ_CLS, r, lora_alpha, lora_dropout, target_modules,
// modules_to_save with the head, base_model_name_or_path = `base_model`).
void save_lora_adapter(const RewardModel& model, const LoraOptions& options, const std::string& dir,
                       const std::string& base_model);

// Folds every adapter into its layer's weight and removes the adapters, so
// the model saves as a plain reward-model folder (what PEFT's
// merge_and_unload gives); every parameter is trainable again. Returns how
// many layers were merged.
std::int64_t merge_lora(RewardModel& model);

}  // namespace openrm
