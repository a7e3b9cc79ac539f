// The Scorer and openrm-score: batched rewards against each sequence scored
// alone, in input order; normalisation against the formula; records, pairs
// and streaming files; errors; and the CUDA path against CPU fp32
// (*_CUDA, skipped without a GPU).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <openrm/data/tokenize.h>
#include <openrm/eval/evaluate.h>
#include <openrm/io/file.h>
#include <openrm/models/model_folder.h>
#include <openrm/runtime.h>
#include <openrm/score/scorer.h>
#include <random>
#include <sstream>
#include <thread>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

std::vector<std::vector<TokenId>> random_sequences(int n, int max_len, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> length(1, max_len), id(1, 63);
  std::vector<std::vector<TokenId>> out(static_cast<std::size_t>(n));
  for (auto& s : out) {
    for (int k = length(rng); k > 0; --k) s.push_back(id(rng));
  }
  return out;
}

std::shared_ptr<RewardModel> tiny_model(const std::string& architecture = "LlamaForSequenceClassification") {
  auto model = create_reward_model(test::tiny_config(architecture));
  model->init_weights(/*seed=*/3, /*std=*/0.2);
  return model;
}

// The reference: each sequence alone, through RewardModel::score.
float alone(RewardModel& model, const std::vector<TokenId>& ids) {
  return model.score({std::vector<std::int64_t>(ids.begin(), ids.end())})[0];
}

// ---- score_tokens ------------------------------------------------------------------

TEST(Scorer, TokenRewardsEqualEachSequenceAloneInInputOrder) {
  for (const char* arch : {"LlamaForSequenceClassification", "MistralForSequenceClassification",
                           "Qwen3ForSequenceClassification"}) {
    auto model = tiny_model(arch);
    ScoreOptions options;
    options.max_tokens = 150;  // many batches of different shapes
    Scorer scorer(model, nullptr, ChatFormat::kPlain, options);
    const auto seqs = random_sequences(41, 60, 7);
    const auto rewards = scorer.score_tokens(seqs);
    ASSERT_EQ(rewards.size(), seqs.size());
    double worst = 0;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      worst = std::max(worst, std::fabs(double(rewards[i]) - alone(*model, seqs[i])));
    }
    EXPECT_LT(worst, 1e-5) << arch << ": largest difference between batched and alone";
    const ScoreStats& s = scorer.stats();
    EXPECT_GT(s.batches, 5) << arch;
    EXPECT_EQ(s.sequences, 41);
    std::int64_t tokens = 0;
    for (const auto& q : seqs) tokens += static_cast<std::int64_t>(q.size());
    EXPECT_EQ(s.tokens, tokens);
  }
}

TEST(Scorer, BatchesRespectTheBudget) {
  auto model = tiny_model();
  const auto seqs = random_sequences(64, 60, 11);
  std::int64_t tokens = 0;
  double squares = 0;
  for (const auto& q : seqs) {
    tokens += static_cast<std::int64_t>(q.size());
    squares += static_cast<double>(q.size() * q.size());
  }
  ScoreOptions options;
  options.max_tokens = 256;
  Scorer scorer(model, nullptr, ChatFormat::kPlain, options);
  scorer.score_tokens(seqs);
  const ScoreStats& s = scorer.stats();
  // No batch over 256 tokens (every sequence is shorter), and greedy filling
  // leaves each batch but the last more than 256 - 60 tokens.
  EXPECT_GE(s.batches, (tokens + 255) / 256);
  EXPECT_LE(s.batches, tokens / (256 - 60) + 1);
  EXPECT_DOUBLE_EQ(s.attention_cells, squares);

  // A sequence cap per batch.
  options.max_batch_sequences = 3;
  Scorer capped(model, nullptr, ChatFormat::kPlain, options);
  capped.score_tokens(seqs);
  EXPECT_GE(capped.stats().batches, 22);  // ceil(64 / 3)
}

// Sequences that begin alike: groups of responses to one prompt, the two
// sides of pairs, exact duplicates, a sequence that is the prefix of another,
// trailing pads (pooled before them), and unrelated sequences.
std::vector<std::vector<TokenId>> sequences_with_shared_prefixes() {
  std::vector<std::vector<TokenId>> out;
  const auto prompts = random_sequences(6, 60, 21);
  const auto responses = random_sequences(30, 25, 22);
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    auto prompt = prompts[p];
    while (prompt.size() < 20) prompt.push_back(5);  // long enough to share
    for (std::size_t r = 0; r < 1 + p % 4; ++r) {
      auto seq = prompt;
      const auto& tail = responses[(p * 5 + r) % responses.size()];
      seq.insert(seq.end(), tail.begin(), tail.end());
      out.push_back(seq);
    }
    if (p == 1) out.push_back(out.back());                                     // a duplicate
    if (p == 2) out.push_back(prompt);                                         // the bare prompt
    if (p == 3) {
      auto padded = out.back();
      padded.insert(padded.end(), {0, 0, 0});  // pad id 0: pooled before the pads
      out.push_back(padded);
    }
  }
  for (auto& s : random_sequences(5, 40, 23)) out.push_back(s);
  std::shuffle(out.begin(), out.end(), std::mt19937_64(24));
  return out;
}

TEST(Scorer, SharedPrefixesScoreAsEachSequenceAlone) {
  for (const char* arch : {"LlamaForSequenceClassification", "MistralForSequenceClassification",
                           "Qwen3ForSequenceClassification"}) {
    auto config = test::tiny_config(arch);
    if (std::string(arch).rfind("Mistral", 0) == 0) config.sliding_window = 8;  // shorter than the prompts
    auto model = create_reward_model(config);
    model->init_weights(3, 0.2);
    const auto seqs = sequences_with_shared_prefixes();
    for (std::int64_t budget : {std::int64_t{100000}, std::int64_t{120}}) {
      ScoreOptions options;
      options.max_tokens = budget;
      Scorer scorer(model, nullptr, ChatFormat::kPlain, options);
      const auto rewards = scorer.score_tokens(seqs);
      ASSERT_EQ(rewards.size(), seqs.size());
      double worst = 0;
      for (std::size_t i = 0; i < seqs.size(); ++i) {
        worst = std::max(worst, std::fabs(double(rewards[i]) - alone(*model, seqs[i])));
      }
      EXPECT_LT(worst, 1e-5) << arch << ", budget " << budget;
      const ScoreStats& s = scorer.stats();
      std::int64_t tokens = 0;
      for (const auto& q : seqs) tokens += static_cast<std::int64_t>(q.size());
      EXPECT_EQ(s.tokens, tokens);
      EXPECT_LT(s.computed_tokens, tokens * 3 / 4) << arch << ": the prompts were not shared";
      if (budget == 120) EXPECT_GT(s.batches, 3);

      options.share_prefixes = false;
      Scorer unshared(model, nullptr, ChatFormat::kPlain, options);
      const auto plain = unshared.score_tokens(seqs);
      EXPECT_EQ(unshared.stats().computed_tokens, tokens);
      for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_NEAR(plain[i], rewards[i], 1e-5) << i;
    }
  }
}

