// The decoder-only transformer shared by the Llama, Mistral, Qwen2 and Qwen3
// families, with the sequence-classification `score` head. Each family's file
// (llama.cpp, ...) only says how its config maps onto a DecoderSpec.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "openrm/models/reward_model.h"

namespace openrm {

// What differs between the families.
struct DecoderSpec {
  bool qkv_bias = false;  // bias on q_proj, k_proj, v_proj
  bool o_bias = false;    // bias on o_proj
  bool mlp_bias = false;  // bias on gate_proj, up_proj, down_proj
  bool qk_norm = false;   // RMSNorm over head_dim on queries and keys (Qwen3)
  // Per layer: 0 for full causal attention, else a sliding window of that
  // many tokens (query i sees keys j with i - window < j <= i).
  std::vector<std::int64_t> layer_windows;
};

// Per-layer windows from config.layer_types when present, else from
// `default_sliding(layer)`; `window` of 0 turns sliding off everywhere.
std::vector<std::int64_t> layer_windows_from_config(const ModelConfig& config, std::int64_t window,
                                                    bool (*default_sliding)(const ModelConfig&,
                                                                            std::int64_t layer));

// A bias-optional linear layer with a weight (out, in), left uninitialised.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(std::int64_t in, std::int64_t out, bool bias, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;
};

// RMSNorm in transformers' order: normalise in fp32, cast back to the input
// dtype, then multiply by the weight.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};

std::shared_ptr<RewardModel> create_decoder_reward_model(const ModelConfig& config,
                                                         const DecoderSpec& spec,
                                                         const LoadOptions& options);

}  // namespace openrm
