// Qwen2 (Qwen2ForSequenceClassification): bias on q/k/v but not o_proj.
// Sliding windows only when use_sliding_window is true, then on the layers
// from max_window_layers on (or as layer_types says).
#include "models/decoder.h"
#include "models/registry.h"

namespace openrm {

bool qwen_default_sliding(const ModelConfig& config, std::int64_t layer) {
  return layer >= config.max_window_layers;
}

namespace {

std::shared_ptr<RewardModel> create_qwen2(const ModelConfig& config, const LoadOptions& options) {
  DecoderSpec spec;
  spec.activation = parse_activation(config.hidden_act);
  spec.qkv_bias = true;
  const auto window = config.use_sliding_window.value_or(false) ? config.sliding_window : 0;
  spec.layer_windows = layer_windows_from_config(config, window, &qwen_default_sliding);
  return create_decoder_reward_model(config, spec, options);
}

}  // namespace

ArchitectureEntry qwen2_architecture() {
  return {"Qwen2ForSequenceClassification", "qwen2", &create_qwen2};
}

}  // namespace openrm
