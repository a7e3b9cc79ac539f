// Packed batches and the pooling rules, against indices worked out by hand
// from each rule's definition.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>

#include "openrm/error.h"
#include "openrm/models/pooling.h"

namespace openrm {
namespace {

std::vector<int64_t> to_vector(const at::Tensor& t) {
  auto c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// pad = 0. Packed rows: seq0 [5 6 7] = 0..2, seq1 [8 0 0] = 3..5,
// seq2 [0 0] = 6..7, seq3 [4 0 9] = 8..10.
PackedBatch example_batch() {
  return PackedBatch::from_sequences({{5, 6, 7}, {8, 0, 0}, {0, 0}, {4, 0, 9}});
}

TEST(PackedBatch, LaysSequencesEndToEnd) {
  auto b = example_batch();
  EXPECT_EQ(to_vector(b.input_ids), (std::vector<int64_t>{5, 6, 7, 8, 0, 0, 0, 0, 4, 0, 9}));
  EXPECT_EQ(to_vector(b.cu_seqlens), (std::vector<int64_t>{0, 3, 6, 8, 11}));
  EXPECT_EQ(to_vector(b.position_ids), (std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 2}));
  EXPECT_EQ(b.max_seqlen, 3);
  EXPECT_EQ(b.lengths, (std::vector<int64_t>{3, 3, 2, 3}));
}

TEST(PackedBatch, RejectsEmptyInput) {
  EXPECT_THROW(PackedBatch::from_sequences({}), Error);
  try {
    PackedBatch::from_sequences({{1}, {}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 1 is empty"), std::string::npos) << e.what();
  }
}

TEST(Pooling, RightmostNonPadFollowsTransformers) {
  // seq0: no pad -> its last row 2; seq1: 8 is the rightmost non-pad -> 3;
  // seq2: all pad -> its first row 6 (argmax of an all-zero row is 0);
  // seq3: 9 -> 10.
  EXPECT_EQ(to_vector(pooled_token_indices(example_batch(), Pooling::kRightmostNonPad, 0)),
            (std::vector<int64_t>{2, 3, 6, 10}));
}

TEST(Pooling, LastTokenIgnoresPadIds) {
  EXPECT_EQ(to_vector(pooled_token_indices(example_batch(), Pooling::kLastToken, 0)),
            (std::vector<int64_t>{2, 5, 7, 10}));
}

TEST(Pooling, BeforeFirstPadWrapsAroundLikeTheLegacyRule) {
  // seq0: no pad -> (len - 1) -> 2; seq1: first pad at 1 -> position 0 -> 3;
  // seq2: first pad at 0 -> (-1 mod 2) = 1 -> 7; seq3: first pad at 1 -> 8.
  EXPECT_EQ(to_vector(pooled_token_indices(example_batch(), Pooling::kBeforeFirstPad, 0)),
            (std::vector<int64_t>{2, 3, 7, 8}));
}

TEST(Pooling, FirstTokenReadsEachSequencesFirstRow) {
  EXPECT_EQ(to_vector(pooled_token_indices(example_batch(), Pooling::kFirstToken, 0)),
            (std::vector<int64_t>{0, 3, 6, 8}));
  EXPECT_EQ(parse_pooling("cls"), Pooling::kFirstToken);
}

TEST(Pooling, EosReadsTheLastEosTokenOrTheLastToken) {
  // EOS ids 0 and 7: seq0 [5 6 7] -> 2; seq1 [8 0 0] -> the last 0, row 5;
  // seq2 [0 0] -> 7; seq3 [4 0 9] -> the 0 at row 9.
  EXPECT_EQ(to_vector(pooled_token_indices(example_batch(), Pooling::kEos, std::nullopt, {0, 7})),
            (std::vector<int64_t>{2, 5, 7, 9}));
  // Only 6: seq0 -> row 1; the others have none and read their last token.
  EXPECT_EQ(to_vector(pooled_token_indices(example_batch(), Pooling::kEos, std::nullopt, {6})),
            (std::vector<int64_t>{1, 5, 7, 10}));
  try {
    pooled_token_indices(example_batch(), Pooling::kEos, 0, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eos_token_id"), std::string::npos) << e.what();
  }
}

TEST(Pooling, WithoutPadTokenOnlySingleSequencesPoolByTheDefaultRule) {
  auto batch = example_batch();
  try {
    pooled_token_indices(batch, Pooling::kRightmostNonPad, std::nullopt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no pad_token_id"), std::string::npos) << e.what();
  }
  auto single = PackedBatch::from_sequences({{3, 0, 0}});
  EXPECT_EQ(to_vector(pooled_token_indices(single, Pooling::kRightmostNonPad, std::nullopt)),
            (std::vector<int64_t>{2}));
  EXPECT_EQ(to_vector(pooled_token_indices(batch, Pooling::kLastToken, std::nullopt)),
            (std::vector<int64_t>{2, 5, 7, 10}));
}

TEST(Pooling, OneSequenceOnTheHostPoolsLikeTheBatch) {
  // By hand first: pad 0.
  const std::vector<std::int32_t> a = {4, 0, 9, 0, 0};
  EXPECT_EQ(pooled_position(a.data(), 5, Pooling::kRightmostNonPad, 0), 2);
  EXPECT_EQ(pooled_position(a.data(), 5, Pooling::kBeforeFirstPad, 0), 0);
  EXPECT_EQ(pooled_position(a.data(), 5, Pooling::kLastToken, 0), 4);
  EXPECT_EQ(pooled_position(a.data(), 5, Pooling::kRightmostNonPad, std::nullopt), 4);
  const std::vector<std::int32_t> pads = {0, 0};
  EXPECT_EQ(pooled_position(pads.data(), 2, Pooling::kRightmostNonPad, 0), 0);
  EXPECT_EQ(pooled_position(pads.data(), 2, Pooling::kBeforeFirstPad, 0), 1);  // wraps around
  // Then against the batched rule on many sequences rich in pads.
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> length(1, 9), id(0, 2);
  std::vector<std::vector<std::int64_t>> seqs(200);
  for (auto& s : seqs) {
    for (int k = length(rng); k > 0; --k) s.push_back(id(rng));
  }
  const PackedBatch batch = PackedBatch::from_sequences(seqs);
  const std::vector<std::int64_t> eos = {2};
  for (auto rule : {Pooling::kRightmostNonPad, Pooling::kLastToken, Pooling::kBeforeFirstPad, Pooling::kFirstToken,
                    Pooling::kEos}) {
    const auto rows = to_vector(pooled_token_indices(batch, rule, 0, eos));
    std::int64_t start = 0;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      const std::vector<std::int32_t> ids(seqs[i].begin(), seqs[i].end());
      EXPECT_EQ(start + pooled_position(ids.data(), static_cast<std::int64_t>(ids.size()), rule, 0, eos), rows[i])
          << pooling_name(rule) << ", sequence " << i;
      start += static_cast<std::int64_t>(ids.size());
    }
  }
}

TEST(Pooling, NamesRoundTripAndUnknownNamesAreRejected) {
  for (auto p : {Pooling::kRightmostNonPad, Pooling::kLastToken, Pooling::kBeforeFirstPad, Pooling::kFirstToken,
                 Pooling::kEos}) {
    EXPECT_EQ(parse_pooling(pooling_name(p)), p);
  }
  try {
    parse_pooling("mean");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rightmost_non_pad"), std::string::npos);
  }
}

}  // namespace
}  // namespace openrm
