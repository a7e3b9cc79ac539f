// Whole reward-model folders as transformers writes them, with Hugging Face
// tokenizer.json tokenizers: a Qwen3 and a Llama-3.1 random-weight reward
// model (tests/fixtures/hf_models/<name>/, written by
// tests/fixtures/make_hf_model_fixtures.py), scored from text by openrm and
// by transformers. expected.json holds, per record of openrm-score's input,
// the ids and the reward transformers gives; the tests check
//   - the folder's tokenizer and chat format give those ids (the path
//     openrm-score takes: tokenize_conversation / tokenize_pairs with the
//     scorer's tokenize options),
//   - the model gives those rewards on those ids (so a reward mismatch can be
//     told apart from a tokenizer mismatch),
//   - openrm-score on the records gives those rewards (fp32, 1e-4),
//   - openrm-train trains from the folder, and what it writes loads, carries
//     the tokenizer, and (with the reference environment) scores in
//     transformers as in openrm.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "openrm/data/preference.h"
#include "openrm/data/tokenize.h"
#include "openrm/models/model_folder.h"
#include "openrm/score/scorer.h"
#include "openrm/tokenizer/chat_format.h"
#include "openrm/tokenizer/tokenizer.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// fp32 on both sides; rewards are O(1). What is left is summation order.
constexpr double kTolerance = 1e-4;

struct HfModelFixture {
  const char* name;          // folder under tests/fixtures/hf_models/
  const char* architecture;  // config.json's architectures[0]
  ChatFormat chat_format;    // what the folder's chat template is
};

void PrintTo(const HfModelFixture& f, std::ostream* os) { *os << f.name; }

const HfModelFixture kFixtures[] = {
    {"qwen3_hf", "Qwen3ForSequenceClassification", ChatFormat::kQwen3},
    {"llama3_hf", "LlamaForSequenceClassification", ChatFormat::kLlama31},
};

const char* const kSides[] = {"reward", "chosen", "rejected"};

// OPENRM_HF_MODEL_FIXTURES, when set, points at another fixtures folder (e.g.
// one freshly written with make_hf_model_fixtures.py --out).
std::string fixture_dir(const HfModelFixture& f) {
  const char* env = std::getenv("OPENRM_HF_MODEL_FIXTURES");
  const fs::path root = env != nullptr && *env != '\0' ? fs::path(env)
                                                       : fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures" / "hf_models";
  return (root / f.name).string();
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::string name_of(const json& record) {
  const json& id = record.value("id", json());
  return id.is_string() ? id.get<std::string>() : id.dump();
}

// The records of expected.json as openrm-score's JSONL input.
std::string records_jsonl(const json& expected) {
  std::string out;
  for (const json& row : expected.at("records")) out += row.at("record").dump() + "\n";
  return out;
}

std::string describe_mismatch(const Tokenizer& tok, const std::vector<TokenId>& got,
                              const std::vector<std::int64_t>& want) {
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream os;
  os << "got " << got.size() << " ids, want " << want.size() << "; first difference at " << i;
  if (i < got.size()) os << ": got " << got[i] << " (" << json(tok.id_to_token(got[i])).dump() << ")";
  if (i < want.size()) {
    os << ", want " << want[i] << " (" << json(tok.id_to_token(static_cast<TokenId>(want[i]))).dump() << ")";
  }
  return os.str();
}

// The ids openrm-score gives a record of the input: a score record through
// tokenize_conversation, a pair through tokenize_pairs, with the scorer's
// tokenize options (chat format, max_length, truncation).
std::vector<std::vector<TokenId>> openrm_ids(const json& record, const Tokenizer& tok,
                                             const TokenizeOptions& options) {
  if (record.contains("chosen")) {
    PreferencePair pair = parse_preference_record(record, "expected.json", 1);
    TokenizedPairs t = tokenize_pairs({pair}, tok, options);
    if (t.pairs.size() != 1) throw std::runtime_error("the pair was dropped");
    return {t.pairs[0].chosen, t.pairs[0].rejected};
  }
  ScoreRecord r = parse_score_record(record, "expected.json", 1);
  auto ids = tokenize_conversation(r.conversation, tok, options, nullptr, r.text_format);
  if (!ids) throw std::runtime_error("the record was dropped");
  return {*ids};
}

ScoreOptions cpu_options() {
  ScoreOptions o;
  o.device = "cpu";
  o.dtype = "fp32";
  o.threads = 2;
  return o;
}

class HfModels : public ::testing::TestWithParam<HfModelFixture> {
 protected:
  void SetUp() override {
    dir_ = fixture_dir(GetParam());
    if (!fs::exists(fs::path(dir_) / "expected.json")) {
      GTEST_SKIP() << "fixture " << dir_ << " is missing; write it with "
                   << "~/.cache/openrm/reference-venv/bin/python tests/fixtures/make_hf_model_fixtures.py";
    }
    expected_ = read_json(dir_ + "/expected.json");
  }
  std::string dir_;
  json expected_;
};

TEST_P(HfModels, FolderLoadsWithItsTokenizerAndChatFormat) {
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(dir_) / f)) << f;
  }
  EXPECT_EQ(expected_.at("generated_by"), "tests/fixtures/make_hf_model_fixtures.py");
  const RewardModelFolder folder = load_reward_model_folder(dir_);
  ASSERT_TRUE(folder.model);
  ASSERT_TRUE(folder.tokenizer);
  EXPECT_EQ(folder.model->config().architecture, GetParam().architecture);
  EXPECT_EQ(folder.model->config().vocab_size, expected_.at("vocab_size").get<std::int64_t>());
  EXPECT_EQ(folder.tokenizer->vocab_size(), expected_.at("tokenizer_vocab_size").get<std::int64_t>());
  ASSERT_TRUE(folder.model->config().pad_token_id.has_value());
  EXPECT_EQ(*folder.model->config().pad_token_id, expected_.at("pad_token_id").get<std::int64_t>());
  EXPECT_EQ(folder.tokenizer->special_tokens().pad.id, expected_.at("pad_token_id").get<std::int64_t>());
  EXPECT_EQ(folder.tokenizer->special_tokens().pad.text, expected_.at("pad_token").get<std::string>());
  // transformers 5 writes the template to chat_template.jinja, not into
  // tokenizer_config.json; message lists are rendered with it.
  EXPECT_EQ(chat_format_name(folder.chat_format), chat_format_name(GetParam().chat_format))
      << "files: " << expected_.at("folder_files").dump();
}

