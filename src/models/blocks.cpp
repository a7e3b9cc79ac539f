#include "models/blocks.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "compat/torch_compat.h"
#include "openrm/error.h"

namespace openrm {

LinearImpl::LinearImpl(std::int64_t in, std::int64_t out, bool has_bias, const at::TensorOptions& options) {
  weight = register_parameter("weight", at::empty({out, in}, options));
  if (has_bias) bias = register_parameter("bias", at::empty({out}, options));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  // A LoRA base kept in bf16 under fp32 activations: the frozen product in
  // bf16, the rest (adapters, residual stream) in the input's dtype.
  auto out = weight.scalar_type() == x.scalar_type() || x.is_cuda()
                 ? at::linear(x, weight, bias)
                 : at::linear(x.to(weight.scalar_type()), weight,
                              bias.defined() ? bias.to(weight.scalar_type()) : bias)
                       .to(x.scalar_type());
  if (!lora_A) return out;
  const auto in = lora_dropout > 0 ? at::dropout(x, lora_dropout, is_training()) : x;
  return out + lora_B->forward(lora_A->forward(in)) * lora_scaling;
}

void LinearImpl::merge_lora() {
  if (!lora_A) return;
  torch::NoGradGuard no_grad;
  const auto delta = at::matmul(lora_B->weight.to(at::kFloat), lora_A->weight.to(at::kFloat)) * lora_scaling;
  weight.copy_((weight.to(at::kFloat) + delta).to(weight.scalar_type()));
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A.reset();
  lora_B.reset();
  lora_scaling = 0.0;
  lora_dropout = 0.0;
}

void LinearImpl::enable_lora(std::int64_t rank, double alpha, double dropout, at::Generator generator) {
  if (lora_A) throw Error("this layer already has a LoRA adapter");
  const auto in = weight.size(1), out = weight.size(0);
  const auto options = weight.options();
  lora_A = register_module("lora_A", std::make_shared<LinearImpl>(in, rank, false, options));
  lora_B = register_module("lora_B", std::make_shared<LinearImpl>(rank, out, false, options));
  torch::NoGradGuard no_grad;
  // kaiming_uniform_(a = sqrt(5)) on (rank, in): bound = 1 / sqrt(in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  lora_A->weight.copy_(at::empty({rank, in}, at::kFloat).uniform_(-bound, bound, generator));
  lora_B->weight.zero_();
  lora_scaling = alpha / static_cast<double>(rank);
  lora_dropout = dropout;
}

EmbeddingImpl::EmbeddingImpl(std::int64_t vocab, std::int64_t dim, const at::TensorOptions& options, double scale_)
    : scale(scale_) {
  weight = register_parameter("weight", at::empty({vocab, dim}, options));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) {
  auto x = weight.index_select(0, ids);
  if (scale == 1.0) return x;
  // transformers multiplies by a 0-d tensor cast to the weights' dtype, so in
  // bf16 the factor itself is rounded first.
  return x * at::scalar_tensor(scale, at::TensorOptions().dtype(at::kFloat)).to(weight.scalar_type());
}

RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps_, const at::TensorOptions& options, RMSNormStyle style_)
    : eps(eps_), style(style_) {
  weight = register_parameter("weight", at::empty({dim}, options));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  auto x32 = x.to(at::kFloat);
  auto normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (style == RMSNormStyle::kUnitOffset) {
    return (normed * (weight.to(at::kFloat) + 1.0)).to(x.scalar_type());
  }
  return weight * normed.to(x.scalar_type());
}

LayerNormImpl::LayerNormImpl(std::int64_t dim, double eps_, bool has_bias, const at::TensorOptions& options)
    : eps(eps_) {
  weight = register_parameter("weight", at::empty({dim}, options));
  if (has_bias) bias = register_parameter("bias", at::empty({dim}, options));
}

at::Tensor LayerNormImpl::forward(const at::Tensor& x) { return at::layer_norm(x, {weight.size(0)}, weight, bias, eps); }

Activation parse_activation(const std::string& name) {
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "gelu") return Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::kGeluTanh;
  if (name == "relu") return Activation::kRelu;
  throw Error("activation '" + name +
              "' is not supported (supported: silu, swish, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)");
}

