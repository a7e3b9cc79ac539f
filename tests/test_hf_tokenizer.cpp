// The tokenizer.json backend against the `tokenizers` library and
// transformers: the committed fixtures (tests/fixtures/hf_tokenizers/, written
// by tests/fixtures/make_hf_tokenizer_fixtures.py), live runs on the real
// GPT-2 tokenizer.json and the real Llama-2 model converted to tokenizer.json
// (../shared/data), chat templates, the backend choice, and bad files.
#include <gtest/gtest.h>

#include <openrm/error.h>
#include <openrm/score/scorer.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/tokenizer.h>

#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <iostream>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Ids = std::vector<TokenId>;
using test::TempDir;

fs::path fixtures_dir() { return fs::path(OPENRM_SOURCE_DIR) / "tests/fixtures/hf_tokenizers"; }

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(fixtures_dir())) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

json expected(const std::string& name) {
  return json::parse(test::read_bytes((fixtures_dir() / name / "expected.json").string()));
}

EncodeOptions plain() {
  EncodeOptions options;
  options.add_bos = false;
  options.add_eos = false;
  return options;
}

std::string shown(const std::string& text) { return json(text.substr(0, 120)).dump(); }

TEST(HfTokenizerFixtures, CoverEveryFamilyAndRecordTheirVersions) {
  const auto names = fixture_names();
  for (const char* want : {"gpt2_style", "llama3_style", "qwen2_style", "llama2_style",
                           "llama2_metaspace_style", "gemma_style", "roberta_style", "bert_style",
                           "added_tokens_style", "bpe_subword_style", "split_behaviors_style",
                           "metaspace_split_style", "wordlevel_style"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  for (const auto& name : names) {
    const json e = expected(name);
    EXPECT_FALSE(e.at("versions").at("tokenizers").get<std::string>().empty()) << name;
    EXPECT_GE(e.at("cases").size(), 100u) << name;
  }
}

// The bare tokenizer.json, as tokenizers.Tokenizer.from_file reads it.
TEST(HfTokenizerFixtures, IdsAndDecodingEqualTokenizers) {
  std::size_t compared = 0;
  for (const auto& name : fixture_names()) {
    SCOPED_TRACE(name);
    const json e = expected(name);
    auto tokenizer = load_tokenizer((fixtures_dir() / name / "tokenizer.json").string());
    std::size_t wrong = 0;
    for (const auto& c : e.at("cases")) {
      const std::string text = c.at("text");
      const Ids ids_plain = tokenizer->encode(text, plain());
      const Ids ids = tokenizer->encode(text);
      const std::string decoded = tokenizer->decode(c.at("ids_plain").get<Ids>());
      const std::string decoded_skip = tokenizer->decode(c.at("ids").get<Ids>(), true);
      const bool ok = ids_plain == c.at("ids_plain").get<Ids>() && ids == c.at("ids").get<Ids>() &&
                      decoded == c.at("decoded").get<std::string>() &&
                      decoded_skip == c.at("decoded_skip").get<std::string>();
      if (!ok && ++wrong <= 3) {
        ADD_FAILURE() << "text " << shown(text) << ": ids " << (ids_plain == c.at("ids_plain").get<Ids>())
                      << ", with specials " << (ids == c.at("ids").get<Ids>()) << ", decoded "
                      << json(decoded).dump() << " vs " << c.at("decoded").dump();
      }
      ++compared;
    }
    EXPECT_EQ(wrong, 0u);
  }
  std::cout << "[ fixtures ] " << compared << " texts equal tokenizers' ids and decoding\n";
}

// The folder, as transformers' AutoTokenizer loads it (tokenizer_config.json
// included). transformers 5 rebuilds the normalizer and pre-tokenizer of some
// classes from its own defaults (LlamaTokenizer with legacy=false); openrm
// runs the file's pipeline, which is what the tokenizers library does, so for
// the cases transformers lists as differing the reference is tokenizers'.
TEST(HfTokenizerFixtures, FolderIdsEqualTransformers) {
  for (const auto& name : fixture_names()) {
    SCOPED_TRACE(name);
    const json e = expected(name);
    auto tokenizer = load_tokenizer((fixtures_dir() / name).string());
    std::set<std::size_t> differing;
    for (const auto& i : e.at("transformers").at("cases_differing")) differing.insert(i.get<std::size_t>());
    std::size_t wrong = 0, as_tokenizers = 0;
    for (std::size_t i = 0; i < e.at("cases").size(); ++i) {
      const json& c = e.at("cases")[i];
      const bool rebuilt = differing.count(i) > 0;
      const json& want = !rebuilt && c.contains("ids_transformers") ? c.at("ids_transformers") : c.at("ids");
      as_tokenizers += rebuilt;
      if (tokenizer->encode(c.at("text").get<std::string>()) != want.get<Ids>() && ++wrong <= 3) {
        ADD_FAILURE() << "text " << shown(c.at("text"));
      }
    }
    EXPECT_EQ(wrong, 0u);
    if (as_tokenizers) {
      std::cout << "[ " << name << " ] " << as_tokenizers << " cases where transformers' "
                << e.at("transformers").at("class").get<std::string>()
                << " rebuilds the pipeline: compared with tokenizers\n";
    }
  }
}

// apply_chat_template(tokenize=True) with the real templates, recognised from
// each folder's chat_template.
TEST(HfTokenizerChat, ChatIdsEqualApplyChatTemplate) {
  const std::pair<const char*, ChatFormat> families[] = {{"llama3_style", ChatFormat::kLlama31},
                                                         {"qwen2_style", ChatFormat::kQwen3},
                                                         {"gemma_style", ChatFormat::kGemma},
                                                         {"llama2_style", ChatFormat::kLlama2},
                                                         {"llama2_metaspace_style", ChatFormat::kLlama2}};
  for (const auto& [name, format] : families) {
    SCOPED_TRACE(name);
    const json e = expected(name);
    auto tokenizer = load_tokenizer((fixtures_dir() / name).string());
    ASSERT_EQ(recognise_chat_template(tokenizer->chat_template()), format);
    EXPECT_EQ(default_chat_format(*tokenizer), format);
    EXPECT_TRUE(chat_format_missing_tokens(format, *tokenizer).empty());
    std::size_t checked = 0;
    for (const auto& chat : e.at("chats")) {
      Conversation conversation;
      for (const auto& m : chat.at("messages")) conversation.push_back({m.at("role"), m.at("content")});
      if (chat.contains("error")) {
        EXPECT_THROW(encode_chat(*tokenizer, format, conversation), Error);
        continue;
      }
      EXPECT_EQ(render_chat(format, conversation, tokenizer->special_tokens()),
                chat.at("text").get<std::string>());
      // transformers' LlamaTokenizer rebuilds llama2_style's pipeline (see
      // FolderIdsEqualTransformers); the file's own pipeline gives ids_tokenizers.
      const json& want = std::string(name) == "llama2_style" ? chat.at("ids_tokenizers") : chat.at("ids");
      EXPECT_EQ(encode_chat(*tokenizer, format, conversation), want.get<Ids>())
          << json(chat.at("messages")).dump();
      ++checked;
    }
    EXPECT_GE(checked, 6u);
  }
}

TEST(HfTokenizerChat, AnUnrecognisedTemplateIsAnErrorNamingChatFormat) {
  const std::string unknown = "{% for m in messages %}{{ m.content }}{% endfor %}";
  EXPECT_FALSE(recognise_chat_template(unknown).has_value());
  TempDir dir;
  fs::copy_file(fixtures_dir() / "qwen2_style" / "tokenizer.json", dir.file("tokenizer.json"));
  json config = json::parse(test::read_bytes((fixtures_dir() / "qwen2_style" / "tokenizer_config.json").string()));
  config["chat_template"] = unknown;
  test::write_bytes(dir.file("tokenizer_config.json"), config.dump());
  auto tokenizer = load_tokenizer(dir.path());
  try {
    default_chat_format(*tokenizer);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--chat-format"), std::string::npos) << e.what();
  }
  // A model folder with such a tokenizer: scoring needs the format named.
  TempDir model;
  test::make_tiny_model_folder(model.path(), true);
  json spm_config = json::parse(test::read_bytes(model.file("tokenizer_config.json")));
  spm_config["chat_template"] = unknown;
  test::write_bytes(model.file("tokenizer_config.json"), spm_config.dump());
  try {
    Scorer::from_folder(model.path(), ScoreOptions{});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--chat-format"), std::string::npos) << e.what();
  }
  ScoreOptions named;
  named.chat_format = ChatFormat::kPlain;
  EXPECT_NO_THROW(Scorer::from_folder(model.path(), named));
}

// ---- live: real files from ../shared/data ----------------------------------------

struct LiveReference {
  json data;
  std::vector<std::string> texts;
};

// Runs tests/hf_tokenizer_reference.py on `tokenizer_json` and `texts`.
LiveReference run_reference(const std::string& python, const std::string& tokenizer_json,
                            const std::string& texts, const TempDir& dir) {
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/hf_tokenizer_reference.py";
  const std::string out = dir.file("reference.json");
  const std::string cmd = python + " '" + script + "' '" + tokenizer_json + "' '" + texts + "' '" +
                          out + "' > '" + dir.file("log.txt") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  if (status != 0) throw Error("hf_tokenizer_reference.py failed: " + test::read_bytes(dir.file("log.txt")));
  LiveReference ref;
  ref.data = json::parse(test::read_bytes(out));
  ref.texts = ref.data.at("texts").get<std::vector<std::string>>();
  return ref;
}

std::size_t count_mismatches(const Tokenizer& tokenizer, const LiveReference& ref, bool check_decode) {
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < ref.texts.size(); ++i) {
    const Ids ids = tokenizer.encode(ref.texts[i], plain());
    bool ok = ids == ref.data.at("ids")[i].get<Ids>() &&
              tokenizer.encode(ref.texts[i]) == ref.data.at("ids_special")[i].get<Ids>();
    if (ok && check_decode) ok = tokenizer.decode(ids) == ref.data.at("decoded")[i].get<std::string>();
    if (!ok && ++wrong <= 3) ADD_FAILURE() << "text " << i << ": " << shown(ref.texts[i]);
  }
  return wrong;
}

std::string hh_data() {
  const std::string shared = test::shared_dir();
  return shared.empty() ? "" : shared + "/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
}

TEST(HfTokenizerLive, Gpt2EqualsTokenizersOnHHRlhfAndHardStrings) {
  const std::string shared = test::shared_dir();
  const std::string file = shared + "/data/gpt2-tokenizer.json";
  if (shared.empty() || !fs::exists(file) || !fs::exists(hh_data())) {
    GTEST_SKIP() << "../shared/data (gpt2-tokenizer.json, hh-rlhf) is not available";
  }
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  auto tokenizer = load_tokenizer(file);
  TempDir dir;
  const LiveReference hh = run_reference(python, file, hh_data(), dir);
  ASSERT_EQ(hh.texts.size(), 3600u);
  EXPECT_EQ(count_mismatches(*tokenizer, hh, true), 0u);
  TempDir dir2;
  const std::string hard = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/hard_strings.json";
  const LiveReference strings = run_reference(python, file, hard, dir2);
  EXPECT_EQ(count_mismatches(*tokenizer, strings, true), 0u);
  // decode(encode(x)) == x wherever the reference round-trips.
  std::size_t round_trips = 0;
  for (std::size_t i = 0; i < strings.texts.size(); ++i) {
    if (strings.data.at("decoded")[i] != strings.texts[i]) continue;
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(strings.texts[i], plain())), strings.texts[i]);
    ++round_trips;
  }
  std::cout << "[ live ] GPT-2 tokenizer.json, tokenizers "
            << hh.data.at("versions").at("tokenizers").get<std::string>() << ": " << hh.texts.size()
            << " hh-rlhf texts and " << strings.texts.size() << " hard strings (" << round_trips
            << " round trips) equal\n";
}

