// The evaluation layer: metrics against closed forms and hand-computed
// values, evaluate() against scoring each sequence alone, evaluate_file() and
// the openrm-eval tool on a tiny random model folder.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <limits>
#include <nlohmann/json.hpp>
#include <openrm/data/tokenize.h>
#include <openrm/eval/evaluate.h>
#include <openrm/eval/metrics.h>
#include <openrm/io/file.h>
#include <openrm/models/model_folder.h>
#include <openrm/models/packed_batch.h>
#include <openrm/models/reward_model.h>
#include <openrm/tokenizer/train_tokenizer.h>
#include <random>
#include <sstream>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- metrics ---------------------------------------------------------------

TEST(EvalMetrics, BradleyTerryLossIsStableSoftplus) {
  // Where exp does not overflow, -log sigmoid(x) = log1p(exp(-x)) directly.
  for (double x : {-30.0, -5.0, -1.0, -1e-9, 0.0, 0.5, 3.0, 20.0, 700.0}) {
    EXPECT_NEAR(bradley_terry_loss(x, 0.0), std::log1p(std::exp(-x)), 1e-15 * (1 + std::fabs(x))) << x;
    EXPECT_NEAR(softplus(x), std::log1p(std::exp(x)), 1e-15 * (1 + std::fabs(x))) << x;
  }
  EXPECT_DOUBLE_EQ(bradley_terry_loss(0.0, 0.0), std::log(2.0));
  // Large |x|: exp(1000) overflows, the closed form does not.
  // -log sigmoid(-1000) = 1000 + log1p(exp(-1000)) = 1000.
  EXPECT_DOUBLE_EQ(bradley_terry_loss(0.0, 1000.0), 1000.0);
  EXPECT_DOUBLE_EQ(bradley_terry_loss(1e6, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(bradley_terry_loss(-1e300, 1e300), 2e300);
  // The margin shifts the difference: loss(c, r, m) = loss(c - m, r).
  EXPECT_DOUBLE_EQ(bradley_terry_loss(2.0, 0.5, 1.0), std::log1p(std::exp(-0.5)));
  EXPECT_DOUBLE_EQ(sigmoid(800.0), 1.0);
  EXPECT_DOUBLE_EQ(sigmoid(-700.0), std::exp(-700.0));  // e / (1 + e) with 1 + e == 1
  EXPECT_DOUBLE_EQ(sigmoid(std::log(3.0)), 0.75);
}

TEST(EvalMetrics, AccuracyMarginRewardStatsAndLossByHand) {
  // (chosen, rejected): differences 1, -1, 0 (a tie), 2.
  std::vector<ScoredPair> pairs = {{1, 0}, {0, 1}, {2, 2}, {3, 1}};
  pairs[3].margin = 0.5;
  PreferenceMetrics m = compute_preference_metrics(pairs);
  EXPECT_EQ(m.pairs, 4);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);  // the tie counts as wrong
  EXPECT_EQ(m.ties, 1);
  EXPECT_DOUBLE_EQ(m.mean_margin, 0.5);  // (1 - 1 + 0 + 2) / 4
  // Rewards 1 0 0 1 2 2 3 1: mean 10/8; squared deviations sum to 7.5, and
  // the population variance divides by 8.
  EXPECT_DOUBLE_EQ(m.reward_mean, 1.25);
  EXPECT_DOUBLE_EQ(m.reward_std, std::sqrt(7.5 / 8));
  const double loss = (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(1.0)) + std::log(2.0) +
                       std::log1p(std::exp(-(2.0 - 0.5)))) / 4;
  EXPECT_NEAR(m.loss, loss, 1e-15);
  EXPECT_FALSE(m.has_length_bias);  // no lengths given
  EXPECT_TRUE(std::isnan(m.length_bias.pearson));
}

TEST(EvalMetrics, CalibrationErrorByHand) {
  // Differences ln 3, ln 3, -ln 3, ln 19 give p = 0.75, 0.75, 0.25, 0.95.
  // Each pair adds (p, outcome 1) and (1 - p, outcome 0):
  //   bin [0.7, 0.8): 0.75/1, 0.75/1, 0.75/0 -> n 3, predicted 0.75, observed 2/3
  //   bin [0.2, 0.3): 0.25/0, 0.25/0, 0.25/1 -> n 3, predicted 0.25, observed 1/3
  //   bin [0.9, 1.0]: 0.95/1                 -> n 1, |0.95 - 1| = 0.05
  //   bin [0.0, 0.1): 0.05/0                 -> n 1, |0.05 - 0| = 0.05
  // ECE = 3/8 * 1/12 + 3/8 * 1/12 + 1/8 * 0.05 + 1/8 * 0.05 = 0.0625 + 0.0125 = 0.075.
  const std::vector<double> d = {std::log(3.0), std::log(3.0), -std::log(3.0), std::log(19.0)};
  auto bins = calibration_bins(d, 10);
  ASSERT_EQ(bins.size(), 10u);
  EXPECT_EQ(bins[7].count, 3);
  EXPECT_NEAR(bins[7].mean_predicted, 0.75, 1e-12);
  EXPECT_NEAR(bins[7].observed_frequency, 2.0 / 3, 1e-12);
  EXPECT_EQ(bins[2].count, 3);
  EXPECT_NEAR(bins[2].observed_frequency, 1.0 / 3, 1e-12);
  EXPECT_EQ(bins[9].count, 1);
  EXPECT_EQ(bins[0].count, 1);
  EXPECT_EQ(bins[5].count, 0);
  EXPECT_TRUE(std::isnan(bins[5].mean_predicted));
  EXPECT_DOUBLE_EQ(bins[3].lower, 0.3);
  EXPECT_DOUBLE_EQ(bins[9].upper, 1.0);
  EXPECT_NEAR(expected_calibration_error(bins), 0.075, 1e-12);

  std::vector<ScoredPair> pairs;
  for (double x : d) pairs.push_back({x, 0.0});
  EXPECT_NEAR(compute_preference_metrics(pairs).ece, 0.075, 1e-12);

  // Always 0.5: both orderings land in one bin with observed frequency 1/2.
  EXPECT_DOUBLE_EQ(expected_calibration_error(calibration_bins({0.0, 0.0, 0.0}, 10)), 0.0);
  // Perfect separation with p near 1: ECE = 1 - sigmoid(40), about 4e-18.
  EXPECT_NEAR(expected_calibration_error(calibration_bins({40.0, 45.0}, 10)), 0.0, 1e-15);
  // Confidently wrong: p = sigmoid(-40) with outcome 1 -> ECE near 1.
  EXPECT_NEAR(expected_calibration_error(calibration_bins({-40.0}, 10)), 1.0, 1e-15);
  // NaN differences are left out; no prediction at all gives NaN.
  EXPECT_EQ(calibration_bins({kNaN, 0.0}, 4)[2].count, 2);
  EXPECT_TRUE(std::isnan(expected_calibration_error(calibration_bins({kNaN}, 10))));
  EXPECT_TRUE(test::contains(test::error_of([] { calibration_bins({0.0}, 0); }), "at least 1"));
}