TEST(Scorer, APrefixIsComputedOnceAndCountedOnce) {
  auto model = tiny_model();
  std::vector<TokenId> prompt(30, 7), a = prompt, b = prompt;
  a.insert(a.end(), {1, 2, 3, 4});
  b.insert(b.end(), {9, 8});
  ScoreOptions options;
  options.min_shared_prefix = 16;
  Scorer scorer(model, nullptr, ChatFormat::kPlain, options);
  const auto rewards = scorer.score_tokens({a, b});
  EXPECT_EQ(scorer.stats().tokens, 34 + 32);
  EXPECT_EQ(scorer.stats().computed_tokens, 30 + 4 + 2);
  EXPECT_DOUBLE_EQ(scorer.stats().attention_cells, 30.0 * 30 + 4.0 * 34 + 2.0 * 32);
  EXPECT_NEAR(rewards[0], alone(*model, a), 1e-5);
  EXPECT_NEAR(rewards[1], alone(*model, b), 1e-5);

  // Under the minimum nothing is shared.
  options.min_shared_prefix = 31;
  Scorer strict(model, nullptr, ChatFormat::kPlain, options);
  strict.score_tokens({a, b});
  EXPECT_EQ(strict.stats().computed_tokens, 34 + 32);

  // A group never outgrows the batch limits: 40 responses to one prompt
  // under a budget of 100 rows and at most 4 sequences per batch.
  std::vector<std::vector<TokenId>> many;
  for (int i = 0; i < 40; ++i) {
    auto s = prompt;
    s.push_back(1 + i % 60);
    s.push_back(2 + i % 50);
    many.push_back(s);
  }
  options.min_shared_prefix = 16;
  options.max_tokens = 100;
  options.max_batch_sequences = 4;
  Scorer capped(model, nullptr, ChatFormat::kPlain, options);
  const auto r = capped.score_tokens(many);
  EXPECT_EQ(capped.stats().batches, 10);
  EXPECT_EQ(capped.stats().computed_tokens, 10 * (30 + 4 * 2));
  for (std::size_t i = 0; i < many.size(); i += 7) EXPECT_NEAR(r[i], alone(*model, many[i]), 1e-5) << i;

  options.min_shared_prefix = 0;
  EXPECT_NE(test::error_of([&] { Scorer(model, nullptr, ChatFormat::kPlain, options); }).find("min_shared_prefix"),
            std::string::npos);
}

TEST(Scorer, AutoDtypeOnCpuFollowsTheMatmulProbe) {
  // The probe measures both dtypes at its shape on the current threads.
  const CpuMatmulProbe small = probe_cpu_matmul(32, 64, 48);
  EXPECT_EQ(small.m, 32);
  EXPECT_EQ(small.k, 64);
  EXPECT_EQ(small.n, 48);
  EXPECT_GT(small.fp32_flops_per_s, 0.0);
  EXPECT_GT(small.bf16_flops_per_s, 0.0);
  EXPECT_TRUE(test::contains(small.summary(), "32x64x48"));
  EXPECT_NE(test::error_of([] { probe_cpu_matmul(0, 4, 4); }).find("positive"), std::string::npos);
  // auto on CPU takes the faster dtype of the process's probe; explicit
  // names are taken as given.
  const CpuMatmulProbe& probe = cpu_matmul_probe();
  EXPECT_EQ(&probe, &cpu_matmul_probe()) << "measured once per thread count";
  EXPECT_EQ(score_dtype_from_name("auto", c10::Device(c10::kCPU)), probe.bf16_faster() ? at::kBFloat16 : at::kFloat);
  EXPECT_EQ(score_dtype_from_name("fp32", c10::Device(c10::kCPU)), at::kFloat);
  EXPECT_EQ(score_dtype_from_name("bf16", c10::Device(c10::kCPU)), at::kBFloat16);
  std::printf("[ cpu probe ] %s: auto is %s\n", probe.summary().c_str(), probe.bf16_faster() ? "bf16" : "fp32");
}

TEST(Scorer, NormalisesWithTheStoredMeanAndStd) {
  auto model = tiny_model();
  ModelMetadata meta;
  meta.other["reward_mean"] = 0.25;
  meta.other["reward_std"] = 2.0;
  const auto seqs = random_sequences(9, 30, 5);
  Scorer raw(model, nullptr, ChatFormat::kPlain, {}, meta);
  EXPECT_EQ(raw.reward_mean(), 0.25);
  ScoreOptions options;
  options.normalize = true;
  Scorer normalized(model, nullptr, ChatFormat::kPlain, options, meta);
  const auto r = raw.score_tokens(seqs), n = normalized.score_tokens(seqs);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_NEAR(n[i], (r[i] - 0.25) / 2.0, 1e-6);

  std::string err = test::error_of([&] { Scorer(model, nullptr, ChatFormat::kPlain, options); });
  EXPECT_TRUE(test::contains(err, "normalize: the model folder's openrm.json has no reward_mean")) << err;
  meta.other["reward_std"] = 0.0;
  err = test::error_of([&] { Scorer(model, nullptr, ChatFormat::kPlain, options, meta); });
  EXPECT_TRUE(test::contains(err, "reward_std must be positive")) << err;
}

TEST(Scorer, ModelWithoutPadTokenPoolsTheLastToken) {
  ModelConfig config = test::tiny_config("LlamaForSequenceClassification");
  config.pad_token_id.reset();
  auto model = create_reward_model(config);
  model->init_weights(4, 0.2);
  Scorer scorer(model, nullptr, ChatFormat::kPlain);
  EXPECT_EQ(scorer.pooling(), Pooling::kLastToken);
  const auto seqs = random_sequences(12, 40, 2);
  const auto rewards = scorer.score_tokens(seqs);
  // transformers scores such a model one sequence at a time.
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_NEAR(rewards[i], alone(*model, seqs[i]), 1e-5);
}

TEST(Scorer, BadTokenInputsNameTheSequence) {
  auto model = tiny_model();
  Scorer scorer(model, nullptr, ChatFormat::kPlain);
  auto seqs = random_sequences(4, 10, 1);
  seqs[2].clear();
  std::string err = test::error_of([&] { scorer.score_tokens(seqs); });
  EXPECT_TRUE(test::contains(err, "sequence 2 is empty")) << err;

  seqs = random_sequences(4, 10, 1);
  seqs[3] = std::vector<TokenId>(129, 5);  // tiny_config: max_position_embeddings 128
  err = test::error_of([&] { scorer.score_tokens(seqs); });
  EXPECT_TRUE(test::contains(err, "sequence 3 has 129 tokens, more than the model's max_position_embeddings (128)"))
      << err;

  seqs = random_sequences(4, 10, 1);
  seqs[1][0] = 64;  // vocab 64
  err = test::error_of([&] { scorer.score_tokens(seqs); });
  EXPECT_TRUE(test::contains(err, "token id 64")) << err;
  EXPECT_TRUE(test::contains(err, "outside the vocabulary [0, 64)")) << err;

  EXPECT_TRUE(scorer.score_tokens({}).empty());
  err = test::error_of([&] { scorer.score_conversations({{{"user", "hi"}}}); });
  EXPECT_TRUE(test::contains(err, "this scorer has no tokenizer")) << err;
}

