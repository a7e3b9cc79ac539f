// GPT-2 (GPT2ForSequenceClassification, model_type "gpt2"), computed as
// transformers' modeling_gpt2.py does:
//   transformer.wte(ids) + transformer.wpe(position) (learned absolute
//   positions, 0..len-1 within each packed sequence) -> blocks ->
//   transformer.ln_f -> score;
//   each block: x + attn.c_proj(attention(attn.c_attn(ln_1(x)))), then
//   + mlp.c_proj(act(mlp.c_fc(ln_2(.)))). c_attn, c_proj and c_fc are
//   Conv1D: weight stored (in, out), transposed compared with nn.Linear,
//   computed as addmm(bias, x, weight). c_attn's 3H outputs are q, k, v in
//   that order, each split into heads.
// Attention scale: head_dim^-0.5 when scale_attn_weights (default true), else
// 1; divided by (layer index + 1) with scale_attn_by_inverse_layer_idx.
// reorder_and_upcast_attn computes the attention in fp32 (the same numbers in
// an fp32 model).
// Config names: n_embd, n_layer, n_head, n_inner (null: 4 * n_embd),
// n_positions, activation_function (gelu_new), layer_norm_epsilon; the
// typed ModelConfig fields (hidden_size, num_hidden_layers, ...) are filled
// from them in the config the model reports; raw is kept as it came.
// Left-padded inputs in transformers get positions counted from the row's
// start unless position_ids are passed; openrm always counts from each
// sequence's first token (what position_ids = cumsum(mask) - 1 gives).
#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "models/family_config.h"
#include "models/heads_impl.h"
#include "models/layer_checkpoint.h"
#include "models/registry.h"
#include "openrm/error.h"

namespace openrm {

namespace {

namespace fc = family_config;
using LayerNorm = std::shared_ptr<LayerNormImpl>;

struct Gpt2Spec {
  std::int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, head_dim = 0, inner = 0, positions = 0;
  double eps = 1e-5;
  std::string act_name = "gelu_new";
  Activation act = Activation::kGeluTanh;
  bool scale_attn_weights = true, scale_by_inverse_layer_idx = false, reorder_and_upcast = false;
};

// GPT-2's name for a field, else the generic one transformers maps to it
// (attribute_map: hidden_size -> n_embd, ...).
std::int64_t gpt2_int(const nlohmann::json& raw, const std::string& name, const std::string& alias,
                      std::optional<std::int64_t> fallback) {
  if (fc::find(raw, name)) return fc::positive_int(raw, name);
  if (fc::find(raw, alias)) return fc::positive_int(raw, alias);
  if (fallback) return *fallback;
  fc::fail(name, "is required (a positive integer)");
}

Gpt2Spec read_spec(const ModelConfig& c) {
  const auto& raw = c.raw;
  Gpt2Spec s;
  s.vocab = fc::positive_int(raw, "vocab_size");
  s.hidden = gpt2_int(raw, "n_embd", "hidden_size", std::nullopt);
  s.layers = gpt2_int(raw, "n_layer", "num_hidden_layers", std::nullopt);
  s.heads = gpt2_int(raw, "n_head", "num_attention_heads", std::nullopt);
  s.positions = gpt2_int(raw, "n_positions", "max_position_embeddings", 1024);
  if (s.hidden % s.heads != 0) {
    fc::fail("n_head", std::to_string(s.heads) + " does not divide n_embd " + std::to_string(s.hidden));
  }
  s.head_dim = s.hidden / s.heads;
  s.inner = fc::find(raw, "n_inner") ? fc::positive_int(raw, "n_inner") : 4 * s.hidden;
  if (auto eps = fc::number(raw, "layer_norm_epsilon")) {
    if (!(*eps > 0) || !std::isfinite(*eps)) {
      fc::fail_field("layer_norm_epsilon", "a positive number", raw.at("layer_norm_epsilon"));
    }
    s.eps = *eps;
  }
  s.act_name = fc::string(raw, "activation_function", "gelu_new");
  try {
    s.act = parse_activation(s.act_name);
  } catch (const Error& e) {
    throw Error(std::string("config: field 'activation_function': ") + e.what());
  }
  s.scale_attn_weights = fc::boolean(raw, "scale_attn_weights", true);
  s.scale_by_inverse_layer_idx = fc::boolean(raw, "scale_attn_by_inverse_layer_idx", false);
  s.reorder_and_upcast = fc::boolean(raw, "reorder_and_upcast_attn", false);
  if (fc::boolean(raw, "add_cross_attention", false)) {
    fc::fail("add_cross_attention", "is true: GPT-2 with cross-attention is not supported");
  }
  return s;
}

ModelConfig effective_config(const ModelConfig& c, const Gpt2Spec& s) {
  ModelConfig out = c;
  out.vocab_size = s.vocab;
  out.hidden_size = s.hidden;
  out.intermediate_size = s.inner;
  out.num_hidden_layers = s.layers;
  out.num_attention_heads = s.heads;
  out.num_key_value_heads = s.heads;
  out.head_dim = s.head_dim;
  out.max_position_embeddings = s.positions;
  out.hidden_act = s.act_name;
  return out;
}

// transformers' Conv1D: weight (in, out), bias (out); y = x W + b.
class Conv1DImpl : public torch::nn::Module {
 public:
  Conv1DImpl(std::int64_t in, std::int64_t out, const at::TensorOptions& options) {
    weight = register_parameter("weight", at::empty({in, out}, options));
    bias = register_parameter("bias", at::empty({out}, options));
  }
  at::Tensor forward(const at::Tensor& x) { return at::addmm(bias, x, weight); }  // x (T, in)
  at::Tensor weight, bias;
};
using Conv1D = std::shared_ptr<Conv1DImpl>;

class Gpt2AttentionImpl : public torch::nn::Module {
 public:
  Gpt2AttentionImpl(const Gpt2Spec& s, std::int64_t layer, const at::TensorOptions& options)
      : heads_(s.heads), head_dim_(s.head_dim), hidden_(s.hidden), upcast_(s.reorder_and_upcast) {
    double scale = s.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(s.head_dim)) : 1.0;
    if (s.scale_by_inverse_layer_idx) scale /= static_cast<double>(layer + 1);
    spec_.scale = scale;
    c_attn = register_module("c_attn", std::make_shared<Conv1DImpl>(s.hidden, 3 * s.hidden, options));
    c_proj = register_module("c_proj", std::make_shared<Conv1DImpl>(s.hidden, s.hidden, options));
  }

