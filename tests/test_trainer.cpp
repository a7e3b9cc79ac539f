// The trainer end to end, on a tiny Llama (hidden 32, 2 layers) with a
// tokenizer trained here on the demo data: bit-reproducible CPU runs, resume
// after SIGKILL equal to an uninterrupted run, non-finite steps, the output
// folder, option and CLI errors, epochs and gradient accumulation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <openrm/data/batching.h>
#include <openrm/data/preference.h>
#include <openrm/data/tokenize.h>
#include <openrm/eval/evaluate.h>
#include <openrm/io/file.h>
#include <openrm/logging.h>
#include <openrm/models/model_folder.h>
#include <openrm/tokenizer/train_tokenizer.h>
#include <openrm/train/optim.h>
#include <openrm/train/distributed.h>
#include <openrm/train/trainer.h>
#include <openrm/io/safetensors.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <map>
#include "train/distributed.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <thread>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

extern char** environ;

namespace openrm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// ---- shared inputs: a tokenizer, a model config and small data files --------

struct Assets {
  test::TempDir dir;
  std::string tokenizer;  // folder
  std::string config;     // config.json of a tiny Llama with the tokenizer's vocabulary
  std::string train;      // 120 demo pairs
  std::string eval;       // 40 demo test pairs
  std::vector<PreferencePair> train_pairs;
  std::shared_ptr<const Tokenizer> tok;
};

std::string pair_line(const std::string& id, const std::string& prompt, const std::string& chosen,
                      const std::string& rejected, const Json& margin = Json()) {
  Json j = {{"id", id}, {"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}};
  if (!margin.is_null()) j["margin"] = margin;
  return j.dump() + "\n";
}

std::string pairs_jsonl(const std::vector<PreferencePair>& pairs) {
  std::string text;
  for (const auto& p : pairs) {
    text += pair_line(p.id, p.prompt.back().content, p.chosen.back().content, p.rejected.back().content);
  }
  return text;
}

const Assets& assets() {
  static const std::unique_ptr<Assets> a = [] {
    auto a = std::make_unique<Assets>();
    ReadOptions read;
    read.max_records = 300;
    const auto demo = read_preferences(std::string(OPENRM_SOURCE_DIR) + "/data/demo-prefs-train.jsonl.gz", read);
    std::vector<std::string> texts;
    for (const auto& p : demo.pairs) {
      texts.push_back(p.prompt.back().content);
      texts.push_back(p.chosen.back().content);
      texts.push_back(p.rejected.back().content);
    }
    TokenizerTrainOptions t;
    t.vocab_size = 160;
    t.byte_fallback = false;
    t.character_coverage = 1.0;
    a->tokenizer = a->dir.file("tokenizer");
    a->tok = train_tokenizer(texts, a->tokenizer, t);

    Json config = test::tiny_config("LlamaForSequenceClassification").to_json();
    config["vocab_size"] = a->tok->vocab_size();
    config.erase("pad_token_id");  // the trainer takes the tokenizer's
    a->config = a->dir.file("config.json");
    write_file_atomic(a->config, config.dump(2));

    a->train_pairs.assign(demo.pairs.begin(), demo.pairs.begin() + 120);
    a->train = a->dir.file("train.jsonl");
    test::write_bytes(a->train, pairs_jsonl(a->train_pairs));
    read.max_records = 40;
    const auto held_out = read_preferences(std::string(OPENRM_SOURCE_DIR) + "/data/demo-prefs-test.jsonl.gz", read);
    a->eval = a->dir.file("eval.jsonl");
    test::write_bytes(a->eval, pairs_jsonl(held_out.pairs));
    return a;
  }();
  return *a;
}

// 120 pairs, max_length 64, 1024-token micro-batches.
TrainOptions small_options(const std::string& output) {
  const Assets& a = assets();
  TrainOptions o;
  o.data = {a.train};
  o.init_config = a.config;
  o.tokenizer = a.tokenizer;
  o.output_dir = output;
  o.max_length = 64;
  o.max_tokens = 1024;
  o.lr = 3e-3;
  o.threads = 1;
  o.seed = 11;
  o.log_every = 1000;
  return o;
}

// The trainer's micro-batches under its prefix-sharing rule (docs/training.md):
// when some pair shares a prompt, the budget counts rows computed.
std::vector<std::vector<std::int64_t>> trainer_batches(const std::vector<TokenizedPair>& pairs,
                                                       BatchingOptions b) {
  const auto shared = shared_prefix_lengths(pairs);
  if (std::any_of(shared.begin(), shared.end(), [](std::int64_t p) { return p > 0; })) {
    b.count_padding = false;
    return make_pair_batches(pairs, b, shared);
  }
  return make_pair_batches(pairs, b);
}

// Micro-batches in an epoch of the small options, from the batching itself.
std::int64_t small_batches_per_epoch(std::int64_t max_tokens = 1024) {
  TokenizeOptions t;
  t.max_length = 64;
  const auto tokenized = tokenize_pairs(assets().train_pairs, *assets().tok, t);
  BatchingOptions b;
  b.max_tokens = max_tokens;
  b.seed = 11;
  return static_cast<std::int64_t>(trainer_batches(tokenized.pairs, b).size());
}

// The same options as openrm-train flags.
std::vector<std::string> small_flags(const std::string& output) {
  const Assets& a = assets();
  return {"--data", a.train, "--init-config", a.config, "--tokenizer", a.tokenizer, "--output", output,
          "--max-length", "64", "--max-tokens", "1024", "--lr", "0.003", "--threads", "1", "--seed", "11",
          "--log-every", "1000"};
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  std::istringstream in(read_text_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

// metrics.jsonl's lines without the timing; its step lines only (no eval
// lines) unless with_eval.
std::vector<Json> step_lines(const std::string& dir, bool with_eval = false) {
  std::vector<Json> out;
  for (Json j : read_jsonl(join_path(dir, "metrics.jsonl"))) {
    if (j.contains("eval") && !with_eval) continue;
    j.erase("tokens_per_s");
    j.erase("peak_memory_bytes");
    out.push_back(j);
  }
  return out;
}

std::string model_sha(const std::string& dir) { return sha256_file(join_path(dir, "model.safetensors")); }

std::vector<std::int64_t> checkpoint_steps(const std::string& output) {
  std::vector<std::int64_t> steps;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(join_path(output, "checkpoints"), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0 && name.find_first_not_of("0123456789", 11) == std::string::npos) {
      steps.push_back(std::stoll(name.substr(11)));
    }
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

std::string checkpoint_dir(const std::string& output, std::int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "checkpoint-%08lld", static_cast<long long>(step));
  return join_path(join_path(output, "checkpoints"), name);
}

// Every checkpoint-* folder loads whole: model, trainer state with its own
// step, optimizer state into an optimizer of the model's layout.
void expect_complete_checkpoints(const std::string& output, std::int64_t total_steps) {
  for (std::int64_t step : checkpoint_steps(output)) {
    const std::string dir = checkpoint_dir(output, step);
    SCOPED_TRACE(dir);
    EXPECT_GT(step, 0);
    EXPECT_LE(step, total_steps);
    try {
      auto model = load_reward_model(dir);
      const Json state = Json::parse(read_text_file(join_path(dir, "trainer_state.json")));
      EXPECT_EQ(state.at("step").get<std::int64_t>(), step);
      EXPECT_TRUE(state.at("options").is_object());
      auto optimizer = make_adamw(split_decay_groups(*model, 0.0), AdamWOptions{});
      load_optimizer_state(*optimizer, join_path(dir, "optimizer.pt"));
      EXPECT_TRUE(path_exists(join_path(dir, "rng_state.safetensors")));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "checkpoint does not load: " << e.what();
    }
  }
}

// ---- running openrm-train ---------------------------------------------------

std::string tool_path() { return std::string(OPENRM_BINARY_DIR) + "/tools/openrm-train"; }

// Starts openrm-train with stdout and stderr going to `log`.
pid_t spawn_tool(const std::vector<std::string>& args, const std::string& log) {
  return test::spawn_tool("openrm-train", args, log);
}

using test::decode_status;
using test::ToolRun;

ToolRun run_tool(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = spawn_tool(args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {decode_status(status), test::read_bytes(log)};
}

// The one "openrm-train: error: " line of a failed run.
std::string error_line(const ToolRun& run) { return test::error_line(run, "openrm-train"); }

class Trainer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    set_log_level(LogLevel::kWarn);
    assets();
  }
  test::TempDir tmp;
};

class TrainerCli : public Trainer {
 protected:
  void SetUp() override {
    if (!path_exists(tool_path())) GTEST_SKIP() << "openrm-train was not built (OPENRM_BUILD_TOOLS=OFF)";
  }
};

// ---- 1. bit-reproducible CPU runs ---------------------------------------------

TEST_F(Trainer, PrefixSharingTrainsAsThePairsRunWhole) {
  // The demo pairs share their prompt (premise checked); in one micro-batch
  // of all 120 pairs per step, in file order, a run with prefix sharing and
  // one without see the same pairs: the same losses, gradient norms and
  // evaluation, to float rounding (Adam turns rounding in near-zero
  // gradients into lr-sized steps, so step 2 is compared more loosely).
  TokenizeOptions t;
  t.max_length = 64;
  const auto tokenized = tokenize_pairs(assets().train_pairs, *assets().tok, t);
  const auto shared = shared_prefix_lengths(tokenized.pairs);
  ASSERT_GT(std::count_if(shared.begin(), shared.end(), [](std::int64_t p) { return p > 0; }), 60);
  std::vector<std::vector<Json>> lines;
  std::vector<PreferenceMetrics> evals;
  for (const bool sharing : {true, false}) {
    TrainOptions o = small_options(tmp.file(sharing ? "shared" : "whole"));
    o.eval_data = assets().eval;
    o.prefix_sharing = sharing;
    o.shuffle = false;
    o.max_tokens = 1 << 20;
    o.max_steps = 2;
    const TrainResult r = train_reward_model(o);
    lines.push_back(step_lines(o.output_dir));
    evals.push_back(r.eval);
  }
  ASSERT_EQ(lines[0].size(), 2u);
  ASSERT_EQ(lines[1].size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(lines[0][k].at("pairs"), 120);
    EXPECT_EQ(lines[1][k].at("pairs"), 120);
    const double tol = k == 0 ? 1e-5 : 1e-3;
    EXPECT_NEAR(lines[0][k].at("loss").get<double>(), lines[1][k].at("loss").get<double>(), tol) << "step " << k + 1;
    const double g0 = lines[0][k].at("grad_norm").get<double>(), g1 = lines[1][k].at("grad_norm").get<double>();
    EXPECT_NEAR(g0, g1, (k == 0 ? 1e-4 : 1e-2) * g1) << "step " << k + 1;
  }
  // The evaluation's loss and mean margin (its accuracy counts signs of
  // near-zero margins: see expect_same_trajectory).
  EXPECT_NEAR(evals[0].loss, evals[1].loss, 1e-3);
  EXPECT_NEAR(evals[0].mean_margin, evals[1].mean_margin, 1e-3);
}

TEST_F(Trainer, CpuRunsAreBitReproducibleForASeed) {
  TrainOptions o = small_options(tmp.file("a"));
  const TrainResult a = train_reward_model(o);
  EXPECT_EQ(a.steps, small_batches_per_epoch());
  o.output_dir = tmp.file("b");
  train_reward_model(o);
  o.output_dir = tmp.file("c");
  o.seed = 12;
  train_reward_model(o);

  EXPECT_EQ(model_sha(tmp.file("a")), model_sha(tmp.file("b")));
  EXPECT_EQ(step_lines(tmp.file("a")), step_lines(tmp.file("b")));
  EXPECT_NE(model_sha(tmp.file("a")), model_sha(tmp.file("c")));
  EXPECT_NE(step_lines(tmp.file("a")), step_lines(tmp.file("c")));
}

// ---- every family trains ----------------------------------------------------------

// openrm-train --init-config with each family's tiny config (the parity
// fixtures', vocabulary resized to the test tokenizer): a fresh model of the
// family learns the training pairs (its Bradley-Terry loss on them falls
// well under log 2) and its output folder loads and evaluates. About 10 s.
// Its gradients are checked against transformers in tests/test_gradients.cpp.
TEST_F(Trainer, EveryFamilyTrainsFromAFreshConfig) {
  const char* const families[][2] = {{"parity", "llama_llama3_rope"}, {"parity", "gemma2_softcap_window"},
                                     {"parity", "gpt_neox_parallel"}, {"parity", "gpt2"}, {"deberta", "deberta_v3"}};
  for (const auto& [group, name] : families) {
    SCOPED_TRACE(name);
    const std::string source = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/" + group + "/" + name;
    Json config = Json::parse(read_text_file(join_path(source, "config.json")));
    config["vocab_size"] = assets().tok->vocab_size();
    config.erase("pad_token_id");  // the trainer takes the tokenizer's
    const std::string config_path = tmp.file(std::string(name) + ".json");
    write_file_atomic(config_path, config.dump(2));
    TrainOptions o = small_options(tmp.file(name));
    o.init_config = config_path;
    o.epochs = 8;
    o.gradient_checkpointing = std::string(name) == "gpt_neox_parallel";
    const TrainResult r = train_reward_model(o);
    EXPECT_EQ(r.skipped_steps, 0);
    EvalOptions e;
    e.threads = 1;
    const EvalResult after = evaluate_file(o.output_dir, assets().train, e);
    // A fresh model's rewards are all about 0: loss log 2 = 0.693. (About a
    // third of the pairs are cut to the same 64 tokens on both sides, ties
    // that count as wrong: accuracy cannot reach 0.7 here.)
    EXPECT_LT(after.metrics.loss, 0.55) << "loss on the training pairs after 8 epochs";
    EXPECT_GE(after.metrics.accuracy, 0.5);
    std::printf("[ families ] %s: %lld steps, training-pair loss %.3f, accuracy %.3f\n", name,
                static_cast<long long>(r.steps), after.metrics.loss, after.metrics.accuracy);

    // --init-model on that output continues from its weights: the first
    // step's loss is the trained model's, far under a fresh one's log 2.
    TrainOptions again = small_options(tmp.file(std::string(name) + "-again"));
    again.init_config.clear();
    again.init_model = o.output_dir;
    again.tokenizer.clear();  // the folder's own
    again.max_steps = 2;
    again.log_every = 1;
    train_reward_model(again);
    const auto lines = step_lines(again.output_dir);
    ASSERT_FALSE(lines.empty());
    EXPECT_LT(lines.front().at("loss").get<double>(), 0.6) << lines.front().dump();
    EXPECT_TRUE(load_reward_model(again.output_dir)->config().architecture == config.value("architectures", Json::array({""}))[0]);
  }
}

// ---- 2. resume after SIGKILL ----------------------------------------------------

TEST_F(TrainerCli, ResumeAfterSigkillEqualsAnUninterruptedRun) {
  // The reference: 4 epochs uninterrupted, in this process.
  TrainOptions o = small_options(tmp.file("reference"));
  o.epochs = 4;
  o.save_every = 2;
  o.eval_data = assets().eval;
  o.eval_every = 10;
  const TrainResult reference = train_reward_model(o);
  const std::int64_t total = reference.steps;
  ASSERT_EQ(total, 4 * small_batches_per_epoch());  // the same count every epoch (< 1024 pairs)
  ASSERT_GE(total, 40);

  const std::string out = tmp.file("killed");
  std::vector<std::string> flags = small_flags(out);
  for (const std::string& f : {std::string("--epochs"), std::string("4"), std::string("--save-every"),
                               std::string("2"), std::string("--eval-data"), assets().eval, std::string("--eval-every"),
                               std::string("10")}) {
    flags.push_back(f);
  }
  const std::string root = join_path(out, "checkpoints");
  auto temporary_folder_left = [&] {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.path().filename().string().rfind(".tmp-checkpoint-", 0) == 0) return true;
    }
    return false;
  };
  auto newest = [&] {
    const auto steps = checkpoint_steps(out);
    return steps.empty() ? std::int64_t{0} : steps.back();
  };
  struct Moment {
    const char* what;
    std::function<bool()> now;
  };
  const std::vector<Moment> moments = {
      {"as soon as the first checkpoint exists", [&] { return newest() > 0; }},
      {"while a checkpoint is being written",
       [&] { return newest() >= total / 4 && (temporary_folder_left() || newest() >= total / 2); }},
      {"past the middle", [&] { return newest() >= 2 * total / 3; }},
  };
  std::int64_t previous = 0;
  for (std::size_t i = 0; i < moments.size(); ++i) {
    SCOPED_TRACE(moments[i].what);
    const std::string log = tmp.file("run" + std::to_string(i) + ".log");
    const pid_t pid = spawn_tool(flags, log);
    const int end = test::kill_when(pid, moments[i].now, /*timeout_s=*/120);
    const std::string output = test::read_bytes(log);
    ASSERT_EQ(end, -SIGKILL) << "the run was not killed:\n" << output;
    std::cout << "killed " << moments[i].what << ": newest checkpoint " << newest()
              << (temporary_folder_left() ? ", a temporary checkpoint folder left behind" : "") << std::endl;
    if (i > 0) {
      EXPECT_TRUE(test::contains(output, "resumed from " + checkpoint_dir(out, previous))) << output;
    }
    // Whatever the moment, every checkpoint left behind is complete.
    expect_complete_checkpoints(out, total);
    const std::int64_t step = newest();
    EXPECT_GT(step, previous);
    EXPECT_LT(step, total);
    previous = step;
  }

  const ToolRun last = run_tool(flags, tmp.file("last.log"));
  ASSERT_EQ(last.status, 0) << last.output;
  EXPECT_TRUE(test::contains(last.output, "resumed from " + checkpoint_dir(out, previous))) << last.output;
  EXPECT_EQ(model_sha(out), model_sha(tmp.file("reference")));
  // metrics.jsonl holds each step and evaluation once, as the uninterrupted
  // run wrote them.
  EXPECT_EQ(step_lines(out, true), step_lines(tmp.file("reference"), true));
  EXPECT_EQ(read_text_file(join_path(out, "openrm.json")), read_text_file(tmp.file("reference/openrm.json")));
  EXPECT_TRUE(test::contains(read_text_file(join_path(out, "README.md")), "resumed from step | " +
                                                                             std::to_string(previous)));
  EXPECT_EQ(checkpoint_steps(out), (std::vector<std::int64_t>{total - 2, total}));
  EXPECT_FALSE(temporary_folder_left());  // the resumed runs cleared them

  // A finished folder resumes to nothing to do and the same model.
  const ToolRun again = run_tool(flags, tmp.file("again.log"));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(test::contains(again.output, "after " + std::to_string(total) + " steps")) << again.output;
  EXPECT_EQ(model_sha(out), model_sha(tmp.file("reference")));
  EXPECT_EQ(step_lines(out, true), step_lines(tmp.file("reference"), true));
}

// ---- 3. non-finite steps ------------------------------------------------------------

TEST_F(Trainer, ANonFiniteBatchIsSkippedAndCounted) {
  // One pair's margin overflows float32, so its batch's loss is infinite.
  std::vector<PreferencePair> pairs = assets().train_pairs;
  std::string text;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    text += pair_line(p.id, p.prompt.back().content, p.chosen.back().content, p.rejected.back().content,
                      i == 17 ? Json(1e39) : Json(0.0));
  }
  const std::string data = tmp.file("overflow.jsonl");
  test::write_bytes(data, text);
  TrainOptions o = small_options(tmp.file("out"));
  o.data = {data};
  const TrainResult r = train_reward_model(o);
  const std::int64_t steps = small_batches_per_epoch();
  EXPECT_EQ(r.steps, steps);
  EXPECT_EQ(r.skipped_steps, 1);
  const auto lines = step_lines(tmp.file("out"));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(steps));
  int skipped = 0;
  for (const auto& j : lines) {
    if (j.at("skipped").get<bool>()) {
      ++skipped;
      EXPECT_TRUE(j.at("loss").is_null()) << j;
      EXPECT_TRUE(j.at("grad_norm").is_null()) << j;
    } else {
      EXPECT_TRUE(std::isfinite(j.at("loss").get<double>())) << j;
    }
  }
  EXPECT_EQ(skipped, 1);
  EXPECT_TRUE(test::contains(read_text_file(tmp.file("out/README.md")),
                             "| optimizer steps | " + std::to_string(steps) + " (1 skipped for non-finite values)"));
  // The skipped step changed nothing: the weights are finite and score.
  auto model = load_reward_model(tmp.file("out"));
  for (const auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST_F(Trainer, TooManyNonFiniteStepsInARowStopTheRun) {
  TrainOptions o = small_options(tmp.file("out"));
  o.lr = 1e30;  // the first step blows the weights up; every later loss is not finite
  o.save_every = 1;
  o.keep_checkpoints = 10;
  o.max_bad_steps = 3;
  const std::string err = test::error_of([&] { train_reward_model(o); });
  EXPECT_TRUE(test::contains(err, "3 steps in a row had a non-finite loss or gradient")) << err;
  const std::string marker = "the last good checkpoint is ";
  const auto at = err.find(marker);
  ASSERT_NE(at, std::string::npos) << err;
  const std::string named = err.substr(at + marker.size());
  EXPECT_TRUE(is_directory(named)) << named;
  EXPECT_NO_THROW(load_reward_model(named));
  EXPECT_EQ(named, checkpoint_dir(tmp.file("out"), checkpoint_steps(tmp.file("out")).back()));
  expect_complete_checkpoints(tmp.file("out"), small_batches_per_epoch());
  EXPECT_FALSE(path_exists(tmp.file("out/model.safetensors")));  // no final model from a failed run

  // metrics.jsonl: the good first step, then the three skipped ones.
  const auto lines = step_lines(tmp.file("out"));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_FALSE(lines[0].at("skipped").get<bool>());
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_TRUE(lines[i].at("skipped").get<bool>()) << lines[i];
    EXPECT_EQ(lines[i].at("step").get<std::int64_t>(), static_cast<std::int64_t>(i + 1));
  }
}

