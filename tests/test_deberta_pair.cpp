// Text pairs, as OpenAssistant's DeBERTa reward models take them:
// tokenizer(question, answer) = [CLS] question [SEP] answer [SEP] with
// token_type_ids, against what transformers and tokenizers give
// (tests/fixtures/make_deberta_pair_fixtures.py wrote the fixtures):
//   * deberta/deberta_v3_pair/: a DeBERTa-v3-style folder (spm.model and a
//     Unigram tokenizer.json, type_vocab_size 2): ids of tokenizer(text) and
//     tokenizer(q, a) from both tokenizer backends, and the scores of the
//     pairs through the Scorer's pair chat format;
//   * hf_tokenizers/pair_encodings.json: tokenizer(first, second) for the
//     tokenizer.json folders of make_hf_tokenizer_fixtures.py (BertProcessing,
//     RobertaProcessing, TemplateProcessing, ByteLevel post-processors).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "openrm/data/tokenize.h"
#include "openrm/io/file.h"
#include "openrm/models/model_folder.h"
#include "openrm/train/export.h"
#include "openrm/models/packed_batch.h"
#include "openrm/models/reward_model.h"
#include "openrm/score/scorer.h"
#include "openrm/tokenizer/chat_format.h"
#include "openrm/tokenizer/tokenizer.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kTolerance = 1e-4;

fs::path fixtures() { return fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures"; }
fs::path pair_folder() { return fixtures() / "deberta" / "deberta_v3_pair"; }

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return json::parse(in);
}

#define REQUIRE_PAIR_FIXTURE()                                                                         \
  if (!fs::is_regular_file(pair_folder() / "expected.json")) {                                         \
    GTEST_SKIP() << pair_folder().string() << " is missing: generate it with the reference "          \
                 << "environment's python tests/fixtures/make_deberta_pair_fixtures.py";               \
  }

std::vector<std::int64_t> as_int64(const std::vector<std::int32_t>& v) { return {v.begin(), v.end()}; }

TEST(DebertaPairTokenizerTest, IdsMatchTransformersOnBothBackends) {
  REQUIRE_PAIR_FIXTURE();
  const json expected = read_json_file(pair_folder() / "expected.json");
  ASSERT_EQ(expected.at("format_version").get<int>(), 1);
  // kAuto: tokenizer.json's Unigram model is not supported, so the folder's
  // spm.model is read instead (with a warning); kSentencePiece asks for it.
  for (TokenizerBackend backend : {TokenizerBackend::kAuto, TokenizerBackend::kSentencePiece}) {
    SCOPED_TRACE(tokenizer_backend_name(backend));
    auto tok = load_tokenizer(pair_folder().string(), backend);
    EXPECT_EQ(tok->backend(), TokenizerBackend::kSentencePiece);
    EXPECT_EQ(tok->special_tokens().cls.id, 1);
    EXPECT_EQ(tok->special_tokens().sep.id, 2);
    EXPECT_EQ(tok->special_tokens().pad.id, 0);
    EXPECT_EQ(default_chat_format(*tok), ChatFormat::kPair);
    // openrm keeps sentencepiece's ids, which the file's pipeline gives too;
    // transformers 5 swaps the file's normalizer for its own (no NFKC map)
    // and departs from both on the text with full-width letters and a
    // ligature (docs/tokenizers.md, "Text pairs").
    int transformers_departs = 0;
    for (const auto& t : expected.at("texts")) {
      const auto text = t.at("text").get<std::string>();
      const auto want = t.value("ids_file", t.at("ids")).get<std::vector<TokenId>>();
      EXPECT_EQ(tok->encode(text), want) << "tokenizer(" << json(text) << ")";
      transformers_departs += t.contains("ids_file") ? 1 : 0;
    }
    EXPECT_EQ(transformers_departs, 1);
    for (const auto& p : expected.at("pairs")) {
      const auto first = p.at("first").get<std::string>();
      const auto second = p.at("second").get<std::string>();
      const PairEncoding got = tok->encode_pair(first, second);
      EXPECT_EQ(got.ids, p.at("ids").get<std::vector<TokenId>>()) << json(first) << ", " << json(second);
      EXPECT_EQ(got.type_ids, p.at("type_ids").get<std::vector<std::int32_t>>()) << json(first) << ", "
                                                                                  << json(second);
      Conversation c = {{"user", first}, {"assistant", second}};
      EXPECT_EQ(encode_chat(*tok, ChatFormat::kPair, c), got.ids);
    }
  }
}

