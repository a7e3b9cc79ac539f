// DeBERTa-v2/v3 (DebertaV2ForSequenceClassification, model_type "deberta-v2"),
// computed as transformers' modeling_deberta_v2.py does:
//   embeddings: word (+ absolute positions when position_biased_input)
//     (+ token type 0 when type_vocab_size > 0) (-> embed_proj when
//     embedding_size != hidden_size) -> LayerNorm;
//   encoder layers with disentangled attention: content->content scores plus,
//     with relative_attention, content->position (c2p) and position->content
//     (p2c) scores read through the (log-bucketed) relative position of each
//     query/key pair, all scaled by 1/sqrt(head_dim * (1 + #pos_att_type));
//     the relative embeddings go through encoder.LayerNorm (norm_rel_ebd
//     "layer_norm") and the query/key projections (share_att_key) or their
//     own pos_query_proj/pos_key_proj;
//   the optional convolution after layer 0 (conv_kernel_size > 0, DeBERTa-v2
//     xlarge/xxlarge);
//   the ContextPooler (pooler.dense on the first token, then
//     pooler_hidden_act) and the `classifier` head.
// Attention is bidirectional within each sequence of the packed batch and
// never crosses sequences, which is what transformers' padding mask gives
// for the real tokens of a right-padded batch (relative positions count from
// each sequence's first token there as here).
//
// Token types: a model with type_vocab_size > 0 adds token_type_embeddings
// row 0 to every token, as transformers does without token_type_ids, unless
// set_token_type_separator named the [SEP] id (the pair chat format does):
// then the tokens after each sequence's first [SEP] get type 1, which is what
// tokenizer(q, a) gives [CLS] q [SEP] a [SEP] (a q holding a literal "[SEP]"
// would differ). OpenAssistant's DeBERTa-v3 reward models have
// type_vocab_size 0: no token types at all.
#include <ATen/ATen.h>
#include <torch/nn/modules/container/modulelist.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/blocks.h"
#include "models/heads_impl.h"
#include "models/registry.h"
#include "openrm/error.h"

namespace openrm {

namespace {

using Linear = std::shared_ptr<LinearImpl>;
using LayerNorm = std::shared_ptr<LayerNormImpl>;
using nlohmann::json;

// ---------------------------------------------------------------- config

const char* kSource = "config";

[[noreturn]] void fail_field(const std::string& key, const std::string& expected, const json& got) {
  throw Error(std::string(kSource) + ": field '" + key + "': expected " + expected + ", got " + got.dump());
}

const json* find_field(const ModelConfig& c, const std::string& key) {
  if (!c.raw.is_object()) return nullptr;
  auto it = c.raw.find(key);
  if (it == c.raw.end() || it->is_null()) return nullptr;
  return &*it;
}

std::int64_t int_field(const ModelConfig& c, const std::string& key, std::int64_t fallback) {
  const json* v = find_field(c, key);
  if (!v) return fallback;
  if (v->is_number_integer() || v->is_number_unsigned()) return v->get<std::int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::floor(d) == d && std::isfinite(d)) return static_cast<std::int64_t>(d);
  }
  fail_field(key, "an integer", *v);
}

bool bool_field(const ModelConfig& c, const std::string& key, bool fallback) {
  const json* v = find_field(c, key);
  if (!v) return fallback;
  if (v->is_boolean()) return v->get<bool>();
  fail_field(key, "true or false", *v);
}

double double_field(const ModelConfig& c, const std::string& key, double fallback) {
  const json* v = find_field(c, key);
  if (!v) return fallback;
  if (v->is_number()) return v->get<double>();
  fail_field(key, "a number", *v);
}

std::string string_field(const ModelConfig& c, const std::string& key, const std::string& fallback) {
  const json* v = find_field(c, key);
  if (!v) return fallback;
  if (v->is_string()) return v->get<std::string>();
  fail_field(key, "a string", *v);
}