// ---- 4. the output folder -----------------------------------------------------------

TEST_F(TrainerCli, OutputFolderLoadsAndDescribesTheRun) {
  const Assets& a = assets();
  const std::string out = tmp.file("out");
  TrainOptions o = small_options(out);
  o.eval_data = a.eval;
  o.eval_every = 5;
  o.chat_format = "hh";
  o.warmup_steps = 3;
  o.min_lr_ratio = 0.1;
  o.max_tokens = 512;  // more than 10 steps with the prompts shared
  const TrainResult r = train_reward_model(o);
  const std::int64_t total = small_batches_per_epoch(512);
  ASSERT_EQ(r.steps, total);
  ASSERT_GT(total, 10);

  // The folder loads whole, with the chat format it was trained with.
  const RewardModelFolder folder = load_reward_model_folder(out);
  ASSERT_TRUE(folder.model);
  ASSERT_TRUE(folder.tokenizer);
  EXPECT_EQ(folder.chat_format, ChatFormat::kHH);
  EXPECT_EQ(folder.metadata.chat_format, ChatFormat::kHH);  // stored, not inferred
  EXPECT_EQ(folder.tokenizer->vocab_size(), a.tok->vocab_size());
  ASSERT_TRUE(folder.model->config().pad_token_id.has_value());
  EXPECT_EQ(*folder.model->config().pad_token_id, a.tok->special_tokens().pad.id);

  // openrm.json's reward mean and std: the population statistics of all 2N
  // rewards that evaluating the folder on the eval file gives (with the
  // defaults: openrm.json's max_length and policy, the trainer's batching).
  EvalOptions eval_options;
  eval_options.threads = 1;
  const EvalResult e = evaluate_file(out, a.eval, eval_options);
  EXPECT_EQ(e.tokenize.max_length, 64);
  EXPECT_EQ(e.chat_format, "hh");
  ASSERT_EQ(e.rewards.size(), 40u);
  double sum = 0, sum_sq = 0;
  for (const auto& p : e.rewards) sum += double(p.chosen) + double(p.rejected);
  const double mean = sum / 80.0;
  for (const auto& p : e.rewards) {
    sum_sq += (p.chosen - mean) * (p.chosen - mean) + (p.rejected - mean) * (p.rejected - mean);
  }
  const double std = std::sqrt(sum_sq / 80.0);
  EXPECT_GT(std, 0.0);
  EXPECT_NEAR(folder.metadata.other.at("reward_mean").get<double>(), mean, 1e-5);
  EXPECT_NEAR(folder.metadata.other.at("reward_std").get<double>(), std, 1e-5);
  EXPECT_NEAR(r.eval.accuracy, e.metrics.accuracy, 1e-12);

  // report.html: the final evaluation's plots and the training curves; its
  // worst-ranked pair is the one the folder's own rewards rank worst.
  const std::string report = read_text_file(join_path(out, "report.html"));
  for (const char* id : {"plot-reward-histogram", "plot-reliability", "plot-reward-length", "plot-training-loss",
                         "plot-training-grad-norm"}) {
    EXPECT_TRUE(test::contains(report, std::string("id=\"") + id + "\"")) << id;
  }
  EXPECT_FALSE(test::contains(report, "http://") || test::contains(report, "https://"));
  std::size_t worst = 0;
  for (std::size_t i = 1; i < e.rewards.size(); ++i) {
    const auto gap = [&](std::size_t k) { return e.rewards[k].rejected - e.rewards[k].chosen; };
    if (gap(i) > gap(worst)) worst = i;
  }
  EXPECT_TRUE(test::contains(report, "#1: pair " + std::to_string(e.rewards[worst].source_index))) << report;

  // The model card: each data file with its hash, and the truncation.
  const std::string card = read_text_file(join_path(out, "README.md"));
  for (const std::string& file : {a.train, a.eval}) {
    EXPECT_TRUE(test::contains(card, "`" + file + "` | `" + sha256_file(file) + "`")) << card;
  }
  TokenizeOptions t;
  t.format = ChatFormat::kHH;
  t.max_length = 64;
  const auto tokenized = tokenize_pairs(read_preferences(a.train).pairs, *a.tok, t);
  EXPECT_GT(tokenized.stats.truncated, 0);
  EXPECT_TRUE(test::contains(card, tokenized.stats.summary())) << card;
  EXPECT_TRUE(test::contains(card, "| optimizer steps | " + std::to_string(total) + " (0 skipped")) << card;

  // metrics.jsonl: a line per step with the schedule's lr, eval lines every
  // 5 steps and the final one.
  LrSchedule schedule{LrSchedule::kCosine, 3, total, 3e-3, 0.1};
  std::int64_t steps = 0;
  std::vector<std::int64_t> eval_steps;
  const auto all = read_jsonl(join_path(out, "metrics.jsonl"));
  for (const auto& j : all) {
    if (j.contains("eval")) {
      eval_steps.push_back(j.at("step").get<std::int64_t>());
      EXPECT_EQ(j.at("eval").at("pairs").get<std::int64_t>(), 40) << j;
      EXPECT_TRUE(j.at("eval").at("accuracy").is_number()) << j;
      continue;
    }
    ++steps;
    EXPECT_EQ(j.at("step").get<std::int64_t>(), steps) << j;
    for (const char* key : {"loss", "accuracy", "lr", "grad_norm", "tokens_per_s", "epoch"}) {
      EXPECT_TRUE(j.contains(key) && j.at(key).is_number()) << key << " in " << j;
    }
    EXPECT_FALSE(j.at("skipped").get<bool>());
    const double s = static_cast<double>(steps - 1);
    const double expected_lr =
        s < 3 ? 3e-3 * s / 3 : 3e-3 * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * (s - 3) / double(total - 3))));
    EXPECT_NEAR(j.at("lr").get<double>(), expected_lr, 1e-15) << j;
    EXPECT_NEAR(j.at("lr").get<double>(), lr_at(schedule, steps - 1), 1e-18);
  }
  EXPECT_EQ(steps, total);
  std::vector<std::int64_t> expected_eval_steps;
  for (std::int64_t s = 5; s < total; s += 5) expected_eval_steps.push_back(s);
  expected_eval_steps.push_back(total);
  EXPECT_EQ(eval_steps, expected_eval_steps);
  EXPECT_NEAR(all.back().at("eval").at("accuracy").get<double>(), e.metrics.accuracy, 1e-12);

  // training_config.json holds every option, and reads back to the same ones.
  const Json config = Json::parse(read_text_file(join_path(out, "training_config.json")));
  EXPECT_EQ(config, train_options_json(o));
  TrainOptions back;
  apply_train_options_json(back, config, "training_config.json");
  EXPECT_EQ(train_options_json(back), config);

  // openrm-train --config training_config.json retrains the same model.
  const std::string again = tmp.file("again");
  const ToolRun run = run_tool({"--config", join_path(out, "training_config.json"), "--output", again},
                               tmp.file("again.log"));
  ASSERT_EQ(run.status, 0) << run.output;
  Json config_again = Json::parse(read_text_file(join_path(again, "training_config.json")));
  EXPECT_EQ(config_again.at("output_dir"), again);
  config_again["output_dir"] = out;
  EXPECT_EQ(config_again, config);
  EXPECT_EQ(model_sha(again), model_sha(out));
}

