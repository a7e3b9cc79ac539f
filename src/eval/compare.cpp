// Comparing and combining reward models (docs/ensembles.md has the
// definitions).
#include "openrm/eval/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>
#include <utility>

#include "openrm/error.h"
#include "openrm/eval/metrics.h"

namespace openrm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The (x[i], y[i]) with neither NaN, in input order. `what` names the
// caller in the size error.
std::vector<std::pair<double, double>> paired_values(const std::vector<double>& x, const std::vector<double>& y,
                                                     const char* what) {
  if (x.size() != y.size()) {
    throw Error(std::string(what) + ": " + std::to_string(x.size()) + " x values but " + std::to_string(y.size()) +
                " y values");
  }
  std::vector<std::pair<double, double>> out;
  out.reserve(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isnan(x[i]) && !std::isnan(y[i])) out.emplace_back(x[i], y[i]);
  }
  return out;
}

// Pairs of positions holding equal values, sum over runs of t(t - 1) / 2,
// in a sequence where equal values are adjacent. `same(a, b)` says whether
// positions a and b are equal.
template <typename Same>
std::int64_t tied_pairs(std::size_t n, Same same) {
  std::int64_t ties = 0;
  std::size_t run = 1;
  for (std::size_t i = 1; i <= n; ++i) {
    if (i < n && same(i - 1, i)) {
      ++run;
      continue;
    }
    ties += static_cast<std::int64_t>(run) * static_cast<std::int64_t>(run - 1) / 2;
    run = 1;
  }
  return ties;
}

// Sorts v ascending and returns the number of positions i < j with
// v[i] > v[j] (strictly: equal values are no inversion). Bottom-up merge
// sort, O(n log n): inputs of 200k rewards are common.
std::int64_t sort_counting_inversions(std::vector<double>& v) {
  const std::size_t n = v.size();
  std::vector<double> buffer(n);
  std::int64_t inversions = 0;
  for (std::size_t width = 1; width < n; width *= 2) {
    for (std::size_t lo = 0; lo < n; lo += 2 * width) {
      const std::size_t mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      std::size_t a = lo, b = mid, out = lo;
      while (a < mid && b < hi) {
        if (v[b] < v[a]) {
          // v[b] is smaller than every value left in the left run.
          inversions += static_cast<std::int64_t>(mid - a);
          buffer[out++] = v[b++];
        } else {
          buffer[out++] = v[a++];
        }
      }
      while (a < mid) buffer[out++] = v[a++];
      while (b < hi) buffer[out++] = v[b++];
    }
    v.swap(buffer);
  }
  return inversions;
}

// Average ranks, 1-based: values tied over sorted positions s..e (0-based)
// all get (s + e) / 2 + 1.
std::vector<double> average_ranks(const std::vector<double>& values) {
  const std::size_t n = values.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(n);
  std::size_t start = 0;
  while (start < n) {
    std::size_t end = start;
    while (end + 1 < n && values[order[end + 1]] == values[order[start]]) ++end;
    const double rank = 0.5 * static_cast<double>(start + end) + 1.0;
    for (std::size_t i = start; i <= end; ++i) ranks[order[i]] = rank;
    start = end + 1;
  }
  return ranks;
}

}  // namespace