TEST(EvalMetrics, PearsonAgainstTextbookFormula) {
  // mean x = 3, mean y = 4; sum dx*dy = 6, sum dx^2 = 10, sum dy^2 = 6.
  EXPECT_NEAR(pearson_correlation({1, 2, 3, 4, 5}, {2, 4, 5, 4, 5}), 6 / std::sqrt(60.0), 1e-15);
  EXPECT_DOUBLE_EQ(pearson_correlation({1, 2, 3}, {10, 20, 30}), 1.0);
  EXPECT_DOUBLE_EQ(pearson_correlation({1, 2, 3}, {3, 2, 1}), -1.0);
  EXPECT_TRUE(std::isnan(pearson_correlation({1, 2, 3}, {7, 7, 7})));  // constant: undefined
  EXPECT_TRUE(std::isnan(pearson_correlation({5, 5}, {1, 2})));
  EXPECT_TRUE(std::isnan(pearson_correlation({1}, {2})));
  EXPECT_TRUE(std::isnan(pearson_correlation({}, {})));
  EXPECT_TRUE(test::contains(test::error_of([] { pearson_correlation({1, 2}, {1}); }), "2 x values but 1"));
}

// r = (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2)), the one-pass
// textbook form (the library uses the two-pass one).
double textbook_pearson(const std::vector<double>& x, const std::vector<double>& y) {
  double n = static_cast<double>(x.size()), sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    syy += y[i] * y[i];
    sxy += x[i] * y[i];
  }
  return (n * sxy - sx * sy) / std::sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
}

TEST(EvalMetrics, LengthBiasByHand) {
  // {chosen, rejected, margin, chosen_length, rejected_length}
  std::vector<ScoredPair> pairs = {
      {1, 0, 0, 10, 5},  // chosen longer and higher: the longer side wins
      {0, 1, 0, 3, 8},   // rejected longer and higher: the longer side wins
      {2, 1, 0, 4, 4},   // same length: left out of both rates
      {0, 1, 0, 9, 2},   // chosen longer but lower: the longer side loses
      {1, 1, 0, 6, 5},   // chosen longer, a reward tie: not a win
  };
  PreferenceMetrics m = compute_preference_metrics(pairs);
  ASSERT_TRUE(m.has_length_bias);
  EXPECT_EQ(m.length_bias.pairs_with_length_difference, 4);
  EXPECT_DOUBLE_EQ(m.length_bias.longer_wins_rate, 2.0 / 4);
  EXPECT_DOUBLE_EQ(m.length_bias.chosen_longer_rate, 3.0 / 4);
  std::vector<double> rewards, lengths;
  for (const auto& p : pairs) {
    rewards.insert(rewards.end(), {p.chosen, p.rejected});
    lengths.insert(lengths.end(), {double(p.chosen_length), double(p.rejected_length)});
  }
  EXPECT_NEAR(m.length_bias.pearson, textbook_pearson(rewards, lengths), 1e-12);

  // Every pair the same length: the rates and the correlation are undefined.
  PreferenceMetrics same = compute_preference_metrics({{1, 0, 0, 5, 5}, {0, 2, 0, 5, 5}});
  ASSERT_TRUE(same.has_length_bias);
  EXPECT_EQ(same.length_bias.pairs_with_length_difference, 0);
  EXPECT_TRUE(std::isnan(same.length_bias.pearson));
  EXPECT_TRUE(std::isnan(same.length_bias.longer_wins_rate));
  EXPECT_TRUE(std::isnan(same.length_bias.chosen_longer_rate));
  // One unknown length: no length bias at all.
  EXPECT_FALSE(compute_preference_metrics({{1, 0, 0, 5, -1}, {0, 2, 0, 5, 6}}).has_length_bias);
}

TEST(EvalMetrics, EmptyAndNonFiniteInputsDoNotCrash) {
  PreferenceMetrics empty = compute_preference_metrics({});
  EXPECT_EQ(empty.pairs, 0);
  for (double v : {empty.accuracy, empty.mean_margin, empty.reward_mean, empty.reward_std, empty.loss, empty.ece,
                   empty.length_bias.pearson}) {
    EXPECT_TRUE(std::isnan(v));
  }
  EvalResult result;
  result.metrics = empty;
  auto j = eval_result_json(result);
  EXPECT_TRUE(j["accuracy"].is_null());
  EXPECT_TRUE(j["length_bias"].is_null());
  EXPECT_TRUE(j["calibration"][0]["mean_predicted"].is_null());
  EXPECT_TRUE(test::contains(format_eval_result(result), "n/a"));

  PreferenceMetrics m = compute_preference_metrics({{kNaN, 0}, {1, 0}});
  EXPECT_EQ(m.non_finite, 1);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);  // NaN > 0 is false: wrong
  std::int64_t counted = 0;
  for (const auto& b : m.calibration) counted += b.count;
  EXPECT_EQ(counted, 2);  // only the finite pair, both orderings
}

// ---- evaluate() --------------------------------------------------------------

std::vector<TokenizedPair> random_pairs(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> length(1, 60), id(1, 63);
  std::vector<TokenizedPair> pairs(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    TokenizedPair& p = pairs[static_cast<std::size_t>(i)];
    for (int k = length(rng); k > 0; --k) p.chosen.push_back(id(rng));
    for (int k = length(rng); k > 0; --k) p.rejected.push_back(id(rng));
    p.source_index = 100 + i;
    p.line = 7 + 2 * i;
    if (i % 3 == 0) {
      p.margin = 0.25 * i;
      p.has_margin = true;
    }
  }
  return pairs;
}

std::vector<std::int64_t> ids64(const std::vector<TokenId>& ids) { return {ids.begin(), ids.end()}; }