TEST(Scorer, OptionsAndDevicesAreValidated) {
  ScoreOptions o;
  o.max_tokens = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { o.validate(); }), "max_tokens must be positive"));
  o = {};
  o.dtype = "fp8";
  EXPECT_TRUE(test::contains(test::error_of([&] { o.validate(); }), "dtype 'fp8' is not one of auto, fp32"));
  o = {};
  o.dtype = "fp16";
  EXPECT_TRUE(test::contains(test::error_of([&] { o.validate(); }), "fp16 is only supported on CUDA"));
  o = {};
  o.device = "tpu";
  EXPECT_TRUE(test::contains(test::error_of([&] { o.validate(); }), "device 'tpu' is not one of cpu, cuda"));
  EXPECT_EQ(score_dtype_from_name("auto", c10::Device(c10::kCPU)), at::kFloat);
  EXPECT_EQ(score_dtype_from_name("bf16", c10::Device(c10::kCPU)), at::kBFloat16);
  if (!torch::cuda::is_available()) {
    o = {};
    o.device = "cuda";
    const std::string err = test::error_of([&] { o.validate(); });
    EXPECT_TRUE(test::contains(err, "device 'cuda' was asked for, but this process sees no CUDA GPU")) << err;
  }
}

// ---- records, pairs and files ------------------------------------------------------

class ScorerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = tmp.file("rm");
    test::make_tiny_model_folder(dir, /*with_tokenizer=*/true);
  }
  test::TempDir tmp;
  std::string dir;
};

TEST_F(ScorerFiles, ConversationsAndPairsEqualTokenizingAndScoringAlone) {
  ScoreOptions options;
  options.max_length = 40;
  options.max_tokens = 100;
  options.threads = 2;
  Scorer scorer = Scorer::from_folder(dir, options);
  auto model = load_reward_model(dir);
  auto tokenizer = load_tokenizer(dir);

  std::vector<Conversation> convs;
  for (int i = 0; i < 30; ++i) {
    std::string answer = "jumps over the lazy dog " + std::to_string(i);
    for (int k = 0; k < i % 7; ++k) answer += " again and again";  // some over max_length
    convs.push_back({{"user", "The quick brown fox " + std::to_string(i)}, {"assistant", answer}});
  }
  const ScoreResult result = scorer.score_conversations(convs);
  ASSERT_EQ(result.rewards.size(), convs.size());
  TokenizeOptions t;
  t.format = ChatFormat::kPlain;
  t.max_length = 40;
  TruncationStats expect_stats;
  for (std::size_t i = 0; i < convs.size(); ++i) {
    const auto ids = tokenize_conversation(convs[i], *tokenizer, t, &expect_stats);
    ASSERT_TRUE(ids.has_value());
    EXPECT_LE(ids->size(), 40u);
    EXPECT_NEAR(result.rewards[i], alone(*model, *ids), 1e-5) << i;
  }
  EXPECT_GT(expect_stats.truncated, 0);
  EXPECT_EQ(result.stats.truncation.truncated, expect_stats.truncated);
  EXPECT_EQ(result.stats.truncation.input, 30);

  // Pairs: the same rewards as evaluate(), which batches pairs its own way.
  std::vector<PreferencePair> pairs;
  for (int i = 0; i < 12; ++i) {
    PreferencePair p;
    p.prompt = {{"user", "A reward model scores answer number " + std::to_string(i)}};
    p.chosen = {{"assistant", "for you " + std::to_string(i)}};
    p.rejected = {{"assistant", "The quick brown fox"}};
    pairs.push_back(p);
  }
  const PairScores ps = scorer.score_pairs(pairs);
  TokenizeOptions pt = t;
  const TokenizedPairs tokenized = tokenize_pairs(pairs, *tokenizer, pt);
  const EvalResult eval = evaluate(*model, tokenized.pairs);
  ASSERT_EQ(eval.rewards.size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_NEAR(ps.chosen[i], eval.rewards[i].chosen, 1e-5);
    EXPECT_NEAR(ps.rejected[i], eval.rewards[i].rejected, 1e-5);
  }
}

TEST_F(ScorerFiles, RecordsLongerThanTheModelAreTruncatedAndCounted) {
  ScoreOptions options;
  options.max_length = 0;  // as long as the model takes: its 128 positions
  Scorer scorer = Scorer::from_folder(dir, options);
  std::string answer;
  for (int k = 0; k < 40; ++k) answer += "jumps over the lazy dog ";
  const ScoreResult r = scorer.score_conversations({{{"user", "The quick brown fox"}, {"assistant", answer}}});
  ASSERT_EQ(r.rewards.size(), 1u);
  EXPECT_TRUE(std::isfinite(r.rewards[0]));
  EXPECT_EQ(r.stats.truncation.truncated, 1);
  EXPECT_GT(r.stats.truncation.longest_before, 128);
  EXPECT_EQ(r.stats.tokens, 128);
  EXPECT_EQ(scorer.tokenize_options().max_length, 128);
}

TEST_F(ScorerFiles, MaxLengthAndPolicyDefaultToTheFoldersOpenrmJson) {
  // Nothing asked, nothing stored: 2048, lowered to the model's 128 positions.
  EXPECT_EQ(Scorer::from_folder(dir).tokenize_options().max_length, 128);
  EXPECT_EQ(Scorer::from_folder(dir).tokenize_options().policy, TruncationPolicy::kTruncate);
  // What openrm.json records (as openrm-train writes it) is the default ...
  ModelMetadata meta = read_model_metadata(dir);
  meta.max_length = 12;
  meta.truncation = TruncationPolicy::kDrop;
  write_model_metadata(dir, meta);
  Scorer scorer = Scorer::from_folder(dir);
  EXPECT_EQ(scorer.tokenize_options().max_length, 12);
  EXPECT_EQ(scorer.tokenize_options().policy, TruncationPolicy::kDrop);
  const std::vector<Conversation> convs = {
      {{"user", "fox"}, {"assistant", "dog"}},
      {{"user", "The quick brown fox jumps over the lazy dog again"}, {"assistant", "and again and again"}}};
  const ScoreResult r = scorer.score_conversations(convs);
  EXPECT_TRUE(std::isfinite(r.rewards[0]));
  EXPECT_TRUE(std::isnan(r.rewards[1]));
  EXPECT_EQ(r.stats.truncation.dropped, 1);
  // ... and options win over it.
  ScoreOptions options;
  options.max_length = 40;
  options.truncation = TruncationPolicy::kTruncate;
  Scorer asked = Scorer::from_folder(dir, options);
  EXPECT_EQ(asked.tokenize_options().max_length, 40);
  EXPECT_EQ(asked.tokenize_options().policy, TruncationPolicy::kTruncate);
  EXPECT_TRUE(std::isfinite(asked.score_conversations(convs).rewards[1]));
  options.max_length = 1000;
  EXPECT_EQ(Scorer::from_folder(dir, options).tokenize_options().max_length, 128);
}

