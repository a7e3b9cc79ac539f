// Token-budget batching: groups of similar-length sequences, so a batch
// wastes little on padding, in an order that is random across batches and
// reproducible for a seed.
#pragma once

#include <openrm/data/tokenize.h>
#include <openrm/models/packed_batch.h>
#include <openrm/models/pooling.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace openrm {

struct BatchingOptions {
  // Token budget per batch. With count_padding, a batch costs
  // (sequences x its longest sequence), the work of the padded CPU path;
  // otherwise the sum of its real tokens (the packed CUDA path).
  std::int64_t max_tokens = 16384;
  bool count_padding = true;
  // At most this many items (pairs) per batch (0: no cap).
  std::int64_t max_items = 0;
  // Items are shuffled, cut into buckets of this many, sorted by length inside
  // each bucket, and batched; the batches are then shuffled.
  std::int64_t bucket_items = 1024;
  bool shuffle = true;
  // Sort each bucket by length before filling batches. With shuffle and
  // sort_by_length both off, batches are consecutive runs of items in input
  // order, each filled up to the budget.
  bool sort_by_length = true;
  std::uint64_t seed = 0;
};

// Batches of item indices. Each item is a group of `item_lengths[i].size()`
// sequences that must share a batch (a pair's chosen and rejected). An item
// over the budget on its own becomes a batch of one. Every index appears in
// exactly one batch.
std::vector<std::vector<std::int64_t>> make_batches(
    const std::vector<std::vector<std::int64_t>>& item_lengths, const BatchingOptions& options);

// make_batches over tokenized pairs. With `shared` (one entry per pair, from
// shared_prefix_lengths), a pair whose sides share a prefix is the three
// segments it computes (the prefix once, then each side's own tokens), so the
// budget counts the shared tokens once.
std::vector<std::vector<std::int64_t>> make_pair_batches(const std::vector<TokenizedPair>& pairs,
                                                         const BatchingOptions& options,
                                                         const std::vector<std::int64_t>& shared = {});

// Prefix sharing between the two sides of a pair (docs/training.md): the
// prompt that chosen and rejected begin with is run through the model once,
// and each side's own tokens attend to its keys and values.
//
// For each pair, the length of the longest common prefix of its two sides'
// token ids, cut so that each side keeps at least one token of its own; 0
// where that is below min_prefix (a short prefix saves less than its extra
// attention call costs).
std::vector<std::int64_t> shared_prefix_lengths(const std::vector<TokenizedPair>& pairs,
                                                std::int64_t min_prefix = 16);

// The sequences of the pairs `indices` packed as chosen_0, rejected_0,
// chosen_1, rejected_1, ...: reward row 2k is pair k's chosen side.
PackedBatch pack_pairs(const std::vector<TokenizedPair>& pairs,
                       const std::vector<std::int64_t>& indices);

// The pairs `indices` packed with their shared prefixes as segments (for
// each pair: its prefix when it has one, its chosen tokens, its rejected
// tokens) for RewardModel::forward_rows(packed, rows); rows[2k] and
// rows[2k + 1] are the pooled rows of pair k's chosen and rejected sides, so
// the rewards come in pack_pairs' order.
struct SharedPairBatch {
  PackedBatch packed;
  std::vector<std::int64_t> rows;
  std::int64_t tokens = 0;  // real tokens of both sides (what pack_pairs would pack)
};
// `shared`: shared_prefix_lengths(pairs). A side whose pooled token (by
// `pooling`, the model's rule) lies inside the shared prefix reads it there:
// in a causal model a prefix token's hidden state is the same for both sides.
struct PoolingRule {
  Pooling pooling = Pooling::kRightmostNonPad;
  std::optional<std::int64_t> pad_token_id;
  std::vector<std::int64_t> eos_ids;
};
SharedPairBatch pack_shared_pairs(const std::vector<TokenizedPair>& pairs, const std::vector<std::int64_t>& indices,
                                  const std::vector<std::int64_t>& shared, const PoolingRule& pooling);

}  // namespace openrm
