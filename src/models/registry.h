// The architecture registry: config.json's architectures[0] (or, failing
// that, model_type) -> a function that builds the model. Filled once by
// register_builtin_architectures(), not by static self-registration.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "openrm/models/reward_model.h"

namespace openrm {

using ModelFactory = std::shared_ptr<RewardModel> (*)(const ModelConfig&, const LoadOptions&);

struct ArchitectureEntry {
  std::string architecture;  // e.g. "LlamaForSequenceClassification"
  std::string model_type;    // e.g. "llama"
  ModelFactory create;
};

// The factory for a config, or openrm::Error listing the supported ones.
ModelFactory find_model_factory(const ModelConfig& config);

// Each family file defines one of these (llama.cpp, mistral.cpp, ...).
ArchitectureEntry llama_architecture();
ArchitectureEntry mistral_architecture();
ArchitectureEntry qwen2_architecture();
ArchitectureEntry qwen3_architecture();

}  // namespace openrm