std::string lower_trimmed(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// "a|b" (old configs) or ["a", "b"], as transformers splits it.
std::vector<std::string> string_list_field(const ModelConfig& c, const std::string& key) {
  const json* v = find_field(c, key);
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {
    const auto s = v->get<std::string>();
    std::size_t start = 0;
    while (true) {
      const auto bar = s.find('|', start);
      out.push_back(lower_trimmed(s.substr(start, bar == std::string::npos ? std::string::npos : bar - start)));
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    return out;
  }
  if (v->is_array()) {
    for (const auto& item : *v) {
      if (!item.is_string()) fail_field(key, "a list of strings or a '|'-separated string", *v);
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  fail_field(key, "a list of strings or a '|'-separated string", *v);
}

std::int64_t positive(const std::string& key, std::int64_t value) {
  if (value <= 0) {
    throw Error(std::string(kSource) + ": field '" + key + "': expected a positive integer, got " +
                std::to_string(value));
  }
  return value;
}

enum class ConvActivation { kTanh, kOther };

// What the DeBERTa-v2 config says, with transformers' defaults, validated.
struct DebertaSpec {
  std::int64_t vocab = 0, hidden = 0, layers = 0, heads = 0, head_dim = 0, intermediate = 0;
  std::int64_t embedding_size = 0, max_positions = 0, type_vocab = 0;
  double eps = 1e-7;
  Activation act = Activation::kGelu, pooler_act = Activation::kGelu;
  bool position_biased_input = true;
  bool relative_attention = false;
  std::int64_t position_buckets = -1, max_relative_positions = -1, span = 0;
  bool c2p = false, p2c = false, share_att_key = false, norm_rel_ebd = false;
  std::int64_t scale_factor = 1;
  // Convolution after layer 0 (conv_kernel_size > 0).
  std::int64_t conv_kernel = 0, conv_groups = 1;
  bool conv_tanh = true;
  Activation conv_act = Activation::kGelu;
};

DebertaSpec read_spec(const ModelConfig& c) {
  DebertaSpec s;
  s.vocab = positive("vocab_size", c.vocab_size);
  s.hidden = positive("hidden_size", c.hidden_size);
  s.layers = positive("num_hidden_layers", c.num_hidden_layers);
  s.heads = positive("num_attention_heads", c.num_attention_heads);
  s.intermediate = positive("intermediate_size", c.intermediate_size);
  if (s.hidden % s.heads != 0) {
    throw Error(std::string(kSource) + ": hidden_size " + std::to_string(s.hidden) +
                " is not a multiple of num_attention_heads " + std::to_string(s.heads));
  }
  s.head_dim = positive("attention_head_size", int_field(c, "attention_head_size", s.hidden / s.heads));
  s.act = parse_activation(string_field(c, "hidden_act", "gelu"));
  s.pooler_act = parse_activation(string_field(c, "pooler_hidden_act", "gelu"));
  s.eps = double_field(c, "layer_norm_eps", 1e-7);
  if (!(s.eps > 0) || !std::isfinite(s.eps)) fail_field("layer_norm_eps", "a positive number", c.raw["layer_norm_eps"]);
  s.max_positions = int_field(c, "max_position_embeddings", 512);
  s.embedding_size = positive("embedding_size", int_field(c, "embedding_size", s.hidden));
  s.type_vocab = int_field(c, "type_vocab_size", 0);
  if (s.type_vocab < 0) fail_field("type_vocab_size", "an integer >= 0", c.raw["type_vocab_size"]);
  s.position_biased_input = bool_field(c, "position_biased_input", true);
  if (s.position_biased_input) positive("max_position_embeddings", s.max_positions);
  const auto pooler_hidden = int_field(c, "pooler_hidden_size", s.hidden);
  if (pooler_hidden != s.hidden) {
    throw Error(std::string(kSource) + ": field 'pooler_hidden_size' is " + std::to_string(pooler_hidden) +
                "; DebertaV2ForSequenceClassification needs it equal to hidden_size " + std::to_string(s.hidden));
  }
  if (int_field(c, "z_steps", 0) > 1) {
    throw Error(std::string(kSource) + ": field 'z_steps' > 1 is not supported");
  }

  for (const auto& raw_type : string_list_field(c, "pos_att_type")) {
    const auto type = lower_trimmed(raw_type);
    if (type == "c2p") {
      s.c2p = true;
    } else if (type == "p2c") {
      s.p2c = true;
    } else if (type != "none" && !type.empty()) {
      throw Error(std::string(kSource) + ": field 'pos_att_type' has '" + raw_type +
                  "', which openrm does not support (DeBERTa-v2 attention knows c2p and p2c)");
    }
  }
  // transformers counts the types even without relative_attention.
  s.scale_factor = 1 + (s.c2p ? 1 : 0) + (s.p2c ? 1 : 0);
  s.relative_attention = bool_field(c, "relative_attention", false);
  s.share_att_key = bool_field(c, "share_att_key", false);
  if (s.relative_attention) {
    s.position_buckets = int_field(c, "position_buckets", -1);
    s.max_relative_positions = int_field(c, "max_relative_positions", -1);
    if (s.max_relative_positions < 1) {
      s.max_relative_positions = positive("max_position_embeddings", s.max_positions);
    }
    s.span = s.position_buckets > 0 ? s.position_buckets : s.max_relative_positions;
    if (s.position_buckets > 0 && s.position_buckets / 2 < 1) {
      throw Error(std::string(kSource) + ": field 'position_buckets' must be at least 2, got " +
                  std::to_string(s.position_buckets));
    }
    if (s.position_buckets > 0 && s.max_relative_positions <= s.position_buckets / 2 + 1) {
      throw Error(std::string(kSource) + ": field 'max_relative_positions' (" +
                  std::to_string(s.max_relative_positions) + ") must exceed position_buckets / 2 + 1 (" +
                  std::to_string(s.position_buckets / 2 + 1) + ") for the log buckets");
    }
  }
  for (const auto& raw_norm : string_list_field(c, "norm_rel_ebd")) {
    const auto norm = lower_trimmed(raw_norm);
    if (norm == "layer_norm") {
      s.norm_rel_ebd = true;
    } else if (norm != "none" && !norm.empty()) {
      throw Error(std::string(kSource) + ": field 'norm_rel_ebd' has '" + raw_norm +
                  "' (expected layer_norm or none)");
    }
  }
  s.conv_kernel = int_field(c, "conv_kernel_size", 0);
  if (s.conv_kernel > 0) {
    if (s.conv_kernel % 2 == 0) {
      throw Error(std::string(kSource) + ": field 'conv_kernel_size' is " + std::to_string(s.conv_kernel) +
                  "; only odd kernel sizes keep the sequence length (transformers fails on even ones)");
    }
    s.conv_groups = positive("conv_groups", int_field(c, "conv_groups", 1));
    if (s.hidden % s.conv_groups != 0) {
      throw Error(std::string(kSource) + ": field 'conv_groups' (" + std::to_string(s.conv_groups) +
                  ") does not divide hidden_size " + std::to_string(s.hidden));
    }
    const auto act = string_field(c, "conv_act", "tanh");
    s.conv_tanh = act == "tanh";
    if (!s.conv_tanh) s.conv_act = parse_activation(act);
  }
  return s;
}

// ---------------------------------------------------------------- relative positions

// transformers' make_log_bucket_position on (L, L) int64 relative positions,
// in the same dtypes (float32 logarithms), so the buckets are identical.
at::Tensor log_bucket_position(const at::Tensor& rel, std::int64_t bucket_size, std::int64_t max_position) {
  auto sign = at::sign(rel);
  const std::int64_t mid = bucket_size / 2;
  auto abs_pos = at::where(rel.lt(mid).logical_and(rel.gt(-mid)), at::scalar_tensor(mid - 1, rel.options()),
                           at::abs(rel));
  auto ratio = abs_pos.to(at::kFloat) / static_cast<float>(mid);
  auto denom = at::log(at::scalar_tensor(static_cast<double>(max_position - 1) / static_cast<double>(mid),
                                         at::TensorOptions().dtype(at::kFloat)));
  auto log_pos = at::ceil(at::log(ratio) / denom * static_cast<float>(mid - 1)) + static_cast<float>(mid);
  auto bucket = at::where(abs_pos.le(mid), rel.to(at::kFloat), log_pos * sign.to(at::kFloat));
  return bucket.to(at::kLong);
}

// ---------------------------------------------------------------- modules

class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(const DebertaSpec& s, const at::TensorOptions& o) : s_(s) {
    const auto all = s.heads * s.head_dim;
    query_proj = register_module("query_proj", std::make_shared<LinearImpl>(s.hidden, all, true, o));
    key_proj = register_module("key_proj", std::make_shared<LinearImpl>(s.hidden, all, true, o));
    value_proj = register_module("value_proj", std::make_shared<LinearImpl>(s.hidden, all, true, o));
    if (s.relative_attention && !s.share_att_key) {
      if (s.c2p) pos_key_proj = register_module("pos_key_proj", std::make_shared<LinearImpl>(s.hidden, all, true, o));
      if (s.p2c) {
        pos_query_proj = register_module("pos_query_proj", std::make_shared<LinearImpl>(s.hidden, all, true, o));
      }
    }
  }

  // x: (T, H) packed rows; rel_embeddings: (2 span, H) normalised, or
  // undefined; c2p_index / p2c_index: (L, L) int64 for the longest sequence.
  // Returns (T, heads * head_dim).
  at::Tensor forward(const at::Tensor& x, const AttentionLayout& layout, const at::Tensor& rel_embeddings,
                     const at::Tensor& c2p_index, const at::Tensor& p2c_index) {
    const auto T = x.size(0);
    const auto nh = s_.heads, d = s_.head_dim;
    // (heads, T, d)
    auto heads_first = [&](const at::Tensor& y, std::int64_t rows) {
      return y.view({rows, nh, d}).permute({1, 0, 2});
    };
    auto q = heads_first(query_proj->forward(x), T);
    auto k = heads_first(key_proj->forward(x), T);
    auto v = heads_first(value_proj->forward(x), T);
    // sqrt(head_dim * scale_factor) in float32, then in the model dtype, as
    // transformers' scaled_size_sqrt(...).to(dtype).
    const auto scale = at::sqrt(at::scalar_tensor(static_cast<double>(d), at::TensorOptions().dtype(at::kFloat)) *
                                static_cast<double>(s_.scale_factor))
                           .to(x.options().dtype());
    at::Tensor pos_q, pos_k;  // (heads, 2 span, d)
    if (s_.relative_attention) {
      const auto R = rel_embeddings.size(0);
      if (s_.c2p) pos_k = heads_first((s_.share_att_key ? key_proj : pos_key_proj)->forward(rel_embeddings), R);
      if (s_.p2c) pos_q = heads_first((s_.share_att_key ? query_proj : pos_query_proj)->forward(rel_embeddings), R);
    }
    std::vector<at::Tensor> outs;
    outs.reserve(layout.lengths.size());
    for (std::size_t b = 0; b < layout.lengths.size(); ++b) {
      const auto len = layout.lengths[b], start = layout.starts[b];
      auto qb = q.narrow(1, start, len), kb = k.narrow(1, start, len), vb = v.narrow(1, start, len);
      auto scores = at::bmm(qb, kb.transpose(-1, -2) / scale);  // (heads, len, len)
      if (s_.relative_attention) {
        if (s_.c2p) {
          auto c2p = at::bmm(qb, pos_k.transpose(-1, -2));  // (heads, len, 2 span)
          auto index = c2p_index.narrow(0, 0, len).narrow(1, 0, len).unsqueeze(0).expand({nh, len, len});
          scores = scores + at::gather(c2p, -1, index) / scale;
        }
        if (s_.p2c) {
          auto p2c = at::bmm(kb, pos_q.transpose(-1, -2));  // (heads, len keys, 2 span)
          auto index = p2c_index.narrow(0, 0, len).narrow(1, 0, len).unsqueeze(0).expand({nh, len, len});
          scores = scores + at::gather(p2c, -1, index).transpose(-1, -2) / scale;
        }
      }
      auto probs = at::softmax(scores, -1);
      outs.push_back(at::bmm(probs, vb).permute({1, 0, 2}).reshape({len, nh * d}));
    }
    return outs.size() == 1 ? outs[0] : at::cat(outs, 0);
  }

  Linear query_proj, key_proj, value_proj, pos_key_proj, pos_query_proj;

 private:
  DebertaSpec s_;
};

// dense + LayerNorm(dense(x) + residual): attention.output and output.
class DenseNormImpl : public torch::nn::Module {
 public:
  DenseNormImpl(std::int64_t in, std::int64_t out, double eps, const at::TensorOptions& o) {
    dense = register_module("dense", std::make_shared<LinearImpl>(in, out, true, o));
    LayerNorm = register_module("LayerNorm", std::make_shared<LayerNormImpl>(out, eps, true, o));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual) {
    return LayerNorm->forward(dense->forward(x) + residual);
  }
  Linear dense;
  std::shared_ptr<LayerNormImpl> LayerNorm;
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const DebertaSpec& s, const at::TensorOptions& o) {
    self = register_module("self", std::make_shared<SelfAttentionImpl>(s, o));
    output = register_module("output", std::make_shared<DenseNormImpl>(s.heads * s.head_dim, s.hidden, s.eps, o));
  }
  std::shared_ptr<SelfAttentionImpl> self;
  std::shared_ptr<DenseNormImpl> output;
};

class DenseImpl : public torch::nn::Module {
 public:
  DenseImpl(std::int64_t in, std::int64_t out, const at::TensorOptions& o) {
    dense = register_module("dense", std::make_shared<LinearImpl>(in, out, true, o));
  }
  Linear dense;
};

class LayerImpl : public torch::nn::Module {
 public:
  LayerImpl(const DebertaSpec& s, const at::TensorOptions& o) : act_(s.act) {
    attention = register_module("attention", std::make_shared<AttentionImpl>(s, o));
    intermediate = register_module("intermediate", std::make_shared<DenseImpl>(s.hidden, s.intermediate, o));
    output = register_module("output", std::make_shared<DenseNormImpl>(s.intermediate, s.hidden, s.eps, o));
  }
  at::Tensor forward(const at::Tensor& x, const AttentionLayout& layout, const at::Tensor& rel_embeddings,
                     const at::Tensor& c2p_index, const at::Tensor& p2c_index) {
    auto context = attention->self->forward(x, layout, rel_embeddings, c2p_index, p2c_index);
    auto a = attention->output->forward(context, x);
    auto h = activate(act_, intermediate->dense->forward(a));
    return output->forward(h, a);
  }
  std::shared_ptr<AttentionImpl> attention;
  std::shared_ptr<DenseImpl> intermediate;
  std::shared_ptr<DenseNormImpl> output;

 private:
  Activation act_;
};

// encoder.conv: Conv1d over each sequence (zero padded at its ends, as the
// masked embeddings of a padded batch are), activation, LayerNorm with the
// residual.
class ConvLayerImpl : public torch::nn::Module {
 public:
  ConvLayerImpl(const DebertaSpec& s, const at::TensorOptions& o) : s_(s) {
    conv = register_module("conv", std::make_shared<ConvWeightsImpl>(s, o));
    LayerNorm = register_module("LayerNorm", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, o));
  }
  // x: embeddings (T, H); residual: layer 0's output (T, H).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& residual, const AttentionLayout& layout) {
    std::vector<at::Tensor> outs;
    for (std::size_t b = 0; b < layout.lengths.size(); ++b) {
      auto xb = x.narrow(0, layout.starts[b], layout.lengths[b]).t().unsqueeze(0);  // (1, H, len)
      auto y = at::conv1d(xb, conv->weight, conv->bias, {1}, {(s_.conv_kernel - 1) / 2}, {1}, s_.conv_groups);
      outs.push_back(y.squeeze(0).t());
    }
    auto out = outs.size() == 1 ? outs[0] : at::cat(outs, 0);
    out = s_.conv_tanh ? at::tanh(out) : activate(s_.conv_act, out);
    return LayerNorm->forward(residual + out);
  }

  class ConvWeightsImpl : public torch::nn::Module {
   public:
    ConvWeightsImpl(const DebertaSpec& s, const at::TensorOptions& o) {
      weight = register_parameter("weight", at::empty({s.hidden, s.hidden / s.conv_groups, s.conv_kernel}, o));
      bias = register_parameter("bias", at::empty({s.hidden}, o));
    }
    at::Tensor weight, bias;
  };
  std::shared_ptr<ConvWeightsImpl> conv;
  std::shared_ptr<LayerNormImpl> LayerNorm;

 private:
  DebertaSpec s_;
};

