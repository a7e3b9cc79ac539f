// Token-budget batching: coverage, budgets, determinism, pair packing.
#include <gtest/gtest.h>

#include <openrm/data/batching.h>

#include <algorithm>
#include <iostream>
#include <random>
#include <set>

#include "test_io_util.h"

namespace openrm {
namespace {

// Pairs with lengths drawn from a skewed distribution (many short, a few long),
// like real preference data.
std::vector<std::vector<std::int64_t>> random_pair_lengths(int n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::lognormal_distribution<double> dist(5.0, 0.8);
  std::vector<std::vector<std::int64_t>> lengths;
  for (int i = 0; i < n; ++i) {
    auto a = std::clamp<std::int64_t>(static_cast<std::int64_t>(dist(rng)), 1, 2048);
    auto b = std::clamp<std::int64_t>(static_cast<std::int64_t>(dist(rng)), 1, 2048);
    lengths.push_back({a, b});
  }
  return lengths;
}

std::int64_t padded_cost(const std::vector<std::vector<std::int64_t>>& lengths,
                         const std::vector<std::int64_t>& batch) {
  std::int64_t seqs = 0, longest = 0;
  for (auto i : batch) {
    for (auto len : lengths[static_cast<std::size_t>(i)]) {
      ++seqs;
      longest = std::max(longest, len);
    }
  }
  return seqs * longest;
}

TEST(Batching, EveryItemExactlyOnceAndWithinBudget) {
  auto lengths = random_pair_lengths(3000, 1);
  BatchingOptions o;
  o.max_tokens = 4096;
  o.seed = 7;
  auto batches = make_batches(lengths, o);
  std::vector<int> seen(lengths.size(), 0);
  for (const auto& b : batches) {
    ASSERT_FALSE(b.empty());
    for (auto i : b) ++seen[static_cast<std::size_t>(i)];
    if (b.size() > 1) EXPECT_LE(padded_cost(lengths, b), o.max_tokens);
  }
  for (int count : seen) EXPECT_EQ(count, 1);
}

TEST(Batching, UnpaddedBudgetCountsRealTokens) {
  auto lengths = random_pair_lengths(1000, 2);
  BatchingOptions o;
  o.max_tokens = 3000;
  o.count_padding = false;
  for (const auto& b : make_batches(lengths, o)) {
    std::int64_t tokens = 0;
    for (auto i : b) tokens += lengths[static_cast<std::size_t>(i)][0] + lengths[static_cast<std::size_t>(i)][1];
    if (b.size() > 1) EXPECT_LE(tokens, o.max_tokens);
  }
}

TEST(Batching, SameSeedSameBatchesOtherSeedOtherOrder) {
  auto lengths = random_pair_lengths(2000, 3);
  BatchingOptions o;
  o.max_tokens = 4096;
  o.seed = 11;
  auto a = make_batches(lengths, o);
  auto b = make_batches(lengths, o);
  EXPECT_EQ(a, b);
  o.seed = 12;
  auto c = make_batches(lengths, o);
  EXPECT_NE(a, c);
}

TEST(Batching, LengthBucketingCutsPaddingAgainstInputOrderBatches) {
  auto lengths = random_pair_lengths(4000, 4);
  BatchingOptions o;
  o.max_tokens = 8192;
  auto batches = make_batches(lengths, o);
  // A pair costs at least 2 x its longer side: that much padding is inherent.
  std::int64_t floor = 0, padded = 0;
  for (const auto& b : batches) {
    padded += padded_cost(lengths, b);
    for (auto i : b) floor += 2 * std::max(lengths[static_cast<std::size_t>(i)][0], lengths[static_cast<std::size_t>(i)][1]);
  }
  // Fixed batches of 16 pairs in input order, as a naive loader would make.
  std::int64_t naive = 0;
  for (std::size_t s = 0; s < lengths.size(); s += 16) {
    std::vector<std::int64_t> b;
    for (std::size_t i = s; i < std::min(lengths.size(), s + 16); ++i) b.push_back(static_cast<std::int64_t>(i));
    naive += padded_cost(lengths, b);
  }
  const double efficiency = static_cast<double>(floor) / static_cast<double>(padded);
  const double naive_efficiency = static_cast<double>(floor) / static_cast<double>(naive);
  std::cout << "floor / padded cost: bucketed " << efficiency << ", fixed batches of 16 " << naive_efficiency << "\n";
  EXPECT_GT(efficiency, 0.95) << "padding between pairs too high";
  EXPECT_GT(efficiency, naive_efficiency + 0.2) << naive_efficiency;
}

TEST(Batching, WithinABucketBatchesAreLengthSorted) {
  auto lengths = random_pair_lengths(500, 5);
  BatchingOptions o;
  o.max_tokens = 2048;
  o.bucket_items = 500;  // one bucket: batches partition the sorted order
  o.shuffle = false;
  auto batches = make_batches(lengths, o);
  std::int64_t previous = std::numeric_limits<std::int64_t>::max();
  for (const auto& b : batches) {
    for (auto i : b) {
      const auto longest = std::max(lengths[static_cast<std::size_t>(i)][0], lengths[static_cast<std::size_t>(i)][1]);
      EXPECT_LE(longest, previous);
      previous = longest;
    }
  }
}

TEST(Batching, MaxItemsCapsBatchSize) {
  auto lengths = random_pair_lengths(300, 6);
  BatchingOptions o;
  o.max_tokens = 1 << 30;
  o.max_items = 8;
  auto batches = make_batches(lengths, o);
  for (const auto& b : batches) EXPECT_LE(b.size(), 8u);
  EXPECT_EQ(batches.size(), 38u);  // ceil(300 / 8)
}

TEST(Batching, OversizeItemsGetABatchOfTheirOwn) {
  std::vector<std::vector<std::int64_t>> lengths = {{10, 10}, {5000, 20}, {12, 9}};
  BatchingOptions o;
  o.max_tokens = 100;
  auto batches = make_batches(lengths, o);
  bool alone = false;
  for (const auto& b : batches) {
    if (std::find(b.begin(), b.end(), 1) != b.end()) alone = b.size() == 1;
  }
  EXPECT_TRUE(alone);
}

TEST(Batching, BadOptionsAndLengthsAreErrors) {
  BatchingOptions o;
  o.max_tokens = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { make_batches({{1, 2}}, o); }), "max_tokens"));
  o.max_tokens = 10;
  EXPECT_TRUE(test::contains(test::error_of([&] { make_batches({{1, 0}}, o); }), "item 0"));
  EXPECT_TRUE(test::contains(test::error_of([&] { make_batches({{}}, o); }), "no sequences"));
  EXPECT_TRUE(make_batches({}, o).empty());
}

