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
#include "models/heads_impl.h"
#include "models/layer_checkpoint.h"
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

namespace {

using Linear = std::shared_ptr<LinearImpl>;
using RMSNorm = std::shared_ptr<RMSNormImpl>;

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& c, const DecoderSpec& spec, std::int64_t window,
                const at::TensorOptions& options)
      : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
    attention_.window = window;
    attention_.scale = spec.attention_scale > 0 ? spec.attention_scale
                                                : 1.0 / std::sqrt(static_cast<double>(c.head_dim));
    attention_.softcap = spec.attention_softcap;
    const auto H = c.hidden_size;
    q_proj = register_module("q_proj", std::make_shared<LinearImpl>(H, heads_ * head_dim_, spec.qkv_bias, options));
    k_proj = register_module("k_proj", std::make_shared<LinearImpl>(H, kv_heads_ * head_dim_, spec.qkv_bias, options));
    v_proj = register_module("v_proj", std::make_shared<LinearImpl>(H, kv_heads_ * head_dim_, spec.qkv_bias, options));
    o_proj = register_module("o_proj", std::make_shared<LinearImpl>(heads_ * head_dim_, H, spec.o_bias, options));
    if (spec.qk_norm) {
      q_norm = register_module("q_norm", std::make_shared<RMSNormImpl>(head_dim_, c.rms_norm_eps, options,
                                                                       spec.norm_style));
      k_norm = register_module("k_norm", std::make_shared<RMSNormImpl>(head_dim_, c.rms_norm_eps, options,
                                                                       spec.norm_style));
    }
  }

  // x: (T, H) -> (T, H)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     AttentionLayout& layout) {
    const auto T = x.size(0);
    auto q = q_proj->forward(x).view({T, heads_, head_dim_});
    auto k = k_proj->forward(x).view({T, kv_heads_, head_dim_});
    auto v = v_proj->forward(x).view({T, kv_heads_, head_dim_});
    if (q_norm) {
      q = q_norm->forward(q);
      k = k_norm->forward(k);
    }
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    auto out = causal_self_attention(q, k, v, layout, attention_);
    return o_proj->forward(out.to(x.scalar_type()));
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
    return o_proj->forward(causal_attention_at_rows(q, k, v, layout, row_list, segments, attention_));
  }

  Linear q_proj, k_proj, v_proj, o_proj;
  RMSNorm q_norm, k_norm;

 private:
  std::int64_t heads_, kv_heads_, head_dim_;
  AttentionSpec attention_;
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& c, const DecoderSpec& spec, std::int64_t window,
                   const at::TensorOptions& options) {
    auto norm = [&] { return std::make_shared<RMSNormImpl>(c.hidden_size, c.rms_norm_eps, options, spec.norm_style); };
    self_attn = register_module("self_attn", std::make_shared<AttentionImpl>(c, spec, window, options));
    mlp = register_module("mlp", std::make_shared<GatedMlpImpl>(c.hidden_size, c.intermediate_size, spec.mlp_bias,
                                                                spec.activation, options));
    input_layernorm = register_module("input_layernorm", norm());
    post_attention_layernorm = register_module("post_attention_layernorm", norm());
    if (spec.sandwich_norms) {
      pre_feedforward_layernorm = register_module("pre_feedforward_layernorm", norm());
      post_feedforward_layernorm = register_module("post_feedforward_layernorm", norm());
    }
  }
  at::Tensor forward(at::Tensor x, const at::Tensor& cos, const at::Tensor& sin,
                     AttentionLayout& layout) {
    auto a = self_attn->forward(input_layernorm->forward(x), cos, sin, layout);
    return finish(x, a);
  }
  // The layer's output (R, H) at packed rows `rows` only: every row is still
  // a key, but queries, the output projection and the MLP run on R rows.
  at::Tensor forward_at(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        const AttentionLayout& layout, const at::Tensor& rows,
                        const std::vector<std::int64_t>& row_list, const std::vector<std::size_t>& segments) {
    auto a = self_attn->forward_at(input_layernorm->forward(x), cos, sin, layout, rows, row_list, segments);
    return finish(x.index_select(0, rows), a);
  }
  std::shared_ptr<AttentionImpl> self_attn;
  std::shared_ptr<GatedMlpImpl> mlp;
  RMSNorm input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm;

 private:
  // The residual adds after attention output `a` for residual stream x.
  at::Tensor finish(const at::Tensor& x, const at::Tensor& a) {
    if (pre_feedforward_layernorm) {
      auto y = x + post_attention_layernorm->forward(a);
      return y + post_feedforward_layernorm->forward(mlp->forward(pre_feedforward_layernorm->forward(y)));
    }
    auto y = x + a;
    return y + mlp->forward(post_attention_layernorm->forward(y));
  }
};

