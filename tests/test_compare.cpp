// Comparing and combining reward models: Kendall's tau-b and Spearman's rho
// against hand-computed values, a brute-force count and (when the reference
// environment is installed) scipy.stats; the ensemble rules and the
// normalisation on hand values; compare_models on a constructed case; and
// EnsembleScorer on two tiny random model folders against the combination of
// the two Scorers' own normalised rewards.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <openrm/eval/compare.h>
#include <openrm/io/file.h>
#include <openrm/models/model_folder.h>
#include <openrm/models/reward_model.h>
#include <openrm/score/ensemble.h>
#include <openrm/score/scorer.h>
#include <random>
#include <tuple>

#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// ---- rank correlations -----------------------------------------------------------

TEST(RankCorrelation, PerfectAndNegatedOrderings) {
  const std::vector<double> x = {0.5, 1.5, 2.0, 7.0, 9.0};
  EXPECT_DOUBLE_EQ(kendall_tau_b(x, {1, 2, 3, 4, 5}), 1.0);
  EXPECT_DOUBLE_EQ(kendall_tau_b(x, {5, 4, 3, 2, 1}), -1.0);
  EXPECT_DOUBLE_EQ(spearman_rho(x, {1, 2, 3, 4, 5}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_rho(x, {5, 4, 3, 2, 1}), -1.0);
  // Only the order counts: any increasing map of y gives the same values.
  EXPECT_DOUBLE_EQ(kendall_tau_b(x, {-100, 0, 1e-9, 3, 1e12}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_rho(x, {-100, 0, 1e-9, 3, 1e12}), 1.0);
  // Ties in both, the same in both: still perfect.
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 1, 2, 3, 3}, {0, 0, 5, 6, 6}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_rho({1, 1, 2, 3, 3}, {0, 0, 5, 6, 6}), 1.0);
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 1, 2, 3, 3}, {6, 6, 5, 0, 0}), -1.0);
}

TEST(RankCorrelation, WithoutTiesByHand) {
  // y swaps the middle two: of the 6 pairs, (1, 2) is discordant, 5 concordant.
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, 3, 4}, {1, 3, 2, 4}), 4.0 / 6.0);
  // 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 * 2 / 60.
  EXPECT_NEAR(spearman_rho({1, 2, 3, 4}, {1, 3, 2, 4}), 0.8, 1e-15);
}

TEST(RankCorrelation, WithTiesByHand) {
  // x = 1 1 2 3, y = 1 2 2 3. Pairs: (0,1) tied in x only, (1,2) tied in y
  // only, the other 4 concordant. tau_b = 4 / sqrt((6 - 1) (6 - 1)) = 0.8.
  EXPECT_NEAR(kendall_tau_b({1, 1, 2, 3}, {1, 2, 2, 3}), 0.8, 1e-15);
  // Average ranks 1.5 1.5 3 4 and 1 2.5 2.5 4; both have mean 2.5, and
  // sum dx dy = 3.75, sum dx^2 = sum dy^2 = 4.5: rho = 3.75 / 4.5.
  EXPECT_NEAR(spearman_rho({1, 1, 2, 3}, {1, 2, 2, 3}), 5.0 / 6.0, 1e-15);
  // x = 1 1 2 2, y = 1 1 2 3: (0,1) tied in both, (2,3) in x only, 4
  // concordant; n_x = 2, n_y = 1: tau_b = 4 / sqrt(4 * 5).
  EXPECT_NEAR(kendall_tau_b({1, 1, 2, 2}, {1, 1, 2, 3}), 4.0 / std::sqrt(20.0), 1e-15);
  // x = 1 2 2 3, y = 3 1 2 1: (1,2) tied in x, (1,3) tied in y, the other
  // 4 discordant: tau_b = -4 / sqrt(5 * 5).
  EXPECT_NEAR(kendall_tau_b({1, 2, 2, 3}, {3, 1, 2, 1}), -0.8, 1e-15);
  // Ranks 1 2.5 2.5 4 and 4 1.5 3 1.5: sum dx dy = -3.75, sum dx^2 = 4.5,
  // sum dy^2 = 4.5: rho = -5/6.
  EXPECT_NEAR(spearman_rho({1, 2, 2, 3}, {3, 1, 2, 1}), -5.0 / 6.0, 1e-15);
}

TEST(RankCorrelation, UndefinedCasesAndNaN) {
  // Constant input, too few points: NaN.
  EXPECT_TRUE(std::isnan(kendall_tau_b({1, 2, 3}, {7, 7, 7})));
  EXPECT_TRUE(std::isnan(spearman_rho({1, 2, 3}, {7, 7, 7})));
  EXPECT_TRUE(std::isnan(kendall_tau_b({4}, {2})));
  EXPECT_TRUE(std::isnan(spearman_rho({}, {})));
  // A NaN in x or in y leaves that index out, both of its values.
  EXPECT_DOUBLE_EQ(kendall_tau_b({1, 2, kNaN, 3}, {1, 2, -50, 3}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_rho({1, 2, 9, 3}, {1, 2, kNaN, 3}), 1.0);
  EXPECT_NEAR(kendall_tau_b({1, kNaN, 2, 3, 4}, {1, 0, 3, 2, 4}), 4.0 / 6.0, 1e-15);
  EXPECT_TRUE(std::isnan(kendall_tau_b({1, kNaN}, {kNaN, 2})));  // nothing left
  // Infinities are ordinary ordered values.
  EXPECT_DOUBLE_EQ(kendall_tau_b({-kInf, 0, kInf}, {1, 2, 3}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_rho({-kInf, 0, kInf}, {3, 2, 1}), -1.0);
  std::string err = test::error_of([] { kendall_tau_b({1, 2}, {1}); });
  EXPECT_TRUE(test::contains(err, "kendall_tau_b: 2 x values but 1 y values")) << err;
  err = test::error_of([] { spearman_rho({1}, {1, 2, 3}); });
  EXPECT_TRUE(test::contains(err, "spearman_rho: 1 x values but 3 y values")) << err;
}

// The definition counted pair by pair, O(n^2).
double brute_force_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  std::int64_t concordant = 0, discordant = 0, x_ties = 0, y_ties = 0, all = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    for (std::size_t j = i + 1; j < x.size(); ++j) {
      ++all;
      const double dx = x[i] - x[j], dy = y[i] - y[j];
      if (dx == 0) ++x_ties;
      if (dy == 0) ++y_ties;
      if (dx * dy > 0) ++concordant;
      if (dx * dy < 0) ++discordant;
    }
  }
  return static_cast<double>(concordant - discordant) /
         std::sqrt(static_cast<double>(all - x_ties) * static_cast<double>(all - y_ties));
}

