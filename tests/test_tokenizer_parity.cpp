// openrm's tokenizer and chat formats against transformers. The expected ids
// and texts are what transformers gave (tests/fixtures/tokenizers/fixtures.json,
// written by tests/fixtures/make_tokenizer_fixtures.py in the reference
// environment, which records its versions); the live check runs transformers
// itself on the Llama-2 tokenizer and hh-rlhf texts from ../shared/data.
// docs/tokenizers.md and docs/chat-formats.md say what is claimed and why.
#include <gtest/gtest.h>

#include <openrm/error.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/tokenizer.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Ids = std::vector<TokenId>;
using test::TempDir;

fs::path fixtures_dir() { return fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures" / "tokenizers"; }

const json& fixtures() {
  static const json root = [] {
    const std::string path = (fixtures_dir() / "fixtures.json").string();
    return json::parse(test::read_bytes(path));
  }();
  return root;
}

EncodeOptions no_special() {
  EncodeOptions options;
  options.add_bos = false;
  options.add_eos = false;
  return options;
}

// A copy of fixture folder `name` in `dir` with tokenizer_config.json's
// "legacy" set to `legacy`.
std::shared_ptr<const Tokenizer> load_with_legacy(const std::string& name, bool legacy,
                                                  const TempDir& dir) {
  const fs::path src = fixtures_dir() / name;
  fs::copy_file(src / "tokenizer.model", fs::path(dir.path()) / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  json config = json::parse(test::read_bytes((src / "tokenizer_config.json").string()));
  config["legacy"] = legacy;
  test::write_bytes(dir.file("tokenizer_config.json"), config.dump());
  return load_tokenizer(dir.path());
}

Conversation conversation_of(const json& messages) {
  Conversation c;
  for (const auto& m : messages) c.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return c;
}

// What openrm claims (docs/tokenizers.md): the ids of transformers'
// sentencepiece-backed class (SentencePieceBackend) with legacy=True on every
// text, and those of its tokenizers-backed LlamaTokenizer (what AutoTokenizer
// loads; LlamaTokenizerFast is the same class in transformers 5), legacy=True
// and legacy=False, on every text where that class's conversion of
// tokenizer.model agrees with sentencepiece: where LlamaTokenizer(legacy=True)
// and SentencePieceBackend(legacy=True) give the same ids. Where they differ,
// transformers departs from the model's own sentencepiece (see
// docs/tokenizers.md) and openrm follows sentencepiece.
struct Rows {
  std::map<std::string, const json*> by_variant;  // "tokenizers/true", "auto/false", ...
  const json& at(const std::string& key) const { return *by_variant.at(key); }
};

std::string key(const std::string& variant, bool legacy) {
  return variant + (legacy ? "/true" : "/false");
}

TEST(TokenizerParity, FixturesRecordTheirVersions) {
  const json& v = fixtures().at("versions");
  EXPECT_FALSE(v.at("transformers").get<std::string>().empty());
  std::cout << "[ fixtures ] transformers " << v.at("transformers").get<std::string>()
            << ", tokenizers " << v.at("tokenizers").get<std::string>() << ", sentencepiece "
            << v.at("sentencepiece").get<std::string>() << "\n";
}

TEST(TokenizerParity, TextIdsEqualTransformers) {
  const json& root = fixtures();
  std::map<std::string, Rows> folders;
  for (const auto& row : root.at("encodings")) {
    folders[row.at("folder")].by_variant[key(row.at("variant"), row.at("legacy"))] = &row;
  }
  std::size_t compared = 0;
  std::map<std::string, std::size_t> skipped, unclaimed_mismatches;
  for (const auto& [folder, rows] : folders) {
    const json& texts = root.at("texts").at(folder);
    const json& converted = rows.at(key("tokenizers", true)).at("ids_no_special");
    const json& spm_backed = rows.at(key("sentencepiece", true)).at("ids_no_special");
    for (const auto& [variant_key, row_ptr] : rows.by_variant) {
      const json& row = *row_ptr;
      const std::string variant = row.at("variant");
      const bool legacy = row.at("legacy");
      SCOPED_TRACE(folder + " " + variant_key);
      TempDir dir;
      auto tokenizer = load_with_legacy(folder, legacy, dir);
      for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::string text = texts[i];
        const Ids want = row.at("ids_no_special")[i].get<Ids>();
        const Ids got = tokenizer->encode(text, no_special());
        if (variant == "sentencepiece" && !legacy) {
          // Not claimed: transformers 5 drops the dummy prefix at the start too.
          if (got != want) ++unclaimed_mismatches[variant_key];
          continue;
        }
        if (variant != "sentencepiece" && converted[i] != spm_backed[i]) {
          ++skipped[variant_key];
          continue;
        }
        EXPECT_EQ(got, want) << "text \"" << text << "\"";
        if (row.contains("ids")) {
          EXPECT_EQ(tokenizer->encode(text), row.at("ids")[i].get<Ids>())
              << "text \"" << text << "\" with special tokens";
        }
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 300u);
  std::cout << "[ encodings ] " << compared << " (text, variant) pairs equal exactly";
  for (const auto& [variant, n] : skipped) {
    std::cout << "; " << variant << ": " << n << " not compared (conversion differs from sentencepiece)";
  }
  for (const auto& [variant, n] : unclaimed_mismatches) std::cout << "; " << variant << ": " << n << " differ";
  std::cout << "\n";
}

TEST(TokenizerParity, ChatTemplatesAreThePublishedOnes) {
  const json templates = json::parse(test::read_bytes(
      (fixtures_dir().parent_path() / "chat_templates_published.json").string()));
  EXPECT_EQ(templates.size(), chat_format_names().size() - 3);  // all but plain, hh, pair
  for (const auto& name : chat_format_names()) {
    SCOPED_TRACE(name);
    // No template: tokenizer(prompt, response) (tests/test_deberta_pair.cpp).
    if (name == "pair") continue;
    const ChatFormat format = chat_format_from_name(name);
    if (templates.contains(name)) {
      EXPECT_EQ(chat_template_for(format), templates.at(name).get<std::string>());
    }
    // The template transformers rendered the fixtures with.
    auto tokenizer = load_tokenizer((fixtures_dir() / name).string());
    EXPECT_EQ(tokenizer->chat_template(), chat_template_for(format));
    // The folder's template is recognised as its family.
    EXPECT_EQ(chat_format_name(default_chat_format(*tokenizer)), name);
  }
}

TEST(TokenizerParity, ChatTextAndIdsEqualApplyChatTemplate) {
  std::size_t rendered = 0, rejected = 0, not_compared = 0;
  std::set<std::string> formats;
  for (const auto& row : fixtures().at("chats")) {
    const std::string name = row.at("format");
    const ChatFormat format = chat_format_from_name(name);
    const Conversation c = conversation_of(row.at("messages"));
    SCOPED_TRACE(name + ": " + row.at("messages").dump());
    auto tokenizer = load_tokenizer((fixtures_dir() / row.at("folder").get<std::string>()).string());
    formats.insert(name);
    if (row.contains("error")) {
      bool threw = false;
      try {
        render_chat(format, c, tokenizer->special_tokens());
      } catch (const Error&) {
        threw = true;
      }
      EXPECT_TRUE(threw) << "transformers: " << row.at("error").get<std::string>();
      ++rejected;
      continue;
    }
    const std::string text = row.at("text");
    EXPECT_EQ(render_chat(format, c, tokenizer->special_tokens()), text);
    const Ids ids = encode_chat(*tokenizer, format, c);
    if (format == ChatFormat::kPlain || format == ChatFormat::kHH) {
      // No template of the family's own: tokenizer(text), BOS from the tokenizer;
      // always the sentencepiece-backed class's ids, and the tokenizers-backed
      // one's where its conversion agrees with sentencepiece.
      // (SentencePieceBackend adds no BOS in transformers 5.23; LlamaTokenizer
      // adds it as add_bos_token says.)
      Ids spm_ids = row.at("text_ids_sentencepiece").get<Ids>();
      const Ids with_special = row.at("text_ids_with_special").get<Ids>();
      ASSERT_TRUE(tokenizer->default_add_bos());
      ASSERT_FALSE(with_special.empty());
      EXPECT_EQ(with_special.front(), tokenizer->special_tokens().bos.id);
      spm_ids.insert(spm_ids.begin(), tokenizer->special_tokens().bos.id);
      EXPECT_EQ(ids, spm_ids);
      if (row.at("conversion_agrees").get<bool>()) {
        EXPECT_EQ(ids, row.at("text_ids_with_special").get<Ids>());
      } else {
        ++not_compared;
      }
    } else {
      // apply_chat_template(tokenize=True): the template's text, no added specials.
      EXPECT_EQ(ids, row.at("ids").get<Ids>());
    }
    EXPECT_EQ(chat_format_writes_bos(format), row.at("bos_in_text").get<bool>());
    ++rendered;
  }
  EXPECT_EQ(formats.size(), chat_format_names().size() - 1);  // all but pair (test_deberta_pair.cpp)
  std::cout << "[ chats ] " << rendered << " conversations rendered, " << rejected
            << " rejected as transformers rejects them; " << not_compared
            << " plain/hh compared with the sentencepiece-backed class only (the"
               " tokenizers-backed conversion differs from sentencepiece there)\n";
}

// ---- live: the Llama-2 tokenizer on hh-rlhf texts --------------------------------

TEST(TokenizerParity, LiveLlama2OnHHRlhfEqualsTransformers) {
  const std::string shared = test::shared_dir();
  const std::string model = shared + "/data/llama2-tokenizer.model";
  const std::string data = shared + "/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
  if (shared.empty() || !fs::exists(model) || !fs::exists(data)) {
    GTEST_SKIP() << "../shared/data (llama2-tokenizer.model, hh-rlhf) is not available";
  }
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  TempDir dir;
  fs::copy_file(model, dir.file("tokenizer.model"));
  test::write_bytes(dir.file("tokenizer_config.json"),
                    R"({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
                        "unk_token": "<unk>", "add_bos_token": true})");
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/tokenizer_reference.py";
  const std::string out = dir.file("reference.json");
  const std::string cmd = python + " '" + script + "' '" + dir.path() + "' '" + data + "' '" + out +
                          "' 12 > '" + dir.file("log.txt") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_EQ(status, 0) << test::read_bytes(dir.file("log.txt"));
  const json ref = json::parse(test::read_bytes(out));
  const auto texts = ref.at("texts").get<std::vector<std::string>>();
  ASSERT_EQ(texts.size(), 300u);
  std::cout << "[ live ] transformers " << ref.at("versions").at("transformers").get<std::string>()
            << ", " << texts.size() << " hh-rlhf texts";
  std::map<std::string, const json*> by_variant;
  for (const auto& variant : ref.at("variants")) by_variant[key(variant.at("variant"), variant.at("legacy"))] = &variant;
  const json& converted = by_variant.at(key("tokenizers", true))->at("ids");
  const json& spm_backed = by_variant.at(key("sentencepiece", true))->at("ids");
  for (const auto& [variant_key, variant_ptr] : by_variant) {
    const json& variant = *variant_ptr;
    const std::string name = variant.at("variant");
    const bool legacy = variant.at("legacy");
    SCOPED_TRACE(variant_key);
    TempDir folder;
    fs::copy_file(model, folder.file("tokenizer.model"));
    test::write_bytes(folder.file("tokenizer_config.json"),
                      std::string("{\"add_bos_token\": true, \"legacy\": ") + (legacy ? "true" : "false") + "}");
    auto tokenizer = load_tokenizer(folder.path());
    std::size_t mismatched = 0, skipped = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const Ids want = variant.at("ids")[i].get<Ids>();
      const Ids got = tokenizer->encode(texts[i], no_special());
      const bool claim_all = name == "sentencepiece" && legacy;
      const bool claim = claim_all || (name == "tokenizers" && converted[i] == spm_backed[i]);
      if (!claim) {
        ++skipped;
        if (got != want) ++mismatched;
        continue;
      }
      if (got != want) {
        ++mismatched;
        ADD_FAILURE() << "ids differ for text starting \"" << texts[i].substr(0, 60) << "\"";
      }
    }
    std::cout << "; " << variant_key << ": " << texts.size() - skipped << " compared, " << skipped
              << " not claimed, " << mismatched << " differ";
  }
  std::cout << "\n";
}

}  // namespace
}  // namespace openrm
