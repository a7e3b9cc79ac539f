// The architecture registry: config.json's architectures[0] (or, failing
// that, model_type) -> the family entry that builds the model. Filled once
// by the list in registry.cpp, not by static self-registration. Everything a
// loader needs to know about a family's checkpoints is in its entry, so
// generic code never names a family's tensors (docs/models.md, "Layering").
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
  // The config.json fields the family reads (for docs/models.md and errors).
  std::vector<std::string> config_fields;
  // Where a reward head may sit, in the order they are looked for: the
  // module path of a linear head ("score", "v_head.summary") or of a
  // two-layer one ("score" with score.0/score.2).
  std::vector<std::string> head_candidates = {"score", "v_head.summary", "v_head"};
  // The head a new model gets (its labels come from config.num_labels).
  HeadSpec default_head;
  // The module path of the causal LM head ("lm_head"): dropped when a reward
  // model starts from a causal LM, and ignored in value-head checkpoints
  // (a causal LM saved with a v_head beside its lm_head).
  std::string lm_head = "lm_head";
  // The module path of the backbone ("model", "gpt_neox", "transformer",
  // "deberta"): DeepSpeed-Chat saves its reward models with the backbone
  // under "rwtranrsformer." (sic) instead, read as this path.
  std::string backbone = "model";
  // Substrings of tensor names a checkpoint may carry that the model does not
  // need (e.g. "rotary_emb.inv_freq", saved by older transformers).
  std::vector<std::string> ignorable = {"rotary_emb.inv_freq"};
  Pooling default_pooling = Pooling::kRightmostNonPad;
  // Whether the family's attention is causal (RewardModel::causal() of the
  // models it builds), known before a model exists: only causal models can
  // share a prefix between sequences.
  bool causal = true;
};

// The entry for a config, or openrm::Error listing the supported ones.
const ArchitectureEntry& find_architecture(const ModelConfig& config);

// Each family file defines one of these (llama.cpp, mistral.cpp, ...).
ArchitectureEntry llama_architecture();
ArchitectureEntry mistral_architecture();
ArchitectureEntry qwen2_architecture();
ArchitectureEntry qwen3_architecture();
ArchitectureEntry gemma_architecture();
ArchitectureEntry gemma2_architecture();
ArchitectureEntry gpt_neox_architecture();
ArchitectureEntry gpt_neox_reward_model_architecture();
ArchitectureEntry gpt2_architecture();
ArchitectureEntry deberta_v2_architecture();

}  // namespace openrm