class EmbeddingsImpl : public torch::nn::Module {
 public:
  EmbeddingsImpl(const DebertaSpec& s, const at::TensorOptions& o) {
    word_embeddings = register_module("word_embeddings", std::make_shared<EmbeddingImpl>(s.vocab, s.embedding_size, o));
    if (s.position_biased_input) {
      position_embeddings = register_module("position_embeddings",
                                            std::make_shared<EmbeddingImpl>(s.max_positions, s.embedding_size, o));
    }
    if (s.type_vocab > 0) {
      token_type_embeddings = register_module("token_type_embeddings",
                                              std::make_shared<EmbeddingImpl>(s.type_vocab, s.embedding_size, o));
    }
    if (s.embedding_size != s.hidden) {
      embed_proj = register_module("embed_proj", std::make_shared<LinearImpl>(s.embedding_size, s.hidden, false, o));
    }
    LayerNorm = register_module("LayerNorm", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, o));
  }
  std::shared_ptr<EmbeddingImpl> word_embeddings, position_embeddings, token_type_embeddings;
  Linear embed_proj;
  std::shared_ptr<LayerNormImpl> LayerNorm;
};

class EncoderImpl : public torch::nn::Module {
 public:
  EncoderImpl(const DebertaSpec& s, const at::TensorOptions& o) {
    layer = register_module("layer", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < s.layers; ++i) {
      layer->push_back(std::make_shared<LayerImpl>(s, o));
      layers.push_back(layer->ptr<LayerImpl>(static_cast<std::size_t>(i)));
    }
    if (s.relative_attention) {
      rel_embeddings = register_module("rel_embeddings", std::make_shared<EmbeddingImpl>(s.span * 2, s.hidden, o));
    }
    if (s.norm_rel_ebd) {
      LayerNorm = register_module("LayerNorm", std::make_shared<LayerNormImpl>(s.hidden, s.eps, true, o));
    }
    if (s.conv_kernel > 0) conv = register_module("conv", std::make_shared<ConvLayerImpl>(s, o));
  }
  torch::nn::ModuleList layer;
  std::vector<std::shared_ptr<LayerImpl>> layers;
  std::shared_ptr<EmbeddingImpl> rel_embeddings;
  std::shared_ptr<LayerNormImpl> LayerNorm;
  std::shared_ptr<ConvLayerImpl> conv;
};

