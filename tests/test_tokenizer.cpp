// The sentencepiece tokenizer: ids against the sentencepiece Python module
// (tests/spm_reference.py) on the Llama-2 tokenizer and the hh-rlhf texts in
// ../shared, and the folder rules (special/added tokens, legacy, BOS/EOS,
// errors) on tiny tokenizers trained here through the same bridge.
#include <gtest/gtest.h>
#include <openrm/io/file.h>
#include <openrm/tokenizer/tokenizer.h>
#include <openrm/tokenizer/train_tokenizer.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using test::contains;
using test::error_of;
using test::TempDir;
using Ids = std::vector<TokenId>;

// ---- a tiny trained tokenizer -----------------------------------------------------

std::vector<std::string> corpus() {
  static const char* const words[] = {
      "the",     "a",      "reward",     "model",    "prefers", "helpful", "honest",   "harmless",
      "answers", "Human:", "Assistant:", "question", "pair",    "chosen",  "rejected", "token",
      "policy",  "value",  "gradient",   "learning", "rate",    "batch",   "hello",    "world",
      "again",   "please", "thank",      "you",      "what",    "is",      "this",     "that",
      "can",     "I",      "help",       "with",     "code",    "café",    "naïve",    "über",
      "日本語",  "mañana", "42",         "2024",     "3.14",    "(yes)",   "no,",      "ok.",
      "why?",    "done!",  "it's",       "don't",    "[x]",     "<tag>",   "e-mail",   "user_name"};
  const std::size_t n = sizeof(words) / sizeof(words[0]);
  std::vector<std::string> texts;
  std::uint32_t state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u, (state >> 16) & 0x7fff; };
  for (int i = 0; i < 800; ++i) {
    std::string text;
    int length = 4 + static_cast<int>(next() % 12);
    for (int w = 0; w < length; ++w) {
      if (w > 0) text += next() % 9 == 0 ? "\n" : " ";
      text += words[next() % n];
    }
    texts.push_back(text);
  }
  return texts;
}

TokenizerTrainOptions tiny_options() {
  TokenizerTrainOptions o;
  o.vocab_size = 400;
  o.control_symbols = {"[INST]", "[/INST]"};
  o.user_defined_symbols = {"<|sep|>"};
  return o;
}

// Trained once per process; a bare .model file.
const std::string& tiny_model() {
  static TempDir dir;  // removed at exit
  static const std::string path = [] {
    std::string p = dir.file("tiny.model");
    train_sentencepiece(corpus(), p, tiny_options());
    return p;
  }();
  return path;
}

// A folder with the tiny model as tokenizer.model and the given JSON files.
void make_folder(const TempDir& dir,
                 const std::vector<std::pair<std::string, nlohmann::json>>& files) {
  test::write_bytes(dir.file("tokenizer.model"), test::read_bytes(tiny_model()));
  for (const auto& [name, content] : files) test::write_bytes(dir.file(name), content.dump(2));
}

// sentencepiece's own ids: no BOS, no special-token parsing, legacy rules.
Ids raw(const Tokenizer& t, const std::string& text) {
  EncodeOptions o;
  o.add_bos = false;
  o.add_eos = false;
  o.parse_special = false;
  return t.encode(text, o);
}

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

EncodeOptions no_bos() {
  EncodeOptions o;
  o.add_bos = false;
  return o;
}

// ---- python sentencepiece as the reference ---------------------------------------

// Runs tests/spm_reference.py; returns its exit status (77: no sentencepiece module).
int run_reference(const std::string& mode, const std::string& model, const std::string& input,
                  const std::string& output) {
  std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/spm_reference.py";
  // Debian's python3 has the sentencepiece module; one earlier on PATH may not.
  std::string python = path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  std::string command =
      python + " '" + script + "' " + mode + " '" + model + "' '" + input + "' '" + output + "'";
  int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

struct Reference {
  std::string text;
  Ids ids;
  std::string decoded;
  Ids ids_no_dummy_prefix;  // "strings" mode only
};

std::vector<Reference> read_reference(const std::string& path) {
  std::vector<Reference> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    rows.push_back({j.at("text").get<std::string>(), j.at("ids").get<Ids>(),
                    j.at("decoded").get<std::string>(), j.value("ids_no_dummy_prefix", Ids{})});
  }
  return rows;
}

