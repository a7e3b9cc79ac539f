// Token-budget batching over length buckets.
#include "openrm/data/batching.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "logging.h"
#include "openrm/error.h"

namespace openrm {
namespace {

// Fisher-Yates with mt19937_64 and plain modulo: unlike std::shuffle, the
// result is the same with every standard library, so a seed means the same
// order on every machine.
template <typename T>
void shuffle_in_place(std::vector<T>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

struct ItemCost {
  std::int64_t sequences = 0;
  std::int64_t longest = 0;
  std::int64_t tokens = 0;
};

}  // namespace

std::vector<std::vector<std::int64_t>> make_batches(
    const std::vector<std::vector<std::int64_t>>& item_lengths, const BatchingOptions& options) {
  if (options.max_tokens <= 0) {
    throw Error("batching: max_tokens must be positive, got " + std::to_string(options.max_tokens));
  }
  if (options.bucket_items <= 0) {
    throw Error("batching: bucket_items must be positive, got " + std::to_string(options.bucket_items));
  }
  if (options.max_items < 0) {
    throw Error("batching: max_items must be >= 0, got " + std::to_string(options.max_items));
  }
  const auto n = static_cast<std::int64_t>(item_lengths.size());
  std::vector<ItemCost> cost(item_lengths.size());
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& lengths = item_lengths[static_cast<std::size_t>(i)];
    if (lengths.empty()) throw Error("batching: item " + std::to_string(i) + " has no sequences");
    ItemCost& c = cost[static_cast<std::size_t>(i)];
    c.sequences = static_cast<std::int64_t>(lengths.size());
    for (std::int64_t len : lengths) {
      if (len <= 0) {
        throw Error("batching: item " + std::to_string(i) + " has a sequence of length " +
                    std::to_string(len));
      }
      c.longest = std::max(c.longest, len);
      c.tokens += len;
    }
  }

  std::mt19937_64 rng(options.seed);
  std::vector<std::int64_t> order(item_lengths.size());
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle) shuffle_in_place(order, rng);

  std::vector<std::vector<std::int64_t>> batches;
  std::int64_t oversize = 0;
  for (std::int64_t start = 0; start < n; start += options.bucket_items) {
    const std::int64_t stop = std::min(n, start + options.bucket_items);
    std::vector<std::int64_t> bucket(order.begin() + start, order.begin() + stop);
    // Longest first; ties keep their (shuffled) order.
    if (options.sort_by_length) {
      std::stable_sort(bucket.begin(), bucket.end(), [&](std::int64_t a, std::int64_t b) {
        return cost[static_cast<std::size_t>(a)].longest > cost[static_cast<std::size_t>(b)].longest;
      });
    }
    std::vector<std::int64_t> current;
    std::int64_t sequences = 0, longest = 0, tokens = 0;
    for (std::int64_t item : bucket) {
      const ItemCost& c = cost[static_cast<std::size_t>(item)];
      const std::int64_t new_sequences = sequences + c.sequences;
      const std::int64_t new_longest = std::max(longest, c.longest);
      const std::int64_t new_tokens = tokens + c.tokens;
      const std::int64_t new_cost = options.count_padding ? new_sequences * new_longest : new_tokens;
      const bool full = options.max_items > 0 && static_cast<std::int64_t>(current.size()) >= options.max_items;
      if (!current.empty() && (new_cost > options.max_tokens || full)) {
        batches.push_back(std::move(current));
        current.clear();
        sequences = longest = tokens = 0;
      }
      if (current.empty()) {
        const std::int64_t alone = options.count_padding ? c.sequences * c.longest : c.tokens;
        if (alone > options.max_tokens) ++oversize;
      }
      current.push_back(item);
      sequences += c.sequences;
      longest = std::max(longest, c.longest);
      tokens += c.tokens;
    }
    if (!current.empty()) batches.push_back(std::move(current));
  }
  if (options.shuffle) shuffle_in_place(batches, rng);
  if (oversize > 0) {
    log().warn("batching: {} item(s) exceed the budget of {} tokens on their own; each is a batch of one",
                oversize, options.max_tokens);
  }
  return batches;
}

