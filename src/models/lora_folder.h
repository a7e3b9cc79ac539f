// load_reward_model's half for PEFT adapter folders (src/models/lora.cpp).
#pragma once

#include <memory>
#include <string>

#include "openrm/models/reward_model.h"

namespace openrm::detail {

// The base model (lora_base_folder, LoadOptions::base_model first; a causal
// LM base gets its reward head from the adapter), the adapter loaded onto
// it and merged (merge_lora): a plain reward model. openrm.json's pooling in
// the adapter folder overrides the base's unless `options` gives one.
std::shared_ptr<RewardModel> load_lora_reward_model(const std::string& adapter_dir, const LoadOptions& options);

}  // namespace openrm::detail