TEST(Evaluate, RewardsEqualEachSequenceScoredAloneInInputOrder) {
  auto model = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  model->init_weights(/*seed=*/3, /*std=*/0.2);
  const auto pairs = random_pairs(37, 11);
  EvalOptions options;
  options.max_tokens = 200;  // many batches of different shapes
  EvalResult result = evaluate(*model, pairs, options);
  EXPECT_GT(result.batches, 5);
  ASSERT_EQ(result.rewards.size(), pairs.size());

  std::vector<ScoredPair> reference;
  double worst = 0.0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const float chosen = model->score({ids64(pairs[i].chosen)})[0];
    const float rejected = model->score({ids64(pairs[i].rejected)})[0];
    const PairReward& r = result.rewards[i];
    EXPECT_EQ(r.source_index, pairs[i].source_index);
    EXPECT_EQ(r.line, pairs[i].line);
    EXPECT_EQ(r.chosen_length, static_cast<std::int64_t>(pairs[i].chosen.size()));
    EXPECT_EQ(r.rejected_length, static_cast<std::int64_t>(pairs[i].rejected.size()));
    // Alone or batched differ only by BLAS accumulation order (docs/models.md).
    worst = std::max({worst, std::fabs(double(r.chosen) - chosen), std::fabs(double(r.rejected) - rejected)});
    reference.push_back({chosen, rejected, pairs[i].has_margin ? pairs[i].margin : 0.0,
                         r.chosen_length, r.rejected_length});
  }
  EXPECT_LT(worst, 1e-5) << "largest difference between batched and alone";

  const PreferenceMetrics expect = compute_preference_metrics(reference);
  const PreferenceMetrics& got = result.metrics;
  EXPECT_EQ(got.pairs, 37);
  EXPECT_NEAR(got.accuracy, expect.accuracy, 1e-12);
  EXPECT_NEAR(got.mean_margin, expect.mean_margin, 1e-5);
  EXPECT_NEAR(got.reward_mean, expect.reward_mean, 1e-5);
  EXPECT_NEAR(got.reward_std, expect.reward_std, 1e-5);
  EXPECT_NEAR(got.loss, expect.loss, 1e-5);
  EXPECT_NEAR(got.ece, expect.ece, 1e-5);
  EXPECT_NEAR(got.length_bias.pearson, expect.length_bias.pearson, 1e-5);
  EXPECT_DOUBLE_EQ(got.length_bias.chosen_longer_rate, expect.length_bias.chosen_longer_rate);
  EXPECT_DOUBLE_EQ(got.length_bias.longer_wins_rate, expect.length_bias.longer_wins_rate);

  // One batch for everything gives the same rewards; keep_rewards off keeps none.
  options.max_tokens = 1 << 20;
  options.keep_rewards = false;
  EvalResult one = evaluate(*model, pairs, options);
  EXPECT_EQ(one.batches, 1);
  EXPECT_TRUE(one.rewards.empty());
  EXPECT_NEAR(one.metrics.loss, expect.loss, 1e-5);
}

TEST(Evaluate, BadOptionsAndEmptyInput) {
  auto model = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  model->init_weights(1);
  EvalOptions options;
  options.max_tokens = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*model, random_pairs(2, 1), options); }),
                             "max_tokens must be positive"));
  options = {};
  options.calibration_bins = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { options.validate(); }), "calibration_bins"));

  EvalResult empty = evaluate(*model, {}, EvalOptions{});
  EXPECT_EQ(empty.metrics.pairs, 0);
  EXPECT_EQ(empty.batches, 0);

  auto pairs = random_pairs(2, 1);
  pairs[1].rejected.clear();
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*model, pairs, EvalOptions{}); }), "evaluate"));
}

// A model with several outputs: the reward is the chosen output or the
// weighted sum, as the Scorer makes it; without a choice, an error naming it.
TEST(Evaluate, SeveralOutputsNeedARewardLabelOrWeights) {
  ModelConfig config = test::tiny_config("LlamaForSequenceClassification");
  config.num_labels = 3;
  auto model = create_reward_model(config);
  model->init_weights(/*seed=*/4, /*std=*/0.2);
  const auto pairs = random_pairs(9, 5);
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*model, pairs, EvalOptions{}); }), "--reward-label"));
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*model, {}, EvalOptions{}); }), "--reward-label"));

  auto alone = [&](const std::vector<TokenId>& ids) {
    torch::NoGradGuard no_grad;
    return model->forward(PackedBatch::from_sequences({ids64(ids)})).to(torch::kDouble)[0];
  };
  EvalOptions by_label;
  by_label.reward_label = 2;
  EvalOptions weighted;
  weighted.reward_weights = {0.5, -1.0, 2.0};
  const EvalResult a = evaluate(*model, pairs, by_label);
  const EvalResult b = evaluate(*model, pairs, weighted);
  ASSERT_EQ(a.rewards.size(), pairs.size());
  ASSERT_EQ(b.rewards.size(), pairs.size());
  EXPECT_EQ(a.reward_label, std::optional<std::int64_t>(2));
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const at::Tensor c = alone(pairs[i].chosen), r = alone(pairs[i].rejected);
    EXPECT_NEAR(a.rewards[i].chosen, c[2].item<double>(), 1e-5);
    EXPECT_NEAR(a.rewards[i].rejected, r[2].item<double>(), 1e-5);
    auto sum = [](const at::Tensor& t) {
      return 0.5 * t[0].item<double>() - t[1].item<double>() + 2.0 * t[2].item<double>();
    };
    EXPECT_NEAR(b.rewards[i].chosen, sum(c), 1e-5);
    EXPECT_NEAR(b.rewards[i].rejected, sum(r), 1e-5);
  }
  EXPECT_EQ(eval_result_json(a)["reward_label"], 2);
  EXPECT_EQ(eval_result_json(b)["reward_weights"].size(), 3u);
  EXPECT_TRUE(test::contains(format_eval_result(b), "weighted outputs"));

  EvalOptions bad;
  bad.reward_label = 3;
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*model, pairs, bad); }), "reward_label 3"));
  bad = {};
  bad.reward_weights = {1.0, 2.0};
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*model, pairs, bad); }), "reward_weights has 2"));
  bad.reward_label = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { bad.validate(); }), "exclusive"));

  // A one-output model refuses a label other than 0 and any weights.
  auto single = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  EXPECT_TRUE(test::contains(test::error_of([&] { evaluate(*single, pairs, weighted); }), "one output"));
}

// ---- evaluate_file() and openrm-eval ------------------------------------------

void make_model_folder(const std::string& dir, bool with_tokenizer) {
  test::make_tiny_model_folder(dir, with_tokenizer);
}

std::string pair_line(int i) {
  nlohmann::json j = {{"id", "p" + std::to_string(i)},
                      {"prompt", "The quick brown fox " + std::to_string(i)},
                      {"chosen", "jumps over the lazy dog."},
                      {"rejected", i % 2 ? "A reward model." : "scores answer number " + std::to_string(i)}};
  return j.dump() + "\n";
}

std::string good_data(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) text += pair_line(i);
  return text;
}

class EvalFiles : public ::testing::Test {
 protected:
  test::TempDir tmp;
};