double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<std::pair<double, double>> xy = paired_values(x, y, "kendall_tau_b");
  const std::size_t n = xy.size();
  if (n < 2) return kNaN;
  // Sorted by x, then y: a pair of positions i < j is tied in x, or has
  // x_i < x_j, and then it is discordant exactly when y_i > y_j. Within a
  // run of equal x the y are ascending, so no tie in x counts as one.
  std::sort(xy.begin(), xy.end());
  const std::int64_t x_ties = tied_pairs(n, [&](std::size_t a, std::size_t b) { return xy[a].first == xy[b].first; });
  const std::int64_t both_ties = tied_pairs(n, [&](std::size_t a, std::size_t b) { return xy[a] == xy[b]; });
  std::vector<double> ys(n);
  for (std::size_t i = 0; i < n; ++i) ys[i] = xy[i].second;
  const std::int64_t discordant = sort_counting_inversions(ys);
  const std::int64_t y_ties = tied_pairs(n, [&](std::size_t a, std::size_t b) { return ys[a] == ys[b]; });

  const std::int64_t all = static_cast<std::int64_t>(n) * static_cast<std::int64_t>(n - 1) / 2;
  const std::int64_t untied_x = all - x_ties, untied_y = all - y_ties;
  if (untied_x == 0 || untied_y == 0) return kNaN;  // a constant input
  // Pairs tied in neither are concordant or discordant:
  //   concordant + discordant = all - x_ties - y_ties + both_ties.
  const std::int64_t concordant_minus_discordant = all - x_ties - y_ties + both_ties - 2 * discordant;
  const double tau = static_cast<double>(concordant_minus_discordant) / std::sqrt(static_cast<double>(untied_x)) /
                     std::sqrt(static_cast<double>(untied_y));
  return std::clamp(tau, -1.0, 1.0);
}

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  const std::vector<std::pair<double, double>> xy = paired_values(x, y, "spearman_rho");
  if (xy.size() < 2) return kNaN;
  std::vector<double> xs(xy.size()), ys(xy.size());
  for (std::size_t i = 0; i < xy.size(); ++i) {
    xs[i] = xy[i].first;
    ys[i] = xy[i].second;
  }
  // Constant ranks (a constant input) have zero variance: NaN.
  return pearson_correlation(average_ranks(xs), average_ranks(ys));
}

// ---- normalisation ----------------------------------------------------------

void check_reward_normalization(const RewardNormalization& n, const std::string& what) {
  if (!std::isfinite(n.mean)) throw Error(what + ": reward_mean must be finite, got " + std::to_string(n.mean));
  if (!(n.std > 0.0) || !std::isfinite(n.std)) {
    throw Error(what + ": reward_std must be a positive finite number, got " + std::to_string(n.std));
  }
}

RewardNormalization fit_reward_normalization(const std::vector<double>& rewards, const std::string& what) {
  std::size_t count = 0;
  double sum = 0.0, lowest = std::numeric_limits<double>::infinity(), highest = -lowest;
  for (const double r : rewards) {
    if (!std::isfinite(r)) continue;
    ++count;
    sum += r;
    lowest = std::min(lowest, r);
    highest = std::max(highest, r);
  }
  if (count == 0) {
    throw Error(what + ": no finite reward to fit a mean and std to (" + std::to_string(rewards.size()) +
                " rewards given)");
  }
  // Equal values are tested as equal, not by std == 0: the rounded mean of
  // equal values can differ from them in the last place.
  if (lowest == highest) {
    throw Error(what + ": every one of its " + std::to_string(count) + " finite rewards is " + std::to_string(lowest) +
                ": a constant model has no z-scores (its std is 0)");
  }
  RewardNormalization n;
  n.mean = sum / static_cast<double>(count);
  double squares = 0.0;  // second pass: no cancellation for rewards far from 0
  for (const double r : rewards) {
    if (std::isfinite(r)) squares += (r - n.mean) * (r - n.mean);
  }
  n.std = std::sqrt(squares / static_cast<double>(count));
  check_reward_normalization(n, what);
  return n;
}

std::vector<double> normalize_rewards(const std::vector<double>& rewards, const RewardNormalization& normalization,
                                      const std::string& what) {
  check_reward_normalization(normalization, what);
  std::vector<double> out(rewards.size());
  for (std::size_t i = 0; i < rewards.size(); ++i) {
    out[i] = (rewards[i] - normalization.mean) / normalization.std;
  }
  return out;
}

// ---- ensembles ----------------------------------------------------------------

std::string ensemble_rule_name(EnsembleRule rule) {
  switch (rule) {
    case EnsembleRule::kMean: return "mean";
    case EnsembleRule::kMin: return "min";
    case EnsembleRule::kMeanMinusKStd: return "mean-k-std";
  }
  return "unknown";
}

EnsembleRule ensemble_rule_from_name(const std::string& name) {
  for (const EnsembleRule rule : ensemble_rules()) {
    if (name == ensemble_rule_name(rule)) return rule;
  }
  throw Error("unknown ensemble rule '" + name + "'; known rules: mean, min, mean-k-std");
}

const std::vector<EnsembleRule>& ensemble_rules() {
  static const std::vector<EnsembleRule> rules = {EnsembleRule::kMean, EnsembleRule::kMin,
                                                  EnsembleRule::kMeanMinusKStd};
  return rules;
}

