#include "models/decoder.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>
#include <utility>
#include <vector>
#include <string>

#include "compat/torch_compat.h"
#include "models/rope.h"
#include "openrm/error.h"

namespace openrm {

std::vector<std::int64_t> layer_windows_from_config(const ModelConfig& config, std::int64_t window,
                                                    bool (*default_sliding)(const ModelConfig&,
                                                                            std::int64_t layer)) {
  const auto n = config.num_hidden_layers;
  std::vector<std::int64_t> windows(static_cast<std::size_t>(n), 0);
  if (window <= 0) return windows;
  if (!config.layer_types.empty() && static_cast<std::int64_t>(config.layer_types.size()) != n) {
    throw Error("config: layer_types has " + std::to_string(config.layer_types.size()) +
                " entries but num_hidden_layers is " + std::to_string(n));
  }
  for (std::int64_t i = 0; i < n; ++i) {
    bool sliding;
    if (!config.layer_types.empty()) {
      const auto& type = config.layer_types[static_cast<std::size_t>(i)];
      if (type != "sliding_attention" && type != "full_attention") {
        throw Error("config: layer_types[" + std::to_string(i) + "] is '" + type +
                    "' (expected full_attention or sliding_attention)");
      }
      sliding = type == "sliding_attention";
    } else {
      sliding = default_sliding(config, i);
    }
    windows[static_cast<std::size_t>(i)] = sliding ? window : 0;
  }
  return windows;
}

LinearImpl::LinearImpl(std::int64_t in, std::int64_t out, bool has_bias,
                       const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({out, in}, options));
  if (has_bias) bias = register_parameter("bias", at::empty({out}, options));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps_, const at::TensorOptions& options)
    : eps(eps_) {
  weight = register_parameter("weight", at::empty({dim}, options));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  auto x32 = x.to(at::kFloat);
  auto variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x32 * at::rsqrt(variance + eps)).to(x.scalar_type());
}

namespace {

using Linear = std::shared_ptr<LinearImpl>;
using RMSNorm = std::shared_ptr<RMSNormImpl>;

// How the packed tokens of a batch map onto a padded (B, L) grid for
// attention, plus the masks each window size needs. Built once per forward
// and shared by all layers.
struct AttentionLayout {
  std::int64_t batch = 0, max_len = 0;
  at::Tensor pad_index;  // (T) row of each packed token in the (B * L) grid
  bool identity = false;  // one sequence: the packed rows already are the grid
  at::Tensor key_valid;   // (B, L) bool, key slot holds a real token
  std::map<std::int64_t, at::Tensor> masks;  // window -> (B, 1, L, L) bool
  at::Tensor cu_seqlens;                     // (B+1) int64
  std::vector<std::int64_t> lengths;         // (B) on the host
  std::vector<std::int64_t> starts;          // (B) first packed row of each sequence, on the host
  std::vector<std::int64_t> parents;         // PackedBatch::parents (empty: none shared)
  // (len, offset, window) -> (1, 1, len, offset + len)
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, at::Tensor> causal_masks;
  at::Tensor cu_seqlens32;                   // (B+1) int32, made on first use

  const at::Tensor& cu_seqlens_int32() {
    if (!cu_seqlens32.defined()) cu_seqlens32 = cu_seqlens.to(at::kInt);
    return cu_seqlens32;
  }

  bool shared() const { return !parents.empty(); }
  std::int64_t parent(std::size_t b) const { return parents.empty() ? -1 : parents[b]; }

  // (len, offset + len) bool on `options`' device for queries at positions
  // offset..offset+len-1 over keys at positions 0..offset+len-1: query i may
  // attend key j when j <= i and, with a window, i - j < window.
  static at::Tensor causal(std::int64_t len, std::int64_t window, const at::TensorOptions& options,
                           std::int64_t offset = 0) {
    auto q = at::arange(offset, offset + len, options.dtype(at::kLong)).unsqueeze(1);
    auto k = at::arange(offset + len, options.dtype(at::kLong)).unsqueeze(0);
    auto allowed = k.le(q);
    if (window > 0) allowed = allowed.logical_and((q - k).lt(window));
    return allowed;
  }