// (a) The folder's tokenizer, through the path openrm-score takes, gives the
// ids transformers gave for every record.
TEST_P(HfModels, TokenizerGivesTransformersIds) {
  const Scorer scorer = Scorer::from_folder(dir_, cpu_options());
  const RewardModelFolder folder = load_reward_model_folder(dir_);
  ASSERT_TRUE(folder.tokenizer);
  std::size_t checked = 0, wrong = 0;
  for (const json& row : expected_.at("records")) {
    const json& record = row.at("record");
    std::vector<std::vector<TokenId>> got;
    try {
      got = openrm_ids(record, *folder.tokenizer, scorer.tokenize_options());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "record " << name_of(record) << ": " << e.what();
      continue;
    }
    std::size_t side_index = 0;
    for (const char* side : kSides) {
      if (!row.contains(side)) continue;
      const auto want = row.at(side).at("ids").get<std::vector<std::int64_t>>();
      ASSERT_LT(side_index, got.size());
      const std::vector<TokenId>& ids = got[side_index++];
      ++checked;
      if (!std::equal(ids.begin(), ids.end(), want.begin(), want.end())) {
        ++wrong;
        ADD_FAILURE() << "record " << name_of(record) << " (" << side << "), text "
                      << json(row.at(side).at("text").get<std::string>()).dump() << ": "
                      << describe_mismatch(*folder.tokenizer, ids, want);
      }
    }
  }
  std::cout << GetParam().name << ": " << checked - wrong << " of " << checked
            << " sequences tokenized as transformers does\n";
  EXPECT_GE(checked, 15u);
}

// The model on transformers' own ids: the rewards, whatever the tokenizer does.
TEST_P(HfModels, ModelGivesTransformersRewardsOnItsIds) {
  Scorer scorer = Scorer::from_folder(dir_, cpu_options());
  std::vector<std::vector<TokenId>> sequences;
  std::vector<double> want;
  for (const json& row : expected_.at("records")) {
    for (const char* side : kSides) {
      if (!row.contains(side)) continue;
      const auto ids = row.at(side).at("ids").get<std::vector<std::int64_t>>();
      sequences.emplace_back(ids.begin(), ids.end());
      want.push_back(row.at(side).at("reward").get<double>());
    }
  }
  const std::vector<float> got = scorer.score_tokens(sequences);
  ASSERT_EQ(got.size(), want.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
    EXPECT_NEAR(got[i], want[i], kTolerance) << "sequence " << i << " (" << sequences[i].size() << " ids)";
  }
  std::cout << GetParam().name << ": max |reward - transformers| on transformers' ids " << worst << "\n";
}

