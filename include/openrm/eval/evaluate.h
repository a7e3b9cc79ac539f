// Evaluating a reward model on held-out preference pairs: score every pair
// in token-budget batches and compute the metrics of openrm/eval/metrics.h.
//
// evaluate() is the library call a training loop makes every N steps (pairs
// already tokenized); evaluate_file() does the whole job from a model folder
// and a data file, as openrm-eval does.
#pragma once

#include <openrm/data/preference.h>
#include <openrm/data/tokenize.h>
#include <openrm/eval/metrics.h>
#include <openrm/models/reward_model.h>
#include <openrm/tokenizer/chat_format.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

struct EvalOptions {
  // evaluate_file: the longest sequence in tokens (prompt + response); unset:
  // the folder's openrm.json max_length (the length the model was trained
  // with), else 2048; 0: as long as the model takes. Never more than the
  // model's max_position_embeddings: a larger request is lowered, with a
  // warning (effective_max_length, openrm/models/model_folder.h).
  std::optional<std::int64_t> max_length;
  // evaluate_file: what to do with longer pairs; unset: the folder's
  // openrm.json truncation, else kTruncate.
  std::optional<TruncationPolicy> truncation;
  // evaluate_file: tokenizer threads (0: all).
  int threads = 0;
  // evaluate_file: the chat format to render with; unset: the folder's
  // (openrm.json's chat_format, else the tokenizer's chat_template, else plain).
  std::optional<ChatFormat> chat_format;
  // evaluate_file: a tokenizer (folder, tokenizer.json or .model file) to use instead of the
  // model folder's; required when the folder has none.
  std::string tokenizer;
  // evaluate_file: device, dtype and pooling override for loading the model.
  LoadOptions load;
  // Token budget of one forward pass, in real tokens (the Scorer's batching:
  // sequences sorted by length). A sequence over the budget on its own is a
  // batch of one.
  std::int64_t max_tokens = 16384;
  // The Scorer's prefix sharing (ScoreOptions::share_prefixes): on CPU the
  // prompt both sides of a pair begin with is computed once.
  bool share_prefixes = true;
  // Equal-width bins of the calibration table (and the ECE).
  int calibration_bins = 10;
  // Keep every pair's rewards in EvalResult::rewards (off: metrics only).
  bool keep_rewards = true;
  // evaluate_file(s): keep the pairs as read in EvalResult::pairs (their
  // texts, for a report of the worst-ranked pairs).
  bool keep_pairs = false;
  // A model with several outputs (num_labels > 1): the reward is the single
  // output reward_label (0-based) or the weighted sum with reward_weights,
  // as ScoreOptions has them; one is required for such a model, neither may
  // be given for a one-output model.
  std::optional<std::int64_t> reward_label;
  std::vector<double> reward_weights;

  // Throws openrm::Error naming the first bad field.
  void validate() const;
};

// The rewards of one evaluated pair.
struct PairReward {
  std::int64_t source_index = 0;  // TokenizedPair::source_index
  std::int64_t line = 0;          // line in the data file (0 when unknown)
  std::string id;                 // the record's id (evaluate_file only)
  std::string subset;             // the record's subset field (evaluate_file only)
  std::int64_t source = 0;        // evaluate_files: the index of its data file
  bool id_is_number = false;      // the id was an integer (echoed as a number)
  float chosen = 0.0f;            // reward of the chosen side
  float rejected = 0.0f;          // reward of the rejected side
  std::int64_t chosen_length = 0;    // tokens of the chosen sequence
  std::int64_t rejected_length = 0;  // tokens of the rejected sequence
};

// The metrics of `pairs` given each pair's rewards (margins and lengths from
// the pairs), as evaluate computes them.
PreferenceMetrics pair_metrics(const std::vector<TokenizedPair>& pairs, const std::vector<float>& chosen,
                               const std::vector<float>& rejected, int calibration_bins);

struct EvalResult {
  PreferenceMetrics metrics;
  // What the length-bias metrics measure: "sequence", the whole tokenized
  // sequence (prompt + response + template markup). Both sides of a pair
  // share the prompt, so within a pair the difference is the responses'.
  std::string length_kind = "sequence";
  // Per-pair rewards in input order (empty unless keep_rewards).
  std::vector<PairReward> rewards;
  // The reward of a model with several outputs (EvalOptions' own).
  std::optional<std::int64_t> reward_label;
  std::vector<double> reward_weights;
  std::int64_t batches = 0;    // forward passes
  double seconds = 0.0;        // time spent scoring and computing metrics
  double total_seconds = 0.0;  // evaluate_file: reading, loading and tokenizing too

  // Filled by evaluate_file only.
  std::string model_dir;
  std::string data_path;                // the data files, ", "-joined
  std::vector<std::string> data_paths;  // each data file
  // keep_pairs: every pair read, in input order (PairReward::source_index
  // indexes it).
  std::vector<PreferencePair> pairs;
  std::string chat_format;  // name of the chat format used
  TokenizeOptions tokenize;  // the chat format, max_length and policy used
  ReadStats read;
  TruncationStats truncation;
};

// Scores every pair with `model` (no gradients; the model's mode is left as
// it is) through a Scorer (openrm/score/scorer.h): every sequence sorted by
// length into token-budget batches; then computes the metrics. As the Scorer
// does, a model whose pooling
// is rightmost_non_pad but that has no pad_token_id is switched to last_token
// pooling (transformers could only score it one sequence at a time). Rewards
// come back in input order. A model with several outputs needs
// options.reward_label or reward_weights. An empty `pairs`
// gives pairs = 0 and NaN metrics.
EvalResult evaluate(RewardModel& model, const std::vector<TokenizedPair>& pairs,
                    const EvalOptions& options = {});

// Loads the folder (load_reward_model_folder; the tokenizer must be there or
// given in options.tokenizer), reads the preference file, tokenizes it with
// the folder's chat format, max_length and truncation policy (unless options
// say otherwise) and evaluates. On a folder openrm-train wrote, these are the
// trainer's own, so the metrics are those of its final evaluation. The result carries the read and truncation counts. Errors name
// the folder or the file and line.
EvalResult evaluate_file(const std::string& model_dir, const std::string& data_path,
                         const EvalOptions& options = {}, const ReadOptions& read = {});
// As evaluate_file, on the pairs of several files together (read in order,
// one input; the read counts are summed). PairReward::source says which
// file a pair came from.
EvalResult evaluate_files(const std::string& model_dir, const std::vector<std::string>& data_paths,
                          const EvalOptions& options = {}, const ReadOptions& read = {});

// The result as JSON (without the per-pair rewards), keys in a fixed readable
// order; NaN and infinite values are null.
nlohmann::ordered_json eval_result_json(const EvalResult& result);
// The truncation and read counts as JSON objects, as eval_result_json,
// the report's JSON and rewardbench_json write them (keys in field order;
// the read errors with invalid UTF-8 replaced).
nlohmann::ordered_json truncation_stats_json(const TruncationStats& stats);
nlohmann::ordered_json read_stats_json(const ReadStats& stats);
// A readable table of the result, for terminals and logs.
std::string format_eval_result(const EvalResult& result);
// The per-pair rewards as JSON Lines, one object per pair in input order:
// index (source_index), line, id, chosen, rejected, margin (chosen -
// rejected), chosen_length, rejected_length. Rewards are written with 9
// significant digits, enough to give back the same float.
std::string pair_rewards_jsonl(const EvalResult& result);

}  // namespace openrm
