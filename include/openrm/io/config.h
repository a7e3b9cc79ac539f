// config.json of a Hugging Face model folder, parsed once into typed fields.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

enum class RopeType {
  kDefault,  // inv_freq = theta^(-2i/d)
  kLinear,   // positions divided by factor
  kLlama3,   // Llama 3.1's wavelength-dependent interpolation
};
const char* rope_type_name(RopeType type);

struct RopeScaling {
  RopeType type = RopeType::kDefault;
  double factor = 1.0;                               // linear, llama3: e.g. 8.0
  double low_freq_factor = 1.0;                      // llama3: e.g. 1.0
  double high_freq_factor = 4.0;                     // llama3: e.g. 4.0
  std::int64_t original_max_position_embeddings = 0;  // llama3: e.g. 8192
};

// Fields of a decoder config.json. Read from either spelling transformers has
// used: top-level rope_theta + rope_scaling, or the newer rope_parameters
// object (which carries rope_theta and rope_type together).
struct ModelConfig {
  std::string architecture;  // architectures[0], e.g. "LlamaForSequenceClassification"
  std::string model_type;    // e.g. "llama"
  std::int64_t vocab_size = 0;               // e.g. 128256
  std::int64_t hidden_size = 0;              // e.g. 4096
  std::int64_t intermediate_size = 0;        // e.g. 14336
  std::int64_t num_hidden_layers = 0;        // e.g. 32
  std::int64_t num_attention_heads = 0;      // e.g. 32
  std::int64_t num_key_value_heads = 0;      // e.g. 8; absent: num_attention_heads
  std::int64_t head_dim = 0;  // absent or null: hidden_size / num_attention_heads (Qwen3: 128)
  std::int64_t max_position_embeddings = 0;  // e.g. 131072; 0 when absent
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  std::string hidden_act = "silu";
  std::optional<bool> attention_bias;  // absent: the family's default
  bool mlp_bias = false;
  // Sliding-window attention: window in tokens (0 = none) and which layers
  // use it. layer_types, when present, is authoritative; otherwise
  // use_sliding_window/max_window_layers (Qwen) or a non-null sliding_window
  // (Mistral) decide, per family.
  std::int64_t sliding_window = 0;
  std::optional<bool> use_sliding_window;
  std::int64_t max_window_layers = 0;
  std::vector<std::string> layer_types;  // "full_attention" / "sliding_attention"
  std::optional<std::int64_t> pad_token_id;
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;  // config allows one id or a list
  std::int64_t num_labels = 1;              // from num_labels or id2label's size
  std::string torch_dtype;                  // informational only; e.g. "bfloat16"
  bool tie_word_embeddings = false;

  // The whole parsed object, so fields openrm does not model survive a save.
  nlohmann::json raw;

  // The JSON to write back: raw, with the typed fields above written over it.
  nlohmann::json to_json() const;
};

// Parses config.json text; `source` names the file in errors. Throws
// openrm::Error on malformed JSON, wrong field types, and values out of range
// ("config.json: field 'num_attention_heads': expected a positive integer, got -4").
ModelConfig parse_model_config(const std::string& text, const std::string& source);
ModelConfig load_model_config(const std::string& path);

// Checks the relations between fields that every decoder needs (heads divide,
// head_dim even, ...); throws openrm::Error naming `source`.
void validate_decoder_config(const ModelConfig& config, const std::string& source);

}  // namespace openrm
