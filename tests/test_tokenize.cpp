// Truncation and pair tokenization, checked with a byte-level tokenizer whose
// sequence lengths are known in closed form (1 BOS + one token per byte).
#include <gtest/gtest.h>

#include <openrm/data/tokenize.h>
#include <openrm/error.h>

#include <nlohmann/json.hpp>
#include <openrm/io/file.h>
#include <openrm/tokenizer/tokenizer.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "byte_tokenizer.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using openrm::test::ByteTokenizer;

PreferencePair make_pair(Conversation prompt, std::string chosen, std::string rejected) {
  PreferencePair p;
  p.prompt = std::move(prompt);
  p.chosen = {{"assistant", std::move(chosen)}};
  p.rejected = {{"assistant", std::move(rejected)}};
  return p;
}

std::string text_of(const std::vector<TokenId>& ids) { return ByteTokenizer().decode(ids); }

TEST(Tokenize, FittingPairsAreUntouched) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.max_length = 100;
  auto out = tokenize_pairs({make_pair({{"user", "Hi. "}}, "Hello!", "Go away.")}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  EXPECT_EQ(text_of(out.pairs[0].chosen), "<s>Hi. Hello!");
  EXPECT_EQ(text_of(out.pairs[0].rejected), "<s>Hi. Go away.");
  EXPECT_FALSE(out.pairs[0].truncated);
  EXPECT_EQ(out.stats.input, 1);
  EXPECT_EQ(out.stats.kept, 1);
  EXPECT_EQ(out.stats.truncated, 0);
  EXPECT_EQ(out.stats.dropped, 0);
  EXPECT_EQ(out.stats.longest_before, 1 + 4 + 8);
}

TEST(Tokenize, RenderedTextIgnoresTheChatFormatAndMessageListsUseIt) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.format = ChatFormat::kChatML;
  PreferencePair text = make_pair({{"user", "Q: "}}, "yes", "");
  text.text_format = ChatFormat::kPlain;  // read from three strings
  PreferencePair listed = make_pair({{"user", "Q"}}, "yes", "no");
  auto out = tokenize_pairs({text, listed}, tok, o);
  ASSERT_EQ(out.pairs.size(), 2u);
  // The text as written, with the tokenizer's own BOS, an empty response too.
  EXPECT_EQ(text_of(out.pairs[0].chosen), "<s>Q: yes");
  EXPECT_EQ(text_of(out.pairs[0].rejected), "<s>Q: ");
  EXPECT_EQ(text_of(out.pairs[1].chosen), "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nyes<|im_end|>\n");
  // A record the same way.
  const Conversation record = {{"user", "Q: "}, {"assistant", "maybe"}};
  EXPECT_EQ(text_of(*tokenize_conversation(record, tok, o, nullptr, ChatFormat::kPlain)), "<s>Q: maybe");
  // Text that renders to no tokens at all is an error, not an empty sequence.
  ByteTokenizer no_bos(/*add_bos=*/false);
  PreferencePair empty = make_pair({}, "", "x");
  empty.text_format = ChatFormat::kPlain;
  EXPECT_NE(test::error_of([&] { tokenize_pairs({empty}, no_bos, o); }).find("renders to no tokens"),
            std::string::npos);
}

TEST(Tokenize, NoLimitMeansNoTruncation) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.max_length = 0;
  auto out = tokenize_pairs({make_pair({{"user", std::string(5000, 'x')}}, "a", "b")}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  EXPECT_EQ(out.pairs[0].chosen.size(), 5002u);
}

