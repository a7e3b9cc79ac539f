// Batched scoring (docs/scoring.md).
#include "openrm/score/scorer.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "compat/torch_compat.h"
#include "data/parallel.h"
#include "models/blocks.h"
#include "logging.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors_header.h"
#include "openrm/runtime.h"

namespace openrm {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr float kDropped = std::numeric_limits<float>::quiet_NaN();

std::optional<double> metadata_number(const ModelMetadata& metadata, const char* key) {
  const auto it = metadata.other.find(key);
  if (it == metadata.other.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

}  // namespace

ScoreStats& ScoreStats::operator+=(const ScoreStats& o) {
  sequences += o.sequences;
  tokens += o.tokens;
  computed_tokens += o.computed_tokens;
  attention_cells += o.attention_cells;
  batches += o.batches;
  seconds += o.seconds;
  tokenize_seconds += o.tokenize_seconds;
  truncation += o.truncation;
  non_finite += o.non_finite;
  return *this;
}

void validate_reward_choice(const std::optional<std::int64_t>& label, const std::vector<double>& weights,
                            const std::string& what) {
  auto fail = [&](const std::string& field, const std::string& message) {
    throw Error(what + ": " + field + " " + message);
  };
  if (label && !weights.empty()) fail("reward_label", "and reward_weights are exclusive: give one");
  if (label && *label < 0) fail("reward_label", "must be >= 0, got " + std::to_string(*label));
  for (const double w : weights) {
    if (!std::isfinite(w)) fail("reward_weights", "must be finite numbers");
  }
}

void ScoreOptions::validate() const {
  auto fail = [](const std::string& field, const std::string& message) {
    throw Error("score options: " + field + " " + message);
  };
  if (max_tokens <= 0) fail("max_tokens", "must be positive, got " + std::to_string(max_tokens));
  if (max_batch_sequences < 0) {
    fail("max_batch_sequences", "must be >= 0 (0: no cap), got " + std::to_string(max_batch_sequences));
  }
  if (min_shared_prefix < 1) {
    fail("min_shared_prefix", "must be >= 1, got " + std::to_string(min_shared_prefix));
  }
  if (threads < 0) fail("threads", "must be >= 0 (0: all), got " + std::to_string(threads));
  validate_reward_choice(reward_label, reward_weights, "score options");
  if (max_length && *max_length < 0) {
    fail("max_length", "must be >= 0 (0: as long as the model takes), got " + std::to_string(*max_length));
  }
  with_context("score options", [&] {
    const c10::Device dev = score_device_from_name(device);
    if (dtype != "auto") score_dtype_from_name(dtype, dev);  // auto is always valid (and would probe)
  });
}

c10::Device score_device_from_name(const std::string& name) {
  check_device(name);  // the one check of device names (runtime.h)
  return name == "cpu" ? c10::Device(c10::kCPU) : c10::Device(name);
}

c10::ScalarType score_dtype_from_name(const std::string& name, const c10::Device& device) {
  if (name == "auto") {
    if (device.is_cuda()) return at::kBFloat16;
    // CPU: bf16 only where this processor multiplies it faster (AVX512-BF16,
    // AMX); a short probe on the current threads says (docs/scoring.md).
    const CpuMatmulProbe& probe = cpu_matmul_probe();
    const auto chosen = probe.bf16_faster() ? at::kBFloat16 : at::kFloat;
    log().info("dtype auto on CPU: {} (measured {}; {:.2f} s)", chosen == at::kBFloat16 ? "bf16" : "fp32",
               probe.summary(), probe.seconds);
    return chosen;
  }
  if (name == "fp32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16") {
    // CPU half matmuls are slow or missing in LibTorch 1.13.
    if (!device.is_cuda()) throw Error("dtype fp16 is only supported on CUDA (use fp32 or bf16 on CPU)");
    return at::kHalf;
  }
  throw Error("dtype '" + name + "' is not one of auto, fp32, bf16, fp16");
}

Scorer Scorer::from_folder(const std::string& dir, const ScoreOptions& options) {
  options.validate();
  if (!path_exists(dir)) throw Error(dir + ": no such model folder");
  if (!is_directory(dir)) throw Error(dir + ": not a folder (expected a model folder)");
  std::shared_ptr<const Tokenizer> tokenizer;
  if (!options.tokenizer.empty()) {
    if (!path_exists(options.tokenizer)) {
      throw Error(options.tokenizer + ": no such tokenizer (expected a folder with tokenizer.json or tokenizer.model, a tokenizer.json or a .model file)");
    }
    tokenizer = load_tokenizer(options.tokenizer);
  }
  LoadOptions load;
  load.device = score_device_from_name(options.device);
  load.dtype = score_dtype_from_name(options.dtype, load.device);
  load.pooling = options.pooling;
  set_num_threads(options.threads);
  if (!load.device.is_cuda()) warn_if_reference_blas();
  RewardModelFolder folder = load_reward_model_folder(dir, load);
  if (tokenizer) {
    check_tokenizer_fits_model(*tokenizer, folder.model->config(), dir);
  } else {
    tokenizer = folder.tokenizer;
  }
  if (!options.chat_format && !folder.chat_format_error.empty()) throw Error(folder.chat_format_error);
  const ChatFormat format = options.chat_format.value_or(folder.chat_format);
  return Scorer(folder.model, tokenizer, format, options, std::move(folder.metadata));
}

Scorer::Scorer(std::shared_ptr<RewardModel> model, std::shared_ptr<const Tokenizer> tokenizer, ChatFormat format,
               const ScoreOptions& options, ModelMetadata metadata)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), format_(format), options_(options) {
  if (!model_) throw Error("Scorer: no model");
  options_.validate();
  const std::int64_t labels = model_->config().num_labels;
  if (labels == 1) {
    if (options_.reward_label.value_or(0) != 0 || !options_.reward_weights.empty()) {
      throw Error("score options: reward_label / reward_weights: the model has one output (num_labels 1)");
    }
  } else {
    std::vector<float> weights(static_cast<std::size_t>(labels), 0.0F);
    if (options_.reward_label) {
      if (*options_.reward_label >= labels) {
        throw Error("score options: reward_label " + std::to_string(*options_.reward_label) +
                    " is out of range: the model has " + std::to_string(labels) + " outputs (0.." +
                    std::to_string(labels - 1) + ")");
      }
      weights[static_cast<std::size_t>(*options_.reward_label)] = 1.0F;
    } else if (!options_.reward_weights.empty()) {
      if (static_cast<std::int64_t>(options_.reward_weights.size()) != labels) {
        throw Error("score options: reward_weights has " + std::to_string(options_.reward_weights.size()) +
                    " weights; the model has " + std::to_string(labels) + " outputs");
      }
      for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(options_.reward_weights[i]);
    } else {
      throw Error("Scorer: the model has " + std::to_string(labels) +
                  " outputs (num_labels); choose the reward with reward_label (--reward-label N) or "
                  "reward_weights (--reward-weights w0,w1,...)");
    }
    label_weights_ = at::tensor(weights, at::TensorOptions().dtype(at::kFloat));
  }
  if (options_.pooling) model_->set_pooling(*options_.pooling);
  if (model_->pooling() == Pooling::kRightmostNonPad && !model_->config().pad_token_id) {
    // transformers can only score such a model one unpadded sequence at a
    // time, where its rule reads the last token: the same as kLastToken.
    log().info("the model has no pad_token_id: pooling the last token of each sequence");
    model_->set_pooling(Pooling::kLastToken);
  }
  if (tokenizer_) {
    warn_if_chat_format_does_not_fit(format_, *tokenizer_);
    set_pair_token_types(*model_, *tokenizer_, format_);
  }
  reward_mean_ = metadata_number(metadata, "reward_mean");
  reward_std_ = metadata_number(metadata, "reward_std");
  if (options_.normalize) {
    if (!reward_mean_ || !reward_std_) {
      throw Error("normalize: the model folder's openrm.json has no reward_mean / reward_std "
                  "(openrm-train stores them from its final evaluation); score without normalising");
    }
    if (!(*reward_std_ > 0.0) || !std::isfinite(*reward_mean_)) {
      throw Error("normalize: openrm.json's reward_std must be positive and reward_mean finite, got " +
                  std::to_string(*reward_mean_) + " / " + std::to_string(*reward_std_));
    }
  }
  tokenize_.format = format_;
  tokenize_.threads = options_.threads;
  // The length rule of train, eval and score: records longer than the model
  // can take are truncated (or dropped) by the policy and counted, never
  // passed on to fail.
  tokenize_.max_length = effective_max_length(model_->config(), metadata, options_.max_length);
  tokenize_.policy = options_.truncation.value_or(metadata.truncation.value_or(TruncationPolicy::kTruncate));
  // The model's train/eval mode is left alone (it may be a training loop's):
  // scoring runs without autograd, which is all inference needs here.
}

const Tokenizer& Scorer::require_tokenizer() const {
  if (!tokenizer_) {
    throw Error("this scorer has no tokenizer (the model folder has none; give one with ScoreOptions::tokenizer "
                "or --tokenizer): only token ids can be scored");
  }
  return *tokenizer_;
}

namespace {

// Sequences scored together: `members` (indices into the call's sequences)
// share their first `prefix` ids (0: a single sequence, nothing shared).
struct ScoreUnit {
  std::int64_t prefix = 0;
  std::vector<std::size_t> members;
  std::int64_t cost = 0;  // token rows computed: prefix + each member's own tokens
};

std::int64_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b, std::int64_t limit) {
  const auto n = std::min<std::int64_t>(limit, static_cast<std::int64_t>(std::min(a.size(), b.size())));
  std::int64_t i = 0;
  while (i < n && a[static_cast<std::size_t>(i)] == b[static_cast<std::size_t>(i)]) ++i;
  return i;
}

// Groups sequences that begin alike. In lexicographic order, sequences with a
// common prefix are neighbours; a group grows while the tokens it saves,
// (members - 1) * prefix, do not shrink, and stays within the batch limits.
// The prefix never reaches a member's pooled token, so every member keeps at
// least that token (and its reward row) in its own continuation.
std::vector<ScoreUnit> group_by_prefix(const std::vector<const std::vector<TokenId>*>& sequences,
                                       std::vector<std::size_t> order, const std::vector<std::int64_t>& pooled,
                                       std::int64_t min_prefix, std::int64_t max_tokens, std::int64_t max_sequences) {
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return *sequences[a] < *sequences[b] || (*sequences[a] == *sequences[b] && a < b);
  });
  std::vector<ScoreUnit> units;
  std::size_t i = 0;
  while (i < order.size()) {
    ScoreUnit unit;
    unit.members.push_back(order[i]);
    const auto& first = *sequences[order[i]];
    std::int64_t prefix = pooled[order[i]];
    std::int64_t total = static_cast<std::int64_t>(first.size());  // the members' lengths
    std::size_t j = i + 1;
    for (; j < order.size(); ++j) {
      const std::size_t next = order[j];
      const auto& seq = *sequences[next];
      const std::int64_t shared = std::min(common_prefix(first, seq, prefix), pooled[next]);
      const auto count = static_cast<std::int64_t>(unit.members.size());
      if (shared < min_prefix || count * shared < (count - 1) * prefix) break;
      const std::int64_t cost = total + static_cast<std::int64_t>(seq.size()) - count * shared;
      if (cost > max_tokens || (max_sequences > 0 && count + 1 > max_sequences)) break;
      unit.members.push_back(next);
      total += static_cast<std::int64_t>(seq.size());
      prefix = shared;
    }
    const auto count = static_cast<std::int64_t>(unit.members.size());
    unit.prefix = count > 1 ? prefix : 0;
    unit.cost = total - (count - 1) * unit.prefix;
    units.push_back(std::move(unit));
    i = j;
  }
  return units;
}

}  // namespace

