// openrm-eval: evaluates reward model folders on held-out preference pairs
// (accuracy, margin, Bradley-Terry loss, calibration, length bias, accuracy
// per subset), scores RewardBench files as the rewardbench package does,
// compares and combines several models, writes an HTML report and appends
// the evaluation to each model's card.
//
//   openrm-eval --model DIR [--model DIR ...] --data FILE [--data FILE ...]
//               [--json OUT] [--rewards OUT.jsonl] [--report OUT.html]
//               [--update-card] [--rewardbench auto|v1|v2|off]
//               [--ensemble-k K] [--worst-pairs N]
//               [--tokenizer PATH] [--chat-format NAME] [--max-length N]
//               [--truncation truncate|drop] [--max-tokens N] [--threads N]
//               [--reward-label N | --reward-weights w0,w1,...] [--skip-invalid]
//
// Prints a table; --json writes every number (docs/eval-json.md), --rewards
// one line of rewards per pair, --report one self-contained HTML page
// (docs/report.md), all atomically ("-": stdout for the first two, and the
// table goes to stderr; an output that is an input is refused).
// docs/evaluation.md defines the metrics.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "openrm/error.h"
#include "openrm/eval/compare.h"
#include "openrm/eval/evaluate.h"
#include "openrm/eval/report.h"
#include "openrm/eval/rewardbench.h"
#include "openrm/io/file.h"
#include "openrm/runtime.h"
#include "openrm/score/scorer.h"
#include "openrm/tokenizer/chat_format.h"
#include "openrm/train/reward_report.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-eval";
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// An integer option of at least `min`, in plain words (CLI11's own range
// checks print the largest double).
CLI::Validator at_least(long long min) { return openrm::tools::integer_at_least(min); }

struct EvalCommand {
  std::vector<std::string> models;
  std::vector<std::string> data;
  std::string json;
  std::string rewards;
  std::string report;
  bool update_card = false;
  std::string rewardbench = "auto";
  double ensemble_k = 1.0;
  int worst_pairs = 10;
  std::string tokenizer;
  std::string chat_format;
  std::optional<std::int64_t> max_length;  // unset: the folder's (openrm.json), else 2048
  std::string truncation;                  // "": the folder's (openrm.json), else truncate
  std::int64_t max_tokens = openrm::EvalOptions{}.max_tokens;
  bool no_prefix_sharing = false;
  int threads = 0;
  bool skip_invalid = false;
  std::optional<std::int64_t> reward_label;
  std::vector<double> reward_weights;
};

// A message list as readable text for the report: one "role: content"
// paragraph per message.
std::string conversation_text(const openrm::Conversation& conversation) {
  std::string text;
  for (const auto& m : conversation) {
    if (!text.empty()) text += "\n\n";
    text += m.role + ": " + m.content;
  }
  return text;
}

// What the report, the comparison and the rewards file see of one pair,
// the same for every model: ordinary pairs, RewardBench v1 examples, or one
// (correct, incorrect) combination of a RewardBench v2 example.
struct PairInfo {
  std::string id;
  bool id_is_number = false;
  std::int64_t line = 0;
  std::string group;  // subset, else the data file when there are several
  std::string prompt_text, chosen_text, rejected_text;
};

// One model's evaluation.
struct ModelRun {
  std::string dir;
  openrm::EvalResult result;                              // pair metrics (and read/truncation counts)
  std::vector<float> chosen, rejected;                    // per PairInfo (NaN: dropped)
  std::vector<std::int64_t> chosen_length, rejected_length;  // per PairInfo (-1: unknown)
  std::vector<char> scored;  // per PairInfo: 0 when truncation dropped it for this model
  std::optional<openrm::RewardBenchScores> rewardbench;
  nlohmann::ordered_json json;
};

openrm::EvalOptions eval_options(const EvalCommand& cmd) {
  openrm::EvalOptions options;
  options.tokenizer = cmd.tokenizer;
  if (!cmd.chat_format.empty()) options.chat_format = openrm::chat_format_from_name(cmd.chat_format);
  options.max_length = cmd.max_length;
  if (!cmd.truncation.empty()) options.truncation = openrm::truncation_policy_from_name(cmd.truncation);
  options.threads = cmd.threads;
  options.max_tokens = cmd.max_tokens;
  options.share_prefixes = !cmd.no_prefix_sharing;
  options.keep_rewards = true;
  options.reward_label = cmd.reward_label;
  options.reward_weights = cmd.reward_weights;
  options.validate();
  return options;
}