namespace {

// The rule on one sequence's M normalised rewards (none NaN).
double combine_one(const double* z, std::size_t m, EnsembleRule rule, double k) {
  if (rule == EnsembleRule::kMin) return *std::min_element(z, z + m);
  double mean = 0.0;
  for (std::size_t j = 0; j < m; ++j) mean += z[j];
  mean /= static_cast<double>(m);
  if (rule == EnsembleRule::kMean) return mean;
  double squares = 0.0;
  for (std::size_t j = 0; j < m; ++j) squares += (z[j] - mean) * (z[j] - mean);
  return mean - k * std::sqrt(squares / static_cast<double>(m));
}

void check_k(double k, const char* what) {
  if (!std::isfinite(k)) throw Error(std::string(what) + ": k must be finite, got " + std::to_string(k));
}

}  // namespace

std::vector<double> combine_normalized_rewards(const std::vector<std::vector<double>>& per_model, EnsembleRule rule,
                                               double k) {
  if (per_model.empty()) throw Error("combine_normalized_rewards: no models");
  check_k(k, "combine_normalized_rewards");
  const std::size_t n = per_model[0].size(), m = per_model.size();
  for (std::size_t j = 1; j < m; ++j) {
    if (per_model[j].size() != n) {
      throw Error("combine_normalized_rewards: model " + std::to_string(j) + " has " +
                  std::to_string(per_model[j].size()) + " rewards, model 0 has " + std::to_string(n));
    }
  }
  std::vector<double> out(n);
  std::vector<double> z(m);
  for (std::size_t i = 0; i < n; ++i) {
    bool nan = false;
    for (std::size_t j = 0; j < m; ++j) {
      z[j] = per_model[j][i];
      nan = nan || std::isnan(z[j]);
    }
    // std::min with a NaN depends on the argument order: a NaN is the result.
    out[i] = nan ? kNaN : combine_one(z.data(), m, rule, k);
  }
  return out;
}

// ---- comparing models -------------------------------------------------------

namespace {

// +1: the model prefers chosen, -1: rejected, 0: neither (a tie).
int preference(double chosen, double rejected) { return chosen > rejected ? 1 : chosen < rejected ? -1 : 0; }

std::vector<std::vector<double>> square(std::size_t m, double value) {
  return std::vector<std::vector<double>>(m, std::vector<double>(m, value));
}

}  // namespace