// The backbone, registered as "model" so parameter names match the checkpoint.
class DecoderModelImpl : public torch::nn::Module {
 public:
  DecoderModelImpl(const ModelConfig& c, const DecoderSpec& spec, const at::TensorOptions& options) {
    embed_tokens = register_module(
        "embed_tokens", std::make_shared<EmbeddingImpl>(c.vocab_size, c.hidden_size, options, spec.embed_scale));
    layers = register_module("layers", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
      layers->push_back(std::make_shared<DecoderLayerImpl>(
          c, spec, spec.layer_windows[static_cast<std::size_t>(i)], options));
      typed_layers.push_back(layers->ptr<DecoderLayerImpl>(static_cast<std::size_t>(i)));
    }
    norm = register_module("norm",
                           std::make_shared<RMSNormImpl>(c.hidden_size, c.rms_norm_eps, options, spec.norm_style));
  }

  std::shared_ptr<EmbeddingImpl> embed_tokens;
  torch::nn::ModuleList layers;
  std::vector<std::shared_ptr<DecoderLayerImpl>> typed_layers;
  RMSNorm norm;
};

class DecoderRewardModel : public RewardModel {
 public:
  DecoderRewardModel(const ModelConfig& c, const DecoderSpec& spec, const HeadSpec& head_spec, Pooling pooling,
                     const at::TensorOptions& options)
      : RewardModel(c, pooling, head_spec) {
    model = register_module("model", std::make_shared<DecoderModelImpl>(c, spec, options));
    score_head = std::make_shared<RewardHeadImpl>(head_spec, c.hidden_size, options);
    register_head(*this, head_spec, score_head);
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
    auto layout = std::make_shared<AttentionLayout>(AttentionLayout::of(batch));
    auto [cos, sin] = rope_cos_sin(inv_freq_, batch.position_ids, dtype());
    auto x = model->embed_tokens->forward(batch.input_ids);  // (T, H)
    const bool checkpoint = checkpointing();
    for (std::size_t i = 0; i < count; ++i) {
      auto& layer = model->typed_layers[i];
      if (checkpoint) {
        // Gradient checkpointing (layer_checkpoint.h): recomputing gives
        // bit-identical values on the same device, so gradients are exactly
        // those of the plain path.
        DecoderLayerImpl* raw = layer.get();
        x = checkpointed_layer(x, [raw, cos, sin, layout](const at::Tensor& in) {
          return raw->forward(in, cos, sin, *layout);
        });
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
  std::shared_ptr<RewardHeadImpl> score_head;

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
  if (static_cast<std::int64_t>(spec.layer_windows.size()) != config.num_hidden_layers) {
    throw Error("internal: layer_windows has the wrong size");
  }
  check_weights_fit_in_memory(config, options);
  auto tensor_options = at::TensorOptions().dtype(options.dtype).device(options.device);
  if (!options.head) throw Error("internal: create_decoder_reward_model needs a head");
  return std::make_shared<DecoderRewardModel>(config, spec, *options.head,
                                              options.pooling.value_or(Pooling::kRightmostNonPad), tensor_options);
}

}  // namespace openrm