std::vector<float> Scorer::run(const std::vector<const std::vector<TokenId>*>& sequences, ScoreStats& stats) {
  const std::size_t n = sequences.size();
  std::vector<float> rewards(n, kDropped);
  const auto max_positions = model_->config().max_position_embeddings;
  std::vector<std::size_t> order;
  order.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!sequences[i]) continue;
    const auto len = static_cast<std::int64_t>(sequences[i]->size());
    if (len == 0) throw Error("sequence " + std::to_string(i) + " is empty");
    if (max_positions > 0 && len > max_positions) {
      throw Error("sequence " + std::to_string(i) + " has " + std::to_string(len) +
                  " tokens, more than the model's max_position_embeddings (" + std::to_string(max_positions) +
                  "); truncate it first (max_length)");
    }
    order.push_back(i);
  }
  if (order.empty()) return rewards;
  const bool cuda = model_->device().is_cuda();

  std::vector<ScoreUnit> units;
  std::vector<std::int64_t> pooled;  // with shared prefixes: each sequence's pooled position
  // On CUDA only where one varlen flash call takes the shared keys; the
  // per-sequence fallback would cost more than the prefix saves.
  bool share = options_.share_prefixes && model_->causal();
  if (share && cuda) {
    const auto& c = model_->config();
    const std::int64_t head_dim = c.head_dim > 0 ? c.head_dim : c.hidden_size / std::max<std::int64_t>(c.num_attention_heads, 1);
    share = compat::varlen_attention_supported(
        at::empty({1, 1, head_dim}, at::TensorOptions().dtype(model_->dtype()).device(model_->device())));
  }
  if (share) {
    pooled.assign(n, 0);
    for (const auto i : order) {
      pooled[i] = pooled_position(sequences[i]->data(), static_cast<std::int64_t>(sequences[i]->size()),
                                  model_->pooling(), model_->config().pad_token_id, model_->config().eos_token_ids);
    }
    units = group_by_prefix(sequences, order, pooled, options_.min_shared_prefix, options_.max_tokens,
                            options_.max_batch_sequences);
  } else {
    units.reserve(order.size());
    for (const auto i : order) {
      units.push_back(ScoreUnit{0, {i}, static_cast<std::int64_t>(sequences[i]->size())});
    }
  }
  // Largest first: the longest sequences run first, so a budget too large
  // for the memory fails at once rather than at the end. Attention is
  // padding-free on CPU and CUDA alike, so a batch costs the token rows it
  // computes.
  std::stable_sort(units.begin(), units.end(), [](const ScoreUnit& a, const ScoreUnit& b) { return a.cost > b.cost; });

  // Attention work as the CPU path computes it (models/blocks.h); windows
  // are not counted, so windowed layers are counted whole.
  const std::int64_t heads = std::max<std::int64_t>(model_->config().num_attention_heads, 1);
  torch::NoGradGuard no_grad;
  // One call in the model at a time: each uses every thread it was given.
  std::lock_guard<std::mutex> model_lock(*model_mutex_);
  std::vector<const std::vector<TokenId>*> batch;       // plain batches
  std::vector<PackedBatch::Segment> segments;           // batches with shared prefixes
  std::vector<std::int64_t> rows;                       // their pooled rows
  std::vector<std::size_t> batch_index;
  const auto start = Clock::now();
  auto last_report = start;
  std::size_t next = 0, done = 0;
  while (next < units.size()) {
    if (seconds_since(last_report) >= 10.0) {  // long calls say how far they are
      last_report = Clock::now();
      const double rate = static_cast<double>(done) / seconds_since(start);
      log().info("scoring: {}/{} sequences, {:.1f} sequences/s, about {:.0f} s left", done, order.size(), rate,
                 static_cast<double>(order.size() - done) / rate);
    }
    batch.clear();
    segments.clear();
    rows.clear();
    batch_index.clear();
    std::int64_t computed = 0, real_tokens = 0;
    double cells = 0.0;
    bool shared = false;
    std::size_t first = next;
    while (next < units.size()) {
      const ScoreUnit& unit = units[next];
      const auto count = static_cast<std::int64_t>(batch_index.size() + unit.members.size());
      const bool over = computed + unit.cost > options_.max_tokens ||
                        (options_.max_batch_sequences > 0 && count > options_.max_batch_sequences);
      if (next > first && over) break;
      shared = shared || unit.prefix > 0;
      computed += unit.cost;
      if (unit.prefix > 0) cells += causal_attention_cells(unit.prefix, 0, heads);
      for (const auto i : unit.members) {
        const auto len = static_cast<std::int64_t>(sequences[i]->size());
        real_tokens += len;
        cells += causal_attention_cells(len - unit.prefix, unit.prefix, heads);
        batch_index.push_back(i);
      }
      ++next;
    }
    at::Tensor out;
    if (!shared) {
      for (std::size_t u = first; u < next; ++u) batch.push_back(sequences[units[u].members[0]]);
      const PackedBatch packed = PackedBatch::from_views(batch, /*pin_memory=*/cuda);
      out = model_->forward(packed);
    } else {
      std::int64_t row = 0;
      for (std::size_t u = first; u < next; ++u) {
        const ScoreUnit& unit = units[u];
        std::int64_t parent = -1;
        if (unit.prefix > 0) {
          parent = static_cast<std::int64_t>(segments.size());
          segments.push_back({sequences[unit.members[0]]->data(), unit.prefix, -1});
          row += unit.prefix;
        }
        for (const auto i : unit.members) {
          const auto& seq = *sequences[i];
          const auto own = static_cast<std::int64_t>(seq.size()) - unit.prefix;
          segments.push_back({seq.data() + unit.prefix, own, parent});
          rows.push_back(row + pooled[i] - unit.prefix);
          row += own;
        }
      }
      out = model_->forward_rows(PackedBatch::from_segments(segments), rows);
    }
    out = finish(out.to(at::kCPU)).contiguous();
    const float* r = out.data_ptr<float>();
    for (std::size_t k = 0; k < batch_index.size(); ++k) {
      rewards[batch_index[k]] = r[k];
      if (!std::isfinite(r[k])) ++stats.non_finite;
    }
    done += batch_index.size();
    ++stats.batches;
    stats.sequences += static_cast<std::int64_t>(batch_index.size());
    stats.tokens += real_tokens;
    stats.computed_tokens += computed;
    stats.attention_cells += cells;
  }
  stats.seconds += seconds_since(start);
  return rewards;
}