std::string llama_model() {
  std::string shared = test::shared_dir();
  std::string path = shared + "/data/llama2-tokenizer.model";
  return !shared.empty() && path_exists(path) ? path : std::string();
}

// A Llama folder in `dir` (a link to the shared model) with legacy=false.
std::shared_ptr<const Tokenizer> llama_non_legacy(const TempDir& dir) {
  if (symlink(llama_model().c_str(), dir.file("tokenizer.model").c_str()) != 0) {
    throw std::runtime_error("symlink failed");
  }
  test::write_bytes(dir.file("tokenizer_config.json"), "{\"legacy\": false}");
  return load_tokenizer(dir.path());
}

const std::vector<std::string> kHardStrings = {"Hello world",
                                               "",
                                               " ",
                                               "  leading and trailing  ",
                                               "\n\n",
                                               "\n\nHuman: hi\n\nAssistant:",
                                               "tabs\tand\r\nwindows lines",
                                               "naïve café — “quotes” …",
                                               "日本語のテキスト",
                                               "😀👍🏽 emoji",
                                               "Ωmega ∑ ∫ ≠",
                                               "<s> inside text </s>",
                                               "<unk>",
                                               "▁already▁marked",
                                               "a\u00A0b",
                                               "\x01\x02 control chars",
                                               "ǅ ﬁ ligature",
                                               "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
                                               "1234567890",
                                               "x"};

TEST(SpmReference, LlamaHHRlhfMatchesPythonSentencepiece) {
  std::string model = llama_model();
  std::string data = test::shared_dir() + "/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
  if (model.empty() || !path_exists(data)) GTEST_SKIP() << "../shared/data is not available";
  TempDir dir;
  int status = run_reference("hh", model, data, dir.file("ref.jsonl"));
  if (status == 77 || status == 127) GTEST_SKIP() << "python3 with sentencepiece is not available";
  ASSERT_EQ(status, 0);
  auto tokenizer = load_tokenizer(model);
  TempDir folder;
  auto non_legacy = llama_non_legacy(folder);
  std::vector<Reference> rows = read_reference(dir.file("ref.jsonl"));
  ASSERT_EQ(rows.size(), 3600u);
  std::size_t ids_compared = 0, mismatched_texts = 0, mismatched_ids = 0, round_trips = 0;
  std::size_t non_legacy_mismatches = 0;
  for (const auto& row : rows) {
    // legacy=false encodes plain text the same way (through "<unk>" + text).
    if (non_legacy->encode(row.text, no_bos()) != row.ids) ++non_legacy_mismatches;
    Ids ours = tokenizer->encode(row.text, no_bos());
    ids_compared += row.ids.size();
    if (ours != row.ids) {
      ++mismatched_texts;
      for (std::size_t i = 0; i < row.ids.size(); ++i) {
        if (i >= ours.size() || ours[i] != row.ids[i]) ++mismatched_ids;
      }
      ADD_FAILURE() << "ids differ for text starting \"" << row.text.substr(0, 60) << "\"";
    }
    EXPECT_EQ(tokenizer->decode(row.ids), row.decoded);
    if (row.decoded == row.text) {
      ++round_trips;
      EXPECT_EQ(tokenizer->decode(ours), row.text);
    }
  }
  // Default options: transformers' LlamaTokenizer adds BOS in front.
  EXPECT_EQ(tokenizer->encode(rows[0].text), concat({{1}, rows[0].ids}));
  std::cout << "[ hh-rlhf ] " << rows.size() << " texts, " << ids_compared << " ids compared, "
            << mismatched_texts << " texts / " << mismatched_ids << " ids mismatched, "
            << round_trips << " texts round-trip; legacy=false: " << non_legacy_mismatches
            << " texts mismatched\n";
  EXPECT_EQ(mismatched_texts, 0u);
  EXPECT_EQ(non_legacy_mismatches, 0u);
}