  at::Tensor forward(const at::Tensor& x, AttentionLayout& layout) {
    const auto T = x.size(0);
    auto qkv = c_attn->forward(x);  // (T, 3H)
    auto q = qkv.narrow(-1, 0, hidden_).reshape({T, heads_, head_dim_});
    auto k = qkv.narrow(-1, hidden_, hidden_).reshape({T, heads_, head_dim_});
    auto v = qkv.narrow(-1, 2 * hidden_, hidden_).reshape({T, heads_, head_dim_});
    at::Tensor out;
    if (upcast_ && x.scalar_type() != at::kFloat) {
      out = causal_self_attention(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), layout, spec_);
    } else {
      out = causal_self_attention(q, k, v, layout, spec_);
    }
    return c_proj->forward(out.to(x.scalar_type()));
  }

  Conv1D c_attn, c_proj;

 private:
  std::int64_t heads_, head_dim_, hidden_;
  bool upcast_;
  AttentionSpec spec_;
};

class Gpt2MlpImpl : public torch::nn::Module {
 public:
  Gpt2MlpImpl(const Gpt2Spec& s, const at::TensorOptions& options) : act_(s.act) {
    c_fc = register_module("c_fc", std::make_shared<Conv1DImpl>(s.hidden, s.inner, options));
    c_proj = register_module("c_proj", std::make_shared<Conv1DImpl>(s.inner, s.hidden, options));
  }
  at::Tensor forward(const at::Tensor& x) { return c_proj->forward(activate(act_, c_fc->forward(x))); }
  Conv1D c_fc, c_proj;

 private:
  Activation act_;
};

class Gpt2BlockImpl : public torch::nn::Module {
 public:
  Gpt2BlockImpl(const Gpt2Spec& s, std::int64_t layer, const at::TensorOptions& options) {
    ln_1 = register_module("ln_1", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, options));
    attn = register_module("attn", std::make_shared<Gpt2AttentionImpl>(s, layer, options));
    ln_2 = register_module("ln_2", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, options));
    mlp = register_module("mlp", std::make_shared<Gpt2MlpImpl>(s, options));
  }
  at::Tensor forward(const at::Tensor& x, AttentionLayout& layout) {
    auto y = attn->forward(ln_1->forward(x), layout) + x;
    return y + mlp->forward(ln_2->forward(y));
  }
  LayerNorm ln_1, ln_2;
  std::shared_ptr<Gpt2AttentionImpl> attn;
  std::shared_ptr<Gpt2MlpImpl> mlp;
};