TEST(Tokenize, DropsOldestPromptTurnsFirstAndKeepsTheSystemMessage) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.format = ChatFormat::kHH;
  // HH: "\n\nHuman: " is 9 bytes, "\n\nAssistant: " 13; BOS adds 1.
  Conversation prompt = {{"user", std::string(40, 'a')},
                         {"assistant", std::string(40, 'b')},
                         {"user", "last question"}};
  // Full: 1 + (9+40) + (13+40) + (9+13) + (13+5) = 143; without the first two
  // turns: 1 + 22 + 18 = 41.
  o.max_length = 60;
  auto out = tokenize_pairs({make_pair(prompt, "short", "tiny!")}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  EXPECT_EQ(text_of(out.pairs[0].chosen), "<s>\n\nHuman: last question\n\nAssistant: short");
  EXPECT_EQ(text_of(out.pairs[0].rejected), "<s>\n\nHuman: last question\n\nAssistant: tiny!");
  EXPECT_TRUE(out.pairs[0].truncated);
  EXPECT_EQ(out.stats.truncated, 1);
  EXPECT_EQ(out.stats.prompt_turns_dropped, 2);
  EXPECT_EQ(out.stats.responses_cut, 0);
  EXPECT_EQ(out.stats.longest_before, 143);

  // A leading system message stays; the plain format keeps the lengths simple.
  o.format = ChatFormat::kPlain;
  o.max_length = 1 + 3 + 4 + 5;  // BOS + "SYS" + "last" + response
  Conversation with_system = {{"system", "SYS"}, {"user", "old1"}, {"assistant", "old2"}, {"user", "last"}};
  out = tokenize_pairs({make_pair(with_system, "12345", "abcde")}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  EXPECT_EQ(text_of(out.pairs[0].chosen), "<s>SYSlast12345");
  EXPECT_EQ(out.stats.prompt_turns_dropped, 2);
}

TEST(Tokenize, CutsTheResponseEndAndKeepsTheClosingTokens) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.format = ChatFormat::kChatML;
  o.max_length = 100;
  // "<|im_start|>user\nQ<|im_end|>\n" is 12+5+1+10+1 = 29 bytes; the assistant
  // turn is 12+10+10+1 = 33 bytes of markup plus its content; ChatML adds no
  // BOS. So 100 - 29 - 33 = 38 bytes of the response remain.
  auto out = tokenize_pairs({make_pair({{"user", "Q"}}, std::string(100, 'c'), "ok")}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  const std::string chosen = text_of(out.pairs[0].chosen);
  EXPECT_EQ(out.pairs[0].chosen.size(), 100u);
  EXPECT_EQ(chosen, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n" + std::string(38, 'c') +
                        "<|im_end|>\n");
  // The rejected side fitted and is unchanged.
  EXPECT_EQ(text_of(out.pairs[0].rejected),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n");
  EXPECT_EQ(out.stats.responses_cut, 1);
  EXPECT_EQ(out.stats.prompts_cut, 0);
  EXPECT_EQ(out.stats.truncated, 1);
}

TEST(Tokenize, CutsTheStartOfAnOverlongPromptToLeaveRoomForTheResponse) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.max_length = 101;  // BOS + 100
  std::string prompt = "BEGIN" + std::string(300, 'p') + "END";
  auto out = tokenize_pairs({make_pair({{"user", prompt}}, std::string(80, 'c'), std::string(20, 'r'))}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  const std::string chosen = text_of(out.pairs[0].chosen);
  const std::string rejected = text_of(out.pairs[0].rejected);
  EXPECT_EQ(out.pairs[0].chosen.size(), 101u);
  EXPECT_LE(out.pairs[0].rejected.size(), 101u);
  // Half the budget (50 tokens) is kept for the longer response; the prompt
  // keeps its end, and both sides share the same cut prompt.
  EXPECT_EQ(chosen, "<s>" + std::string(47, 'p') + "END" + std::string(50, 'c'));
  EXPECT_EQ(rejected, "<s>" + std::string(47, 'p') + "END" + std::string(20, 'r'));
  EXPECT_EQ(out.stats.prompts_cut, 1);
  EXPECT_EQ(out.stats.responses_cut, 1);
}

TEST(Tokenize, CutsAtUtf8CharacterBoundaries) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.max_length = 1 + 1 + 7;  // BOS, "Q", 7 bytes of response
  std::string euro3 = "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC";  // three 3-byte characters
  auto out = tokenize_pairs({make_pair({{"user", "Q"}}, euro3, "ok")}, tok, o);
  ASSERT_EQ(out.pairs.size(), 1u);
  EXPECT_EQ(text_of(out.pairs[0].chosen), "<s>Q\xE2\x82\xAC\xE2\x82\xAC");
}

TEST(Tokenize, DropPolicyDropsAndCounts) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.max_length = 20;
  o.policy = TruncationPolicy::kDrop;
  std::vector<PreferencePair> pairs = {make_pair({{"user", "Q"}}, "fits", "fits too"),
                                       make_pair({{"user", "Q"}}, std::string(30, 'x'), "ok"),
                                       make_pair({{"user", "Q"}}, "ok", "also ok")};
  pairs[2].margin = 1.5;
  pairs[2].has_margin = true;
  auto out = tokenize_pairs(pairs, tok, o);
  ASSERT_EQ(out.pairs.size(), 2u);
  EXPECT_EQ(out.pairs[0].source_index, 0);
  EXPECT_EQ(out.pairs[1].source_index, 2);
  EXPECT_TRUE(out.pairs[1].has_margin);
  EXPECT_EQ(out.pairs[1].margin, 1.5);
  EXPECT_EQ(out.stats.dropped, 1);
  EXPECT_EQ(out.stats.kept, 2);
  EXPECT_EQ(out.stats.truncated, 0);
}

