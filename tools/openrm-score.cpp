// openrm-score: rewards for every record (or pair) of a JSONL file.
//
//   openrm-score --model DIR --input FILE --output FILE [--device cpu|cuda[:N]]
//                [--dtype auto|fp32|bf16|fp16] [--threads N] [--max-tokens N]
//                [--max-length N] [--truncation truncate|drop] [--normalize]
//                [--tokenizer PATH] [--chat-format NAME] [--kind auto|records|pairs]
//                [--skip-invalid] [--chunk-records N] [--share-prefixes true|false]
//
// Input and output may be "-" (stdin, stdout). The output is written to a
// temporary file and renamed at the end, so an existing file is replaced
// whole or not at all; a device or FIFO is written in place, and an output
// that is an input is refused (docs/formats.md, "Output paths").
// docs/scoring.md describes the formats.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>
#include <memory>
#include <string>

#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/runtime.h"
#include "openrm/score/scorer.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-score";

struct ScoreCommand {
  std::string model;
  std::string input;
  std::string output;
  std::string kind = "auto";
  std::string truncation;  // "": the folder's (openrm.json), else truncate
  std::string chat_format;
  std::string pooling;
  bool skip_invalid = false;
  bool allow_non_finite = false;
  std::int64_t chunk_records = openrm::ScoreFileOptions{}.chunk_records;
  double merge_timeout_s = 86400;
  openrm::ScoreOptions options;
};

// torchrun-style scale-out: RANK and WORLD_SIZE (LOCAL_RANK and
// LOCAL_WORLD_SIZE for the device and threads); no WORLD_SIZE, or 1: one
// process.
struct Shard {
  std::int64_t rank = 0, count = 1, local_rank = 0, local_count = 1;
};

std::int64_t env_integer(const char* name, std::int64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value < 0) throw openrm::Error(std::string("environment variable ") + name + "='" + text + "': expected a non-negative integer");
  return value;
}

Shard shard_from_environment() {
  Shard s;
  s.count = env_integer("WORLD_SIZE", 1);
  if (s.count <= 1) return Shard{};
  s.rank = env_integer("RANK", -1);
  if (s.rank < 0 || s.rank >= s.count) {
    throw openrm::Error("WORLD_SIZE is " + std::to_string(s.count) + " but RANK is " +
                        (std::getenv("RANK") ? std::string(std::getenv("RANK")) : std::string("unset")) +
                        ": run each process with RANK in [0, WORLD_SIZE) (torchrun sets both)");
  }
  s.local_rank = env_integer("LOCAL_RANK", s.rank);
  s.local_count = env_integer("LOCAL_WORLD_SIZE", s.count);
  return s;
}

std::string part_path(const std::string& output, const Shard& s, std::int64_t rank) {
  return output + ".part-" + std::to_string(rank) + "-of-" + std::to_string(s.count);
}