TEST(SpmReference, LlamaHardStringsAndSpecialTokensInText) {
  std::string model = llama_model();
  if (model.empty()) GTEST_SKIP() << "../shared/data is not available";
  TempDir dir;
  std::vector<std::string> inputs = kHardStrings;
  inputs.insert(inputs.end(), {"Hello", "world", " world", "[INST]Hi"});
  test::write_bytes(dir.file("in.json"), nlohmann::json(inputs).dump());
  int status = run_reference("strings", model, dir.file("in.json"), dir.file("ref.jsonl"));
  if (status == 77 || status == 127) GTEST_SKIP() << "python3 with sentencepiece is not available";
  ASSERT_EQ(status, 0);
  std::map<std::string, Reference> ref;
  for (auto& row : read_reference(dir.file("ref.jsonl"))) ref[row.text] = row;
  ASSERT_EQ(ref.size(), inputs.size());
  auto tokenizer = load_tokenizer(model);
  for (const auto& text : kHardStrings) {
    SCOPED_TRACE(text);
    EXPECT_EQ(raw(*tokenizer, text), ref[text].ids);
    EXPECT_EQ(tokenizer->decode(ref[text].ids), ref[text].decoded);
  }
  // "<s>" in text is the BOS token (transformers splits on it); each chunk
  // is encoded on its own (legacy, the default without tokenizer_config.json).
  EXPECT_EQ(tokenizer->encode("Hello<s> world", no_bos()),
            concat({ref["Hello"].ids, {1}, ref[" world"].ids}));
  EXPECT_EQ(tokenizer->encode("Hello</s>world"),
            concat({{1}, ref["Hello"].ids, {2}, ref["world"].ids}));
  EXPECT_EQ(tokenizer->encode("", no_bos()), Ids{});
  EXPECT_EQ(tokenizer->encode(""), Ids{1});
  // legacy=false: no "▁" after a special token unless the text has a space.
  TempDir folder;
  auto non_legacy = llama_non_legacy(folder);
  EXPECT_EQ(non_legacy->encode("Hello<s>world", no_bos()),
            concat({ref["Hello"].ids, {1}, ref["world"].ids_no_dummy_prefix}));
  EXPECT_EQ(non_legacy->encode("Hello<s> world", no_bos()),
            concat({ref["Hello"].ids, {1}, ref["world"].ids}));
  EXPECT_EQ(non_legacy->encode("<s>[INST]Hi"),
            concat({{1, 1}, ref["[INST]Hi"].ids_no_dummy_prefix}));
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  EXPECT_EQ(tokenizer->special_tokens().bos.text, "<s>");
  EXPECT_EQ(tokenizer->special_tokens().eos.text, "</s>");
  EXPECT_FALSE(tokenizer->special_tokens().pad.present());
}

TEST(SpmReference, TrainedModelMatchesPythonSentencepiece) {
  TempDir dir;
  test::write_bytes(dir.file("in.json"), nlohmann::json(kHardStrings).dump());
  int status = run_reference("strings", tiny_model(), dir.file("in.json"), dir.file("ref.jsonl"));
  if (status == 77 || status == 127) GTEST_SKIP() << "python3 with sentencepiece is not available";
  ASSERT_EQ(status, 0);
  auto tokenizer = load_tokenizer(tiny_model());
  for (const auto& row : read_reference(dir.file("ref.jsonl"))) {
    SCOPED_TRACE(row.text);
    EXPECT_EQ(raw(*tokenizer, row.text), row.ids);
    EXPECT_EQ(tokenizer->decode(row.ids), row.decoded);
  }
}