TEST(Batching, PackPairsPutsBothSidesOfAPairTogether) {
  std::vector<TokenizedPair> pairs(3);
  pairs[0].chosen = {1, 2, 3};
  pairs[0].rejected = {1, 4};
  pairs[1].chosen = {1, 5};
  pairs[1].rejected = {1, 6, 7, 8};
  pairs[2].chosen = {9};
  pairs[2].rejected = {10};
  PackedBatch batch = pack_pairs(pairs, {1, 0});
  ASSERT_EQ(batch.num_sequences(), 4);
  EXPECT_EQ(batch.lengths, (std::vector<std::int64_t>{2, 4, 3, 2}));
  std::vector<std::int64_t> ids(batch.input_ids.data_ptr<std::int64_t>(),
                                batch.input_ids.data_ptr<std::int64_t>() + batch.num_tokens());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{1, 5, 1, 6, 7, 8, 1, 2, 3, 1, 4}));
  EXPECT_TRUE(test::contains(test::error_of([&] { pack_pairs(pairs, {3}); }), "out of range"));

  auto batches = make_pair_batches(pairs, BatchingOptions{});
  std::set<std::int64_t> all;
  for (const auto& b : batches) all.insert(b.begin(), b.end());
  EXPECT_EQ(all, (std::set<std::int64_t>{0, 1, 2}));
}

TEST(PrefixSharing, SharedLengthIsTheCommonPrefixLeavingEachSideAToken) {
  std::vector<TokenizedPair> pairs(6);
  std::vector<TokenId> prompt(20);
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<TokenId>(100 + i);
  auto with = [&](std::vector<TokenId> tail, std::size_t keep = 20) {
    std::vector<TokenId> out(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(keep));
    out.insert(out.end(), tail.begin(), tail.end());
    return out;
  };
  pairs[0] = {with({1, 2}), with({3}), 0.0};          // diverge after the prompt: 20
  pairs[1] = {with({}, 15), with({}, 15), 0.0};        // identical, 15 tokens: 14 < 16, none
  pairs[2] = {with({}, 17), with({}, 17), 0.0};        // identical, 17 tokens: 16 (one token each kept)
  pairs[3] = {with({}), with({5, 6, 7}), 0.0};         // chosen is a prefix of rejected: 19
  pairs[4] = {{9, 1, 2}, {8, 1, 2}, 0.0};              // first token differs: 0
  pairs[5] = {with({4}, 16), with({5}, 16), 0.0};      // exactly min_prefix: 16
  EXPECT_EQ(shared_prefix_lengths(pairs), (std::vector<std::int64_t>{20, 0, 16, 19, 0, 16}));
  EXPECT_EQ(shared_prefix_lengths(pairs, 17), (std::vector<std::int64_t>{20, 0, 0, 19, 0, 0}));
  EXPECT_EQ(shared_prefix_lengths(pairs, 0), (std::vector<std::int64_t>{20, 14, 16, 19, 0, 16}));
}