ScoreStats Scorer::stats() const {
  std::lock_guard<std::mutex> lock(*stats_mutex_);
  return total_;
}

void Scorer::add_stats(const ScoreStats& stats) {
  std::lock_guard<std::mutex> lock(*stats_mutex_);
  total_ += stats;
}

at::Tensor Scorer::finish(at::Tensor out) const {
  out = out.to(at::kFloat);
  if (label_weights_.defined()) out = at::matmul(out, label_weights_.to(out.device()));  // (B, labels) -> (B)
  out = out.reshape({-1});
  if (options_.normalize) {
    const auto mean = static_cast<float>(*reward_mean_), std = static_cast<float>(*reward_std_);
    out = (out - mean) / std;  // NaN stays NaN
  }
  return out;
}

at::Tensor Scorer::score_padded(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  if (!input_ids.defined() || !attention_mask.defined()) throw Error("score_padded: input_ids and attention_mask are required");
  if (input_ids.dim() != 2) {
    throw Error("score_padded: input_ids must be (batch, length), got " + std::to_string(input_ids.dim()) + " dimensions");
  }
  if (attention_mask.sizes() != input_ids.sizes()) {
    throw Error("score_padded: attention_mask has shape " + shape_string(attention_mask.sizes().vec()) +
                ", input_ids " + shape_string(input_ids.sizes().vec()) + "; they must be equal");
  }
  if (!at::isIntegralType(input_ids.scalar_type(), /*includeBool=*/false)) {
    throw Error("score_padded: input_ids must hold integers");
  }
  if (!at::isIntegralType(attention_mask.scalar_type(), /*includeBool=*/true)) {
    throw Error("score_padded: attention_mask must be bool or integers (0/1)");
  }
  const auto B = input_ids.size(0), L = input_ids.size(1);
  if (B == 0) return at::empty({0}, input_ids.options().dtype(at::kFloat));
  if (L == 0) throw Error("score_padded: the batch has no columns (length 0)");
  if (attention_mask.device() != input_ids.device()) {
    throw Error("score_padded: attention_mask is on " + attention_mask.device().str() + ", input_ids on " +
                input_ids.device().str());
  }
  torch::NoGradGuard no_grad;
  const auto dev = input_ids.device();
  const at::Tensor mask = attention_mask.ne(0);
  const at::Tensor ids = input_ids.to(at::kLong);
  // Per row, on the batch's device: marked count, first and last marked
  // column, mask values other than 0/1, ids out of the vocabulary; one copy
  // of these to the host says whether the batch is well formed.
  const at::Tensor col = at::arange(L, ids.options());
  const at::Tensor lengths = mask.sum(1);
  const at::Tensor first = at::where(mask, col, at::full_like(col, L)).amin(1);
  const at::Tensor last = at::where(mask, col, at::full_like(col, -1)).amax(1);
  const at::Tensor not_binary = mask.logical_and(attention_mask.ne(1)).sum(1);
  const auto vocab = model_->config().vocab_size;
  const at::Tensor bad_id = mask.logical_and(ids.lt(0).logical_or(ids.ge(vocab))).sum(1);
  const at::Tensor host = at::stack({lengths, first, last, not_binary.to(at::kLong), bad_id}).to(at::kCPU);
  const auto h = host.accessor<std::int64_t, 2>();
  const auto max_positions = model_->config().max_position_embeddings;
  std::vector<std::int64_t> row_lengths(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    const std::string row = "score_padded: row " + std::to_string(b);
    if (h[3][b] > 0) throw Error(row + ": attention_mask holds values other than 0 and 1");
    if (h[0][b] == 0) throw Error(row + ": attention_mask marks no token");
    if (h[2][b] - h[1][b] + 1 != h[0][b]) {
      throw Error(row + ": attention_mask's ones are not one run (columns " + std::to_string(h[1][b]) + " to " +
                  std::to_string(h[2][b]) + " hold " + std::to_string(h[0][b]) + " ones)");
    }
    if (h[4][b] > 0) {
      throw Error(row + ": a token id outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
    if (max_positions > 0 && h[0][b] > max_positions) {
      throw Error(row + ": " + std::to_string(h[0][b]) + " tokens, more than the model's max_position_embeddings (" +
                  std::to_string(max_positions) + ")");
    }
    row_lengths[static_cast<std::size_t>(b)] = h[0][b];
  }

  if (!model_->device().is_cuda()) {
    // The CPU model: through score_tokens' batching and prefix sharing.
    const at::Tensor packed = ids.masked_select(mask).to(at::kCPU, at::kInt).contiguous();
    const auto* p = packed.data_ptr<std::int32_t>();
    std::vector<std::vector<TokenId>> sequences(static_cast<std::size_t>(B));
    for (std::size_t b = 0; b < sequences.size(); ++b) {
      sequences[b].assign(p, p + row_lengths[b]);
      p += row_lengths[b];
    }
    const std::vector<float> rewards = score_tokens(sequences);
    return at::tensor(rewards, at::TensorOptions().dtype(at::kFloat)).to(dev);
  }

  // A CUDA model: the rows packed where they lie, in budget-sized runs of rows.
  ScoreStats stats;
  const auto start = Clock::now();
  std::vector<at::Tensor> outs;
  {
    std::lock_guard<std::mutex> model_lock(*model_mutex_);
    std::int64_t b0 = 0;
    while (b0 < B) {
      std::int64_t b1 = b0, tokens = 0;
      while (b1 < B && (b1 == b0 || tokens + row_lengths[static_cast<std::size_t>(b1)] <= options_.max_tokens) &&
             (options_.max_batch_sequences <= 0 || b1 - b0 < options_.max_batch_sequences)) {
        tokens += row_lengths[static_cast<std::size_t>(b1)];
        ++b1;
      }
      const at::Tensor m = mask.slice(0, b0, b1);
      PackedBatch batch;
      batch.input_ids = ids.slice(0, b0, b1).masked_select(m);
      batch.position_ids = (m.to(at::kLong).cumsum(1) - 1).masked_select(m);
      batch.lengths.assign(row_lengths.begin() + b0, row_lengths.begin() + b1);
      batch.max_seqlen = *std::max_element(batch.lengths.begin(), batch.lengths.end());
      batch.cu_seqlens = at::cat({at::zeros({1}, ids.options()), lengths.slice(0, b0, b1).cumsum(0)});
      outs.push_back(model_->forward(batch));
      ++stats.batches;
      stats.sequences += b1 - b0;
      stats.tokens += tokens;
      stats.computed_tokens += tokens;
      for (std::int64_t b = b0; b < b1; ++b) {
        const auto len = static_cast<double>(row_lengths[static_cast<std::size_t>(b)]);
        stats.attention_cells += len * len;
      }
      b0 = b1;
    }
  }
  at::Tensor rewards = finish(at::cat(outs, 0));
  stats.non_finite = rewards.isfinite().logical_not().sum().item<std::int64_t>();
  stats.seconds = seconds_since(start);
  add_stats(stats);
  return rewards.to(dev);
}

std::vector<std::optional<std::vector<TokenId>>> Scorer::tokenize(
    std::size_t n, const std::function<const Conversation&(std::size_t)>& conversation,
    const std::function<std::optional<ChatFormat>(std::size_t)>& text_format,
    const std::function<std::string(std::size_t)>& where, ScoreStats& stats) const {
  const Tokenizer& tokenizer = require_tokenizer();
  const auto start = Clock::now();
  std::vector<std::optional<std::vector<TokenId>>> ids(n);
  const int workers = data_detail::worker_count(options_.threads, n);
  std::vector<TruncationStats> counts(static_cast<std::size_t>(workers));
  data_detail::for_each_range(n, workers, [&](int w, std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      ids[i] = with_context(where(i), [&] {
        return tokenize_conversation(conversation(i), tokenizer, tokenize_,
                                     &counts[static_cast<std::size_t>(w)], text_format(i));
      });
    }
  });
  for (const auto& c : counts) stats.truncation += c;
  stats.tokenize_seconds += seconds_since(start);
  return ids;
}

std::vector<float> Scorer::score_tokens(const std::vector<std::vector<TokenId>>& sequences) {
  std::vector<const std::vector<TokenId>*> views;
  views.reserve(sequences.size());
  for (const auto& s : sequences) views.push_back(&s);
  ScoreStats stats;
  auto rewards = run(views, stats);
  add_stats(stats);
  return rewards;
}

ScoreResult Scorer::score_tokenized(std::size_t n,
                                    const std::function<const Conversation&(std::size_t)>& conversation,
                                    const std::function<std::optional<ChatFormat>(std::size_t)>& text_format,
                                    const std::function<std::string(std::size_t)>& where) {
  ScoreResult result;
  const auto ids = tokenize(n, conversation, text_format, where, result.stats);
  std::vector<const std::vector<TokenId>*> views;
  views.reserve(ids.size());
  result.dropped.reserve(ids.size());
  for (const auto& s : ids) {
    views.push_back(s ? &*s : nullptr);
    result.dropped.push_back(!s);
  }
  result.rewards = run(views, result.stats);
  add_stats(result.stats);
  return result;
}

ScoreResult Scorer::score_conversations(const std::vector<Conversation>& conversations) {
  return score_tokenized(
      conversations.size(), [&](std::size_t i) -> const Conversation& { return conversations[i]; },
      [](std::size_t) { return std::optional<ChatFormat>(); },
      [](std::size_t i) { return "conversation " + std::to_string(i); });
}

ScoreResult Scorer::score_records(const std::vector<ScoreRecord>& records) {
  return score_tokenized(
      records.size(), [&](std::size_t i) -> const Conversation& { return records[i].conversation; },
      [&](std::size_t i) { return records[i].text_format; },
      [&](std::size_t i) {
        return records[i].line > 0 ? "line " + std::to_string(records[i].line) : "record " + std::to_string(i);
      });
}

PairScores Scorer::score_pairs(const std::vector<PreferencePair>& pairs) {
  PairScores result;
  const auto start = Clock::now();
  TokenizedPairs tokenized = tokenize_pairs(pairs, require_tokenizer(), tokenize_);
  result.stats.tokenize_seconds = seconds_since(start);
  result.stats.truncation = tokenized.stats;
  std::vector<const std::vector<TokenId>*> views(2 * pairs.size(), nullptr);
  for (const auto& p : tokenized.pairs) {
    const auto i = static_cast<std::size_t>(p.source_index);
    views[2 * i] = &p.chosen;
    views[2 * i + 1] = &p.rejected;
  }
  const auto rewards = run(views, result.stats);
  result.chosen.resize(pairs.size());
  result.rejected.resize(pairs.size());
  result.dropped.resize(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    result.chosen[i] = rewards[2 * i];
    result.rejected[i] = rewards[2 * i + 1];
    result.dropped[i] = views[2 * i] == nullptr;
  }
  add_stats(result.stats);
  return result;
}

}  // namespace openrm
