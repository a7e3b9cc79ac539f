// Qwen3 (Qwen3ForSequenceClassification): RMSNorm over head_dim on queries and
// keys before RoPE; attention_bias on all four projections; head_dim is its
// own field (128 when config.json omits it, as Qwen3Config defaults); sliding
// windows as Qwen2.
#include "models/decoder.h"
#include "models/registry.h"

namespace openrm {

bool qwen_default_sliding(const ModelConfig& config, std::int64_t layer);  // qwen2.cpp

namespace {

std::shared_ptr<RewardModel> create_qwen3(const ModelConfig& given, const LoadOptions& options) {
  ModelConfig config = given;
  if (!config.raw.contains("head_dim")) config.head_dim = 128;
  DecoderSpec spec;
  spec.activation = parse_activation(config.hidden_act);
  spec.qkv_bias = spec.o_bias = config.attention_bias.value_or(false);
  spec.qk_norm = true;
  const auto window = config.use_sliding_window.value_or(false) ? config.sliding_window : 0;
  spec.layer_windows = layer_windows_from_config(config, window, &qwen_default_sliding);
  return create_decoder_reward_model(config, spec, options);
}

}  // namespace

ArchitectureEntry qwen3_architecture() {
  return {"Qwen3ForSequenceClassification", "qwen3", &create_qwen3};
}

}  // namespace openrm
