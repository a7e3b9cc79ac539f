// Comparing and combining reward models from their rewards alone: rank
// correlations between two models' rewards, how often two models prefer the
// same side of a pair, ensembles of z-scored rewards, and the pairs the
// models dispute. Pure functions with no LibTorch dependency;
// docs/ensembles.md gives the exact definitions.
//
// Why the disputed pairs matter: reward models trained on the same
// preferences agree where the data is, and drift apart away from it. A
// policy that climbs one model's reward into a region where the models
// disagree is exploiting that model, not getting better (over-optimisation).
//
// A value that is undefined (too few points, a constant input to a
// correlation, no pairs) is NaN; comparison_json reports it as null.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace openrm {

// ---- rank correlations ------------------------------------------------------

// Kendall's tau-b of x and y (same size), with the tie correction:
//   (concordant - discordant) / sqrt((n0 - n_x) (n0 - n_y)),
// n0 = n (n - 1) / 2, n_x (n_y) the pairs tied in x (y); a pair tied in both
// is neither concordant nor discordant. scipy.stats.kendalltau's default.
// O(n log n). An index where x or y is NaN is left out (both values); +-inf
// are ordinary, ordered values. NaN when fewer than 2 indices are left or x
// or y is constant on them. Throws openrm::Error when the sizes differ.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);

// Spearman's rho of x and y (same size): the Pearson correlation of their
// average ranks (tied values share the mean of the ranks they span), as
// scipy.stats.spearmanr. NaN, sizes and undefined cases as kendall_tau_b.
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y);

// ---- normalisation ----------------------------------------------------------

// The affine map that puts one model's rewards on a common scale:
// z = (reward - mean) / std.
struct RewardNormalization {
  double mean = 0.0;
  double std = 1.0;  // population standard deviation; must be positive
};

// Throws openrm::Error "<what>: reward_std must be ..." unless mean is finite
// and std positive and finite.
void check_reward_normalization(const RewardNormalization& normalization, const std::string& what);

// Mean and population standard deviation (divide by n) of the finite values
// of `rewards`: NaN (a dropped sequence) and +-inf (a broken model) would
// make the fit meaningless, so they are left out. Throws openrm::Error
// "<what>: ..." when no value is finite or every finite value is the same (a
// constant model has no z-scores: there is nothing to scale).
RewardNormalization fit_reward_normalization(const std::vector<double>& rewards, const std::string& what = "rewards");

// (reward - mean) / std of each reward; NaN stays NaN. Checks the
// normalisation first (check_reward_normalization).
std::vector<double> normalize_rewards(const std::vector<double>& rewards, const RewardNormalization& normalization,
                                      const std::string& what = "rewards");

// ---- ensembles ----------------------------------------------------------------

// How several models' normalised rewards for one sequence become one reward.
// With z_1..z_M the M models' z-scores:
enum class EnsembleRule {
  kMean,           // mean(z)
  kMin,            // min(z): the most pessimistic model
  kMeanMinusKStd,  // mean(z) - k std(z), std over the M models (population):
                   // a reward that falls where the models disagree
};
// "mean", "min", "mean-k-std".
std::string ensemble_rule_name(EnsembleRule rule);
// Throws openrm::Error naming the bad name and listing the known ones.
EnsembleRule ensemble_rule_from_name(const std::string& name);
// Every rule, in the order above (the order of ModelComparison::ensembles).
const std::vector<EnsembleRule>& ensemble_rules();

// The rule applied index by index: per_model[m][i] is model m's normalised
// reward of sequence i (every model the same number of sequences, at least
// one model). An index where some model's value is NaN gives NaN. k is the k
// of kMeanMinusKStd (any finite number: k > 0 penalises disagreement, k < 0
// rewards it, as an optimistic bonus would); the other rules ignore it.
// Throws openrm::Error on no models, unequal sizes (naming the model) or a
// non-finite k.
std::vector<double> combine_normalized_rewards(const std::vector<std::vector<double>>& per_model, EnsembleRule rule,
                                               double k = 1.0);

// ---- comparing models on preference pairs -------------------------------------

