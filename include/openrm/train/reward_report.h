// Reward reports: the README.md model card of every folder openrm writes
// (openrm-train's output, openrm-export's output) documents the reward
// model in the spirit of Gilbert et al., "Reward Reports for Reinforcement
// Learning" (2022): intended use, data and its hashes, the preference
// collection as far as openrm knows it, training, evaluation, measured
// biases, limitations and lineage. Evaluations made later are appended to
// the card and to evaluations.jsonl. docs/reward-reports.md describes the
// sections and where each fact comes from.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace openrm {

// One evaluation of a model folder, as the card and evaluations.jsonl record it.
struct CardEvaluation {
  std::string date;         // "2026-12-01" (UTC); "": today
  std::string data_path;    // the evaluated file, as given
  std::string data_sha256;  // its SHA-256; "": hashed here when data_path is a regular file
  std::int64_t pairs = 0;   // pairs evaluated
  // The evaluation's JSON object: eval_result_json(result)
  // (openrm/eval/evaluate.h), optionally with "rewardbench" and
  // "comparison" objects, shown as tables of their numbers.
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  std::string tool_version;  // e.g. "openrm-eval 0.1.0"; "": openrm's version
};

// Appends the evaluation to model_dir/README.md, as a dated section
// ("### Evaluation on DATE: `FILE` (sha256 ...)") with a table of the
// headline numbers, under the card's "## Evaluations" heading (added at the
// end when the card's last section is another one), and as one JSON line to
// model_dir/evaluations.jsonl (evaluation_json_line). What the files held
// is kept byte for byte: the new text goes after it, and each file is
// replaced atomically (write_file_atomic), so a crash leaves the old file or
// the new one. A folder without README.md gets a minimal report saying the
// model's origin is unknown to openrm. Throws openrm::Error naming the path
// when model_dir is not a folder, README.md or evaluations.jsonl is a
// symlink, FIFO, device or folder (neither file is then touched), or
// `metrics` is not a JSON object.
void append_evaluation_to_card(const std::string& model_dir, const CardEvaluation& evaluation);

// The card section append_evaluation_to_card writes (markdown, ending in a
// blank line), and the evaluations.jsonl line (one JSON object and "\n"):
// {"date", "data", "data_sha256", "pairs", "tool_version", "metrics"}.
// Both take the evaluation as given (no hashing, no date filled in).
std::string evaluation_card_section(const CardEvaluation& evaluation);
std::string evaluation_json_line(const CardEvaluation& evaluation);

}  // namespace openrm
