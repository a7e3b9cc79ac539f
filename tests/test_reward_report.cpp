// Reward reports (docs/reward-reports.md): the card of a trained folder has
// every section, its data and lineage hashes agree with sha256sum's, the
// data licence is recorded and survives a resume; evaluations append to the
// card and evaluations.jsonl without touching what was there, refuse a
// README.md that is a link, FIFO or folder, and survive a rerun of the
// training (kept aside when the model changed); an exported folder's card
// carries the lineage of its input (and of an adapter's base). Tiny models
// (hidden 32, 2 layers), a few steps each.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <openrm/data/preference.h>
#include <openrm/eval/evaluate.h>
#include <openrm/io/file.h>
#include <openrm/logging.h>
#include <openrm/train/export.h>
#include <openrm/train/reward_report.h>
#include <openrm/train/trainer.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"
#include "train/model_card.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// SHA-256 computed outside openrm: sha256sum, else Python's hashlib in the
// reference environment; "" when neither runs.
std::string independent_sha256(const std::string& path) {
  const auto first_word = [](const std::string& command) {
    std::string out;
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char buf[256];
      while (std::fgets(buf, sizeof(buf), p)) out += buf;
      if (::pclose(p) != 0) out.clear();
    }
    const std::size_t end = out.find_first_of(" \n");
    return out.substr(0, end == std::string::npos ? out.size() : end);
  };
  std::string sha = first_word("sha256sum '" + path + "' 2>/dev/null");
  if (sha.size() == 64) return sha;
  const std::string python = test::reference_python();
  if (python.empty()) return "";
  sha = first_word("'" + python + "' -c \"import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read())"
                   ".hexdigest())\" '" + path + "'");
  return sha.size() == 64 ? sha : "";
}