TEST_F(ScorerFiles, DroppedRecordsAreNaNAndCounted) {
  ScoreOptions options;
  options.max_length = 12;
  options.truncation = TruncationPolicy::kDrop;
  Scorer scorer = Scorer::from_folder(dir, options);
  const std::vector<Conversation> convs = {
      {{"user", "fox"}, {"assistant", "dog"}},
      {{"user", "The quick brown fox jumps over the lazy dog again"}, {"assistant", "and again and again"}},
      {{"user", "dog"}, {"assistant", "fox"}}};
  const ScoreResult r = scorer.score_conversations(convs);
  EXPECT_TRUE(std::isfinite(r.rewards[0]));
  EXPECT_TRUE(std::isnan(r.rewards[1]));
  EXPECT_TRUE(std::isfinite(r.rewards[2]));
  EXPECT_EQ(r.stats.truncation.dropped, 1);
  EXPECT_EQ(r.stats.sequences, 2);
}

std::string record_line(int i) {
  nlohmann::json j = {{"id", "r" + std::to_string(i)},
                      {"prompt", "The quick brown fox " + std::to_string(i)},
                      {"response", "jumps over the lazy dog."}};
  return j.dump() + "\n";
}

std::string pair_line(int i) {
  nlohmann::json j = {{"prompt", "A reward model " + std::to_string(i)},
                      {"chosen", "scores answer number " + std::to_string(i)},
                      {"rejected", "for you."}};
  return j.dump() + "\n";
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST_F(ScorerFiles, ScoreFileKeepsInputOrderAcrossChunks) {
  std::string input;
  for (int i = 0; i < 23; ++i) input += i % 3 == 2 ? pair_line(i) : record_line(i);
  input += "\n";  // a blank line is skipped
  input += R"({"messages": [{"role": "user", "content": "fox"}, {"role": "assistant", "content": "dog"}]})" "\n";
  const std::string path = tmp.file("in.jsonl");
  test::write_bytes(path, input);

  Scorer scorer = Scorer::from_folder(dir);
  std::string whole, chunked;
  ScoreFileOptions options;
  options.chunk_records = 1000;
  const ScoreFileResult r = score_file(scorer, path, [&](const std::string& s) { whole += s; }, options);
  options.chunk_records = 4;
  score_file(scorer, path, [&](const std::string& s) { chunked += s; }, options);
  EXPECT_EQ(r.records, 24);
  EXPECT_EQ(r.pairs, 7);
  EXPECT_EQ(r.lines, 25);
  const auto a = json_lines(whole), b = json_lines(chunked);
  ASSERT_EQ(a.size(), 24u);
  ASSERT_EQ(b.size(), 24u);

  // Each line against the record scored on its own.
  auto data = read_preferences(path, [] {
    ReadOptions o;
    o.skip_invalid = true;  // the records are not pairs
    return o;
  }());
  ASSERT_EQ(data.pairs.size(), 7u);
  std::size_t next_pair = 0;
  for (int i = 0; i < 24; ++i) {
    const auto& j = a[static_cast<std::size_t>(i)];
    EXPECT_EQ(j["line"], i < 23 ? i + 1 : 25);
    for (const char* key : {"reward", "reward_chosen", "reward_rejected"}) {
      if (j.contains(key)) EXPECT_NEAR(j[key].get<double>(), b[static_cast<std::size_t>(i)][key].get<double>(), 1e-5);
    }
    if (i < 23 && i % 3 == 2) {
      ASSERT_TRUE(j.contains("reward_chosen")) << j.dump();
      EXPECT_FALSE(j.contains("id"));
      const PairScores ps = scorer.score_pairs({data.pairs[next_pair++]});
      EXPECT_NEAR(j["reward_chosen"].get<double>(), ps.chosen[0], 1e-5);
      EXPECT_NEAR(j["reward_rejected"].get<double>(), ps.rejected[0], 1e-5);
    } else if (i < 23) {
      EXPECT_EQ(j["id"], "r" + std::to_string(i));
      const Conversation conv = {{"user", "The quick brown fox " + std::to_string(i)},
                                 {"assistant", "jumps over the lazy dog."}};
      EXPECT_NEAR(j["reward"].get<double>(), scorer.score_conversations({conv}).rewards[0], 1e-5);
    }
  }
}

TEST_F(ScorerFiles, GroupsOfResponsesGetOneRewardEach) {
  // Best-of-n candidates: one prompt, several responses (a k-wise record's
  // scores are ignored).
  const std::string path = tmp.file("groups.jsonl");
  test::write_bytes(path, std::string(R"({"id": 7, "prompt": "The quick brown fox", "responses": ["jumps", "over the lazy dog", [{"role": "assistant", "content": "for you."}]]})") +
                              "\n" + record_line(1) +
                              R"({"prompt": [{"role": "user", "content": "A reward model"}], "responses": ["scores answer number 3"], "scores": [1]})" "\n");
  Scorer scorer = Scorer::from_folder(dir);
  std::string out;
  const ScoreFileResult r = score_file(scorer, path, [&](const std::string& s) { out += s; });
  EXPECT_EQ(r.records, 3);
  EXPECT_EQ(r.groups, 2);
  const auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["id"], 7);  // a number stays a number
  ASSERT_EQ(lines[0]["rewards"].size(), 3u);
  const std::vector<std::string> answers = {"jumps", "over the lazy dog", "for you."};
  for (std::size_t k = 0; k < 3; ++k) {
    const Conversation conv = {{"user", "The quick brown fox"}, {"assistant", answers[k]}};
    EXPECT_NEAR(lines[0]["rewards"][k].get<double>(), scorer.score_conversations({conv}).rewards[0], 1e-5) << k;
  }
  EXPECT_TRUE(lines[1].contains("reward"));
  ASSERT_EQ(lines[2]["rewards"].size(), 1u);
  const Conversation conv = {{"user", "A reward model"}, {"assistant", "scores answer number 3"}};
  EXPECT_NEAR(lines[2]["rewards"][0].get<double>(), scorer.score_conversations({conv}).rewards[0], 1e-5);
}

