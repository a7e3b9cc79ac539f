// Preference metrics from rewards (docs/evaluation.md has the definitions).
#include "openrm/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "openrm/error.h"

namespace openrm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

double softplus(double x) {
  // log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): the exponent is never positive.
  return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)));
}

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

double bradley_terry_loss(double chosen, double rejected, double margin) {
  return softplus(-(chosen - rejected - margin));
}

double pearson_correlation(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) {
    throw Error("pearson_correlation: " + std::to_string(x.size()) + " x values but " +
                std::to_string(y.size()) + " y values");
  }
  const std::size_t n = x.size();
  if (n < 2) return kNaN;
  double mx = 0.0, my = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (!(sxx > 0.0) || !(syy > 0.0)) return kNaN;
  // Rounding can push |r| a hair past 1 for perfectly linear data.
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

std::vector<CalibrationBin> calibration_bins(const std::vector<double>& reward_differences, int bins) {
  if (bins < 1) throw Error("calibration: the number of bins must be at least 1, got " + std::to_string(bins));
  std::vector<CalibrationBin> out(static_cast<std::size_t>(bins));
  std::vector<double> sum_predicted(out.size(), 0.0), sum_outcome(out.size(), 0.0);
  for (std::size_t b = 0; b < out.size(); ++b) {
    out[b].lower = static_cast<double>(b) / bins;
    out[b].upper = static_cast<double>(b + 1) / bins;
  }
  auto add = [&](double p, double outcome) {
    const double scaled = std::floor(p * bins);
    const auto b = static_cast<std::size_t>(std::clamp(scaled, 0.0, static_cast<double>(bins - 1)));
    ++out[b].count;
    sum_predicted[b] += p;
    sum_outcome[b] += outcome;
  };
  for (double d : reward_differences) {
    if (std::isnan(d)) continue;
    const double p = sigmoid(d);
    add(p, 1.0);        // "chosen is preferred": true
    add(1.0 - p, 0.0);  // "rejected is preferred": false
  }
  for (std::size_t b = 0; b < out.size(); ++b) {
    if (out[b].count == 0) {
      out[b].mean_predicted = out[b].observed_frequency = kNaN;
    } else {
      out[b].mean_predicted = sum_predicted[b] / static_cast<double>(out[b].count);
      out[b].observed_frequency = sum_outcome[b] / static_cast<double>(out[b].count);
    }
  }
  return out;
}

double expected_calibration_error(const std::vector<CalibrationBin>& bins) {
  std::int64_t total = 0;
  for (const auto& b : bins) total += b.count;
  if (total == 0) return kNaN;
  double ece = 0.0;
  for (const auto& b : bins) {
    if (b.count == 0) continue;
    ece += static_cast<double>(b.count) / static_cast<double>(total) *
           std::fabs(b.mean_predicted - b.observed_frequency);
  }
  return ece;
}

PreferenceMetrics compute_preference_metrics(const std::vector<ScoredPair>& pairs, int num_bins) {
  PreferenceMetrics m;
  m.pairs = static_cast<std::int64_t>(pairs.size());
  std::vector<double> differences;
  differences.reserve(pairs.size());
  double correct = 0.0, margin_sum = 0.0, loss_sum = 0.0, reward_sum = 0.0;
  bool all_lengths = !pairs.empty();
  for (const auto& p : pairs) {
    const double d = p.chosen - p.rejected;
    differences.push_back(d);
    if (d > 0) correct += 1.0;
    if (p.chosen == p.rejected) ++m.ties;
    if (std::isnan(d)) ++m.non_finite;
    margin_sum += d;
    loss_sum += bradley_terry_loss(p.chosen, p.rejected, p.margin);
    reward_sum += p.chosen + p.rejected;
    if (p.chosen_length < 0 || p.rejected_length < 0) all_lengths = false;
  }
  m.calibration = calibration_bins(differences, num_bins);
  if (pairs.empty()) {
    m.accuracy = m.mean_margin = m.reward_mean = m.reward_std = m.loss = m.ece = kNaN;
    m.length_bias.pearson = m.length_bias.longer_wins_rate = m.length_bias.chosen_longer_rate = kNaN;
    return m;
  }
  const auto n = static_cast<double>(pairs.size());
  m.accuracy = correct / n;
  m.mean_margin = margin_sum / n;
  m.loss = loss_sum / n;
  m.reward_mean = reward_sum / (2.0 * n);
  double squares = 0.0;  // second pass: no cancellation for rewards far from 0
  for (const auto& p : pairs) {
    squares += (p.chosen - m.reward_mean) * (p.chosen - m.reward_mean) +
               (p.rejected - m.reward_mean) * (p.rejected - m.reward_mean);
  }
  m.reward_std = std::sqrt(squares / (2.0 * n));
  m.ece = expected_calibration_error(m.calibration);

  m.has_length_bias = all_lengths;
  if (all_lengths) {
    std::vector<double> rewards, lengths;
    rewards.reserve(2 * pairs.size());
    lengths.reserve(2 * pairs.size());
    std::int64_t differ = 0, longer_wins = 0, chosen_longer = 0;
    for (const auto& p : pairs) {
      rewards.push_back(p.chosen);
      rewards.push_back(p.rejected);
      lengths.push_back(static_cast<double>(p.chosen_length));
      lengths.push_back(static_cast<double>(p.rejected_length));
      if (p.chosen_length == p.rejected_length) continue;
      ++differ;
      const bool chosen_is_longer = p.chosen_length > p.rejected_length;
      if (chosen_is_longer) ++chosen_longer;
      if (chosen_is_longer ? p.chosen > p.rejected : p.rejected > p.chosen) ++longer_wins;
    }
    LengthBias& lb = m.length_bias;
    lb.pearson = pearson_correlation(rewards, lengths);
    lb.pairs_with_length_difference = differ;
    lb.longer_wins_rate = differ > 0 ? static_cast<double>(longer_wins) / static_cast<double>(differ) : kNaN;
    lb.chosen_longer_rate = differ > 0 ? static_cast<double>(chosen_longer) / static_cast<double>(differ) : kNaN;
  } else {
    m.length_bias.pearson = m.length_bias.longer_wins_rate = m.length_bias.chosen_longer_rate = kNaN;
  }
  return m;
}

}  // namespace openrm