// One model on the compared pairs.
struct ModelPairSummary {
  std::string name;
  // Share of compared pairs with reward_chosen > reward_rejected; a tie is
  // wrong (as metrics.h).
  double accuracy = 0.0;
  std::int64_t ties = 0;  // compared pairs with reward_chosen == reward_rejected
  // Mean and population std of its 2n compared rewards, chosen and rejected
  // together: the z-scoring the ensembles and the margins below use.
  RewardNormalization normalization;
};

// One ensemble rule on the compared pairs.
struct EnsembleSummary {
  EnsembleRule rule = EnsembleRule::kMean;
  double k = 0.0;         // the k of kMeanMinusKStd (0 for the other rules)
  double accuracy = 0.0;  // as ModelPairSummary::accuracy, on the combined rewards
  std::int64_t ties = 0;
};

// A pair the models dispute.
struct DisputedPair {
  std::int64_t index = 0;    // into the input pairs
  double margin_std = 0.0;   // ModelComparison::margin_std of the pair
  bool split = false;        // ModelComparison::split of the pair
  std::vector<double> margins;  // each model's normalised margin z_c - z_r
};

struct ModelComparison {
  std::int64_t pairs = 0;  // pairs given
  // Pairs where every model gave both sides a finite reward: everything
  // below is computed over these. A NaN reward (a pair some model's
  // truncation dropped) or an infinite one makes the pair excluded.
  std::int64_t compared_pairs = 0;
  std::int64_t excluded_pairs = 0;
  double k = 1.0;  // the k of the kMeanMinusKStd ensemble
  std::vector<ModelPairSummary> models;
  // [i][j]: share of compared pairs on which models i and j prefer the same
  // side, where a model prefers chosen (r_c > r_r), rejected (r_c < r_r) or
  // neither (a tie, which agrees only with a tie). The diagonal is 1.
  std::vector<std::vector<double>> preference_agreement;
  // [i][j]: kendall_tau_b / spearman_rho of the rewards of models i and j
  // over the 2n compared rewards, chosen and rejected together.
  std::vector<std::vector<double>> reward_kendall_tau_b;
  std::vector<std::vector<double>> reward_spearman_rho;
  // Each rule of ensemble_rules() on the models' z-scored rewards.
  std::vector<EnsembleSummary> ensembles;

  // Per pair, in input order (NaN / false where excluded): the population
  // std across the models of their normalised margins z_c - z_r (0 with one
  // model), and whether the models split on it (some two models prefer
  // different sides, in the sense of preference_agreement).
  std::vector<double> margin_std;
  std::vector<bool> split;
  std::vector<bool> excluded;
  std::int64_t split_pairs = 0;
  double split_rate = 0.0;       // split_pairs / compared_pairs
  double mean_margin_std = 0.0;  // over the compared pairs
  double max_margin_std = 0.0;
  // The compared pairs with the largest margin_std, largest first (equal
  // values by index), at most top_disputed of them.
  std::vector<DisputedPair> most_disputed;
};

// Compares M models on N preference pairs: chosen[m][i] and rejected[m][i]
// are model m's rewards of pair i's two sides (names[m] names model m).
// Every model needs N rewards on each side. The z-scoring of each model is
// fitted on its 2n compared rewards (fit_reward_normalization), so a model
// whose compared rewards are all equal is an error naming it. No compared
// pairs (N = 0, or every pair excluded) gives NaN metrics and no error.
// Throws openrm::Error naming the model or the argument that is wrong.
ModelComparison compare_models(const std::vector<std::string>& names,
                               const std::vector<std::vector<double>>& chosen,
                               const std::vector<std::vector<double>>& rejected, double k = 1.0,
                               std::int64_t top_disputed = 10);

// The comparison as JSON (without the per-pair vectors; most_disputed is
// there), keys in a fixed readable order; NaN and infinite values are null.
nlohmann::ordered_json comparison_json(const ModelComparison& comparison);
// Readable tables of the comparison, for terminals and logs.
std::string format_comparison(const ModelComparison& comparison);

}  // namespace openrm