// Compares openrm-score's output lines with expected.json's rewards; returns
// the largest difference.
double compare_score_output(const json& expected, const std::vector<json>& lines) {
  const json& rows = expected.at("records");
  EXPECT_EQ(lines.size(), rows.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < std::min(lines.size(), rows.size()); ++i) {
    const json& line = lines[i];
    const json& row = rows[i];
    EXPECT_EQ(line.at("line").get<std::size_t>(), i + 1);
    for (const char* side : kSides) {
      if (!row.contains(side)) continue;
      const std::string key = std::string(side) == "reward" ? "reward" : std::string("reward_") + side;
      if (!line.contains(key) || !line.at(key).is_number()) {
        ADD_FAILURE() << "record " << name_of(row.at("record")) << ": no " << key << " in " << line.dump();
        worst = INFINITY;
        continue;
      }
      const double got = line.at(key).get<double>();
      const double want = row.at(side).at("reward").get<double>();
      worst = std::max(worst, std::abs(got - want));
      EXPECT_NEAR(got, want, kTolerance) << "record " << name_of(row.at("record")) << " (" << key << ")";
    }
  }
  return worst;
}

// (b) openrm-score on the records, from text, against transformers.
TEST_P(HfModels, OpenrmScoreGivesTransformersRewards) {
  if (!test::tool_built("openrm-score")) GTEST_SKIP() << "openrm-score was not built";
  test::TempDir tmp;
  const std::string in = tmp.file("records.jsonl"), out = tmp.file("scores.jsonl");
  test::write_bytes(in, records_jsonl(expected_));
  const test::ToolRun r = test::run_tool(
      "openrm-score", "--model '" + dir_ + "' --input '" + in + "' --output '" + out + "' --threads 2", tmp);
  ASSERT_EQ(r.status, 0) << r.output;
  const double worst = compare_score_output(expected_, json_lines(test::read_bytes(out)));
  std::cout << GetParam().name << ": max |openrm-score - transformers| " << worst << "\n";
}

// Preference pairs in the layouts openrm-train reads: plain text, an hh
// transcript pair, conversational (implicit and explicit prompt).
std::string training_pairs() {
  auto m = [](const char* role, const char* content) { return json{{"role", role}, {"content", content}}; };
  std::vector<json> pairs = {
      {{"prompt", "What is 2+2?"}, {"chosen", " 4"}, {"rejected", " 5"}},
      {{"prompt", "Name a colour: "}, {"chosen", "blue \U0001f499"}, {"rejected", "seven"}},
      {{"chosen", "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?"},
       {"rejected", "\n\nHuman: Hi there\n\nAssistant: Go away."}},
      {{"chosen", json::array({m("user", "Say hi."), m("assistant", "Hi!")})},
       {"rejected", json::array({m("user", "Say hi."), m("assistant", "No.")})}},
      {{"prompt", json::array({m("system", "Be kind."), m("user", "I failed my exam.")})},
       {"chosen", json::array({m("assistant", "I'm sorry; you can retake it.")})},
       {"rejected", json::array({m("assistant", "Too bad.")})}},
      {{"prompt", "Line one\nLine two\n"}, {"chosen", "\tindented"}, {"rejected", ""}},
  };
  std::string out;
  for (const json& p : pairs) out += p.dump() + "\n";
  return out;
}

