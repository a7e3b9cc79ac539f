// The building blocks families are made of (docs/models.md, "Layering").
// Each block owns its parameters under the names Hugging Face checkpoints
// use for it, so a family that registers them under the checkpoint's module
// names ("model.layers.0.self_attn") loads and saves without a name map.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "openrm/models/packed_batch.h"

namespace openrm {

// A bias-optional linear layer with a weight (out, in), left uninitialised.
// enable_lora adds a low-rank adapter, as PEFT's LoRA does: forward becomes
// x W^T + b + (alpha / rank) * dropout(x) A^T B^T, with lora_A.weight (rank,
// in) and lora_B.weight (out, rank) under PEFT's names.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(std::int64_t in, std::int64_t out, bool bias, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  // A fresh adapter: A drawn as PEFT draws it (Kaiming-uniform, a = sqrt(5),
  // from `generator`), B zeros, so the layer's output is unchanged.
  void enable_lora(std::int64_t rank, double alpha, double dropout, at::Generator generator);
  bool has_lora() const { return static_cast<bool>(lora_A); }
  // Folds the adapter into the weight (W += alpha / rank * B A) and removes
  // it: the layer computes the same, as a plain linear layer.
  void merge_lora();
  at::Tensor weight, bias;
  std::shared_ptr<LinearImpl> lora_A, lora_B;
  double lora_scaling = 0.0, lora_dropout = 0.0;
};

// A token embedding table, weight (vocab, dim). `scale` multiplies the
// looked-up rows after rounding to the weights' dtype (Gemma's sqrt(hidden),
// computed in the model dtype as transformers does); 1 leaves them as stored.
class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(std::int64_t vocab, std::int64_t dim, const at::TensorOptions& options, double scale = 1.0);
  at::Tensor forward(const at::Tensor& ids);  // (T) -> (T, dim)
  at::Tensor weight;
  double scale;
};

// RMSNorm, normalised in fp32. The two published variants differ in the
// weight and in where the result is cast back to the input dtype:
//   kLlama:       weight * (x / rms(x)).to(dtype)            (Llama, Qwen, Mistral)
//   kUnitOffset:  ((x / rms(x)) * (1 + weight.float())).to(dtype)  (Gemma, Gemma-2;
//                 the stored weight is an offset from one)
enum class RMSNormStyle { kLlama, kUnitOffset };
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps, const at::TensorOptions& options,
              RMSNormStyle style = RMSNormStyle::kLlama);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
  RMSNormStyle style;
};

// LayerNorm over the last dimension with a weight and, optionally, a bias
// (GPT-NeoX, GPT-2, DeBERTa), computed by at::layer_norm in the input dtype.
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(std::int64_t dim, double eps, bool bias, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;
  double eps;
};

// The activations config.json names (hidden_act / hidden_activation):
// silu/swish; gelu (erf); gelu_new, gelu_pytorch_tanh, gelu_fast (tanh
// approximation); relu. Throws openrm::Error for any other name, listing these.
enum class Activation { kSilu, kGelu, kGeluTanh, kRelu };
Activation parse_activation(const std::string& name);
at::Tensor activate(Activation activation, const at::Tensor& x);

// The gated MLP: down(act(gate(x)) * up(x)), as gate_proj/up_proj/down_proj.
class GatedMlpImpl : public torch::nn::Module {
 public:
  GatedMlpImpl(std::int64_t hidden, std::int64_t intermediate, bool bias, Activation activation,
               const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);
  std::shared_ptr<LinearImpl> gate_proj, up_proj, down_proj;
  Activation activation;
};

// The plain MLP: out(act(in(x))), with the two layers' module names given
// (GPT-NeoX: dense_h_to_4h / dense_4h_to_h; DeBERTa: intermediate.dense /
// output.dense are separate modules, so it builds its own from LinearImpl).
class PlainMlpImpl : public torch::nn::Module {
 public:
  PlainMlpImpl(std::int64_t hidden, std::int64_t intermediate, bool bias, Activation activation,
               const at::TensorOptions& options, const std::string& in_name, const std::string& out_name);
  at::Tensor forward(const at::Tensor& x);
  std::shared_ptr<LinearImpl> in, out;
  Activation activation;
};

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
  // With shared prefixes, for one varlen call: the packed rows of every
  // sequence's keys (its parent's rows, then its own), their (B+1) int32
  // offsets and the longest; made on first use.
  at::Tensor key_rows, key_cu_seqlens32;
  std::int64_t max_key_len = 0;

  static AttentionLayout of(const PackedBatch& batch);

  const at::Tensor& cu_seqlens_int32();
  void build_key_segments(const c10::Device& device);
  bool shared() const { return !parents.empty(); }
  std::int64_t parent(std::size_t b) const { return parents.empty() ? -1 : parents[b]; }

  // (len, offset + len) bool on `options`' device for queries at positions
  // offset..offset+len-1 over keys at positions 0..offset+len-1: query i may
  // attend key j when j <= i and, with a window, i - j < window.
  static at::Tensor causal(std::int64_t len, std::int64_t window, const at::TensorOptions& options,
                           std::int64_t offset = 0);
  // The padded grid's (B, 1, L, L) mask: causal, windowed, real keys only.
  const at::Tensor& mask(std::int64_t window);
  // The (1, 1, len, offset + len) mask of one unpadded sequence of `len`
  // tokens continuing `offset` shared ones.
  const at::Tensor& causal_mask(std::int64_t len, std::int64_t window, std::int64_t offset = 0);
  // (T, F) packed rows -> (B, L, F) grid, zeros in the padding.
  at::Tensor to_grid(const at::Tensor& packed) const;
  // (B, L, F) grid -> (T, F) packed rows.
  at::Tensor to_packed(const at::Tensor& grid) const;
};

// What one attention call computes: softmax(softcap(q k^T * scale) + mask) v.
struct AttentionSpec {
  double scale = 1.0;      // usually head_dim^-0.5; Gemma-2: query_pre_attn_scalar^-0.5
  std::int64_t window = 0;  // 0: full causal; else a sliding window of that many keys
  double softcap = 0.0;     // > 0: Gemma-2's attention logit soft-capping
};

// Causal self-attention over the packed rows of a batch, one entry point for
// every device: q (T, heads, D), k and v (T, kv_heads, D), with grouped-query
// heads. Returns (T, heads * D). Picks, in order: ATen's varlen flash kernel
// (CUDA, inference, no soft-cap, no shared prefixes), per-sequence attention
// on the packed rows (CPU, or shared prefixes), or a padded grid (CUDA
// training). The result is the same computation on every path.
at::Tensor causal_self_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 AttentionLayout& layout, const AttentionSpec& spec);

// The query x key cells the CPU path computes for one sequence of `len`
// queries continuing `offset` shared keys, with `heads` query heads: one
// len x (offset + len) rectangle when its scores fit one block, else the
// blocks of query rows, each over the keys up to its own last row.
double causal_attention_cells(std::int64_t len, std::int64_t offset, std::int64_t heads, std::int64_t window = 0);

// Attention for a few query rows only (inference on CPU): q (R, heads, D) are
// the queries of packed rows `row_list` (of sequences `segments`), over k and
// v (T, kv_heads, D) of every row. Returns (R, heads * D).
at::Tensor causal_attention_at_rows(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const AttentionLayout& layout, const std::vector<std::int64_t>& row_list,
                                    const std::vector<std::size_t>& segments, const AttentionSpec& spec);

}  // namespace openrm