TEST(HfTokenizerLive, Llama2ConvertedToTokenizerJsonEqualsTokenizers) {
  const std::string shared = test::shared_dir();
  const std::string model = shared + "/data/llama2-tokenizer.model";
  if (shared.empty() || !fs::exists(model) || !fs::exists(hh_data())) {
    GTEST_SKIP() << "../shared/data (llama2-tokenizer.model, hh-rlhf) is not available";
  }
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  TempDir dir;
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/hf_tokenizer_reference.py";
  const std::string folder = dir.file("llama2");
  const std::string cmd = python + " '" + script + "' --convert-spm '" + model + "' '" + folder +
                          "' > '" + dir.file("convert.txt") + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(dir.file("convert.txt"));
  const std::string file = folder + "/tokenizer.json";
  auto tokenizer = load_tokenizer(file);
  TempDir dir2;
  const LiveReference hh = run_reference(python, file, hh_data(), dir2);
  EXPECT_EQ(count_mismatches(*tokenizer, hh, true), 0u);
  // The same ids as the sentencepiece backend on the original model, where
  // the converted file agrees with sentencepiece (the helper checked all).
  auto spm = load_tokenizer(model);
  std::size_t same = 0;
  for (std::size_t i = 0; i < hh.texts.size(); i += 10) {
    same += spm->encode(hh.texts[i], plain()) == tokenizer->encode(hh.texts[i], plain());
  }
  EXPECT_EQ(same, (hh.texts.size() + 9) / 10);
  std::cout << "[ live ] Llama-2 as tokenizer.json: " << hh.texts.size()
            << " hh-rlhf texts equal tokenizers; every 10th equals sentencepiece\n";
}