openrm::ScoreOptions score_options(const openrm::EvalOptions& e) {
  openrm::ScoreOptions s;
  s.threads = e.threads;
  s.max_tokens = e.max_tokens;
  s.share_prefixes = e.share_prefixes;
  s.max_length = e.max_length;
  s.truncation = e.truncation;
  s.chat_format = e.chat_format;
  s.tokenizer = e.tokenizer;
  s.reward_label = e.reward_label;
  s.reward_weights = e.reward_weights;
  s.validate();
  return s;
}

// Ordinary pairs (and RewardBench v1, whose records are plain pairs with a
// subset): evaluate_files for each model, rewards aligned by input index.
void evaluate_pairs(const EvalCommand& cmd, const openrm::EvalOptions& base, const openrm::ReadOptions& read,
                    std::vector<ModelRun>& runs, std::vector<PairInfo>& infos) {
  for (std::size_t m = 0; m < cmd.models.size(); ++m) {
    openrm::EvalOptions options = base;
    options.keep_pairs = m == 0;  // the texts, once
    ModelRun& run = runs[m];
    run.result = openrm::evaluate_files(cmd.models[m], cmd.data, options, read);
    if (m == 0) {
      const auto& pairs = run.result.pairs;
      infos.resize(pairs.size());
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        const openrm::PreferencePair& p = pairs[i];
        PairInfo& info = infos[i];
        info.id = p.id;
        info.id_is_number = p.id_is_number;
        info.line = p.line;
        info.group = p.subset;
        info.prompt_text = conversation_text(p.prompt);
        info.chosen_text = conversation_text(p.chosen);
        info.rejected_text = conversation_text(p.rejected);
      }
      // Pairs without a subset are grouped by their file when there are several.
      if (cmd.data.size() > 1) {
        for (const auto& r : run.result.rewards) {
          PairInfo& info = infos[static_cast<std::size_t>(r.source_index)];
          if (info.group.empty()) info.group = cmd.data[static_cast<std::size_t>(r.source)];
        }
      }
      run.result.pairs.clear();
      run.result.pairs.shrink_to_fit();
    } else if (run.result.read.pairs != runs[0].result.read.pairs) {
      throw openrm::Error(cmd.models[m] + " read " + std::to_string(run.result.read.pairs) + " pairs from " +
                          run.result.data_path + " but " + cmd.models[0] + " read " +
                          std::to_string(runs[0].result.read.pairs) + ": the data changed during the run");
    }
    run.chosen.assign(infos.size(), kNaN);
    run.rejected.assign(infos.size(), kNaN);
    run.chosen_length.assign(infos.size(), -1);
    run.rejected_length.assign(infos.size(), -1);
    run.scored.assign(infos.size(), 0);
    for (const auto& r : run.result.rewards) {
      const auto i = static_cast<std::size_t>(r.source_index);
      run.scored[i] = 1;
      run.chosen[i] = r.chosen;
      run.rejected[i] = r.rejected;
      run.chosen_length[i] = r.chosen_length;
      run.rejected_length[i] = r.rejected_length;
    }
  }
}