TEST_F(ScorerFiles, TextIsScoredAsTextEmptyResponsesToo) {
  // Under a chat format, records of strings are scored as their text and
  // message lists in the format; an empty response is scored like any other.
  ScoreOptions options;
  options.chat_format = ChatFormat::kChatML;
  Scorer scorer = Scorer::from_folder(dir, options);
  auto tokenizer = load_tokenizer(dir);
  const std::string path = tmp.file("text.jsonl");
  test::write_bytes(path, std::string(R"({"prompt": "The quick brown fox", "response": " jumps", "id": 12})") + "\n" +
                              R"({"prompt": "The quick brown fox", "response": "", "id": "12"})" + "\n" +
                              R"({"messages": [{"role": "user", "content": "The quick brown fox"}, )"
                              R"({"role": "assistant", "content": " jumps"}]})" + "\n" +
                              R"({"prompt": "A reward model", "chosen": " scores", "rejected": ""})" + "\n" +
                              R"({"prompt": "A reward model", "responses": [" scores", ""]})" + "\n");
  std::string out;
  const ScoreFileResult r = score_file(scorer, path, [&](const std::string& s) { out += s; });
  EXPECT_EQ(r.records, 5);
  EXPECT_EQ(r.dropped, 0);
  EXPECT_EQ(r.non_finite, 0);
  const auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 5u);
  auto text_reward = [&](const std::string& text) { return scorer.score_tokens({tokenizer->encode(text)})[0]; };
  EXPECT_NEAR(lines[0]["reward"].get<double>(), text_reward("The quick brown fox jumps"), 1e-5);
  EXPECT_NEAR(lines[1]["reward"].get<double>(), text_reward("The quick brown fox"), 1e-5);
  const Conversation conv = {{"user", "The quick brown fox"}, {"assistant", " jumps"}};
  const double chatml = scorer.score_conversations({conv}).rewards[0];
  EXPECT_NEAR(lines[2]["reward"].get<double>(), chatml, 1e-5);
  EXPECT_GT(std::fabs(chatml - text_reward("The quick brown fox jumps")), 1e-4) << "the chat format made no difference";
  EXPECT_NEAR(lines[3]["reward_chosen"].get<double>(), text_reward("A reward model scores"), 1e-5);
  EXPECT_NEAR(lines[3]["reward_rejected"].get<double>(), text_reward("A reward model"), 1e-5);
  EXPECT_NEAR(lines[4]["rewards"][1].get<double>(), text_reward("A reward model"), 1e-5);
  // Ids keep their JSON type.
  EXPECT_TRUE(lines[0]["id"].is_number_integer());
  EXPECT_EQ(lines[0]["id"], 12);
  EXPECT_EQ(lines[1]["id"], "12");
  EXPECT_FALSE(lines[2].contains("id"));
}

// A copy of the model folder `dir` at `out` whose head is NaN: every reward
// is non-finite.
void copy_with_nan_head(const std::string& dir, const std::string& out) {
  auto model = load_reward_model(dir);
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["score.weight"].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  save_reward_model(*model, out);
  for (const char* name : {"tokenizer.model", "tokenizer_config.json"}) {
    if (path_exists(join_path(dir, name))) test::write_bytes(join_path(out, name), test::read_bytes(join_path(dir, name)));
  }
}

TEST_F(ScorerFiles, NonFiniteRewardsAreCountedAndMarkedNotCalledDropped) {
  const std::string broken = tmp.file("broken");
  copy_with_nan_head(dir, broken);
  Scorer scorer = Scorer::from_folder(broken);
  const std::string path = tmp.file("in.jsonl");
  test::write_bytes(path, record_line(1) + R"({"prompt": "A", "chosen": "b", "rejected": "c"})" "\n");
  std::string out;
  const ScoreFileResult r = score_file(scorer, path, [&](const std::string& s) { out += s; });
  EXPECT_EQ(r.non_finite, 2);
  EXPECT_EQ(r.dropped, 0);
  EXPECT_EQ(r.stats.non_finite, 3);  // one record, two sides of a pair
  const auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0]["reward"].is_null());
  EXPECT_EQ(lines[0]["non_finite"], true);
  EXPECT_FALSE(lines[0].contains("dropped"));
  EXPECT_EQ(lines[1]["non_finite"], true);
}

TEST_F(ScorerFiles, ScoreFileErrorsNameTheFileAndLine) {
  Scorer scorer = Scorer::from_folder(dir);
  const auto sink = [](const std::string&) {};
  const std::string bad = tmp.file("bad.jsonl");
  test::write_bytes(bad, record_line(0) + "{\"prompt\": \"x\"}\n" + record_line(2));
  std::string err = test::error_of([&] { score_file(scorer, bad, sink); });
  EXPECT_TRUE(test::contains(err, bad + ":2:")) << err;
  ScoreFileOptions skip;
  skip.skip_invalid = true;
  const ScoreFileResult r = score_file(scorer, bad, sink, skip);
  EXPECT_EQ(r.records, 2);
  EXPECT_EQ(r.skipped_invalid, 1);

  const std::string empty = tmp.file("empty.jsonl");
  test::write_bytes(empty, "");
  err = test::error_of([&] { score_file(scorer, empty, sink); });
  EXPECT_TRUE(test::contains(err, empty + ": no records")) << err;

  const std::string ranked = tmp.file("ranked.jsonl");
  test::write_bytes(ranked, R"({"prompt": "q", "responses": ["a", "b"], "scores": [1, 0]})" "\n");
  ScoreFileOptions as_pairs;
  as_pairs.kind = "pairs";
  err = test::error_of([&] { score_file(scorer, ranked, sink, as_pairs); });
  EXPECT_TRUE(test::contains(err, ranked + ":1:")) << err;
  EXPECT_TRUE(test::contains(err, "k-wise ranking")) << err;
  test::write_bytes(ranked, R"({"prompt": "q", "responses": []})" "\n");
  err = test::error_of([&] { score_file(scorer, ranked, sink); });
  EXPECT_TRUE(test::contains(err, ranked + ":1: field 'responses': no responses")) << err;
  test::write_bytes(ranked, R"({"prompt": "q", "responses": ["a", 7]})" "\n");
  err = test::error_of([&] { score_file(scorer, ranked, sink); });
  EXPECT_TRUE(test::contains(err, ranked + ":1: field 'responses[1]'")) << err;

  err = test::error_of([&] { Scorer::from_folder(tmp.file("nope")); });
  EXPECT_TRUE(test::contains(err, tmp.file("nope") + ": no such model folder")) << err;
}

// ---- openrm-score -------------------------------------------------------------------

class ScoreCli : public ScorerFiles {
 protected:
  void SetUp() override {
    if (!test::tool_built("openrm-score")) GTEST_SKIP() << "openrm-score was not built (OPENRM_BUILD_TOOLS=OFF)";
    ScorerFiles::SetUp();
  }
  test::ToolRun run(const std::string& args) { return test::run_tool("openrm-score", args, tmp); }
};

TEST_F(ScoreCli, NonFiniteRewardsFailTheRunUnlessAccepted) {
  const std::string broken = tmp.file("broken");
  copy_with_nan_head(dir, broken);
  const std::string in = tmp.file("in.jsonl"), out = tmp.file("out.jsonl");
  test::write_bytes(in, record_line(1) + record_line(2));
  test::ToolRun r = run("--model '" + broken + "' --input '" + in + "' --output '" + out + "' --threads 1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(test::contains(r.output, "2 record(s) got a non-finite (NaN or infinite) reward")) << r.output;
  EXPECT_TRUE(test::contains(r.output, "--allow-non-finite")) << r.output;
  EXPECT_FALSE(test::contains(r.output, "dropped by truncation (written")) << r.output;
  // The output is written whole, each record marked.
  auto lines = json_lines(test::read_bytes(out));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["non_finite"], true);
  r = run("--model '" + broken + "' --input '" + in + "' --output '" + out + "' --threads 1 --allow-non-finite");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::contains(r.output, "accepted: --allow-non-finite")) << r.output;
}

