// GPT-NeoX (GPTNeoXForSequenceClassification, model_type "gpt_neox": Pythia,
// GPT-NeoX-20B and their reward models), computed as transformers'
// modeling_gpt_neox.py does:
//   gpt_neox.embed_in -> layers -> gpt_neox.final_layer_norm -> head;
//   each layer: LayerNorm (with bias) input_layernorm / post_attention_layernorm,
//     attention.query_key_value fused per head (its (3H, H) weight is laid out
//     as [heads, 3, head_dim]: the output viewed as (T, heads, 3 * head_dim)
//     and chunked into q, k, v), partial rotary on the first rotary_ndims =
//     int(head_dim * partial_rotary_factor) channels of each head, attention
//     scaled by head_dim^-0.5, attention.dense; MLP dense_h_to_4h ->
//     hidden_act -> dense_4h_to_h (both with bias);
//   use_parallel_residual true:  x + attn(ln1(x)) + mlp(ln2(x));
//                          false: y = x + attn(ln1(x)); y + mlp(ln2(y)).
// Config spellings: partial_rotary_factor from rope_parameters (transformers
// 5) or rotary_pct (transformers 4 and the published configs), default 0.25;
// the rope base from rope_parameters.rope_theta, rotary_emb_base or
// rope_theta, default 10000; attention_bias (default true) for
// query_key_value and dense.
//
// OpenAssistant's GPTNeoXRewardModel (tensors gpt_neox.* plus out_proj.weight
// and out_proj.bias) is the same backbone with a linear head with bias on the
// hidden state of the last token. Its published configs say architectures
// ["GPTNeoXRewardModel"] and model_type "gpt_neox_reward_model" (OA's own
// config class), with "pooling": "last" (or "mean", which openrm refuses):
// gpt_neox_reward_model_architecture() is the entry for them (pooling
// kLastToken: OA pools hidden_states at attention_mask.cumsum(1).argmax(1),
// the last real token of each row). A GPTNeoXRewardModel config that says
// model_type "gpt_neox" and is not matched by that entry resolves to
// GPTNeoXForSequenceClassification via model_type: its out_proj head is
// found from the tensor names ("out_proj" is in head_candidates after
// "score"), pooled by transformers' rightmost-non-pad rule.
#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "models/blocks.h"
#include "models/family_config.h"
#include "models/heads_impl.h"
#include "models/layer_checkpoint.h"
#include "models/registry.h"
#include "models/rope.h"
#include "openrm/error.h"