// RewardBench (v1: one correct and one incorrect completion; v2: lists of
// them): every completion rendered in the model's chat format, as rewardbench
// applies the tokenizer's chat template, and scored once through a Scorer.
// For the pair metrics, the report and the comparison, each (correct,
// incorrect) combination of an example is a pair; its lengths are the
// rendered sequences' tokens, capped at max_length.
void evaluate_rewardbench_file(const EvalCommand& cmd, const openrm::EvalOptions& options,
                             const openrm::RewardBenchData& data, std::vector<ModelRun>& runs,
                             std::vector<PairInfo>& infos) {
  const openrm::ScoreOptions so = score_options(options);
  for (std::size_t m = 0; m < cmd.models.size(); ++m) {
    ModelRun& run = runs[m];
    openrm::Scorer scorer = openrm::Scorer::from_folder(cmd.models[m], so);
    run.rewardbench = openrm::evaluate_rewardbench(scorer, data);
    const openrm::RewardBenchScores& rb = *run.rewardbench;
    const std::int64_t cap = rb.max_length > 0 ? rb.max_length : std::numeric_limits<std::int64_t>::max();
    const auto length = [&](const openrm::Conversation& c) {
      const auto n = static_cast<std::int64_t>(openrm::encode_chat(*scorer.tokenizer(), scorer.chat_format(), c).size());
      return std::min(n, cap);
    };
    std::vector<openrm::ScoredPair> scored;
    for (std::size_t e = 0; e < data.examples.size(); ++e) {
      const auto& ex = data.examples[e];
      std::vector<std::int64_t> chosen_len, rejected_len;
      for (const auto& c : ex.chosen) chosen_len.push_back(length(c));
      for (const auto& r : ex.rejected) rejected_len.push_back(length(r));
      for (std::size_t c = 0; c < ex.chosen.size(); ++c) {
        for (std::size_t r = 0; r < ex.rejected.size(); ++r) {
          if (m == 0) {
            PairInfo info;
            info.id = ex.id;
            info.id_is_number = ex.id_is_number;
            info.line = ex.line;
            info.group = ex.subset;
            info.prompt_text = conversation_text(ex.prompt);
            // The response alone: each completion is the prompt plus it.
            const auto response = [&](const openrm::Conversation& c) {
              return conversation_text(openrm::Conversation(
                  c.begin() + static_cast<std::ptrdiff_t>(std::min(ex.prompt.size(), c.size())), c.end()));
            };
            const auto numbered = [](const char* what, std::size_t i, std::size_t n) {
              return n > 1 ? std::string(what) + " completion " + std::to_string(i + 1) + " of " + std::to_string(n) +
                                 "\n\n"
                           : std::string();
            };
            info.chosen_text = numbered("correct", c, ex.chosen.size()) + response(ex.chosen[c]);
            info.rejected_text = numbered("incorrect", r, ex.rejected.size()) + response(ex.rejected[r]);
            infos.push_back(std::move(info));
          }
          const float cr = rb.chosen_rewards[e][c], rr = rb.rejected_rewards[e][r];
          run.chosen.push_back(cr);
          run.rejected.push_back(rr);
          run.chosen_length.push_back(chosen_len[c]);
          run.rejected_length.push_back(rejected_len[r]);
          openrm::ScoredPair s;
          s.chosen = cr;
          s.rejected = rr;
          s.chosen_length = chosen_len[c];
          s.rejected_length = rejected_len[r];
          scored.push_back(s);
        }
      }
    }
    run.scored.assign(run.chosen.size(), 1);  // a dropped completion is NaN, and counts as wrong
    openrm::EvalResult& result = run.result;
    result.metrics = openrm::compute_preference_metrics(scored, options.calibration_bins);
    result.model_dir = cmd.models[m];
    result.data_path = data.path;
    result.data_paths = {data.path};
    result.chat_format = rb.chat_format;
    result.tokenize.max_length = rb.max_length;
    result.tokenize.policy = rb.truncation;
    result.truncation = rb.stats.truncation;
    result.batches = rb.stats.batches;
    result.seconds = rb.seconds;
    result.read.lines = data.lines;
    result.read.records = static_cast<std::int64_t>(data.examples.size());
    result.read.pairs = static_cast<std::int64_t>(scored.size());
    result.reward_label = options.reward_label;
    result.reward_weights = options.reward_weights;
  }
}