// The backbone, registered as "transformer".
class Gpt2ModelImpl : public torch::nn::Module {
 public:
  Gpt2ModelImpl(const Gpt2Spec& s, const at::TensorOptions& options) {
    wte = register_module("wte", std::make_shared<EmbeddingImpl>(s.vocab, s.hidden, options));
    wpe = register_module("wpe", std::make_shared<EmbeddingImpl>(s.positions, s.hidden, options));
    h = register_module("h", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < s.layers; ++i) {
      h->push_back(std::make_shared<Gpt2BlockImpl>(s, i, options));
      blocks.push_back(h->ptr<Gpt2BlockImpl>(static_cast<std::size_t>(i)));
    }
    ln_f = register_module("ln_f", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, options));
  }
  std::shared_ptr<EmbeddingImpl> wte, wpe;
  torch::nn::ModuleList h;
  std::vector<std::shared_ptr<Gpt2BlockImpl>> blocks;
  LayerNorm ln_f;
};

class Gpt2RewardModel : public RewardModel {
 public:
  Gpt2RewardModel(const ModelConfig& c, const Gpt2Spec& s, const HeadSpec& head_spec, Pooling pooling,
                  const at::TensorOptions& options)
      : RewardModel(effective_config(c, s), pooling, head_spec), positions_(s.positions) {
    transformer = register_module("transformer", std::make_shared<Gpt2ModelImpl>(s, options));
    score_head = std::make_shared<RewardHeadImpl>(head_spec, s.hidden, options);
    register_head(*this, head_spec, score_head);
  }

  at::Tensor hidden_states(const PackedBatch& batch) override {
    if (!batch.input_ids.is_cuda()) check_token_ids(batch.input_ids, config().vocab_size);
    if (batch.position_ids.numel() > 0) {
      const auto last = batch.position_ids.max().item<std::int64_t>();
      if (last >= positions_) {
        throw Error("a sequence reaches position " + std::to_string(last) + ", past GPT-2's n_positions " +
                    std::to_string(positions_) + " (learned positions 0.." + std::to_string(positions_ - 1) +
                    "); truncate it");
      }
    }
    auto layout = std::make_shared<AttentionLayout>(AttentionLayout::of(batch));
    auto x = transformer->wte->forward(batch.input_ids) + transformer->wpe->forward(batch.position_ids);
    const bool checkpoint = gradient_checkpointing() && is_training() && torch::GradMode::is_enabled();
    for (auto& block : transformer->blocks) {
      if (checkpoint) {
        auto* b = block.get();
        x = checkpointed_layer(x, [b, layout](const at::Tensor& in) { return b->forward(in, *layout); });
      } else {
        x = block->forward(x, *layout);
      }
    }
    return transformer->ln_f->forward(x);
  }

  at::Tensor head(const at::Tensor& pooled) override { return score_head->forward(pooled); }

  std::shared_ptr<Gpt2ModelImpl> transformer;
  std::shared_ptr<RewardHeadImpl> score_head;

 private:
  std::int64_t positions_;
};

std::shared_ptr<RewardModel> create(const ModelConfig& config, const LoadOptions& options) {
  const Gpt2Spec spec = read_spec(config);
  if (!options.head) throw Error("internal: the GPT-2 factory needs a head");
  auto tensor_options = at::TensorOptions().dtype(options.dtype).device(options.device);
  return std::make_shared<Gpt2RewardModel>(config, spec, *options.head,
                                           options.pooling.value_or(Pooling::kRightmostNonPad), tensor_options);
}

}  // namespace

ArchitectureEntry gpt2_architecture() {
  ArchitectureEntry entry;
  entry.architecture = "GPT2ForSequenceClassification";
  entry.model_type = "gpt2";
  entry.create = &create;
  entry.config_fields = {"vocab_size", "n_embd", "n_layer", "n_head", "n_inner", "n_positions",
                         "activation_function", "layer_norm_epsilon", "scale_attn_weights",
                         "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "pad_token_id",
                         "num_labels"};
  entry.head_candidates = {"score", "v_head.summary", "v_head"};
  entry.default_head.kind = HeadKind::kLinear;
  entry.default_head.name = "score";
  entry.default_head.bias = false;
  entry.lm_head = "lm_head";
  entry.backbone = "transformer";
  // The causal-mask buffers older checkpoints saved (h.N.attn.bias,
  // h.N.attn.masked_bias); transformers ignores them on load.
  entry.ignorable = {".attn.bias", ".attn.masked_bias"};
  entry.default_pooling = Pooling::kRightmostNonPad;
  return entry;
}

}  // namespace openrm