TEST(RankCorrelation, TauBEqualsCountingEveryPair) {
  std::mt19937_64 rng(3);
  for (int levels : {2, 5, 40, 1000000}) {
    std::uniform_int_distribution<int> value(0, levels - 1), noise(-2, 2);
    std::vector<double> x, y;
    for (int i = 0; i < 700; ++i) {
      x.push_back(value(rng));
      y.push_back(i % 3 == 0 ? value(rng) : x.back() + noise(rng));  // related, with ties
    }
    EXPECT_NEAR(kendall_tau_b(x, y), brute_force_tau_b(x, y), 1e-14) << levels << " levels";
  }
}

TEST(RankCorrelation, LargeInputsTakeNLogN) {
  // 200k rewards (100k pairs) with many ties: quadratic work would take
  // minutes; n log n takes milliseconds.
  std::mt19937_64 rng(8);
  std::uniform_int_distribution<int> value(0, 999), noise(0, 300);
  std::vector<double> x(200000), y(200000);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = value(rng);
    y[i] = x[i] + noise(rng);
  }
  const auto start = std::chrono::steady_clock::now();
  const double tau = kendall_tau_b(x, y), rho = spearman_rho(x, y);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ compare  ] tau-b and rho of 200000 values: %.3f s (tau %.4f, rho %.4f)\n", seconds, tau, rho);
  EXPECT_GT(tau, 0.5);
  EXPECT_GT(rho, 0.5);
  EXPECT_LT(seconds, 5.0);
}

// Cases for scipy: each {x, y} of about 5000 values, most with many ties.
std::vector<std::pair<std::vector<double>, std::vector<double>>> scipy_cases() {
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<std::pair<std::vector<double>, std::vector<double>>> cases;
  auto make = [&](std::size_t n, auto fx, auto fy) {
    std::vector<double> x(n), y(n);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = fx();
      y[i] = fy(x[i]);
    }
    cases.emplace_back(std::move(x), std::move(y));
  };
  auto uniform = [&](int lo, int hi) { return static_cast<double>(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  // Heavy ties in both, related.
  make(5000, [&] { return uniform(0, 9); }, [&](double x) { return x + uniform(-4, 4); });
  // Three levels each, nearly independent.
  make(5000, [&] { return uniform(0, 2); }, [&](double x) { return uniform(0, 2) + (x > 1 ? 0.5 : 0.0); });
  // Continuous: no ties.
  make(5000, [&] { return normal(rng); }, [&](double x) { return 0.5 * x + normal(rng); });
  // Ties in x only.
  make(5000, [&] { return uniform(0, 19); }, [&](double x) { return x + normal(rng); });
  // Negatively related, ties in both.
  make(5000, [&] { return uniform(0, 50); }, [&](double x) { return -x + uniform(0, 5); });
  // Float rewards on a grid of 0.05, as low-precision rewards tie.
  make(5000, [&] { return std::round(static_cast<float>(normal(rng)) * 20.0f) / 20.0; },
       [&](double x) { return std::round(static_cast<float>(x + 0.7 * normal(rng)) * 20.0f) / 20.0; });
  // The first case with NaNs in x and in y: those indices are left out.
  auto with_nan = cases[0];
  for (std::size_t i = 0; i < with_nan.first.size(); i += 19) with_nan.first[i] = kNaN;
  for (std::size_t i = 7; i < with_nan.second.size(); i += 23) with_nan.second[i] = kNaN;
  cases.push_back(with_nan);
  // Constant y: undefined for both.
  make(5000, [&] { return uniform(0, 9); }, [](double) { return 3.0; });
  // Tiny cases.
  make(2, [&] { return uniform(0, 9); }, [&](double) { return uniform(0, 9); });
  cases.push_back({{1, 1, 2}, {3, 1, 1}});
  // 100k values with ties, as a large evaluation set.
  make(100000, [&] { return uniform(0, 100); }, [&](double x) { return x / 2 + uniform(0, 30); });
  return cases;
}

TEST(RankCorrelation, MatchesScipyStats) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  const auto cases = scipy_cases();
  nlohmann::json request = nlohmann::json::array();
  for (const auto& c : cases) request.push_back({{"x", c.first}, {"y", c.second}});  // NaN is written as null
  write_file_atomic(tmp.file("cases.json"), request.dump());
  // scipy's default kendalltau is tau-b; nan_policy="omit" leaves out the
  // indices with a NaN in either array, as kendall_tau_b and spearman_rho do.
  write_file_atomic(tmp.file("reference.py"), R"(import json, sys
try:
    import numpy as np
    from scipy import stats
except ImportError:
    sys.exit(77)
out = []
for case in json.load(open(sys.argv[1])):
    x = np.array(case["x"], dtype=float)
    y = np.array(case["y"], dtype=float)
    tau = float(stats.kendalltau(x, y, nan_policy="omit").statistic)
    rho = float(stats.spearmanr(x, y, nan_policy="omit").statistic)
    out.append({"tau": None if np.isnan(tau) else tau, "rho": None if np.isnan(rho) else rho})
json.dump({"scipy": __import__("scipy").__version__, "results": out}, open(sys.argv[2], "w"))
)");
  const std::string cmd = "'" + python + "' '" + tmp.file("reference.py") + "' '" + tmp.file("cases.json") + "' '" +
                          tmp.file("reference.json") + "' > '" + tmp.file("python.log") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << test::kNoReferenceMessage << " (no scipy)";
  ASSERT_EQ(code, 0) << test::read_bytes(tmp.file("python.log"));
  const nlohmann::json reference = nlohmann::json::parse(test::read_bytes(tmp.file("reference.json")));
  const auto& results = reference.at("results");
  ASSERT_EQ(results.size(), cases.size());
  double worst_tau = 0.0, worst_rho = 0.0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const double tau = kendall_tau_b(cases[i].first, cases[i].second);
    const double rho = spearman_rho(cases[i].first, cases[i].second);
    for (const auto& [key, got, worst] : {std::make_tuple("tau", tau, &worst_tau), std::make_tuple("rho", rho, &worst_rho)}) {
      const auto& want = results[i].at(key);
      if (want.is_null()) {
        EXPECT_TRUE(std::isnan(got)) << key << " of case " << i << ": scipy gives NaN, openrm " << got;
        continue;
      }
      const double diff = std::fabs(got - want.get<double>());
      *worst = std::max(*worst, diff);
      EXPECT_LE(diff, 1e-12) << key << " of case " << i << ": openrm " << got << ", scipy " << want.get<double>();
    }
  }
  std::printf("[ compare  ] %zu cases vs scipy %s: max |diff| tau-b %.3g, spearman %.3g\n", cases.size(),
              reference.at("scipy").get<std::string>().c_str(), worst_tau, worst_rho);
}