  // The padded grid's (B, 1, L, L) mask: causal, windowed, real keys only.
  const at::Tensor& mask(std::int64_t window) {
    auto it = masks.find(window);
    if (it != masks.end()) return it->second;
    auto m = causal(max_len, window, key_valid.options()).unsqueeze(0).logical_and(key_valid.unsqueeze(1)).unsqueeze(1);
    return masks.emplace(window, m).first->second;
  }

  // The (1, 1, len, offset + len) mask of one unpadded sequence of `len`
  // tokens continuing `offset` shared ones.
  const at::Tensor& causal_mask(std::int64_t len, std::int64_t window, std::int64_t offset = 0) {
    auto key = std::make_tuple(len, offset, window);
    auto it = causal_masks.find(key);
    if (it != causal_masks.end()) return it->second;
    auto mask = causal(len, window, cu_seqlens.options(), offset).view({1, 1, len, offset + len});
    return causal_masks.emplace(key, mask).first->second;
  }

  // (T, F) packed rows -> (B, L, F) grid, zeros in the padding.
  at::Tensor to_grid(const at::Tensor& packed) const {
    const auto features = packed.size(-1);
    if (identity) return packed.reshape({1, max_len, features});
    auto grid = at::zeros({batch * max_len, features}, packed.options());
    return grid.index_copy(0, pad_index, packed).reshape({batch, max_len, features});
  }