TEST(Tokenize, PairsThatCannotFitAreDroppedAndCounted) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.format = ChatFormat::kChatML;
  o.max_length = 60;  // less than the 62 bytes of ChatML markup for a user and an assistant turn
  auto out = tokenize_pairs({make_pair({{"user", "Q"}}, "a", "b")}, tok, o);
  EXPECT_TRUE(out.pairs.empty());
  EXPECT_EQ(out.stats.dropped, 1);
}

TEST(Tokenize, ResultDoesNotDependOnThreadCount) {
  ByteTokenizer tok;
  std::vector<PreferencePair> pairs;
  for (int i = 0; i < 500; ++i) {
    pairs.push_back(make_pair({{"user", std::string(static_cast<std::size_t>(i % 37), 'q')}},
                              std::string(static_cast<std::size_t>(i % 91 + 1), 'c'),
                              std::string(static_cast<std::size_t>(i % 53 + 1), 'r')));
  }
  TokenizeOptions o;
  o.max_length = 64;
  o.threads = 1;
  auto one = tokenize_pairs(pairs, tok, o);
  o.threads = 4;
  auto four = tokenize_pairs(pairs, tok, o);
  ASSERT_EQ(one.pairs.size(), four.pairs.size());
  for (std::size_t i = 0; i < one.pairs.size(); ++i) {
    EXPECT_EQ(one.pairs[i].chosen, four.pairs[i].chosen);
    EXPECT_EQ(one.pairs[i].rejected, four.pairs[i].rejected);
    EXPECT_LE(one.pairs[i].chosen.size(), 64u);
    EXPECT_LE(one.pairs[i].rejected.size(), 64u);
  }
  EXPECT_EQ(one.stats.truncated, four.stats.truncated);
  EXPECT_EQ(one.stats.responses_cut, four.stats.responses_cut);
  EXPECT_GT(one.stats.truncated, 0);
}

TEST(Tokenize, RenderErrorsNameThePairAndLine) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.format = ChatFormat::kMistral;
  PreferencePair p = make_pair({{"system", "be nice"}, {"user", "Q"}}, "a", "b");
  p.line = 17;
  std::string err = test::error_of([&] { tokenize_pairs({p}, tok, o); });
  EXPECT_TRUE(test::contains(err, "pair 0 (line 17)")) << err;
  EXPECT_TRUE(test::contains(err, "system")) << err;
}

TEST(Tokenize, SingleConversation) {
  ByteTokenizer tok;
  TokenizeOptions o;
  o.max_length = 10;
  TruncationStats stats;
  auto ids = tokenize_conversation({{"user", "Q"}, {"assistant", "a long answer"}}, tok, o, &stats);
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(text_of(*ids), "<s>Qa long a");
  EXPECT_EQ(stats.input, 1);
  EXPECT_EQ(stats.truncated, 1);
  EXPECT_EQ(stats.responses_cut, 1);
  o.policy = TruncationPolicy::kDrop;
  EXPECT_FALSE(tokenize_conversation({{"user", "Q"}, {"assistant", "a long answer"}}, tok, o, &stats));
  EXPECT_EQ(stats.dropped, 1);
  EXPECT_EQ(stats.input, 2);
}

TEST(Tokenize, PolicyNames) {
  EXPECT_EQ(truncation_policy_from_name("drop"), TruncationPolicy::kDrop);
  EXPECT_EQ(truncation_policy_name(truncation_policy_from_name("truncate")), "truncate");
  std::string err = test::error_of([] { truncation_policy_from_name("cut"); });
  EXPECT_TRUE(test::contains(err, "truncate, drop")) << err;
}

}  // namespace
}  // namespace openrm

// ---- end to end on real data, against Python sentencepiece ------------------------

namespace openrm {
namespace {

using Ids = std::vector<TokenId>;

// Runs tests/spm_reference.py (Debian's python3, which has sentencepiece) and
// returns the "ids" of each output line; std::nullopt when python or the
// module is missing.
std::optional<std::vector<Ids>> python_ids(const std::string& mode, const std::string& model,
                                           const std::string& input, const test::TempDir& tmp) {
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/spm_reference.py";
  const std::string python = path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const std::string out = tmp.file("reference.jsonl");
  const int status = std::system((python + " '" + script + "' " + mode + " '" + model + "' '" + input +
                                  "' '" + out + "'").c_str());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) == 77 || WEXITSTATUS(status) == 127) {
    return std::nullopt;
  }
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::vector<Ids> rows;
  std::istringstream in(test::read_bytes(out));
  for (std::string line; std::getline(in, line);) {
    rows.push_back(nlohmann::json::parse(line).at("ids").get<Ids>());
  }
  return rows;
}