// ---- training -----------------------------------------------------------------

TEST(TrainTokenizer, SameInputGivesSameModel) {
  TempDir dir;
  TokenizerTrainOptions o = tiny_options();
  o.model_type = "unigram";
  o.num_threads = 2;
  o.input_sentence_size = 500;  // sampled with the seed
  train_sentencepiece(corpus(), dir.file("a.model"), o);
  train_sentencepiece(corpus(), dir.file("b.model"), o);
  EXPECT_EQ(test::read_bytes(dir.file("a.model")), test::read_bytes(dir.file("b.model")));
}

TEST(TrainTokenizer, SpecialPiecesAndSymbols) {
  auto t = load_tokenizer(tiny_model());
  const SpecialTokens& s = t->special_tokens();
  EXPECT_EQ(s.unk.id, 0);
  EXPECT_EQ(s.bos.id, 1);
  EXPECT_EQ(s.eos.id, 2);
  EXPECT_EQ(s.pad.id, 3);
  EXPECT_EQ(s.pad.text, "<pad>");
  EXPECT_EQ(t->vocab_size(), 400);
  EXPECT_TRUE(t->default_add_bos());
  EXPECT_FALSE(t->default_add_eos());
  // A user-defined symbol is one piece, matched by sentencepiece itself.
  TokenId sep = t->token_to_id("<|sep|>").value();
  Ids ids = raw(*t, "hello<|sep|>world");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), sep), 1);
  // A control symbol is a special token: matched only with parse_special.
  TokenId inst = t->token_to_id("[INST]").value();
  EXPECT_EQ(t->encode("[INST]", no_bos()), Ids{inst});
  Ids plain = raw(*t, "[INST]");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), inst), 0);
  EXPECT_EQ(t->decode(plain), "[INST]");
  EXPECT_EQ(t->decode(t->encode("[INST] hello")), "<s>[INST] hello");
  EXPECT_EQ(t->decode(t->encode("[INST] hello"), /*skip_special=*/true), " hello");
}

TEST(TrainTokenizer, FolderOutputLoadsWithSameSpecialTokens) {
  TempDir dir;
  auto t = train_tokenizer(corpus(), dir.file("tok"), tiny_options());
  EXPECT_TRUE(has_tokenizer(dir.file("tok")));
  EXPECT_TRUE(path_exists(dir.file("tok/tokenizer_config.json")));
  auto bare = load_tokenizer(dir.file("tok/tokenizer.model"));
  EXPECT_EQ(t->special_tokens().pad.id, bare->special_tokens().pad.id);
  for (const auto& text : corpus()) ASSERT_EQ(t->encode(text), bare->encode(text)) << text;
  EXPECT_EQ(t->encode("a[INST]b<s>c"), bare->encode("a[INST]b<s>c"));
}

TEST(TrainTokenizer, Errors) {
  TempDir dir;
  TokenizerTrainOptions o = tiny_options();
  o.vocab_size = 100000;
  std::string err = error_of([&] { train_sentencepiece(corpus(), dir.file("x.model"), o); });
  EXPECT_TRUE(contains(err, "Vocabulary size too high")) << err;
  EXPECT_TRUE(contains(err, dir.file("x.model")));
  EXPECT_FALSE(path_exists(dir.file("x.model")));
  err = error_of([&] { train_sentencepiece({"", ""}, dir.file("x.model"), tiny_options()); });
  EXPECT_TRUE(contains(err, "no training text")) << err;
  o = tiny_options();
  o.model_type = "wordpiece";
  EXPECT_TRUE(contains(error_of([&] { train_sentencepiece(corpus(), dir.file("x.model"), o); }),
                       "model_type 'wordpiece'"));
  o = tiny_options();
  o.user_defined_symbols = {"a,b"};
  EXPECT_TRUE(
      contains(error_of([&] { train_sentencepiece(corpus(), dir.file("x.model"), o); }), "comma"));
  o = tiny_options();
  o.pad_id = 1;
  EXPECT_TRUE(contains(error_of([&] { train_sentencepiece(corpus(), dir.file("x.model"), o); }),
                       "pad_id 1"));
}