// ---- normalisation and ensemble rules --------------------------------------------

TEST(Normalization, FitsTheFiniteRewards) {
  // 1 2 3 4: mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4.
  const RewardNormalization n = fit_reward_normalization({1, 2, kNaN, 3, kInf, 4, -kInf});
  EXPECT_DOUBLE_EQ(n.mean, 2.5);
  EXPECT_DOUBLE_EQ(n.std, std::sqrt(1.25));
  const auto z = normalize_rewards({2.5, 2.5 + std::sqrt(1.25), kNaN}, n);
  EXPECT_DOUBLE_EQ(z[0], 0.0);
  EXPECT_DOUBLE_EQ(z[1], 1.0);
  EXPECT_TRUE(std::isnan(z[2]));

  // 0.1 ten times: the rounded mean is not exactly 0.1, but the values are
  // equal, and a constant has no z-scores.
  std::string err = test::error_of([] { fit_reward_normalization(std::vector<double>(10, 0.1), "model 'b'"); });
  EXPECT_TRUE(test::contains(err, "model 'b': every one of its 10 finite rewards is 0.1")) << err;
  EXPECT_TRUE(test::contains(err, "a constant model has no z-scores")) << err;
  err = test::error_of([] { fit_reward_normalization({kNaN, kNaN}, "model 'c'"); });
  EXPECT_TRUE(test::contains(err, "model 'c': no finite reward to fit a mean and std to (2 rewards given)")) << err;
  err = test::error_of([] { normalize_rewards({1.0}, {0.0, 0.0}, "model 'd'"); });
  EXPECT_TRUE(test::contains(err, "model 'd': reward_std must be a positive finite number, got 0")) << err;
  err = test::error_of([] { check_reward_normalization({kNaN, 1.0}, "x"); });
  EXPECT_TRUE(test::contains(err, "x: reward_mean must be finite")) << err;
}

TEST(EnsembleRules, NamesRoundTripAndBadNamesAreNamed) {
  for (const EnsembleRule rule : ensemble_rules()) EXPECT_EQ(ensemble_rule_from_name(ensemble_rule_name(rule)), rule);
  EXPECT_EQ(ensemble_rule_name(EnsembleRule::kMean), "mean");
  EXPECT_EQ(ensemble_rule_name(EnsembleRule::kMin), "min");
  EXPECT_EQ(ensemble_rule_name(EnsembleRule::kMeanMinusKStd), "mean-k-std");
  const std::string err = test::error_of([] { ensemble_rule_from_name("average"); });
  EXPECT_TRUE(test::contains(err, "unknown ensemble rule 'average'; known rules: mean, min, mean-k-std")) << err;
}