std::string pairs_jsonl(const std::vector<PreferencePair>& pairs) {
  std::string text;
  for (const auto& p : pairs) {
    text += Json({{"prompt", p.prompt.back().content},
                  {"chosen", p.chosen.back().content},
                  {"rejected", p.rejected.back().content}})
                .dump() +
            "\n";
  }
  return text;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A number of an evaluation's JSON as the card shows it.
std::string shown(const OrderedJson& v) { return v.is_null() ? "n/a" : fixed(v.get<double>()); }

std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> out;
  std::istringstream in(read_text_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

// A tiny Llama reward model folder with its tokenizer (the base), 48 demo
// training pairs and 16 held-out ones, and a run trained from the base on
// them for 3 steps with a data licence, made once for the binary.
struct Fixture {
  test::TempDir dir;
  std::string base, train, eval, run;
  TrainOptions options;
  TrainResult result;
};

TrainOptions tiny_options(const Fixture& f, const std::string& output) {
  TrainOptions o;
  o.data = {f.train};
  o.eval_data = f.eval;
  o.output_dir = output;
  o.max_length = 48;
  o.max_tokens = 1024;
  o.lr = 3e-3;
  o.max_steps = 3;
  o.threads = 1;
  o.seed = 7;
  o.log_every = 1000;
  return o;
}

const Fixture& fixture() {
  static const std::unique_ptr<Fixture> f = [] {
    auto f = std::make_unique<Fixture>();
    set_log_level(LogLevel::kWarn);
    f->base = f->dir.file("base");
    test::make_tiny_model_folder(f->base, /*with_tokenizer=*/true);
    ReadOptions read;
    read.max_records = 48;
    test::write_bytes(f->train = f->dir.file("train.jsonl"),
                      pairs_jsonl(read_preferences(std::string(OPENRM_SOURCE_DIR) + "/data/demo-prefs-train.jsonl.gz",
                                                   read).pairs));
    read.max_records = 16;
    test::write_bytes(f->eval = f->dir.file("eval.jsonl"),
                      pairs_jsonl(read_preferences(std::string(OPENRM_SOURCE_DIR) + "/data/demo-prefs-test.jsonl.gz",
                                                   read).pairs));
    f->options = tiny_options(*f, f->dir.file("run"));
    f->options.init_model = f->base;
    f->options.data_license = "cc-by-4.0";
    f->result = train_reward_model(f->options);
    f->run = f->options.output_dir;
    return f;
  }();
  return *f;
}

// A copy of the trained folder to append to.
std::string copy_of_run(const test::TempDir& tmp, const std::string& name) {
  const std::string dir = tmp.file(name);
  fs::copy(fixture().run, dir, fs::copy_options::recursive);
  return dir;
}

CardEvaluation evaluation_of(const std::string& model_dir, const std::string& data, const std::string& date) {
  EvalOptions options;
  options.threads = 1;
  const EvalResult result = evaluate_file(model_dir, data, options);
  CardEvaluation e;
  e.date = date;
  e.data_path = data;
  e.data_sha256 = sha256_file(data);
  e.pairs = result.metrics.pairs;
  e.metrics = eval_result_json(result);
  e.tool_version = "openrm-eval test";
  return e;
}

class RewardReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { fixture(); }
  test::TempDir tmp;
};

// ---- the card of a trained folder ------------------------------------------------

TEST_F(RewardReport, TheTrainedCardHasEverySectionWithItsNumbers) {
  const Fixture& f = fixture();
  const std::string card = read_text_file(join_path(f.run, "README.md"));
  for (const char* section : {"# Reward report: `LlamaForSequenceClassification` reward model", "## Intended use",
                              "## Model", "## Lineage", "## Training data", "## Evaluation data",
                              "## Preference collection", "## Training", "## Evaluation at the end of training",
                              "## Known biases", "## Limitations", "## Evaluations"}) {
    EXPECT_TRUE(test::contains(card, std::string("\n") + section + "\n") || card.rfind(section, 0) == 0) << section;
  }
  EXPECT_TRUE(test::contains(card, "Out of scope"));
  EXPECT_TRUE(test::contains(card, "best-of-n"));
  EXPECT_TRUE(test::contains(card, "**Not recorded**: who wrote the prompts"));
  // The card ends with the heading evaluations are appended under.
  EXPECT_EQ(card.rfind("## Evaluations"), card.rfind("\n## ") + 1);

  // The data files' hashes are sha256sum's.
  for (const std::string& file : {f.train, f.eval}) {
    const std::string sha = independent_sha256(file);
    if (sha.empty()) GTEST_SKIP() << "neither sha256sum nor the reference python runs here";
    EXPECT_TRUE(test::contains(card, "| `" + file + "` | `" + sha + "` |")) << card;
  }
  EXPECT_TRUE(test::contains(card, "Licence of the data: `cc-by-4.0`"));

  // The final evaluation's numbers, calibration bins and length bias.
  const PreferenceMetrics& m = f.result.eval;
  ASSERT_TRUE(f.result.has_eval);
  EXPECT_TRUE(test::contains(card, "| pairs | " + std::to_string(m.pairs) + " |"));
  EXPECT_TRUE(test::contains(card, "| accuracy (a tie counts as wrong) | " + fixed(m.accuracy) + " |"));
  EXPECT_TRUE(test::contains(card, "| mean margin r_chosen - r_rejected | " + fixed(m.mean_margin) + " |"));
  EXPECT_TRUE(test::contains(card, "| Bradley-Terry loss | " + fixed(m.loss) + " |"));
  EXPECT_TRUE(test::contains(card, "| expected calibration error (10 bins) | " + fixed(m.ece) + " |"));
  EXPECT_TRUE(test::contains(card, "| reward mean / std | " + fixed(m.reward_mean) + " / " + fixed(m.reward_std)));
  ASSERT_EQ(m.calibration.size(), 10u);
  for (const auto& b : m.calibration) {
    const char* end = &b == &m.calibration.back() ? "] | " : ") | ";  // the last bin includes 1
    EXPECT_TRUE(test::contains(card, "| [" + fixed(b.lower, 1) + ", " + fixed(b.upper, 1) + end +
                                         std::to_string(b.count) + " | " + fixed(b.mean_predicted) + " | " +
                                         fixed(b.observed_frequency) + " |"));
  }
  ASSERT_TRUE(m.has_length_bias);
  EXPECT_TRUE(test::contains(card, "| Pearson(reward, length) | " + fixed(m.length_bias.pearson) + " |"));
  EXPECT_TRUE(test::contains(card, "| longer response wins (model / data) | " + fixed(m.length_bias.longer_wins_rate) +
                                       " / " + fixed(m.length_bias.chosen_longer_rate)));
  EXPECT_TRUE(test::contains(card, "| optimizer | AdamW, lr 0.003"));
}

TEST_F(RewardReport, TheLineageHashesTheInitModelsFilesAsSha256sumDoes) {
  const Fixture& f = fixture();
  const std::string card = read_text_file(join_path(f.run, "README.md"));
  EXPECT_TRUE(test::contains(card, "The reward model `" + f.base + "`"));
  for (const char* name : {"model.safetensors", "config.json"}) {
    const std::string path = join_path(f.base, name);
    const std::string sha = independent_sha256(path);
    if (sha.empty()) GTEST_SKIP() << "neither sha256sum nor the reference python runs here";
    EXPECT_TRUE(test::contains(card, "| `" + std::string(name) + "` | " + std::to_string(fs::file_size(path)) +
                                         " | `" + sha + "` |"))
        << card;
  }
  EXPECT_TRUE(test::contains(card, "Git LFS oid"));
  EXPECT_FALSE(test::contains(card, "random weights"));
}

// ---- openrm-train: --data-license, random weights, resume ----------------------------

TEST_F(RewardReport, DataLicenseFlagIsRecordedAndSurvivesResume) {
  if (!test::tool_built("openrm-train")) GTEST_SKIP() << "openrm-train was not built";
  const Fixture& f = fixture();
  const std::string out = tmp.file("cli");
  const std::string flags = "--data '" + f.train + "' --eval-data '" + f.eval + "' --init-config '" +
                            join_path(f.base, "config.json") + "' --tokenizer '" + f.base + "' --output '" + out +
                            "' --max-length 48 --max-tokens 1024 --max-steps 2 --threads 1 --log-every 1000";
  test::ToolRun run = test::run_tool("openrm-train", flags + " --data-license 'cc-by-sa-4.0, mit'", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  std::string card = read_text_file(join_path(out, "README.md"));
  EXPECT_TRUE(test::contains(card, "Licence of the data: `cc-by-sa-4.0, mit`"));
  EXPECT_TRUE(test::contains(card, "**Trained from random weights**"));
  const std::string config_sha = independent_sha256(join_path(f.base, "config.json"));
  if (!config_sha.empty()) EXPECT_TRUE(test::contains(card, "(sha256 `" + config_sha + "`)")) << card;
  const std::string config = join_path(out, "training_config.json");
  EXPECT_EQ(Json::parse(read_text_file(config)).at("data_license"), "cc-by-sa-4.0, mit");

  // An evaluation appended to the card, then the run resumed from its own
  // training_config.json: the licence and the evaluation stay.
  append_evaluation_to_card(out, evaluation_of(out, f.eval, "2026-01-02"));
  const std::string jsonl = read_text_file(join_path(out, "evaluations.jsonl"));
  run = test::run_tool("openrm-train", "--config '" + config + "' --log-level warn", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  card = read_text_file(join_path(out, "README.md"));
  EXPECT_TRUE(test::contains(card, "Licence of the data: `cc-by-sa-4.0, mit`"));
  EXPECT_TRUE(test::contains(card, "| resumed from step | 2 |"));
  EXPECT_EQ(count(card, "### Evaluation on 2026-01-02: "), 1u) << card;
  EXPECT_EQ(count(card, "\n## Evaluations\n"), 1u);
  EXPECT_EQ(read_text_file(join_path(out, "evaluations.jsonl")), jsonl);
  EXPECT_EQ(Json::parse(read_text_file(config)).at("data_license"), "cc-by-sa-4.0, mit");

  // The licence changes nothing the model learns: a resume may correct it.
  run = test::run_tool("openrm-train", flags + " --data-license cc0-1.0", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(test::contains(read_text_file(join_path(out, "README.md")), "Licence of the data: `cc0-1.0`"));

  // Started over, the model is another one: the earlier card and
  // evaluations are kept aside, named by the new card, not shown as its own.
  const std::string before = read_text_file(join_path(out, "README.md"));
  run = test::run_tool("openrm-train", flags + " --no-resume --seed 9", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  card = read_text_file(join_path(out, "README.md"));
  EXPECT_EQ(count(card, "### Evaluation on "), 0u) << card;
  EXPECT_TRUE(test::contains(card, "Licence of the data: **not stated**"));
  EXPECT_FALSE(path_exists(join_path(out, "evaluations.jsonl")));
  std::string kept_card, kept_jsonl;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("README.replaced-", 0) == 0) kept_card = e.path().string();
    if (name.rfind("evaluations.replaced-", 0) == 0) kept_jsonl = e.path().string();
  }
  ASSERT_FALSE(kept_card.empty());
  ASSERT_FALSE(kept_jsonl.empty());
  EXPECT_EQ(read_text_file(kept_card), before);
  EXPECT_EQ(read_text_file(kept_jsonl), jsonl);
  EXPECT_TRUE(test::contains(card, fs::path(kept_jsonl).filename().string()));
}

TEST(RewardReportOptions, DataLicenseIsValidatedAndRoundTrips) {
  TrainOptions o;
  o.data = {"train.jsonl"};
  o.init_config = "config.json";
  o.output_dir = "out";
  o.data_license = "cc-by-4.0\nlicense: mit";
  EXPECT_TRUE(test::contains(test::error_of([&] { o.validate(); }), "training option 'data_license'"));
  o.data_license = std::string("cc-by-\xff");
  EXPECT_TRUE(test::contains(test::error_of([&] { o.validate(); }), "training option 'data_license'"));
  o.data_license = "apache-2.0";
  EXPECT_NO_THROW(o.validate());
  const Json j = train_options_json(o);
  EXPECT_EQ(j.at("data_license"), "apache-2.0");
  TrainOptions back;
  apply_train_options_json(back, j, "t.json");
  EXPECT_EQ(back.data_license, "apache-2.0");
  EXPECT_TRUE(test::contains(
      test::error_of([&] { apply_train_options_json(back, Json{{"data_license", 3}}, "t.json"); }),
      "t.json: field 'data_license': expected a string"));
  EXPECT_EQ(train_options_json(TrainOptions{}).at("data_license"), "");
}

// ---- appended evaluations ---------------------------------------------------------

TEST_F(RewardReport, TwoAppendedEvaluationsKeepTheCardAndAddTwoSectionsAndLines) {
  const Fixture& f = fixture();
  const std::string dir = copy_of_run(tmp, "model");
  const std::string readme = join_path(dir, "README.md");
  const std::string original = read_text_file(readme);

  CardEvaluation first = evaluation_of(dir, f.eval, "2026-03-04");
  append_evaluation_to_card(dir, first);
  const std::string once = read_text_file(readme);
  ASSERT_EQ(once.substr(0, original.size()), original);  // byte for byte
  CardEvaluation second = evaluation_of(dir, f.train, "2026-03-05");
  second.metrics["rewardbench"] = {{"score", 0.625}, {"sections", {{"chat", 0.75}, {"safety", nullptr}}},
                                   {"subsets", {{{"name", "alpacaeval-easy"}, {"accuracy", 0.5}, {"pairs", 4}}}}};
  second.metrics["comparison"] = {{"baseline", "other-model"}, {"accuracy_difference", -0.0625}};
  append_evaluation_to_card(dir, second);
  const std::string twice = read_text_file(readme);
  ASSERT_EQ(twice.substr(0, once.size()), once);

  EXPECT_EQ(count(twice, "\n## Evaluations\n"), 1u);  // the trained card's heading, reused
  EXPECT_EQ(count(twice, "\n### Evaluation on "), 2u);
  const std::string heading1 = "### Evaluation on 2026-03-04: `" + f.eval + "` (sha256 `" + sha256_file(f.eval) + "`)";
  const std::string heading2 = "### Evaluation on 2026-03-05: `" + f.train + "` (sha256 `" + sha256_file(f.train) + "`)";
  ASSERT_TRUE(test::contains(twice, heading1)) << twice.substr(original.size());
  ASSERT_TRUE(test::contains(twice, heading2));
  EXPECT_LT(twice.find(heading1), twice.find(heading2));
  const std::string section1 = twice.substr(twice.find(heading1), twice.find(heading2) - twice.find(heading1));
  const OrderedJson& m = first.metrics;
  EXPECT_TRUE(test::contains(section1, "| accuracy (a tie counts as wrong) | " + shown(m["accuracy"]) + " |"));
  EXPECT_TRUE(test::contains(section1, "| Bradley-Terry loss | " + shown(m["loss"]) + " |"));
  EXPECT_TRUE(test::contains(section1, "| expected calibration error | " + shown(m["ece"]) + " |"));
  EXPECT_TRUE(test::contains(section1, "| reward mean / std | " + shown(m["reward_mean"]) + " / " +
                                           shown(m["reward_std"]) + " |"));
  EXPECT_TRUE(test::contains(section1, "| Pearson(reward, sequence tokens) | " +
                                           shown(m["length_bias"]["pearson"]) + " |"));
  EXPECT_TRUE(test::contains(section1, "Recorded by openrm-eval test; 16 pairs, chat format"));
  const auto& bin = m["calibration"][0];
  EXPECT_TRUE(test::contains(section1, "| [" + fixed(bin["lower"].get<double>(), 2) + ", " +
                                           fixed(bin["upper"].get<double>(), 2) + ") | " + bin["count"].dump() + " |"));
  const std::string section2 = twice.substr(twice.find(heading2));
  EXPECT_TRUE(test::contains(section2, "RewardBench:"));
  EXPECT_TRUE(test::contains(section2, "| sections.chat | 0.7500 |"));
  EXPECT_TRUE(test::contains(section2, "| sections.safety | n/a |"));
  EXPECT_TRUE(test::contains(section2, "| alpacaeval-easy | 0.5000 | 4 |"));
  EXPECT_TRUE(test::contains(section2, "| accuracy_difference | -0.0625 |"));

  // evaluations.jsonl: one line each, the evaluation as given.
  const auto lines = read_jsonl(join_path(dir, "evaluations.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("date"), "2026-03-04");
  EXPECT_EQ(lines[0].at("data"), f.eval);
  EXPECT_EQ(lines[0].at("data_sha256"), sha256_file(f.eval));
  EXPECT_EQ(lines[0].at("pairs"), 16);
  EXPECT_EQ(lines[0].at("tool_version"), "openrm-eval test");
  EXPECT_EQ(lines[0].at("metrics").dump(), Json::parse(first.metrics.dump()).dump());
  EXPECT_EQ(lines[1].at("metrics").at("rewardbench").at("score"), 0.625);
  EXPECT_EQ(read_text_file(join_path(dir, "evaluations.jsonl")),
            evaluation_json_line(first) + evaluation_json_line(second));
}

TEST_F(RewardReport, AFolderWithoutACardGetsAMinimalReportAndTheHashAndDateAreFilledIn) {
  const Fixture& f = fixture();
  const std::string dir = tmp.file("bare");
  test::make_tiny_model_folder(dir, /*with_tokenizer=*/true);
  ASSERT_FALSE(path_exists(join_path(dir, "README.md")));
  CardEvaluation e = evaluation_of(dir, f.eval, "");
  e.data_sha256.clear();
  e.tool_version.clear();
  append_evaluation_to_card(dir, e);
  const std::string card = read_text_file(join_path(dir, "README.md"));
  EXPECT_TRUE(test::contains(card, "the model's origin is unknown to openrm"));
  EXPECT_TRUE(test::contains(card, "\n## Evaluations\n"));
  EXPECT_TRUE(test::contains(card, "### Evaluation on " + today_utc() + ": `" + f.eval + "` (sha256 `" +
                                       sha256_file(f.eval) + "`)"));
  const auto lines = read_jsonl(join_path(dir, "evaluations.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("tool_version").get<std::string>().rfind("openrm ", 0), 0u);

  // A card of someone else's, whose last section is not ours: a heading is added.
  const std::string theirs = "# My model\n\nSome text.\n\n## Citation\n\nPlease cite.";  // no final newline
  write_file_atomic(join_path(dir, "README.md"), theirs);
  append_evaluation_to_card(dir, evaluation_of(dir, f.eval, "2026-05-06"));
  const std::string after = read_text_file(join_path(dir, "README.md"));
  EXPECT_EQ(after.substr(0, theirs.size()), theirs);
  EXPECT_TRUE(test::contains(after, "Please cite.\n\n## Evaluations\n"));
  EXPECT_EQ(read_jsonl(join_path(dir, "evaluations.jsonl")).size(), 2u);

  // Bad input: no folder, a bad date, metrics that are no object.
  EXPECT_TRUE(test::contains(test::error_of([&] { append_evaluation_to_card(tmp.file("none"), e); }),
                             tmp.file("none") + ": no such folder"));
  CardEvaluation bad = e;
  bad.date = "May 6";
  EXPECT_TRUE(test::contains(test::error_of([&] { append_evaluation_to_card(dir, bad); }), "'May 6': expected YYYY-MM-DD"));
  bad = e;
  bad.metrics = OrderedJson::array();
  EXPECT_TRUE(test::contains(test::error_of([&] { append_evaluation_to_card(dir, bad); }), "expected a JSON object"));
  EXPECT_EQ(read_text_file(join_path(dir, "README.md")), after);
}

// openrm-init-model's folder says it is untrained, with the hashes of its
// config and weights, and takes appended evaluations under its own heading.
TEST_F(RewardReport, AnInitialisedFolderSaysItIsUntrainedWithItsHashes) {
  if (!test::tool_built("openrm-init-model")) GTEST_SKIP() << "openrm-init-model was not built";
  const Fixture& f = fixture();
  const std::string config = tmp.file("config.json"), dir = tmp.file("init");
  write_file_atomic(config, test::tiny_config("LlamaForSequenceClassification").to_json().dump(2));
  test::ToolRun run = test::run_tool("openrm-init-model", "--config '" + config + "' --output '" + dir + "' --seed 3", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  const std::string card = read_text_file(join_path(dir, "README.md"));
  EXPECT_TRUE(test::contains(card, "**not been trained**")) << card;
  EXPECT_TRUE(test::contains(card, "seed 3"));
  for (const std::string& file : {config, join_path(dir, "model.safetensors")}) {
    const std::string sha = independent_sha256(file);
    if (sha.empty()) GTEST_SKIP() << "neither sha256sum nor the reference python runs here";
    EXPECT_TRUE(test::contains(card, sha)) << file;
  }
  test::train_tiny_tokenizer(dir);
  append_evaluation_to_card(dir, evaluation_of(dir, f.eval, "2026-05-06"));
  const std::string after = read_text_file(join_path(dir, "README.md"));
  EXPECT_EQ(after.substr(0, card.size()), card);
  EXPECT_EQ(count(after, "## Evaluations\n"), 1u);
  EXPECT_TRUE(test::contains(after, "### Evaluation on 2026-05-06"));
  // An existing card is kept.
  run = test::run_tool("openrm-init-model", "--config '" + config + "' --output '" + dir + "' --seed 4", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(read_text_file(join_path(dir, "README.md")), after);
}

TEST_F(RewardReport, AReadmeThatIsALinkFifoOrFolderIsRefusedAndLeftAlone) {
  const Fixture& f = fixture();
  const CardEvaluation e = evaluation_of(fixture().run, f.eval, "2026-07-08");
  {
    const std::string dir = copy_of_run(tmp, "linked");
    const std::string target = tmp.file("shared-card.md");
    fs::rename(join_path(dir, "README.md"), target);
    const std::string content = read_text_file(target);
    fs::create_symlink(target, join_path(dir, "README.md"));
    const std::string message = test::error_of([&] { append_evaluation_to_card(dir, e); });
    EXPECT_TRUE(test::contains(message, join_path(dir, "README.md") + ": is a symbolic link")) << message;
    EXPECT_TRUE(fs::is_symlink(join_path(dir, "README.md")));
    EXPECT_EQ(read_text_file(target), content);
    EXPECT_FALSE(path_exists(join_path(dir, "evaluations.jsonl")));  // neither file is written
  }
  {
    const std::string dir = copy_of_run(tmp, "fifo");
    fs::remove(join_path(dir, "README.md"));
    ASSERT_EQ(::mkfifo(join_path(dir, "README.md").c_str(), 0600), 0);
    const std::string message = test::error_of([&] { append_evaluation_to_card(dir, e); });
    EXPECT_TRUE(test::contains(message, join_path(dir, "README.md") + ": is not a regular file")) << message;
    EXPECT_FALSE(path_exists(join_path(dir, "evaluations.jsonl")));
  }
  {
    const std::string dir = copy_of_run(tmp, "folder");
    fs::remove(join_path(dir, "README.md"));
    fs::create_directories(join_path(dir, "README.md"));
    EXPECT_TRUE(test::contains(test::error_of([&] { append_evaluation_to_card(dir, e); }),
                               join_path(dir, "README.md") + ": is a folder"));
  }
  {
    // evaluations.jsonl as a link is refused too, before the card is touched.
    const std::string dir = copy_of_run(tmp, "jsonl-link");
    test::write_bytes(tmp.file("elsewhere.jsonl"), "{}\n");
    fs::create_symlink(tmp.file("elsewhere.jsonl"), join_path(dir, "evaluations.jsonl"));
    const std::string card = read_text_file(join_path(dir, "README.md"));
    EXPECT_TRUE(test::contains(test::error_of([&] { append_evaluation_to_card(dir, e); }),
                               join_path(dir, "evaluations.jsonl") + ": is a symbolic link"));
    EXPECT_EQ(read_text_file(join_path(dir, "README.md")), card);
    EXPECT_EQ(read_text_file(tmp.file("elsewhere.jsonl")), "{}\n");
  }
}

// ---- the exported folder's card -----------------------------------------------------

TEST_F(RewardReport, AnExportedCardCarriesTheLineageAndTheEvaluations) {
  const Fixture& f = fixture();
  const std::string model = copy_of_run(tmp, "model");
  append_evaluation_to_card(model, evaluation_of(model, f.eval, "2026-09-10"));
  ExportOptions o;
  o.model_dir = model;
  o.output_dir = tmp.file("hf");
  export_model(o);
  const std::string card = read_text_file(tmp.file("hf/README.md"));
  EXPECT_EQ(card.rfind("---\nlibrary_name: transformers\n", 0), 0u);  // the Hub's header, first
  const std::string lineage = card.substr(card.find("## Lineage"), card.find("## Loading with transformers") -
                                                                       card.find("## Lineage"));
  EXPECT_TRUE(test::contains(lineage, "The training output folder `" + model + "`")) << lineage;
  const std::string sha_in = independent_sha256(join_path(model, "model.safetensors"));
  const std::string sha_out = independent_sha256(tmp.file("hf/model.safetensors"));
  if (sha_in.empty()) GTEST_SKIP() << "neither sha256sum nor the reference python runs here";
  EXPECT_TRUE(test::contains(lineage, " | `" + sha_in + "` |")) << lineage;
  EXPECT_TRUE(test::contains(lineage, "the input's even where the tensors are the same):\n\n| file | bytes | sha256 |\n|---|---|---|\n"
                                      "| `model.safetensors` | " +
                                          std::to_string(fs::file_size(tmp.file("hf/model.safetensors"))) + " | `" +
                                          sha_out + "` |"))
      << lineage;
  // The trainer's report follows, with its own lineage and the appended evaluation.
  EXPECT_TRUE(test::contains(card, "The reward model `" + f.base + "`"));
  EXPECT_TRUE(test::contains(card, "### Evaluation on 2026-09-10: "));
  EXPECT_EQ(read_text_file(tmp.file("hf/evaluations.jsonl")), read_text_file(join_path(model, "evaluations.jsonl")));

  // Converted to bf16: the card says the carried evaluations measured the input.
  o.output_dir = tmp.file("hf-bf16");
  o.dtype = ExportDType::kBFloat16;
  export_model(o);
  EXPECT_TRUE(test::contains(read_text_file(tmp.file("hf-bf16/README.md")),
                             "converted from float32 to bfloat16: evaluations recorded for the input folder"));
}

TEST_F(RewardReport, AnExportWithoutACardSaysSoAndKeepsItsEvaluationsWhenExportedAgain) {
  const Fixture& f = fixture();
  const std::string bare = tmp.file("bare");
  test::make_tiny_model_folder(bare, /*with_tokenizer=*/true);
  ExportOptions o;
  o.model_dir = bare;
  o.output_dir = tmp.file("hf");
  export_model(o);
  const std::string card = read_text_file(tmp.file("hf/README.md"));
  EXPECT_TRUE(test::contains(card, "## Intended use"));
  EXPECT_TRUE(test::contains(card, "training settings are **not recorded**"));
  EXPECT_TRUE(test::contains(card, "The model folder `" + bare + "`"));
  append_evaluation_to_card(tmp.file("hf"), evaluation_of(tmp.file("hf"), f.eval, "2026-11-12"));
  o.model_dir = tmp.file("hf");
  o.output_dir = tmp.file("hf2");
  export_model(o);
  const std::string again = read_text_file(tmp.file("hf2/README.md"));
  EXPECT_EQ(count(again, "### Evaluation on 2026-11-12: "), 1u) << again;
  EXPECT_EQ(count(again, "## Intended use"), 1u);
  EXPECT_EQ(count(again, "\n## Evaluations\n"), 1u);
}

TEST_F(RewardReport, AnExportedAdapterNamesItsBaseWithItsHashes) {
  const std::string base = tmp.file("base");
  const std::string adapter = tmp.file("adapter");
  test::make_tiny_lora_adapter(base, adapter, /*with_tokenizer=*/true);
  ExportOptions o;
  o.model_dir = adapter;
  o.output_dir = tmp.file("merged");
  o.base_model_dir = base;
  export_model(o);
  const std::string card = read_text_file(tmp.file("merged/README.md"));
  EXPECT_TRUE(test::contains(card, "The LoRA adapter folder `" + adapter + "`")) << card;
  EXPECT_TRUE(test::contains(card, "The LoRA base model `" + base + "`")) << card;
  const std::string sha = independent_sha256(join_path(base, "model.safetensors"));
  if (sha.empty()) GTEST_SKIP() << "neither sha256sum nor the reference python runs here";
  EXPECT_TRUE(test::contains(card, "| `model.safetensors` | " +
                                       std::to_string(fs::file_size(join_path(base, "model.safetensors"))) + " | `" +
                                       sha + "` |"))
      << card;
  EXPECT_TRUE(test::contains(card, "| `adapter_model.safetensors` | "));
}

}  // namespace
}  // namespace openrm