at::Tensor activate(Activation activation, const at::Tensor& x) {
  switch (activation) {
    case Activation::kSilu: return at::silu(x);
    case Activation::kGelu: return at::gelu(x);
    case Activation::kGeluTanh: return at::gelu(x, "tanh");
    case Activation::kRelu: return at::relu(x);
  }
  return x;
}

GatedMlpImpl::GatedMlpImpl(std::int64_t hidden, std::int64_t intermediate, bool bias, Activation activation_,
                           const at::TensorOptions& options)
    : activation(activation_) {
  gate_proj = register_module("gate_proj", std::make_shared<LinearImpl>(hidden, intermediate, bias, options));
  up_proj = register_module("up_proj", std::make_shared<LinearImpl>(hidden, intermediate, bias, options));
  down_proj = register_module("down_proj", std::make_shared<LinearImpl>(intermediate, hidden, bias, options));
}

at::Tensor GatedMlpImpl::forward(const at::Tensor& x) {
  return down_proj->forward(activate(activation, gate_proj->forward(x)) * up_proj->forward(x));
}

PlainMlpImpl::PlainMlpImpl(std::int64_t hidden, std::int64_t intermediate, bool bias, Activation activation_,
                           const at::TensorOptions& options, const std::string& in_name, const std::string& out_name)
    : activation(activation_) {
  in = register_module(in_name, std::make_shared<LinearImpl>(hidden, intermediate, bias, options));
  out = register_module(out_name, std::make_shared<LinearImpl>(intermediate, hidden, bias, options));
}

at::Tensor PlainMlpImpl::forward(const at::Tensor& x) { return out->forward(activate(activation, in->forward(x))); }

// ---- attention layout ---------------------------------------------------------

AttentionLayout AttentionLayout::of(const PackedBatch& batch) {
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
  if (!layout.identity) layout.pad_index = batch.sequence_index() * layout.max_len + batch.position_ids;
  layout.key_valid = at::arange(layout.max_len, cu.options()).unsqueeze(0).lt(lengths.unsqueeze(1));
  return layout;
}

const at::Tensor& AttentionLayout::cu_seqlens_int32() {
  if (!cu_seqlens32.defined()) cu_seqlens32 = cu_seqlens.to(at::kInt);
  return cu_seqlens32;
}

void AttentionLayout::build_key_segments(const c10::Device& device) {
  if (key_rows.defined()) return;
  std::vector<std::int64_t> rows;
  std::vector<std::int32_t> cu{0};
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    const std::int64_t p = parent(b);
    std::int64_t n = 0;
    if (p >= 0) {
      const auto pi = static_cast<std::size_t>(p);
      for (std::int64_t t = 0; t < lengths[pi]; ++t) rows.push_back(starts[pi] + t);
      n += lengths[pi];
    }
    for (std::int64_t t = 0; t < lengths[b]; ++t) rows.push_back(starts[b] + t);
    n += lengths[b];
    max_key_len = std::max(max_key_len, n);
    cu.push_back(static_cast<std::int32_t>(cu.back() + n));
  }
  key_rows = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(device);
  key_cu_seqlens32 = at::tensor(cu, at::TensorOptions().dtype(at::kInt)).to(device);
}

at::Tensor AttentionLayout::causal(std::int64_t len, std::int64_t window, const at::TensorOptions& options,
                                   std::int64_t offset) {
  auto q = at::arange(offset, offset + len, options.dtype(at::kLong)).unsqueeze(1);
  auto k = at::arange(offset + len, options.dtype(at::kLong)).unsqueeze(0);
  auto allowed = k.le(q);
  if (window > 0) allowed = allowed.logical_and((q - k).lt(window));
  return allowed;
}

const at::Tensor& AttentionLayout::mask(std::int64_t window) {
  auto it = masks.find(window);
  if (it != masks.end()) return it->second;
  auto m = causal(max_len, window, key_valid.options()).unsqueeze(0).logical_and(key_valid.unsqueeze(1)).unsqueeze(1);
  return masks.emplace(window, m).first->second;
}

const at::Tensor& AttentionLayout::causal_mask(std::int64_t len, std::int64_t window, std::int64_t offset) {
  auto key = std::make_tuple(len, offset, window);
  auto it = causal_masks.find(key);
  if (it != causal_masks.end()) return it->second;
  auto m = causal(len, window, cu_seqlens.options(), offset).view({1, 1, len, offset + len});
  return causal_masks.emplace(key, m).first->second;
}