TEST(EnsembleRules, CombineByHand) {
  // Three models, three sequences (columns).
  const std::vector<std::vector<double>> z = {{1, 0, kNaN}, {3, -2, 1}, {2, 1, 0}};
  const auto mean = combine_normalized_rewards(z, EnsembleRule::kMean);
  const auto low = combine_normalized_rewards(z, EnsembleRule::kMin);
  const auto penalised = combine_normalized_rewards(z, EnsembleRule::kMeanMinusKStd, 1.5);
  ASSERT_EQ(mean.size(), 3u);
  // Column 0: 1 3 2, mean 2, population variance (1 + 1 + 0) / 3.
  EXPECT_DOUBLE_EQ(mean[0], 2.0);
  EXPECT_DOUBLE_EQ(low[0], 1.0);
  EXPECT_NEAR(penalised[0], 2.0 - 1.5 * std::sqrt(2.0 / 3.0), 1e-15);
  // Column 1: 0 -2 1, mean -1/3; deviations 1/3 -5/3 4/3, variance 42/27.
  EXPECT_NEAR(mean[1], -1.0 / 3.0, 1e-15);
  EXPECT_DOUBLE_EQ(low[1], -2.0);
  EXPECT_NEAR(penalised[1], -1.0 / 3.0 - 1.5 * std::sqrt(42.0 / 27.0), 1e-15);
  // Column 2: a NaN anywhere (model 0 dropped it) makes the result NaN,
  // whatever its position (std::min alone would not).
  EXPECT_TRUE(std::isnan(mean[2]));
  EXPECT_TRUE(std::isnan(low[2]));
  EXPECT_TRUE(std::isnan(penalised[2]));
  EXPECT_TRUE(std::isnan(combine_normalized_rewards({{1.0}, {kNaN}}, EnsembleRule::kMin)[0]));
  // k = 0 is the mean; a negative k adds the spread.
  EXPECT_DOUBLE_EQ(combine_normalized_rewards(z, EnsembleRule::kMeanMinusKStd, 0.0)[0], 2.0);
  EXPECT_NEAR(combine_normalized_rewards(z, EnsembleRule::kMeanMinusKStd, -1.0)[0], 2.0 + std::sqrt(2.0 / 3.0), 1e-15);
  // One model: every rule is that model.
  for (const EnsembleRule rule : ensemble_rules()) {
    EXPECT_EQ(combine_normalized_rewards({{0.25, -1.0}}, rule, 2.0), (std::vector<double>{0.25, -1.0}));
  }

  std::string err = test::error_of([] { combine_normalized_rewards({}, EnsembleRule::kMean); });
  EXPECT_TRUE(test::contains(err, "combine_normalized_rewards: no models")) << err;
  err = test::error_of([] { combine_normalized_rewards({{1, 2, 3}, {1, 2}}, EnsembleRule::kMean); });
  EXPECT_TRUE(test::contains(err, "model 1 has 2 rewards, model 0 has 3")) << err;
  err = test::error_of([] { combine_normalized_rewards({{1}}, EnsembleRule::kMeanMinusKStd, kNaN); });
  EXPECT_TRUE(test::contains(err, "k must be finite")) << err;
}

// ---- compare_models -----------------------------------------------------------------

// Mean and population std, and z-scores, computed plainly for the expectations.
std::vector<double> z_scores(const std::vector<double>& v) {
  double mean = 0, squares = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) squares += (x - mean) * (x - mean);
  const double std = std::sqrt(squares / static_cast<double>(v.size()));
  std::vector<double> z;
  for (double x : v) z.push_back((x - mean) / std);
  return z;
}