namespace openrm {

namespace {

namespace fc = family_config;
using Linear = std::shared_ptr<LinearImpl>;
using LayerNorm = std::shared_ptr<LayerNormImpl>;

// What a GPT-NeoX config says, with transformers' defaults, validated.
struct NeoxSpec {
  std::int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, head_dim = 0, intermediate = 0;
  std::int64_t rotary_ndims = 0;
  double eps = 1e-5, theta = 10000.0, partial_rotary_factor = 0.25;
  std::string act_name = "gelu";
  Activation act = Activation::kGelu;
  bool parallel_residual = true, attention_bias = true;
};

NeoxSpec read_spec(const ModelConfig& c) {
  const auto& raw = c.raw;
  NeoxSpec s;
  s.vocab = fc::positive_int(raw, "vocab_size");
  s.hidden = fc::positive_int(raw, "hidden_size");
  s.layers = fc::positive_int(raw, "num_hidden_layers");
  s.heads = fc::positive_int(raw, "num_attention_heads");
  s.intermediate = fc::positive_int(raw, "intermediate_size");
  if (s.hidden % s.heads != 0) {
    fc::fail("num_attention_heads", std::to_string(s.heads) + " does not divide hidden_size " +
                                        std::to_string(s.hidden));
  }
  s.head_dim = s.hidden / s.heads;
  if (auto eps = fc::number(raw, "layer_norm_eps")) {
    if (!(*eps > 0) || !std::isfinite(*eps)) fc::fail_field("layer_norm_eps", "a positive number", raw.at("layer_norm_eps"));
    s.eps = *eps;
  }
  s.act_name = fc::string(raw, "hidden_act", "gelu");
  try {
    s.act = parse_activation(s.act_name);
  } catch (const Error& e) {
    throw Error(std::string("config: field 'hidden_act': ") + e.what());
  }
  s.parallel_residual = fc::boolean(raw, "use_parallel_residual", true);
  s.attention_bias = fc::boolean(raw, "attention_bias", true);

  // Partial rotary: transformers 5 keeps it in rope_parameters, older
  // configs say rotary_pct.
  const nlohmann::json* params = fc::find(raw, "rope_parameters");
  if (params && !params->is_object()) fc::fail_field("rope_parameters", "an object", *params);
  std::string factor_field = "rotary_pct";
  std::optional<double> factor;
  if (params) {
    factor = fc::number(*params, "partial_rotary_factor", "rope_parameters.partial_rotary_factor");
    if (factor) factor_field = "rope_parameters.partial_rotary_factor";
  }
  if (!factor) factor = fc::number(raw, "rotary_pct");
  if (!factor) {
    factor = fc::number(raw, "partial_rotary_factor");
    if (factor) factor_field = "partial_rotary_factor";
  }
  s.partial_rotary_factor = factor.value_or(0.25);
  if (!(s.partial_rotary_factor >= 0.0 && s.partial_rotary_factor <= 1.0)) {
    fc::fail(factor_field, "must be between 0 and 1, got " + std::to_string(s.partial_rotary_factor));
  }
  // Python's int(head_dim * factor).
  s.rotary_ndims = static_cast<std::int64_t>(static_cast<double>(s.head_dim) * s.partial_rotary_factor);
  if (s.rotary_ndims % 2 != 0) {
    fc::fail(factor_field, "gives rotary_ndims " + std::to_string(s.rotary_ndims) + " (head_dim " +
                               std::to_string(s.head_dim) + " * " + std::to_string(s.partial_rotary_factor) +
                               "), which must be even");
  }

  std::optional<double> theta;
  std::string theta_field;
  if (params) {
    theta = fc::number(*params, "rope_theta", "rope_parameters.rope_theta");
    theta_field = "rope_parameters.rope_theta";
  }
  if (!theta) {
    theta = fc::number(raw, "rotary_emb_base");
    theta_field = "rotary_emb_base";
  }
  if (!theta) {
    theta = fc::number(raw, "rope_theta");
    theta_field = "rope_theta";
  }
  s.theta = theta.value_or(10000.0);
  if (!(s.theta > 0) || !std::isfinite(s.theta)) {
    fc::fail(theta_field, "must be a positive number, got " + std::to_string(s.theta));
  }
  return s;
}

// The config the model reports: the typed fields filled from GPT-NeoX's own
// (so config() gives hidden_size, head_dim, hidden_act, rope_theta as the
// model uses them); raw is unchanged.
ModelConfig effective_config(const ModelConfig& c, const NeoxSpec& s) {
  ModelConfig out = c;
  out.vocab_size = s.vocab;
  out.hidden_size = s.hidden;
  out.intermediate_size = s.intermediate;
  out.num_hidden_layers = s.layers;
  out.num_attention_heads = s.heads;
  out.num_key_value_heads = s.heads;
  out.head_dim = s.head_dim;
  out.hidden_act = s.act_name;
  out.rope_theta = s.theta;
  return out;
}

class NeoxAttentionImpl : public torch::nn::Module {
 public:
  NeoxAttentionImpl(const NeoxSpec& s, const at::TensorOptions& options)
      : heads_(s.heads), head_dim_(s.head_dim), rotary_ndims_(s.rotary_ndims) {
    spec_.scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    query_key_value = register_module(
        "query_key_value", std::make_shared<LinearImpl>(s.hidden, 3 * s.hidden, s.attention_bias, options));
    dense = register_module("dense", std::make_shared<LinearImpl>(s.hidden, s.hidden, s.attention_bias, options));
  }

