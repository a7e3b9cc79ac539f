// Llama (LlamaForSequenceClassification): optional bias on all four attention
// projections (attention_bias) and on the MLP (mlp_bias); no sliding window.
#include "models/decoder.h"
#include "models/registry.h"

namespace openrm {

namespace {

std::shared_ptr<RewardModel> create_llama(const ModelConfig& config, const LoadOptions& options) {
  DecoderSpec spec;
  spec.activation = parse_activation(config.hidden_act);
  spec.qkv_bias = spec.o_bias = config.attention_bias.value_or(false);
  spec.mlp_bias = config.mlp_bias;
  spec.layer_windows.assign(static_cast<std::size_t>(config.num_hidden_layers), 0);
  return create_decoder_reward_model(config, spec, options);
}

}  // namespace

ArchitectureEntry llama_architecture() {
  return {"LlamaForSequenceClassification", "llama", &create_llama};
}

}  // namespace openrm