// ---- the backend choice ------------------------------------------------------------

TEST(HfTokenizerFolder, TokenizerJsonIsPreferredAndEitherBackendCanBeChosen) {
  TempDir dir;
  const fs::path src = fixtures_dir() / "llama3_style";
  test::train_tiny_tokenizer(dir.path());  // tokenizer.model (and its JSON files)
  ASSERT_TRUE(fs::exists(dir.file("tokenizer.model")));
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    fs::copy_file(src / file, dir.file(file), fs::copy_options::overwrite_existing);
  }
  fs::remove(dir.file("special_tokens_map.json"));
  const std::string text = "Hello world, <|eot_id|> again";
  auto json_tokenizer = load_tokenizer((src / "tokenizer.json").string());
  auto chosen = load_tokenizer(dir.path());
  EXPECT_EQ(chosen->encode(text), json_tokenizer->encode(text));
  auto forced = load_tokenizer(dir.path(), TokenizerBackend::kTokenizerJson);
  EXPECT_EQ(forced->encode(text), json_tokenizer->encode(text));
  // Forced to sentencepiece: the model's pieces, with the added tokens that
  // tokenizer_config.json declares on top.
  auto spm = load_tokenizer(dir.path(), TokenizerBackend::kSentencePiece);
  auto spm_alone = load_tokenizer(dir.file("tokenizer.model"));
  EXPECT_EQ(spm->encode("Hello world", plain()), spm_alone->encode("Hello world", plain()));
  EXPECT_NE(spm->encode("Hello world", plain()), json_tokenizer->encode("Hello world", plain()));
  EXPECT_EQ(spm->token_to_id("<|eot_id|>"), json_tokenizer->token_to_id("<|eot_id|>"));
  EXPECT_TRUE(has_tokenizer(dir.path()));

  TempDir only_json;
  fs::copy_file(src / "tokenizer.json", only_json.file("tokenizer.json"));
  EXPECT_TRUE(has_tokenizer(only_json.path()));
  try {
    load_tokenizer(only_json.path(), TokenizerBackend::kSentencePiece);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sentencepiece backend was asked for"), std::string::npos) << e.what();
  }
  TempDir empty;
  EXPECT_FALSE(has_tokenizer(empty.path()));
  try {
    load_tokenizer(empty.path());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("neither tokenizer.json nor a sentencepiece model"),
              std::string::npos)
        << e.what();
  }
}

