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
  // Layers adapted: a linear layer whose name is one of these or ends with
  // "." + one of these ("q_proj", "self_attn.q_proj"), as PEFT matches
  // target_modules given as a list.
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  // PEFT's other form of target_modules, a string: a layer is adapted when
  // this regular expression matches its whole name (re.fullmatch; here
  // std::regex's ECMAScript syntax, which covers the patterns PEFT users
  // write: alternatives, classes, ".*"). When set, `targets` is not used.
  std::string target_regex;

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
// task_type SEQ_CLS, r, lora_alpha, lora_dropout, target_modules (the list,
// or target_regex), modules_to_save with the head, base_model_name_or_path =
// `base_model`).
void save_lora_adapter(const RewardModel& model, const LoraOptions& options, const std::string& dir,
                       const std::string& base_model);

// Whether `dir` is a PEFT adapter folder: it holds adapter_config.json and
// no config.json.
bool is_lora_adapter_folder(const std::string& dir);

// The options of `adapter_dir`/adapter_config.json, as PEFT writes it:
// peft_type LORA, task_type SEQ_CLS (or none), r, lora_alpha, lora_dropout,
// target_modules as a list or a regex string. What openrm's LoRA does not
// compute (use_dora, use_rslora, bias other than "none", lora_bias,
// fan_in_fan_out, rank_pattern / alpha_pattern, layers_to_transform,
// exclude_modules, target_parameters, layer_replication, ...) and
// target_modules "all-linear" are refused. Throws openrm::Error naming the
// file and the field.
LoraOptions read_lora_config(const std::string& adapter_dir);

// Adds the adapters of a PEFT adapter folder to `model` (apply_lora with
// read_lora_config's options) and loads their values and those of the
// modules in modules_to_save (the reward head; for task_type SEQ_CLS,
// PEFT's "score" and "classifier" are always among them) from
// adapter_model.safetensors (else adapter_model.bin). Tensor names are
// PEFT's: "base_model.model." + the model's name, with or without the
// adapter name (".lora_A.default.weight", ".score.modules_to_save.default.weight").
// Everything is checked before the model is touched: a missing, misshapen,
// non-floating or unexpected tensor throws openrm::Error naming the file and
// the tensor, and leaves the model as it was.
void load_lora_adapter(RewardModel& model, const std::string& adapter_dir);

// The base model folder of a PEFT adapter folder: `base_dir` when given,
// else adapter_config.json's base_model_name_or_path (absolute, or relative
// to the adapter folder). Throws openrm::Error when it is not a folder here
// (a Hub id cannot be fetched: nothing is downloaded), saying to give the
// base folder (LoadOptions::base_model, openrm-export --base-model-dir).
std::string lora_base_folder(const std::string& adapter_dir, const std::string& base_dir = "");

// Folds every adapter into its layer's weight and removes the adapters, so
// the model saves as a plain reward-model folder (what PEFT's
// merge_and_unload gives); every parameter is trainable again. Returns how
// many layers were merged.
std::int64_t merge_lora(RewardModel& model);

}  // namespace openrm