  // (B, L, F) grid -> (T, F) packed rows.
  at::Tensor to_packed(const at::Tensor& grid) const {
    auto rows = grid.reshape({batch * max_len, grid.size(-1)});
    return identity ? rows : rows.index_select(0, pad_index);
  }
};

AttentionLayout make_layout(const PackedBatch& batch) {
  AttentionLayout layout;
  layout.batch = batch.num_sequences();
  layout.max_len = batch.max_seqlen;
  const auto& cu = batch.cu_seqlens;
  layout.identity = layout.batch == 1;
  layout.cu_seqlens = cu;
  layout.lengths = batch.lengths;
  layout.parents = batch.parents;
  layout.starts.reserve(batch.lengths.size());
  std::int64_t row = 0;
  for (const auto len : batch.lengths) {
    layout.starts.push_back(row);
    row += len;
  }
  auto lengths = at::diff(cu);
  if (!layout.identity) {
    layout.pad_index = batch.sequence_index() * layout.max_len + batch.position_ids;
  }
  layout.key_valid =
      at::arange(layout.max_len, cu.options()).unsqueeze(0).lt(lengths.unsqueeze(1));
  return layout;
}

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& c, const DecoderSpec& spec, std::int64_t window,
                const at::TensorOptions& options)
      : heads_(c.num_attention_heads),
        kv_heads_(c.num_key_value_heads),
        head_dim_(c.head_dim),
        window_(window),
        scale_(1.0 / std::sqrt(static_cast<double>(c.head_dim))) {
    const auto H = c.hidden_size;
    q_proj = register_module("q_proj", std::make_shared<LinearImpl>(H, heads_ * head_dim_,
                                                                     spec.qkv_bias, options));
    k_proj = register_module("k_proj", std::make_shared<LinearImpl>(H, kv_heads_ * head_dim_,
                                                                     spec.qkv_bias, options));
    v_proj = register_module("v_proj", std::make_shared<LinearImpl>(H, kv_heads_ * head_dim_,
                                                                     spec.qkv_bias, options));
    o_proj = register_module("o_proj", std::make_shared<LinearImpl>(heads_ * head_dim_, H,
                                                                     spec.o_bias, options));
    if (spec.qk_norm) {
      q_norm = register_module("q_norm",
                               std::make_shared<RMSNormImpl>(head_dim_, c.rms_norm_eps, options));
      k_norm = register_module("k_norm",
                               std::make_shared<RMSNormImpl>(head_dim_, c.rms_norm_eps, options));
    }
  }

  // x: (T, H) -> (T, H)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     AttentionLayout& layout) {
    const auto T = x.size(0);
    auto q = q_proj->forward(x).view({T, heads_, head_dim_});
    auto k = k_proj->forward(x).view({T, kv_heads_, head_dim_});
    auto v = v_proj->forward(x);  // (T, kv_heads * head_dim)
    if (q_norm) {
      q = q_norm->forward(q);
      k = k_norm->forward(k);
    }
    q = apply_rope(q, cos, sin).reshape({T, heads_ * head_dim_});
    k = apply_rope(k, cos, sin).reshape({T, kv_heads_ * head_dim_});

    if (!torch::GradMode::is_enabled() && !layout.shared()) {
      // Inference on CUDA (LibTorch >= 2.5): padding-free flash attention on
      // the packed rows, no grid and no mask.
      auto q3 = q.view({T, heads_, head_dim_});
      if (compat::varlen_attention_supported(q3)) {
        auto out = compat::varlen_attention(q3, k.view({T, kv_heads_, head_dim_}), v.view({T, kv_heads_, head_dim_}),
                                            layout.cu_seqlens_int32(), layout.max_len, scale_, window_);
        return o_proj->forward(out.reshape({T, heads_ * head_dim_}).to(x.scalar_type()));
      }
    }
    if (!x.is_cuda() || layout.shared()) {
      // CPU: attention one sequence at a time on its own packed rows, so no
      // work and no memory go to padding, and a sequence's attention is the
      // same computation whatever batch it is in. The (heads, len, len)
      // scores of one sequence stay small enough for the caches; a padded
      // grid for a whole batch can reach hundreds of MB per layer.
      // split_with_sizes, not one narrow per sequence: in backward it
      // concatenates the gradients once, where each narrow would add its own
      // full-size zero gradient. A sequence that continues a shared one
      // attends to that one's keys first (PackedBatch::parents).
      const auto qs = q.view({T, heads_, head_dim_}).split_with_sizes(layout.lengths, 0);
      const auto ks = k.view({T, kv_heads_, head_dim_}).split_with_sizes(layout.lengths, 0);
      const auto vs = v.view({T, kv_heads_, head_dim_}).split_with_sizes(layout.lengths, 0);
      std::vector<at::Tensor> outs;
      outs.reserve(layout.lengths.size());
      for (std::size_t b = 0; b < layout.lengths.size(); ++b) {
        const std::int64_t len = layout.lengths[b];
        auto heads_of = [](const at::Tensor& t) { return t.transpose(0, 1).unsqueeze(0); };  // (1, n, len, D)
        const std::int64_t parent = layout.parent(b);
        at::Tensor o;
        if (parent < 0) {
          o = compat::masked_attention(heads_of(qs[b]), heads_of(ks[b]), heads_of(vs[b]),
                                       layout.causal_mask(len, window_), scale_);  // (1, heads, len, D)
        } else {
          const auto p = static_cast<std::size_t>(parent);
          o = compat::masked_attention(heads_of(qs[b]), heads_of(at::cat({ks[p], ks[b]}, 0)),
                                       heads_of(at::cat({vs[p], vs[b]}, 0)),
                                       layout.causal_mask(len, window_, layout.lengths[p]), scale_);
        }
        outs.push_back(o[0].transpose(0, 1).reshape({len, heads_ * head_dim_}));
      }
      return o_proj->forward(outs.size() == 1 ? outs[0] : at::cat(outs, 0));
    }
    const auto B = layout.batch, L = layout.max_len;
    auto to_heads = [&](const at::Tensor& packed, std::int64_t n) {
      return layout.to_grid(packed).view({B, L, n, head_dim_}).transpose(1, 2);  // (B, n, L, D)
    };
    auto out = compat::masked_attention(to_heads(q, heads_), to_heads(k, kv_heads_),
                                        to_heads(v, kv_heads_), layout.mask(window_), scale_);
    out = layout.to_packed(out.transpose(1, 2).reshape({B, L, heads_ * head_dim_}));
    return o_proj->forward(out);
  }

  // Attention output (R, H) at packed rows `rows` only (inference on CPU),
  // from x: (T, H), the normalised input of every row (all are keys).
  // `segments` holds each row's sequence.
  at::Tensor forward_at(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        const AttentionLayout& layout, const at::Tensor& rows,
                        const std::vector<std::int64_t>& row_list, const std::vector<std::size_t>& segments) {
    const auto T = x.size(0);
    const auto R = rows.size(0);
    auto k = k_proj->forward(x).view({T, kv_heads_, head_dim_});
    auto v = v_proj->forward(x).view({T, kv_heads_, head_dim_});
    auto q = q_proj->forward(x.index_select(0, rows)).view({R, heads_, head_dim_});
    if (q_norm) {
      q = q_norm->forward(q);
      k = k_norm->forward(k);
    }
    q = apply_rope(q, cos.index_select(0, rows), sin.index_select(0, rows));
    k = apply_rope(k, cos, sin);
    std::vector<at::Tensor> outs;
    outs.reserve(static_cast<std::size_t>(R));
    for (std::int64_t r = 0; r < R; ++r) {
      // One query over the keys it may see: no mask. In positions, the query
      // is at `pos`, and the keys it sees are [first, pos]; a shared parent
      // holds positions [0, p), the row's own sequence [p, ...).
      const std::size_t b = segments[static_cast<std::size_t>(r)];
      const std::int64_t parent = layout.parent(b);
      const std::int64_t p = parent >= 0 ? layout.lengths[static_cast<std::size_t>(parent)] : 0;
      const std::int64_t local = row_list[static_cast<std::size_t>(r)] - layout.starts[b];
      const std::int64_t pos = p + local;
      const std::int64_t first = window_ > 0 ? std::max<std::int64_t>(0, pos - window_ + 1) : 0;
      std::vector<at::Tensor> key_parts, value_parts;
      if (first < p) {
        const auto start = layout.starts[static_cast<std::size_t>(parent)] + first;
        key_parts.push_back(k.narrow(0, start, p - first));
        value_parts.push_back(v.narrow(0, start, p - first));
      }
      const std::int64_t own_first = std::max<std::int64_t>(first - p, 0);
      key_parts.push_back(k.narrow(0, layout.starts[b] + own_first, local - own_first + 1));
      value_parts.push_back(v.narrow(0, layout.starts[b] + own_first, local - own_first + 1));
      auto keys = key_parts.size() == 1 ? key_parts[0] : at::cat(key_parts, 0);
      auto values = value_parts.size() == 1 ? value_parts[0] : at::cat(value_parts, 0);
      auto heads_of = [](const at::Tensor& t) { return t.transpose(0, 1).unsqueeze(0); };  // (1, n, len, D)
      auto o = compat::masked_attention(heads_of(q.narrow(0, r, 1)), heads_of(keys), heads_of(values), at::Tensor(),
                                        scale_);  // (1, heads, 1, D)
      outs.push_back(o[0].transpose(0, 1).reshape({1, heads_ * head_dim_}));
    }
    return o_proj->forward(at::cat(outs, 0));
  }

  Linear q_proj, k_proj, v_proj, o_proj;
  RMSNorm q_norm, k_norm;

 private:
  std::int64_t heads_, kv_heads_, head_dim_, window_;
  double scale_;
};

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(std::int64_t vocab, std::int64_t dim, const at::TensorOptions& options) {
    weight = register_parameter("weight", at::empty({vocab, dim}, options));
  }
  at::Tensor weight;  // (vocab, H)
};

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const ModelConfig& c, bool bias, const at::TensorOptions& options) {
    gate_proj = register_module(
        "gate_proj", std::make_shared<LinearImpl>(c.hidden_size, c.intermediate_size, bias, options));
    up_proj = register_module(
        "up_proj", std::make_shared<LinearImpl>(c.hidden_size, c.intermediate_size, bias, options));
    down_proj = register_module(
        "down_proj", std::make_shared<LinearImpl>(c.intermediate_size, c.hidden_size, bias, options));
  }
  at::Tensor forward(const at::Tensor& x) {
    return down_proj->forward(at::silu(gate_proj->forward(x)) * up_proj->forward(x));
  }
  Linear gate_proj, up_proj, down_proj;
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& c, const DecoderSpec& spec, std::int64_t window,
                   const at::TensorOptions& options) {
    self_attn = register_module("self_attn",
                                std::make_shared<AttentionImpl>(c, spec, window, options));
    mlp = register_module("mlp", std::make_shared<MlpImpl>(c, spec.mlp_bias, options));
    input_layernorm = register_module(
        "input_layernorm", std::make_shared<RMSNormImpl>(c.hidden_size, c.rms_norm_eps, options));
    post_attention_layernorm = register_module(
        "post_attention_layernorm",
        std::make_shared<RMSNormImpl>(c.hidden_size, c.rms_norm_eps, options));
  }
  at::Tensor forward(at::Tensor x, const at::Tensor& cos, const at::Tensor& sin,
                     AttentionLayout& layout) {
    x = x + self_attn->forward(input_layernorm->forward(x), cos, sin, layout);
    return x + mlp->forward(post_attention_layernorm->forward(x));
  }
  // The layer's output (R, H) at packed rows `rows` only: every row is still
  // a key, but queries, the output projection and the MLP run on R rows.
  at::Tensor forward_at(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        const AttentionLayout& layout, const at::Tensor& rows,
                        const std::vector<std::int64_t>& row_list, const std::vector<std::size_t>& segments) {
    auto y = x.index_select(0, rows) +
             self_attn->forward_at(input_layernorm->forward(x), cos, sin, layout, rows, row_list, segments);
    return y + mlp->forward(post_attention_layernorm->forward(y));
  }
  std::shared_ptr<AttentionImpl> self_attn;
  std::shared_ptr<MlpImpl> mlp;
  RMSNorm input_layernorm, post_attention_layernorm;
};

