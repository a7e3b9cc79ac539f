// An ensemble of reward models scoring as one: each member scores with its
// own tokenizer, chat format and length rule; each member's rewards are
// z-scored with that member's mean and std; an EnsembleRule
// (openrm/eval/compare.h) combines them.
//
//   openrm::EnsembleOptions options;
//   options.rule = openrm::EnsembleRule::kMeanMinusKStd;  // penalise disagreement
//   auto ensemble = openrm::EnsembleScorer::from_folders({"rm-a", "rm-b"}, score_options, options);
//   openrm::EnsembleScoreResult s = ensemble.score_conversations(convs);  // s.rewards
//
// The z-scoring puts models of different scales on one scale, so that no
// member dominates the mean by its units. Each member's mean and std come,
// first match wins, from calibrate() (fitted on conversations the caller
// picks), EnsembleOptions::normalization, or the member folder's
// openrm.json (reward_mean / reward_std, written by openrm-train from its
// final evaluation). A member with none of these is an error naming it when
// scoring, before any model runs.
//
// No score_tokens or score_padded: token ids belong to one tokenizer, and
// the members may each have their own.
//
// Members are scored one after the other (each uses every thread it was
// given). The score_* methods may be called from several threads at once, as
// a Scorer's; calibrate() may run at the same time and takes effect for
// calls that start after it returns.
#pragma once

#include <openrm/eval/compare.h>
#include <openrm/score/scorer.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

struct EnsembleOptions {
  // How the members' z-scored rewards combine.
  EnsembleRule rule = EnsembleRule::kMean;
  // k of kMeanMinusKStd (finite; ignored by the other rules).
  double k = 1.0;
  // Per member, in member order, the mean and std that z-score its rewards;
  // empty, or an entry unset: the member folder's openrm.json values
  // (Scorer::reward_mean / reward_std). calibrate() overrides both.
  std::vector<std::optional<RewardNormalization>> normalization;
  // Also return each member's raw (not normalised) rewards.
  bool member_rewards = false;

  // Throws openrm::Error naming the first bad field.
  void validate() const;
};

struct EnsembleScoreResult {
  // One combined reward per input, in input order; NaN where dropped, or
  // where some member's reward was NaN.
  std::vector<float> rewards;
  // Dropped by any member's truncation (TruncationPolicy::kDrop): the
  // members may differ in tokenizer and max_length, and a reward that some
  // member never saw cannot be combined.
  std::vector<bool> dropped;
  // [member][input]: each member's raw reward (EnsembleOptions::member_rewards;
  // empty otherwise).
  std::vector<std::vector<float>> member_rewards;
  ScoreStats stats;  // every member's, added up
};

struct EnsemblePairScores {
  // As PairScores, combined; a pair is dropped when any member dropped it.
  std::vector<float> chosen;
  std::vector<float> rejected;
  std::vector<bool> dropped;
  // [member][pair] raw rewards (EnsembleOptions::member_rewards).
  std::vector<std::vector<float>> member_chosen;
  std::vector<std::vector<float>> member_rejected;
  ScoreStats stats;
};

class EnsembleScorer {
 public:
  // One Scorer::from_folder(dir, score) per folder (named by its path).
  // score.normalize must be off: the ensemble normalises itself.
  static EnsembleScorer from_folders(const std::vector<std::string>& dirs, const ScoreOptions& score = {},
                                     const EnsembleOptions& options = {});

  // Members already built; shared, so a training loop can keep scoring with
  // one of them alone. `names` (one per member; empty: "model 0", "model
  // 1", ...) name them in errors. A member scoring with
  // ScoreOptions::normalize is refused: it would be normalised twice.
  explicit EnsembleScorer(std::vector<std::shared_ptr<Scorer>> members, const EnsembleOptions& options = {},
                          std::vector<std::string> names = {});
  // Members handed over (a Scorer is movable, not copyable).
  explicit EnsembleScorer(std::vector<Scorer> members, const EnsembleOptions& options = {},
                          std::vector<std::string> names = {});

  // As Scorer's, combined. Errors name the member.
  EnsembleScoreResult score_conversations(const std::vector<Conversation>& conversations);
  EnsembleScoreResult score_records(const std::vector<ScoreRecord>& records);
  EnsemblePairScores score_pairs(const std::vector<PreferencePair>& pairs);

  // Scores `conversations` with every member and fits each member's mean
  // and population std to its finite rewards on them
  // (fit_reward_normalization); these replace every other normalisation.
  // Pick conversations like those to be scored (a batch of policy samples,
  // the evaluation set): the z-scores are relative to them. Returns the fits
  // in member order. Throws, naming the member, when a member's rewards are
  // all equal or none is finite.
  std::vector<RewardNormalization> calibrate(const std::vector<Conversation>& conversations);

  std::size_t size() const { return members_.size(); }
  // Member i (an openrm::Error when there is none).
  Scorer& member(std::size_t i) { return *member_ptr(i); }
  const std::shared_ptr<Scorer>& member_ptr(std::size_t i) const;
  const std::vector<std::string>& names() const { return names_; }
  const EnsembleOptions& options() const { return options_; }
  // The normalisation member i's rewards get now (calibrated, else given,
  // else stored); nullopt when it has none, and scoring would throw.
  std::optional<RewardNormalization> normalization(std::size_t i) const;
  // Every member's stats(), added up.
  ScoreStats stats() const;

 private:
  // Every member's normalisation; throws naming the first member without a
  // usable one.
  std::vector<RewardNormalization> require_normalization() const;
  std::optional<RewardNormalization> normalization_locked(std::size_t i) const;
  // Combines members' raw rewards [member][input] index by index.
  std::vector<float> combine(const std::vector<std::vector<float>>& raw, const std::vector<bool>& dropped,
                             const std::vector<RewardNormalization>& normalization) const;
  // Each member's score_conversations / score_records through `score`, combined.
  EnsembleScoreResult score_sequences(const std::function<ScoreResult(Scorer&)>& score);

  std::vector<std::shared_ptr<Scorer>> members_;
  std::vector<std::string> names_;
  EnsembleOptions options_;
  std::vector<std::optional<RewardNormalization>> calibrated_;  // set by calibrate()
  // Held by pointer so that an EnsembleScorer stays movable.
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

}  // namespace openrm
