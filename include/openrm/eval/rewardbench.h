// RewardBench (allenai/reward-bench): the published v1 and v2 evaluation
// sets read from JSON Lines, and their official scores computed from the
// rewards of every completion, as the rewardbench package and its
// leaderboard compute them. docs/rewardbench.md gives the formulas, where
// upstream computes each, and the one-line conversion of the datasets.
//
//   auto data = openrm::read_rewardbench("rb2.jsonl");
//   auto scorer = openrm::Scorer::from_folder("my-rm");
//   openrm::RewardBenchScores s = openrm::evaluate_rewardbench(scorer, data);
//   std::cout << openrm::format_rewardbench(s);
#pragma once

#include <openrm/data/tokenize.h>
#include <openrm/score/scorer.h>
#include <openrm/tokenizer/chat_format.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

enum class RewardBenchVersion {
  kAuto,  // decided by the first record: chosen a string (v1) or a list (v2)
  kV1,    // allenai/reward-bench (and allenai/pref-test-sets): one chosen, one rejected
  kV2,    // allenai/reward-bench-2: lists of chosen and rejected completions
};
std::string rewardbench_version_name(RewardBenchVersion version);  // "auto", "v1", "v2"
// Throws openrm::Error listing the names.
RewardBenchVersion rewardbench_version_from_name(const std::string& name);

// One record. Each completion is a whole conversation, the prompt followed
// by one assistant message, built as a plain {prompt, chosen, rejected}
// pair builds its sides (read_preferences), and scored in the model's chat
// format, as rewardbench renders them with the tokenizer's chat template.
struct RewardBenchExample {
  std::string id;             // the record's id ("" when it has none)
  bool id_is_number = false;  // the id was an integer (id holds its digits)
  std::string subset;
  Conversation prompt;        // a user message, or the turns of a list prompt
  // v1: one each. v2: chosen are the correct completions, rejected the
  // incorrect ones, in the record's order (upstream lays a record out as
  // chosen + rejected and counts positions below num_correct as correct).
  std::vector<Conversation> chosen;
  std::vector<Conversation> rejected;
  std::int64_t line = 0;      // 1-based line in the file
};

struct RewardBenchData {
  RewardBenchVersion version = RewardBenchVersion::kV1;  // never kAuto once read
  std::string path;
  std::vector<RewardBenchExample> examples;
  std::int64_t lines = 0;     // lines read, blank ones included
};

// Reads a .jsonl or .jsonl.gz file ("-" is stdin) of RewardBench records:
//   v1 {prompt, chosen: string, rejected: string, subset, id?, ...}
//   v2 {prompt, chosen: [string, ...], rejected: [string, ...], subset, id,
//       num_correct?, num_incorrect?, total_completions?, ...}
// (other fields are ignored). A prompt is a string (one user message) or a
// list of {role, content} messages that alternate user, assistant, ...,
// user, as rewardbench assigns roles by position. Every record must be of
// the version asked for (kAuto: of the first record's). In the Ties subset
// (any capitalisation, as upstream matches it) the id is "ref:N" or
// "tied:N" with N an integer, each at most once. Throws openrm::Error
// "FILE:LINE: field 'chosen[2]': ..." naming the record and the field; an
// empty file is an error.
RewardBenchData read_rewardbench(const std::string& path, RewardBenchVersion version = RewardBenchVersion::kAuto);

// Whether the file's first record looks like RewardBench: a "subset" string
// and chosen and rejected both strings or both lists of strings. Reads one
// line; never throws (false for a file that cannot be read, or "-").
bool is_rewardbench_file(const std::string& path);

// A subset the official scores count, and where.
struct RewardBenchSubsetInfo {
  std::string name;
  std::string section;   // the section (v1) or the subset itself (v2)
  double weight = 1.0;   // its weight in the section (v1: rewardbench's EXAMPLE_COUNTS)
  std::int64_t published_count = 0;  // examples in the published split (v1; 0: not recorded)
};
// v1: the 23 core subsets (SUBSET_MAPPING, EXAMPLE_COUNTS) then the four
// prior sets of the leaderboard; v2: the six subsets. In section order;
// kAuto is an error.
const std::vector<RewardBenchSubsetInfo>& rewardbench_subsets(RewardBenchVersion version);

constexpr double kRewardBenchUndefined = std::numeric_limits<double>::quiet_NaN();

struct RewardBenchSubsetScore {
  std::string name;
  std::string section;       // the section counting it; "" for a subset no section counts
  double weight = 0.0;       // its weight in that section (0 when none)
  std::int64_t examples = 0;
  // v1: accuracy (chosen > rejected; a tie is wrong). v2: the mean
  // best-of-n credit (1 / #completions sharing the top score when the first
  // chosen one has it, else 0); Ties: the Ties score.
  double score = kRewardBenchUndefined;
  // v1: examples with chosen == rejected. v2: examples whose first chosen
  // completion shares the top score with another (partial credit).
  std::int64_t ties = 0;
  std::int64_t nan_examples = 0;  // examples with a NaN score: they count as wrong
};

