// Chat formats. The expected strings are what each family's published
// chat_template gives for the same messages (apply_chat_template with
// add_generation_prompt=False), written out by hand from those templates.
#include <gtest/gtest.h>

#include <openrm/tokenizer/chat_format.h>

#include "byte_tokenizer.h"
#include "test_io_util.h"

namespace openrm {
namespace {

SpecialTokens tokens(const std::string& bos, const std::string& eos) {
  SpecialTokens t;
  t.bos = {1, bos};
  t.eos = {2, eos};
  return t;
}

const Conversation kTwoTurns = {{"user", "Hi there"},
                                {"assistant", "Hello! How can I help?"},
                                {"user", "Name a colour."},
                                {"assistant", "Blue."}};

TEST(ChatFormat, SpecialTokensTheTokenizerLacksAreNamed) {
  // The byte tokenizer has BOS and EOS but no chat markers: each marker
  // would be encoded byte by byte.
  test::ByteTokenizer bytes;
  EXPECT_TRUE(chat_format_missing_tokens(ChatFormat::kPlain, bytes).empty());
  EXPECT_TRUE(chat_format_missing_tokens(ChatFormat::kHH, bytes).empty());
  EXPECT_TRUE(chat_format_missing_tokens(ChatFormat::kLlama2, bytes).empty());
  EXPECT_EQ(chat_format_missing_tokens(ChatFormat::kChatML, bytes),
            (std::vector<std::string>{"<|im_start|>", "<|im_end|>"}));
  EXPECT_EQ(chat_format_missing_tokens(ChatFormat::kLlama3, bytes),
            (std::vector<std::string>{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}));
  EXPECT_EQ(chat_format_missing_tokens(ChatFormat::kGemma, bytes),
            (std::vector<std::string>{"<start_of_turn>", "<end_of_turn>"}));
  EXPECT_TRUE(warn_if_chat_format_does_not_fit(ChatFormat::kQwen3, bytes));
  EXPECT_FALSE(warn_if_chat_format_does_not_fit(ChatFormat::kMistral, bytes));
}

TEST(ChatFormat, Names) {
  for (const auto& name : chat_format_names()) {
    EXPECT_EQ(chat_format_name(chat_format_from_name(name)), name);
  }
  const std::string err = test::error_of([] { chat_format_from_name("vicuna"); });
  EXPECT_TRUE(test::contains(err, "unknown chat format 'vicuna'"));
  EXPECT_TRUE(test::contains(err, "llama2, llama3, llama3.1, chatml"));
}

TEST(ChatFormat, Plain) {
  EXPECT_EQ(render_chat(ChatFormat::kPlain, {{"user", "Q: 2+2? "}, {"assistant", "A: 4"}}, tokens("<s>", "</s>")),
            "Q: 2+2? A: 4");
}

TEST(ChatFormat, AnthropicHH) {
  EXPECT_EQ(render_chat(ChatFormat::kHH, kTwoTurns, {}),
            "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Name a colour."
            "\n\nAssistant: Blue.");
  EXPECT_TRUE(test::contains(
      test::error_of([] { render_chat(ChatFormat::kHH, {{"system", "x"}, {"user", "y"}}, {}); }),
      "system"));
}

TEST(ChatFormat, Llama2) {
  // BOS before every [INST], EOS after every answer, contents stripped.
  EXPECT_EQ(render_chat(ChatFormat::kLlama2, kTwoTurns, tokens("<s>", "</s>")),
            "<s>[INST] Hi there [/INST] Hello! How can I help? </s>"
            "<s>[INST] Name a colour. [/INST] Blue. </s>");
  // The system message goes inside the first [INST].
  EXPECT_EQ(render_chat(ChatFormat::kLlama2,
                        {{"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello\n"}},
                        tokens("<s>", "</s>")),
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello </s>");
  const std::string err = test::error_of([] {
    render_chat(ChatFormat::kLlama2, {{"user", "a"}, {"user", "b"}}, tokens("<s>", "</s>"));
  });
  EXPECT_TRUE(test::contains(err, "alternate"));
  EXPECT_TRUE(test::contains(err, "message 1"));
}

TEST(ChatFormat, Llama3) {
  EXPECT_EQ(render_chat(ChatFormat::kLlama3, {{"system", "S"}, {"user", " Q "}, {"assistant", "A"}},
                        tokens("<|begin_of_text|>", "<|end_of_text|>")),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
}

TEST(ChatFormat, Llama31AlwaysWritesItsDatedSystemBlock) {
  const SpecialTokens t = tokens("<|begin_of_text|>", "<|eot_id|>");
  EXPECT_EQ(render_chat(ChatFormat::kLlama31, {{"user", "Q"}, {"assistant", "A"}}, t),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
  EXPECT_EQ(render_chat(ChatFormat::kLlama31, {{"system", " Be kind. "}, {"user", "Q"}, {"assistant", "A"}}, t),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe kind.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>");
}

TEST(ChatFormat, ChatMLAndQwenDefaults) {
  const Conversation c = {{"user", "Q"}, {"assistant", "A"}};
  const std::string body = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n";
  EXPECT_EQ(render_chat(ChatFormat::kChatML, c, {}), body);
  EXPECT_EQ(render_chat(ChatFormat::kQwen2, c, {}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" + body);
  EXPECT_EQ(render_chat(ChatFormat::kQwen25, c, {}),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n" + body);
  // A conversation's own system message replaces the default; contents are not stripped.
  EXPECT_EQ(render_chat(ChatFormat::kQwen2, {{"system", "S "}, {"user", " Q"}, {"assistant", "A"}}, {}),
            "<|im_start|>system\nS <|im_end|>\n<|im_start|>user\n Q<|im_end|>\n"
            "<|im_start|>assistant\nA<|im_end|>\n");
}

TEST(ChatFormat, Qwen3ThinkBlocks) {
  // The final answer always carries a think block, empty when it has none.
  EXPECT_EQ(render_chat(ChatFormat::kQwen3, {{"user", "Hi"}, {"assistant", "Hello"}}, {}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n");
  // Reasoning inside the final answer is kept and normalised; earlier answers lose theirs.
  EXPECT_EQ(render_chat(ChatFormat::kQwen3,
                        {{"user", "a"},
                         {"assistant", "<think>\nold thoughts\n</think>\n\nfirst"},
                         {"user", "b"},
                         {"assistant", "<think>\n\nnew thoughts\n\n</think>\n\n\nsecond"}},
                        {}),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nfirst<|im_end|>\n"
            "<|im_start|>user\nb<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nnew thoughts\n</think>\n\nsecond<|im_end|>\n");
}

TEST(ChatFormat, Mistral) {
  EXPECT_EQ(render_chat(ChatFormat::kMistral, kTwoTurns, tokens("<s>", "</s>")),
            "<s>[INST] Hi there [/INST]Hello! How can I help?</s>[INST] Name a colour. [/INST]Blue.</s>");
  EXPECT_TRUE(test::contains(test::error_of([] {
                               render_chat(ChatFormat::kMistral, {{"system", "S"}, {"user", "Q"}},
                                           tokens("<s>", "</s>"));
                             }),
                             "system message"));
}

TEST(ChatFormat, Gemma) {
  EXPECT_EQ(render_chat(ChatFormat::kGemma, {{"user", " Q "}, {"assistant", "A\n"}}, tokens("<bos>", "<eos>")),
            "<bos><start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n");
  EXPECT_TRUE(test::contains(test::error_of([] {
                               render_chat(ChatFormat::kGemma, {{"assistant", "A"}}, tokens("<bos>", "<eos>"));
                             }),
                             "'user' is expected"));
}

TEST(ChatFormat, UnknownRolesAreErrors) {
  for (ChatFormat f : {ChatFormat::kPlain, ChatFormat::kLlama3, ChatFormat::kChatML, ChatFormat::kQwen3}) {
    const std::string err = test::error_of([&] { render_chat(f, {{"tool", "x"}}, {}); });
    EXPECT_TRUE(test::contains(err, "role 'tool'")) << chat_format_name(f);
  }
}

TEST(ChatFormat, RecognisesTemplatesByTheirMarkers) {
  EXPECT_EQ(recognise_chat_template("{{ bos_token + '[INST] ' + '<<SYS>>\\n' }}"), ChatFormat::kLlama2);
  EXPECT_EQ(recognise_chat_template("{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
            ChatFormat::kMistral);
  EXPECT_EQ(recognise_chat_template("{{ '<|start_header_id|>' + message['role'] }}"), ChatFormat::kLlama3);
  EXPECT_EQ(recognise_chat_template("{{- \"Cutting Knowledge Date: December 2023\\n\" }}<|start_header_id|>"),
            ChatFormat::kLlama31);
  EXPECT_EQ(recognise_chat_template("{{'<|im_start|>' + message['role'] }}"), ChatFormat::kChatML);
  EXPECT_EQ(recognise_chat_template("<|im_start|>system\\nYou are a helpful assistant."), ChatFormat::kQwen2);
  EXPECT_EQ(recognise_chat_template("<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud."),
            ChatFormat::kQwen25);
  EXPECT_EQ(recognise_chat_template("<|im_start|>{{ '<think>\\n' }}"), ChatFormat::kQwen3);
  EXPECT_EQ(recognise_chat_template("{{ '<start_of_turn>' + role }}"), ChatFormat::kGemma);
  EXPECT_EQ(recognise_chat_template(""), std::nullopt);
  EXPECT_EQ(recognise_chat_template("{{ message['content'] }}"), std::nullopt);
}

TEST(ChatFormat, EncodeAddsNoSecondBos) {
  test::ByteTokenizer tok(/*add_bos=*/true);
  const Conversation c = {{"user", "Q"}, {"assistant", "A"}};
  // Template families write BOS as text; the tokenizer must not add another.
  auto ids = encode_chat(tok, ChatFormat::kLlama2, c);
  EXPECT_EQ(tok.decode(ids), "<s>[INST] Q [/INST] A </s>");
  EXPECT_NE(ids.front(), 1);  // the byte tokenizer spells the written "<s>" as bytes, not id 1
  // Plain and HH add one, as tokenizer(text) does.
  ids = encode_chat(tok, ChatFormat::kPlain, c);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_NE(ids[1], 1);
  EXPECT_EQ(tok.decode(ids), "<s>QA");
  test::ByteTokenizer no_bos(/*add_bos=*/false);
  EXPECT_EQ(no_bos.decode(encode_chat(no_bos, ChatFormat::kHH, c)), "\n\nHuman: Q\n\nAssistant: A");
}

}  // namespace
}  // namespace openrm