TEST(CompareModels, ConstructedCaseByHand) {
  // Three models, five pairs; pair 3 is excluded (model c's rejected side is
  // NaN, as when its truncation dropped the pair). Preferences on the
  // compared pairs 0, 1, 2, 4 (+ chosen, - rejected, 0 tie):
  //   a: + - 0 +    b: + + - +    c: + 0 + -
  const std::vector<std::string> names = {"a", "b", "c"};
  const std::vector<std::vector<double>> chosen = {{2, 1, 0, 5, 4}, {4, 3, 1, 1, 9}, {1, 1, 2, 7, 0}};
  const std::vector<std::vector<double>> rejected = {{1, 2, 0, 0, 3}, {2, 1, 3, 0, 1}, {0, 1, 1, kNaN, 1}};
  const ModelComparison c = compare_models(names, chosen, rejected, /*k=*/0.5, /*top_disputed=*/2);
  EXPECT_EQ(c.pairs, 5);
  EXPECT_EQ(c.compared_pairs, 4);
  EXPECT_EQ(c.excluded_pairs, 1);
  EXPECT_EQ(c.excluded, (std::vector<bool>{false, false, false, true, false}));
  ASSERT_EQ(c.models.size(), 3u);
  EXPECT_EQ(c.models[1].name, "b");
  EXPECT_DOUBLE_EQ(c.models[0].accuracy, 0.5);  // the tie is wrong
  EXPECT_EQ(c.models[0].ties, 1);
  EXPECT_DOUBLE_EQ(c.models[1].accuracy, 0.75);
  EXPECT_DOUBLE_EQ(c.models[2].accuracy, 0.5);
  // Model a's 8 compared rewards 2 1 1 2 0 0 4 3: mean 13/8.
  EXPECT_DOUBLE_EQ(c.models[0].normalization.mean, 13.0 / 8.0);

  // Agreement: a-b agree on pairs 0 and 4; a-c and b-c only on pair 0.
  EXPECT_DOUBLE_EQ(c.preference_agreement[0][1], 0.5);
  EXPECT_DOUBLE_EQ(c.preference_agreement[1][0], 0.5);
  EXPECT_DOUBLE_EQ(c.preference_agreement[0][2], 0.25);
  EXPECT_DOUBLE_EQ(c.preference_agreement[1][2], 0.25);
  EXPECT_DOUBLE_EQ(c.preference_agreement[2][2], 1.0);

  // The correlations are those of the 2n compared rewards, pair 3 left out.
  const std::vector<std::vector<double>> flat = {
      {2, 1, 1, 2, 0, 0, 4, 3}, {4, 2, 3, 1, 1, 3, 9, 1}, {1, 0, 1, 1, 2, 1, 0, 1}};
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      EXPECT_DOUBLE_EQ(c.reward_kendall_tau_b[i][j], kendall_tau_b(flat[i], flat[j])) << i << " " << j;
      EXPECT_DOUBLE_EQ(c.reward_spearman_rho[i][j], spearman_rho(flat[i], flat[j])) << i << " " << j;
    }
  }
  EXPECT_DOUBLE_EQ(c.reward_kendall_tau_b[1][1], 1.0);

  // Ensembles and disagreement from plainly computed z-scores.
  std::vector<std::vector<double>> z;
  for (const auto& f : flat) z.push_back(z_scores(f));
  ASSERT_EQ(c.ensembles.size(), 3u);
  for (const EnsembleSummary& e : c.ensembles) {
    int correct = 0, ties = 0;
    for (std::size_t p = 0; p < 4; ++p) {
      double side[2];
      for (int s = 0; s < 2; ++s) {
        double mean = 0, squares = 0, low = kInf;
        for (const auto& zm : z) {
          mean += zm[2 * p + s] / 3;
          low = std::min(low, zm[2 * p + s]);
        }
        for (const auto& zm : z) squares += (zm[2 * p + s] - mean) * (zm[2 * p + s] - mean);
        side[s] = e.rule == EnsembleRule::kMean ? mean
                  : e.rule == EnsembleRule::kMin ? low
                                                 : mean - 0.5 * std::sqrt(squares / 3);
      }
      correct += side[0] > side[1];
      ties += side[0] == side[1];
    }
    EXPECT_DOUBLE_EQ(e.accuracy, correct / 4.0) << ensemble_rule_name(e.rule);
    EXPECT_EQ(e.ties, ties) << ensemble_rule_name(e.rule);
  }
  EXPECT_DOUBLE_EQ(c.ensembles[2].k, 0.5);

  // Pair 0: every model prefers chosen; pairs 1, 2 and 4 are split.
  EXPECT_EQ(c.split, (std::vector<bool>{false, true, true, false, true}));
  EXPECT_EQ(c.split_pairs, 3);
  EXPECT_DOUBLE_EQ(c.split_rate, 0.75);
  std::vector<double> spread(4);
  double sum = 0;
  for (std::size_t p = 0; p < 4; ++p) {
    std::vector<double> margins;
    for (const auto& zm : z) margins.push_back(zm[2 * p] - zm[2 * p + 1]);
    double mean = (margins[0] + margins[1] + margins[2]) / 3, squares = 0;
    for (double d : margins) squares += (d - mean) * (d - mean);
    spread[p] = std::sqrt(squares / 3);
    sum += spread[p];
  }
  const std::size_t pair_of[4] = {0, 1, 2, 4};
  for (std::size_t p = 0; p < 4; ++p) EXPECT_NEAR(c.margin_std[pair_of[p]], spread[p], 1e-14) << pair_of[p];
  EXPECT_TRUE(std::isnan(c.margin_std[3]));
  EXPECT_NEAR(c.mean_margin_std, sum / 4, 1e-14);
  // Pair 4 (a +1 raw, b +8, c -1) is the most disputed.
  ASSERT_EQ(c.most_disputed.size(), 2u);
  EXPECT_EQ(c.most_disputed[0].index, 4);
  EXPECT_NEAR(c.most_disputed[0].margin_std, spread[3], 1e-14);
  EXPECT_NEAR(c.max_margin_std, spread[3], 1e-14);
  EXPECT_TRUE(c.most_disputed[0].split);
  ASSERT_EQ(c.most_disputed[0].margins.size(), 3u);
  EXPECT_NEAR(c.most_disputed[0].margins[1], z[1][6] - z[1][7], 1e-14);
  EXPECT_GE(c.most_disputed[0].margin_std, c.most_disputed[1].margin_std);

  const nlohmann::ordered_json j = comparison_json(c);
  EXPECT_EQ(j["models"].get<std::vector<std::string>>(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(j["excluded_pairs"], 1);
  EXPECT_EQ(j["per_model"][1]["accuracy"], 0.75);
  EXPECT_EQ(j["preference_agreement"][0][1], 0.5);
  EXPECT_EQ(j["ensembles"][2]["rule"], "mean-k-std");
  EXPECT_EQ(j["ensembles"][2]["k"], 0.5);
  EXPECT_EQ(j["disagreement"]["split_pairs"], 3);
  EXPECT_EQ(j["disagreement"]["most_disputed"][0]["index"], 4);
  const std::string table = format_comparison(c);
  EXPECT_TRUE(test::contains(table, "4 compared; 1 excluded")) << table;
  EXPECT_TRUE(test::contains(table, "mean-k-std (k = 0.5)")) << table;
  EXPECT_TRUE(test::contains(table, "preference agreement")) << table;
  EXPECT_TRUE(test::contains(table, "split pairs")) << table;
}

TEST(CompareModels, AgreeingModelsOneModelAndNoPairs) {
  // b is an increasing map of a: every correlation is 1, nothing is split,
  // and z-scoring puts both on one scale only up to the map's curvature.
  const std::vector<double> a_c = {1, 2, 3, 0}, a_r = {0, 1, 4, 0};
  std::vector<double> b_c, b_r;
  for (double x : a_c) b_c.push_back(std::exp(x));
  for (double x : a_r) b_r.push_back(std::exp(x));
  const ModelComparison c = compare_models({"a", "b"}, {a_c, b_c}, {a_r, b_r});
  EXPECT_DOUBLE_EQ(c.reward_kendall_tau_b[0][1], 1.0);
  EXPECT_NEAR(c.reward_spearman_rho[0][1], 1.0, 1e-15);
  EXPECT_DOUBLE_EQ(c.preference_agreement[0][1], 1.0);  // the tie of pair 3 agrees with the tie
  EXPECT_EQ(c.split_pairs, 0);
  EXPECT_DOUBLE_EQ(c.models[0].accuracy, 0.5);
  EXPECT_EQ(c.models[0].ties, 1);

  // One model: no spread, every ensemble is the model.
  const ModelComparison one = compare_models({"a"}, {a_c}, {a_r});
  EXPECT_DOUBLE_EQ(one.max_margin_std, 0.0);
  for (const auto& e : one.ensembles) EXPECT_DOUBLE_EQ(e.accuracy, 0.5);

  // No pairs compared: NaN everywhere, null in JSON, no error.
  const ModelComparison none = compare_models({"a", "b"}, {{kNaN}, {1.0}}, {{0.0}, {0.0}});
  EXPECT_EQ(none.compared_pairs, 0);
  EXPECT_TRUE(std::isnan(none.models[0].accuracy));
  EXPECT_TRUE(std::isnan(none.reward_kendall_tau_b[0][1]));
  EXPECT_TRUE(std::isnan(none.ensembles[0].accuracy));
  EXPECT_TRUE(none.most_disputed.empty());
  const auto j = comparison_json(none);
  EXPECT_TRUE(j["per_model"][0]["accuracy"].is_null());
  EXPECT_TRUE(j["reward_spearman_rho"][0][0].is_null());
  EXPECT_TRUE(j["disagreement"]["split_rate"].is_null());
  EXPECT_TRUE(test::contains(format_comparison(none), "n/a"));
  EXPECT_EQ(compare_models({"a"}, {{}}, {{}}).pairs, 0);
}

TEST(CompareModels, BadInputsAreNamed) {
  std::string err = test::error_of([] { compare_models({}, {}, {}); });
  EXPECT_TRUE(test::contains(err, "compare_models: no models")) << err;
  err = test::error_of([] { compare_models({"a", "b"}, {{1}}, {{0}}); });
  EXPECT_TRUE(test::contains(err, "2 model names but rewards of 1 models")) << err;
  err = test::error_of([] { compare_models({"a", "b"}, {{1, 2}, {1}}, {{0, 0}, {0}}); });
  EXPECT_TRUE(test::contains(err, "model 'b' has 1 chosen and 1 rejected rewards; model 'a' has 2 pairs")) << err;
  // A constant model cannot be z-scored for the ensembles.
  err = test::error_of([] { compare_models({"a", "flat"}, {{1, 2}, {3, 3}}, {{0, 1}, {3, 3}}); });
  EXPECT_TRUE(test::contains(err, "compare_models: model 'flat': every one of its 4 finite rewards is 3")) << err;
  err = test::error_of([] { compare_models({"a"}, {{1}}, {{0}}, kInf); });
  EXPECT_TRUE(test::contains(err, "k must be finite")) << err;
  err = test::error_of([] { compare_models({"a"}, {{1}}, {{0}}, 1.0, -1); });
  EXPECT_TRUE(test::contains(err, "top_disputed must be >= 0")) << err;
}

// ---- EnsembleScorer ----------------------------------------------------------------

// Two tiny random model folders with one tokenizer, different weights and
// architectures, and different chat formats: a (Llama, plain) and b (Qwen3,
// HH transcript). Each has reward_mean / reward_std in openrm.json.
class EnsembleFolders : public ::testing::Test {
 protected:
  void SetUp() override {
    a = tmp.file("rm-a");
    b = tmp.file("rm-b");
    test::make_tiny_model_folder(a, /*with_tokenizer=*/true);
    auto model = create_reward_model(test::tiny_config("Qwen3ForSequenceClassification"));
    model->init_weights(/*seed=*/9, /*std=*/0.2);
    save_reward_model(*model, b);
    test::train_tiny_tokenizer(b);
    set_stats(a, 0.1, 0.5);
    ModelMetadata meta = read_model_metadata(b);
    meta.chat_format = ChatFormat::kHH;
    write_model_metadata(b, meta);
    set_stats(b, -0.2, 2.0);
  }
  static void set_stats(const std::string& dir, double mean, double std) {
    ModelMetadata meta = read_model_metadata(dir);
    meta.other["reward_mean"] = mean;
    meta.other["reward_std"] = std;
    write_model_metadata(dir, meta);
  }
  static std::vector<Conversation> conversations(int n) {
    std::vector<Conversation> out;
    for (int i = 0; i < n; ++i) {
      out.push_back({{"user", "The quick brown fox " + std::to_string(i)},
                     {"assistant", i % 2 ? "jumps over the lazy dog" : "A reward model scores answer " + std::to_string(i)}});
    }
    return out;
  }
  static ScoreOptions score_options() {
    ScoreOptions o;
    o.threads = 2;
    return o;
  }
  // A Scorer of one folder with its stored normalisation.
  static std::vector<double> normalized(const std::string& dir, const std::vector<Conversation>& convs) {
    ScoreOptions o = score_options();
    o.normalize = true;
    const auto r = Scorer::from_folder(dir, o).score_conversations(convs).rewards;
    return std::vector<double>(r.begin(), r.end());
  }
  test::TempDir tmp;
  std::string a, b;
};

TEST_F(EnsembleFolders, RewardsAreTheCombinationOfEachScorersNormalisedRewards) {
  const auto convs = conversations(12);
  const std::vector<std::vector<double>> z = {normalized(a, convs), normalized(b, convs)};
  EXPECT_GT(std::fabs(z[0][0] - z[1][0]), 1e-3) << "the two models should differ";
  for (const EnsembleRule rule : ensemble_rules()) {
    EnsembleOptions options;
    options.rule = rule;
    options.k = 0.75;
    options.member_rewards = true;
    EnsembleScorer ensemble = EnsembleScorer::from_folders({a, b}, score_options(), options);
    EXPECT_EQ(ensemble.size(), 2u);
    EXPECT_EQ(ensemble.names(), (std::vector<std::string>{a, b}));
    // Each member keeps its own chat format.
    EXPECT_EQ(ensemble.member(0).chat_format(), ChatFormat::kPlain);
    EXPECT_EQ(ensemble.member(1).chat_format(), ChatFormat::kHH);
    const EnsembleScoreResult r = ensemble.score_conversations(convs);
    const auto want = combine_normalized_rewards(z, rule, 0.75);
    ASSERT_EQ(r.rewards.size(), convs.size());
    double worst = 0;
    for (std::size_t i = 0; i < convs.size(); ++i) worst = std::max(worst, std::fabs(r.rewards[i] - want[i]));
    EXPECT_LT(worst, 1e-5) << ensemble_rule_name(rule);
    // The raw member rewards are the members' own.
    ASSERT_EQ(r.member_rewards.size(), 2u);
    EXPECT_NEAR(r.member_rewards[1][3], z[1][3] * 2.0 - 0.2, 1e-5);
    EXPECT_EQ(r.stats.sequences, 24);
    EXPECT_EQ(ensemble.stats().sequences, 24);
    EXPECT_EQ(std::count(r.dropped.begin(), r.dropped.end(), true), 0);
  }
}

TEST_F(EnsembleFolders, PairsAndRecordsCombineAsConversations) {
  std::vector<PreferencePair> pairs;
  std::vector<ScoreRecord> records;
  std::vector<Conversation> chosen, rejected;
  for (int i = 0; i < 6; ++i) {
    PreferencePair p;
    p.prompt = {{"user", "A reward model scores answer number " + std::to_string(i)}};
    p.chosen = {{"assistant", "for you " + std::to_string(i)}};
    p.rejected = {{"assistant", "The quick brown fox"}};
    pairs.push_back(p);
    chosen.push_back({p.prompt[0], p.chosen[0]});
    rejected.push_back({p.prompt[0], p.rejected[0]});
    ScoreRecord record;
    record.conversation = chosen.back();
    records.push_back(record);
  }
  EnsembleOptions options;
  options.rule = EnsembleRule::kMin;
  EnsembleScorer ensemble = EnsembleScorer::from_folders({a, b}, score_options(), options);
  const EnsemblePairScores p = ensemble.score_pairs(pairs);
  const auto want_chosen = combine_normalized_rewards({normalized(a, chosen), normalized(b, chosen)}, EnsembleRule::kMin);
  const auto want_rejected =
      combine_normalized_rewards({normalized(a, rejected), normalized(b, rejected)}, EnsembleRule::kMin);
  ASSERT_EQ(p.chosen.size(), 6u);
  EXPECT_TRUE(p.member_chosen.empty());  // member_rewards is off
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_NEAR(p.chosen[i], want_chosen[i], 1e-5) << i;
    EXPECT_NEAR(p.rejected[i], want_rejected[i], 1e-5) << i;
    EXPECT_FALSE(p.dropped[i]);
  }
  const EnsembleScoreResult r = ensemble.score_records(records);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_NEAR(r.rewards[i], want_chosen[i], 1e-5) << i;

  // Members handed over by value score the same.
  std::vector<Scorer> members;
  members.push_back(Scorer::from_folder(a, score_options()));
  members.push_back(Scorer::from_folder(b, score_options()));
  EnsembleScorer moved(std::move(members), options, {"a", "b"});
  const EnsemblePairScores q = moved.score_pairs(pairs);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(q.chosen[i], p.chosen[i]) << i;
}