TEST_F(EvalFiles, EvaluateFileMatchesTokenizingAndScoringEachPairAlone) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);
  test::write_bytes(data, good_data(6));
  EvalOptions options;
  options.max_length = 120;
  EvalResult result = evaluate_file(dir, data, options);
  EXPECT_EQ(result.metrics.pairs, 6);
  EXPECT_EQ(result.read.records, 6);
  EXPECT_EQ(result.truncation.kept, 6);
  EXPECT_EQ(result.chat_format, "plain");
  ASSERT_EQ(result.rewards.size(), 6u);

  // The reference: render + encode each side with the plain format, score alone.
  auto model = load_reward_model(dir);
  auto tokenizer = load_tokenizer(dir);
  auto data_read = read_preferences(data);
  for (std::size_t i = 0; i < 6; ++i) {
    const auto& pair = data_read.pairs[i];
    Conversation chosen = pair.prompt, rejected = pair.prompt;
    chosen.insert(chosen.end(), pair.chosen.begin(), pair.chosen.end());
    rejected.insert(rejected.end(), pair.rejected.begin(), pair.rejected.end());
    const auto chosen_ids = encode_chat(*tokenizer, ChatFormat::kPlain, chosen);
    const auto rejected_ids = encode_chat(*tokenizer, ChatFormat::kPlain, rejected);
    const PairReward& r = result.rewards[i];
    EXPECT_EQ(r.id, "p" + std::to_string(i));
    EXPECT_EQ(r.line, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(r.chosen_length, static_cast<std::int64_t>(chosen_ids.size()));
    EXPECT_NEAR(r.chosen, model->score({ids64(chosen_ids)})[0], 1e-5);
    EXPECT_NEAR(r.rejected, model->score({ids64(rejected_ids)})[0], 1e-5);
  }

  // The JSON Lines of rewards give back the same numbers.
  std::istringstream lines(pair_rewards_jsonl(result));
  std::string line;
  for (std::size_t i = 0; std::getline(lines, line); ++i) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["id"], "p" + std::to_string(i));
    EXPECT_EQ(j["chosen"].get<float>(), result.rewards[i].chosen);
    EXPECT_EQ(j["rejected"].get<float>(), result.rewards[i].rejected);
  }
  // An integer id stays a number.
  EvalResult numbered = result;
  numbered.rewards.resize(1);
  numbered.rewards[0].id = "42";
  numbered.rewards[0].id_is_number = true;
  EXPECT_EQ(nlohmann::json::parse(pair_rewards_jsonl(numbered))["id"], 42);

  options.chat_format = ChatFormat::kHH;
  EXPECT_EQ(evaluate_file(dir, data, options).chat_format, "hh");
}

TEST_F(EvalFiles, ErrorsNameTheFolderOrTheFileAndLine) {
  const std::string dir = tmp.file("rm"), bare = tmp.file("bare"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);
  make_model_folder(bare, false);
  test::write_bytes(data, good_data(3));

  std::string err = test::error_of([&] { evaluate_file(tmp.file("nope"), data); });
  EXPECT_TRUE(test::contains(err, tmp.file("nope") + ": no such model folder")) << err;

  err = test::error_of([&] { evaluate_file(bare, data); });
  EXPECT_TRUE(test::contains(err, bare + ": the model folder has no tokenizer")) << err;
  EXPECT_TRUE(test::contains(err, "--tokenizer")) << err;
  EvalOptions with_tokenizer;
  with_tokenizer.tokenizer = dir;  // borrow the other folder's
  EXPECT_EQ(evaluate_file(bare, data, with_tokenizer).metrics.pairs, 3);
  with_tokenizer.tokenizer = tmp.file("nowhere");
  err = test::error_of([&] { evaluate_file(dir, data, with_tokenizer); });
  EXPECT_TRUE(test::contains(err, tmp.file("nowhere") + ": no such tokenizer")) << err;

  const std::string broken = tmp.file("broken.jsonl");
  test::write_bytes(broken, pair_line(0) + "{\"prompt\": \n");
  err = test::error_of([&] { evaluate_file(dir, broken); });
  EXPECT_TRUE(test::contains(err, broken + ":2: malformed JSON")) << err;

  EvalOptions tiny;
  tiny.max_length = 3;
  tiny.truncation = TruncationPolicy::kDrop;
  err = test::error_of([&] { evaluate_file(dir, data, tiny); });
  EXPECT_TRUE(test::contains(err, "no pair left to evaluate: all 3 were dropped")) << err;
}

TEST_F(EvalFiles, MaxLengthAndPolicyDefaultToTheFoldersOpenrmJson) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);  // 128 positions; openrm.json has no max_length
  std::string text;  // every other pair longer
  for (int i = 0; i < 8; ++i) {
    text += nlohmann::json{{"prompt", "The quick brown fox " + std::to_string(i)},
                           {"chosen", i % 2 ? "jumps over the lazy dog again and again." : "jumps."},
                           {"rejected", "A reward model."}}
                .dump() +
            "\n";
  }
  test::write_bytes(data, text);
  // Nothing asked, nothing stored: 2048, lowered to the model's 128 positions.
  EvalResult r = evaluate_file(dir, data);
  EXPECT_EQ(r.tokenize.max_length, 128);
  EXPECT_EQ(r.tokenize.policy, TruncationPolicy::kTruncate);

  // A length at which, in the hh format, dropping keeps some pairs but not all.
  auto tokenizer = load_tokenizer(dir);
  TokenizeOptions t;
  t.format = ChatFormat::kHH;
  t.policy = TruncationPolicy::kDrop;
  TruncationStats expect;
  for (t.max_length = 8; t.max_length < 100; ++t.max_length) {
    expect = tokenize_pairs(read_preferences(data).pairs, *tokenizer, t).stats;
    if (expect.kept > 0) break;
  }
  ASSERT_GT(expect.dropped, 0);
  ASSERT_GT(expect.kept, 0);
  const std::int64_t length = t.max_length;

  // What openrm.json records (as openrm-train writes it) is the default.
  ModelMetadata meta = read_model_metadata(dir);
  meta.chat_format = ChatFormat::kHH;
  meta.max_length = length;
  meta.truncation = TruncationPolicy::kDrop;
  write_model_metadata(dir, meta);
  r = evaluate_file(dir, data);
  EXPECT_EQ(r.chat_format, "hh");
  EXPECT_EQ(r.tokenize.max_length, length);
  EXPECT_EQ(r.tokenize.policy, TruncationPolicy::kDrop);
  EXPECT_EQ(r.metrics.pairs, expect.kept);
  EXPECT_EQ(r.truncation.dropped, expect.dropped);
  const auto j = eval_result_json(r);
  EXPECT_EQ(j["max_length"], length);
  EXPECT_EQ(j["truncation_policy"], "drop");

  // Options win over it.
  EvalOptions options;
  options.max_length = 100;
  options.truncation = TruncationPolicy::kTruncate;
  r = evaluate_file(dir, data, options);
  EXPECT_EQ(r.tokenize.max_length, 100);
  EXPECT_EQ(r.metrics.pairs, 8);
  // Above the positions, from either, it is lowered; 0 asks for all of them.
  options.max_length = 1000;
  EXPECT_EQ(evaluate_file(dir, data, options).tokenize.max_length, 128);
  options.max_length = 0;
  EXPECT_EQ(evaluate_file(dir, data, options).tokenize.max_length, 128);
  meta.max_length = 4096;
  write_model_metadata(dir, meta);
  EXPECT_EQ(evaluate_file(dir, data).tokenize.max_length, 128);
}

test::ToolRun run_eval_tool(const std::string& args, const test::TempDir& tmp) {
  return test::run_tool("openrm-eval", args, tmp);
}