// The backbone, registered as "model" so parameter names match the checkpoint.
class DecoderModelImpl : public torch::nn::Module {
 public:
  DecoderModelImpl(const ModelConfig& c, const DecoderSpec& spec, const at::TensorOptions& options) {
    embed_tokens = register_module("embed_tokens",
                                   std::make_shared<EmbeddingImpl>(c.vocab_size, c.hidden_size, options));
    layers = register_module("layers", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
      layers->push_back(std::make_shared<DecoderLayerImpl>(
          c, spec, spec.layer_windows[static_cast<std::size_t>(i)], options));
      typed_layers.push_back(layers->ptr<DecoderLayerImpl>(static_cast<std::size_t>(i)));
    }
    norm = register_module("norm", std::make_shared<RMSNormImpl>(c.hidden_size, c.rms_norm_eps,
                                                                 options));
  }

  std::shared_ptr<EmbeddingImpl> embed_tokens;
  torch::nn::ModuleList layers;
  std::vector<std::shared_ptr<DecoderLayerImpl>> typed_layers;
  RMSNorm norm;
};

// Gradient checkpointing: a layer's forward runs without keeping its
// activations; backward runs it again with autograd on and backpropagates
// through the recomputation (what torch.utils.checkpoint does, reentrant form).
// Recomputing gives bit-identical values on the same device, so gradients are
// exactly those of the plain path, provided the recompute runs under the
// autocast settings the forward ran under (recorded here, re-applied there).
struct LayerCall : torch::CustomClassHolder {
  DecoderLayerImpl* layer = nullptr;
  compat::AutocastState autocast;
  at::Tensor cos, sin;
  std::shared_ptr<AttentionLayout> layout;  // outlives hidden_states() until backward
};

class CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            c10::intrusive_ptr<LayerCall> call) {
    ctx->save_for_backward({x});
    auto out = call->layer->forward(x, call->cos, call->sin, *call->layout);
    ctx->saved_data["call"] = c10::IValue::make_capsule(std::move(call));
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto call = c10::static_intrusive_pointer_cast<LayerCall>(ctx->saved_data["call"].toCapsule());
    at::Tensor y;
    {
      torch::AutoGradMode enable(true);
      compat::AutocastScope autocast(call->autocast);
      y = call->layer->forward(x, call->cos, call->sin, *call->layout);
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), at::Tensor()};
  }
};

class DecoderRewardModel : public RewardModel {
 public:
  DecoderRewardModel(const ModelConfig& c, const DecoderSpec& spec, Pooling pooling,
                     const at::TensorOptions& options)
      : RewardModel(c, pooling) {
    model = register_module("model", std::make_shared<DecoderModelImpl>(c, spec, options));
    score_head = register_module(
        "score", std::make_shared<LinearImpl>(c.hidden_size, c.num_labels, false, options));
    inv_freq_ = rope_inverse_frequencies(c.head_dim, c.rope_theta, c.rope_scaling)
                    .to(options.device());
  }

  at::Tensor hidden_states(const PackedBatch& batch) override {
    auto state = run_layers(batch, model->typed_layers.size());
    return model->norm->forward(state.x);
  }

