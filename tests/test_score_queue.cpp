// The in-process API for RLHF loops: a Scorer called from many threads at
// once, the ScoreQueue that batches concurrent requests together, and
// Scorer::score_padded for a PPO loop's padded batch. The reference is each
// sequence scored alone (RewardModel::score).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <openrm/score/score_queue.h>
#include <openrm/score/scorer.h>

#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

using Sequences = std::vector<std::vector<TokenId>>;

Sequences random_sequences(int n, int max_len, std::uint64_t seed, int min_len = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> length(min_len, max_len), id(1, 63);
  Sequences out(static_cast<std::size_t>(n));
  for (auto& s : out) {
    for (int k = length(rng); k > 0; --k) s.push_back(id(rng));
  }
  return out;
}

std::shared_ptr<RewardModel> tiny_model() {
  auto model = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  model->init_weights(/*seed=*/3, /*std=*/0.2);
  return model;
}

float alone(RewardModel& model, const std::vector<TokenId>& ids) {
  return model.score({std::vector<std::int64_t>(ids.begin(), ids.end())})[0];
}

TEST(ConcurrentScorer, ManyThreadsGetTheirOwnRewardsAndTheStatisticsAddUp) {
  auto model = tiny_model();
  ScoreOptions options;
  options.threads = 1;
  Scorer scorer(model, nullptr, ChatFormat::kPlain, options);
  constexpr int kThreads = 8, kCalls = 6;
  std::vector<std::vector<Sequences>> inputs(kThreads);
  std::vector<std::vector<std::vector<float>>> outputs(kThreads);
  std::int64_t sequences = 0, tokens = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int c = 0; c < kCalls; ++c) {
      inputs[t].push_back(random_sequences(1 + (t + c) % 4, 30, 100 * t + c));
      for (const auto& s : inputs[t].back()) {
        ++sequences;
        tokens += static_cast<std::int64_t>(s.size());
      }
    }
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const auto& in : inputs[t]) outputs[t].push_back(scorer.score_tokens(in));
    });
  }
  for (auto& th : threads) th.join();
  double worst = 0.0;
  for (int t = 0; t < kThreads; ++t) {
    for (int c = 0; c < kCalls; ++c) {
      ASSERT_EQ(outputs[t][c].size(), inputs[t][c].size());
      for (std::size_t i = 0; i < inputs[t][c].size(); ++i) {
        worst = std::max(worst, std::fabs(double(outputs[t][c][i]) - alone(*model, inputs[t][c][i])));
      }
    }
  }
  EXPECT_LT(worst, 1e-5);
  const ScoreStats s = scorer.stats();
  EXPECT_EQ(s.sequences, sequences);
  EXPECT_EQ(s.tokens, tokens);
}

TEST(ScoreQueueTest, ConcurrentRequestsAreBatchedTogetherAndAnsweredInOrder) {
  auto model = tiny_model();
  ScoreOptions options;
  options.threads = 1;
  auto scorer = std::make_shared<Scorer>(model, nullptr, ChatFormat::kPlain, options);
  ScoreQueueOptions q;
  q.max_wait_us = 20000;  // long enough that concurrent requests meet
  ScoreQueue queue(scorer, q);
  constexpr int kClients = 16, kRequests = 5;
  std::vector<std::vector<Sequences>> inputs(kClients);
  std::vector<std::vector<std::vector<float>>> outputs(kClients);
  for (int c = 0; c < kClients; ++c) {
    for (int r = 0; r < kRequests; ++r) inputs[c].push_back(random_sequences(1 + (c + r) % 3, 40, 1000 * c + r));
  }
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (const auto& in : inputs[c]) outputs[c].push_back(queue.score_tokens(in));
    });
  }
  for (auto& th : clients) th.join();
  queue.drain();
  double worst = 0.0;
  std::int64_t sequences = 0;
  for (int c = 0; c < kClients; ++c) {
    for (int r = 0; r < kRequests; ++r) {
      ASSERT_EQ(outputs[c][r].size(), inputs[c][r].size());
      for (std::size_t i = 0; i < inputs[c][r].size(); ++i) {
        worst = std::max(worst, std::fabs(double(outputs[c][r][i]) - alone(*model, inputs[c][r][i])));
        ++sequences;
      }
    }
  }
  EXPECT_LT(worst, 1e-5) << "a request's rewards are those of its own sequences";
  const ScoreQueueStats s = queue.stats();
  EXPECT_EQ(s.requests, kClients * kRequests);
  EXPECT_EQ(s.sequences, sequences);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.queued, 0u);
  // Sixteen clients at once share Scorer calls.
  EXPECT_LT(s.batches, s.requests);
  EXPECT_GT(s.max_batch_requests, 1);
  std::printf("[ queue    ] %lld requests in %lld Scorer calls (at most %lld requests in one)\n",
              static_cast<long long>(s.requests), static_cast<long long>(s.batches),
              static_cast<long long>(s.max_batch_requests));
}

