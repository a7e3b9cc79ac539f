#include "models/registry.h"

#include <mutex>

#include "openrm/error.h"

namespace openrm {

namespace {

const std::vector<ArchitectureEntry>& registry() {
  static std::vector<ArchitectureEntry> entries;
  static std::once_flag once;
  std::call_once(once, [] {
    entries = {llama_architecture(), mistral_architecture(), qwen2_architecture(),
               qwen3_architecture(), gemma_architecture(), gemma2_architecture(),
               gpt_neox_architecture(), gpt_neox_reward_model_architecture(), gpt2_architecture(), deberta_v2_architecture()};
  });
  return entries;
}

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.architecture);
  return names;
}

const ArchitectureEntry& find_architecture(const ModelConfig& config) {
  for (const auto& e : registry()) {
    if (!config.architecture.empty() && config.architecture == e.architecture) return e;
  }
  for (const auto& e : registry()) {
    if (!config.model_type.empty() && config.model_type == e.model_type) return e;
  }
  std::string list;
  for (const auto& e : registry()) list += (list.empty() ? "" : ", ") + e.architecture;
  throw Error("unsupported architecture '" + config.architecture + "' (model_type '" +
              config.model_type + "'); supported: " + list);
}

}  // namespace openrm
