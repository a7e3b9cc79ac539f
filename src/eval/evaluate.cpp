// Scoring held-out preference pairs in token-budget batches, and reporting
// the metrics (docs/evaluation.md).
#include "openrm/eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "logging.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/models/lora.h"
#include "openrm/models/model_folder.h"
#include "openrm/score/scorer.h"
#include "openrm/tokenizer/tokenizer.h"

namespace openrm {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A number for JSON: NaN and infinities have no JSON form, so they are null.
nlohmann::ordered_json number(double value) {
  return std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json(nullptr);
}

// A number for the table: fixed decimals, or "n/a" when undefined.
std::string fixed(double value, int decimals = 4) {
  if (!std::isfinite(value)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

// Shortest-ish text that gives back the same float (9 significant digits).
std::string float_text(float value) {
  if (!std::isfinite(value)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(value));
  return buf;
}

std::string padded(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

}  // namespace

void EvalOptions::validate() const {
  if (max_tokens <= 0) throw Error("eval options: max_tokens must be positive, got " + std::to_string(max_tokens));
  if (calibration_bins < 1 || calibration_bins > 1000) {
    throw Error("eval options: calibration_bins must be in [1, 1000], got " + std::to_string(calibration_bins));
  }
  if (max_length && *max_length < 0) {
    throw Error("eval options: max_length must be >= 0 (0: as long as the model takes), got " +
                std::to_string(*max_length));
  }
  if (threads < 0) throw Error("eval options: threads must be >= 0 (0: all), got " + std::to_string(threads));
  validate_reward_choice(reward_label, reward_weights, "eval options");
}

PreferenceMetrics pair_metrics(const std::vector<TokenizedPair>& pairs, const std::vector<float>& chosen,
                               const std::vector<float>& rejected, int calibration_bins) {
  std::vector<ScoredPair> scored(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    ScoredPair& s = scored[i];
    s.chosen = chosen[i];
    s.rejected = rejected[i];
    s.margin = pairs[i].has_margin ? pairs[i].margin : 0.0;
    s.chosen_length = static_cast<std::int64_t>(pairs[i].chosen.size());
    s.rejected_length = static_cast<std::int64_t>(pairs[i].rejected.size());
  }
  return compute_preference_metrics(scored, calibration_bins);
}

EvalResult evaluate(RewardModel& model, const std::vector<TokenizedPair>& pairs, const EvalOptions& options) {
  options.validate();
  const auto start = Clock::now();
  const std::size_t n = pairs.size();
  EvalResult result;
  std::vector<float> chosen(n, 0.0f), rejected(n, 0.0f);
  // The Scorer's batching: every sequence sorted by length into batches of
  // at most max_tokens real tokens, rewards back in input order. The model
  // is borrowed, not owned, and its train/eval mode is left alone. Built
  // even for no pairs: it checks the reward label / weights against the head.
  ScoreOptions score_options;
  score_options.max_tokens = options.max_tokens;
  score_options.share_prefixes = options.share_prefixes;
  score_options.reward_label = options.reward_label;
  score_options.reward_weights = options.reward_weights;
  Scorer scorer = with_context("evaluate", [&] {
    return Scorer(std::shared_ptr<RewardModel>(&model, [](RewardModel*) {}), nullptr, ChatFormat::kPlain,
                  score_options);
  });
  result.reward_label = options.reward_label;
  result.reward_weights = options.reward_weights;
  if (n > 0) {
    std::vector<std::vector<TokenId>> sequences;
    sequences.reserve(2 * n);
    for (const auto& p : pairs) {
      sequences.push_back(p.chosen);
      sequences.push_back(p.rejected);
    }
    const std::vector<float> rewards = with_context("evaluate", [&] { return scorer.score_tokens(sequences); });
    for (std::size_t i = 0; i < n; ++i) {
      chosen[i] = rewards[2 * i];
      rejected[i] = rewards[2 * i + 1];
    }
    result.batches = scorer.stats().batches;
  }

  result.metrics = pair_metrics(pairs, chosen, rejected, options.calibration_bins);
  if (options.keep_rewards) {
    result.rewards.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      PairReward& out = result.rewards[i];
      out.source_index = pairs[i].source_index;
      out.line = pairs[i].line;
      out.chosen = chosen[i];
      out.rejected = rejected[i];
      out.chosen_length = static_cast<std::int64_t>(pairs[i].chosen.size());
      out.rejected_length = static_cast<std::int64_t>(pairs[i].rejected.size());
    }
  }
  result.seconds = seconds_since(start);
  return result;
}

EvalResult evaluate_file(const std::string& model_dir, const std::string& data_path, const EvalOptions& options,
                         const ReadOptions& read) {
  return evaluate_files(model_dir, std::vector<std::string>{data_path}, options, read);
}

EvalResult evaluate_files(const std::string& model_dir, const std::vector<std::string>& data_paths,
                          const EvalOptions& options, const ReadOptions& read) {
  options.validate();
  if (data_paths.empty()) throw Error("evaluate: no data file given");
  std::string data_path;
  for (const std::string& path : data_paths) data_path += (data_path.empty() ? "" : ", ") + path;
  const auto start = Clock::now();
  if (!path_exists(model_dir)) throw Error(model_dir + ": no such model folder");
  if (!is_directory(model_dir)) throw Error(model_dir + ": not a folder (expected a model folder)");
  if (options.tokenizer.empty() && model_tokenizer_folder(model_dir, options.load).empty()) {
    throw Error(model_dir + ": the model folder has no tokenizer (no tokenizer.json or tokenizer.model" +
                std::string(is_lora_adapter_folder(model_dir) ? ", nor has its base model folder" : "") +
                "); give one with --tokenizer PATH (EvalOptions::tokenizer)");
  }
  // The cheap inputs first: a bad tokenizer or record is found before a
  // large model is loaded.
  std::shared_ptr<const Tokenizer> tokenizer;
  if (!options.tokenizer.empty()) {
    if (!path_exists(options.tokenizer)) {
      throw Error(options.tokenizer + ": no such tokenizer (expected a folder with tokenizer.json or tokenizer.model, a tokenizer.json or a .model file)");
    }
    tokenizer = load_tokenizer(options.tokenizer);
  }
  PreferenceData data;
  std::vector<std::int64_t> first_of_file;  // index of each file's first pair
  for (const std::string& path : data_paths) {
    PreferenceData part = read_preferences(path, read);
    first_of_file.push_back(static_cast<std::int64_t>(data.pairs.size()));
    if (data.pairs.empty()) {
      data.pairs = std::move(part.pairs);
    } else {
      data.pairs.insert(data.pairs.end(), std::make_move_iterator(part.pairs.begin()),
                        std::make_move_iterator(part.pairs.end()));
    }
    ReadStats& r = data.stats;
    r.lines += part.stats.lines;
    r.records += part.stats.records;
    r.skipped_invalid += part.stats.skipped_invalid;
    r.ranked_records += part.stats.ranked_records;
    r.pairs += part.stats.pairs;
    for (auto& e : part.stats.first_errors) r.first_errors.push_back(std::move(e));
  }

  RewardModelFolder folder = load_reward_model_folder(model_dir, options.load);
  if (!tokenizer) tokenizer = folder.tokenizer;

  // The folder's chat format, max_length and policy: the trainer's own.
  TokenizeOptions tokenize;
  if (options.chat_format) {
    tokenize.format = *options.chat_format;
  } else if (folder.metadata.chat_format) {
    tokenize.format = *folder.metadata.chat_format;
  } else {
    tokenize.format = default_chat_format(*tokenizer);
  }
  tokenize.max_length = effective_max_length(folder.model->config(), folder.metadata, options.max_length);
  tokenize.policy = options.truncation.value_or(folder.metadata.truncation.value_or(TruncationPolicy::kTruncate));
  tokenize.threads = options.threads;
  set_pair_token_types(*folder.model, *tokenizer, tokenize.format);
  TokenizedPairs tokenized = tokenize_pairs(data.pairs, *tokenizer, tokenize);
  if (tokenized.pairs.empty()) {
    throw Error(data_path + ": no pair left to evaluate: all " + std::to_string(tokenized.stats.input) +
                " were dropped by truncation (max_length " + std::to_string(tokenize.max_length) +
                ", policy " + truncation_policy_name(tokenize.policy) + ")");
  }

  EvalResult result = evaluate(*folder.model, tokenized.pairs, options);
  for (auto& r : result.rewards) {
    const PreferencePair& pair = data.pairs[static_cast<std::size_t>(r.source_index)];
    r.id = pair.id;
    r.id_is_number = pair.id_is_number;
    r.subset = pair.subset;
    r.source = static_cast<std::int64_t>(
        std::upper_bound(first_of_file.begin(), first_of_file.end(), r.source_index) - first_of_file.begin() - 1);
  }
  result.model_dir = model_dir;
  result.data_path = data_path;
  result.data_paths = data_paths;
  if (options.keep_pairs) result.pairs = std::move(data.pairs);
  result.chat_format = chat_format_name(tokenize.format);
  result.tokenize = tokenize;
  result.read = data.stats;
  result.truncation = tokenized.stats;
  result.total_seconds = seconds_since(start);
  return result;
}

nlohmann::ordered_json truncation_stats_json(const TruncationStats& t) {
  return {{"input", t.input},
          {"kept", t.kept},
          {"truncated", t.truncated},
          {"dropped", t.dropped},
          {"prompt_turns_dropped", t.prompt_turns_dropped},
          {"prompts_cut", t.prompts_cut},
          {"responses_cut", t.responses_cut},
          {"longest_before", t.longest_before}};
}

nlohmann::ordered_json read_stats_json(const ReadStats& r) {
  nlohmann::ordered_json errors = nlohmann::ordered_json::array();
  // A record's error quotes its bytes, which need not be UTF-8.
  for (const std::string& e : r.first_errors) {
    errors.push_back(nlohmann::ordered_json::parse(
        nlohmann::json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  }
  return {{"lines", r.lines},           {"records", r.records}, {"skipped_invalid", r.skipped_invalid},
          {"ranked_records", r.ranked_records}, {"pairs", r.pairs}, {"first_errors", std::move(errors)}};
}

nlohmann::ordered_json eval_result_json(const EvalResult& result) {
  const PreferenceMetrics& m = result.metrics;
  nlohmann::ordered_json j;
  if (!result.model_dir.empty()) j["model"] = result.model_dir;
  if (!result.data_path.empty()) j["data"] = result.data_path;
  if (result.data_paths.size() > 1) j["data_files"] = result.data_paths;
  if (!result.chat_format.empty()) j["chat_format"] = result.chat_format;
  if (result.reward_label) j["reward_label"] = *result.reward_label;
  if (!result.reward_weights.empty()) j["reward_weights"] = result.reward_weights;
  if (!result.data_path.empty()) {
    j["max_length"] = result.tokenize.max_length;
    j["truncation_policy"] = truncation_policy_name(result.tokenize.policy);
  }
  j["pairs"] = m.pairs;
  j["accuracy"] = number(m.accuracy);
  j["ties"] = m.ties;
  j["mean_margin"] = number(m.mean_margin);
  j["reward_mean"] = number(m.reward_mean);
  j["reward_std"] = number(m.reward_std);
  j["loss"] = number(m.loss);
  j["ece"] = number(m.ece);
  j["non_finite"] = m.non_finite;
  nlohmann::ordered_json bins = nlohmann::ordered_json::array();
  for (const auto& b : m.calibration) {
    bins.push_back({{"lower", b.lower},
                    {"upper", b.upper},
                    {"count", b.count},
                    {"mean_predicted", number(b.mean_predicted)},
                    {"observed_frequency", number(b.observed_frequency)}});
  }
  j["calibration"] = std::move(bins);
  if (m.has_length_bias) {
    const LengthBias& lb = m.length_bias;
    j["length_bias"] = {{"length", result.length_kind},
                        {"pearson", number(lb.pearson)},
                        {"pairs_with_length_difference", lb.pairs_with_length_difference},
                        {"longer_wins_rate", number(lb.longer_wins_rate)},
                        {"chosen_longer_rate", number(lb.chosen_longer_rate)}};
  } else {
    j["length_bias"] = nullptr;
  }
  j["read"] = read_stats_json(result.read);
  j["truncation"] = truncation_stats_json(result.truncation);
  j["batches"] = result.batches;
  j["seconds"] = number(result.seconds);
  if (result.total_seconds > 0) j["total_seconds"] = number(result.total_seconds);
  return j;
}

std::string format_eval_result(const EvalResult& result) {
  const PreferenceMetrics& m = result.metrics;
  std::ostringstream out;
  auto row = [&](const std::string& name, const std::string& value) {
    out << "  " << padded(name, 28) << value << "\n";
  };
  if (!result.model_dir.empty()) row("model", result.model_dir);
  if (!result.data_path.empty()) row("data", result.data_path);
  if (!result.chat_format.empty()) row("chat format", result.chat_format);
  if (result.reward_label) row("reward", "output " + std::to_string(*result.reward_label));
  if (!result.reward_weights.empty()) {
    std::string w;
    for (const double x : result.reward_weights) w += (w.empty() ? "" : ", ") + fixed(x);
    row("reward", "weighted outputs (" + w + ")");
  }
  row("pairs", std::to_string(m.pairs));
  row("accuracy", fixed(m.accuracy) + "  (ties " + std::to_string(m.ties) + ", counted wrong)");
  row("mean margin", fixed(m.mean_margin));
  row("reward mean / std", fixed(m.reward_mean) + " / " + fixed(m.reward_std) + "  (population std, " +
                               std::to_string(2 * m.pairs) + " rewards)");
  row("loss (Bradley-Terry)", fixed(m.loss));
  row("ECE (" + std::to_string(m.calibration.size()) + " bins)", fixed(m.ece));
  if (m.non_finite > 0) row("non-finite rewards", std::to_string(m.non_finite) + " pairs");
  if (m.has_length_bias) {
    const LengthBias& lb = m.length_bias;
    const std::string kind = result.length_kind == "sequence" ? "sequence tokens" : result.length_kind;
    row("length bias: pearson", fixed(lb.pearson) + "  (reward vs " + kind + ")");
    row("longer side wins (model)", fixed(lb.longer_wins_rate) + "  (of " +
                                        std::to_string(lb.pairs_with_length_difference) +
                                        " pairs with a length difference)");
    row("chosen is longer (data)", fixed(lb.chosen_longer_rate));
  }
  if (!result.data_path.empty()) {
    const ReadStats& r = result.read;
    row("records", std::to_string(r.records) + " (" + std::to_string(r.lines) + " lines, " +
                       std::to_string(r.skipped_invalid) + " invalid skipped, " + std::to_string(r.pairs) +
                       " pairs)");
    const TruncationStats& t = result.truncation;
    row("truncation", "max_length " + std::to_string(result.tokenize.max_length) + ", policy " +
                          truncation_policy_name(result.tokenize.policy) + ": " + t.summary());
  }
  std::string timing = std::to_string(result.batches) + " batches, " + fixed(result.seconds, 2) + " s";
  if (result.total_seconds > 0) timing += " (" + fixed(result.total_seconds, 2) + " s in all)";
  row("scoring", timing);
  out << "\n  calibration (both orderings of each pair; reliability diagram)\n";
  out << "  " << padded("bin", 16) << padded("count", 10) << padded("mean predicted", 18) << "observed\n";
  for (const auto& b : m.calibration) {
    const std::string bin = "[" + fixed(b.lower, 2) + ", " + fixed(b.upper, 2) + (b.upper >= 1.0 ? "]" : ")");
    out << "  " << padded(bin, 16) << padded(std::to_string(b.count), 10)
        << padded(fixed(b.mean_predicted), 18) << fixed(b.observed_frequency) << "\n";
  }
  return out.str();
}

std::string pair_rewards_jsonl(const EvalResult& result) {
  std::string out;
  for (const auto& r : result.rewards) {
    out += "{\"index\": " + std::to_string(r.source_index) + ", \"line\": " + std::to_string(r.line) +
           ", \"id\": " +
           (r.id_is_number ? r.id : nlohmann::json(r.id).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) +
           ", \"chosen\": " + float_text(r.chosen) +
           ", \"rejected\": " + float_text(r.rejected) + ", \"margin\": " + float_text(r.chosen - r.rejected) +
           ", \"chosen_length\": " + std::to_string(r.chosen_length) +
           ", \"rejected_length\": " + std::to_string(r.rejected_length) + "}\n";
  }
  return out;
}

}  // namespace openrm
