// openrm-eval: evaluates a reward model folder on held-out preference pairs
// (accuracy, margin, Bradley-Terry loss, calibration, length bias).
//
//   openrm-eval --model DIR --data FILE [--json OUT] [--rewards OUT.jsonl]
//               [--tokenizer PATH] [--chat-format NAME] [--max-length N]
//               [--truncation truncate|drop] [--max-tokens N] [--threads N]
//               [--reward-label N | --reward-weights w0,w1,...] [--skip-invalid]
//
// Prints a table; --json writes the metrics as JSON and --rewards one line of
// rewards per pair, both atomically ("-": stdout, and the table goes to
// stderr; an output that is an input is refused). docs/evaluation.md defines
// the metrics.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "openrm/error.h"
#include "openrm/eval/evaluate.h"
#include "openrm/io/file.h"
#include "openrm/runtime.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-eval";

// An integer option of at least `min`, in plain words (CLI11's own range
// checks print the largest double).
CLI::Validator at_least(long long min) { return openrm::tools::integer_at_least(min); }

struct EvalCommand {
  std::string model;
  std::string data;
  std::string json;
  std::string rewards;
  std::string tokenizer;
  std::string chat_format;
  std::optional<std::int64_t> max_length;  // unset: the folder's (openrm.json), else 2048
  std::string truncation;                  // "": the folder's (openrm.json), else truncate
  std::int64_t max_tokens = openrm::EvalOptions{}.max_tokens;
  int threads = 0;
  bool skip_invalid = false;
  std::optional<std::int64_t> reward_label;
  std::vector<double> reward_weights;
};

void run_eval(const EvalCommand& cmd) {
  openrm::EvalOptions options;
  options.tokenizer = cmd.tokenizer;
  if (!cmd.chat_format.empty()) options.chat_format = openrm::chat_format_from_name(cmd.chat_format);
  options.max_length = cmd.max_length;
  if (!cmd.truncation.empty()) options.truncation = openrm::truncation_policy_from_name(cmd.truncation);
  options.threads = cmd.threads;
  options.max_tokens = cmd.max_tokens;
  options.keep_rewards = !cmd.rewards.empty();
  options.reward_label = cmd.reward_label;
  options.reward_weights = cmd.reward_weights;
  options.validate();
  openrm::ReadOptions read;
  read.skip_invalid = cmd.skip_invalid;

  openrm::tools::warn_if_too_many_threads(kTool, cmd.threads);
  if (openrm::is_directory(cmd.data)) throw openrm::Error(cmd.data + ": is a directory, not a file");
  // Open the outputs first, so that an output that is an input (the data, a
  // file of the model folder) or an unwritable path fails before the work,
  // and an interrupted run leaves no half-written file.
  openrm::check_output_files({cmd.json, cmd.rewards}, {cmd.data, cmd.model, cmd.tokenizer});
  std::unique_ptr<openrm::OutputFile> json_out, rewards_out;
  if (!cmd.json.empty()) json_out = std::make_unique<openrm::OutputFile>(cmd.json);
  if (!cmd.rewards.empty()) rewards_out = std::make_unique<openrm::OutputFile>(cmd.rewards);
  // With an output on stdout, the table goes to stderr.
  const bool to_stdout = (json_out && json_out->is_stdout()) || (rewards_out && rewards_out->is_stdout());
  std::ostream& report = to_stdout ? std::cerr : std::cout;

  openrm::set_num_threads(cmd.threads);
  openrm::warn_if_reference_blas();
  const openrm::EvalResult result = openrm::evaluate_file(cmd.model, cmd.data, options, read);

  report << kTool << ": evaluated " << result.metrics.pairs << " pairs\n" << openrm::format_eval_result(result);
  if (json_out) {
    json_out->write(openrm::eval_result_json(result).dump(2) + "\n");
    json_out->commit();
    if (!json_out->is_stdout()) report << kTool << ": wrote " << cmd.json << "\n";
  }
  if (rewards_out) {
    rewards_out->write(openrm::pair_rewards_jsonl(result));
    rewards_out->commit();
    if (!rewards_out->is_stdout()) {
      report << kTool << ": wrote " << cmd.rewards << " (" << result.rewards.size() << " pairs)\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  EvalCommand cmd;
  CLI::App app{"Evaluate a reward model on held-out preference pairs."};
  app.add_option("--model", cmd.model, "reward model folder (config.json, model.safetensors, tokenizer)")
      ->required();
  app.add_option("--data", cmd.data, "preference pairs: .jsonl or .jsonl.gz (- for stdin)")->required();
  app.add_option("--json", cmd.json, "write the metrics as JSON to this file (- for stdout)");
  app.add_option("--rewards", cmd.rewards, "write each pair's rewards as JSON Lines to this file (- for stdout)");
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

  openrm::tools::group_options(app, {{"Input", {"--data", "--skip-invalid"}},
                                     {"Model", {"--model", "--tokenizer", "--chat-format", "--reward-label",
                                                "--reward-weights", "--max-length", "--truncation"}},
                                     {"Output", {"--json", "--rewards"}},
                                     {"Performance", {"--max-tokens", "--threads"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] { run_eval(cmd); });
}
