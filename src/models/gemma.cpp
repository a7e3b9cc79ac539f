// Gemma (GemmaForSequenceClassification) and Gemma-2
// (Gemma2ForSequenceClassification): the Llama layout with
//   * RMSNorm storing an offset from one, applied in fp32 and cast after the
//     multiply ((1+w) style, RMSNormStyle::kUnitOffset);
//   * embeddings multiplied by sqrt(hidden_size) rounded to the model dtype;
//   * a GELU (tanh approximation) gated MLP;
//   * head_dim its own field (256 when config.json omits it).
// Gemma-2 adds four norms per layer, attention scaled by
// query_pre_attn_scalar^-0.5 instead of head_dim^-0.5, attention logits
// soft-capped at attn_logit_softcapping, and sliding-window attention on
// every other layer (layer_types; by default layers 0, 2, 4, ... slide).
// final_logit_softcapping caps the LM head's logits only: transformers'
// Gemma2ForSequenceClassification does not apply it to the score head, and
// neither does openrm.
#include <cmath>

#include "models/decoder.h"
#include "models/registry.h"
#include "openrm/error.h"

namespace openrm {

namespace {

// A number field of config.json, `fallback` when absent; null gives 0 (off).
double number_field(const ModelConfig& config, const char* key, double fallback) {
  if (!config.raw.is_object() || !config.raw.contains(key)) return fallback;
  const auto& value = config.raw[key];
  if (value.is_null()) return 0.0;
  if (!value.is_number() || !(value.get<double>() >= 0) || !std::isfinite(value.get<double>())) {
    throw Error("config: field '" + std::string(key) + "': expected a non-negative number or null, got " +
                value.dump());
  }
  return value.get<double>();
}

// The MLP's activation as transformers reads it: Gemma's hidden_act ("gelu"
// in the first Gemma configs means the tanh approximation), Gemma-2's
// hidden_activation; the tanh GELU when the field is absent.
Activation gemma_activation(const ModelConfig& config, bool gemma2) {
  const char* key = gemma2 ? "hidden_activation" : "hidden_act";
  std::string name = "gelu_pytorch_tanh";
  if (config.raw.contains(key) && !config.raw[key].is_null()) {
    if (!config.raw[key].is_string()) throw Error(std::string("config: field '") + key + "': expected a string");
    name = config.raw[key].get<std::string>();
  }
  if (name == "gelu" && !gemma2) name = "gelu_pytorch_tanh";
  return with_context(std::string("config: field '") + key + "'", [&] { return parse_activation(name); });
}

DecoderSpec gemma_spec(ModelConfig& config, bool gemma2) {
  if (!config.raw.contains("head_dim") || config.raw["head_dim"].is_null()) config.head_dim = 256;
  if (config.raw.contains("use_bidirectional_attention") && config.raw["use_bidirectional_attention"].is_boolean() &&
      config.raw["use_bidirectional_attention"].get<bool>()) {
    throw Error("config: use_bidirectional_attention is true: bidirectional Gemma (an embedding model) is not "
                "supported");
  }
  DecoderSpec spec;
  spec.qkv_bias = spec.o_bias = config.attention_bias.value_or(false);
  spec.norm_style = RMSNormStyle::kUnitOffset;
  spec.embed_scale = std::sqrt(static_cast<double>(config.hidden_size));
  spec.activation = gemma_activation(config, gemma2);
  return spec;
}

bool gemma2_default_sliding(const ModelConfig&, std::int64_t layer) { return layer % 2 == 0; }

std::shared_ptr<RewardModel> create_gemma(const ModelConfig& given, const LoadOptions& options) {
  ModelConfig config = given;
  DecoderSpec spec = gemma_spec(config, /*gemma2=*/false);
  spec.layer_windows.assign(static_cast<std::size_t>(config.num_hidden_layers), 0);
  return create_decoder_reward_model(config, spec, options);
}

std::shared_ptr<RewardModel> create_gemma2(const ModelConfig& given, const LoadOptions& options) {
  ModelConfig config = given;
  if (!config.raw.contains("sliding_window")) config.sliding_window = 4096;
  DecoderSpec spec = gemma_spec(config, /*gemma2=*/true);
  spec.sandwich_norms = true;
  const double scalar = number_field(config, "query_pre_attn_scalar", 256.0);
  if (!(scalar > 0)) throw Error("config: field 'query_pre_attn_scalar' must be a positive number");
  spec.attention_scale = 1.0 / std::sqrt(scalar);
  spec.attention_softcap = number_field(config, "attn_logit_softcapping", 50.0);
  spec.layer_windows = layer_windows_from_config(config, config.sliding_window, &gemma2_default_sliding);
  return create_decoder_reward_model(config, spec, options);
}

const std::vector<std::string> kGemmaFields = {
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "hidden_act", "hidden_activation", "rms_norm_eps", "rope_theta",
    "rope_parameters", "attention_bias", "pad_token_id", "num_labels"};

}  // namespace

ArchitectureEntry gemma_architecture() {
  ArchitectureEntry entry{"GemmaForSequenceClassification", "gemma", &create_gemma};
  entry.config_fields = kGemmaFields;
  return entry;
}

ArchitectureEntry gemma2_architecture() {
  ArchitectureEntry entry{"Gemma2ForSequenceClassification", "gemma2", &create_gemma2};
  entry.config_fields = kGemmaFields;
  for (const char* f : {"query_pre_attn_scalar", "attn_logit_softcapping", "sliding_window", "layer_types"}) {
    entry.config_fields.push_back(f);
  }
  return entry;
}

}  // namespace openrm