TEST(ScoreQueueTest, BadRequestsFailAloneAndShutdownFinishesTheQueue) {
  auto model = tiny_model();
  auto scorer = std::make_shared<Scorer>(model, nullptr, ChatFormat::kPlain, ScoreOptions{});
  ScoreQueue queue(scorer, {});
  const auto vocab = model->config().vocab_size;
  EXPECT_TRUE(test::contains(test::error_of([&] { queue.submit({{1, 2}, {1, static_cast<TokenId>(vocab)}}); }),
                             "sequence 1, token 1: id"));
  EXPECT_TRUE(test::contains(test::error_of([&] { queue.submit({{1, 2}, {}}); }), "sequence 1 is empty"));
  const auto max = model->config().max_position_embeddings;
  EXPECT_TRUE(test::contains(
      test::error_of([&] { queue.submit({std::vector<TokenId>(static_cast<std::size_t>(max) + 1, 5)}); }),
      "max_position_embeddings"));
  EXPECT_TRUE(queue.score_tokens({}).empty());
  // Queued work is finished by shutdown; new work is refused.
  std::vector<std::future<std::vector<float>>> pending;
  const auto seqs = random_sequences(20, 30, 9);
  for (const auto& s : seqs) pending.push_back(queue.submit({s}));
  queue.shutdown();
  EXPECT_TRUE(test::contains(test::error_of([&] { queue.submit({{1, 2, 3}}); }), "shutting down"));
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const auto r = pending[i].get();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_NEAR(r[0], alone(*model, seqs[i]), 1e-5);
  }
  queue.drain();
  EXPECT_GE(queue.stats().rejected, 1);
  ScoreQueueOptions bad;
  bad.max_tokens = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { ScoreQueue q(scorer, bad); }), "max_tokens"));
}

TEST(ScoreQueueTest, AFullQueueRefusesWithQueueFull) {
  auto model = tiny_model();
  auto scorer = std::make_shared<Scorer>(model, nullptr, ChatFormat::kPlain, ScoreOptions{});
  ScoreQueueOptions q;
  q.max_queued_requests = 2;
  q.max_wait_us = 2'000'000;  // the worker waits for company: the queue fills
  q.max_tokens = 1 << 20;
  ScoreQueue queue(scorer, q);
  auto a = queue.submit({{1, 2, 3}});
  auto b = queue.submit({{4, 5, 6}});
  bool full = false;
  try {
    queue.submit({{7, 8, 9}});
  } catch (const QueueFull& e) {
    full = test::contains(e.what(), "full");
  }
  EXPECT_TRUE(full);
  queue.shutdown();  // no more waiting: the two are scored now
  EXPECT_EQ(a.get().size(), 1u);
  EXPECT_EQ(b.get().size(), 1u);
}

// A model whose reward is its last token's id, and that fails any batch
// holding the trap id: a failed gathered call is retried request by request,
// so only the request with the trap gets the error.
class TrapModel : public RewardModel {
 public:
  static constexpr TokenId kTrap = 13;
  explicit TrapModel(ModelConfig c) : RewardModel(std::move(c), Pooling::kLastToken) {
    w = register_parameter("w", torch::ones({1}));
  }
  at::Tensor hidden_states(const PackedBatch& batch) override {
    if (batch.input_ids.eq(kTrap).any().item<bool>()) throw Error("the trap token is in this batch");
    return batch.input_ids.to(at::kFloat).unsqueeze(1) * w;  // (T, 1)
  }
  at::Tensor head(const at::Tensor& pooled) override { return pooled; }
  at::Tensor w;
};