at::Tensor AttentionLayout::to_grid(const at::Tensor& packed) const {
  const auto features = packed.size(-1);
  if (identity) return packed.reshape({1, max_len, features});
  auto grid = at::zeros({batch * max_len, features}, packed.options());
  return grid.index_copy(0, pad_index, packed).reshape({batch, max_len, features});
}

at::Tensor AttentionLayout::to_packed(const at::Tensor& grid) const {
  auto rows = grid.reshape({batch * max_len, grid.size(-1)});
  return identity ? rows : rows.index_select(0, pad_index);
}

// ---- attention ----------------------------------------------------------------------

namespace {

// (len, n, D) -> (1, n, len, D)
at::Tensor heads_of(const at::Tensor& t) { return t.transpose(0, 1).unsqueeze(0); }

// Score cells (heads x query rows x keys) one block of queries may fill: 2^20
// fp32 values (4 MiB) stay in the last-level cache while the scores are
// scaled, masked, normalised and multiplied by v, where a whole long
// sequence's square (8 heads x 4096^2 x 4 bytes = 512 MiB) goes to memory
// at every one of those steps (docs/benchmarks.md, long sequences).
constexpr std::int64_t kAttentionBlockCells = std::int64_t{1} << 20;
constexpr std::int64_t kMinQueryBlock = 16;

// Query rows per block for `keys` keys and `heads` heads.
std::int64_t query_block_rows(std::int64_t keys, std::int64_t heads) {
  return std::max(kMinQueryBlock, kAttentionBlockCells / std::max<std::int64_t>(heads * keys, 1));
}

// Causal attention of one sequence on its own packed rows: q (len, heads, D)
// are the queries at positions offset..offset+len-1, k and v (offset + len,
// kv_heads, D) the keys they may see (a shared parent's first). Returns
// (len, heads * D). Long sequences run in blocks of query rows, each over
// the keys up to its own last row only: the masked half of the square is
// never computed, and each block's scores fit in the cache.
at::Tensor causal_attention_of_sequence(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                        std::int64_t offset, AttentionLayout& layout, const AttentionSpec& spec) {
  const std::int64_t len = q.size(0), heads = q.size(1), D = q.size(2);
  const std::int64_t keys = offset + len;
  const std::int64_t rows = query_block_rows(keys, heads);
  if (rows >= len) {
    auto o = compat::masked_attention(heads_of(q), heads_of(k), heads_of(v), layout.causal_mask(len, spec.window, offset),
                                      spec.scale, spec.softcap);
    return o[0].transpose(0, 1).reshape({len, heads * D});
  }
  std::vector<at::Tensor> outs;
  outs.reserve(static_cast<std::size_t>((len + rows - 1) / rows));
  for (std::int64_t i0 = 0; i0 < len; i0 += rows) {
    const std::int64_t n = std::min(rows, len - i0);
    const std::int64_t last = offset + i0 + n;  // keys [first, last) are visible to some query of the block
    const std::int64_t first = spec.window > 0 ? std::max<std::int64_t>(0, offset + i0 - spec.window + 1) : 0;
    auto o = compat::masked_attention(heads_of(q.narrow(0, i0, n)), heads_of(k.narrow(0, first, last - first)),
                                      heads_of(v.narrow(0, first, last - first)),
                                      layout.causal_mask(n, spec.window, offset + i0 - first), spec.scale, spec.softcap);
    outs.push_back(o[0].transpose(0, 1).reshape({n, heads * D}));
  }
  return at::cat(outs, 0);
}

}  // namespace

double causal_attention_cells(std::int64_t len, std::int64_t offset, std::int64_t heads, std::int64_t window) {
  const std::int64_t rows = query_block_rows(offset + len, heads);
  if (rows >= len) return static_cast<double>(len) * static_cast<double>(offset + len);
  double cells = 0;
  for (std::int64_t i0 = 0; i0 < len; i0 += rows) {
    const std::int64_t n = std::min(rows, len - i0);
    const std::int64_t first = window > 0 ? std::max<std::int64_t>(0, offset + i0 - window + 1) : 0;
    cells += static_cast<double>(n) * static_cast<double>(offset + i0 + n - first);
  }
  return cells;
}