std::string today_utc() {
  const std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

openrm::ReportInputs report_inputs(const EvalCommand& cmd, const ModelRun& run, const std::vector<PairInfo>& infos) {
  openrm::ReportInputs in;
  in.model = run.dir;
  in.data = run.result.data_path;
  in.date = today_utc();
  in.metrics = run.result.metrics;
  in.length_kind = run.result.length_kind;
  in.read = run.result.read;
  in.truncation = run.result.truncation;
  in.worst_pairs = cmd.worst_pairs;
  in.pairs.reserve(infos.size());
  for (std::size_t i = 0; i < infos.size(); ++i) {
    if (!run.scored[i]) continue;  // dropped by truncation: not in the metrics either
    openrm::ReportPair p;
    p.chosen = run.chosen[i];
    p.rejected = run.rejected[i];
    p.chosen_length = run.chosen_length[i];
    p.rejected_length = run.rejected_length[i];
    p.group = infos[i].group;
    p.id = infos[i].id;
    p.line = infos[i].line;
    p.prompt_text = infos[i].prompt_text;
    p.chosen_text = infos[i].chosen_text;
    p.rejected_text = infos[i].rejected_text;
    in.pairs.push_back(std::move(p));
  }
  // A folder openrm-train wrote has its training curves.
  const std::string metrics = openrm::join_path(run.dir, "metrics.jsonl");
  if (openrm::path_exists(metrics)) in.curves = openrm::read_training_curves(metrics, true);
  return in;
}

std::string score_text(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// The RewardBench scores as report tables: sections, then subsets.
void add_rewardbench_tables(const openrm::RewardBenchScores& rb, std::vector<openrm::ReportTable>& tables) {
  openrm::ReportTable sections;
  sections.title = "RewardBench " + openrm::rewardbench_version_name(rb.version) + ": overall " +
                   score_text(rb.overall) + (rb.complete ? "" : " (incomplete: some subsets are missing)");
  sections.header = {"section", "score", "weight in overall", "subsets present", "subsets missing"};
  for (const auto& s : rb.sections) {
    sections.rows.push_back({s.name, score_text(s.score), score_text(s.weight), std::to_string(s.present.size()),
                             std::to_string(s.missing.size())});
  }
  for (const auto& n : rb.notes) sections.note += (sections.note.empty() ? "" : " ") + n;
  tables.push_back(std::move(sections));
  openrm::ReportTable subsets;
  subsets.title = "RewardBench subsets";
  subsets.header = {"subset", "section", "examples", "score", "ties", "NaN"};
  for (const auto& s : rb.subsets) {
    subsets.rows.push_back({s.name, s.section, std::to_string(s.examples), score_text(s.score),
                            std::to_string(s.ties), std::to_string(s.nan_examples)});
  }
  tables.push_back(std::move(subsets));
}

void add_comparison_tables(const openrm::ModelComparison& c, std::vector<openrm::ReportTable>& tables) {
  openrm::ReportTable models;
  models.title = "Models compared on " + std::to_string(c.compared_pairs) + " pairs";
  models.header = {"model", "accuracy", "ties"};
  for (const auto& m : c.models) models.rows.push_back({m.name, score_text(m.accuracy), std::to_string(m.ties)});
  for (const auto& e : c.ensembles) {
    models.rows.push_back({"ensemble " + openrm::ensemble_rule_name(e.rule) +
                               (e.rule == openrm::EnsembleRule::kMeanMinusKStd ? " (k " + score_text(e.k) + ")" : ""),
                           score_text(e.accuracy), std::to_string(e.ties)});
  }
  models.note = std::to_string(c.split_pairs) + " pairs (" + score_text(c.split_rate) +
                ") split the models on which side wins; mean std of the normalised margins " +
                score_text(c.mean_margin_std) + ".";
  if (c.excluded_pairs > 0) {
    models.note += " " + std::to_string(c.excluded_pairs) + " pairs without a finite reward from every model were left out.";
  }
  tables.push_back(std::move(models));
  openrm::ReportTable agreement;
  agreement.title = "Agreement between models";
  agreement.header = {"model A", "model B", "same preferred side", "Kendall tau-b", "Spearman rho"};
  for (std::size_t a = 0; a < c.models.size(); ++a) {
    for (std::size_t b = a + 1; b < c.models.size(); ++b) {
      agreement.rows.push_back({c.models[a].name, c.models[b].name, score_text(c.preference_agreement[a][b]),
                                score_text(c.reward_kendall_tau_b[a][b]), score_text(c.reward_spearman_rho[a][b])});
    }
  }
  tables.push_back(std::move(agreement));
}

std::string rewards_line(const PairInfo& info, std::size_t index, const ModelRun& run, bool with_model) {
  nlohmann::ordered_json j;
  if (with_model) j["model"] = run.dir;
  j["index"] = index;
  j["line"] = info.line;
  if (info.id_is_number) {
    j["id"] = nlohmann::ordered_json::parse(info.id);
  } else {
    j["id"] = info.id;
  }
  if (!info.group.empty()) j["subset"] = info.group;
  auto value = [](float v) { return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr); };
  j["chosen"] = value(run.chosen[index]);
  j["rejected"] = value(run.rejected[index]);
  j["margin"] = value(run.chosen[index] - run.rejected[index]);
  j["chosen_length"] = run.chosen_length[index];
  j["rejected_length"] = run.rejected_length[index];
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void run_eval(EvalCommand& cmd) {
  const openrm::EvalOptions options = eval_options(cmd);
  openrm::ReadOptions read;
  read.skip_invalid = cmd.skip_invalid;
  if (!(cmd.ensemble_k >= 0) || !std::isfinite(cmd.ensemble_k)) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", cmd.ensemble_k);
    throw openrm::Error(std::string("--ensemble-k must be a finite number >= 0, got ") + text);
  }
  if (cmd.worst_pairs < 0 || cmd.worst_pairs > 1000) {
    throw openrm::Error("--worst-pairs must be in [0, 1000], got " + std::to_string(cmd.worst_pairs));
  }
  for (std::size_t i = 0; i < cmd.models.size(); ++i) {
    for (std::size_t j = i + 1; j < cmd.models.size(); ++j) {
      if (cmd.models[i] == cmd.models[j]) throw openrm::Error("--model " + cmd.models[i] + " is given twice");
    }
  }

  openrm::tools::warn_if_too_many_threads(kTool, cmd.threads);
  for (const auto& d : cmd.data) {
    if (openrm::is_directory(d)) throw openrm::Error(d + ": is a directory, not a file");
    if (cmd.update_card && d == "-") {
      throw openrm::Error("--update-card records the data file's sha256, which standard input has none of: give a file");
    }
    if (cmd.data.size() > 1 && d == "-") throw openrm::Error("--data -: standard input can be the only data file");
  }
  // RewardBench: one file, detected from its first record unless told.
  std::optional<openrm::RewardBenchData> rewardbench;
  if (cmd.rewardbench != "off") {
    const bool asked = cmd.rewardbench != "auto";
    if (asked && (cmd.data.size() != 1 || cmd.data[0] == "-")) {
      throw openrm::Error("--rewardbench " + cmd.rewardbench + " scores one RewardBench file given by path");
    }
    if (cmd.data.size() == 1 && cmd.data[0] != "-" && (asked || openrm::is_rewardbench_file(cmd.data[0]))) {
      rewardbench = openrm::read_rewardbench(cmd.data[0], openrm::rewardbench_version_from_name(cmd.rewardbench));
      if (cmd.skip_invalid) throw openrm::Error("--skip-invalid cannot be used with a RewardBench file");
    }
  }
  // Open the outputs first, so that an output that is an input (the data, a
  // file of a model folder) or an unwritable path fails before the work,
  // and an interrupted run leaves no half-written file.
  std::vector<std::string> inputs = cmd.data;
  inputs.insert(inputs.end(), cmd.models.begin(), cmd.models.end());
  inputs.push_back(cmd.tokenizer);
  openrm::check_output_files({cmd.json, cmd.rewards, cmd.report}, inputs);
  if (cmd.report == "-") throw openrm::Error("--report -: the report is a file; give its path");
  std::unique_ptr<openrm::OutputFile> json_out, rewards_out;
  if (!cmd.json.empty()) json_out = std::make_unique<openrm::OutputFile>(cmd.json);
  if (!cmd.rewards.empty()) rewards_out = std::make_unique<openrm::OutputFile>(cmd.rewards);
  if (json_out && rewards_out && json_out->is_stdout() && rewards_out->is_stdout()) {
    throw openrm::Error("--json - and --rewards -: only one output can go to standard output");
  }
  // With an output on stdout, the table goes to stderr.
  const bool to_stdout = (json_out && json_out->is_stdout()) || (rewards_out && rewards_out->is_stdout());
  std::ostream& out = to_stdout ? std::cerr : std::cout;

  openrm::set_num_threads(cmd.threads);
  openrm::warn_if_reference_blas();
  std::vector<ModelRun> runs(cmd.models.size());
  for (std::size_t m = 0; m < runs.size(); ++m) runs[m].dir = cmd.models[m];
  std::vector<PairInfo> infos;
  if (rewardbench) {
    evaluate_rewardbench_file(cmd, options, *rewardbench, runs, infos);
  } else {
    evaluate_pairs(cmd, options, read, runs, infos);
  }

  std::optional<openrm::ModelComparison> comparison;
  if (runs.size() > 1) {
    std::vector<std::string> names;
    std::vector<std::vector<double>> chosen, rejected;
    for (const auto& run : runs) {
      names.push_back(run.dir);
      chosen.emplace_back(run.chosen.begin(), run.chosen.end());
      rejected.emplace_back(run.rejected.begin(), run.rejected.end());
    }
    comparison = openrm::compare_models(names, chosen, rejected, cmd.ensemble_k);
  }

  // Each model's numbers: the table, its JSON object, its report's numbers.
  std::vector<openrm::ReportInputs> reports;
  for (auto& run : runs) {
    out << kTool << ": " << (runs.size() > 1 ? run.dir + ": " : "") << "evaluated " << run.result.metrics.pairs
        << " pairs\n"
        << openrm::format_eval_result(run.result);
    openrm::ReportInputs in = report_inputs(cmd, run, infos);
    const openrm::ReportData data = openrm::compute_report_data(in);
    if (!data.groups.empty()) {
      out << "\n  accuracy per " << (rewardbench ? "subset" : "subset or file") << "\n";
      for (const auto& g : data.groups) {
        out << "  " << (g.name.empty() ? "(none)" : g.name) << ": " << score_text(g.accuracy) << " of " << g.pairs
            << " pairs\n";
      }
    }
    run.json = openrm::eval_result_json(run.result);
    if (run.rewardbench) {
      out << "\n" << openrm::format_rewardbench(*run.rewardbench);
      run.json["rewardbench"] = openrm::rewardbench_json(*run.rewardbench);
      add_rewardbench_tables(*run.rewardbench, in.tables);
    }
    run.json["report"] = openrm::report_data_json(data);
    reports.push_back(std::move(in));
    out << "\n";
  }
  std::vector<openrm::ReportTable> shared;
  if (comparison) {
    out << openrm::format_comparison(*comparison);
    add_comparison_tables(*comparison, shared);
  }

  if (json_out) {
    nlohmann::ordered_json j;
    if (runs.size() == 1) {
      j = std::move(runs[0].json);
    } else {
      j["models"] = nlohmann::ordered_json::array();
      for (auto& run : runs) j["models"].push_back(std::move(run.json));
      j["comparison"] = openrm::comparison_json(*comparison);
    }
    j["schema_version"] = 1;
    json_out->write(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    json_out->commit();
    if (!json_out->is_stdout()) out << kTool << ": wrote " << cmd.json << "\n";
  }
  if (rewards_out) {
    std::string text;
    for (const auto& run : runs) {
      for (std::size_t i = 0; i < infos.size(); ++i) {
        if (run.scored[i]) text += rewards_line(infos[i], i, run, runs.size() > 1);
      }
    }
    rewards_out->write(text);
    rewards_out->commit();
    if (!rewards_out->is_stdout()) {
      out << kTool << ": wrote " << cmd.rewards << " (" << infos.size() << " pairs"
          << (runs.size() > 1 ? " for each of " + std::to_string(runs.size()) + " models" : "") << ")\n";
    }
  }
  if (!cmd.report.empty()) {
    openrm::write_html_report(cmd.report, reports, shared);
    out << kTool << ": wrote " << cmd.report << "\n";
  }
  if (cmd.update_card) {
    std::string paths, hashes;
    for (const auto& d : cmd.data) {
      paths += (paths.empty() ? "" : ", ") + d;
      hashes += (hashes.empty() ? "" : ", ") + openrm::sha256_file(d);
    }
    for (const auto& run : runs) {
      openrm::CardEvaluation e;
      e.data_path = paths;
      e.data_sha256 = hashes;
      e.pairs = run.result.metrics.pairs;
      e.metrics = run.json.is_null() ? openrm::eval_result_json(run.result) : run.json;
      if (e.metrics.contains("report")) e.metrics.erase("report");
      e.tool_version = kTool;
      openrm::append_evaluation_to_card(run.dir, e);
      out << kTool << ": appended the evaluation to " << openrm::join_path(run.dir, "README.md") << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  EvalCommand cmd;
  CLI::App app{"Evaluate reward models on held-out preference pairs or RewardBench, compare them, and report."};
  app.add_option("--model", cmd.models,
                 "reward model folder (config.json, model.safetensors, tokenizer); give it again to compare "
                 "several models on the same pairs")
      ->required();
  app.add_option("--data", cmd.data,
                 "preference pairs: .jsonl or .jsonl.gz (- for stdin), or a RewardBench v1/v2 file; give it "
                 "again to evaluate several files together (accuracy per file)")
      ->required();
  app.add_option("--json", cmd.json, "write every number as JSON to this file (- for stdout; docs/eval-json.md)");
  app.add_option("--rewards", cmd.rewards, "write each pair's rewards as JSON Lines to this file (- for stdout)");
  app.add_option("--report", cmd.report, "write a self-contained HTML report with plots to this file");
  app.add_flag("--update-card", cmd.update_card,
               "append this evaluation (date, data sha256, numbers) to each model folder's README.md and "
               "evaluations.jsonl");
  app.add_option("--rewardbench", cmd.rewardbench,
                 "score the data as RewardBench: auto (when its first record looks like one), v1, v2 or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "v1", "v2", "off"}));
  app.add_option("--ensemble-k", cmd.ensemble_k,
                 "with several models: the k of the mean - k*std ensemble of normalised rewards")
      ->capture_default_str();
  app.add_option("--worst-pairs", cmd.worst_pairs, "most confidently wrong pairs the report lists")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_option("--tokenizer", cmd.tokenizer,
                 "tokenizer folder, tokenizer.json or .model file (default: the model folder's)");
  app.add_option("--chat-format", cmd.chat_format,
                 "chat format to render pairs with (default: the folder's; see docs/chat-formats.md)")
      ->check(CLI::IsMember(openrm::chat_format_names()));
  app.add_option("--max-length", cmd.max_length,
                 "longest sequence in tokens (default: the length the model was trained with, openrm.json, else "
                 "2048; 0: as long as the model takes; never above max_position_embeddings)")
      ->check(at_least(0));
  app.add_option("--truncation", cmd.truncation,
                 "truncate or drop pairs over --max-length (default: the folder's, openrm.json, else truncate)")
      ->check(CLI::IsMember({"truncate", "drop"}));
  app.add_option("--max-tokens", cmd.max_tokens, "token budget of one forward pass, in real tokens")
      ->capture_default_str()
      ->check(at_least(1));
  app.add_flag("--no-prefix-sharing", cmd.no_prefix_sharing,
               "score each side of a pair whole (default on CPU: the prompt both sides share is computed once)");
  app.add_option("--threads", cmd.threads, "CPU threads for scoring and tokenizing (0: all)")
      ->capture_default_str()
      ->check(at_least(0));
  app.add_flag("--skip-invalid", cmd.skip_invalid, "skip and count invalid records instead of stopping");
  app.add_option("--reward-label", cmd.reward_label,
                 "for a model with several outputs (num_labels > 1): the output that is the reward (0-based)")
      ->check(at_least(0));
  app.add_option("--reward-weights", cmd.reward_weights,
                 "for a model with several outputs: the reward is the weighted sum of the outputs (w0,w1,...)")
      ->delimiter(',')
      ->excludes("--reward-label");

  openrm::tools::group_options(
      app, {{"Input", {"--data", "--skip-invalid", "--rewardbench"}},
            {"Model", {"--model", "--tokenizer", "--chat-format", "--reward-label", "--reward-weights",
                       "--max-length", "--truncation"}},
            {"Output", {"--json", "--rewards", "--report", "--update-card", "--worst-pairs", "--ensemble-k"}},
            {"Performance", {"--max-tokens", "--no-prefix-sharing", "--threads"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] { run_eval(cmd); });
}