ModelComparison compare_models(const std::vector<std::string>& names, const std::vector<std::vector<double>>& chosen,
                               const std::vector<std::vector<double>>& rejected, double k,
                               std::int64_t top_disputed) {
  const std::size_t m = names.size();
  if (m == 0) throw Error("compare_models: no models");
  if (chosen.size() != m || rejected.size() != m) {
    throw Error("compare_models: " + std::to_string(m) + " model names but rewards of " +
                std::to_string(chosen.size()) + " models (chosen) and " + std::to_string(rejected.size()) +
                " (rejected)");
  }
  check_k(k, "compare_models");
  if (top_disputed < 0) {
    throw Error("compare_models: top_disputed must be >= 0, got " + std::to_string(top_disputed));
  }
  const std::size_t n = chosen[0].size();
  for (std::size_t j = 0; j < m; ++j) {
    if (chosen[j].size() != n || rejected[j].size() != n) {
      throw Error("compare_models: model '" + names[j] + "' has " + std::to_string(chosen[j].size()) +
                  " chosen and " + std::to_string(rejected[j].size()) + " rejected rewards; model '" + names[0] +
                  "' has " + std::to_string(n) + " pairs");
    }
  }

  ModelComparison c;
  c.pairs = static_cast<std::int64_t>(n);
  c.k = k;
  c.excluded.assign(n, false);
  std::vector<std::size_t> kept;  // the compared pairs
  kept.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < m && !c.excluded[i]; ++j) {
      c.excluded[i] = !std::isfinite(chosen[j][i]) || !std::isfinite(rejected[j][i]);
    }
    if (!c.excluded[i]) kept.push_back(i);
  }
  c.compared_pairs = static_cast<std::int64_t>(kept.size());
  c.excluded_pairs = c.pairs - c.compared_pairs;
  c.margin_std.assign(n, kNaN);
  c.split.assign(n, false);
  c.models.resize(m);
  for (std::size_t j = 0; j < m; ++j) c.models[j].name = names[j];

  if (kept.empty()) {
    for (auto& model : c.models) {
      model.accuracy = kNaN;
      model.normalization = {kNaN, kNaN};
    }
    c.preference_agreement = c.reward_kendall_tau_b = c.reward_spearman_rho = square(m, kNaN);
    for (const EnsembleRule rule : ensemble_rules()) {
      c.ensembles.push_back({rule, rule == EnsembleRule::kMeanMinusKStd ? k : 0.0, kNaN, 0});
    }
    c.split_rate = c.mean_margin_std = c.max_margin_std = kNaN;
    return c;
  }
  const std::size_t kept_n = kept.size();
  const auto kept_count = static_cast<double>(kept_n);

  // Each model's 2n compared rewards (chosen then rejected of each pair) and
  // their z-scores.
  std::vector<std::vector<double>> rewards(m), z(m);
  std::vector<std::vector<int>> prefers(m);
  for (std::size_t j = 0; j < m; ++j) {
    ModelPairSummary& model = c.models[j];
    rewards[j].reserve(2 * kept_n);
    prefers[j].reserve(kept_n);
    std::int64_t correct = 0;
    for (const std::size_t i : kept) {
      rewards[j].push_back(chosen[j][i]);
      rewards[j].push_back(rejected[j][i]);
      const int p = preference(chosen[j][i], rejected[j][i]);
      prefers[j].push_back(p);
      if (p > 0) ++correct;
      if (p == 0) ++model.ties;
    }
    model.accuracy = static_cast<double>(correct) / kept_count;
    model.normalization = fit_reward_normalization(rewards[j], "compare_models: model '" + names[j] + "'");
    z[j] = normalize_rewards(rewards[j], model.normalization);
  }

  c.preference_agreement = c.reward_kendall_tau_b = c.reward_spearman_rho = square(m, 1.0);
  for (std::size_t a = 0; a < m; ++a) {
    for (std::size_t b = a; b < m; ++b) {
      std::int64_t same = 0;
      for (std::size_t i = 0; i < kept_n; ++i) same += prefers[a][i] == prefers[b][i] ? 1 : 0;
      const double agreement = static_cast<double>(same) / kept_count;
      // The diagonal too: a model's tau with itself is 1, or NaN when constant.
      const double tau = kendall_tau_b(rewards[a], rewards[b]);
      const double rho = spearman_rho(rewards[a], rewards[b]);
      c.preference_agreement[a][b] = c.preference_agreement[b][a] = agreement;
      c.reward_kendall_tau_b[a][b] = c.reward_kendall_tau_b[b][a] = tau;
      c.reward_spearman_rho[a][b] = c.reward_spearman_rho[b][a] = rho;
    }
  }

  for (const EnsembleRule rule : ensemble_rules()) {
    const std::vector<double> combined = combine_normalized_rewards(z, rule, k);
    EnsembleSummary e;
    e.rule = rule;
    e.k = rule == EnsembleRule::kMeanMinusKStd ? k : 0.0;
    std::int64_t correct = 0;
    for (std::size_t i = 0; i < kept_n; ++i) {
      const int p = preference(combined[2 * i], combined[2 * i + 1]);
      if (p > 0) ++correct;
      if (p == 0) ++e.ties;
    }
    e.accuracy = static_cast<double>(correct) / kept_count;
    c.ensembles.push_back(e);
  }

  // Disagreement per pair: the spread of the normalised margins, and
  // whether the preferred sides differ.
  std::vector<double> margins(m);
  double margin_std_sum = 0.0;
  for (std::size_t i = 0; i < kept_n; ++i) {
    double mean = 0.0;
    bool split = false;
    for (std::size_t j = 0; j < m; ++j) {
      margins[j] = z[j][2 * i] - z[j][2 * i + 1];
      mean += margins[j];
      split = split || prefers[j][i] != prefers[0][i];
    }
    mean /= static_cast<double>(m);
    double squares = 0.0;
    for (const double d : margins) squares += (d - mean) * (d - mean);
    const double spread = std::sqrt(squares / static_cast<double>(m));
    const std::size_t pair = kept[i];
    c.margin_std[pair] = spread;
    c.split[pair] = split;
    if (split) ++c.split_pairs;
    margin_std_sum += spread;
    c.max_margin_std = std::max(c.max_margin_std, spread);
  }
  c.split_rate = static_cast<double>(c.split_pairs) / kept_count;
  c.mean_margin_std = margin_std_sum / kept_count;

  std::vector<std::size_t> order(kept_n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const std::size_t top = std::min(kept_n, static_cast<std::size_t>(top_disputed));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                    [&](std::size_t a, std::size_t b) {
                      const double sa = c.margin_std[kept[a]], sb = c.margin_std[kept[b]];
                      return sa > sb || (sa == sb && a < b);
                    });
  for (std::size_t t = 0; t < top; ++t) {
    const std::size_t i = order[t];
    DisputedPair d;
    d.index = static_cast<std::int64_t>(kept[i]);
    d.margin_std = c.margin_std[kept[i]];
    d.split = c.split[kept[i]];
    for (std::size_t j = 0; j < m; ++j) d.margins.push_back(z[j][2 * i] - z[j][2 * i + 1]);
    c.most_disputed.push_back(std::move(d));
  }
  return c;
}