at::Tensor causal_self_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 AttentionLayout& layout, const AttentionSpec& spec) {
  const auto T = q.size(0), heads = q.size(1), D = q.size(2), kv_heads = k.size(1);
  if (spec.softcap <= 0 && compat::varlen_attention_supported(q)) {
    // CUDA (LibTorch >= 2.5): padding-free flash attention on the packed
    // rows, no grid and no mask, forward and backward. The kernel cannot
    // soft-cap. With shared prefixes the keys of each sequence are gathered
    // (its parent's rows, then its own) and the causal diagonal aligns the
    // queries to the end of their keys.
    at::Tensor out;
    if (!layout.shared()) {
      out = compat::varlen_attention(q, k, v, layout.cu_seqlens_int32(), layout.max_len, spec.scale, spec.window);
    } else {
      layout.build_key_segments(q.device());
      out = compat::varlen_attention(q, k.index_select(0, layout.key_rows), v.index_select(0, layout.key_rows),
                                     layout.cu_seqlens_int32(), layout.key_cu_seqlens32, layout.max_len,
                                     layout.max_key_len, spec.scale, spec.window);
    }
    return out.reshape({T, heads * D}).to(q.scalar_type());
  }
  if (!q.is_cuda() || layout.shared()) {
    // CPU: attention one sequence at a time on its own packed rows, so no
    // work and no memory go to padding, and a sequence's attention is the
    // same computation whatever batch it is in. The (heads, len, len)
    // scores of one sequence stay small enough for the caches; a padded
    // grid for a whole batch can reach hundreds of MB per layer.
    // split_with_sizes, not one narrow per sequence: in backward it
    // concatenates the gradients once, where each narrow would add its own
    // full-size zero gradient. A sequence that continues a shared one
    // attends to that one's keys first (PackedBatch::parents).
    const auto qs = q.split_with_sizes(layout.lengths, 0);
    const auto ks = k.split_with_sizes(layout.lengths, 0);
    const auto vs = v.split_with_sizes(layout.lengths, 0);
    std::vector<at::Tensor> outs;
    outs.reserve(layout.lengths.size());
    for (std::size_t b = 0; b < layout.lengths.size(); ++b) {
      const std::int64_t parent = layout.parent(b);
      if (parent < 0) {
        outs.push_back(causal_attention_of_sequence(qs[b], ks[b], vs[b], 0, layout, spec));
      } else {
        const auto p = static_cast<std::size_t>(parent);
        outs.push_back(causal_attention_of_sequence(qs[b], at::cat({ks[p], ks[b]}, 0), at::cat({vs[p], vs[b]}, 0),
                                                    layout.lengths[p], layout, spec));
      }
    }
    return outs.size() == 1 ? outs[0] : at::cat(outs, 0);
  }
  const auto B = layout.batch, L = layout.max_len;
  auto to_heads = [&](const at::Tensor& packed, std::int64_t n) {
    return layout.to_grid(packed.reshape({T, n * D})).view({B, L, n, D}).transpose(1, 2);  // (B, n, L, D)
  };
  auto out = compat::masked_attention(to_heads(q, heads), to_heads(k, kv_heads), to_heads(v, kv_heads),
                                      layout.mask(spec.window), spec.scale, spec.softcap);
  return layout.to_packed(out.transpose(1, 2).reshape({B, L, heads * D}));
}

at::Tensor causal_attention_at_rows(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const AttentionLayout& layout, const std::vector<std::int64_t>& row_list,
                                    const std::vector<std::size_t>& segments, const AttentionSpec& spec) {
  const auto R = q.size(0), heads = q.size(1), D = q.size(2);
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
    const std::int64_t first = spec.window > 0 ? std::max<std::int64_t>(0, pos - spec.window + 1) : 0;
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
    auto o = compat::masked_attention(heads_of(q.narrow(0, r, 1)), heads_of(keys), heads_of(values), at::Tensor(),
                                      spec.scale, spec.softcap);  // (1, heads, 1, D)
    outs.push_back(o[0].transpose(0, 1).reshape({1, heads * D}));
  }
  return at::cat(outs, 0);
}

}  // namespace openrm
