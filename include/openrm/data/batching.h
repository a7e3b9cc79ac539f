// Token-budget batching: groups of similar-length sequences, so a batch
// wastes little on padding, in an order that is random across batches and
// reproducible for a seed.
#pragma once

#include <openrm/data/tokenize.h>
#include <openrm/models/packed_batch.h>

#include <cstdint>
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

// make_batches over tokenized pairs.
std::vector<std::vector<std::int64_t>> make_pair_batches(const std::vector<TokenizedPair>& pairs,
                                                         const BatchingOptions& options);

// The sequences of the pairs `indices` packed as chosen_0, rejected_0,
// chosen_1, rejected_1, ...: reward row 2k is pair k's chosen side.
PackedBatch pack_pairs(const std::vector<TokenizedPair>& pairs,
                       const std::vector<std::int64_t>& indices);

}  // namespace openrm