TEST(TrainTokenizer, VerboseTrainingLogsToTheProgramsStderr) {
  // sentencepiece logs to std::cerr; under RTLD_DEEPBIND that needs the
  // bridge's stream fix-up, or the first line crashes.
  TempDir dir;
  TokenizerTrainOptions o = tiny_options();
  o.verbose = true;
  testing::internal::CaptureStderr();
  train_sentencepiece(corpus(), dir.file("v.model"), o);
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(log, "LOG(INFO)")) << log.substr(0, 500);
  EXPECT_EQ(test::read_bytes(dir.file("v.model")), test::read_bytes(tiny_model()));
}

// ---- folders: special and added tokens ------------------------------------------

TEST(TokenizerFolder, SpecialTokensFromTokenizerConfig) {
  TempDir dir;
  make_folder(
      dir,
      {{"tokenizer_config.json",
        {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
         {"pad_token", "<unk>"},
         {"add_bos_token", false},
         {"add_eos_token", true},
         {"chat_template",
          {{{"name", "rag"}, {"template", "R"}}, {{"name", "default"}, {"template", "D"}}}}}}});
  auto t = load_tokenizer(dir.path());
  auto bare = load_tokenizer(tiny_model());
  EXPECT_EQ(t->special_tokens().pad.id, 0);
  EXPECT_EQ(t->special_tokens().pad.text, "<unk>");
  EXPECT_FALSE(t->default_add_bos());
  EXPECT_TRUE(t->default_add_eos());
  EXPECT_EQ(t->chat_template(), "D");
  EXPECT_EQ(t->encode("hello"), concat({raw(*bare, "hello"), {2}}));
  EncodeOptions both;
  both.add_bos = true;
  both.add_eos = false;
  EXPECT_EQ(t->encode("hello", both), concat({{1}, raw(*bare, "hello")}));
  EXPECT_EQ(t->source(), dir.path());
}

TEST(TokenizerFolder, SpecialTokensMapOverridesConfig) {
  TempDir dir;
  make_folder(
      dir, {{"tokenizer_config.json", {{"pad_token", "<unk>"}}},
            {"special_tokens_map.json",
             {{"pad_token", {{"content", "</s>"}}}, {"additional_special_tokens", {"<|sep|>"}}}}});
  auto t = load_tokenizer(dir.path());
  EXPECT_EQ(t->special_tokens().pad.id, 2);
  // Named as special, the user-defined symbol becomes a special token.
  TokenId sep = t->token_to_id("<|sep|>").value();
  Ids ids = t->encode("hello<|sep|>world");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), sep), 1);
  EXPECT_EQ(t->decode(ids, /*skip_special=*/true), "hello world");
}

TEST(TokenizerFolder, AddedPadTokenBeyondTheBaseVocabulary) {
  TempDir dir;
  // As published Llama/Mistral reward models: vocab + "[PAD]".
  make_folder(dir, {{"added_tokens.json", {{"[PAD]", 400}}},
                    {"tokenizer_config.json", {{"pad_token", "[PAD]"}}}});
  auto t = load_tokenizer(dir.path());
  auto bare = load_tokenizer(tiny_model());
  EXPECT_EQ(t->vocab_size(), 401);
  EXPECT_EQ(t->token_to_id("[PAD]"), std::optional<TokenId>(400));
  EXPECT_EQ(t->id_to_token(400), "[PAD]");
  EXPECT_EQ(t->special_tokens().pad.id, 400);
  Ids ids = t->encode("hello[PAD]world", no_bos());
  EXPECT_EQ(ids, concat({raw(*bare, "hello"), {400}, raw(*bare, "world")}));
  EXPECT_EQ(t->decode(ids), "hello[PAD]world");
  EXPECT_EQ(t->decode(ids, /*skip_special=*/true), "hello world");
  EXPECT_TRUE(contains(error_of([&] { t->decode({401}); }), "token id 401"));
  EXPECT_TRUE(contains(error_of([&] { t->decode({401}); }), "vocabulary size 401"));
  EXPECT_TRUE(contains(error_of([&] { t->decode({-1}); }), "token id -1"));
  EXPECT_TRUE(contains(error_of([&] { t->id_to_token(401); }), "401"));
}

