// openrm's trainer against a plain PyTorch training loop over transformers'
// LlamaForSequenceClassification: the same initial weights, pairs, batches,
// AdamW settings, schedule and clipping; per-step losses must agree within
// 1e-3 (and the learning rates exactly, the gradient norms within 1%).
// The reference trajectory is tests/fixtures/training/reference.json, written
// by tests/fixtures/make_training_reference.py (docs/training.md).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <openrm/data/batching.h>
#include <openrm/data/preference.h>
#include <openrm/data/tokenize.h>
#include <openrm/error.h>
#include <openrm/io/file.h>
#include <openrm/tokenizer/tokenizer.h>
#include <openrm/train/trainer.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using Json = nlohmann::json;

constexpr double kLossTolerance = 1e-3;
constexpr double kGradNormRelTolerance = 1e-2;

std::string fixture_dir() { return std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/training"; }
std::string fixture(const std::string& name) { return fixture_dir() + "/" + name; }

const Json& reference() {
  static const Json j = Json::parse(read_text_file(fixture("reference.json")));
  return j;
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  std::istringstream in(read_text_file(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(Json::parse(line));
  }
  return out;
}

const Json& run_named(const std::string& name) {
  for (const Json& run : reference().at("runs")) {
    if (run.at("name") == name) return run;
  }
  throw std::runtime_error("reference.json has no run " + name);
}

// The premise of the comparison: openrm feeds the model the token ids that
// the reference loop fed transformers (BOS + sentencepiece ids of prompt +
// response, which Python's sentencepiece produced).
TEST(TrainingReference, OpenrmTokenizesThePairsAsTheReferenceDid) {
  ReadOptions read;
  read.format = PreferenceFormat::kPlain;
  const PreferenceData data = read_preferences(fixture("pairs.jsonl"), read);
  const auto tokenizer = load_tokenizer(fixture("initial"));
  TokenizeOptions t;
  t.format = ChatFormat::kPlain;
  t.max_length = 0;
  t.threads = 1;
  const TokenizedPairs tokenized = tokenize_pairs(data.pairs, *tokenizer, t);
  const Json& expected = reference().at("tokens");
  ASSERT_EQ(tokenized.pairs.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(tokenized.pairs[i].chosen, expected[i].at("chosen").get<std::vector<TokenId>>()) << "pair " << i;
    EXPECT_EQ(tokenized.pairs[i].rejected, expected[i].at("rejected").get<std::vector<TokenId>>()) << "pair " << i;
  }
}

// The other premise: without shuffling, batches are consecutive runs of pairs
// in file order filled greedily to the budget (sequences x longest). Worked
// by hand: pair lengths {longest 4, 2, 5, 3, 3} with a budget of 16 tokens:
// [0, 1] costs 4 x 4 = 16, adding 2 would cost 6 x 5 = 30; [2] costs 10,
// adding 3 would cost 20; [3, 4] costs 12.
TEST(TrainingReference, WithoutShuffleBatchesAreFileOrderRuns) {
  const std::vector<std::vector<std::int64_t>> lengths = {{4, 1}, {2, 2}, {5, 3}, {3, 1}, {2, 3}};
  BatchingOptions o;
  o.max_tokens = 16;
  o.shuffle = false;
  o.sort_by_length = false;
  const std::vector<std::vector<std::int64_t>> expected = {{0, 1}, {2}, {3, 4}};
  EXPECT_EQ(make_batches(lengths, o), expected);
  o.sort_by_length = true;  // the default sorts the bucket longest first: 2, 0, 3, 4, 1
  EXPECT_NE(make_batches(lengths, o), expected);
}

// The fixture's options for `run`, on the fixture's data and model.
TrainOptions options_of(const Json& run) {
  TrainOptions o;
  apply_train_options_json(o, run.at("options"), "reference.json run " + run.at("name").get<std::string>());
  o.data = {fixture("pairs.jsonl")};
  o.init_model = fixture("initial");
  o.log_every = 1;
  o.threads = 2;
  return o;
}

// Compares every step line of metrics.jsonl with the reference loop's step.
void check_metrics(const std::string& name, const std::string& metrics_path, const Json& run,
                   std::int64_t grad_accum) {
  const Json& steps = run.at("steps");
  std::vector<Json> metrics;
  for (Json& j : read_jsonl(metrics_path)) {
    if (!j.contains("eval")) metrics.push_back(std::move(j));
  }
  ASSERT_EQ(metrics.size(), steps.size());
  const std::int64_t pairs_per_step = run.at("pairs_per_micro_batch").get<std::int64_t>() * grad_accum;
  double max_loss_diff = 0.0, max_norm_rel = 0.0;
  std::int64_t worst_step = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Json& want = steps[i];
    const Json& got = metrics[i];
    ASSERT_EQ(got.at("step"), want.at("step"));
    EXPECT_EQ(got.at("skipped"), false) << "step " << i + 1;
    // The same batches: a step of the wrong size would mean other pairs.
    ASSERT_EQ(got.at("pairs").get<std::int64_t>(), pairs_per_step) << "step " << i + 1;
    const double loss = got.at("loss").get<double>(), want_loss = want.at("loss").get<double>();
    EXPECT_NEAR(loss, want_loss, kLossTolerance) << "step " << i + 1;
    if (std::abs(loss - want_loss) > max_loss_diff) {
      max_loss_diff = std::abs(loss - want_loss);
      worst_step = static_cast<std::int64_t>(i) + 1;
    }
    // The schedule: transformers' LambdaLR in double against lr_at.
    const double want_lr = want.at("lr").get<double>();
    EXPECT_NEAR(got.at("lr").get<double>(), want_lr, 1e-12 + 1e-9 * want_lr) << "step " << i + 1;
    // Norms before clipping: they follow the weights, so loosely.
    const double norm = got.at("grad_norm").get<double>(), want_norm = want.at("grad_norm").get<double>();
    EXPECT_NEAR(norm, want_norm, kGradNormRelTolerance * want_norm) << "step " << i + 1;
    max_norm_rel = std::max(max_norm_rel, std::abs(norm - want_norm) / want_norm);
  }
  std::cout << name << ": " << steps.size() << " steps, loss " << steps[0].at("loss").get<double>() << " -> "
            << steps.back().at("loss").get<double>() << "; largest loss difference " << max_loss_diff
            << " (step " << worst_step << "), largest relative grad-norm difference " << max_norm_rel << "\n";
}

// Runs openrm's trainer with the fixture's options for `run` and compares
// every step of metrics.jsonl with the reference loop's.
void check_run(const std::string& name) {
  const Json& run = run_named(name);
  TrainOptions o = options_of(run);
  test::TempDir out;
  o.output_dir = out.path() + "/model";
  const TrainResult result = train_reward_model(o);
  ASSERT_EQ(result.steps, static_cast<std::int64_t>(run.at("steps").size()));
  EXPECT_EQ(result.skipped_steps, 0);
  check_metrics(name, out.path() + "/model/metrics.jsonl", run, o.grad_accum);
}

TEST(TrainingReference, CosineScheduleWithDecayAndClippingMatchesPyTorch) {
  check_run("cosine_min_lr_clip_decay");
}

TEST(TrainingReference, AccumulationMarginsAndCenteringMatchPyTorch) {
  check_run("linear_accum2_margin_center");
}

// The same through openrm-train: the options as a --config file, except
// shuffle, given as the flag.
TEST(TrainingReference, TheCliWithShuffleFalseMatchesPyTorch) {
  if (!test::tool_built("openrm-train")) GTEST_SKIP() << "openrm-train is not built";
  const std::string name = "linear_accum2_margin_center";
  const Json& run = run_named(name);
  test::TempDir tmp;
  Json config = run.at("options");
  ASSERT_EQ(config.at("shuffle"), false);
  config.erase("shuffle");
  write_file_atomic(tmp.file("config.json"), config.dump());
  const std::string args = "--config '" + tmp.file("config.json") + "' --shuffle false --data '" +
                           fixture("pairs.jsonl") + "' --init-model '" + fixture("initial") + "' --output '" +
                           tmp.file("model") + "' --threads 1 --log-every 1";
  const test::ToolRun r = test::run_tool("openrm-train", args, tmp);
  ASSERT_EQ(r.status, 0) << r.output;
  check_metrics(name + " (openrm-train)", tmp.file("model") + "/metrics.jsonl", run,
                config.at("grad_accum").get<std::int64_t>());
}

// A checkpoint written before an option existed resumes as if it had the
// option's default; a non-default value is a change of the trajectory.
TEST(TrainingReference, ResumeTakesAnOptionMissingFromTheCheckpointAsItsDefault) {
  TrainOptions o = options_of(run_named("linear_accum2_margin_center"));
  o.shuffle = true;  // the default
  o.max_steps = 6;
  o.save_every = 3;
  o.keep_checkpoints = 5;
  test::TempDir out;
  o.output_dir = out.path() + "/model";
  train_reward_model(o);
  const std::string ckpts = o.output_dir + "/checkpoints/";
  const std::string state_path = ckpts + "checkpoint-00000003/trainer_state.json";
  ASSERT_EQ(Json::parse(read_text_file(state_path)).at("options").at("shuffle"), true);
  const auto forget_the_option = [&] {  // and go back to step 3
    std::filesystem::remove_all(ckpts + "checkpoint-00000006");
    Json state = Json::parse(read_text_file(state_path));
    state["options"].erase("shuffle");
    write_file_atomic(state_path, state.dump(2));
  };
  forget_the_option();
  EXPECT_EQ(train_reward_model(o).resumed_from, 3);
  forget_the_option();
  o.shuffle = false;
  try {
    train_reward_model(o);
    ADD_FAILURE() << "resumed with another shuffle setting";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("option 'shuffle' was true and is now false"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace openrm