std::vector<std::vector<std::int64_t>> make_pair_batches(const std::vector<TokenizedPair>& pairs,
                                                         const BatchingOptions& options,
                                                         const std::vector<std::int64_t>& shared) {
  if (!shared.empty() && shared.size() != pairs.size()) {
    throw Error("make_pair_batches: " + std::to_string(shared.size()) + " shared-prefix lengths for " +
                std::to_string(pairs.size()) + " pairs");
  }
  std::vector<std::vector<std::int64_t>> lengths;
  lengths.reserve(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto c = static_cast<std::int64_t>(pairs[i].chosen.size());
    const auto r = static_cast<std::int64_t>(pairs[i].rejected.size());
    const std::int64_t p = shared.empty() ? 0 : shared[i];
    if (p > 0) {
      lengths.push_back({p, c - p, r - p});
    } else {
      lengths.push_back({c, r});
    }
  }
  return make_batches(lengths, options);
}

std::vector<std::int64_t> shared_prefix_lengths(const std::vector<TokenizedPair>& pairs, std::int64_t min_prefix) {
  std::vector<std::int64_t> out;
  out.reserve(pairs.size());
  for (const auto& pair : pairs) {
    const auto& c = pair.chosen;
    const auto& r = pair.rejected;
    const std::size_t limit = std::min(c.size(), r.size());
    std::size_t p = 0;
    while (p < limit && c[p] == r[p]) ++p;
    // Each side keeps a token of its own (a segment is never empty).
    const auto len = static_cast<std::int64_t>(std::min(p, limit == 0 ? 0 : limit - 1));
    out.push_back(len >= std::max<std::int64_t>(min_prefix, 1) ? len : 0);
  }
  return out;
}

PackedBatch pack_pairs(const std::vector<TokenizedPair>& pairs, const std::vector<std::int64_t>& indices) {
  std::vector<const std::vector<TokenId>*> sequences;
  sequences.reserve(indices.size() * 2);
  for (std::int64_t index : indices) {
    if (index < 0 || index >= static_cast<std::int64_t>(pairs.size())) {
      throw Error("pack_pairs: pair index " + std::to_string(index) + " is out of range for " +
                  std::to_string(pairs.size()) + " pairs");
    }
    const TokenizedPair& p = pairs[static_cast<std::size_t>(index)];
    sequences.push_back(&p.chosen);
    sequences.push_back(&p.rejected);
  }
  return PackedBatch::from_views(sequences);
}

SharedPairBatch pack_shared_pairs(const std::vector<TokenizedPair>& pairs, const std::vector<std::int64_t>& indices,
                                  const std::vector<std::int64_t>& shared, const PoolingRule& pooling) {
  if (shared.size() != pairs.size()) {
    throw Error("pack_shared_pairs: " + std::to_string(shared.size()) + " shared-prefix lengths for " +
                std::to_string(pairs.size()) + " pairs");
  }
  SharedPairBatch out;
  std::vector<PackedBatch::Segment> segments;
  segments.reserve(indices.size() * 3);
  out.rows.reserve(indices.size() * 2);
  std::int64_t row = 0;
  for (std::int64_t index : indices) {
    if (index < 0 || index >= static_cast<std::int64_t>(pairs.size())) {
      throw Error("pack_shared_pairs: pair index " + std::to_string(index) + " is out of range for " +
                  std::to_string(pairs.size()) + " pairs");
    }
    const auto i = static_cast<std::size_t>(index);
    const TokenizedPair& pair = pairs[i];
    const std::int64_t p = shared[i];
    const std::vector<TokenId>* sides[2] = {&pair.chosen, &pair.rejected};
    if (p < 0 || p >= static_cast<std::int64_t>(std::min(pair.chosen.size(), pair.rejected.size())) ||
        !std::equal(pair.chosen.begin(), pair.chosen.begin() + p, pair.rejected.begin())) {
      throw Error("pack_shared_pairs: pair " + std::to_string(index) + " does not share its first " +
                  std::to_string(p) + " tokens with a token of its own left on each side");
    }
    std::int64_t parent = -1, parent_row = row;
    if (p > 0) {
      parent = static_cast<std::int64_t>(segments.size());
      segments.push_back({pair.chosen.data(), p, -1});
      row += p;
    }
    for (const auto* side : sides) {
      const auto len = static_cast<std::int64_t>(side->size());
      const std::int64_t pos =
          pooled_position(side->data(), len, pooling.pooling, pooling.pad_token_id, pooling.eos_ids);
      segments.push_back({side->data() + p, len - p, parent});
      out.rows.push_back(pos < p ? parent_row + pos : row + pos - p);
      row += len - p;
      out.tokens += len;
    }
  }
  out.packed = PackedBatch::from_segments(segments);
  return out;
}

}  // namespace openrm