TEST(ScoreQueueTest, AFailedGatheredCallFailsOnlyTheRequestThatCausedIt) {
  auto model = std::make_shared<TrapModel>(test::tiny_config("LlamaForSequenceClassification"));
  auto scorer = std::make_shared<Scorer>(model, nullptr, ChatFormat::kPlain, ScoreOptions{});
  ScoreQueueOptions q;
  q.max_wait_us = 300'000;  // the three requests meet in one call
  q.max_tokens = 1 << 20;
  ScoreQueue queue(scorer, q);
  auto a = queue.submit({{1, 2, 3}});
  auto b = queue.submit({{5, TrapModel::kTrap}, {4, 6}});
  auto c = queue.submit({{7, 8}});
  EXPECT_EQ(a.get(), std::vector<float>({3.0f}));
  EXPECT_TRUE(test::contains(test::error_of([&] { b.get(); }), "trap token"));
  EXPECT_EQ(c.get(), std::vector<float>({8.0f}));
  queue.drain();
  const ScoreQueueStats s = queue.stats();
  EXPECT_EQ(s.requests, 3);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.batches, 4) << "one gathered call, then one per request";
}

TEST(ScorePadded, LeftAndRightPaddedRowsScoreAsTheirTokensAlone) {
  auto model = tiny_model();
  ScoreOptions options;
  options.threads = 1;
  Scorer scorer(model, nullptr, ChatFormat::kPlain, options);
  const auto seqs = random_sequences(9, 25, 4);
  std::int64_t width = 0;
  for (const auto& s : seqs) width = std::max<std::int64_t>(width, static_cast<std::int64_t>(s.size()));
  for (const bool left : {false, true}) {
    SCOPED_TRACE(left ? "left padding" : "right padding");
    auto ids = torch::full({static_cast<std::int64_t>(seqs.size()), width + 2}, 0, torch::kLong);
    auto mask = torch::zeros_like(ids);
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      const auto n = static_cast<std::int64_t>(seqs[b].size());
      const std::int64_t start = left ? width + 2 - n : 0;
      for (std::int64_t j = 0; j < n; ++j) ids[static_cast<std::int64_t>(b)][start + j] = seqs[b][static_cast<std::size_t>(j)];
      mask[static_cast<std::int64_t>(b)].slice(0, start, start + n).fill_(1);
    }
    const at::Tensor rewards = scorer.score_padded(ids.to(torch::kInt), mask.to(torch::kBool));
    ASSERT_EQ(rewards.size(0), static_cast<std::int64_t>(seqs.size()));
    EXPECT_EQ(rewards.scalar_type(), torch::kFloat);
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      EXPECT_NEAR(rewards[static_cast<std::int64_t>(b)].item<double>(), alone(*model, seqs[b]), 1e-5) << b;
    }
  }
  auto ids = torch::ones({2, 4}, torch::kLong);
  auto error = [&](const at::Tensor& i, const at::Tensor& m) {
    return test::error_of([&] { scorer.score_padded(i, m); });
  };
  EXPECT_TRUE(test::contains(error(ids, torch::tensor({{1, 0, 1, 1}, {1, 1, 1, 1}})), "row 0: attention_mask's ones are not one run"));
  EXPECT_TRUE(test::contains(error(ids, torch::tensor({{1, 1, 1, 1}, {0, 0, 0, 0}})), "row 1: attention_mask marks no token"));
  EXPECT_TRUE(test::contains(error(ids, torch::tensor({{1, 2, 1, 1}, {1, 1, 1, 1}})), "values other than 0 and 1"));
  EXPECT_TRUE(test::contains(error(ids, torch::ones({2, 3}, torch::kLong)), "must be equal"));
  EXPECT_TRUE(test::contains(error(ids.to(torch::kFloat), torch::ones({2, 4}, torch::kLong)), "integers"));
  EXPECT_TRUE(test::contains(error(ids * 1000, torch::ones({2, 4}, torch::kLong)), "outside the vocabulary"));
  EXPECT_EQ(scorer.score_padded(torch::zeros({0, 4}, torch::kLong), torch::zeros({0, 4}, torch::kLong)).size(0), 0);
}

}  // namespace
}  // namespace openrm