  // On CPU the last layer runs its queries, output projection and MLP on the
  // pooled rows only: nothing else of its output is read. (With gradient
  // checkpointing the layers before it are checkpointed; it is not, its
  // activations being those of the pooled rows plus every row's keys and
  // values.)
  at::Tensor pooled_hidden_states(const PackedBatch& batch, const at::Tensor& rows) override {
    const std::size_t n = model->typed_layers.size();
    if (batch.input_ids.is_cuda() || n == 0) {
      return RewardModel::pooled_hidden_states(batch, rows);
    }
    auto state = run_layers(batch, n - 1);
    const auto rows_host = rows.to(at::kCPU, at::kLong).contiguous();
    const auto* r = rows_host.data_ptr<std::int64_t>();
    std::vector<std::int64_t> row_list(r, r + rows_host.numel());
    std::vector<std::size_t> segments;
    segments.reserve(row_list.size());
    const auto& starts = state.layout->starts;
    for (const auto row : row_list) {
      if (row < 0 || row >= batch.num_tokens()) {
        throw Error("pooled row " + std::to_string(row) + " is outside the batch's " +
                    std::to_string(batch.num_tokens()) + " tokens");
      }
      segments.push_back(static_cast<std::size_t>(std::upper_bound(starts.begin(), starts.end(), row) -
                                                  starts.begin() - 1));
    }
    auto x = model->typed_layers[n - 1]->forward_at(state.x, state.cos, state.sin, *state.layout, rows, row_list,
                                                    segments);
    return model->norm->forward(x);
  }

  at::Tensor head(const at::Tensor& pooled) override { return score_head->forward(pooled); }

 private:
  struct LayerState {
    at::Tensor x, cos, sin;
    std::shared_ptr<AttentionLayout> layout;
  };

  bool checkpointing() const { return gradient_checkpointing() && is_training() && torch::GradMode::is_enabled(); }

  // Embeds the batch and runs the first `count` layers.
  LayerState run_layers(const PackedBatch& batch, std::size_t count) {
    const auto vocab = config().vocab_size;
    // A bad id would otherwise be an out-of-range read inside the embedding.
    // CUDA batches are checked by RewardModel::forward on the host before the
    // copy, which spares a device synchronisation per batch.
    if (!batch.input_ids.is_cuda()) check_token_ids(batch.input_ids, vocab);
    auto layout = std::make_shared<AttentionLayout>(make_layout(batch));
    auto [cos, sin] = rope_cos_sin(inv_freq_, batch.position_ids, dtype());
    auto x = model->embed_tokens->weight.index_select(0, batch.input_ids);  // (T, H)
    const bool checkpoint = checkpointing();
    for (std::size_t i = 0; i < count; ++i) {
      auto& layer = model->typed_layers[i];
      if (checkpoint) {
        auto call = c10::make_intrusive<LayerCall>();
        call->layer = layer.get();
        call->autocast = compat::current_autocast();
        call->cos = cos;
        call->sin = sin;
        call->layout = layout;
        x = CheckpointedLayer::apply(x, std::move(call));
      } else {
        x = layer->forward(x, cos, sin, *layout);
      }
    }
    return LayerState{x, cos, sin, layout};
  }

