// Mistral (MistralForSequenceClassification): no biases; a non-null
// sliding_window applies to every layer unless layer_types says otherwise.
#include "models/decoder.h"
#include "models/registry.h"

namespace openrm {

namespace {

bool every_layer(const ModelConfig&, std::int64_t) { return true; }

std::shared_ptr<RewardModel> create_mistral(const ModelConfig& config,
                                            const LoadOptions& options) {
  DecoderSpec spec;
  spec.activation = parse_activation(config.hidden_act);
  spec.layer_windows = layer_windows_from_config(config, config.sliding_window, &every_layer);
  return create_decoder_reward_model(config, spec, options);
}

}  // namespace

ArchitectureEntry mistral_architecture() {
  return {"MistralForSequenceClassification", "mistral", &create_mistral};
}

}  // namespace openrm