std::string error_line(const test::ToolRun& run) { return test::error_line(run, "openrm-eval"); }

class EvalCli : public EvalFiles {
 protected:
  void SetUp() override {
    if (!test::tool_built("openrm-eval")) {
      GTEST_SKIP() << "openrm-eval was not built (OPENRM_BUILD_TOOLS=OFF)";
    }
  }
};

TEST_F(EvalCli, WritesTableJsonAndRewards) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);
  test::write_bytes(data, good_data(8) + "{\"prompt\": \"Q\", \"chosen\": 5, \"rejected\": \"x\"}\n");
  const std::string json = tmp.file("metrics.json"), rewards = tmp.file("rewards.jsonl");
  test::ToolRun run = run_eval_tool("--model '" + dir + "' --data '" + data + "' --json '" + json + "' --rewards '" +
                                  rewards + "' --skip-invalid --max-length 120 --threads 1",
                              tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  for (const char* part : {"accuracy", "mean margin", "ECE (10 bins)", "length bias: pearson", "truncation",
                           "1 invalid skipped", "observed"}) {
    EXPECT_TRUE(test::contains(run.output, part)) << part;
  }
  auto j = nlohmann::json::parse(test::read_bytes(json));
  EXPECT_EQ(j["pairs"], 8);
  EXPECT_EQ(j["read"]["skipped_invalid"], 1);
  EXPECT_EQ(j["truncation"]["kept"], 8);
  EXPECT_EQ(j["calibration"].size(), 10u);

  // Accuracy and mean margin recomputed from the rewards file.
  std::istringstream lines(test::read_bytes(rewards));
  std::string line;
  int n = 0, correct = 0;
  double margin = 0;
  while (std::getline(lines, line)) {
    auto r = nlohmann::json::parse(line);
    correct += r["chosen"].get<double>() > r["rejected"].get<double>();
    margin += r["chosen"].get<double>() - r["rejected"].get<double>();
    ++n;
  }
  EXPECT_EQ(n, 8);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), correct / 8.0);
  EXPECT_NEAR(j["mean_margin"].get<double>(), margin / 8, 1e-6);
}

TEST_F(EvalCli, RewardLabelChoosesTheOutputOfASeveralOutputModel) {
  const std::string dir = tmp.file("rm3"), data = tmp.file("prefs.jsonl"), json = tmp.file("m.json");
  ModelConfig config = test::tiny_config("LlamaForSequenceClassification");
  config.num_labels = 3;
  auto model = create_reward_model(config);
  model->init_weights(/*seed=*/6, /*std=*/0.2);
  save_reward_model(*model, dir);
  test::train_tiny_tokenizer(dir);
  test::write_bytes(data, good_data(6));
  const std::string base = "--model '" + dir + "' --data '" + data + "' --threads 1";
  test::ToolRun run = run_eval_tool(base, tmp);
  EXPECT_NE(run.status, 0);
  EXPECT_TRUE(test::contains(error_line(run), "--reward-label")) << run.output;
  run = run_eval_tool(base + " --reward-label 1 --json '" + json + "'", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(test::contains(run.output, "output 1")) << run.output;
  auto j = nlohmann::json::parse(test::read_bytes(json));
  EXPECT_EQ(j["reward_label"], 1);
  EXPECT_EQ(j["pairs"], 6);
  // The same metrics as evaluate_file with that label.
  EvalOptions options;
  options.reward_label = 1;
  options.threads = 1;
  EXPECT_NEAR(j["loss"].get<double>(), evaluate_file(dir, data, options).metrics.loss, 1e-6);
  run = run_eval_tool(base + " --reward-label 1 --reward-weights 1,0,0", tmp);
  EXPECT_NE(run.status, 0);
}

TEST_F(EvalCli, BadInputsGiveOneErrorLine) {
  const std::string dir = tmp.file("rm"), bare = tmp.file("bare"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);
  make_model_folder(bare, false);
  test::write_bytes(data, good_data(3));

  std::string line = error_line(run_eval_tool("--model '" + tmp.file("nope") + "' --data '" + data + "'", tmp));
  EXPECT_TRUE(test::contains(line, "no such model folder")) << line;

  line = error_line(run_eval_tool("--model '" + bare + "' --data '" + data + "'", tmp));
  EXPECT_TRUE(test::contains(line, "has no tokenizer")) << line;
  EXPECT_TRUE(test::contains(line, "--tokenizer")) << line;
  EXPECT_EQ(run_eval_tool("--model '" + bare + "' --tokenizer '" + dir + "' --data '" + data + "'", tmp).status, 0);

  line = error_line(run_eval_tool("--model '" + dir + "' --data '" + tmp.file("missing.jsonl") + "'", tmp));
  EXPECT_TRUE(test::contains(line, tmp.file("missing.jsonl") + ": cannot open")) << line;

  const std::string broken = tmp.file("broken.jsonl");
  test::write_bytes(broken, good_data(2) + "{\"prompt\": \"Q\", \"chosen\": 5, \"rejected\": \"x\"}\n");
  line = error_line(run_eval_tool("--model '" + dir + "' --data '" + broken + "'", tmp));
  EXPECT_TRUE(test::contains(line, broken + ":3: field 'chosen'")) << line;

  const std::string unwritable = tmp.file("no-such-dir/metrics.json");
  line = error_line(run_eval_tool("--model '" + dir + "' --data '" + data + "' --json '" + unwritable + "'", tmp));
  EXPECT_TRUE(test::contains(line, unwritable)) << line;

  line = error_line(run_eval_tool("--model '" + dir + "' --data '" + data + "' --truncation cut", tmp));
  EXPECT_TRUE(test::contains(line, "--truncation")) << line;
  line = error_line(run_eval_tool("--model '" + dir + "' --data '" + data + "' --max-length -1", tmp));
  EXPECT_TRUE(test::contains(line, "--max-length: expected a non-negative integer, got '-1'")) << line;

  // A bad openrm.json names the file and the field.
  ModelMetadata meta = read_model_metadata(dir);
  meta.other["max_length"] = "long";
  write_model_metadata(dir, meta);
  line = error_line(run_eval_tool("--model '" + dir + "' --data '" + data + "'", tmp));
  EXPECT_TRUE(test::contains(line, join_path(dir, "openrm.json") + ": field 'max_length'")) << line;
}

TEST_F(EvalCli, AnOutputThatIsAnInputIsRefusedBeforeAnyWork) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);
  test::write_bytes(data, good_data(3));
  const std::string config = test::read_bytes(join_path(dir, "config.json"));
  const std::string base = "--model '" + dir + "' --data '" + data + "' ";
  auto refused = [&](const std::string& args, const std::string& message) {
    const test::ToolRun run = run_eval_tool(base + args, tmp);
    const std::string line = error_line(run);
    EXPECT_TRUE(test::contains(line, message)) << line;
    EXPECT_FALSE(test::contains(run.output, "evaluated")) << run.output;
  };
  refused("--json '" + data + "'", data + ": is the same file as the input " + data);
  refused("--rewards '" + join_path(dir, "config.json") + "'",
          join_path(dir, "config.json") + ": is the same file as " + join_path(dir, "config.json") +
              " (in the input folder " + dir + ")");
  const std::string out = tmp.file("out.json");
  refused("--json '" + out + "' --rewards '" + out + "'", out + ": is the same file as the output " + out);
  refused("--json - --rewards -", "two outputs are standard output");
  refused("--json '" + tmp.path() + "'", tmp.path() + ": is a directory, not a file");
  EXPECT_EQ(test::read_bytes(data), good_data(3));
  EXPECT_EQ(test::read_bytes(join_path(dir, "config.json")), config);
  EXPECT_FALSE(path_exists(out));
}