TEST(HfTokenizerFolder, SpecialTokensComeFromTheFolder) {
  auto qwen = load_tokenizer((fixtures_dir() / "qwen2_style").string());
  EXPECT_FALSE(qwen->special_tokens().bos.present());
  EXPECT_EQ(qwen->special_tokens().eos.text, "<|im_end|>");
  EXPECT_EQ(qwen->special_tokens().pad.text, "<|endoftext|>");
  EXPECT_FALSE(qwen->default_add_bos());
  auto llama3 = load_tokenizer((fixtures_dir() / "llama3_style").string());
  EXPECT_EQ(llama3->special_tokens().bos.text, "<|begin_of_text|>");
  EXPECT_TRUE(llama3->default_add_bos());
  const Ids ids = llama3->encode("hi");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), llama3->special_tokens().bos.id);
  EXPECT_EQ(llama3->id_to_token(ids.front()), "<|begin_of_text|>");
  EXPECT_EQ(llama3->token_to_id("<|eot_id|>"), llama3->encode("<|eot_id|>", plain()).at(0));
  // Special tokens are dropped by decode(skip_special) and kept otherwise.
  EXPECT_EQ(llama3->decode(llama3->encode("hi<|eot_id|>"), true), "hi");
  EXPECT_EQ(llama3->decode(llama3->encode("hi<|eot_id|>", plain())), "hi<|eot_id|>");
  // parse_special off: the marker is ordinary text.
  EncodeOptions literal = plain();
  literal.parse_special = false;
  EXPECT_GT(llama3->encode("<|eot_id|>", literal).size(), 1u);
}

TEST(HfTokenizerThreads, ConcurrentEncodesGiveTheSameIds) {
  auto tokenizer = load_tokenizer((fixtures_dir() / "qwen2_style").string());
  const json e = expected("qwen2_style");
  std::vector<std::string> texts;
  std::vector<Ids> want;
  for (const auto& c : e.at("cases")) {
    texts.push_back(c.at("text"));
    want.push_back(c.at("ids").get<Ids>());
  }
  std::vector<std::size_t> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (std::size_t i = 0; i < texts.size(); ++i) {
          std::size_t k = (i * 7 + static_cast<std::size_t>(t) * 13 + round) % texts.size();
          wrong[t] += tokenizer->encode(texts[k]) != want[k];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(wrong[t], 0u) << "thread " << t;
}

// ---- bad files and inputs ----------------------------------------------------------

// A minimal byte-level BPE tokenizer.json with `patch` merged over it.
std::string write_tokenizer_json(const TempDir& dir, const json& patch) {
  json root = {
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"\u0120", 3}}},
        {"merges", json::array({"a b"})}}}};
  root.merge_patch(patch);
  const std::string path = dir.file("tokenizer.json");
  test::write_bytes(path, root.dump());
  return path;
}