TEST_F(ScoreCli, ScoresAFileAndStdinToStdout) {
  std::string input;
  for (int i = 0; i < 10; ++i) input += i % 2 ? pair_line(i) : record_line(i);
  const std::string in = tmp.file("in.jsonl"), out = tmp.file("out.jsonl");
  test::write_bytes(in, input);
  test::ToolRun r = run("--model '" + dir + "' --input '" + in + "' --output '" + out + "' --threads 1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::contains(r.output, "scored 10 records (5 pairs, 0 groups)")) << r.output;
  const auto lines = json_lines(test::read_bytes(out));
  ASSERT_EQ(lines.size(), 10u);

  Scorer scorer = Scorer::from_folder(dir);
  std::string expected;
  const std::string path = tmp.file("again.jsonl");
  test::write_bytes(path, input);
  score_file(scorer, path, [&](const std::string& s) { expected += s; });
  const auto expect = json_lines(expected);
  for (std::size_t i = 0; i < 10; ++i) {
    for (const char* key : {"reward", "reward_chosen", "reward_rejected"}) {
      EXPECT_EQ(lines[i].contains(key), expect[i].contains(key));
      if (lines[i].contains(key)) EXPECT_NEAR(lines[i][key].get<double>(), expect[i][key].get<double>(), 1e-5);
    }
  }

  // gzip in, stdin, stdout.
  const std::string gz = tmp.file("in.jsonl.gz");
  ASSERT_EQ(std::system(("gzip -c '" + in + "' > '" + gz + "'").c_str()), 0);
  const std::string piped = tmp.file("piped.jsonl");
  const std::string tool = std::string(OPENRM_BINARY_DIR) + "/tools/openrm-score";
  ASSERT_EQ(std::system((tool + " --model '" + dir + "' --input - --output - < '" + gz + "' > '" + piped +
                         "' 2>/dev/null").c_str()),
            0);
  const auto from_stdin = json_lines(test::read_bytes(piped));
  ASSERT_EQ(from_stdin.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(from_stdin[i]["line"], lines[i]["line"]);
}

// torchrun-style scale-out: three processes with RANK 0..2 and WORLD_SIZE 3
// each score every third record; rank 0 merges the parts in input order. The
// merged file has the single-process run's lines, in its order.
TEST_F(ScoreCli, RanksUnderWorldSizeScoreTheirShareAndRankZeroMerges) {
  std::string input;
  for (int i = 0; i < 20; ++i) input += (i % 3 ? record_line(i) : pair_line(i)) + (i == 7 ? "\n" : "");
  const std::string in = tmp.file("in.jsonl"), single = tmp.file("single.jsonl"), out = tmp.file("merged.jsonl");
  test::write_bytes(in, input);
  test::ToolRun r = run("--model '" + dir + "' --input '" + in + "' --output '" + single + "' --threads 1");
  ASSERT_EQ(r.status, 0) << r.output;
  std::vector<int> pids;
  for (int rank = 2; rank >= 0; --rank) {  // rank 0 last: it waits for the others' parts
    ::setenv("WORLD_SIZE", "3", 1);
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    pids.push_back(test::spawn_tool("openrm-score", {"--model", dir, "--input", in, "--output", out, "--threads", "1"},
                                    tmp.file("rank" + std::to_string(rank) + ".log")));
  }
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  ::unsetenv("LOCAL_RANK");
  for (int pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_EQ(test::decode_status(status), 0);
  }
  const std::string log0 = test::read_bytes(tmp.file("rank0.log"));
  EXPECT_TRUE(test::contains(log0, "rank 0 of 3")) << log0;
  EXPECT_TRUE(test::contains(log0, "merged 3 parts")) << log0;
  const auto want = json_lines(test::read_bytes(single));
  const auto got = json_lines(test::read_bytes(out));
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]["line"], want[i]["line"]) << i;
    for (const char* key : {"reward", "reward_chosen", "reward_rejected"}) {
      ASSERT_EQ(got[i].contains(key), want[i].contains(key)) << i;
      if (want[i].contains(key)) EXPECT_NEAR(got[i][key].get<double>(), want[i][key].get<double>(), 1e-5) << i;
    }
  }
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_FALSE(std::filesystem::exists(out + ".part-" + std::to_string(rank) + "-of-3")) << "parts are removed";
  }
  // Bad environments are one error line.
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "5", 1);
  r = run("--model '" + dir + "' --input '" + in + "' --output '" + out + "'");
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(test::contains(r.output, "RANK in [0, WORLD_SIZE)")) << r.output;
  ::setenv("RANK", "0", 1);
  r = run("--model '" + dir + "' --input '" + in + "' --output -");
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(test::contains(r.output, "give a file")) << r.output;
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
}

TEST_F(ScoreCli, BadInputsGiveOneErrorLineAndKeepTheOldOutput) {
  const std::string in = tmp.file("in.jsonl"), out = tmp.file("out.jsonl");
  test::write_bytes(in, record_line(0) + record_line(1));
  test::write_bytes(out, "precious\n");
  auto error = [&](const std::string& args) {
    const test::ToolRun r = run(args);
    EXPECT_EQ(test::read_bytes(out), "precious\n") << args;  // never half-written
    return test::error_line(r, "openrm-score");
  };
  const std::string io = " --input '" + in + "' --output '" + out + "'";

  std::string line = error("--model '" + tmp.file("nope") + "'" + io);
  EXPECT_TRUE(test::contains(line, tmp.file("nope") + ": no such model folder")) << line;

  const std::string alien = tmp.file("alien");
  test::make_tiny_model_folder(alien, true);
  auto config = nlohmann::json::parse(test::read_bytes(alien + "/config.json"));
  config["architectures"] = {"BloomForSequenceClassification"};
  config["model_type"] = "bloom";
  test::write_bytes(alien + "/config.json", config.dump());
  line = error("--model '" + alien + "'" + io);
  EXPECT_TRUE(test::contains(line, "BloomForSequenceClassification")) << line;
  EXPECT_TRUE(test::contains(line, "LlamaForSequenceClassification")) << line;  // lists the supported ones

  const std::string empty = tmp.file("empty.jsonl");
  test::write_bytes(empty, "");
  line = error("--model '" + dir + "' --input '" + empty + "' --output '" + out + "'");
  EXPECT_TRUE(test::contains(line, empty + ": no records")) << line;

  line = error("--model '" + dir + "' --input '" + tmp.file("missing.jsonl") + "' --output '" + out + "'");
  EXPECT_TRUE(test::contains(line, tmp.file("missing.jsonl"))) << line;

  const std::string broken = tmp.file("broken.jsonl");
  test::write_bytes(broken, record_line(0) + "{\"prompt\": 5, \"response\": \"x\"}\n");
  line = error("--model '" + dir + "' --input '" + broken + "' --output '" + out + "'");
  EXPECT_TRUE(test::contains(line, broken + ":2: field 'prompt'")) << line;

  line = error("--model '" + dir + "'" + io + " --device cuda:0" + (torch::cuda::is_available() ? " --dtype fp8" : ""));
  EXPECT_FALSE(line.empty());
  if (!torch::cuda::is_available()) EXPECT_TRUE(test::contains(line, "no CUDA GPU")) << line;

  line = error("--model '" + dir + "'" + io + " --normalize");
  EXPECT_TRUE(test::contains(line, "no reward_mean")) << line;

  const std::string unwritable = tmp.file("no-such-dir/out.jsonl");
  line = test::error_line(run("--model '" + dir + "' --input '" + in + "' --output '" + unwritable + "'"),
                          "openrm-score");
  EXPECT_TRUE(test::contains(line, unwritable)) << line;

  // Over max_length with --truncation drop: scored, the dropped one null.
  test::write_bytes(in, record_line(0) + R"({"prompt": "The quick brown fox jumps over the lazy dog", "response": "again and again and again and again and again and again and again and again"})" "\n");
  const test::ToolRun r = run("--model '" + dir + "'" + io + " --max-length 60 --truncation drop");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto lines = json_lines(test::read_bytes(out));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0]["reward"].is_number());
  EXPECT_TRUE(lines[1]["reward"].is_null());
  EXPECT_EQ(lines[1]["dropped"], true);
  EXPECT_TRUE(test::contains(r.output, "1 dropped by truncation")) << r.output;
}

