// Metrics of a reward model on held-out preference pairs, computed from the
// rewards alone: accuracy, margin, Bradley-Terry loss, reward statistics,
// calibration and length bias. Pure functions with no LibTorch dependency;
// docs/evaluation.md gives the exact definitions.
//
// A value that is undefined (no pairs, a constant input to a correlation, an
// empty calibration bin) is NaN; JSON writers report it as null.
#pragma once

#include <cstdint>
#include <vector>

namespace openrm {

// One scored preference pair: the rewards of both sides and, optionally, the
// data's margin and the lengths of the two sides.
struct ScoredPair {
  double chosen = 0.0;    // reward of the chosen side
  double rejected = 0.0;  // reward of the rejected side
  double margin = 0.0;    // Bradley-Terry margin of the pair (0: none)
  // Lengths (in tokens) the length-bias metrics use; -1: unknown. Length bias
  // is computed only when every pair has both lengths.
  std::int64_t chosen_length = -1;
  std::int64_t rejected_length = -1;
};

// One bin of a reliability diagram.
struct CalibrationBin {
  double lower = 0.0;  // the bin is [lower, upper) (the last one includes 1)
  double upper = 0.0;
  std::int64_t count = 0;            // predictions in the bin
  double mean_predicted = 0.0;       // mean prediction in the bin (NaN if empty)
  double observed_frequency = 0.0;   // mean outcome in the bin (NaN if empty)
};

struct LengthBias {
  // Pearson correlation between reward and length over all 2N sequences
  // (NaN when either is constant or there are fewer than 2 sequences).
  double pearson = 0.0;
  // Pairs whose two sides differ in length; the rates below are over these.
  std::int64_t pairs_with_length_difference = 0;
  // Share of those pairs where the longer side got the strictly higher reward
  // (a reward tie counts as the longer side not winning).
  double longer_wins_rate = 0.0;
  // Share of those pairs where the data's chosen side is the longer one.
  double chosen_longer_rate = 0.0;
};

struct PreferenceMetrics {
  std::int64_t pairs = 0;
  // Share of pairs with reward_chosen > reward_rejected; a tie is wrong.
  double accuracy = 0.0;
  std::int64_t ties = 0;  // pairs with reward_chosen == reward_rejected
  // mean(reward_chosen - reward_rejected).
  double mean_margin = 0.0;
  // Mean and population standard deviation (divide by n, not n - 1) over all
  // 2N rewards, chosen and rejected together.
  double reward_mean = 0.0;
  double reward_std = 0.0;
  // Mean Bradley-Terry loss -log sigmoid(r_c - r_r - margin).
  double loss = 0.0;
  // Expected calibration error of sigmoid(r_c - r_r), symmetrised over both
  // orderings of each pair (see expected_calibration_error).
  double ece = 0.0;
  std::vector<CalibrationBin> calibration;
  // Pairs whose reward difference is NaN (a NaN reward); they count as wrong
  // and are left out of the calibration bins.
  std::int64_t non_finite = 0;
  bool has_length_bias = false;  // false when some length is unknown
  LengthBias length_bias;
};

// log(1 + exp(x)), without overflow for large |x|.
double softplus(double x);
// 1 / (1 + exp(-x)), without overflow for large |x|.
double sigmoid(double x);
// -log sigmoid(chosen - rejected - margin) = softplus(-(chosen - rejected - margin)).
double bradley_terry_loss(double chosen, double rejected, double margin = 0.0);

// Pearson correlation coefficient of x and y (same size); NaN when there are
// fewer than 2 points or either has zero variance. Throws openrm::Error when
// the sizes differ.
double pearson_correlation(const std::vector<double>& x, const std::vector<double>& y);

// Reliability bins for the reward differences d_i = r_c - r_r: each pair
// contributes the prediction p = sigmoid(d_i) with outcome 1 and 1 - p with
// outcome 0. `bins` equal-width bins over [0, 1]; a prediction p falls in bin
// min(floor(p * bins), bins - 1). NaN differences are skipped. Throws
// openrm::Error when bins < 1.
std::vector<CalibrationBin> calibration_bins(const std::vector<double>& reward_differences,
                                             int bins = 10);
// sum_b (n_b / N) |mean_predicted_b - observed_frequency_b| over non-empty
// bins, N the total count; NaN when every bin is empty.
double expected_calibration_error(const std::vector<CalibrationBin>& bins);

// Every metric above for a set of pairs, with `num_bins` calibration bins.
// An empty set gives pairs = 0 and NaN
// metrics.
PreferenceMetrics compute_preference_metrics(const std::vector<ScoredPair>& pairs,
                                             int num_bins = 10);

}  // namespace openrm