TEST_F(EnsembleFolders, ASequenceDroppedByAnyMemberIsDropped) {
  // b alone drops records over 30 tokens (its HH markup takes about half).
  ModelMetadata meta = read_model_metadata(b);
  meta.max_length = 30;
  meta.truncation = TruncationPolicy::kDrop;
  write_model_metadata(b, meta);
  EnsembleOptions options;
  options.member_rewards = true;
  EnsembleScorer ensemble = EnsembleScorer::from_folders({a, b}, score_options(), options);
  const std::vector<Conversation> convs = {
      {{"user", "fox"}, {"assistant", "dog"}},
      {{"user", "The quick brown fox jumps over the lazy dog again and again"},
       {"assistant", "A reward model scores answer number 7 for you, again and again"}}};
  const EnsembleScoreResult r = ensemble.score_conversations(convs);
  EXPECT_EQ(r.dropped, (std::vector<bool>{false, true}));
  EXPECT_TRUE(std::isfinite(r.rewards[0]));
  EXPECT_TRUE(std::isnan(r.rewards[1]));
  EXPECT_TRUE(std::isfinite(r.member_rewards[0][1]));  // a scored it
  EXPECT_TRUE(std::isnan(r.member_rewards[1][1]));
  EXPECT_EQ(r.stats.truncation.dropped, 1);
}