// (c) openrm-train from the folder; (d) with the reference environment,
// transformers scores what it wrote as openrm does.
TEST_P(HfModels, OpenrmTrainTrainsFromTheFolder) {
  if (!test::tool_built("openrm-train") || !test::tool_built("openrm-score")) {
    GTEST_SKIP() << "openrm-train or openrm-score was not built";
  }
  test::TempDir tmp;
  const std::string pairs = tmp.file("pairs.jsonl"), out = tmp.file("trained");
  test::write_bytes(pairs, training_pairs());
  test::ToolRun r = test::run_tool("openrm-train", "--init-model '" + dir_ + "' --data '" + pairs +
                                                       "' --output '" + out +
                                                       "' --max-steps 3 --lr 1e-3 --threads 2 --log-every 1",
                                   tmp);
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"config.json", "model.safetensors", "openrm.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f << " is missing from the trained folder";
  }
  // The tokenizer travels with the model: the same tokenizer.json, and the
  // chat template where transformers looks for it.
  ASSERT_TRUE(fs::exists(fs::path(out) / "tokenizer.json"))
      << "the trained folder has no tokenizer.json; it holds: " << [&] {
           std::string names;
           for (const auto& e : fs::directory_iterator(out)) names += e.path().filename().string() + " ";
           return names;
         }();
  EXPECT_EQ(test::read_bytes(out + "/tokenizer.json"), test::read_bytes(dir_ + "/tokenizer.json"));
  const json trained_tokenizer_config = read_json(out + "/tokenizer_config.json");
  EXPECT_TRUE(fs::exists(fs::path(out) / "chat_template.jinja") || trained_tokenizer_config.contains("chat_template"))
      << "the trained folder has no chat template for transformers";

  const RewardModelFolder source = load_reward_model_folder(dir_);
  const RewardModelFolder trained = load_reward_model_folder(out);
  ASSERT_TRUE(trained.model);
  ASSERT_TRUE(trained.tokenizer);
  EXPECT_EQ(trained.model->config().architecture, GetParam().architecture);
  EXPECT_EQ(trained.model->config().pad_token_id, source.model->config().pad_token_id);
  EXPECT_EQ(trained.tokenizer->vocab_size(), source.tokenizer->vocab_size());
  EXPECT_EQ(chat_format_name(trained.chat_format), chat_format_name(GetParam().chat_format));
  // The trained folder tokenizes every record as the source folder does.
  const Scorer source_scorer = Scorer::from_folder(dir_, cpu_options());
  const Scorer trained_scorer = Scorer::from_folder(out, cpu_options());
  for (const json& row : expected_.at("records")) {
    const json& record = row.at("record");
    EXPECT_EQ(openrm_ids(record, *trained.tokenizer, trained_scorer.tokenize_options()),
              openrm_ids(record, *source.tokenizer, source_scorer.tokenize_options()))
        << "record " << name_of(record);
  }

  // It scores, and training changed the rewards.
  const std::string in = tmp.file("records.jsonl"), scores = tmp.file("scores.jsonl");
  test::write_bytes(in, records_jsonl(expected_));
  r = test::run_tool("openrm-score",
                     "--model '" + out + "' --input '" + in + "' --output '" + scores + "' --threads 2", tmp);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::vector<json> lines = json_lines(test::read_bytes(scores));
  ASSERT_EQ(lines.size(), expected_.at("records").size());
  double moved = 0.0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const json& row = expected_.at("records")[i];
    if (row.contains("reward") && lines[i].at("reward").is_number()) {
      moved = std::max(moved, std::abs(lines[i].at("reward").get<double>() - row.at("reward").at("reward").get<double>()));
    }
  }
  EXPECT_GT(moved, 1e-3) << "3 steps at lr 1e-3 left every reward where it was";

  // (d) transformers on the trained folder.
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/make_hf_model_fixtures.py";
  const std::string ref = tmp.file("reference.jsonl");
  const std::string cmd = "'" + python + "' '" + script + "' --score '" + out + "' --records '" + in + "' > '" +
                          ref + "' 2> '" + tmp.file("reference.log") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(tmp.file("reference.log"));
  json live = {{"records", json::array()}};
  for (const json& row : json_lines(test::read_bytes(ref))) live["records"].push_back(row);
  ASSERT_EQ(live["records"].size(), expected_.at("records").size());
  for (std::size_t i = 0; i < live["records"].size(); ++i) {
    const json& row = live["records"][i];
    const std::vector<std::vector<TokenId>> ids =
        openrm_ids(row.at("record"), *trained.tokenizer, trained_scorer.tokenize_options());
    std::size_t s = 0;
    for (const char* side : kSides) {
      if (!row.contains(side)) continue;
      const auto want = row.at(side).at("ids").get<std::vector<std::int64_t>>();
      EXPECT_TRUE(std::equal(ids[s].begin(), ids[s].end(), want.begin(), want.end()))
          << "trained folder, record " << name_of(row.at("record")) << " (" << side
          << "): " << describe_mismatch(*trained.tokenizer, ids[s], want);
      ++s;
    }
  }
  const double worst = compare_score_output(live, lines);
  std::cout << GetParam().name << ": trained folder, max |openrm-score - transformers| " << worst << "\n";
}

INSTANTIATE_TEST_SUITE_P(Transformers, HfModels, ::testing::ValuesIn(kFixtures),
                         [](const ::testing::TestParamInfo<HfModelFixture>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace openrm