  at::Tensor rotate(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const {
    if (rotary_ndims_ == 0) return x;
    if (rotary_ndims_ == head_dim_) return apply_rope(x, cos, sin);
    auto rotated = apply_rope(x.narrow(-1, 0, rotary_ndims_), cos, sin);
    return at::cat({rotated, x.narrow(-1, rotary_ndims_, head_dim_ - rotary_ndims_)}, -1);
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, AttentionLayout& layout) {
    const auto T = x.size(0);
    auto qkv = query_key_value->forward(x).view({T, heads_, 3 * head_dim_});
    auto q = rotate(qkv.narrow(-1, 0, head_dim_), cos, sin).contiguous();
    auto k = rotate(qkv.narrow(-1, head_dim_, head_dim_), cos, sin).contiguous();
    auto v = qkv.narrow(-1, 2 * head_dim_, head_dim_).contiguous();
    auto out = causal_self_attention(q, k, v, layout, spec_);
    return dense->forward(out.to(x.scalar_type()));
  }

  Linear query_key_value, dense;

 private:
  std::int64_t heads_, head_dim_, rotary_ndims_;
  AttentionSpec spec_;
};

class NeoxLayerImpl : public torch::nn::Module {
 public:
  NeoxLayerImpl(const NeoxSpec& s, const at::TensorOptions& options) : parallel_(s.parallel_residual) {
    input_layernorm = register_module("input_layernorm", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, options));
    post_attention_layernorm =
        register_module("post_attention_layernorm", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, options));
    attention = register_module("attention", std::make_shared<NeoxAttentionImpl>(s, options));
    mlp = register_module("mlp", std::make_shared<PlainMlpImpl>(s.hidden, s.intermediate, true, s.act, options,
                                                                "dense_h_to_4h", "dense_4h_to_h"));
  }

  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, AttentionLayout& layout) {
    auto a = attention->forward(input_layernorm->forward(x), cos, sin, layout);
    if (parallel_) {
      auto m = mlp->forward(post_attention_layernorm->forward(x));
      return m + a + x;  // transformers' order of the sums
    }
    auto y = a + x;
    return mlp->forward(post_attention_layernorm->forward(y)) + y;
  }

  LayerNorm input_layernorm, post_attention_layernorm;
  std::shared_ptr<NeoxAttentionImpl> attention;
  std::shared_ptr<PlainMlpImpl> mlp;

 private:
  bool parallel_;
};

// The backbone, registered as "gpt_neox".
class NeoxModelImpl : public torch::nn::Module {
 public:
  NeoxModelImpl(const NeoxSpec& s, const at::TensorOptions& options) {
    embed_in = register_module("embed_in", std::make_shared<EmbeddingImpl>(s.vocab, s.hidden, options));
    layers = register_module("layers", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < s.layers; ++i) {
      layers->push_back(std::make_shared<NeoxLayerImpl>(s, options));
      typed_layers.push_back(layers->ptr<NeoxLayerImpl>(static_cast<std::size_t>(i)));
    }
    final_layer_norm =
        register_module("final_layer_norm", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, options));
  }
  std::shared_ptr<EmbeddingImpl> embed_in;
  torch::nn::ModuleList layers;
  std::vector<std::shared_ptr<NeoxLayerImpl>> typed_layers;
  LayerNorm final_layer_norm;
};

class GptNeoxRewardModel : public RewardModel {
 public:
  GptNeoxRewardModel(const ModelConfig& c, const NeoxSpec& s, const HeadSpec& head_spec, Pooling pooling,
                     const at::TensorOptions& options)
      : RewardModel(effective_config(c, s), pooling, head_spec) {
    gpt_neox = register_module("gpt_neox", std::make_shared<NeoxModelImpl>(s, options));
    score_head = std::make_shared<RewardHeadImpl>(head_spec, s.hidden, options);
    register_head(*this, head_spec, score_head);
    if (s.rotary_ndims > 0) {
      inv_freq_ = rope_inverse_frequencies(s.rotary_ndims, s.theta, c.rope_scaling).to(options.device());
    }
  }

  at::Tensor hidden_states(const PackedBatch& batch) override {
    if (!batch.input_ids.is_cuda()) check_token_ids(batch.input_ids, config().vocab_size);
    auto layout = std::make_shared<AttentionLayout>(AttentionLayout::of(batch));
    at::Tensor cos, sin;
    if (inv_freq_.defined()) std::tie(cos, sin) = rope_cos_sin(inv_freq_, batch.position_ids, dtype());
    auto x = gpt_neox->embed_in->forward(batch.input_ids);
    const bool checkpoint = gradient_checkpointing() && is_training() && torch::GradMode::is_enabled();
    for (auto& layer : gpt_neox->typed_layers) {
      if (checkpoint) {
        auto* l = layer.get();
        x = checkpointed_layer(x, [l, cos, sin, layout](const at::Tensor& in) {
          return l->forward(in, cos, sin, *layout);
        });
      } else {
        x = layer->forward(x, cos, sin, *layout);
      }
    }
    return gpt_neox->final_layer_norm->forward(x);
  }

  at::Tensor head(const at::Tensor& pooled) override { return score_head->forward(pooled); }