TEST(DebertaPairScoreTest, ScorerScoresPairsWithTokenTypesAsTransformers) {
  REQUIRE_PAIR_FIXTURE();
  const json expected = read_json_file(pair_folder() / "expected.json");
  const auto unbatched = expected.at("scores").at("unbatched").get<std::vector<double>>();
  const auto untyped = expected.at("scores").at("unbatched_all_type_0").get<std::vector<double>>();
  ScoreOptions options;
  options.dtype = "fp32";
  options.threads = 2;
  Scorer scorer = Scorer::from_folder(pair_folder().string(), options);
  EXPECT_EQ(scorer.chat_format(), ChatFormat::kPair);
  std::vector<Conversation> conversations;
  for (const auto& p : expected.at("pairs")) {
    conversations.push_back({{"user", p.at("first").get<std::string>()},
                             {"assistant", p.at("second").get<std::string>()}});
  }
  const ScoreResult result = scorer.score_conversations(conversations);
  ASSERT_EQ(result.rewards.size(), unbatched.size());
  double worst = 0.0, nearest_untyped = INFINITY;
  for (std::size_t i = 0; i < unbatched.size(); ++i) {
    worst = std::max(worst, std::abs(result.rewards[i] - unbatched[i]));
    if (std::abs(unbatched[i] - untyped[i]) > 1e-3) {
      nearest_untyped = std::min(nearest_untyped, std::abs(result.rewards[i] - untyped[i]));
    }
  }
  std::printf("[ deberta  ] pairs through the Scorer: max |diff| %.3g (transformers %s)\n", worst,
              expected.at("generator").at("transformers").get<std::string>().c_str());
  EXPECT_LE(worst, kTolerance);
  // The pairs whose scores depend on their types are not scored as all type 0.
  EXPECT_GT(nearest_untyped, 1e-3);
}

TEST(DebertaPairScoreTest, ModelTokenTypesFollowTheSeparator) {
  REQUIRE_PAIR_FIXTURE();
  const json expected = read_json_file(pair_folder() / "expected.json");
  const auto padded = expected.at("scores").at("right_padded").get<std::vector<double>>();
  const auto untyped = expected.at("scores").at("unbatched_all_type_0").get<std::vector<double>>();
  std::vector<std::vector<std::int64_t>> sequences;
  for (const auto& p : expected.at("pairs")) sequences.push_back(p.at("ids").get<std::vector<std::int64_t>>());
  LoadOptions load;
  load.dtype = c10::kFloat;
  auto model = load_reward_model(pair_folder().string(), load);
  torch::NoGradGuard no_grad;
  auto check = [&](const std::vector<double>& want, const char* what) {
    auto got = model->forward(PackedBatch::from_sequences(sequences)).to(torch::kDouble).flatten();
    ASSERT_EQ(got.size(0), static_cast<std::int64_t>(want.size()));
    double worst = 0.0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(got[static_cast<std::int64_t>(i)].item<double>() - want[i]));
    }
    EXPECT_LE(worst, kTolerance) << what;
  };
  model->set_token_type_separator(2);  // [SEP]
  check(padded, "one packed batch, types after [SEP], vs transformers' right-padded batch");
  model->set_token_type_separator(std::nullopt);
  check(untyped, "no separator: every token type 0");
}