TEST_F(EvalCli, AnOutputOnStdoutSendsTheTableToStderr) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl");
  make_model_folder(dir, true);
  test::write_bytes(data, good_data(4));
  const std::string tool = std::string(OPENRM_BINARY_DIR) + "/tools/openrm-eval";
  const std::string out = tmp.file("stdout"), err = tmp.file("stderr");
  const std::string command = tool + " --model '" + dir + "' --data '" + data + "' --json - --rewards '" +
                              tmp.file("rewards.jsonl") + "' > '" + out + "' 2> '" + err + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << test::read_bytes(err);
  const auto j = nlohmann::json::parse(test::read_bytes(out));  // only the JSON
  EXPECT_EQ(j["pairs"], 4);
  EXPECT_TRUE(test::contains(test::read_bytes(err), "openrm-eval: evaluated 4 pairs"));
  EXPECT_TRUE(test::contains(test::read_bytes(err), "wrote " + tmp.file("rewards.jsonl")));
  EXPECT_FALSE(path_exists(tmp.file("-")));
}

TEST_F(EvalCli, AMaxLengthOverThePositionsIsLoweredWithOneWarning) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl"), json = tmp.file("metrics.json");
  make_model_folder(dir, true);  // 128 positions
  test::write_bytes(data, good_data(4));
  const std::string warning = "max_length 1000 is more than the model's max_position_embeddings, 128";
  test::ToolRun run = run_eval_tool(
      "--model '" + dir + "' --data '" + data + "' --json '" + json + "' --max-length 1000 --threads 1", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  std::size_t count = 0;
  for (auto at = run.output.find(warning); at != std::string::npos; at = run.output.find(warning, at + 1)) ++count;
  EXPECT_EQ(count, 1u) << run.output;
  EXPECT_EQ(nlohmann::json::parse(test::read_bytes(json))["max_length"], 128);
  // The default (2048) is lowered without a word.
  run = run_eval_tool("--model '" + dir + "' --data '" + data + "' --json '" + json + "' --threads 1", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_FALSE(test::contains(run.output, "max_position_embeddings")) << run.output;
  EXPECT_EQ(nlohmann::json::parse(test::read_bytes(json))["max_length"], 128);
}

// ---- reports, cards, several models, RewardBench -----------------------------

std::vector<nlohmann::json> json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(test::read_bytes(path));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// sha256sum's digest of a file: an outside reference for the hash the card records.
std::string sha256sum(const std::string& path, const test::TempDir& tmp) {
  const std::string out = tmp.file("sha.txt");
  const std::string command = "sha256sum '" + path + "' > '" + out + "'";
  if (std::system(command.c_str()) != 0) return "";
  return test::read_bytes(out).substr(0, 64);
}

std::string subset_data(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = nlohmann::json::parse(pair_line(i));
    j["subset"] = i % 3 == 0 ? "math" : "chat";
    text += j.dump() + "\n";
  }
  return text;
}

TEST_F(EvalCli, TheJsonCarriesTheReportsNumbersAndAccuracyPerSubset) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl");
  const std::string json = tmp.file("eval.json"), rewards = tmp.file("r.jsonl"), report = tmp.file("report.html");
  make_model_folder(dir, true);
  test::write_bytes(data, subset_data(12));
  test::ToolRun run = run_eval_tool("--model '" + dir + "' --data '" + data + "' --json '" + json + "' --rewards '" +
                                        rewards + "' --report '" + report + "' --max-length 120 --threads 1",
                                    tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(test::contains(run.output, "accuracy per subset")) << run.output;
  const auto j = nlohmann::json::parse(test::read_bytes(json));
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["pairs"], 12);
  // Accuracy per subset, recomputed from the rewards file.
  std::map<std::string, std::pair<int, int>> by_subset;  // correct, pairs
  for (const auto& r : json_lines(rewards)) {
    auto& [correct, pairs] = by_subset[r["subset"].get<std::string>()];
    correct += r["chosen"].get<double>() > r["rejected"].get<double>();
    ++pairs;
  }
  ASSERT_EQ(j["report"]["groups"].size(), 2u);
  for (const auto& g : j["report"]["groups"]) {
    const auto& [correct, pairs] = by_subset.at(g["group"].get<std::string>());
    EXPECT_EQ(g["pairs"], pairs);
    EXPECT_DOUBLE_EQ(g["accuracy"].get<double>(), static_cast<double>(correct) / pairs);
  }
  std::int64_t chosen = 0;
  for (const auto& c : j["report"]["reward_histogram"]["chosen"]) chosen += c.get<std::int64_t>();
  EXPECT_EQ(chosen, 12);
  // The page: every plot, nothing fetched from outside.
  const std::string page = test::read_bytes(report);
  for (const char* id : {"plot-reward-histogram", "plot-margin-histogram", "plot-reliability", "plot-reward-length",
                         "plot-group-accuracy"}) {
    EXPECT_TRUE(test::contains(page, std::string("id=\"") + id + "\"")) << id;
  }
  EXPECT_FALSE(test::contains(page, "http://") || test::contains(page, "https://"));
  // Several files: pairs without a subset are grouped by file.
  const std::string other = tmp.file("other.jsonl");
  test::write_bytes(other, good_data(4));
  run = run_eval_tool("--model '" + dir + "' --data '" + data + "' --data '" + other + "' --json '" + json +
                          "' --max-length 120 --threads 1",
                      tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  const auto k = nlohmann::json::parse(test::read_bytes(json));
  EXPECT_EQ(k["pairs"], 16);
  EXPECT_EQ(k["data_files"].size(), 2u);
  ASSERT_EQ(k["report"]["groups"].size(), 3u);
  EXPECT_EQ(k["report"]["groups"][2]["group"], other);
  EXPECT_EQ(k["report"]["groups"][2]["pairs"], 4);
}