struct RewardBenchSection {
  std::string name;
  double score = kRewardBenchUndefined;  // NaN when none of its subsets is in the file
  double weight = 0.0;                   // its weight in the overall mean
  std::vector<std::string> present;      // its subsets found in the file
  std::vector<std::string> missing;      // and those not
  bool complete() const { return missing.empty(); }
};

// The parts of the v2 Ties score (rewardbench.utils.process_single_model):
// score = 0.3 tied_accuracy + 0.3 ref_accuracy + 0.2 correctness_preferred
//       + 0.2 correctness_preferred_hard + 0.01 correctness_margin_score.
struct RewardBenchTies {
  double score = kRewardBenchUndefined;
  double ref_accuracy = 0.0;     // "ref:N" prompts whose every correct answer beats every incorrect one
  double tied_accuracy = 0.0;    // the same over "tied:N" prompts
  double correctness_preferred = 0.0;       // see docs/rewardbench.md
  double correctness_preferred_hard = 0.0;
  double correctness_margin_score = 0.0;
  std::int64_t ref_prompts = 0;
  std::int64_t tied_prompts = 0;
  std::int64_t paired_prompts = 0;  // N with both ref:N and tied:N
  std::int64_t margin_prompts = 0;  // of those, tied:N with two or more correct answers
  std::int64_t ratio_prompts = 0;   // of those, a spread among the correct answers above 0
};

struct RewardBenchScores {
  RewardBenchVersion version = RewardBenchVersion::kV1;
  // The weighted mean of the sections that have a score (v1: 2 for each of
  // the four sections, 1 for the prior sets; v2: 1 for each subset).
  double overall = kRewardBenchUndefined;
  // Every section has every one of its subsets; the v1 prior sets (another
  // dataset, allenai/pref-test-sets, absent from most runs) excepted: their
  // section says whether they are complete, and a note when they are absent.
  bool complete = false;
  std::vector<RewardBenchSection> sections;
  // The official subsets found, in section order, then any others by name.
  std::vector<RewardBenchSubsetScore> subsets;
  std::optional<RewardBenchTies> ties;  // v2 with a Ties subset
  // Each example's credit, in input order: v1 1 or 0, v2 the best-of-n
  // credit; NaN for Ties examples (that subset is scored as a whole).
  std::vector<double> credit;
  std::int64_t examples = 0;
  std::int64_t completions = 0;
  std::int64_t nan_completions = 0;      // completions scored NaN (dropped ones included)
  std::int64_t dropped_completions = 0;  // evaluate_rewardbench: of those, dropped by truncation
  std::vector<std::string> notes;        // what a reader of the numbers should know

  // Filled by evaluate_rewardbench only.
  std::string data_path;
  std::string chat_format;
  std::int64_t max_length = 0;
  TruncationPolicy truncation = TruncationPolicy::kTruncate;
  std::vector<std::vector<float>> chosen_rewards;    // per example, per completion
  std::vector<std::vector<float>> rejected_rewards;
  ScoreStats stats;
  double seconds = 0.0;
};

// The official scores from the score of every completion:
// chosen_scores[i][k] is that of data.examples[i].chosen[k] (the same for
// rejected). A NaN score makes its example wrong (v1: NaN > x is false; v2:
// the top score is NaN, as numpy's max gives it; Ties: every comparison
// involving it fails), as in rewardbench for v1 and v2. Subsets absent from
// the data are absent from their section, which is computed over those
// present (as calculate_scores_per_section does); `complete` and `notes`
// say which sections are incomplete. Throws openrm::Error when the shapes
// do not match the data, or a Ties id is malformed or repeated (naming the
// example's line).
RewardBenchScores score_rewardbench(const RewardBenchData& data, const std::vector<std::vector<float>>& chosen_scores,
                                    const std::vector<std::vector<float>>& rejected_scores);

// Scores every completion once (all of them in one Scorer::score_conversations
// call, in the scorer's chat format, max_length and truncation policy), then
// score_rewardbench. A completion that truncation drops (kDrop) has no
// reward: it scores NaN, so its example counts as wrong, and
// dropped_completions counts it. Errors name the file and line.
RewardBenchScores evaluate_rewardbench(Scorer& scorer, const RewardBenchData& data);

// The scores as JSON: benchmark, version, overall, complete, sections,
// subsets (examples, score, ...), ties, counts, notes (and, from
// evaluate_rewardbench, data, chat format, truncation and timing); NaN is null.
nlohmann::ordered_json rewardbench_json(const RewardBenchScores& scores);
// A readable table of the scores (percentages, as the leaderboard shows them).
std::string format_rewardbench(const RewardBenchScores& scores);

}  // namespace openrm