TEST_F(ScoreCli, AKilledRunLeavesTheOldOutputWhole) {
  std::string input;
  for (int i = 0; i < 20000; ++i) input += record_line(i);
  const std::string in = tmp.file("big.jsonl"), out = tmp.file("out.jsonl");
  test::write_bytes(in, input);
  test::write_bytes(out, "precious\n");
  const int pid = test::spawn_tool(
      "openrm-score", {"--model", dir, "--input", in, "--output", out, "--chunk-records", "50", "--threads", "1"},
      tmp.file("run.log"));
  // Killed once the temporary output has grown past a few chunks.
  auto temporary_bytes = [&] {
    std::uintmax_t bytes = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(tmp.path(), ec)) {
      if (e.path().filename().string().rfind("out.jsonl.tmp", 0) == 0) bytes += e.file_size(ec);
    }
    return bytes;
  };
  const int end = test::kill_when(pid, [&] { return temporary_bytes() >= 10000; }, /*timeout_s=*/60, /*poll_us=*/2000);
  ASSERT_EQ(end, -SIGKILL) << test::read_bytes(tmp.file("run.log"));
  EXPECT_EQ(test::read_bytes(out), "precious\n");
}

// Names in dir that look like an AtomicFileWriter's temporary file.
std::vector<std::string> temporary_files(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(e.path().string());
  }
  return found;
}

TEST_F(ScoreCli, AnOutputThatIsAnInputIsRefusedBeforeAnyWork) {
  const std::string in = tmp.file("in.jsonl");
  test::write_bytes(in, record_line(0) + record_line(1));
  const std::string config = test::read_bytes(dir + "/config.json");
  std::filesystem::create_symlink(in, tmp.file("link.jsonl"));
  auto refused = [&](const std::string& output, const std::string& why) {
    const test::ToolRun r = run("--model '" + dir + "' --input '" + in + "' --output '" + output + "'");
    const std::string line = test::error_line(r, "openrm-score");
    EXPECT_TRUE(test::contains(line, output + ": " + why)) << line;
    EXPECT_FALSE(test::contains(r.output, "scored")) << r.output;
  };
  refused(in, "is the same file as the input " + in);
  refused(tmp.file("link.jsonl"), "is the same file as the input " + in);  // through the symlink
  refused(dir + "/config.json", "is the same file as " + dir + "/config.json (in the input folder " + dir + ")");
  refused(tmp.path(), "is a directory, not a file");
  EXPECT_EQ(test::read_bytes(in), record_line(0) + record_line(1));
  EXPECT_EQ(test::read_bytes(dir + "/config.json"), config);
  EXPECT_TRUE(std::filesystem::is_symlink(tmp.file("link.jsonl")));
  EXPECT_EQ(temporary_files(tmp.path()), std::vector<std::string>{});
  EXPECT_EQ(temporary_files(dir), std::vector<std::string>{});
}

TEST_F(ScoreCli, WritesAFifoAndADeviceInPlaceAndReplacesASymlinksTarget) {
  const std::string in = tmp.file("in.jsonl");
  test::write_bytes(in, record_line(0) + record_line(1) + record_line(2));
  const std::string args = "--model '" + dir + "' --input '" + in + "' --threads 1 --output ";

  // A FIFO: a reader gets every line, and the FIFO stays a FIFO.
  const std::string fifo = tmp.file("scores.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  std::string got;
  std::thread reader([&] { got = test::read_bytes(fifo); });
  const test::ToolRun r = run(args + "'" + fifo + "'");
  const int unblock = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // should the tool not have opened it
  if (unblock >= 0) ::close(unblock);
  reader.join();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json_lines(got).size(), 3u) << got;
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // A symlink: its target is replaced, the link stays.
  test::write_bytes(tmp.file("target.jsonl"), "old\n");
  std::filesystem::create_symlink("target.jsonl", tmp.file("link.jsonl"));
  ASSERT_EQ(run(args + "'" + tmp.file("link.jsonl") + "'").status, 0);
  EXPECT_TRUE(std::filesystem::is_symlink(tmp.file("link.jsonl")));
  EXPECT_EQ(json_lines(test::read_bytes(tmp.file("target.jsonl"))).size(), 3u);

  // /dev/null (a run as root used to replace it with a regular file).
  ASSERT_EQ(run(args + "/dev/null").status, 0);
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(temporary_files("/dev"), std::vector<std::string>{});
  EXPECT_EQ(temporary_files(tmp.path()), std::vector<std::string>{});
}