std::string load_error(const std::string& path) {
  try {
    load_tokenizer(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfTokenizerErrors, TheMinimalFileWorks) {
  TempDir dir;
  auto tokenizer = load_tokenizer(write_tokenizer_json(dir, json::object()));
  EXPECT_EQ(tokenizer->encode("ab ab", plain()), (Ids{2, 3, 2}));
  EXPECT_EQ(tokenizer->decode({2, 3, 2}), "ab ab");
}

TEST(HfTokenizerErrors, UnimplementedComponentsAreNamed) {
  const std::pair<json, std::string> cases[] = {
      {{{"pre_tokenizer", {{"type", "UnicodeScripts"}}}}, "pre_tokenizer: the pre-tokenizer type 'UnicodeScripts'"},
      {{{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Precompiled"}, {"precompiled_charsmap", "x"}}}}}}},
       "normalizer.normalizers[1]: the normalizer type 'Precompiled'"},
      {{{"model", {{"type", "Unigram"}, {"vocab", json::array()}}}}, "model: the model type 'Unigram'"},
      {{{"decoder", {{"type", "CTC"}}}}, "decoder: the decoder type 'CTC'"},
      {{{"post_processor", {{"type", "Frobnicate"}}}}, "post_processor: the post-processor type 'Frobnicate'"},
      {{{"model", {{"dropout", 0.1}}}}, "model.dropout: BPE dropout"},
  };
  for (const auto& [patch, message] : cases) {
    TempDir dir;
    const std::string error = load_error(write_tokenizer_json(dir, patch));
    EXPECT_NE(error.find(message), std::string::npos) << error;
    EXPECT_NE(error.find("tokenizer.json"), std::string::npos) << error;
  }
}

TEST(HfTokenizerErrors, MalformedFilesNameTheFileAndThePlace) {
  const std::pair<json, std::string> cases[] = {
      {{{"model", {{"merges", json::array({"a c"})}}}}, "model.merges[0]: the merge's right part 'c' is not in the vocab"},
      {{{"model", {{"merges", json::array({"ab"})}}}}, "model.merges[0]: expected \"left right\""},
      {{{"model", {{"vocab", {{"a", -1}}}}}}, "model.vocab['a']: expected an integer from 0"},
      {{{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}}},
       "pre_tokenizer.pattern.Regex: the regular expression (unclosed does not compile"},
      {{{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}}}},
       "pre_tokenizer.behavior: unknown split behavior 'Sideways'"},
      {{{"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "ab"}}}}, "pre_tokenizer.replacement: expected one character"},
      {{{"added_tokens", json::array({{{"id", 0}, {"content", "zz"}}})}}, "the added token 'zz' has id 0, which is 'a'"},
      {{{"post_processor", {{"type", "TemplateProcessing"}, {"single", json::array({{{"SpecialToken", {{"id", "<s>"}}}}})}, {"special_tokens", json::object()}}}},
       "post_processor.single[0]: the special token '<s>' is not in special_tokens"},
  };
  for (const auto& [patch, message] : cases) {
    TempDir dir;
    const std::string error = load_error(write_tokenizer_json(dir, patch));
    EXPECT_NE(error.find(message), std::string::npos) << error;
  }
  TempDir dir;
  test::write_bytes(dir.file("tokenizer.json"), "{\"model\": {\"type\": \"BPE\",");
  const std::string error = load_error(dir.file("tokenizer.json"));
  EXPECT_NE(error.find("tokenizer.json"), std::string::npos) << error;
  EXPECT_NE(error.find("malformed JSON"), std::string::npos) << error;
}

TEST(HfTokenizerErrors, BadTextAndIdsAreErrors) {
  TempDir dir;
  auto tokenizer = load_tokenizer(write_tokenizer_json(dir, json::object()));
  try {
    tokenizer->encode(std::string("ab\xff" "ab"), plain());
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid UTF-8 (byte 2 of 5)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenizer->decode({99}), Error);
  EXPECT_THROW(tokenizer->id_to_token(-1), Error);
  EXPECT_EQ(tokenizer->encode("", plain()), Ids{});
}

}  // namespace
}  // namespace openrm