TEST(PairTemplateTest, EncodePairMatchesTransformersForTokenizerJsonFolders) {
  const fs::path path = fixtures() / "hf_tokenizers" / "pair_encodings.json";
  if (!fs::is_regular_file(path)) {
    GTEST_SKIP() << path.string() << " is missing: generate it with tests/fixtures/make_deberta_pair_fixtures.py";
  }
  const json expected = read_json_file(path);
  ASSERT_FALSE(expected.at("folders").empty());
  for (const auto& [name, folder] : expected.at("folders").items()) {
    SCOPED_TRACE(name + " (" + folder.at("post_processor").dump() + ")");
    auto tok = load_tokenizer((fixtures() / "hf_tokenizers" / name).string());
    for (const auto& p : folder.at("pairs")) {
      const auto first = p.at("first").get<std::string>();
      const auto second = p.at("second").get<std::string>();
      const PairEncoding got = tok->encode_pair(first, second);
      // The file's pipeline, as tokenizers runs it (where transformers 5
      // rebuilds it, ids_transformers differs: docs/tokenizers.md).
      EXPECT_EQ(got.ids, p.at("ids").get<std::vector<TokenId>>()) << json(first) << ", " << json(second);
      EXPECT_EQ(got.type_ids, p.at("type_ids").get<std::vector<std::int32_t>>())
          << json(first) << ", " << json(second);
    }
  }
}

TEST(PairChatFormatTest, RulesAndErrors) {
  REQUIRE_PAIR_FIXTURE();
  auto tok = load_tokenizer(pair_folder().string(), TokenizerBackend::kSentencePiece);
  EXPECT_EQ(chat_format_from_name("pair"), ChatFormat::kPair);
  EXPECT_EQ(chat_format_name(ChatFormat::kPair), "pair");
  EXPECT_TRUE(chat_format_missing_tokens(ChatFormat::kPair, *tok).empty());
  // One message: the response alone, tokenizer(response).
  EXPECT_EQ(encode_chat(*tok, ChatFormat::kPair, {{"assistant", "Hello world"}}), tok->encode("Hello world"));
  // An empty response: tokenizer(q, "") is tokenizer(q).
  EXPECT_EQ(encode_chat(*tok, ChatFormat::kPair, {{"user", "Hi"}, {"assistant", ""}}), tok->encode("Hi"));
  // Several prompt messages do not make a text pair.
  try {
    encode_chat(*tok, ChatFormat::kPair, {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}});
    ADD_FAILURE() << "a four-message conversation was encoded as a pair";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("3 prompt messages"), std::string::npos) << e.what();
  }
  EXPECT_EQ(render_chat(ChatFormat::kPair, {{"user", "Q"}, {"assistant", "A"}}, tok->special_tokens()), "Q\n\nA");
  EXPECT_THROW(chat_template_for(ChatFormat::kPair), std::exception);
  // A tokenizer without [CLS]/[SEP] lacks what the format needs.
  auto llama = load_tokenizer((fixtures() / "hf_tokenizers" / "llama3_style").string());
  EXPECT_EQ(chat_format_missing_tokens(ChatFormat::kPair, *llama).size(), 2u);
}