// ---- reports ------------------------------------------------------------------

namespace {

// A number for JSON: NaN and infinities have no JSON form, so they are null.
nlohmann::ordered_json number(double value) {
  return std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json matrix_json(const std::vector<std::vector<double>>& matrix) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : matrix) {
    nlohmann::ordered_json r = nlohmann::ordered_json::array();
    for (const double v : row) r.push_back(number(v));
    rows.push_back(std::move(r));
  }
  return rows;
}

// A number for the tables: fixed decimals, or "n/a" when undefined.
std::string fixed(double value, int decimals = 4) {
  if (!std::isfinite(value)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string padded(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

std::string ensemble_label(const EnsembleSummary& e) {
  std::string label = ensemble_rule_name(e.rule);
  if (e.rule == EnsembleRule::kMeanMinusKStd) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " (k = %g)", e.k);
    label += buf;
  }
  return label;
}

}  // namespace

nlohmann::ordered_json comparison_json(const ModelComparison& c) {
  nlohmann::ordered_json j;
  nlohmann::ordered_json names = nlohmann::ordered_json::array();
  for (const auto& model : c.models) names.push_back(model.name);
  j["models"] = std::move(names);
  j["pairs"] = c.pairs;
  j["compared_pairs"] = c.compared_pairs;
  j["excluded_pairs"] = c.excluded_pairs;
  nlohmann::ordered_json per_model = nlohmann::ordered_json::array();
  for (const auto& model : c.models) {
    per_model.push_back({{"name", model.name},
                         {"accuracy", number(model.accuracy)},
                         {"ties", model.ties},
                         {"reward_mean", number(model.normalization.mean)},
                         {"reward_std", number(model.normalization.std)}});
  }
  j["per_model"] = std::move(per_model);
  j["preference_agreement"] = matrix_json(c.preference_agreement);
  j["reward_kendall_tau_b"] = matrix_json(c.reward_kendall_tau_b);
  j["reward_spearman_rho"] = matrix_json(c.reward_spearman_rho);
  nlohmann::ordered_json ensembles = nlohmann::ordered_json::array();
  for (const auto& e : c.ensembles) {
    nlohmann::ordered_json one;
    one["rule"] = ensemble_rule_name(e.rule);
    if (e.rule == EnsembleRule::kMeanMinusKStd) one["k"] = number(e.k);
    one["accuracy"] = number(e.accuracy);
    one["ties"] = e.ties;
    ensembles.push_back(std::move(one));
  }
  j["ensembles"] = std::move(ensembles);
  nlohmann::ordered_json disputed = nlohmann::ordered_json::array();
  for (const auto& d : c.most_disputed) {
    nlohmann::ordered_json margins = nlohmann::ordered_json::array();
    for (const double v : d.margins) margins.push_back(number(v));
    disputed.push_back({{"index", d.index},
                        {"margin_std", number(d.margin_std)},
                        {"split", d.split},
                        {"margins", std::move(margins)}});
  }
  j["disagreement"] = {{"split_pairs", c.split_pairs},
                       {"split_rate", number(c.split_rate)},
                       {"mean_margin_std", number(c.mean_margin_std)},
                       {"max_margin_std", number(c.max_margin_std)},
                       {"most_disputed", std::move(disputed)}};
  return j;
}