class BackboneImpl : public torch::nn::Module {
 public:
  BackboneImpl(const DebertaSpec& s, const at::TensorOptions& o) {
    embeddings = register_module("embeddings", std::make_shared<EmbeddingsImpl>(s, o));
    encoder = register_module("encoder", std::make_shared<EncoderImpl>(s, o));
  }
  std::shared_ptr<EmbeddingsImpl> embeddings;
  std::shared_ptr<EncoderImpl> encoder;
};

class DebertaV2RewardModel : public RewardModel {
 public:
  DebertaV2RewardModel(const ModelConfig& c, const DebertaSpec& s, const HeadSpec& head_spec, Pooling pooling,
                       const at::TensorOptions& o)
      : RewardModel(c, pooling, head_spec), s_(s) {
    deberta = register_module("deberta", std::make_shared<BackboneImpl>(s, o));
    pooler = register_module("pooler", std::make_shared<DenseImpl>(s.hidden, s.hidden, o));
    classifier = std::make_shared<RewardHeadImpl>(head_spec, s.hidden, o);
    register_head(*this, head_spec, classifier);
  }

  bool causal() const override { return false; }
  void set_token_type_separator(std::optional<std::int64_t> id) override { separator_ = id; }

  at::Tensor hidden_states(const PackedBatch& batch) override {
    if (batch.has_shared_prefixes()) {
      throw Error("DebertaV2ForSequenceClassification attends in both directions: batches with shared "
                  "prefixes are not supported");
    }
    if (!batch.input_ids.is_cuda()) check_token_ids(batch.input_ids, s_.vocab);
    const auto layout = AttentionLayout::of(batch);
    const auto& emb = *deberta->embeddings;
    auto x = emb.word_embeddings->forward(batch.input_ids);  // (T, E)
    if (emb.position_embeddings) {
      if (batch.max_seqlen > s_.max_positions) {
        throw Error("a sequence of " + std::to_string(batch.max_seqlen) +
                    " tokens is longer than the model's max_position_embeddings " +
                    std::to_string(s_.max_positions));
      }
      x = x + emb.position_embeddings->forward(batch.position_ids);
    }
    if (emb.token_type_embeddings) x = x + emb.token_type_embeddings->forward(token_types(batch));
    if (emb.embed_proj) x = emb.embed_proj->forward(x);
    x = emb.LayerNorm->forward(x);

    auto& enc = *deberta->encoder;
    at::Tensor rel, c2p_index, p2c_index;
    if (s_.relative_attention) {
      rel = enc.rel_embeddings->weight;
      if (enc.LayerNorm) rel = enc.LayerNorm->forward(rel);
      const auto L = std::max<std::int64_t>(batch.max_seqlen, 1);
      auto ids = at::arange(L, at::TensorOptions().dtype(at::kLong).device(x.device()));
      auto rel_pos = ids.unsqueeze(1) - ids.unsqueeze(0);  // query - key
      if (s_.position_buckets > 0) {
        rel_pos = log_bucket_position(rel_pos, s_.position_buckets, s_.max_relative_positions);
      }
      c2p_index = at::clamp(rel_pos + s_.span, 0, s_.span * 2 - 1);
      p2c_index = at::clamp(-rel_pos + s_.span, 0, s_.span * 2 - 1);
    }
    const auto embeddings = x;
    for (std::size_t i = 0; i < enc.layers.size(); ++i) {
      x = enc.layers[i]->forward(x, layout, rel, c2p_index, p2c_index);
      if (i == 0 && enc.conv) x = enc.conv->forward(embeddings, x, layout);
    }
    return x;
  }