// Rank 0: waits for every other rank's part (written whole, by rename, when
// that rank is done), newer than this run's start less five minutes.
std::vector<std::string> wait_for_parts(const std::string& output, const Shard& s, double timeout_s,
                                        std::chrono::system_clock::time_point started) {
  namespace fs = std::filesystem;
  const auto oldest = started - std::chrono::minutes(5);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::vector<std::string> parts;
  for (std::int64_t r = 0; r < s.count; ++r) parts.push_back(part_path(output, s, r));
  for (;;) {
    std::vector<std::string> missing;
    for (const auto& p : parts) {
      std::error_code ec;
      const auto mtime = fs::last_write_time(p, ec);
      const bool fresh = !ec && std::chrono::system_clock::now() - (fs::file_time_type::clock::now() - mtime) >= oldest;
      if (!fresh) missing.push_back(p);
    }
    if (missing.empty()) return parts;
    if (std::chrono::steady_clock::now() > deadline) {
      std::string list;
      for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
      throw openrm::Error("rank 0: the other ranks' parts did not appear within " + std::to_string(int(timeout_s)) +
                          " s (--merge-timeout): " + list + "; a rank failed, or they run on other machines "
                          "without a shared filesystem");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void run_score(ScoreCommand& cmd) {
  const auto started = std::chrono::system_clock::now();
  const Shard shard = shard_from_environment();
  if (shard.count > 1) {
    if (cmd.output == "-") {
      throw openrm::Error("--output -: under WORLD_SIZE " + std::to_string(shard.count) +
                          " each process writes a part next to the output file, which rank 0 merges: give a file");
    }
    if (cmd.options.device == "cuda") cmd.options.device = "cuda:" + std::to_string(shard.local_rank);
    if (cmd.options.threads == 0 && cmd.options.device == "cpu" && shard.local_count > 1) {
      const auto hw = static_cast<std::int64_t>(std::max(1u, std::thread::hardware_concurrency()));
      cmd.options.threads = static_cast<int>(std::max<std::int64_t>(1, hw / shard.local_count));
    }
    std::fprintf(stderr, "%s: rank %lld of %lld (local rank %lld): scoring every %lld-th record from %lld on %s\n",
                 kTool, static_cast<long long>(shard.rank), static_cast<long long>(shard.count),
                 static_cast<long long>(shard.local_rank), static_cast<long long>(shard.count),
                 static_cast<long long>(shard.rank), cmd.options.device.c_str());
  }
  openrm::ScoreOptions& options = cmd.options;
  if (!cmd.truncation.empty()) options.truncation = openrm::truncation_policy_from_name(cmd.truncation);
  if (!cmd.chat_format.empty()) options.chat_format = openrm::chat_format_from_name(cmd.chat_format);
  if (!cmd.pooling.empty()) options.pooling = openrm::parse_pooling(cmd.pooling);
  options.validate();

  openrm::tools::warn_if_too_many_threads(kTool, options.threads);
  openrm::check_device(options.device);
  if (cmd.input != "-" && !openrm::path_exists(cmd.input)) throw openrm::Error(cmd.input + ": no such file");
  if (openrm::is_directory(cmd.input)) throw openrm::Error(cmd.input + ": is a directory, not a file");
  // The output must not be an input (a file of the model folder included);
  // it is opened before the model is loaded, so an unwritable path fails at
  // once, and an interrupted run leaves any existing file untouched.
  openrm::check_output_files({cmd.output}, {cmd.input, cmd.model, options.tokenizer});
  // Sharded: this rank's part, and on rank 0 the merged output too.
  const std::string target = shard.count > 1 ? part_path(cmd.output, shard, shard.rank) : cmd.output;
  std::unique_ptr<openrm::OutputFile> merged;
  if (shard.count > 1) {
    openrm::check_output_files({target}, {cmd.input, cmd.model, options.tokenizer});
    if (shard.rank == 0) merged = std::make_unique<openrm::OutputFile>(cmd.output);
  }
  openrm::OutputFile file(target);

  openrm::Scorer scorer = openrm::Scorer::from_folder(cmd.model, options);
  openrm::ScoreFileOptions file_options;
  file_options.kind = cmd.kind;
  file_options.skip_invalid = cmd.skip_invalid;
  file_options.pairs.skip_invalid = cmd.skip_invalid;
  file_options.chunk_records = cmd.chunk_records;
  file_options.shard_rank = shard.rank;
  file_options.shard_count = shard.count;
  const auto write = [&](const std::string& text) { file.write(text); };
  const openrm::ScoreFileResult result = openrm::score_file(scorer, cmd.input, write, file_options);
  file.commit();

  const openrm::ScoreStats& s = result.stats;
  std::fprintf(stderr,
               "%s: scored %lld records (%lld pairs, %lld groups) from %s in %.2f s: %lld sequences, %lld tokens, "
               "%.0f tokens/s in the model (%lld batches), %lld skipped as invalid, "
               "%lld dropped by truncation, %lld truncated\n",
               kTool, static_cast<long long>(result.records), static_cast<long long>(result.pairs),
               static_cast<long long>(result.groups),
               cmd.input.c_str(), result.seconds, static_cast<long long>(s.sequences),
               static_cast<long long>(s.tokens), s.seconds > 0 ? static_cast<double>(s.tokens) / s.seconds : 0.0,
               static_cast<long long>(s.batches),
               static_cast<long long>(result.skipped_invalid), static_cast<long long>(result.dropped),
               static_cast<long long>(s.truncation.truncated));
  if (!file.is_stdout()) std::fprintf(stderr, "%s: wrote %s\n", kTool, target.c_str());
  if (merged) {
    const auto parts = wait_for_parts(cmd.output, shard, cmd.merge_timeout_s, started);
    openrm::merge_shard_outputs(parts, [&](const std::string& text) { merged->write(text); });
    merged->commit();
    for (const auto& p : parts) std::remove(p.c_str());
    std::fprintf(stderr, "%s: merged %lld parts into %s\n", kTool, static_cast<long long>(shard.count),
                 cmd.output.c_str());
  }
  if (result.non_finite > 0) {
    const std::string what = std::to_string(result.non_finite) +
                             " record(s) got a non-finite (NaN or infinite) reward from the model; they are written "
                             "with a null reward and \"non_finite\": true";
    if (!cmd.allow_non_finite) {
      throw openrm::Error(what + " (the model or its dtype is broken; --allow-non-finite accepts this)");
    }
    std::fprintf(stderr, "%s: warning: %s (accepted: --allow-non-finite)\n", kTool, what.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  ScoreCommand cmd;
  openrm::ScoreOptions& o = cmd.options;
  CLI::App app{"Score every record or preference pair of a JSONL file with a reward model."};
  app.add_option("--model", cmd.model, "reward model folder (config.json, model.safetensors, tokenizer)")
      ->required();
  app.add_option("--input", cmd.input, "records or pairs: .jsonl or .jsonl.gz (- for stdin)")->required();
  app.add_option("--output", cmd.output, "JSONL output, one line per input record (- for stdout)")->required();
  app.add_flag("--allow-non-finite", cmd.allow_non_finite,
               "exit 0 even when some rewards are NaN or infinite (they are written as null, \"non_finite\": true)");
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", o.dtype, "auto (fp32 on CPU, bf16 on CUDA), fp32, bf16 or fp16")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "fp16"}));
  app.add_option("--threads", o.threads, "CPU threads for the model and tokenizing (0: all)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--max-tokens", o.max_tokens,
                 "token budget of one forward pass, in token rows computed (no padding; a shared prefix counts once)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--share-prefixes", o.share_prefixes,
                 "on CPU, compute the tokens that sequences begin with alike (the two sides of a pair) once; the "
                 "rewards are those of scoring each sequence alone")
      ->capture_default_str();
  app.add_flag_callback(
      "--no-prefix-sharing", [&o] { o.share_prefixes = false; },
      "score each sequence whole (the same as --share-prefixes false)");
  app.add_option("--max-length", o.max_length,
                 "longest sequence in tokens (default: the length the model was trained with, openrm.json, else "
                 "2048; 0: as long as the model takes; never above max_position_embeddings)")
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--truncation", cmd.truncation,
                 "truncate or drop records over --max-length (default: the folder's, openrm.json, else truncate)")
      ->check(CLI::IsMember({"truncate", "drop"}));
  app.add_flag("--normalize", o.normalize, "(reward - mean) / std with the mean and std stored in openrm.json");
  app.add_option("--tokenizer", o.tokenizer, "tokenizer folder, tokenizer.json or .model file (default: the model folder's)");
  app.add_option("--chat-format", cmd.chat_format, "chat format (default: the folder's; see docs/chat-formats.md)")
      ->check(CLI::IsMember(openrm::chat_format_names()));
  app.add_option("--reward-label", o.reward_label,
                 "for a model with several outputs (num_labels > 1): the output that is the reward (0-based)")
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--reward-weights", o.reward_weights,
                 "for a model with several outputs: the reward is the weighted sum of the outputs (w0,w1,...)")
      ->delimiter(',')
      ->excludes("--reward-label");
  app.add_option("--pooling", cmd.pooling, "override the folder's pooling rule")
      ->check(CLI::IsMember({"rightmost_non_pad", "last_token", "before_first_pad", "first_token", "cls", "eos"}));
  app.add_option("--kind", cmd.kind,
                 "auto (pairs have chosen/rejected, groups have responses), records (no pairs) or pairs")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "records", "pairs"}));
  app.add_flag("--skip-invalid", cmd.skip_invalid, "skip and count invalid records instead of stopping");
  app.add_option("--merge-timeout", cmd.merge_timeout_s,
                 "under torchrun (WORLD_SIZE > 1): how long rank 0 waits for the other ranks' parts, in seconds")
      ->capture_default_str();
  app.add_option("--chunk-records", cmd.chunk_records, "records read and scored at a time (bounds memory)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));

  openrm::tools::group_options(app, {{"Input", {"--input", "--kind", "--skip-invalid", "--chunk-records"}},
                                     {"Model", {"--model", "--tokenizer", "--chat-format", "--pooling", "--reward-label", "--reward-weights", "--max-length",
                                                "--truncation", "--normalize"}},
                                     {"Output", {"--output", "--allow-non-finite", "--merge-timeout"}},
                                     {"Performance", {"--device", "--dtype", "--threads", "--max-tokens",
                                                      "--share-prefixes", "--no-prefix-sharing"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] { run_score(cmd); });
}