TEST(TokenizerFolder, AddedTokensDecoderWithStripping) {
  TempDir dir;
  nlohmann::json decoder = {
      {"400", {{"content", "<mask>"}, {"lstrip", true}, {"rstrip", false}, {"special", true}}},
      {"401", {{"content", "<eot>"}, {"lstrip", false}, {"rstrip", true}, {"special", false}}},
      {"1", {{"content", "<s>"}, {"special", true}}}};
  make_folder(dir, {{"tokenizer_config.json", {{"added_tokens_decoder", decoder}}}});
  auto t = load_tokenizer(dir.path());
  auto bare = load_tokenizer(tiny_model());
  EXPECT_EQ(t->vocab_size(), 402);
  // lstrip eats the spaces on the left of <mask>; rstrip those right of <eot>.
  EXPECT_EQ(t->encode("hello  <mask> world<eot>  again", no_bos()),
            concat({raw(*bare, "hello"), {400}, raw(*bare, " world"), {401}, raw(*bare, "again")}));
  // <eot> is not special: skip_special keeps it.
  EXPECT_EQ(t->decode({400, 401}, true), "<eot>");
}

TEST(TokenizerFolder, ContradictionsAreErrorsNamingFileAndField) {
  TempDir a;
  make_folder(a, {{"tokenizer_config.json", {{"pad_token", "[NOPE]"}}}});
  std::string err = error_of([&] { load_tokenizer(a.path()); });
  EXPECT_TRUE(contains(err, a.file("tokenizer_config.json") + ": pad_token")) << err;
  EXPECT_TRUE(contains(err, "'[NOPE]'")) << err;

  TempDir b;  // id 5 is a base piece with other text
  make_folder(b, {{"added_tokens.json", {{"[PAD]", 5}}}});
  err = error_of([&] { load_tokenizer(b.path()); });
  EXPECT_TRUE(contains(err, "added_tokens.json")) << err;
  EXPECT_TRUE(contains(err, "'[PAD]' has id 5")) << err;

  TempDir c;
  make_folder(c, {{"tokenizer_config.json", {{"add_bos_token", "yes"}}}});
  err = error_of([&] { load_tokenizer(c.path()); });
  EXPECT_TRUE(contains(err, "tokenizer_config.json: add_bos_token: expected true or false")) << err;

  TempDir d;
  test::write_bytes(d.file("tokenizer.model"), test::read_bytes(tiny_model()));
  test::write_bytes(d.file("special_tokens_map.json"), "{\"pad_token\": ");
  err = error_of([&] { load_tokenizer(d.path()); });
  EXPECT_TRUE(contains(err, d.file("special_tokens_map.json") + ": malformed JSON")) << err;
}

// ---- legacy ------------------------------------------------------------------

TEST(TokenizerFolder, LegacyTrueEncodesEachChunkWithDummyPrefix) {
  TempDir dir;
  make_folder(dir, {{"tokenizer_config.json", {{"legacy", true}}}});
  auto t = load_tokenizer(dir.path());
  EXPECT_EQ(t->encode("hello<s>world", no_bos()),
            concat({raw(*t, "hello"), {1}, raw(*t, "world")}));
  EXPECT_EQ(t->encode("hello<s>world", no_bos()),
            load_tokenizer(tiny_model())->encode("hello<s>world", no_bos()));
  EXPECT_EQ(t->decode(t->encode("hello<s> world<s>world")), "<s>hello<s> world<s>world");
}