std::string shared_file(const std::string& name) {
  const std::string shared = test::shared_dir();
  const std::string path = shared + "/data/" + name;
  return !shared.empty() && path_exists(path) ? path : std::string();
}

Ids with_bos(Ids ids) {
  ids.insert(ids.begin(), 1);
  return ids;
}

// hh-rlhf read as pairs, rendered back in the HH format and tokenized with the
// Llama-2 tokenizer, gives exactly sentencepiece's ids of the original
// transcripts, plus one BOS.
TEST(TokenizeRealData, HHPairsMatchPythonSentencepieceOnTheOriginalTranscripts) {
  const std::string model = shared_file("llama2-tokenizer.model");
  const std::string data = shared_file("hh-rlhf-harmless-base-test-1800.jsonl.gz");
  if (model.empty() || data.empty()) GTEST_SKIP() << "../shared/data is not available";
  test::TempDir tmp;
  auto reference = python_ids("hh", model, data, tmp);
  if (!reference) GTEST_SKIP() << "python3 with sentencepiece is not available";
  ASSERT_EQ(reference->size(), 3600u);  // chosen, rejected of each of the 1800 lines

  // Every record, the 4 whose chosen response is empty included.
  auto pairs = read_preferences(data).pairs;
  auto tokenizer = load_tokenizer(model);
  TokenizeOptions options;
  // The transcripts are text: they are tokenized as written whatever chat
  // format is asked for (TRL and RewardBench score them as given).
  options.format = ChatFormat::kLlama2;
  options.max_length = 0;
  auto tokenized = tokenize_pairs(pairs, *tokenizer, options);
  ASSERT_EQ(tokenized.pairs.size(), 1800u);
  int mismatches = 0;
  for (const auto& p : tokenized.pairs) {
    const auto record = static_cast<std::size_t>(p.line - 1);
    mismatches += p.chosen != with_bos((*reference)[2 * record]);
    mismatches += p.rejected != with_bos((*reference)[2 * record + 1]);
  }
  EXPECT_EQ(mismatches, 0);

  // With a limit, every sequence fits and ends in the response's last token
  // (HH has no closing token), and the counts add up.
  options.max_length = 256;
  auto cut = tokenize_pairs(pairs, *tokenizer, options);
  EXPECT_EQ(cut.stats.input, 1800);
  EXPECT_EQ(cut.stats.kept + cut.stats.dropped, 1800);
  EXPECT_GT(cut.stats.truncated, 0);
  EXPECT_GT(cut.stats.longest_before, 256);
  for (const auto& p : cut.pairs) {
    EXPECT_LE(p.chosen.size(), 256u);
    EXPECT_LE(p.rejected.size(), 256u);
    EXPECT_EQ(p.chosen.front(), 1);
  }
}

// Llama-2 and Mistral chat text with the real tokenizer: "<s>" and "</s>" in
// the rendered text become the BOS/EOS ids, exactly one BOS leads, and the
// text between them is sentencepiece's ids of that text (transformers' legacy
// behaviour: each chunk between special tokens is encoded on its own).
TEST(TokenizeRealData, ChatFormatsWithTheLlama2Tokenizer) {
  const std::string model = shared_file("llama2-tokenizer.model");
  if (model.empty()) GTEST_SKIP() << "../shared/data is not available";
  test::TempDir tmp;
  const std::vector<std::string> chunks = {"[INST] What is 2+2? [/INST] It is 4. ",
                                           "[INST] What is 2+2? [/INST]It is 4."};
  test::write_bytes(tmp.file("chunks.json"), nlohmann::json(chunks).dump());
  auto reference = python_ids("strings", model, tmp.file("chunks.json"), tmp);
  if (!reference) GTEST_SKIP() << "python3 with sentencepiece is not available";
  auto tokenizer = load_tokenizer(model);
  const Conversation c = {{"user", "What is 2+2?"}, {"assistant", "It is 4."}};

  Ids llama2 = encode_chat(*tokenizer, ChatFormat::kLlama2, c);
  Ids expected = with_bos((*reference)[0]);
  expected.push_back(2);
  EXPECT_EQ(llama2, expected);

  Ids mistral = encode_chat(*tokenizer, ChatFormat::kMistral, c);
  expected = with_bos((*reference)[1]);
  expected.push_back(2);
  EXPECT_EQ(mistral, expected);

  for (const Ids& ids : {llama2, mistral}) {
    EXPECT_EQ(std::count(ids.begin(), ids.begin() + 2, 1), 1) << "doubled BOS";
  }
}

}  // namespace
}  // namespace openrm