TEST(PrefixSharing, TheBudgetCountsSharedTokensOnce) {
  // Four pairs of a 30-token prompt and 5-token answers: 70 tokens each run
  // whole, 40 with the prompt once. A budget of 80 real tokens holds two
  // shared pairs, one whole pair.
  std::vector<TokenizedPair> pairs(4);
  for (auto& p : pairs) {
    p.chosen.assign(35, 3);
    p.rejected.assign(30, 3);
    p.rejected.insert(p.rejected.end(), 5, 4);
  }
  BatchingOptions o;
  o.max_tokens = 80;
  o.count_padding = false;
  const auto shared = shared_prefix_lengths(pairs);
  ASSERT_EQ(shared, std::vector<std::int64_t>(4, 30));
  const auto sharing = make_pair_batches(pairs, o, shared);
  const auto whole = make_pair_batches(pairs, o);
  EXPECT_EQ(sharing.size(), 2u);
  EXPECT_EQ(whole.size(), 4u);
  for (const auto& b : sharing) {
    EXPECT_EQ(b.size(), 2u);
    const SharedPairBatch packed = pack_shared_pairs(pairs, b, shared, PoolingRule{Pooling::kLastToken, {}, {}});
    EXPECT_EQ(packed.packed.num_tokens(), 80);
    EXPECT_EQ(packed.tokens, 140);
  }
  EXPECT_TRUE(test::contains(test::error_of([&] { make_pair_batches(pairs, o, {30}); }), "1 shared-prefix lengths for 4"));
}

TEST(PrefixSharing, PackedSegmentsAndPooledRows) {
  std::vector<TokenizedPair> pairs(2);
  pairs[0].chosen = {1, 2, 3, 4, 5};
  pairs[0].rejected = {1, 2, 3, 6};
  pairs[1].chosen = {7, 8};
  pairs[1].rejected = {9};
  const std::vector<std::int64_t> shared = {3, 0};
  const SharedPairBatch b = pack_shared_pairs(pairs, {1, 0}, shared, PoolingRule{Pooling::kLastToken, {}, {}});
  // Pair 1 whole (two segments), then pair 0: prompt [1 2 3], [4 5], [6].
  EXPECT_EQ(b.packed.lengths, (std::vector<std::int64_t>{2, 1, 3, 2, 1}));
  EXPECT_EQ(b.packed.parents, (std::vector<std::int64_t>{-1, -1, -1, 2, 2}));
  std::vector<std::int64_t> ids(b.packed.input_ids.data_ptr<std::int64_t>(),
                                b.packed.input_ids.data_ptr<std::int64_t>() + b.packed.num_tokens());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{7, 8, 9, 1, 2, 3, 4, 5, 6}));
  std::vector<std::int64_t> positions(b.packed.position_ids.data_ptr<std::int64_t>(),
                                      b.packed.position_ids.data_ptr<std::int64_t>() + b.packed.num_tokens());
  EXPECT_EQ(positions, (std::vector<std::int64_t>{0, 1, 0, 0, 1, 2, 3, 4, 3}));
  EXPECT_EQ(b.rows, (std::vector<std::int64_t>{1, 2, 7, 8}));  // last token of each side
  EXPECT_EQ(b.tokens, 12);
  // First-token pooling reads both sides of pair 0 in the shared prompt.
  const SharedPairBatch first = pack_shared_pairs(pairs, {0}, shared, PoolingRule{Pooling::kFirstToken, {}, {}});
  EXPECT_EQ(first.rows, (std::vector<std::int64_t>{0, 0}));
  EXPECT_TRUE(test::contains(test::error_of([&] { pack_shared_pairs(pairs, {0}, {4, 0}, {}); }),
                             "does not share its first 4 tokens"));
  EXPECT_TRUE(test::contains(test::error_of([&] { pack_shared_pairs(pairs, {2}, shared, {}); }), "out of range"));
}

}  // namespace
}  // namespace openrm
