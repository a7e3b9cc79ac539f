// An ensemble of Scorers scoring as one (docs/ensembles.md).
#include "openrm/score/ensemble.h"

#include <cmath>
#include <limits>
#include <utility>

#include "openrm/error.h"

namespace openrm {
namespace {

constexpr float kNaNFloat = std::numeric_limits<float>::quiet_NaN();

std::string member_label(const std::vector<std::string>& names, std::size_t i) {
  return "ensemble member '" + names[i] + "'";
}

}  // namespace

void EnsembleOptions::validate() const {
  if (!std::isfinite(k)) throw Error("ensemble options: k must be finite, got " + std::to_string(k));
  for (std::size_t i = 0; i < normalization.size(); ++i) {
    if (normalization[i]) {
      check_reward_normalization(*normalization[i], "ensemble options: normalization[" + std::to_string(i) + "]");
    }
  }
}

EnsembleScorer EnsembleScorer::from_folders(const std::vector<std::string>& dirs, const ScoreOptions& score,
                                            const EnsembleOptions& options) {
  if (score.normalize) {
    throw Error("ensemble: ScoreOptions::normalize must be off: the ensemble z-scores each member itself "
                "(EnsembleOptions::normalization, calibrate(), or openrm.json)");
  }
  // Checked before loading anything: a bad option should not cost a load.
  options.validate();
  if (dirs.empty()) throw Error("ensemble: no model folders");
  if (!options.normalization.empty() && options.normalization.size() != dirs.size()) {
    throw Error("ensemble options: normalization has " + std::to_string(options.normalization.size()) +
                " entries for " + std::to_string(dirs.size()) + " members (give one per member, or none)");
  }
  std::vector<std::shared_ptr<Scorer>> members;
  members.reserve(dirs.size());
  for (const auto& dir : dirs) members.push_back(std::make_shared<Scorer>(Scorer::from_folder(dir, score)));
  return EnsembleScorer(std::move(members), options, dirs);
}

EnsembleScorer::EnsembleScorer(std::vector<Scorer> members, const EnsembleOptions& options,
                               std::vector<std::string> names)
    : EnsembleScorer(
          [&] {
            std::vector<std::shared_ptr<Scorer>> shared;
            shared.reserve(members.size());
            for (auto& s : members) shared.push_back(std::make_shared<Scorer>(std::move(s)));
            return shared;
          }(),
          options, std::move(names)) {}

EnsembleScorer::EnsembleScorer(std::vector<std::shared_ptr<Scorer>> members, const EnsembleOptions& options,
                               std::vector<std::string> names)
    : members_(std::move(members)), names_(std::move(names)), options_(options) {
  if (members_.empty()) throw Error("ensemble: no members");
  if (names_.empty()) {
    for (std::size_t i = 0; i < members_.size(); ++i) names_.push_back("model " + std::to_string(i));
  }
  if (names_.size() != members_.size()) {
    throw Error("ensemble: " + std::to_string(names_.size()) + " names for " + std::to_string(members_.size()) +
                " members");
  }
  options_.validate();
  if (!options_.normalization.empty() && options_.normalization.size() != members_.size()) {
    throw Error("ensemble options: normalization has " + std::to_string(options_.normalization.size()) +
                " entries for " + std::to_string(members_.size()) + " members (give one per member, or none)");
  }
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (!members_[i]) throw Error("ensemble: member " + std::to_string(i) + " is null");
    if (members_[i]->options().normalize) {
      throw Error(member_label(names_, i) +
                  " scores with ScoreOptions::normalize on; the ensemble z-scores each member itself, so its "
                  "rewards would be normalised twice: build it with normalize off");
    }
  }
  calibrated_.assign(members_.size(), std::nullopt);
}

std::optional<RewardNormalization> EnsembleScorer::normalization_locked(std::size_t i) const {
  if (calibrated_[i]) return calibrated_[i];
  if (!options_.normalization.empty() && options_.normalization[i]) return options_.normalization[i];
  const Scorer& member = *members_[i];
  if (member.reward_mean() && member.reward_std()) {
    return RewardNormalization{*member.reward_mean(), *member.reward_std()};
  }
  return std::nullopt;
}

const std::shared_ptr<Scorer>& EnsembleScorer::member_ptr(std::size_t i) const {
  if (i >= members_.size()) {
    throw Error("ensemble: no member " + std::to_string(i) + " (it has " + std::to_string(members_.size()) + ")");
  }
  return members_[i];
}

std::optional<RewardNormalization> EnsembleScorer::normalization(std::size_t i) const {
  member_ptr(i);  // the index check
  std::lock_guard<std::mutex> lock(*mutex_);
  return normalization_locked(i);
}

std::vector<RewardNormalization> EnsembleScorer::require_normalization() const {
  std::lock_guard<std::mutex> lock(*mutex_);
  std::vector<RewardNormalization> out;
  out.reserve(members_.size());
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const auto n = normalization_locked(i);
    if (!n) {
      throw Error(member_label(names_, i) +
                  " has no reward_mean / reward_std: its openrm.json has none and EnsembleOptions::normalization "
                  "gives none; give them there, or fit them with calibrate() on conversations like those you score");
    }
    // Stored values are checked here, where they are used: a folder with a
    // bad openrm.json can still be scored once calibrated.
    check_reward_normalization(*n, member_label(names_, i));
    out.push_back(*n);
  }
  return out;
}