TEST_F(ScoreCli, AnInterruptedRunLeavesNoTemporaryFile) {
  for (int sig : {SIGINT, SIGTERM}) {
    // An input FIFO nobody writes: the tool waits there, its output open.
    const std::string in = tmp.file("in-" + std::to_string(sig) + ".fifo"), out = tmp.file("out.jsonl");
    ASSERT_EQ(::mkfifo(in.c_str(), 0644), 0);
    test::write_bytes(out, "precious\n");
    const int pid = test::spawn_tool("openrm-score", {"--model", dir, "--input", in, "--output", out},
                                     tmp.file("run.log"));
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 60000 && temporary_files(tmp.path()).empty(); ++i) {
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_FALSE(exited) << test::read_bytes(tmp.file("run.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // on to the model and the input
    ::kill(pid, sig);
    ::waitpid(pid, &status, 0);
    EXPECT_EQ(test::decode_status(status), -sig) << test::read_bytes(tmp.file("run.log"));
    EXPECT_EQ(temporary_files(tmp.path()), std::vector<std::string>{});
    EXPECT_EQ(test::read_bytes(out), "precious\n");
  }
}

TEST_F(ScoreCli, AnUnavailableDeviceIsOneLineAndTooManyThreadsOneWarning) {
  const std::string in = tmp.file("in.jsonl"), out = tmp.file("out.jsonl");
  test::write_bytes(in, record_line(0));
  const std::string io = "--model '" + dir + "' --input '" + in + "' --output '" + out + "'";
  for (const std::string device : {"cuda:7", "gpu"}) {
    const test::ToolRun r = run(io + " --device " + device);
    const std::string line = test::error_line(r, "openrm-score");
    EXPECT_TRUE(test::contains(line, "device '" + device + "'")) << line;
    EXPECT_EQ(r.output, line + "\n");  // nothing else: no dispatcher text
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const test::ToolRun r = run(io + " --threads " + std::to_string(cores + 3));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string warning = "openrm-score: warning: --threads " + std::to_string(cores + 3) + " is more than the " +
                              std::to_string(cores) + " cores of this machine";
  EXPECT_TRUE(test::contains(r.output, warning)) << r.output;
  EXPECT_EQ(r.output.find("warning: --threads"), r.output.rfind("warning: --threads")) << r.output;
  EXPECT_FALSE(test::contains(run(io + " --threads " + std::to_string(cores)).output, "warning: --threads"));
}

// ---- CUDA --------------------------------------------------------------------------

// bf16 on CUDA against fp32 on CPU. The tolerance is bf16's: 8 bits of
// mantissa give a relative rounding of 2^-8 per operation; measured
// differences are in docs/scoring.md.
TEST(Scorer, Bf16RewardsMatchCpuFp32_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU";
  test::TempDir tmp;
  const std::string dir = tmp.file("rm");
  test::make_tiny_model_folder(dir, /*with_tokenizer=*/false);
  ScoreOptions cpu_options;
  Scorer cpu = Scorer::from_folder(dir, cpu_options);
  ScoreOptions gpu_options;
  gpu_options.device = "cuda";
  gpu_options.max_tokens = 300;
  Scorer gpu = Scorer::from_folder(dir, gpu_options);
  EXPECT_EQ(gpu.model().dtype(), at::kBFloat16);
  const auto seqs = random_sequences(50, 120, 9);
  const auto a = cpu.score_tokens(seqs), b = gpu.score_tokens(seqs);
  double scale = 0, worst = 0;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    scale = std::max(scale, std::fabs(double(a[i])));
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  }
  EXPECT_LT(worst, 0.05 * std::max(1.0, scale)) << "largest |cpu fp32 - cuda bf16|";

  // fp32 on CUDA (padded SDPA path) agrees with the CPU closely.
  gpu_options.dtype = "fp32";
  Scorer gpu32 = Scorer::from_folder(dir, gpu_options);
  const auto c = gpu32.score_tokens(seqs);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_NEAR(a[i], c[i], 1e-3 * std::max(1.0, scale));
}

TEST(Scorer, Bf16BatchedEqualsAlone_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU";
  ModelConfig config = test::tiny_config("MistralForSequenceClassification");
  config.sliding_window = 16;  // the window through flash's left window
  LoadOptions on_gpu;
  on_gpu.device = c10::Device("cuda:0");
  on_gpu.dtype = at::kBFloat16;
  auto model = create_reward_model(config, on_gpu);
  model->init_weights(/*seed=*/3, /*std=*/0.2);
  Scorer scorer(model, nullptr, ChatFormat::kPlain);
  const auto seqs = random_sequences(30, 120, 4);
  const auto batched = scorer.score_tokens(seqs);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const float single = scorer.score_tokens({seqs[i]})[0];
    EXPECT_NEAR(batched[i], single, 0.02 * std::max(1.0f, std::fabs(single))) << i;
  }
}

TEST(Scorer, AModelMovedToTheGpuScoresAsOneCreatedThere_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU";
  auto moved = tiny_model();
  moved->to(c10::Device("cuda:0"));  // fp32: the padded SDPA path
  Scorer on_gpu(moved, nullptr, ChatFormat::kPlain);
  auto on_cpu = tiny_model();
  Scorer cpu(on_cpu, nullptr, ChatFormat::kPlain);
  const auto seqs = random_sequences(10, 50, 8);
  const auto a = cpu.score_tokens(seqs), b = on_gpu.score_tokens(seqs);
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-3 * std::max(1.0f, std::fabs(a[i])));
}

// A model with several outputs: the reward is the output or the weighted sum
// asked for, against transformers' outputs for the same checkpoint
// (tests/fixtures/parity/llama_three_labels, 3 labels).
TEST(ScorerLabels, SeveralOutputsGiveTheChosenOrWeightedReward) {
  const std::string dir = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/parity/llama_three_labels";
  if (!std::filesystem::exists(dir + "/expected.json")) GTEST_SKIP() << dir << " is missing";
  std::ifstream in(dir + "/expected.json");
  const auto expected = nlohmann::json::parse(in);
  const auto sequences = expected.at("sequences").get<std::vector<std::vector<std::int64_t>>>();
  const auto want = expected.at("unbatched").at("scores").get<std::vector<std::vector<double>>>();
  std::vector<std::vector<TokenId>> ids;
  for (const auto& s : sequences) ids.emplace_back(s.begin(), s.end());
  auto model = load_reward_model(dir);
  ASSERT_EQ(model->config().num_labels, 3);

  ScoreOptions label;
  label.reward_label = 2;
  const auto by_label = Scorer(model, nullptr, ChatFormat::kPlain, label).score_tokens(ids);
  ScoreOptions weighted;
  weighted.reward_weights = {0.5, -1.0, 2.0};
  const auto by_weights = Scorer(model, nullptr, ChatFormat::kPlain, weighted).score_tokens(ids);
  ASSERT_EQ(by_label.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(by_label[i], want[i][2], 1e-4) << "sequence " << i;
    EXPECT_NEAR(by_weights[i], 0.5 * want[i][0] - want[i][1] + 2.0 * want[i][2], 3e-4) << "sequence " << i;
  }

  auto error_of = [&](const ScoreOptions& o) {
    try {
      Scorer(model, nullptr, ChatFormat::kPlain, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(test::contains(error_of({}), "--reward-label")) << error_of({});
  ScoreOptions out_of_range;
  out_of_range.reward_label = 3;
  EXPECT_TRUE(test::contains(error_of(out_of_range), "out of range")) << error_of(out_of_range);
  ScoreOptions wrong_count;
  wrong_count.reward_weights = {1.0, 2.0};
  EXPECT_TRUE(test::contains(error_of(wrong_count), "has 2 weights")) << error_of(wrong_count);
}

}  // namespace
}  // namespace openrm
