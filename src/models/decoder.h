// The pre-norm decoder-only transformer with rotary positions and a gated MLP
// shared by the Llama, Mistral, Qwen2, Qwen3, Gemma and Gemma-2 families,
// built from the blocks of blocks.h, with the head the checkpoint names
// (heads.h). Each family's file (llama.cpp, gemma.cpp, ...) only says how its
// config maps onto a DecoderSpec.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "openrm/models/reward_model.h"

namespace openrm {

// What differs between the families.
struct DecoderSpec {
  bool qkv_bias = false;  // bias on q_proj, k_proj, v_proj
  bool o_bias = false;    // bias on o_proj
  bool mlp_bias = false;  // bias on gate_proj, up_proj, down_proj
  bool qk_norm = false;   // RMSNorm over head_dim on queries and keys (Qwen3)
  RMSNormStyle norm_style = RMSNormStyle::kLlama;  // every norm of the model
  // Four norms per layer (Gemma-2): input_layernorm and
  // post_attention_layernorm around attention, pre_feedforward_layernorm and
  // post_feedforward_layernorm around the MLP, each output normalised before
  // the residual add. Otherwise two: input_layernorm before attention,
  // post_attention_layernorm before the MLP.
  bool sandwich_norms = false;
  double embed_scale = 1.0;  // Gemma: sqrt(hidden_size)
  Activation activation = Activation::kSilu;
  double attention_scale = 0.0;  // 0: head_dim^-0.5
  double attention_softcap = 0.0;  // Gemma-2: attn_logit_softcapping
  // Per layer: 0 for full causal attention, else a sliding window of that
  // many tokens (query i sees keys j with i - window < j <= i).
  std::vector<std::int64_t> layer_windows;
};

// Per-layer windows from config.layer_types when present, else from
// `default_sliding(layer)`; `window` of 0 turns sliding off everywhere.
std::vector<std::int64_t> layer_windows_from_config(const ModelConfig& config, std::int64_t window,
                                                    bool (*default_sliding)(const ModelConfig&,
                                                                            std::int64_t layer));

std::shared_ptr<RewardModel> create_decoder_reward_model(const ModelConfig& config,
                                                         const DecoderSpec& spec,
                                                         const LoadOptions& options);

}  // namespace openrm