TEST_F(EnsembleFolders, AMemberWithoutStatsIsAnErrorUntilCalibrated) {
  ModelMetadata meta = read_model_metadata(a);
  meta.other.erase("reward_mean");
  meta.other.erase("reward_std");
  write_model_metadata(a, meta);
  EnsembleScorer ensemble = EnsembleScorer::from_folders({a, b}, score_options());
  EXPECT_FALSE(ensemble.normalization(0).has_value());
  ASSERT_TRUE(ensemble.normalization(1).has_value());
  EXPECT_DOUBLE_EQ(ensemble.normalization(1)->std, 2.0);
  const auto convs = conversations(10);
  std::string err = test::error_of([&] { ensemble.score_conversations(convs); });
  EXPECT_TRUE(test::contains(err, "ensemble member '" + a + "' has no reward_mean / reward_std")) << err;
  EXPECT_TRUE(test::contains(err, "calibrate()")) << err;
  EXPECT_EQ(ensemble.stats().sequences, 0) << "no model should run before the check";
  err = test::error_of([&] { ensemble.score_pairs({}); });
  EXPECT_TRUE(test::contains(err, "has no reward_mean")) << err;

  // calibrate: each member's mean and population std over its rewards on
  // the conversations, so that on them every member's z-scores have mean 0
  // and std 1 and the mean ensemble has mean 0.
  const auto fits = ensemble.calibrate(convs);
  ASSERT_EQ(fits.size(), 2u);
  const auto raw_a = Scorer::from_folder(a, score_options()).score_conversations(convs).rewards;
  const RewardNormalization want = fit_reward_normalization(std::vector<double>(raw_a.begin(), raw_a.end()));
  EXPECT_NEAR(fits[0].mean, want.mean, 1e-12);
  EXPECT_NEAR(fits[0].std, want.std, 1e-12);
  EXPECT_NEAR(ensemble.normalization(1)->std, fits[1].std, 0.0) << "calibrate replaces the stored values";
  const EnsembleScoreResult r = ensemble.score_conversations(convs);
  double sum = 0;
  for (const float x : r.rewards) sum += x;
  EXPECT_NEAR(sum / 10, 0.0, 1e-6);
  const auto z_a = normalize_rewards(std::vector<double>(raw_a.begin(), raw_a.end()), fits[0]);
  const auto raw_b = Scorer::from_folder(b, score_options()).score_conversations(convs).rewards;
  const auto z_b = normalize_rewards(std::vector<double>(raw_b.begin(), raw_b.end()), fits[1]);
  for (std::size_t i = 0; i < convs.size(); ++i) EXPECT_NEAR(r.rewards[i], (z_a[i] + z_b[i]) / 2, 1e-5) << i;

  // Nothing to calibrate on is an error naming the member.
  err = test::error_of([&] { ensemble.calibrate({}); });
  EXPECT_TRUE(test::contains(err, "calibrate: ensemble member '" + a + "': no finite reward")) << err;
}

