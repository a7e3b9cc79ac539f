// A self-contained HTML report of a reward model's evaluation: reward
// histograms, the reliability diagram, reward against length, accuracy per
// group, training curves, the worst-ranked pairs with their texts and the
// truncation counts. One file with inline CSS and inline SVG and no script,
// no font and no link to anything outside it, so it opens offline, in any
// browser, years later (docs/report.md).
//
// compute_report_data() does all the arithmetic; render_html_report() only
// draws what it computed, and report_data_json() writes the same numbers
// machine-readable. Bad inputs (no pairs, NaN rewards, all-equal rewards, no
// lengths, huge texts, invalid UTF-8) give a valid page, never a crash.
#pragma once

#include <openrm/data/preference.h>
#include <openrm/data/tokenize.h>
#include <openrm/eval/metrics.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

// One evaluated pair, as the report sees it.
struct ReportPair {
  double chosen = 0.0;    // reward of the chosen side
  double rejected = 0.0;  // reward of the rejected side
  // Lengths in tokens (what ReportInputs::length_kind says); -1: unknown.
  std::int64_t chosen_length = -1;
  std::int64_t rejected_length = -1;
  std::string group;      // subset or source file ("": none)
  std::string id;         // the record's id ("": none)
  std::int64_t line = 0;  // line in the data file (0: unknown)
  // Texts shown for the worst-ranked pairs ("": not shown).
  std::string prompt_text;
  std::string chosen_text;
  std::string rejected_text;
};

// The curves of openrm-train's metrics.jsonl. A value a line has as null or
// lacks (the loss of a step skipped as non-finite) is NaN.
struct TrainingCurves {
  // One entry per step line, in file order.
  std::vector<std::int64_t> step;
  std::vector<double> loss;
  std::vector<double> accuracy;
  std::vector<double> lr;
  std::vector<double> grad_norm;
  // One entry per evaluation line (the periodic ones and the final one).
  std::vector<std::int64_t> eval_step;
  std::vector<double> eval_loss;
  std::vector<double> eval_accuracy;

  bool empty() const { return step.empty() && eval_step.empty(); }
};

// Reads metrics.jsonl: step lines {"step", "loss", "accuracy", "lr",
// "grad_norm", ...} and evaluation lines {"step", "eval": {"loss",
// "accuracy", ...}}; other keys are ignored, blank lines skipped. A line
// that is not a JSON object, lacks an integer "step" or has a non-number
// value is openrm::Error "FILE:LINE: ...". A missing file is an error too,
// unless missing_ok (then: empty curves).
TrainingCurves read_training_curves(const std::string& metrics_jsonl_path, bool missing_ok = false);

// An extra table the caller fills (RewardBench scores, model comparisons).
// Rows shorter than the header are padded with empty cells.
struct ReportTable {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string note;  // shown under the table ("": none)
};

struct ReportInputs {
  std::string title = "Reward model evaluation";
  std::string model;  // model folder or name ("": not shown)
  std::string data;   // the evaluation data ("": not shown)
  // As the caller formats it ("": not shown, and then the page depends on
  // its inputs only).
  std::string date;
  // The metrics of `pairs` (EvalResult::metrics, compute_preference_metrics):
  // the summary and the reliability diagram come from here.
  PreferenceMetrics metrics;
  // Every evaluated pair in input order; may be empty (a report of the
  // metrics alone). When given, its size must be metrics.pairs.
  std::vector<ReportPair> pairs;
  // What the lengths count, for the axis label (EvalResult::length_kind).
  std::string length_kind = "sequence";
  std::optional<ReadStats> read;
  std::optional<TruncationStats> truncation;
  std::optional<TrainingCurves> curves;  // unset: no training section
  std::vector<ReportTable> tables;
  int worst_pairs = 10;     // pairs listed as worst-ranked, in [0, 1000]
  int histogram_bins = 30;  // bins of the reward and margin histograms, in [1, 1000]
  // Sequences drawn in reward vs length (a deterministic, evenly spaced
  // subsample of the pairs, both sides of each); the correlation counts all.
  int max_scatter_points = 2000;
  // Points drawn per training curve; a longer run is averaged in buckets of
  // consecutive steps. At least 2.
  int max_curve_points = 1000;
  // Characters (code points) of each text shown; longer ones are cut with a
  // visible note. 0: no texts.
  int max_text_chars = 4000;

  // Throws openrm::Error "report: ..." naming the first bad field.
  void validate() const;
};

