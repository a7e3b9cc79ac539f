// Chat formats: how a model family turns a conversation into text and ids.
//
// Each format writes exactly the text that the family's published
// chat_template gives for a conversation that ends with the scored assistant
// turn (apply_chat_template(..., add_generation_prompt=False)); docs/chat-formats.md
// spells each one out.
#pragma once

#include <openrm/tokenizer/tokenizer.h>

#include <optional>
#include <string>
#include <vector>

namespace openrm {

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};
using Conversation = std::vector<Message>;

enum class ChatFormat {
  kPlain,    // the contents concatenated: prompt + response (TRL's string form)
  kHH,       // Anthropic HH transcript: "\n\nHuman: ...\n\nAssistant: ..."
  kLlama2,   // "<s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>"
  kLlama3,   // "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n...<|eot_id|>"
  kLlama31,  // Llama-3.1: as kLlama3 plus the dated system block its template always writes
  kChatML,   // "<|im_start|>user\n...<|im_end|>\n", no default system message
  kQwen2,    // ChatML with Qwen2's default system message
  kQwen25,   // ChatML with Qwen2.5's default system message
  kQwen3,    // ChatML with Qwen3's <think> block on the final assistant turn
  kMistral,  // "<s>[INST] ... [/INST]...</s>"
  kGemma,    // "<bos><start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n..."
  // The prompt and the response as a text pair, tokenizer(prompt, response):
  // [CLS] prompt [SEP] response [SEP] for BERT-style tokenizers (the input
  // OpenAssistant's DeBERTa reward models take). Not a chat template: one
  // prompt message at most, and render_chat writes the two texts joined by
  // a blank line, for display only.
  kPair,
};

// "plain", "hh", "llama2", "llama3", "llama3.1", "chatml", "qwen2", "qwen2.5",
// "qwen3", "mistral", "gemma", "pair".
std::string chat_format_name(ChatFormat format);
// Throws openrm::Error listing the known names.
ChatFormat chat_format_from_name(const std::string& name);
std::vector<std::string> chat_format_names();

// Recognises a family from a tokenizer_config.json chat_template string by the
// markers its family's templates contain; std::nullopt when it is none of them.
std::optional<ChatFormat> recognise_chat_template(const std::string& chat_template);

// True when the family's template writes the BOS token itself.
bool chat_format_writes_bos(ChatFormat format);

// The exact text of `conversation` in `format`. BOS/EOS are written as the
// tokenizer's token strings (`special`), where the family's template writes
// bos_token / eos_token; a token the tokenizer lacks is written as nothing.
// Throws openrm::Error when the conversation breaks the family's rules (roles
// that do not alternate where the template requires it, a system message the
// family cannot express, an unknown role).
std::string render_chat(ChatFormat format, const Conversation& conversation,
                        const SpecialTokens& special);

// render_chat + encode, with exactly one BOS where the family expects one:
// template families are encoded without adding special tokens, since the
// template wrote them (apply_chat_template(tokenize=True) does the same);
// kPlain and kHH add BOS/EOS as tokenizer(text) would (add_bos_token).
std::vector<TokenId> encode_chat(const Tokenizer& tokenizer, ChatFormat format,
                                 const Conversation& conversation);

// The format a tokenizer's chat_template implies; without one, kPair for a
// tokenizer with [CLS] and [SEP] tokens (BERT-style, DeBERTa), else kPlain.
// Throws openrm::Error, naming --chat-format, when the tokenizer has a
// chat_template that recognise_chat_template does not recognise: openrm
// never guesses how an unknown template writes a conversation.
ChatFormat default_chat_format(const Tokenizer& tokenizer);

// The Jinja chat_template the family publishes in its tokenizer_config.json,
// exactly (docs/chat-formats.md names each source); for kPlain and kHH, which
// have none, openrm's own template that renders what render_chat writes.
// kPair has none (an error).
// Written into an exported folder, transformers' apply_chat_template renders
// it to render_chat's text. Throws openrm::Error for a value with no template.
std::string chat_template_for(ChatFormat format);

// The special tokens `format` writes that `tokenizer` cannot encode as one id
// each: a BOS or EOS the tokenizer lacks, or markers such as "<|im_start|>"
// that it would split into ordinary pieces (a format meant for another
// tokenizer family). Empty when every one fits.
std::vector<std::string> chat_format_missing_tokens(ChatFormat format, const Tokenizer& tokenizer);

// Logs one warning naming the format, the tokenizer and the missing tokens,
// when there are any; returns whether it warned.
bool warn_if_chat_format_does_not_fit(ChatFormat format, const Tokenizer& tokenizer);

}  // namespace openrm