// ---- 5. options and CLI errors ---------------------------------------------------

TEST(TrainOptionsJson, UnknownAndMistypedFieldsNameTheFileAndField) {
  TrainOptions o;
  std::string err = test::error_of([&] {
    apply_train_options_json(o, Json{{"lr", 0.1}, {"learning_rate", 1}}, "cfg.json");
  });
  EXPECT_TRUE(test::contains(err, "cfg.json")) << err;
  EXPECT_TRUE(test::contains(err, "unknown field(s): learning_rate")) << err;

  err = test::error_of([&] { apply_train_options_json(o, Json{{"lr", "fast"}}, "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: field 'lr': expected a number")) << err;
  err = test::error_of([&] { apply_train_options_json(o, Json{{"seed", -1}}, "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: field 'seed'")) << err;
  err = test::error_of([&] { apply_train_options_json(o, Json{{"max_steps", 1.5}}, "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: field 'max_steps': expected an integer")) << err;
  err = test::error_of([&] { apply_train_options_json(o, Json{{"data", "train.jsonl"}}, "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: field 'data': expected a list of strings")) << err;
  err = test::error_of([&] { apply_train_options_json(o, Json{{"resume", 1}}, "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: field 'resume': expected true or false")) << err;
  err = test::error_of([&] { apply_train_options_json(o, Json{{"max_length", "long"}}, "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: field 'max_length': expected an integer or null")) << err;
  // max_length unset (the model's default) is null, and reads back unset.
  EXPECT_TRUE(train_options_json(TrainOptions{}).at("max_length").is_null());
  TrainOptions unset;
  unset.max_length = 7;
  apply_train_options_json(unset, Json{{"max_length", nullptr}}, "cfg.json");
  EXPECT_FALSE(unset.max_length.has_value());
  err = test::error_of([&] { apply_train_options_json(o, Json::array({1, 2}), "cfg.json"); });
  EXPECT_TRUE(test::contains(err, "cfg.json: expected a JSON object")) << err;

  // Every field round-trips.
  TrainOptions changed;
  changed.data = {"a.jsonl", "b.jsonl.gz"};
  changed.seed = 123456789012345ULL;
  changed.lr = 0.125;
  changed.grad_accum = 3;
  changed.resume = false;
  changed.dtype = "bf16";
  changed.threads = 2;
  changed.max_length = 300;
  TrainOptions back;
  apply_train_options_json(back, train_options_json(changed), "x");
  EXPECT_EQ(train_options_json(back), train_options_json(changed));
  EXPECT_EQ(back.seed, 123456789012345ULL);
  EXPECT_EQ(back.data, changed.data);
}

TEST(TrainOptionsValidate, NamesTheBadField) {
  TrainOptions o;
  o.data = {"train.jsonl"};
  o.init_config = "config.json";
  o.output_dir = "out";
  EXPECT_NO_THROW(o.validate());
  auto err_with = [&](const std::function<void(TrainOptions&)>& change) {
    TrainOptions bad = o;
    change(bad);
    return test::error_of([&] { bad.validate(); });
  };
  std::string err = err_with([](TrainOptions& b) { b.init_model = "rm"; });
  EXPECT_TRUE(test::contains(err, "exactly one of init_model, init_causal_lm, init_config (got 2)")) << err;
  err = err_with([](TrainOptions& b) { b.init_config.clear(); });
  EXPECT_TRUE(test::contains(err, "(got 0)")) << err;
  err = err_with([](TrainOptions& b) { b.dtype = "bf16"; });
  EXPECT_TRUE(test::contains(err, "'dtype'")) << err;
  EXPECT_TRUE(test::contains(err, "CUDA")) << err;
  err = err_with([](TrainOptions& b) { b.grad_accum = 0; });
  EXPECT_TRUE(test::contains(err, "'grad_accum': must be >= 1")) << err;
  err = err_with([](TrainOptions& b) { b.lr = std::nan(""); });
  EXPECT_TRUE(test::contains(err, "'lr'")) << err;
  err = err_with([](TrainOptions& b) { b.data.clear(); });
  EXPECT_TRUE(test::contains(err, "'data'")) << err;
  err = err_with([](TrainOptions& b) { b.schedule = "step"; });
  EXPECT_TRUE(test::contains(err, "'schedule'")) << err;
  err = err_with([](TrainOptions& b) { b.lr = 0; });
  EXPECT_TRUE(test::contains(err, "'lr': must be a finite number > 0")) << err;
  err = err_with([](TrainOptions& b) { b.max_length = -1; });
  EXPECT_TRUE(test::contains(err, "'max_length'")) << err;
  // A warm-up as long as max_steps never reaches lr (and one of one step is lr 0 throughout).
  err = err_with([](TrainOptions& b) {
    b.max_steps = 1;
    b.warmup_steps = 1;
  });
  EXPECT_TRUE(test::contains(err, "'warmup_steps': 1 warm-up steps do not fit in a run of max_steps = 1")) << err;
  TrainOptions fits = o;
  fits.max_steps = 2;
  fits.warmup_steps = 1;
  EXPECT_NO_THROW(fits.validate());

  // train_reward_model validates before it creates anything.
  test::TempDir tmp;
  TrainOptions bad = o;
  bad.grad_accum = 0;
  bad.output_dir = tmp.file("out");
  EXPECT_TRUE(test::contains(test::error_of([&] { train_reward_model(bad); }), "grad_accum"));
  EXPECT_FALSE(path_exists(bad.output_dir));
}

// small_flags with some flags replaced or added.
std::vector<std::string> small_flags_with(const std::string& output, const std::vector<std::string>& extra) {
  std::vector<std::string> f = small_flags(output);
  for (std::size_t i = 0; i + 1 < extra.size(); i += 2) {
    const auto at = std::find(f.begin(), f.end(), extra[i]);
    if (at != f.end()) {
      *(at + 1) = extra[i + 1];
    } else {
      f.push_back(extra[i]);
      f.push_back(extra[i + 1]);
    }
  }
  return f;
}

TEST_F(TrainerCli, BadInputsGiveOneErrorLine) {
  const Assets& a = assets();
  const auto flags_with = small_flags_with;
  const std::string log = tmp.file("run.log");

  std::vector<std::string> f = small_flags(tmp.file("o1"));
  f[1] = tmp.file("missing.jsonl");
  std::string line = error_line(run_tool(f, log));
  EXPECT_TRUE(test::contains(line, tmp.file("missing.jsonl"))) << line;

  const std::string broken = tmp.file("broken.jsonl");
  test::write_bytes(broken, pairs_jsonl({a.train_pairs[0], a.train_pairs[1]}) + "{\"prompt\": \"open\n");
  f[1] = broken;
  line = error_line(run_tool(f, log));
  EXPECT_TRUE(test::contains(line, broken + ":3: malformed JSON")) << line;

  // No tokenizer: a model from a config has none.
  f = {"--data", a.train, "--init-config", a.config, "--output", tmp.file("o2")};
  line = error_line(run_tool(f, log));
  EXPECT_TRUE(test::contains(line, "no tokenizer")) << line;
  EXPECT_TRUE(test::contains(line, "--tokenizer")) << line;

  const std::string config = tmp.file("cfg.json");
  test::write_bytes(config, R"({"lr": 0.001, "learning_rate": 0.1})");
  line = error_line(run_tool(flags_with(tmp.file("o3"), {"--config", config}), log));
  EXPECT_TRUE(test::contains(line, config + ": unknown field(s): learning_rate")) << line;
  test::write_bytes(config, R"({"lr": )");
  line = error_line(run_tool(flags_with(tmp.file("o3"), {"--config", config}), log));
  EXPECT_TRUE(test::contains(line, config + ": malformed JSON")) << line;

  line = error_line(run_tool(flags_with(tmp.file("o4"), {"--grad-accum", "0"}), log));
  EXPECT_TRUE(test::contains(line, "grad_accum")) << line;

  // A changed trajectory option cannot resume the folder.
  const std::string out = tmp.file("o5");
  TrainOptions o = small_options(out);
  o.max_steps = 2;
  train_reward_model(o);
  line = error_line(run_tool(flags_with(out, {"--max-steps", "2", "--lr", "0.01"}), log));
  EXPECT_TRUE(test::contains(line, "cannot resume from " + checkpoint_dir(out, 2))) << line;
  EXPECT_TRUE(test::contains(line, "option 'lr' was 0.003 and is now 0.01")) << line;
  EXPECT_TRUE(test::contains(line, "--no-resume")) << line;
  EXPECT_TRUE(test::contains(line, "new --output folder")) << line;
  // Options that do not change the trajectory may change.
  const ToolRun ok = run_tool(flags_with(out, {"--max-steps", "2", "--threads", "2", "--keep-checkpoints", "3"}), log);
  EXPECT_EQ(ok.status, 0) << ok.output;
}

TEST_F(TrainerCli, TheOutputFolderIsCheckedBeforeAnyWork) {
  const Assets& a = assets();
  const std::string log = tmp.file("run.log");
  auto with = [](std::vector<std::string> flags, const std::vector<std::string>& extra) {
    flags.insert(flags.end(), extra.begin(), extra.end());
    return flags;
  };
  // Someone else's folder (a config.json, no openrm run): refused, untouched.
  const std::string theirs = tmp.file("theirs");
  fs::create_directories(theirs);
  test::write_bytes(join_path(theirs, "config.json"), "their config\n");
  ToolRun run = run_tool(with(small_flags(theirs), {"--max-steps", "1"}), log);
  std::string line = error_line(run);
  EXPECT_TRUE(test::contains(line, theirs + ": exists, is not empty and is not an openrm run")) << line;
  EXPECT_TRUE(test::contains(line, "--overwrite-output-dir")) << line;
  EXPECT_FALSE(test::contains(run.output, "effective configuration")) << run.output;
  EXPECT_EQ(test::read_bytes(join_path(theirs, "config.json")), "their config\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(theirs), fs::directory_iterator()), 1);

  // An input folder, or a folder that holds an input, is refused even when told.
  line = error_line(run_tool(with(small_flags(a.tokenizer), {"--overwrite-output-dir"}), log));
  EXPECT_TRUE(test::contains(line, a.tokenizer + ": the output folder is the input folder " + a.tokenizer)) << line;
  fs::create_directories(tmp.file("holder"));
  const std::string data = join_path(tmp.file("holder"), "train.jsonl");
  fs::copy_file(a.train, data);
  std::vector<std::string> flags = with(small_flags(tmp.file("holder")), {"--overwrite-output-dir"});
  flags[1] = data;
  line = error_line(run_tool(flags, log));
  EXPECT_TRUE(test::contains(line, tmp.file("holder") + ": the output folder holds the input " + data)) << line;

  // Told to: it trains into it. Then it is an openrm run, resumed without the flag.
  run = run_tool(with(small_flags(theirs), {"--max-steps", "1", "--overwrite-output-dir"}), log);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(Json::parse(test::read_bytes(join_path(theirs, "config.json"))).contains("architectures"));
  run = run_tool(with(small_flags(theirs), {"--max-steps", "1"}), log);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(test::contains(run.output, "resumed from")) << run.output;
}

TEST_F(TrainerCli, AnUnavailableDeviceIsOneLine) {
  const std::string out = tmp.file("out");
  for (const std::string device : {"cuda:7", "tpu"}) {
    std::vector<std::string> flags = small_flags(out);
    flags.insert(flags.end(), {"--device", device});
    const ToolRun run = run_tool(flags, tmp.file("run.log"));
    const std::string line = error_line(run);
    EXPECT_TRUE(test::contains(line, "device '" + device + "'")) << line;
    EXPECT_EQ(run.output, line + "\n");
    EXPECT_FALSE(path_exists(out));
  }
}

TEST_F(Trainer, NoResumeStartsOverAndReplacesTheOldCheckpoints) {
  const std::string out = tmp.file("out");
  TrainOptions first = small_options(out);
  first.max_steps = 6;
  first.save_every = 2;
  train_reward_model(first);
  ASSERT_EQ(checkpoint_steps(out), (std::vector<std::int64_t>{4, 6}));

  TrainOptions second = first;
  second.lr = 1e-3;
  second.max_steps = 3;
  EXPECT_TRUE(test::contains(test::error_of([&] { train_reward_model(second); }), "option 'lr'"));
  second.resume = false;
  const TrainResult r = train_reward_model(second);
  EXPECT_EQ(r.resumed_from, -1);
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(step_lines(out).size(), 3u);
  // Only the new run's checkpoints are left, so a later resume continues it.
  EXPECT_EQ(checkpoint_steps(out), (std::vector<std::int64_t>{2, 3}));
  for (std::int64_t step : checkpoint_steps(out)) {
    const Json state = Json::parse(read_text_file(join_path(checkpoint_dir(out, step), "trainer_state.json")));
    EXPECT_EQ(state.at("options").at("lr").get<double>(), 1e-3);
  }
  const std::string sha = model_sha(out);
  second.resume = true;
  const TrainResult resumed = train_reward_model(second);
  EXPECT_EQ(resumed.resumed_from, 3);
  EXPECT_EQ(model_sha(out), sha);
}

// ---- 6 and 7. epochs, gradient accumulation, learning ----------------------------------

// Synthetic pairs a learning model separates easily: "yes" answers are chosen,
// "no" answers rejected. Most answers have 1 to 3 words, one in eight 24, so
// how many long pairs fall into each length bucket (and so the number of
// batches) varies with the batching seed.
std::string yes_no_pairs(int n, int offset) {
  std::string text;
  for (int i = offset; i < offset + n; ++i) {
    std::string yes, no;
    const int yes_words = i % 8 == 0 ? 24 : 1 + i % 3, no_words = i % 8 == 4 ? 24 : 1 + (i / 3) % 3;
    for (int k = 0; k < yes_words; ++k) yes += k ? " yes" : "yes";
    for (int k = 0; k < no_words; ++k) no += k ? " no" : "no";
    text += pair_line("p" + std::to_string(i), "Question " + std::to_string(i % 10) + ": is it so?", yes + ".",
                      no + ".");
  }
  return text;
}

TEST_F(Trainer, EveryEpochVisitsEveryPairOnceWithGradientAccumulation) {
  // Over 1024 pairs (batching's bucket size), so an epoch's number of
  // micro-batches depends on its seed.
  const int n = 1100;
  const std::string data = tmp.file("yes-no.jsonl"), held_out = tmp.file("yes-no-eval.jsonl");
  test::write_bytes(data, yes_no_pairs(n, 0));
  test::write_bytes(held_out, yes_no_pairs(40, 5000));
  TokenizeOptions t;
  t.max_length = 64;
  const auto tokenized = tokenize_pairs(read_preferences(data).pairs, *assets().tok, t);
  ASSERT_EQ(tokenized.pairs.size(), static_cast<std::size_t>(n));
  BatchingOptions b;
  b.max_tokens = 2048;
  auto batches = [&](std::uint64_t seed) {
    b.seed = seed;
    return trainer_batches(tokenized.pairs, b);
  };
  // A seed whose second epoch has more micro-batches than its first.
  std::uint64_t seed = 0;
  while (seed < 500 && batches(seed + 1).size() <= batches(seed).size()) ++seed;
  ASSERT_LT(seed, 500u) << "no seed with a longer second epoch";
  std::vector<std::vector<std::int64_t>> micro = batches(seed);
  const std::size_t first_epoch = micro.size();
  const auto second = batches(seed + 1);
  micro.insert(micro.end(), second.begin(), second.end());

  TrainOptions o = small_options(tmp.file("out"));
  o.data = {data};
  o.eval_data = held_out;
  o.max_tokens = 2048;
  o.grad_accum = 2;
  o.epochs = 2;
  o.seed = seed;
  o.lr = 1e-2;
  const TrainResult r = train_reward_model(o);
  const auto lines = step_lines(tmp.file("out"));
  const std::size_t expected_steps = (micro.size() + 1) / 2;
  EXPECT_EQ(r.steps, static_cast<std::int64_t>(expected_steps));
  ASSERT_EQ(lines.size(), expected_steps);
  std::int64_t pairs = 0;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    std::size_t expected = micro[2 * k].size() + (2 * k + 1 < micro.size() ? micro[2 * k + 1].size() : 0);
    EXPECT_EQ(lines[k].at("pairs").get<std::size_t>(), expected) << "step " << k + 1;
    pairs += lines[k].at("pairs").get<std::int64_t>();
  }
  EXPECT_EQ(pairs, 2 * n);  // each epoch saw every pair once
  EXPECT_NEAR(lines.back().at("epoch").get<double>(), 2.0, 1e-12);
  EXPECT_NEAR(lines[first_epoch / 2 - 1].at("epoch").get<double>(),
              static_cast<double>(first_epoch / 2 * 2) / static_cast<double>(first_epoch), 1e-12);

  // Learning sanity: the held-out "yes" answers win.
  ASSERT_TRUE(r.has_eval);
  EXPECT_GT(r.eval.accuracy, 0.9);
}

TEST_F(Trainer, GradientAccumulationStepCountsForOneEpoch) {
  // B micro-batches: (B + 1) / 2 steps of two (an odd last one of one), and
  // the lr schedule runs over those steps.
  const std::int64_t batches = small_batches_per_epoch();
  const std::int64_t steps = (batches + 1) / 2;
  TrainOptions o = small_options(tmp.file("out"));
  o.grad_accum = 2;
  o.schedule = "linear";
  const TrainResult r = train_reward_model(o);
  EXPECT_EQ(r.steps, steps);
  const auto lines = step_lines(tmp.file("out"));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(steps));
  std::int64_t pairs = 0;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    pairs += lines[k].at("pairs").get<std::int64_t>();
    EXPECT_NEAR(lines[k].at("lr").get<double>(), 3e-3 * (1.0 - double(k) / double(steps)), 1e-15);
  }
  EXPECT_EQ(pairs, static_cast<std::int64_t>(assets().train_pairs.size()));

  // max_steps counts optimizer steps, whatever grad_accum is.
  o.output_dir = tmp.file("capped");
  o.max_steps = 5;
  EXPECT_EQ(train_reward_model(o).steps, 5);
  EXPECT_EQ(step_lines(tmp.file("capped")).size(), 5u);
}


// ---- 8. one length rule, complete checkpoints, degenerate runs ---------------------

// Runs another openrm tool (openrm-eval, openrm-score) with stdout and stderr in `log`.
ToolRun run_other_tool(const std::string& tool, const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = test::spawn_tool(tool, args, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {decode_status(status), test::read_bytes(log)};
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// What openrm-eval --json writes for `model` on `data` (with --threads 1, as
// the trainer runs here, and `extra` flags).
Json eval_tool_json(const test::TempDir& tmp, const std::string& model, const std::string& data,
                    const std::vector<std::string>& extra = {}, std::string* output = nullptr) {
  static int calls = 0;
  const std::string json = tmp.file("eval-" + std::to_string(++calls) + ".json");
  std::vector<std::string> args = {"--model", model, "--data", data, "--json", json, "--threads", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  const ToolRun run = run_other_tool("openrm-eval", args, tmp.file("eval.log"));
  EXPECT_EQ(run.status, 0) << run.output;
  if (output) *output = run.output;
  return run.status == 0 ? Json::parse(read_text_file(json)) : Json();
}

// The metrics the trainer's evaluations write to metrics.jsonl, from
// openrm-eval's JSON.
const char* const kEvalMetrics[] = {"pairs", "accuracy", "mean_margin", "reward_mean", "reward_std", "loss", "ece"};

Json metric_fields(const Json& j) {
  Json out = Json::object();
  for (const char* key : kEvalMetrics) out[key] = j.at(key);
  return out;
}

// The eval line of metrics.jsonl at `step`.
Json eval_line_at(const std::string& dir, std::int64_t step) {
  for (const Json& j : read_jsonl(join_path(dir, "metrics.jsonl"))) {
    if (j.contains("eval") && j.at("step").get<std::int64_t>() == step) return j.at("eval");
  }
  ADD_FAILURE() << "no eval line at step " << step;
  return Json::object();
}

std::string four_decimals(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// A copy of the config file `config` with max_position_embeddings = positions.
std::string config_with_positions(const std::string& config, int positions, const test::TempDir& tmp) {
  Json j = Json::parse(read_text_file(config));
  j["max_position_embeddings"] = positions;
  const std::string path = tmp.file("config-" + std::to_string(positions) + ".json");
  write_file_atomic(path, j.dump(2));
  return path;
}

TEST_F(TrainerCli, AMaxLengthOverThePositionsIsLoweredOnceTheSameWayInTrainEvalAndScore) {
  const Assets& a = assets();
  // A model of 40 positions: many demo pairs are longer.
  const std::string config40 = config_with_positions(a.config, 40, tmp);
  const std::string out = tmp.file("out");
  const ToolRun train = run_tool(small_flags_with(out, {"--init-config", config40, "--max-length", "1000",
                                                        "--eval-data", a.eval}),
                                 tmp.file("train.log"));
  ASSERT_EQ(train.status, 0) << train.output;
  const std::string warning = "max_length 1000 is more than the model's max_position_embeddings, 40";
  EXPECT_EQ(occurrences(train.output, warning), 1u) << train.output;

  // Both files were cut to 40 tokens and counted: the counts of tokenizing
  // them at 40 here.
  TokenizeOptions t;
  t.max_length = 40;
  const TruncationStats train40 = tokenize_pairs(read_preferences(a.train).pairs, *a.tok, t).stats;
  const TruncationStats eval40 = tokenize_pairs(read_preferences(a.eval).pairs, *a.tok, t).stats;
  ASSERT_GT(train40.truncated, 0);
  ASSERT_GT(eval40.truncated, 0);
  ASSERT_GT(eval40.longest_before, 40);
  const std::string card = read_text_file(join_path(out, "README.md"));
  EXPECT_TRUE(test::contains(card, "Truncation (max_length 40, policy `truncate`): " + train40.summary())) << card;
  EXPECT_TRUE(test::contains(card, "Truncation: " + eval40.summary())) << card;
  EXPECT_EQ(read_model_metadata(out).max_length, 40);
  // training_config.json keeps what was asked.
  EXPECT_EQ(Json::parse(read_text_file(join_path(out, "training_config.json"))).at("max_length"), 1000);

  // openrm-eval: 40 by default, silently; asked for 1000, one warning and
  // the same numbers, which are the trainer's final evaluation.
  std::string said;
  const Json by_default = eval_tool_json(tmp, out, a.eval, {}, &said);
  EXPECT_EQ(occurrences(said, "max_position_embeddings"), 0u) << said;
  EXPECT_EQ(by_default.at("max_length"), 40);
  EXPECT_EQ(by_default.at("truncation").at("truncated"), eval40.truncated);
  EXPECT_EQ(by_default.at("truncation").at("longest_before"), eval40.longest_before);
  EXPECT_EQ(metric_fields(by_default), read_jsonl(join_path(out, "metrics.jsonl")).back().at("eval"));
  const Json asked = eval_tool_json(tmp, out, a.eval, {"--max-length", "1000"}, &said);
  EXPECT_EQ(occurrences(said, warning), 1u) << said;
  EXPECT_EQ(metric_fields(asked), metric_fields(by_default));

  // openrm-score asked for 1000: one warning, and the rewards of openrm-eval
  // (sequences cut at 40 the same way).
  const std::string rewards = tmp.file("rewards.jsonl"), scores = tmp.file("scores.jsonl");
  eval_tool_json(tmp, out, a.eval, {"--rewards", rewards});
  const ToolRun score = run_other_tool("openrm-score", {"--model", out, "--input", a.eval, "--output", scores,
                                                        "--threads", "1", "--max-length", "1000"},
                                       tmp.file("score.log"));
  ASSERT_EQ(score.status, 0) << score.output;
  EXPECT_EQ(occurrences(score.output, warning), 1u) << score.output;
  const auto evaluated = read_jsonl(rewards), scored = read_jsonl(scores);
  ASSERT_EQ(scored.size(), evaluated.size());
  ASSERT_EQ(scored.size(), 40u);
  for (std::size_t i = 0; i < scored.size(); ++i) {
    EXPECT_NEAR(scored[i].at("reward_chosen").get<double>(), evaluated[i].at("chosen").get<double>(), 1e-5) << i;
    EXPECT_NEAR(scored[i].at("reward_rejected").get<double>(), evaluated[i].at("rejected").get<double>(), 1e-5)
        << i;
  }
}

TEST_F(TrainerCli, OpenrmEvalOnTheTrainedFolderGivesTheTrainersFinalNumbers) {
  const Assets& a = assets();
  // 256 positions: room for a max_length at which part of the pairs fit.
  const std::string config256 = config_with_positions(a.config, 256, tmp);
  const std::string out = tmp.file("out");
  TrainOptions o = small_options(out);
  o.init_config = config256;
  o.eval_data = a.eval;
  o.chat_format = "hh";
  o.truncation = "drop";
  o.max_length = 160;
  const TrainResult r = train_reward_model(o);
  ASSERT_TRUE(r.has_eval);
  EXPECT_EQ(r.max_length, 160);

  // The premise: the chat format and the policy change what is evaluated.
  TokenizeOptions t;
  t.format = ChatFormat::kHH;
  t.max_length = 160;
  t.policy = TruncationPolicy::kDrop;
  const TruncationStats dropped = tokenize_pairs(read_preferences(a.eval).pairs, *a.tok, t).stats;
  ASSERT_GT(dropped.dropped, 0);
  ASSERT_GT(dropped.kept, 10);
  ASSERT_EQ(r.eval.pairs, dropped.kept);

  // openrm-eval with no options: the folder's chat format, max_length and
  // policy, and exactly the trainer's numbers.
  const Json j = eval_tool_json(tmp, out, a.eval);
  EXPECT_EQ(j.at("chat_format"), "hh");
  EXPECT_EQ(j.at("max_length"), 160);
  EXPECT_EQ(j.at("truncation_policy"), "drop");
  EXPECT_EQ(j.at("truncation").at("dropped"), dropped.dropped);
  EXPECT_EQ(j.at("pairs").get<std::int64_t>(), r.eval.pairs);
  EXPECT_EQ(j.at("accuracy").get<double>(), r.eval.accuracy);
  EXPECT_EQ(j.at("mean_margin").get<double>(), r.eval.mean_margin);
  EXPECT_EQ(j.at("reward_mean").get<double>(), r.eval.reward_mean);
  EXPECT_EQ(j.at("reward_std").get<double>(), r.eval.reward_std);
  EXPECT_EQ(j.at("loss").get<double>(), r.eval.loss);
  EXPECT_EQ(j.at("ece").get<double>(), r.eval.ece);
  EXPECT_EQ(metric_fields(j), eval_line_at(out, r.steps));
  // The model card shows the same numbers.
  const std::string card = read_text_file(join_path(out, "README.md"));
  EXPECT_TRUE(test::contains(card, "| pairs | " + std::to_string(j.at("pairs").get<std::int64_t>()) + " |")) << card;
  EXPECT_TRUE(test::contains(card, "| accuracy (a tie counts as wrong) | " +
                                       four_decimals(j.at("accuracy").get<double>()) + " |"))
      << card;
  EXPECT_TRUE(test::contains(card, "| Bradley-Terry loss | " + four_decimals(j.at("loss").get<double>()) + " |"))
      << card;

  // Overriding the policy evaluates other pairs: the defaults mattered.
  const Json truncating = eval_tool_json(tmp, out, a.eval, {"--truncation", "truncate"});
  EXPECT_EQ(truncating.at("pairs").get<std::int64_t>(), dropped.input);
}

TEST_F(TrainerCli, CheckpointsAreCompleteModelFolders) {
  const Assets& a = assets();
  const std::string out = tmp.file("out");
  TrainOptions o = small_options(out);
  o.eval_data = a.eval;
  o.chat_format = "hh";
  o.max_length = 48;
  o.save_every = 4;
  o.eval_every = 4;
  o.keep_checkpoints = 100;
  o.max_tokens = 512;  // more than 8 steps with the prompts shared
  const TrainResult r = train_reward_model(o);
  const std::int64_t total = r.steps;
  ASSERT_GT(total, 8);
  const auto steps = checkpoint_steps(out);
  ASSERT_EQ(steps.front(), 4);
  ASSERT_EQ(steps.back(), total);

  std::vector<std::string> tokenizer_files;
  for (const auto& e : fs::directory_iterator(a.tokenizer)) tokenizer_files.push_back(e.path().filename().string());
  ASSERT_FALSE(tokenizer_files.empty());
  for (std::int64_t step : steps) {
    const std::string dir = checkpoint_dir(out, step);
    SCOPED_TRACE(dir);
    for (const std::string& name : tokenizer_files) {
      ASSERT_TRUE(path_exists(join_path(dir, name))) << name;
      EXPECT_EQ(read_text_file(join_path(dir, name)), read_text_file(join_path(a.tokenizer, name))) << name;
    }
    const Json meta = Json::parse(read_text_file(join_path(dir, "openrm.json")));
    EXPECT_EQ(meta.at("chat_format"), "hh");
    EXPECT_EQ(meta.at("max_length"), 48);
    EXPECT_EQ(meta.at("truncation"), "truncate");
    EXPECT_TRUE(meta.contains("pooling"));
    // An evaluation ran at every checkpoint's step: its reward mean and std.
    const Json eval = eval_line_at(out, step);
    EXPECT_EQ(meta.at("reward_mean"), eval.at("reward_mean"));
    EXPECT_EQ(meta.at("reward_std"), eval.at("reward_std"));
  }
  EXPECT_EQ(read_text_file(join_path(checkpoint_dir(out, total), "openrm.json")),
            read_text_file(join_path(out, "openrm.json")));

  // openrm-eval on a checkpoint gives the trainer's evaluation at its step,
  // and on the last one the final folder's numbers.
  const Json at4 = eval_tool_json(tmp, checkpoint_dir(out, 4), a.eval);
  EXPECT_EQ(at4.at("chat_format"), "hh");
  EXPECT_EQ(metric_fields(at4), eval_line_at(out, 4));
  Json last = eval_tool_json(tmp, checkpoint_dir(out, total), a.eval);
  Json final_folder = eval_tool_json(tmp, out, a.eval);
  for (Json* j : {&last, &final_folder}) {
    for (const char* key : {"model", "seconds", "total_seconds"}) j->erase(key);
    // The report's training curves come from the folder's metrics.jsonl,
    // which a checkpoint has not.
    if (j->contains("report")) (*j)["report"].erase("training");
  }
  EXPECT_EQ(last, final_folder);
  EXPECT_NE(metric_fields(at4), metric_fields(last));  // the checkpoints do differ

  // openrm-score, normalised with the stored mean and std: the same file.
  const std::string from_checkpoint = tmp.file("checkpoint.jsonl"), from_folder = tmp.file("folder.jsonl");
  for (const auto& [model, output] : {std::pair{checkpoint_dir(out, total), from_checkpoint},
                                      std::pair{out, from_folder}}) {
    const ToolRun run = run_other_tool("openrm-score", {"--model", model, "--input", a.eval, "--output", output,
                                                        "--threads", "1", "--normalize"},
                                       tmp.file("score.log"));
    ASSERT_EQ(run.status, 0) << run.output;
  }
  EXPECT_EQ(read_text_file(from_checkpoint), read_text_file(from_folder));
}

// A saved model whose every weight is zero: every reward is 0, and so is
// every gradient, so training never moves it.
std::string zero_model_folder(const std::string& dir) {
  auto model = create_reward_model(load_model_config(assets().config));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.zero_();
  }
  save_reward_model(*model, dir);
  return dir;
}

TEST_F(Trainer, AWarmUpLongerThanTheRunIsRefusedBeforeAnyWork) {
  const std::string out = tmp.file("out");
  TrainOptions o = small_options(out);
  o.max_steps = 4;
  o.save_every = 2;
  train_reward_model(o);  // an earlier run, whose checkpoints a refused --no-resume keeps
  ASSERT_EQ(checkpoint_steps(out), (std::vector<std::int64_t>{2, 4}));
  const std::string metrics_before = read_text_file(join_path(out, "metrics.jsonl"));

  // The run's length comes from the data: one epoch.
  const std::int64_t steps = small_batches_per_epoch();
  o.max_steps = 0;
  o.resume = false;
  o.warmup_steps = steps;
  std::string err = test::error_of([&] { train_reward_model(o); });
  EXPECT_TRUE(test::contains(err, "warmup_steps")) << err;
  EXPECT_TRUE(test::contains(err, std::to_string(steps) + " warm-up steps do not fit in this run of " +
                                      std::to_string(steps) + " steps"))
      << err;
  EXPECT_EQ(checkpoint_steps(out), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(read_text_file(join_path(out, "metrics.jsonl")), metrics_before);
  o.warmup_steps = steps - 1;
  EXPECT_NO_THROW(train_reward_model(o));
}

TEST_F(Trainer, ARunWithMostStepsSkippedFailsAndKeepsItsCheckpoints) {
  const std::string out = tmp.file("out");
  TrainOptions o = small_options(out);
  o.lr = 1e30;             // the first step blows the weights up; every later one is skipped
  o.max_bad_steps = 1000;  // not stopped by the steps in a row
  o.save_every = 3;
  o.keep_checkpoints = 100;
  const std::int64_t steps = small_batches_per_epoch();
  ASSERT_GT(steps, 6);
  const std::string err = test::error_of([&] { train_reward_model(o); });
  EXPECT_TRUE(test::contains(err, std::to_string(steps - 1) + " of the " + std::to_string(steps) +
                                      " steps were skipped for a non-finite loss or gradient"))
      << err;
  EXPECT_TRUE(test::contains(err, "no final model was written")) << err;
  const auto kept = checkpoint_steps(out);
  ASSERT_FALSE(kept.empty());
  EXPECT_LT(kept.back(), steps);  // no checkpoint of the end
  EXPECT_TRUE(test::contains(err, "the last good checkpoint is " + checkpoint_dir(out, kept.back()))) << err;
  EXPECT_FALSE(path_exists(join_path(out, "model.safetensors")));
  EXPECT_EQ(step_lines(out).size(), static_cast<std::size_t>(steps));  // every step ran
}

TEST_F(Trainer, ARunWhoseFinalRewardsAreAllEqualFails) {
  const std::string out = tmp.file("out");
  TrainOptions o = small_options(out);
  o.init_config.clear();
  o.init_model = zero_model_folder(tmp.file("zero"));
  o.eval_data = assets().eval;
  o.save_every = 3;
  const std::int64_t steps = small_batches_per_epoch();
  const std::string err = test::error_of([&] { train_reward_model(o); });
  EXPECT_TRUE(test::contains(err, "the final evaluation on " + assets().eval + " gives all 80 sequences the same "
                                  "reward"))
      << err;
  EXPECT_TRUE(test::contains(err, "no final model was written")) << err;
  const auto kept = checkpoint_steps(out);
  ASSERT_FALSE(kept.empty());
  EXPECT_LT(kept.back(), steps);
  EXPECT_TRUE(test::contains(err, "the last good checkpoint is " + checkpoint_dir(out, kept.back()))) << err;
  EXPECT_FALSE(path_exists(join_path(out, "model.safetensors")));
  // The final evaluation is on record: reward std 0.
  EXPECT_EQ(eval_line_at(out, steps).at("reward_std").get<double>(), 0.0);
}

TEST_F(Trainer, AnEvalFileThatCannotBeEvaluatedFailsBeforeTheFirstStep) {
  const Assets& a = assets();
  // Every held-out pair is longer than max_length, and the policy drops them.
  std::string text;
  for (int i = 0; i < 5; ++i) {
    std::string answer;
    for (int k = 0; k < 40; ++k) answer += "and then the answer goes on ";
    text += pair_line("long" + std::to_string(i), "Tell me more.", answer, answer + "again");
  }
  const std::string long_pairs = tmp.file("long.jsonl");
  test::write_bytes(long_pairs, text);
  TrainOptions o = small_options(tmp.file("out"));
  o.eval_data = long_pairs;
  o.max_length = 128;  // some training pairs fit
  o.truncation = "drop";
  std::string err = test::error_of([&] { train_reward_model(o); });
  EXPECT_TRUE(test::contains(err, long_pairs + ": no pair left to evaluate (0 of 5 kept")) << err;
  EXPECT_FALSE(path_exists(tmp.file("out/metrics.jsonl")));  // no step was taken

  const std::string broken = tmp.file("broken.jsonl");
  test::write_bytes(broken, pairs_jsonl({a.train_pairs[0]}) + "{\"prompt\": \"Q\", \"chosen\": 5, \"rejected\": \"x\"}\n");
  o.output_dir = tmp.file("out2");
  o.eval_data = broken;
  err = test::error_of([&] { train_reward_model(o); });
  EXPECT_TRUE(test::contains(err, broken + ":2: field 'chosen'")) << err;
  EXPECT_FALSE(path_exists(tmp.file("out2/metrics.jsonl")));
}

TEST_F(TrainerCli, DegenerateRunsExitWithOneErrorLine) {
  const std::string log = tmp.file("run.log");
  std::string line = error_line(run_tool(small_flags_with(tmp.file("o1"), {"--warmup-steps", "1000"}), log));
  EXPECT_TRUE(test::contains(line, "1000 warm-up steps do not fit in this run of " +
                                       std::to_string(small_batches_per_epoch()) + " steps"))
      << line;
  line = error_line(run_tool(small_flags_with(tmp.file("o2"), {"--max-steps", "5", "--warmup-steps", "5"}), log));
  EXPECT_TRUE(test::contains(line, "'warmup_steps'")) << line;
  EXPECT_FALSE(path_exists(tmp.file("o2")));  // refused before anything is created
  line = error_line(run_tool(small_flags_with(tmp.file("o3"), {"--lr", "1e30", "--max-bad-steps", "1000"}), log));
  EXPECT_TRUE(test::contains(line, "steps were skipped for a non-finite loss or gradient")) << line;
  std::vector<std::string> zero = small_flags_with(tmp.file("o4"), {"--eval-data", assets().eval});
  const auto at = std::find(zero.begin(), zero.end(), "--init-config");
  at[0] = "--init-model";
  at[1] = zero_model_folder(tmp.file("zero"));
  line = error_line(run_tool(zero, log));
  EXPECT_TRUE(test::contains(line, "the same reward")) << line;
  line = error_line(run_tool(small_flags_with(tmp.file("o5"), {"--lr", "0"}), log));
  EXPECT_TRUE(test::contains(line, "'lr'")) << line;
}

// ---- data parallel (c10d Gloo on loopback) and LoRA -------------------------

// A free TCP port on the loopback interface (bound, read, released).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("no free port");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Starts `world` openrm-train processes as torchrun would (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); logs in
// <log_prefix><rank>.log.
std::vector<pid_t> spawn_ranks(int world, const std::vector<std::string>& flags, const std::string& log_prefix) {
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int rank = 0; rank < world; ++rank) {
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", port.c_str(), 1);
    pids.push_back(spawn_tool(flags, log_prefix + std::to_string(rank) + ".log"));
  }
  for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) {
    ::unsetenv(name);
  }
  return pids;
}

// Runs the ranks to their end; each one's exit code.
std::vector<int> run_ranks(int world, const std::vector<std::string>& flags, const std::string& log_prefix) {
  std::vector<int> codes;
  for (pid_t pid : spawn_ranks(world, flags, log_prefix)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    codes.push_back(decode_status(status));
  }
  return codes;
}

// The largest difference between two folders' weights (model.safetensors
// or adapter_model.safetensors), tensor by tensor; fails on other names.
double max_weight_difference(const std::string& a, const std::string& b, const char* file = "model.safetensors") {
  auto fa = SafetensorsFile::open(join_path(a, file));
  auto fb = SafetensorsFile::open(join_path(b, file));
  const auto names = [](const SafetensorsFile& f) {
    std::vector<std::string> out;
    for (const auto& e : f.entries()) out.push_back(e.name);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names(*fa), names(*fb));
  double worst = 0;
  for (const auto& name : names(*fa)) {
    const at::Tensor x = fa->tensor(name).to(at::kDouble);
    const at::Tensor y = fb->tensor(name).to(at::kDouble);
    worst = std::max(worst, (x - y).abs().max().item<double>());
  }
  return worst;
}

// ||a - b|| / ||a|| over all of two folders' weights (model.safetensors).
// Adam turns rounding-level gradient differences in near-zero gradients
// into steps of up to lr, so the largest single difference between runs
// that sum their gradients in another order depends on the machine's BLAS
// kernels (seen: 9e-5 on one machine, 5e-4 on another, lr 3e-3); the
// relative norm is what an error in the gradient sum (a half missing, twice
// the learning rate) moves by orders of magnitude.
double relative_weight_difference(const std::string& a, const std::string& b) {
  auto fa = SafetensorsFile::open(join_path(a, "model.safetensors"));
  auto fb = SafetensorsFile::open(join_path(b, "model.safetensors"));
  double diff = 0, norm = 0;
  for (const auto& e : fa->entries()) {
    const at::Tensor x = fa->tensor(e.name).to(at::kDouble);
    const at::Tensor y = fb->tensor(e.name).to(at::kDouble);
    diff += (x - y).pow(2).sum().item<double>();
    norm += x.pow(2).sum().item<double>();
  }
  return std::sqrt(diff / norm);
}

// `f` with `extra` added; a flag with a value that `f` has already is replaced.
std::vector<std::string> with_flags(std::vector<std::string> f, const std::vector<std::string>& extra) {
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const bool has_value = i + 1 < extra.size() && extra[i + 1].rfind("--", 0) != 0;
    const auto at = std::find(f.begin(), f.end(), extra[i]);
    if (has_value && at != f.end() && at + 1 != f.end()) {
      *(at + 1) = extra[++i];
    } else {
      f.push_back(extra[i]);
      if (has_value) f.push_back(extra[++i]);
    }
  }
  return f;
}

// Each step's loss and the final evaluation of two runs agree.
void expect_same_trajectory(const std::string& a, const std::string& b, double tolerance) {
  const auto la = step_lines(a, true), lb = step_lines(b, true);
  ASSERT_EQ(la.size(), lb.size());
  for (std::size_t i = 0; i < la.size(); ++i) {
    SCOPED_TRACE(la[i].dump());
    ASSERT_EQ(la[i].at("step"), lb[i].at("step"));
    if (la[i].contains("eval")) {
      const Json &x = la[i]["eval"], &y = lb[i]["eval"];
      EXPECT_EQ(x.at("pairs"), y.at("pairs"));
      // The evaluation's loss and mean reward carry the comparison. Its
      // accuracy is a count of signs: at max_length 64 many held-out pairs
      // are cut to nearly the same tokens, and their margins, near zero,
      // change sign with the rounding of a batch of another composition
      // (seen: up to 5 of 40 pairs on an AVX2 machine with identical weights,
      // at most 1 on an AVX-512 one), so it is only bounded loosely.
      EXPECT_LE(std::abs(x.at("accuracy").get<double>() - y.at("accuracy").get<double>()),
                5.0 / x.at("pairs").get<double>() + 1e-9);
      EXPECT_NEAR(x.at("loss").get<double>(), y.at("loss").get<double>(), tolerance);
      EXPECT_NEAR(x.at("reward_mean").get<double>(), y.at("reward_mean").get<double>(), 10 * tolerance);
      EXPECT_NEAR(x.at("mean_margin").get<double>(), y.at("mean_margin").get<double>(), 10 * tolerance);
    } else {
      EXPECT_EQ(la[i].at("pairs"), lb[i].at("pairs"));
      EXPECT_NEAR(la[i].at("loss").get<double>(), lb[i].at("loss").get<double>(), tolerance);
      // Relative: LibTorch 2.11's kernels drift the later norms by ~2e-4 of ~1.5.
      EXPECT_NEAR(la[i].at("grad_norm").get<double>(), lb[i].at("grad_norm").get<double>(),
                  10 * tolerance * std::max(1.0, std::abs(la[i].at("grad_norm").get<double>())));
      EXPECT_NEAR(la[i].at("lr").get<double>(), lb[i].at("lr").get<double>(), 1e-15);
    }
  }
}

TEST(DistributedEnv, TorchrunVariablesAreReadAndCheckedByName) {
  auto env = [](std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  // No WORLD_SIZE, or 1: one process, whatever else is set.
  EXPECT_FALSE(read_distributed_env(env({{"RANK", "3"}})).distributed());
  EXPECT_FALSE(read_distributed_env(env({{"WORLD_SIZE", "1"}, {"RANK", "x"}})).distributed());
  const DistributedEnv e = read_distributed_env(env({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"},
                                                     {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "node0"},
                                                     {"MASTER_PORT", "29500"}}));
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_EQ(e.store_port, 29500);
  // Under torchrun's agent store, openrm's own store is on the next port.
  EXPECT_EQ(read_distributed_env(env({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29500"},
                                      {"TORCHELASTIC_USE_AGENT_STORE", "True"}}))
                .store_port,
            29501);
  // One machine: LOCAL_RANK defaults to RANK.
  EXPECT_EQ(read_distributed_env(env({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}))
                .local_rank,
            1);
  const std::map<std::string, std::string> good = {{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"},
                                                   {"MASTER_PORT", "29500"}};
  auto error = [&](std::map<std::string, std::string> change, const std::vector<std::string>& drop) {
    auto vars = good;
    for (auto& [k, v] : change) vars[k] = v;
    for (auto& k : drop) vars.erase(k);
    return test::error_of([&] { read_distributed_env(env(vars)); });
  };
  EXPECT_TRUE(test::contains(error({}, {"RANK"}), "RANK is not set"));
  EXPECT_TRUE(test::contains(error({}, {"MASTER_ADDR"}), "MASTER_ADDR is not set"));
  EXPECT_TRUE(test::contains(error({}, {"MASTER_PORT"}), "MASTER_PORT is not set"));
  EXPECT_TRUE(test::contains(error({{"RANK", "2"}}, {}), "RANK=2 is not below WORLD_SIZE=2"));
  EXPECT_TRUE(test::contains(error({{"RANK", "one"}}, {}), "RANK='one'"));
  EXPECT_TRUE(test::contains(error({{"MASTER_PORT", "70000"}}, {}), "MASTER_PORT='70000'"));
  EXPECT_TRUE(test::contains(error({{"WORLD_SIZE", "-2"}}, {}), "WORLD_SIZE='-2'"));
  EXPECT_TRUE(test::contains(error({{"LOCAL_WORLD_SIZE", "1"}}, {}), "LOCAL_RANK is not set"));
  EXPECT_TRUE(test::contains(error({{"LOCAL_WORLD_SIZE", "1"}, {"LOCAL_RANK", "1"}}, {}),
                             "LOCAL_RANK=1 is not below LOCAL_WORLD_SIZE=1"));
}

TEST(DistributedShare, PairsAreDealtWholeAndBalancedByTokens) {
  const std::vector<std::int64_t> indices = {10, 11, 12, 13, 14, 15, 16};
  const std::vector<std::int64_t> tokens = {100, 90, 80, 50, 40, 30, 5};
  std::vector<std::int64_t> all;
  std::vector<std::int64_t> load;
  for (int r = 0; r < 3; ++r) {
    const auto share = detail::rank_share(indices, tokens, r, 3);
    EXPECT_TRUE(std::is_sorted(share.begin(), share.end())) << "the batch's order";
    std::int64_t t = 0;
    for (auto i : share) t += tokens[static_cast<std::size_t>(i - 10)];
    load.push_back(t);
    all.insert(all.end(), share.begin(), share.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, indices) << "every pair on exactly one rank";
  // Longest first to the least loaded: {100,30,5}, {90,40}, {80,50}.
  EXPECT_EQ(load, (std::vector<std::int64_t>{135, 130, 130}));
  EXPECT_EQ(detail::rank_share(indices, tokens, 0, 1), indices);
  // More ranks than pairs: some get none.
  EXPECT_TRUE(detail::rank_share({7}, {3}, 1, 2).empty());
}

// The issue's equality: a 2-rank job on loopback Gloo with the options of a
// 1-process run (same global batch by construction) follows its trajectory
// within float tolerance, with and without gradient accumulation and
// gradient checkpointing (whose recomputed layers deliver gradients in
// their own backward passes), and evaluates the same.
TEST_F(TrainerCli, TwoGlooRanksFollowTheOneProcessTrajectory) {
  const std::vector<std::vector<std::string>> variants = {
      {"--grad-accum", "2", "--epochs", "2"},
      {"--gradient-checkpointing", "--bucket-mb", "1"},
      // One pair per micro-batch (the padded budget, no prefix sharing): rank 1
      // has no share and only joins the sums.
      {"--max-tokens", "130", "--grad-accum", "3", "--max-steps", "5", "--no-prefix-sharing"},
      // Two or three pairs per micro-batch with prefix sharing (the budget
      // counts rows computed), split across the ranks.
      {"--max-tokens", "300", "--grad-accum", "2", "--max-steps", "4"},
  };
  for (std::size_t v = 0; v < variants.size(); ++v) {
    SCOPED_TRACE(v);
    const std::string one = tmp.file("one" + std::to_string(v)), two = tmp.file("two" + std::to_string(v));
    const auto extra = with_flags({"--eval-data", assets().eval, "--eval-every", "4"}, variants[v]);
    const ToolRun single = run_tool(with_flags(small_flags(one), extra), tmp.file("one.log"));
    ASSERT_EQ(single.status, 0) << single.output;
    const auto codes = run_ranks(2, with_flags(small_flags(two), extra), tmp.file("two-rank"));
    const std::string log0 = test::read_bytes(tmp.file("two-rank0.log"));
    const std::string log1 = test::read_bytes(tmp.file("two-rank1.log"));
    ASSERT_EQ(codes, (std::vector<int>{0, 0})) << log0 << "\n---- rank 1:\n" << log1;
    EXPECT_TRUE(test::contains(log0, "rank 0 of 2: gloo process group formed")) << log0;
    EXPECT_TRUE(test::contains(log0, "wrote " + two)) << log0;
    // Rank 1 trains in silence and writes nothing of its own.
    EXPECT_FALSE(test::contains(log1, "wrote")) << log1;
    EXPECT_FALSE(test::contains(log1, "effective configuration")) << log1;
    const double worst = max_weight_difference(one, two), relative = relative_weight_difference(one, two);
    std::printf("[ data parallel ] variant %zu: 2 ranks vs 1 process, largest weight difference %.3g, "
                "relative %.3g\n", v, worst, relative);
    EXPECT_LT(relative, 1e-3);
    expect_same_trajectory(one, two, 1e-4);
    // The folder is the one-process run's, checkpoints included.
    EXPECT_EQ(checkpoint_steps(one), checkpoint_steps(two));
    Json config_one = Json::parse(read_text_file(join_path(one, "training_config.json")));
    Json config_two = Json::parse(read_text_file(join_path(two, "training_config.json")));
    config_one.erase("output_dir");
    config_two.erase("output_dir");
    EXPECT_EQ(config_one, config_two);
  }
}

// A checkpoint is the global state: a run resumes from it with another
// number of ranks and ends where the uninterrupted run ends.
TEST_F(TrainerCli, ResumeWithAnotherNumberOfRanks) {
  const auto extra = std::vector<std::string>{"--epochs", "2", "--save-every", "5"};
  const std::string reference = tmp.file("reference");
  ASSERT_EQ(run_tool(with_flags(small_flags(reference), extra), tmp.file("ref.log")).status, 0);
  const auto steps = checkpoint_steps(reference);
  ASSERT_GE(steps.size(), 2u);
  for (int first : {2, 1}) {
    SCOPED_TRACE("first run with " + std::to_string(first) + " rank(s)");
    const std::string out = tmp.file("resumed" + std::to_string(first));
    const auto flags = with_flags(small_flags(out), extra);
    const auto codes = first == 1 ? std::vector<int>{run_tool(flags, tmp.file("a.log")).status}
                                  : run_ranks(2, flags, tmp.file("a"));
    ASSERT_EQ(codes, std::vector<int>(static_cast<std::size_t>(first), 0));
    // As if stopped after the second-newest checkpoint.
    fs::remove_all(checkpoint_dir(out, steps.back()));
    const std::int64_t from = checkpoint_steps(out).back();
    const int second = 3 - first;
    std::string log;
    if (second == 1) {
      const ToolRun r = run_tool(flags, tmp.file("b.log"));
      ASSERT_EQ(r.status, 0) << r.output;
      log = r.output;
    } else {
      ASSERT_EQ(run_ranks(2, flags, tmp.file("b")), (std::vector<int>{0, 0})) << test::read_bytes(tmp.file("b0.log"));
      log = test::read_bytes(tmp.file("b0.log"));
    }
    EXPECT_TRUE(test::contains(log, "resumed from " + checkpoint_dir(out, from))) << log;
    const double worst = max_weight_difference(reference, out), relative = relative_weight_difference(reference, out);
    std::printf("[ data parallel ] %d rank(s) then %d: largest weight difference to one process %.3g, relative %.3g\n",
                first, second, worst, relative);
    EXPECT_LT(relative, 1e-3);
  }
}

// A rank killed, or stopped, mid-run: the other stops within the timeout
// with a message naming it, and the newest checkpoint stays whole.
TEST_F(TrainerCli, ADeadOrHungRankStopsTheOtherNamingIt) {
  for (const int signal : {SIGKILL, SIGSTOP}) {
    SCOPED_TRACE(signal == SIGKILL ? "killed" : "stopped");
    const std::string out = tmp.file(signal == SIGKILL ? "killed" : "stopped");
    const double timeout = signal == SIGKILL ? 60 : 6;
    const auto flags = with_flags(small_flags(out), {"--epochs", "50", "--save-every", "1", "--dist-timeout",
                                                     std::to_string(static_cast<int>(timeout))});
    const auto pids = spawn_ranks(2, flags, tmp.file("fault"));
    const auto newest = [&] {
      const auto steps = checkpoint_steps(out);
      return steps.empty() ? std::int64_t{0} : steps.back();
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (newest() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GE(newest(), 2) << test::read_bytes(tmp.file("fault0.log"));
    ::kill(pids[1], signal);
    const auto t0 = std::chrono::steady_clock::now();
    const int end = test::kill_when(pids[0], [] { return false; }, /*timeout_s=*/timeout + 30);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ::kill(pids[1], SIGKILL);
    ::waitpid(pids[1], nullptr, 0);
    const std::string log = test::read_bytes(tmp.file("fault0.log"));
    std::printf("[ data parallel ] rank 1 %s: rank 0 stopped after %.1f s\n", signal == SIGKILL ? "killed" : "stopped",
                seconds);
    EXPECT_EQ(end, 1) << log;
    EXPECT_LT(seconds, timeout + 15) << log;
    const std::string line = error_line({end, log});
    EXPECT_TRUE(test::contains(line, "data-parallel training stopped")) << line;
    EXPECT_TRUE(test::contains(line, "rank 1 is gone")) << line;
    expect_complete_checkpoints(out, 1000000);
    EXPECT_NO_THROW(load_reward_model(checkpoint_dir(out, newest())));
  }
}

// Wrong torchrun variables: one error line naming the variable, before any work.
TEST_F(TrainerCli, BadDistributedEnvironmentIsOneErrorLine) {
  const std::string out = tmp.file("out");
  ::setenv("WORLD_SIZE", "2", 1);
  ToolRun r = run_tool(small_flags(out), tmp.file("a.log"));
  EXPECT_TRUE(test::contains(error_line(r), "RANK is not set")) << r.output;
  ::setenv("RANK", "0", 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", "http", 1);
  r = run_tool(small_flags(out), tmp.file("b.log"));
  EXPECT_TRUE(test::contains(error_line(r), "MASTER_PORT='http'")) << r.output;
  // Nobody else joins: the rendezvous gives up after --dist-timeout.
  ::setenv("MASTER_PORT", std::to_string(free_port()).c_str(), 1);
  r = run_tool(with_flags(small_flags(out), {"--dist-timeout", "2"}), tmp.file("c.log"));
  // LibTorch 1.13's store server does not wait for the clients, so Gloo's
  // rendezvous times out; 2.x's server times out itself. Both say so.
  EXPECT_TRUE(test::contains(error_line(r), "not all 2 ranks joined")) << r.output;
  EXPECT_TRUE(test::contains(error_line(r), "within 2 s")) << r.output;
  for (const char* name : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(name);
  EXPECT_FALSE(path_exists(join_path(out, "metrics.jsonl")));
}

// torchrun itself (the reference environment's) launches the ranks.
TEST_F(TrainerCli, TorchrunLaunchesTheRanks) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  const std::string torchrun = fs::path(python).parent_path().string() + "/torchrun";
  if (!path_exists(torchrun)) GTEST_SKIP() << torchrun << " is absent";
  const std::string one = tmp.file("one"), two = tmp.file("two");
  ASSERT_EQ(run_tool(small_flags(one), tmp.file("one.log")).status, 0);
  std::string command = torchrun + " --nproc-per-node 2 --master-port " + std::to_string(free_port()) +
                        " --no-python " + tool_path();
  for (const auto& f : small_flags(two)) command += " '" + f + "'";
  const std::string log = tmp.file("torchrun.log");
  const int status = std::system((command + " > '" + log + "' 2>&1").c_str());
  ASSERT_EQ(status, 0) << test::read_bytes(log);
  EXPECT_TRUE(test::contains(test::read_bytes(log), "rank 0 of 2: gloo process group formed")) << test::read_bytes(log);
  EXPECT_LT(relative_weight_difference(one, two), 1e-3);
}

// openrm-train --lora-rank: adapters and the head trained over a frozen
// base, written as a PEFT adapter folder that PEFT loads with openrm's
// scores; resume, gradient checkpointing and two ranks with it.
TEST_F(TrainerCli, LoraTrainsAdaptersAndTheHeadIntoAPeftFolder) {
  // The base: a small reward model trained here, a full HF folder.
  const std::string base = tmp.file("base");
  ASSERT_EQ(run_tool(small_flags(base), tmp.file("base.log")).status, 0);
  const std::string base_sha = model_sha(base);
  const auto lora_flags = [&](const std::string& out, const std::vector<std::string>& extra) {
    std::vector<std::string> f = small_flags_with(out, {"--epochs", "2", "--save-every", "5", "--eval-data",
                                                        assets().eval, "--lora-rank", "4", "--lora-alpha", "8"});
    const auto at = std::find(f.begin(), f.end(), "--init-config");
    at[0] = "--init-model";
    at[1] = base;
    f.erase(std::find(f.begin(), f.end(), "--tokenizer"), std::find(f.begin(), f.end(), "--tokenizer") + 2);
    return with_flags(f, extra);
  };
  const std::string out = tmp.file("lora");
  const ToolRun r = run_tool(lora_flags(out, {}), tmp.file("lora.log"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::contains(r.output, "LoRA: rank 4")) << r.output;
  EXPECT_TRUE(test::contains(r.output, "memory: about")) << r.output;
  EXPECT_EQ(model_sha(base), base_sha) << "the base is left alone";
  EXPECT_FALSE(path_exists(join_path(out, "model.safetensors")));
  const Json config = Json::parse(read_text_file(join_path(out, "adapter_config.json")));
  EXPECT_EQ(config.at("r"), 4);
  EXPECT_EQ(config.at("lora_alpha").get<double>(), 8.0);
  EXPECT_EQ(config.at("task_type"), "SEQ_CLS");
  EXPECT_EQ(config.at("base_model_name_or_path"), fs::absolute(base).lexically_normal().string());
  // The head is trained: it differs from the base's.
  auto adapter = SafetensorsFile::open(join_path(out, "adapter_model.safetensors"));
  auto base_weights = SafetensorsFile::open(join_path(base, "model.safetensors"));
  at::Tensor head;
  for (const auto& e : adapter->entries()) {
    if (e.name.find("score") != std::string::npos && e.name.find("lora") == std::string::npos) head = adapter->tensor(e.name);
  }
  ASSERT_TRUE(head.defined());
  EXPECT_GT((head - base_weights->tensor("score.weight")).abs().max().item<double>(), 1e-3);
  // Peak memory is in every step's metrics.
  const auto lines = read_jsonl(join_path(out, "metrics.jsonl"));
  ASSERT_FALSE(lines.empty());
  EXPECT_GT(lines.front().value("peak_memory_bytes", std::int64_t{0}), 1 << 20);

  // The folder loads (base + adapter, merged) and evaluates as the trainer did.
  EvalOptions e;
  e.threads = 1;
  const EvalResult evaluated = evaluate_file(out, assets().eval, e);
  const Json final_eval = step_lines(out, true).back().at("eval");
  EXPECT_NEAR(evaluated.metrics.loss, final_eval.at("loss").get<double>(), 1e-5);

  // PEFT on transformers' base gives openrm's rewards for the same tokens.
  const std::string python = test::reference_python();
  if (!python.empty()) {
    Json sequences = Json::array();
    std::vector<double> ours;
    auto merged = load_reward_model(out);
    merged->eval();
    ReadOptions read;
    read.max_records = 6;
    TokenizeOptions t;
    t.max_length = 64;
    const auto pairs = tokenize_pairs(read_preferences(assets().eval, read).pairs, *assets().tok, t).pairs;
    for (const auto& p : pairs) {
      sequences.push_back(p.chosen);
      torch::NoGradGuard no_grad;
      ours.push_back(merged->score({std::vector<std::int64_t>(p.chosen.begin(), p.chosen.end())})[0]);
    }
    const std::string script = tmp.file("peft_scores.py"), seq = tmp.file("seq.json"), got = tmp.file("peft.json");
    test::write_bytes(seq, sequences.dump());
    test::write_bytes(script,
                      "import json, sys, torch\n"
                      "from peft import PeftModel\n"
                      "from transformers import AutoModelForSequenceClassification\n"
                      "base = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], dtype=torch.float32)\n"
                      "model = PeftModel.from_pretrained(base, sys.argv[2]).eval()\n"
                      "with torch.no_grad():\n"
                      "    print(json.dumps([model(input_ids=torch.tensor([s])).logits[0, 0].item() "
                      "for s in json.load(open(sys.argv[3]))]))\n");
    const int status = std::system(("'" + python + "' '" + script + "' '" + base + "' '" + out + "' '" + seq +
                                    "' > '" + got + "' 2> '" + tmp.file("peft.log") + "'").c_str());
    ASSERT_EQ(status, 0) << test::read_bytes(tmp.file("peft.log"));
    const auto peft = Json::parse(test::read_bytes(got)).get<std::vector<double>>();
    ASSERT_EQ(peft.size(), ours.size());
    double worst = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::abs(peft[i] - ours[i]));
    std::printf("[ lora train ] PEFT 0.21 on the trained adapter vs openrm: max |diff| %.3g\n", worst);
    EXPECT_LT(worst, 1e-4);
  } else {
    std::printf("[ lora train ] PEFT comparison skipped: %s\n", test::kNoReferenceMessage);
  }

  // Resume: from the second-newest checkpoint to the same adapter.
  const auto steps = checkpoint_steps(out);
  ASSERT_GE(steps.size(), 2u);
  const std::string resumed = tmp.file("lora-resumed");
  fs::copy(out, resumed, fs::copy_options::recursive);
  fs::remove_all(checkpoint_dir(resumed, steps.back()));
  const ToolRun again = run_tool(lora_flags(resumed, {}), tmp.file("resumed.log"));
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_TRUE(test::contains(again.output, "resumed from")) << again.output;
  EXPECT_LE(max_weight_difference(out, resumed, "adapter_model.safetensors"), 1e-6);

  // Gradient checkpointing with LoRA recomputes the same thing.
  const std::string checkpointed = tmp.file("lora-ckpt");
  ASSERT_EQ(run_tool(lora_flags(checkpointed, {"--gradient-checkpointing"}), tmp.file("ckpt.log")).status, 0);
  EXPECT_LE(max_weight_difference(out, checkpointed, "adapter_model.safetensors"), 1e-5);

  // Two ranks with LoRA follow the one-process run.
  const std::string two = tmp.file("lora-two");
  ASSERT_EQ(run_ranks(2, lora_flags(two, {}), tmp.file("lora-rank")), (std::vector<int>{0, 0}))
      << test::read_bytes(tmp.file("lora-rank0.log"));
  const double worst = max_weight_difference(out, two, "adapter_model.safetensors");
  std::printf("[ lora train ] 2 ranks vs 1 process: largest adapter difference %.3g\n", worst);
  EXPECT_LT(worst, 1e-4);

  // The frozen base in bf16: training runs and lands near the fp32 run.
  const std::string bf16 = tmp.file("lora-bf16");
  const ToolRun b = run_tool(lora_flags(bf16, {"--lora-base-bf16"}), tmp.file("bf16.log"));
  ASSERT_EQ(b.status, 0) << b.output;
  const double bf16_loss = step_lines(bf16, true).back().at("eval").at("loss").get<double>();
  std::printf("[ lora train ] final eval loss: fp32 base %.4f, bf16 base %.4f\n", final_eval.at("loss").get<double>(),
              bf16_loss);
  EXPECT_NEAR(bf16_loss, final_eval.at("loss").get<double>(), 0.05);
}

}  // namespace
}  // namespace openrm