TEST_F(EnsembleFolders, GivenNormalisationOverridesTheStoredOne) {
  EnsembleOptions options;
  options.normalization = {RewardNormalization{1.0, 4.0}, std::nullopt};  // b keeps its openrm.json values
  EnsembleScorer ensemble = EnsembleScorer::from_folders({a, b}, score_options(), options);
  EXPECT_DOUBLE_EQ(ensemble.normalization(0)->mean, 1.0);
  EXPECT_DOUBLE_EQ(ensemble.normalization(1)->mean, -0.2);
  const auto convs = conversations(5);
  const auto raw_a = Scorer::from_folder(a, score_options()).score_conversations(convs).rewards;
  const auto z_b = normalized(b, convs);
  const auto r = ensemble.score_conversations(convs);
  for (std::size_t i = 0; i < convs.size(); ++i) {
    EXPECT_NEAR(r.rewards[i], ((raw_a[i] - 1.0) / 4.0 + z_b[i]) / 2, 1e-5) << i;
  }
}

TEST_F(EnsembleFolders, BadOptionsAreNamed) {
  ScoreOptions normalize = score_options();
  normalize.normalize = true;
  std::string err = test::error_of([&] { EnsembleScorer::from_folders({a, b}, normalize); });
  EXPECT_TRUE(test::contains(err, "ScoreOptions::normalize must be off")) << err;
  auto member = std::make_shared<Scorer>(Scorer::from_folder(a, normalize));
  err = test::error_of([&] { EnsembleScorer({member}, {}, {"mine"}); });
  EXPECT_TRUE(test::contains(err, "ensemble member 'mine' scores with ScoreOptions::normalize on")) << err;
  EnsembleOptions options;
  options.k = kNaN;
  err = test::error_of([&] { EnsembleScorer::from_folders({a}, score_options(), options); });
  EXPECT_TRUE(test::contains(err, "ensemble options: k must be finite")) << err;
  options = {};
  options.normalization = {RewardNormalization{0.0, 1.0}};
  err = test::error_of([&] { EnsembleScorer::from_folders({a, b}, score_options(), options); });
  EXPECT_TRUE(test::contains(err, "normalization has 1 entries for 2 members")) << err;
  options.normalization = {RewardNormalization{0.0, -1.0}, std::nullopt};
  err = test::error_of([&] { EnsembleScorer::from_folders({a, b}, score_options(), options); });
  EXPECT_TRUE(test::contains(err, "normalization[0]: reward_std must be a positive finite number")) << err;
  err = test::error_of([&] { EnsembleScorer::from_folders({a}, score_options()).member(1); });
  EXPECT_TRUE(test::contains(err, "ensemble: no member 1 (it has 1)")) << err;
  err = test::error_of([&] { EnsembleScorer::from_folders({}); });
  EXPECT_TRUE(test::contains(err, "ensemble: no model folders")) << err;
  err = test::error_of([&] { EnsembleScorer::from_folders({a, tmp.file("missing")}); });
  EXPECT_TRUE(test::contains(err, "no such model folder")) << err;
  // A stored std of 0 is an error when scoring, naming the member.
  set_stats(b, 0.0, 0.0);
  EnsembleScorer bad = EnsembleScorer::from_folders({a, b}, score_options());
  err = test::error_of([&] { bad.score_conversations(conversations(2)); });
  EXPECT_TRUE(test::contains(err, "ensemble member '" + b + "': reward_std must be a positive finite number")) << err;
}

}  // namespace
}  // namespace openrm