  // ContextPooler (dense on the pooled first token, then pooler_hidden_act)
  // and the classifier.
  at::Tensor head(const at::Tensor& pooled) override {
    return classifier->forward(activate(s_.pooler_act, pooler->dense->forward(pooled)));
  }

  std::shared_ptr<BackboneImpl> deberta;
  std::shared_ptr<DenseImpl> pooler;
  std::shared_ptr<RewardHeadImpl> classifier;

 private:
  // (T) int64: 0, or 1 after the sequence's first separator (see the top).
  at::Tensor token_types(const PackedBatch& batch) const {
    const auto& ids = batch.input_ids;
    if (!separator_ || s_.type_vocab < 2) return at::zeros_like(ids);
    auto is_sep = ids.eq(*separator_).to(at::kLong);
    auto before = is_sep.cumsum(0) - is_sep;  // separators before each token, over the whole batch
    auto starts = batch.cu_seqlens.slice(0, 0, batch.num_sequences());
    auto at_start = before.index_select(0, starts).index_select(0, batch.sequence_index());
    return (before - at_start).gt(0).to(at::kLong);
  }

  DebertaSpec s_;
  std::optional<std::int64_t> separator_;
};

std::shared_ptr<RewardModel> create(const ModelConfig& config, const LoadOptions& options) {
  const auto spec = read_spec(config);
  if (!options.head) throw Error("internal: DebertaV2ForSequenceClassification needs a head");
  if (options.head->kind != HeadKind::kLinear) {
    throw Error("DebertaV2ForSequenceClassification: the head must be a linear `classifier`, got " +
                options.head->describe());
  }
  auto tensor_options = at::TensorOptions().dtype(options.dtype).device(options.device);
  return std::make_shared<DebertaV2RewardModel>(config, spec, *options.head,
                                                options.pooling.value_or(Pooling::kFirstToken), tensor_options);
}

}  // namespace