TEST(TokenizerFolder, LegacyFalseGivesNoDummyPrefixAfterSpecialTokens) {
  TempDir dir;
  make_folder(dir, {{"tokenizer_config.json", {{"legacy", false}}}});
  auto t = load_tokenizer(dir.path());
  auto bare = load_tokenizer(tiny_model());
  // Plain text: exactly sentencepiece's ids, as with legacy=true.
  for (const auto& text : corpus()) ASSERT_EQ(t->encode(text, no_bos()), raw(*bare, text));
  EXPECT_EQ(t->encode("  two spaces", no_bos()), raw(*bare, "  two spaces"));
  // After a special token, "world" starts without "▁" ...
  Ids ids = t->encode("hello<s>world", no_bos());
  ASSERT_EQ(ids.size() > 2u, true);
  auto one = std::find(ids.begin(), ids.end(), 1);
  ASSERT_NE(one, ids.end());
  EXPECT_EQ(Ids(ids.begin(), one), raw(*bare, "hello"));
  std::string rest;
  for (auto it = one + 1; it != ids.end(); ++it) rest += t->id_to_token(*it);
  EXPECT_EQ(rest, "world");
  // ... and " world" with one: the pieces of sentencepiece's "▁world".
  EXPECT_EQ(t->encode("hello<s> world", no_bos()),
            concat({raw(*bare, "hello"), {1}, raw(*bare, "world")}));
  // A leading special token gets no "▁" in front of it.
  Ids lead = t->encode("<s>world", no_bos());
  EXPECT_EQ(lead.front(), 1);
  EXPECT_EQ(t->decode(lead), "<s>world");
  for (const std::string text : {"hello<s>world", "hello<s> world", "<s> x [INST]y[/INST] z"}) {
    EXPECT_EQ(t->decode(t->encode(text, no_bos())), text);
  }
}

// ---- BOS/EOS, parse_special, bad input --------------------------------------------

TEST(Tokenizer, BosEosAndParseSpecial) {
  auto t = load_tokenizer(tiny_model());
  EXPECT_EQ(t->encode(""), Ids{1});
  EncodeOptions eos;
  eos.add_eos = true;
  EXPECT_EQ(t->encode("", eos), (Ids{1, 2}));
  EXPECT_EQ(t->encode("hi", eos), concat({{1}, raw(*t, "hi"), {2}}));
  EncodeOptions literal;
  literal.parse_special = false;
  Ids ids = t->encode("<s>", literal);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);  // only the added BOS
  EXPECT_EQ(t->token_to_id("no-such-piece"), std::nullopt);
  EXPECT_EQ(t->token_to_id("<pad>"), std::optional<TokenId>(3));
}

TEST(Tokenizer, InvalidUtf8DoesNotCrash) {
  auto t = load_tokenizer(tiny_model());
  for (const std::string text : {std::string("\xff\xfe abc \xc3"), std::string("a\0b", 3),
                                 std::string("\xe2\x96"), std::string(10000, '\x80')}) {
    Ids ids = t->encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_NO_THROW(t->decode(ids));
  }
}