 public:

  // Moving the module moves the RoPE frequencies with it; they stay fp32
  // whatever dtype the weights take.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override {
    RewardModel::to(device, dtype, non_blocking);
    inv_freq_ = inv_freq_.to(device);
  }
  void to(torch::Dtype dtype, bool non_blocking = false) override { RewardModel::to(dtype, non_blocking); }
  void to(torch::Device device, bool non_blocking = false) override {
    RewardModel::to(device, non_blocking);
    inv_freq_ = inv_freq_.to(device);
  }

  std::shared_ptr<DecoderModelImpl> model;
  Linear score_head;

 private:
  at::Tensor inv_freq_;  // (head_dim / 2) fp32, derived from the config, not saved
};

}  // namespace

namespace {

// Refuses, before anything is allocated, a config whose weights alone would
// not fit in this machine's memory (on CPU): a corrupt or mistyped size
// otherwise ends in an allocation failure, or in the kernel killing the
// process once the pages are touched.
void check_weights_fit_in_memory(const ModelConfig& c, const LoadOptions& options) {
  if (options.device.is_cuda()) return;
  const double H = static_cast<double>(c.hidden_size), q = static_cast<double>(c.num_attention_heads * c.head_dim),
               kv = static_cast<double>(c.num_key_value_heads * c.head_dim),
               I = static_cast<double>(c.intermediate_size);
  const double per_layer = H * q * 2 + 2 * H * kv + 3 * H * I + 2 * H;
  const double params = static_cast<double>(c.vocab_size) * H + static_cast<double>(c.num_hidden_layers) * per_layer +
                        H * (1 + static_cast<double>(c.num_labels));
  const double bytes = params * static_cast<double>(c10::elementSize(options.dtype));
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return;
  const double memory = static_cast<double>(pages) * static_cast<double>(page);
  if (bytes <= memory) return;
  char text[320];
  std::snprintf(text, sizeof text,
                "config: the model needs about %.1f GB for its weights alone (%.3g parameters in %s: vocab_size %lld, "
                "hidden_size %lld, intermediate_size %lld, num_hidden_layers %lld), more than this machine's %.1f GB "
                "of memory",
                bytes / 1e9, params, c10::toString(options.dtype), static_cast<long long>(c.vocab_size),
                static_cast<long long>(c.hidden_size), static_cast<long long>(c.intermediate_size),
                static_cast<long long>(c.num_hidden_layers), memory / 1e9);
  throw Error(text);
}

}  // namespace

std::shared_ptr<RewardModel> create_decoder_reward_model(const ModelConfig& config,
                                                         const DecoderSpec& spec,
                                                         const LoadOptions& options) {
  validate_decoder_config(config, "config");
  if (config.hidden_act != "silu" && config.hidden_act != "swish") {
    throw Error("config: hidden_act '" + config.hidden_act +
                "' is not supported (this architecture supports silu)");
  }
  if (static_cast<std::int64_t>(spec.layer_windows.size()) != config.num_hidden_layers) {
    throw Error("internal: layer_windows has the wrong size");
  }
  check_weights_fit_in_memory(config, options);
  auto tensor_options = at::TensorOptions().dtype(options.dtype).device(options.device);
  return std::make_shared<DecoderRewardModel>(
      config, spec, options.pooling.value_or(Pooling::kRightmostNonPad), tensor_options);
}

}  // namespace openrm
