// Feeds arbitrary text to parse_model_config, then validate_decoder_config
// and to_json. Rejections (openrm::Error) are fine. Whatever parses must
// write back (to_json) into JSON that parses again to the same typed fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "openrm/error.h"
#include "openrm/io/config.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool same_rope(const openrm::RopeScaling& a, const openrm::RopeScaling& b) {
  return a.type == b.type && a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
         a.high_freq_factor == b.high_freq_factor &&
         a.original_max_position_embeddings == b.original_max_position_embeddings;
}

bool same_fields(const openrm::ModelConfig& a, const openrm::ModelConfig& b) {
  return a.architecture == b.architecture && a.model_type == b.model_type &&
         a.vocab_size == b.vocab_size && a.hidden_size == b.hidden_size &&
         a.intermediate_size == b.intermediate_size && a.num_hidden_layers == b.num_hidden_layers &&
         a.num_attention_heads == b.num_attention_heads &&
         a.num_key_value_heads == b.num_key_value_heads && a.head_dim == b.head_dim &&
         a.max_position_embeddings == b.max_position_embeddings &&
         a.rms_norm_eps == b.rms_norm_eps && a.rope_theta == b.rope_theta &&
         same_rope(a.rope_scaling, b.rope_scaling) && a.hidden_act == b.hidden_act &&
         a.attention_bias == b.attention_bias && a.mlp_bias == b.mlp_bias &&
         a.sliding_window == b.sliding_window && a.use_sliding_window == b.use_sliding_window &&
         a.max_window_layers == b.max_window_layers && a.layer_types == b.layer_types &&
         a.pad_token_id == b.pad_token_id && a.bos_token_id == b.bos_token_id &&
         a.eos_token_ids == b.eos_token_ids && a.num_labels == b.num_labels &&
         a.torch_dtype == b.torch_dtype && a.tie_word_embeddings == b.tie_word_embeddings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  openrm::ModelConfig config;
  try {
    config = openrm::parse_model_config(text, "fuzz/config.json");
  } catch (const openrm::Error&) {
    return 0;
  }
  try {
    openrm::validate_decoder_config(config, "fuzz/config.json");
  } catch (const openrm::Error&) {
  }
  // No exception may escape from here on: a config that parsed must write
  // back, and what it writes must read back the same.
  std::string written = config.to_json().dump(2);
  openrm::ModelConfig again;
  try {
    again = openrm::parse_model_config(written, "fuzz/config.json (written back)");
  } catch (const openrm::Error&) {
    check(false);
  }
  check(same_fields(config, again));
  return 0;
}