TEST(Tokenizer, MissingAndCorruptFiles) {
  TempDir dir;
  std::string err = error_of([&] { load_tokenizer(dir.file("nope")); });
  EXPECT_TRUE(contains(err, dir.file("nope"))) << err;
  err = error_of([&] { load_tokenizer(dir.path()); });
  EXPECT_TRUE(contains(err, "neither tokenizer.json nor a sentencepiece model (tokenizer.model")) << err;
  EXPECT_FALSE(has_tokenizer(dir.path()));
  std::string model = test::read_bytes(tiny_model());
  const std::vector<std::pair<std::string, std::string>> corrupt = {
      {"empty.model", ""},
      {"text.model", "this is not a model\n"},
      {"truncated.model", model.substr(0, model.size() / 2)},
      {"zeros.model", std::string(4096, '\0')}};
  for (const auto& [name, bytes] : corrupt) {
    test::write_bytes(dir.file(name), bytes);
    err = error_of([&] { load_tokenizer(dir.file(name)); });
    EXPECT_TRUE(contains(err, dir.file(name))) << err;
    EXPECT_TRUE(contains(err, "cannot load the sentencepiece model")) << err;
  }
  // Bytes flipped all over a real model: an error or a working tokenizer, never a crash.
  for (std::size_t step : {7u, 31u, 101u}) {
    std::string bytes = model;
    for (std::size_t i = 0; i < bytes.size(); i += step)
      bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    test::write_bytes(dir.file("flipped.model"), bytes);
    try {
      load_tokenizer(dir.file("flipped.model"))->encode("hello world");
    } catch (const Error&) {
    }
  }
}

TEST(Tokenizer, EncodeFromSeveralThreadsGivesTheSameIds) {
  auto t = load_tokenizer(tiny_model());
  std::vector<std::string> texts = corpus();
  std::vector<Ids> expected;
  for (const auto& text : texts) expected.push_back(t->encode(text));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < texts.size(); ++i) {
          if (t->encode(texts[i]) != expected[i]) ++mismatches[k];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(Tokenizer, WorksInAProcessThatUsesTorch) {
  // The point of the bridge: sentencepiece and LibTorch's protobuf in one process.
  torch::Tensor a = torch::ones({8, 8});
  auto t = load_tokenizer(tiny_model());
  Ids ids = t->encode("hello world again");
  torch::Tensor x = torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()));
  EXPECT_EQ(x.size(0), static_cast<std::int64_t>(ids.size()));
  EXPECT_EQ(torch::matmul(a, a).sum().item<float>(), 512.0f);
  EXPECT_EQ(t->decode(ids, true), "hello world again");
}

// The bridge loader honours OPENRM_SPM_BRIDGE and lists what it tried. Run in
// a child process (the bridge loads once per process); disabled in normal
// runs, the test below runs it in the child.
TEST(SpmBridge, DISABLED_ChildReportsBadBridgePath) {
  if (std::getenv("OPENRM_TEST_BRIDGE_CHILD") == nullptr) GTEST_SKIP() << "runs as a child only";
  TempDir dir;
  test::write_bytes(dir.file("x.model"), "not read: the bridge fails first");
  std::string err = error_of([&] { load_tokenizer(dir.file("x.model")); });
  EXPECT_TRUE(contains(err, "cannot load the sentencepiece bridge")) << err;
  EXPECT_TRUE(contains(err, "/no/such/libopenrm_spm_bridge.so")) << err;
}

TEST(SpmBridge, EnvironmentVariableOverridesTheSearch) {
  char self[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", self, sizeof(self) - 1), 0);
  TempDir out;
  std::string command = std::string("OPENRM_TEST_BRIDGE_CHILD=1 ") +
                        "OPENRM_SPM_BRIDGE=/no/such/libopenrm_spm_bridge.so '" + self +
                        "' --gtest_also_run_disabled_tests"
                        " --gtest_filter=SpmBridge.DISABLED_ChildReportsBadBridgePath > '" +
                        out.file("child.txt") + "' 2>&1";
  int status = std::system(command.c_str());
  const std::string child = test::read_bytes(out.file("child.txt"));
  ASSERT_TRUE(WIFEXITED(status)) << child;
  EXPECT_EQ(WEXITSTATUS(status), 0) << child;
  // It must have run, not been filtered out or skipped.
  EXPECT_TRUE(contains(child, "[       OK ] SpmBridge.DISABLED_ChildReportsBadBridgePath")) << child;
}

}  // namespace
}  // namespace openrm