TEST_F(EvalCli, UpdateCardAppendsEachEvaluationWithItsDateAndDataHash) {
  const std::string dir = tmp.file("rm"), data = tmp.file("prefs.jsonl"), more = tmp.file("more.jsonl");
  make_model_folder(dir, true);
  test::write_bytes(data, good_data(6));
  test::write_bytes(more, good_data(9));
  ASSERT_EQ(run_eval_tool("--model '" + dir + "' --data '" + data + "' --update-card --threads 1", tmp).status, 0);
  const std::string first = test::read_bytes(join_path(dir, "README.md"));
  ASSERT_EQ(run_eval_tool("--model '" + dir + "' --data '" + more + "' --update-card --threads 1", tmp).status, 0);
  const std::string second = test::read_bytes(join_path(dir, "README.md"));
  EXPECT_EQ(second.substr(0, first.size()), first);  // nothing above is rewritten
  EXPECT_TRUE(test::contains(second.substr(first.size()), more));
  const auto lines = json_lines(join_path(dir, "evaluations.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  const std::string hash = sha256sum(data, tmp);
  ASSERT_EQ(hash.size(), 64u);
  EXPECT_EQ(lines[0]["data_sha256"], hash);
  EXPECT_EQ(lines[1]["data_sha256"], sha256sum(more, tmp));
  EXPECT_EQ(lines[0]["pairs"], 6);
  EXPECT_EQ(lines[1]["pairs"], 9);
  EXPECT_EQ(lines[1]["date"].get<std::string>().size(), 10u);  // YYYY-MM-DD
  EXPECT_TRUE(lines[1]["metrics"].contains("accuracy"));
  EXPECT_TRUE(test::contains(second, hash));
  // Standard input has no hash to record.
  const std::string line =
      error_line(run_eval_tool("--model '" + dir + "' --data - --update-card < '" + data + "'", tmp));
  EXPECT_TRUE(test::contains(line, "--update-card")) << line;
  EXPECT_EQ(json_lines(join_path(dir, "evaluations.jsonl")).size(), 2u);
}

// Two different models on the same pairs: each model's numbers are its own
// run's, and the ensembles follow from the rewards file by the formulas of
// docs/ensembles.md (z-scores over the 2N rewards, population std).
TEST_F(EvalCli, SeveralModelsAreComparedAndCombined) {
  const std::string a = tmp.file("a"), b = tmp.file("b"), data = tmp.file("prefs.jsonl");
  make_model_folder(a, true);
  make_model_folder(b, true);
  {
    auto model = load_reward_model(b);
    test::perturb_adapters_and_head(*model);
    save_reward_model(*model, b);
  }
  test::write_bytes(data, good_data(20));
  const std::string json = tmp.file("eval.json"), rewards = tmp.file("r.jsonl"), report = tmp.file("r.html");
  const std::string alone = tmp.file("alone.json");
  ASSERT_EQ(run_eval_tool("--model '" + b + "' --data '" + data + "' --json '" + alone + "' --threads 1", tmp).status,
            0);
  test::ToolRun run = run_eval_tool("--model '" + a + "' --model '" + b + "' --data '" + data + "' --json '" + json +
                                        "' --rewards '" + rewards + "' --report '" + report +
                                        "' --ensemble-k 0.5 --threads 1",
                                    tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  const auto j = nlohmann::json::parse(test::read_bytes(json));
  ASSERT_EQ(j["models"].size(), 2u);
  EXPECT_EQ(j["models"][1]["accuracy"], nlohmann::json::parse(test::read_bytes(alone))["accuracy"]);
  EXPECT_EQ(j["models"][1]["reward_mean"], nlohmann::json::parse(test::read_bytes(alone))["reward_mean"]);

  std::vector<std::vector<double>> chosen(2), rejected(2);
  for (const auto& r : json_lines(rewards)) {
    const int m = r["model"] == a ? 0 : 1;
    chosen[m].push_back(r["chosen"].get<double>());
    rejected[m].push_back(r["rejected"].get<double>());
  }
  ASSERT_EQ(chosen[0].size(), 20u);
  ASSERT_EQ(chosen[1].size(), 20u);
  std::vector<std::vector<double>> zc(2), zr(2);
  for (int m = 0; m < 2; ++m) {
    double sum = 0, sq = 0;
    for (int i = 0; i < 20; ++i) sum += chosen[m][i] + rejected[m][i];
    const double mean = sum / 40;
    for (int i = 0; i < 20; ++i) {
      sq += (chosen[m][i] - mean) * (chosen[m][i] - mean) + (rejected[m][i] - mean) * (rejected[m][i] - mean);
    }
    const double sd = std::sqrt(sq / 40);
    for (int i = 0; i < 20; ++i) {
      zc[m].push_back((chosen[m][i] - mean) / sd);
      zr[m].push_back((rejected[m][i] - mean) / sd);
    }
  }
  int mean_right = 0, min_right = 0, std_right = 0, split = 0, agree = 0;
  for (int i = 0; i < 20; ++i) {
    const double mc = (zc[0][i] + zc[1][i]) / 2, mr = (zr[0][i] + zr[1][i]) / 2;
    const double sc = std::abs(zc[0][i] - zc[1][i]) / 2, sr = std::abs(zr[0][i] - zr[1][i]) / 2;
    mean_right += mc > mr;
    min_right += std::min(zc[0][i], zc[1][i]) > std::min(zr[0][i], zr[1][i]);
    std_right += mc - 0.5 * sc > mr - 0.5 * sr;
    const bool a_chosen = chosen[0][i] > rejected[0][i], b_chosen = chosen[1][i] > rejected[1][i];
    split += a_chosen != b_chosen;
    agree += a_chosen == b_chosen;
  }
  const auto& c = j["comparison"];
  std::map<std::string, double> accuracy;
  for (const auto& e : c["ensembles"]) accuracy[e["rule"].get<std::string>()] = e["accuracy"].get<double>();
  EXPECT_NEAR(accuracy.at("mean"), mean_right / 20.0, 1e-12);
  EXPECT_NEAR(accuracy.at("min"), min_right / 20.0, 1e-12);
  EXPECT_NEAR(accuracy.at("mean-k-std"), std_right / 20.0, 1e-12);
  EXPECT_NEAR(c["preference_agreement"][0][1].get<double>(), agree / 20.0, 1e-12);
  EXPECT_EQ(c["disagreement"]["split_pairs"], split);
  // One page, a section per model.
  const std::string page = test::read_bytes(report);
  EXPECT_TRUE(test::contains(page, "id=\"m1-plot-reward-histogram\""));
  EXPECT_TRUE(test::contains(page, "id=\"m2-plot-reward-histogram\""));
  EXPECT_TRUE(test::contains(page, "Agreement between models"));
  // The same folder twice is a mistake.
  EXPECT_TRUE(test::contains(
      error_line(run_eval_tool("--model '" + a + "' --model '" + a + "' --data '" + data + "'", tmp)), "twice"));
}

// RewardBench files through openrm-eval: the per-example rewards it writes,
// given to the rewardbench package's own scoring functions
// (tests/rewardbench_reference.py), give the scores it reports.
nlohmann::json rewardbench_reference(const nlohmann::json& input, const test::TempDir& tmp, const std::string& name) {
  const std::string in = tmp.file(name + "-in.json"), out = tmp.file(name + "-out.json");
  test::write_bytes(in, input.dump());
  const std::string command = "'" + test::reference_python() + "' '" OPENRM_SOURCE_DIR
                              "/tests/rewardbench_reference.py' '" + in + "' > '" + out + "' 2> '" + out + ".err'";
  if (std::system(command.c_str()) != 0) {
    ADD_FAILURE() << test::read_bytes(out + ".err");
    return nullptr;
  }
  return nlohmann::json::parse(test::read_bytes(out));
}

TEST_F(EvalCli, RewardBenchFilesScoreAsTheRewardbenchPackageDoes) {
  if (test::reference_python().empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  const std::string dir = tmp.file("rm");
  make_model_folder(dir, true);
  const std::vector<std::string> v1_subsets = {
      "alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med", "mt-bench-hard",
      "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst", "llmbar-adver-GPTOut",
      "llmbar-adver-manual", "refusals-dangerous", "refusals-offensive", "xstest-should-refuse",
      "xstest-should-respond", "donotanswer", "math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python",
      "hep-rust", "anthropic_helpful", "anthropic_hhh", "shp", "summarize"};
  const std::vector<std::string> answers = {"jumps over the lazy dog.", "A reward model.", "The brown fox 7.",
                                            "scores answer number 3", "The quick brown fox."};
  // v1: three examples per subset.
  std::string v1;
  int id = 0;
  for (const auto& subset : v1_subsets) {
    for (int k = 0; k < 3; ++k, ++id) {
      v1 += nlohmann::json({{"prompt", "The quick brown fox " + std::to_string(id)},
                            {"chosen", answers[id % 5]},
                            {"rejected", answers[(id + 1 + k) % 5] + " " + std::to_string(k)},
                            {"chosen_model", "a"},
                            {"rejected_model", "b"},
                            {"subset", subset},
                            {"id", id}})
                .dump() +
            "\n";
    }
  }
  const std::string v1_path = tmp.file("rb1.jsonl"), json = tmp.file("rb.json"), rewards = tmp.file("rb.jsonl");
  test::write_bytes(v1_path, v1);
  test::ToolRun run = run_eval_tool("--model '" + dir + "' --data '" + v1_path + "' --json '" + json +
                                        "' --rewards '" + rewards + "' --threads 1",
                                    tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  auto j = nlohmann::json::parse(test::read_bytes(json));
  nlohmann::json input = {{"version", "v1"}, {"examples", nlohmann::json::array()}};
  for (const auto& r : json_lines(rewards)) {
    input["examples"].push_back({{"subset", r["subset"]}, {"id", r["id"]}, {"chosen", {r["chosen"]}},
                                 {"rejected", {r["rejected"]}}});
  }
  ASSERT_EQ(input["examples"].size(), 3 * v1_subsets.size());
  nlohmann::json ref = rewardbench_reference(input, tmp, "v1");
  ASSERT_FALSE(ref.is_null());
  EXPECT_NEAR(j["rewardbench"]["overall"].get<double>(), ref["overall"].get<double>(), 1e-12);
  for (const auto& [name, score] : ref["sections"].items()) {
    EXPECT_NEAR(j["rewardbench"]["sections"][name]["score"].get<double>(), score.get<double>(), 1e-12) << name;
  }
  for (const auto& [name, score] : ref["subsets"].items()) {
    EXPECT_NEAR(j["rewardbench"]["subsets"][name]["score"].get<double>(), score.get<double>(), 1e-12) << name;
  }

  // v2: best of four in five subsets, and Ties with ref:N / tied:N prompts
  // of several correct answers.
  std::string v2;
  std::vector<std::pair<int, int>> shape;  // correct, incorrect per example
  int line = 0;
  for (const std::string subset : {"Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"}) {
    for (int k = 0; k < 3; ++k, ++line) {
      const bool ties = subset == "Ties";
      const int correct = ties ? 2 + k % 2 : 1, incorrect = ties ? 2 : 3;
      nlohmann::json c = nlohmann::json::array(), r = nlohmann::json::array();
      for (int i = 0; i < correct; ++i) c.push_back(answers[(line + i) % 5] + " " + std::to_string(i));
      for (int i = 0; i < incorrect; ++i) r.push_back(answers[(line + 2 + i) % 5] + " x" + std::to_string(i));
      const std::string example_id =
          ties ? std::string(k == 2 ? "tied" : k == 0 ? "ref" : "tied") + ":" + std::to_string(k == 2 ? 1 : 0)
               : std::to_string(line);
      v2 += nlohmann::json({{"id", example_id},
                            {"prompt", "Question " + std::to_string(line)},
                            {"chosen", c},
                            {"rejected", r},
                            {"num_correct", correct},
                            {"num_incorrect", incorrect},
                            {"total_completions", correct + incorrect},
                            {"models", nlohmann::json::array()},
                            {"subset", subset}})
                .dump() +
            "\n";
      shape.emplace_back(correct, incorrect);
    }
  }
  const std::string v2_path = tmp.file("rb2.jsonl");
  test::write_bytes(v2_path, v2);
  run = run_eval_tool("--model '" + dir + "' --data '" + v2_path + "' --json '" + json + "' --rewards '" + rewards +
                          "' --threads 1",
                      tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  j = nlohmann::json::parse(test::read_bytes(json));
  // Each (correct, incorrect) combination is a line, correct-major: the
  // completions' rewards are read back from the first row and column.
  const auto lines = json_lines(rewards);
  input = {{"version", "v2"}, {"examples", nlohmann::json::array()}};
  std::size_t at = 0;
  for (const auto& [correct, incorrect] : shape) {
    nlohmann::json example = {{"subset", lines[at]["subset"]}, {"id", lines[at]["id"]}, {"num_correct", correct}};
    nlohmann::json scores = nlohmann::json::array();
    for (int c = 0; c < correct; ++c) scores.push_back(lines[at + static_cast<std::size_t>(c * incorrect)]["chosen"]);
    example["chosen"] = scores;
    scores = nlohmann::json::array();
    for (int r = 0; r < incorrect; ++r) scores.push_back(lines[at + static_cast<std::size_t>(r)]["rejected"]);
    example["rejected"] = scores;
    input["examples"].push_back(example);
    at += static_cast<std::size_t>(correct * incorrect);
  }
  ASSERT_EQ(at, lines.size());
  ref = rewardbench_reference(input, tmp, "v2");
  ASSERT_FALSE(ref.is_null());
  EXPECT_NEAR(j["rewardbench"]["overall"].get<double>(), ref["overall"].get<double>(), 1e-12) << ref.dump();
  for (const auto& [name, score] : ref["subsets"].items()) {
    EXPECT_NEAR(j["rewardbench"]["subsets"][name]["score"].get<double>(), score.get<double>(), 1e-12) << name;
  }
  EXPECT_EQ(j["pairs"], static_cast<std::int64_t>(lines.size()));
}

}  // namespace
}  // namespace openrm