// Counts of values on bin edges: bin b is [edges[b], edges[b + 1]), the
// last one closed.
struct ReportHistogram {
  std::vector<double> edges;         // bins + 1 ascending edges; empty when no finite value
  std::vector<std::int64_t> counts;  // one per bin
  std::int64_t left_out = 0;         // non-finite values, not counted
};

// Sequences of one side drawn in reward vs length.
struct ReportScatter {
  std::vector<double> length;
  std::vector<double> reward;
};

struct ReportLength {
  bool available = false;  // some pair has both lengths
  // Pearson correlation of reward and length over every sequence of a pair
  // with both lengths whose reward is finite (all of them, not only the
  // drawn ones): metrics.length_bias.pearson when every pair has lengths and
  // finite rewards. NaN when undefined.
  double pearson = 0.0;
  std::int64_t sequences = 0;             // sequences in the correlation
  std::int64_t pairs_without_length = 0;  // pairs left out for lack of a length
  ReportScatter chosen;                   // the drawn subsample
  ReportScatter rejected;
};

// Accuracy of the pairs of one group (a tie and a NaN count wrong, as in
// metrics.h).
struct ReportGroup {
  std::string name;  // "" for pairs without a group, when other pairs have one
  std::int64_t pairs = 0;
  std::int64_t correct = 0;  // reward_chosen > reward_rejected
  std::int64_t ties = 0;
  double accuracy = 0.0;
};

// A text as shown: cut to max_text_chars code points.
struct ReportText {
  std::string text;             // valid UTF-8 (invalid bytes replaced by U+FFFD)
  std::int64_t total_chars = 0;  // code points of the whole text
  bool cut = false;
};

struct ReportWorstPair {
  std::int64_t rank = 0;   // 1: the worst
  std::int64_t index = 0;  // in ReportInputs::pairs
  std::string id;
  std::int64_t line = 0;
  std::string group;
  double chosen = 0.0;
  double rejected = 0.0;
  double difference = 0.0;  // rejected - chosen: > 0 wrong, 0 a tie, < 0 right
  ReportText prompt;
  ReportText chosen_text;
  ReportText rejected_text;
};

// The training curves as drawn.
struct ReportCurves {
  std::int64_t step_lines = 0;       // step lines read
  std::int64_t steps_per_point = 1;  // > 1: each point is the mean of a bucket
  // Step points: a bucket's mean (NaN values skipped) at its last step.
  // Evaluation points: all of them.
  TrainingCurves shown;
};

// Every number the page shows.
struct ReportData {
  std::int64_t pairs = 0;  // per-pair rewards given (ReportInputs::pairs)
  ReportHistogram reward_chosen;    // chosen and rejected rewards on common edges
  ReportHistogram reward_rejected;
  ReportHistogram margin;           // reward_chosen - reward_rejected
  std::vector<CalibrationBin> calibration;  // metrics.calibration
  double ece = 0.0;                          // metrics.ece
  ReportLength length;
  std::vector<ReportGroup> groups;  // first-appearance order; empty when no pair has a group
  std::optional<ReportCurves> curves;
  std::vector<ReportWorstPair> worst_pairs;  // largest rejected - chosen first, ties by input order
  std::int64_t unranked_pairs = 0;           // NaN differences, left out of worst_pairs
  std::optional<ReadStats> read;
  std::optional<TruncationStats> truncation;
};

// Throws openrm::Error on invalid options (validate()) or when pairs and
// metrics disagree on the number of pairs.
ReportData compute_report_data(const ReportInputs& inputs);

// The numbers of the plots as JSON (docs/report.md has the schema), keys in
// a fixed order; NaN and infinite values are null. Without the texts.
nlohmann::ordered_json report_data_json(const ReportData& data);

// The page: one HTML document with every text from the inputs escaped.
std::string render_html_report(const ReportInputs& inputs, const ReportData& data);

// compute_report_data, render_html_report, and writes the page through
// openrm::OutputFile ("-": stdout; a file atomically; a device or FIFO in
// place; a symlink's target).
void write_html_report(const std::string& path, const ReportInputs& inputs);

// Several models evaluated on the same pairs, on one page: the shared
// tables (a comparison) first, then each model's sections as
// render_html_report writes them (their ids prefixed "m1-", "m2-", ...).
std::string render_html_comparison_report(const std::string& title, const std::vector<ReportTable>& shared,
                                          const std::vector<ReportInputs>& models,
                                          const std::vector<ReportData>& data);
// One model: write_html_report of it with the shared tables added; several:
// render_html_comparison_report. Written as write_html_report writes.
void write_html_report(const std::string& path, const std::vector<ReportInputs>& models,
                       const std::vector<ReportTable>& shared,
                       const std::string& title = "Reward model comparison");

}  // namespace openrm