ScoreStats EnsembleScorer::stats() const {
  ScoreStats total;
  for (const auto& member : members_) total += member->stats();
  return total;
}

std::vector<float> EnsembleScorer::combine(const std::vector<std::vector<float>>& raw, const std::vector<bool>& dropped,
                                           const std::vector<RewardNormalization>& normalization) const {
  std::vector<std::vector<double>> z(raw.size());
  for (std::size_t m = 0; m < raw.size(); ++m) {
    z[m].reserve(raw[m].size());
    for (const float r : raw[m]) z[m].push_back((static_cast<double>(r) - normalization[m].mean) / normalization[m].std);
  }
  const std::vector<double> combined = combine_normalized_rewards(z, options_.rule, options_.k);
  std::vector<float> out(combined.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = dropped[i] ? kNaNFloat : static_cast<float>(combined[i]);
  return out;
}

namespace {

// Scores with every member: score(member) -> ScoreResult, with errors named.
template <typename Score>
std::vector<ScoreResult> score_members(const std::vector<std::shared_ptr<Scorer>>& members,
                                       const std::vector<std::string>& names, Score score) {
  std::vector<ScoreResult> results;
  results.reserve(members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    results.push_back(with_context(member_label(names, i), [&] { return score(*members[i]); }));
  }
  return results;
}

// The dropped flags (any member's), the stats and, when kept, each member's
// rewards of the members' results; the combined rewards are left to fill.
EnsembleScoreResult gather(std::vector<ScoreResult>& results, bool keep_members) {
  EnsembleScoreResult out;
  const std::size_t n = results.front().rewards.size();
  out.dropped.assign(n, false);
  for (auto& r : results) {
    for (std::size_t i = 0; i < n; ++i) out.dropped[i] = out.dropped[i] || r.dropped[i];
    out.stats += r.stats;
  }
  if (keep_members) {
    for (auto& r : results) out.member_rewards.push_back(r.rewards);
  }
  return out;
}

}  // namespace

EnsembleScoreResult EnsembleScorer::score_sequences(const std::function<ScoreResult(Scorer&)>& score) {
  const auto normalization = require_normalization();
  auto results = score_members(members_, names_, score);
  EnsembleScoreResult out = gather(results, options_.member_rewards);
  std::vector<std::vector<float>> raw;
  for (auto& r : results) raw.push_back(std::move(r.rewards));
  out.rewards = combine(raw, out.dropped, normalization);
  return out;
}

EnsembleScoreResult EnsembleScorer::score_conversations(const std::vector<Conversation>& conversations) {
  return score_sequences([&](Scorer& s) { return s.score_conversations(conversations); });
}

EnsembleScoreResult EnsembleScorer::score_records(const std::vector<ScoreRecord>& records) {
  return score_sequences([&](Scorer& s) { return s.score_records(records); });
}

EnsemblePairScores EnsembleScorer::score_pairs(const std::vector<PreferencePair>& pairs) {
  const auto normalization = require_normalization();
  std::vector<PairScores> results;
  results.reserve(members_.size());
  for (std::size_t i = 0; i < members_.size(); ++i) {
    results.push_back(with_context(member_label(names_, i), [&] { return members_[i]->score_pairs(pairs); }));
  }
  EnsemblePairScores out;
  out.dropped.assign(pairs.size(), false);
  std::vector<std::vector<float>> chosen, rejected;
  for (auto& r : results) {
    for (std::size_t i = 0; i < pairs.size(); ++i) out.dropped[i] = out.dropped[i] || r.dropped[i];
    out.stats += r.stats;
    chosen.push_back(std::move(r.chosen));
    rejected.push_back(std::move(r.rejected));
  }
  out.chosen = combine(chosen, out.dropped, normalization);
  out.rejected = combine(rejected, out.dropped, normalization);
  if (options_.member_rewards) {
    out.member_chosen = std::move(chosen);
    out.member_rejected = std::move(rejected);
  }
  return out;
}

std::vector<RewardNormalization> EnsembleScorer::calibrate(const std::vector<Conversation>& conversations) {
  std::vector<RewardNormalization> fits;
  fits.reserve(members_.size());
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const ScoreResult r =
        with_context(member_label(names_, i), [&] { return members_[i]->score_conversations(conversations); });
    const std::vector<double> rewards(r.rewards.begin(), r.rewards.end());
    fits.push_back(fit_reward_normalization(rewards, "calibrate: " + member_label(names_, i)));
  }
  // All or nothing: a member that fails leaves the earlier fits unused.
  std::lock_guard<std::mutex> lock(*mutex_);
  for (std::size_t i = 0; i < fits.size(); ++i) calibrated_[i] = fits[i];
  return fits;
}

}  // namespace openrm