ArchitectureEntry deberta_v2_architecture() {
  ArchitectureEntry entry;
  entry.architecture = "DebertaV2ForSequenceClassification";
  entry.model_type = "deberta-v2";
  entry.create = &create;
  entry.config_fields = {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                         "intermediate_size", "hidden_act", "layer_norm_eps", "max_position_embeddings",
                         "relative_attention", "position_buckets", "max_relative_positions", "pos_att_type",
                         "share_att_key", "norm_rel_ebd", "position_biased_input", "type_vocab_size",
                         "embedding_size", "pooler_hidden_size", "pooler_hidden_act", "attention_head_size",
                         "conv_kernel_size", "conv_groups", "conv_act", "num_labels"};
  entry.head_candidates = {"classifier"};
  entry.default_head.kind = HeadKind::kLinear;
  entry.default_head.name = "classifier";
  entry.default_head.bias = true;
  entry.causal = false;
  entry.lm_head = "lm_predictions";
  entry.backbone = "deberta";
  // transformers ignores a stored position_embeddings table (old checkpoints
  // keep one with position_biased_input false) and the position_ids buffer.
  entry.ignorable = {"embeddings.position_embeddings", "embeddings.position_ids"};
  entry.default_pooling = Pooling::kFirstToken;
  return entry;
}

}  // namespace openrm