// Text records (a prompt string and a response string, hh transcripts) are
// the two texts of the pair as written; truncation keeps the closing [SEP].
TEST(PairChatFormatTest, TextRecordsAreTheTwoTextsAndTruncationKeepsTheTemplate) {
  REQUIRE_PAIR_FIXTURE();
  auto tok = load_tokenizer(pair_folder().string(), TokenizerBackend::kSentencePiece);
  TokenizeOptions options;
  options.format = ChatFormat::kPair;
  options.max_length = 0;
  const std::string prompt = "\n\nHuman: How do I bake bread?\n\nAssistant: Knead it.\n\nHuman: And then?";
  const std::string response = "\n\nAssistant: Let it rise, then bake it.";
  const auto want = tok->encode_pair(prompt, response).ids;
  // A prompt string (text_format plain) and an hh transcript's slices (hh).
  EXPECT_EQ(tokenize_conversation({{"user", prompt}, {"assistant", response}}, *tok, options, nullptr,
                                  ChatFormat::kPlain),
            want);
  Conversation slices = {{"user", "\n\nHuman: How do I bake bread?"},
                         {"assistant", "\n\nAssistant: Knead it."},
                         {"user", "\n\nHuman: And then?"},
                         {"assistant", response}};
  EXPECT_EQ(tokenize_conversation(slices, *tok, options, nullptr, ChatFormat::kHH), want);

  // Truncated to 12 tokens: the start of the prompt and the end of the
  // response are cut, and the sequence still ends in [SEP] after type 1.
  options.max_length = 12;
  TruncationStats stats;
  auto cut = tokenize_conversation({{"user", prompt}, {"assistant", response}}, *tok, options, &stats);
  ASSERT_TRUE(cut.has_value());
  EXPECT_LE(cut->size(), 12u);
  EXPECT_EQ(cut->front(), 1);
  EXPECT_EQ(cut->back(), 2);
  EXPECT_EQ(std::count(cut->begin(), cut->end(), 2), 2) << "[CLS] prompt [SEP] response [SEP]";
  EXPECT_EQ(stats.truncated, 1);
}

// openrm-export's folder of the pair model: transformers loads it and gives
// the same pair ids, types and scores as openrm does on the export.
TEST(DebertaPairExportTest, TransformersScoresTheExportAsOpenrm) {
  REQUIRE_PAIR_FIXTURE();
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  ExportOptions options;
  options.model_dir = pair_folder().string();
  options.output_dir = tmp.file("hf");
  export_model(options);
  const json expected = read_json_file(pair_folder() / "expected.json");
  json request = {{"pairs", json::array()}};
  for (const auto& p : expected.at("pairs")) {
    if (p.at("second").get<std::string>().empty()) continue;  // not a pair in a batch of pairs
    request["pairs"].push_back({p.at("first"), p.at("second")});
  }
  write_file_atomic(tmp.file("request.json"), request.dump());
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/export_reference.py";
  const std::string cmd = "'" + python + "' '" + script + "' '" + options.output_dir + "' '" +
                          tmp.file("request.json") + "' '" + tmp.file("reference.json") + "' > '" +
                          tmp.file("python.log") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << test::kNoReferenceMessage;
  ASSERT_EQ(code, 0) << test::read_bytes(tmp.file("python.log"));
  const json ref = read_json_file(tmp.file("reference.json"));

  ScoreOptions score;
  score.dtype = "fp32";
  score.threads = 2;
  Scorer scorer = Scorer::from_folder(options.output_dir, score);
  EXPECT_EQ(scorer.chat_format(), ChatFormat::kPair);
  auto tok = load_tokenizer(options.output_dir);
  std::vector<Conversation> conversations;
  for (const auto& p : request["pairs"]) conversations.push_back({{"user", p[0]}, {"assistant", p[1]}});
  const ScoreResult got = scorer.score_conversations(conversations);
  ASSERT_EQ(ref.at("pairs").size(), conversations.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < conversations.size(); ++i) {
    const PairEncoding enc = tok->encode_pair(conversations[i][0].content, conversations[i][1].content);
    EXPECT_EQ(ref["pairs"][i].at("ids").get<std::vector<TokenId>>(), enc.ids) << i;
    EXPECT_EQ(ref["pairs"][i].at("type_ids").get<std::vector<std::int32_t>>(), enc.type_ids) << i;
    worst = std::max(worst, std::abs(ref["pairs"][i].at("reward").get<double>() - got.rewards[i]));
  }
  std::printf("[ deberta  ] export of the pair model: transformers (%s) vs openrm max |diff| %.3g\n",
              ref["tokenizer_class"].get<std::string>().c_str(), worst);
  EXPECT_LE(worst, kTolerance);
}

}  // namespace
}  // namespace openrm