  // The RoPE frequencies move with the module and stay fp32.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override {
    RewardModel::to(device, dtype, non_blocking);
    if (inv_freq_.defined()) inv_freq_ = inv_freq_.to(device);
  }
  void to(torch::Dtype dtype, bool non_blocking = false) override { RewardModel::to(dtype, non_blocking); }
  void to(torch::Device device, bool non_blocking = false) override {
    RewardModel::to(device, non_blocking);
    if (inv_freq_.defined()) inv_freq_ = inv_freq_.to(device);
  }

  std::shared_ptr<NeoxModelImpl> gpt_neox;
  std::shared_ptr<RewardHeadImpl> score_head;

 private:
  at::Tensor inv_freq_;  // (rotary_ndims / 2) fp32; undefined without rotary
};

std::shared_ptr<RewardModel> build(const ModelConfig& config, const LoadOptions& options) {
  const NeoxSpec spec = read_spec(config);
  if (!options.head) throw Error("internal: the GPT-NeoX factory needs a head");
  auto tensor_options = at::TensorOptions().dtype(options.dtype).device(options.device);
  return std::make_shared<GptNeoxRewardModel>(config, spec, *options.head,
                                              options.pooling.value_or(Pooling::kRightmostNonPad), tensor_options);
}

std::shared_ptr<RewardModel> create(const ModelConfig& config, const LoadOptions& options) {
  return build(config, options);
}

// OpenAssistant's GPTNeoXRewardModel: its config's "pooling" ("last", the
// default, or "mean") says how the head reads the hidden states.
std::shared_ptr<RewardModel> create_oa(const ModelConfig& config, const LoadOptions& options) {
  const std::string pooling = fc::string(config.raw, "pooling", "last");
  if (pooling != "last") {
    fc::fail("pooling", "is '" + pooling +
                            "': openrm supports OpenAssistant's GPTNeoXRewardModel with pooling 'last' only");
  }
  return build(config, options);
}

const std::vector<std::string> kConfigFields = {
    "vocab_size",        "hidden_size",      "num_hidden_layers",     "num_attention_heads",
    "intermediate_size", "hidden_act",       "layer_norm_eps",        "rotary_pct",
    "rotary_emb_base",   "rope_parameters",  "use_parallel_residual", "attention_bias",
    "pad_token_id",      "num_labels"};

}  // namespace

// Not in registry.h's list yet; declared here for the registry to pick up.
ArchitectureEntry gpt_neox_reward_model_architecture();

ArchitectureEntry gpt_neox_architecture() {
  ArchitectureEntry entry;
  entry.architecture = "GPTNeoXForSequenceClassification";
  entry.model_type = "gpt_neox";
  entry.create = &create;
  entry.config_fields = kConfigFields;
  // "out_proj": OpenAssistant's GPTNeoXRewardModel (with a bias), for a
  // config that resolves here by model_type "gpt_neox".
  entry.head_candidates = {"score", "out_proj", "v_head.summary", "v_head"};
  entry.default_head.kind = HeadKind::kLinear;
  entry.default_head.name = "score";
  entry.default_head.bias = false;
  entry.lm_head = "embed_out";  // GPTNeoXForCausalLM
  entry.backbone = "gpt_neox";
  // Buffers older checkpoints saved (transformers ignores them on load).
  entry.ignorable = {"rotary_emb.inv_freq", ".attention.bias", ".attention.masked_bias"};
  entry.default_pooling = Pooling::kRightmostNonPad;
  return entry;
}

ArchitectureEntry gpt_neox_reward_model_architecture() {
  ArchitectureEntry entry;
  entry.architecture = "GPTNeoXRewardModel";
  entry.model_type = "gpt_neox_reward_model";
  entry.create = &create_oa;
  entry.config_fields = kConfigFields;
  entry.config_fields.push_back("pooling");
  entry.head_candidates = {"out_proj", "score"};
  entry.default_head.kind = HeadKind::kLinear;
  entry.default_head.name = "out_proj";
  entry.default_head.bias = true;
  entry.lm_head = "embed_out";
  entry.backbone = "gpt_neox";
  entry.ignorable = {"rotary_emb.inv_freq", ".attention.bias", ".attention.masked_bias"};
  // OA pools hidden_states at attention_mask.cumsum(1).argmax(1): each
  // sequence's last real token.
  entry.default_pooling = Pooling::kLastToken;
  return entry;
}

}  // namespace openrm