std::string format_comparison(const ModelComparison& c) {
  std::ostringstream out;
  const std::size_t m = c.models.size();
  auto row = [&](const std::string& name, const std::string& value) {
    out << "  " << padded(name, 28) << value << "\n";
  };
  std::string pairs = std::to_string(c.pairs);
  if (c.excluded_pairs > 0) {
    pairs += " (" + std::to_string(c.compared_pairs) + " compared; " + std::to_string(c.excluded_pairs) +
             " excluded: some model's reward was dropped or non-finite)";
  }
  row("pairs", pairs);
  row("models", std::to_string(m));

  // Models go by index in the matrices: folder paths are too wide for columns.
  out << "\n  " << padded("model", 8) << padded("accuracy", 10) << padded("ties", 8) << padded("reward mean", 13)
      << padded("reward std", 12) << "name\n";
  for (std::size_t j = 0; j < m; ++j) {
    const ModelPairSummary& model = c.models[j];
    out << "  " << padded("[" + std::to_string(j) + "]", 8) << padded(fixed(model.accuracy), 10)
        << padded(std::to_string(model.ties), 8) << padded(fixed(model.normalization.mean), 13)
        << padded(fixed(model.normalization.std), 12) << model.name << "\n";
  }
  // Columns padded on the right; the padding after the last one is cut.
  auto line = [&](std::string text) {
    text.erase(text.find_last_not_of(' ') + 1);
    out << text << "\n";
  };
  auto matrix = [&](const std::string& title, const std::vector<std::vector<double>>& values) {
    out << "\n  " << title << "\n";
    // Numbers right-aligned, so that signs do not shift the digits.
    auto cell = [](const std::string& text) {
      return text.size() >= 9 ? " " + text : std::string(9 - text.size(), ' ') + text;
    };
    std::string header = "  " + padded("", 4);
    for (std::size_t j = 0; j < m; ++j) header += cell("[" + std::to_string(j) + "]");
    line(header);
    for (std::size_t a = 0; a < values.size(); ++a) {
      std::string text = "  " + padded("[" + std::to_string(a) + "]", 4);
      for (const double v : values[a]) text += cell(fixed(v));
      line(text);
    }
  };
  matrix("preference agreement (share of pairs where both prefer the same side; a tie agrees only with a tie)",
         c.preference_agreement);
  matrix("Kendall tau-b of the rewards (" + std::to_string(2 * c.compared_pairs) + " rewards, chosen and rejected)",
         c.reward_kendall_tau_b);
  matrix("Spearman rho of the rewards", c.reward_spearman_rho);

  out << "\n  ensembles of the z-scored rewards (each model's mean and std above)\n";
  out << "  " << padded("rule", 26) << padded("accuracy", 10) << "ties\n";
  for (const auto& e : c.ensembles) {
    out << "  " << padded(ensemble_label(e), 26) << padded(fixed(e.accuracy), 10) << e.ties << "\n";
  }

  out << "\n  disagreement (margins are z_chosen - z_rejected of each model)\n";
  row("split pairs", std::to_string(c.split_pairs) + " (" + fixed(c.split_rate) +
                         "): the models prefer different sides");
  row("margin std across models", "mean " + fixed(c.mean_margin_std) + ", max " + fixed(c.max_margin_std));
  if (!c.most_disputed.empty()) {
    out << "\n  most disputed pairs\n";
    out << "  " << padded("index", 10) << padded("margin std", 12) << padded("split", 7) << "margins ([0], [1], ...)\n";
    for (const auto& d : c.most_disputed) {
      std::string margins;
      for (const double v : d.margins) margins += (margins.empty() ? "" : ", ") + fixed(v, 3);
      out << "  " << padded(std::to_string(d.index), 10) << padded(fixed(d.margin_std), 12)
          << padded(d.split ? "yes" : "no", 7) << margins << "\n";
    }
  }
  return out.str();
}

}  // namespace openrm
