// Chat formats. Each renderer writes the text its family's published
// chat_template produces (with add_generation_prompt=False); the rules each
// template enforces (alternating roles, where a system message may go) are
// enforced here too, with an error instead of a Jinja exception.
#include "openrm/tokenizer/chat_format.h"

#include <array>
#include <string_view>

#include "logging.h"
#include "openrm/error.h"

namespace openrm {
namespace {

struct FormatInfo {
  ChatFormat format;
  const char* name;
  bool writes_bos;
};

constexpr std::array<FormatInfo, 12> kFormats = {{
    {ChatFormat::kPlain, "plain", false},
    {ChatFormat::kHH, "hh", false},
    {ChatFormat::kLlama2, "llama2", true},
    {ChatFormat::kLlama3, "llama3", true},
    {ChatFormat::kLlama31, "llama3.1", true},
    {ChatFormat::kChatML, "chatml", false},
    {ChatFormat::kQwen2, "qwen2", false},
    {ChatFormat::kQwen25, "qwen2.5", false},
    {ChatFormat::kQwen3, "qwen3", false},
    {ChatFormat::kMistral, "mistral", true},
    {ChatFormat::kGemma, "gemma", true},
    {ChatFormat::kPair, "pair", false},
}};

const FormatInfo& info(ChatFormat format) {
  for (const auto& f : kFormats) {
    if (f.format == format) return f;
  }
  throw Error("unknown chat format value " + std::to_string(static_cast<int>(format)));
}

// Python's str.strip() / Jinja's trim for ASCII whitespace.
std::string_view strip(std::string_view s) {
  const char* ws = " \t\n\r\v\f";
  auto begin = s.find_first_not_of(ws);
  if (begin == std::string_view::npos) return {};
  auto end = s.find_last_not_of(ws);
  return s.substr(begin, end - begin + 1);
}

std::string_view strip_chars(std::string_view s, char c, bool left, bool right) {
  while (left && !s.empty() && s.front() == c) s.remove_prefix(1);
  while (right && !s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

std::string token_text(const SpecialToken& token) { return token.present() ? token.text : ""; }

void check_known_role(const Message& m, std::size_t index, const char* format) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant") {
    throw Error(std::string(format) + " chat format: message " + std::to_string(index) +
                " has role '" + m.role + "'; expected system, user or assistant");
  }
}

// kPair: the prompt (one message, or none) and the response.
std::pair<std::string_view, std::string_view> pair_texts(const Conversation& c) {
  if (c.empty()) throw Error("pair chat format: the conversation has no messages");
  if (c.size() > 2) {
    throw Error("pair chat format: the conversation has " + std::to_string(c.size() - 1) +
                " prompt messages; a text pair takes one prompt and the response (join the turns into "
                "one prompt, or choose a chat format)");
  }
  for (std::size_t i = 0; i < c.size(); ++i) check_known_role(c[i], i, "pair");
  if (c.size() == 1) return {std::string_view(), c[0].content};
  return {c[0].content, c[1].content};
}

// The messages after an optional leading system message must go user,
// assistant, user, ... (Llama-2, Mistral and Gemma templates raise otherwise).
void check_alternating(const Conversation& c, std::size_t first, const char* format) {
  for (std::size_t i = first; i < c.size(); ++i) {
    const bool want_user = (i - first) % 2 == 0;
    const char* want = want_user ? "user" : "assistant";
    if (c[i].role != want) {
      throw Error(std::string(format) + " chat format: message " + std::to_string(i) +
                  " has role '" + c[i].role + "' where '" + want +
                  "' is expected (roles must alternate user/assistant" +
                  (first == 1 ? " after the system message)" : ")"));
    }
  }
}

void reject_system(const Conversation& c, const char* format) {
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i].role == "system") {
      throw Error(std::string(format) + " chat format: message " + std::to_string(i) +
                  " is a system message, which this family's template does not accept");
    }
  }
}

void reject_late_system(const Conversation& c, const char* format) {
  for (std::size_t i = 1; i < c.size(); ++i) {
    if (c[i].role == "system") {
      throw Error(std::string(format) + " chat format: message " + std::to_string(i) +
                  " is a system message; only the first message may be one");
    }
  }
}

std::string render_plain(const Conversation& c) {
  std::string out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    check_known_role(c[i], i, "plain");
    out += c[i].content;
  }
  return out;
}

std::string render_hh(const Conversation& c) {
  reject_system(c, "hh");
  std::string out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    check_known_role(c[i], i, "hh");
    out += c[i].role == "user" ? "\n\nHuman: " : "\n\nAssistant: ";
    out += c[i].content;
  }
  return out;
}

std::string render_llama2(const Conversation& c, const SpecialTokens& sp) {
  const bool has_system = !c.empty() && c[0].role == "system";
  const std::size_t first = has_system ? 1 : 0;
  check_alternating(c, first, "llama2");
  std::string out;
  for (std::size_t i = first; i < c.size(); ++i) {
    std::string content = c[i].content;
    if (i == first && has_system) {
      content = "<<SYS>>\n" + c[0].content + "\n<</SYS>>\n\n" + content;
    }
    if (c[i].role == "user") {
      out += token_text(sp.bos) + "[INST] " + std::string(strip(content)) + " [/INST]";
    } else {
      out += " " + std::string(strip(content)) + " " + token_text(sp.eos);
    }
  }
  return out;
}

std::string llama3_turn(const std::string& role, std::string_view content) {
  return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + std::string(strip(content)) +
         "<|eot_id|>";
}

std::string render_llama3(const Conversation& c, const SpecialTokens& sp) {
  std::string out = token_text(sp.bos);
  for (std::size_t i = 0; i < c.size(); ++i) {
    check_known_role(c[i], i, "llama3");
    out += llama3_turn(c[i].role, c[i].content);
  }
  return out;
}

// Llama-3.1's template always opens with a system turn carrying a knowledge
// cut-off and a date (its default, as no date_string is passed when scoring),
// followed by the conversation's own system message, if any.
std::string render_llama31(const Conversation& c, const SpecialTokens& sp) {
  reject_late_system(c, "llama3.1");
  const bool has_system = !c.empty() && c[0].role == "system";
  std::string system = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
  system += has_system ? std::string(strip(c[0].content)) : "";
  std::string out = token_text(sp.bos) + "<|start_header_id|>system<|end_header_id|>\n\n" +
                    system + "<|eot_id|>";
  for (std::size_t i = has_system ? 1 : 0; i < c.size(); ++i) {
    check_known_role(c[i], i, "llama3.1");
    out += llama3_turn(c[i].role, c[i].content);
  }
  return out;
}

std::string chatml_turn(const std::string& role, std::string_view content) {
  return "<|im_start|>" + role + "\n" + std::string(content) + "<|im_end|>\n";
}

std::string render_chatml(const Conversation& c, const char* default_system, const char* name) {
  std::string out;
  if (default_system != nullptr && (c.empty() || c[0].role != "system")) {
    out += chatml_turn("system", default_system);
  }
  for (std::size_t i = 0; i < c.size(); ++i) {
    check_known_role(c[i], i, name);
    out += chatml_turn(c[i].role, c[i].content);
  }
  return out;
}

// Qwen3: assistant turns before the last user message lose their <think>
// part; assistant turns after it keep theirs, and the final one always gets a
// <think> block, empty when the response has none.
std::string render_qwen3(const Conversation& c) {
  reject_late_system(c, "qwen3");
  std::size_t last_user = c.size();
  for (std::size_t i = c.size(); i-- > 0;) {
    if (c[i].role == "user") {
      last_user = i;
      break;
    }
  }
  std::string out;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const Message& m = c[i];
    check_known_role(m, i, "qwen3");
    if (m.role != "assistant") {
      out += chatml_turn(m.role, m.content);
      continue;
    }
    std::string_view content = m.content;
    std::string_view reasoning;
    const auto close = content.rfind("</think>");
    if (close != std::string_view::npos) {
      std::string_view before = content.substr(0, close);
      before = strip_chars(before, '\n', false, true);
      const auto open = before.rfind("<think>");
      if (open != std::string_view::npos) before = before.substr(open + 7);
      reasoning = strip_chars(before, '\n', true, false);
      content = strip_chars(content.substr(close + 8), '\n', true, false);
    }
    // With no user message the template's last query index is the last
    // message, which no turn comes after.
    const bool after_last_query = last_user != c.size() && i > last_user;
    const bool last = i + 1 == c.size();
    if (after_last_query && (last || !reasoning.empty())) {
      out += "<|im_start|>assistant\n<think>\n" +
             std::string(strip_chars(reasoning, '\n', true, true)) + "\n</think>\n\n" +
             std::string(strip_chars(content, '\n', true, false)) + "<|im_end|>\n";
    } else {
      out += chatml_turn("assistant", content);
    }
  }
  return out;
}

std::string render_mistral(const Conversation& c, const SpecialTokens& sp) {
  reject_system(c, "mistral");
  check_alternating(c, 0, "mistral");
  std::string out = token_text(sp.bos);
  for (const Message& m : c) {
    out += m.role == "user" ? "[INST] " + m.content + " [/INST]" : m.content + token_text(sp.eos);
  }
  return out;
}

std::string render_gemma(const Conversation& c, const SpecialTokens& sp) {
  reject_system(c, "gemma");
  check_alternating(c, 0, "gemma");
  std::string out = token_text(sp.bos);
  for (const Message& m : c) {
    const char* role = m.role == "assistant" ? "model" : "user";
    out += std::string("<start_of_turn>") + role + "\n" + std::string(strip(m.content)) +
           "<end_of_turn>\n";
  }
  return out;
}

bool contains(const std::string& s, const char* needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

std::string chat_format_name(ChatFormat format) { return info(format).name; }

std::vector<std::string> chat_format_names() {
  std::vector<std::string> names;
  for (const auto& f : kFormats) names.emplace_back(f.name);
  return names;
}

ChatFormat chat_format_from_name(const std::string& name) {
  for (const auto& f : kFormats) {
    if (name == f.name) return f.format;
  }
  std::string known;
  for (const auto& f : kFormats) known += std::string(known.empty() ? "" : ", ") + f.name;
  throw Error("unknown chat format '" + name + "'; known formats: " + known);
}

bool chat_format_writes_bos(ChatFormat format) { return info(format).writes_bos; }

std::optional<ChatFormat> recognise_chat_template(const std::string& t) {
  if (contains(t, "<|start_header_id|>")) {
    return contains(t, "Cutting Knowledge Date") ? ChatFormat::kLlama31 : ChatFormat::kLlama3;
  }
  if (contains(t, "<|im_start|>")) {
    if (contains(t, "<think>")) return ChatFormat::kQwen3;
    if (contains(t, "You are Qwen, created by Alibaba Cloud")) return ChatFormat::kQwen25;
    if (contains(t, "You are a helpful assistant")) return ChatFormat::kQwen2;
    return ChatFormat::kChatML;
  }
  if (contains(t, "<start_of_turn>")) return ChatFormat::kGemma;
  if (contains(t, "[INST]")) {
    return contains(t, "<<SYS>>") ? ChatFormat::kLlama2 : ChatFormat::kMistral;
  }
  if (contains(t, "\\n\\nHuman:") || contains(t, "\n\nHuman:")) return ChatFormat::kHH;
  // openrm's own template for plain text (chat_template_for(kPlain)), which
  // exported folders carry.
  if (t == chat_template_for(ChatFormat::kPlain)) return ChatFormat::kPlain;
  return std::nullopt;
}

std::string render_chat(ChatFormat format, const Conversation& c, const SpecialTokens& sp) {
  switch (format) {
    case ChatFormat::kPlain: return render_plain(c);
    case ChatFormat::kHH: return render_hh(c);
    case ChatFormat::kLlama2: return render_llama2(c, sp);
    case ChatFormat::kLlama3: return render_llama3(c, sp);
    case ChatFormat::kLlama31: return render_llama31(c, sp);
    case ChatFormat::kChatML: return render_chatml(c, nullptr, "chatml");
    case ChatFormat::kQwen2:
      return render_chatml(c, "You are a helpful assistant.", "qwen2");
    case ChatFormat::kQwen25:
      return render_chatml(c, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                           "qwen2.5");
    case ChatFormat::kQwen3: return render_qwen3(c);
    case ChatFormat::kMistral: return render_mistral(c, sp);
    case ChatFormat::kGemma: return render_gemma(c, sp);
    case ChatFormat::kPair: {
      const auto [prompt, response] = pair_texts(c);
      return prompt.empty() ? std::string(response) : std::string(prompt) + "\n\n" + std::string(response);
    }
  }
  throw Error("unknown chat format value " + std::to_string(static_cast<int>(format)));
}

std::vector<TokenId> encode_chat(const Tokenizer& tokenizer, ChatFormat format,
                                 const Conversation& conversation) {
  if (format == ChatFormat::kPair) {
    const auto [prompt, response] = pair_texts(conversation);
    // Without a prompt, the response alone: tokenizer(response).
    if (conversation.size() == 1) return tokenizer.encode(response);
    return tokenizer.encode_pair(prompt, response).ids;
  }
  const std::string text = render_chat(format, conversation, tokenizer.special_tokens());
  EncodeOptions options;
  if (format != ChatFormat::kPlain && format != ChatFormat::kHH) {
    // apply_chat_template(tokenize=True) adds no special tokens: the template
    // wrote every one it wants, BOS included.
    options.add_bos = false;
    options.add_eos = false;
  }
  return tokenizer.encode(text, options);
}

ChatFormat default_chat_format(const Tokenizer& tokenizer) {
  const std::string& chat_template = tokenizer.chat_template();
  if (chat_template.empty()) {
    const SpecialTokens& sp = tokenizer.special_tokens();
    return sp.cls.present() && sp.sep.present() ? ChatFormat::kPair : ChatFormat::kPlain;
  }
  if (auto format = recognise_chat_template(chat_template)) return *format;
  std::string names;
  for (const auto& name : chat_format_names()) names += (names.empty() ? "" : ", ") + name;
  throw Error(tokenizer.source() + ": the tokenizer's chat_template (tokenizer_config.json) is none of "
              "openrm's chat formats, so openrm cannot tell how it writes a conversation; name the "
              "format with --chat-format (one of " + names +
              "; plain scores the text as given), or record it as chat_format in openrm.json");
}

std::vector<std::string> chat_format_missing_tokens(ChatFormat format, const Tokenizer& tokenizer) {
  const SpecialTokens& sp = tokenizer.special_tokens();
  std::vector<std::string> missing;
  auto need_special = [&](const SpecialToken& token, const char* name) {
    if (!token.present()) missing.push_back(name);
  };
  auto need_marker = [&](const char* marker) {
    EncodeOptions bare;
    bare.add_bos = false;
    bare.add_eos = false;
    if (tokenizer.encode(marker, bare).size() != 1) missing.push_back(marker);
  };
  switch (format) {
    case ChatFormat::kPlain:
    case ChatFormat::kHH: break;
    case ChatFormat::kPair:
      need_special(sp.cls, "[CLS] (cls_token)");
      need_special(sp.sep, "[SEP] (sep_token)");
      break;
    case ChatFormat::kLlama2:
    case ChatFormat::kMistral:
      need_special(sp.bos, "BOS");
      need_special(sp.eos, "EOS");
      break;
    case ChatFormat::kLlama3:
    case ChatFormat::kLlama31:
      need_special(sp.bos, "BOS (<|begin_of_text|>)");
      for (const char* m : {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}) need_marker(m);
      break;
    case ChatFormat::kChatML:
    case ChatFormat::kQwen2:
    case ChatFormat::kQwen25:
    case ChatFormat::kQwen3:
      for (const char* m : {"<|im_start|>", "<|im_end|>"}) need_marker(m);
      break;
    case ChatFormat::kGemma:
      need_special(sp.bos, "BOS (<bos>)");
      for (const char* m : {"<start_of_turn>", "<end_of_turn>"}) need_marker(m);
      break;
  }
  return missing;
}

bool warn_if_chat_format_does_not_fit(ChatFormat format, const Tokenizer& tokenizer) {
  const auto missing = chat_format_missing_tokens(format, tokenizer);
  if (missing.empty()) return false;
  std::string list;
  for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
  log().warn("chat format {} writes special tokens that the tokenizer {} does not have as single tokens: {}; "
             "they will be encoded as ordinary text (is this the model's chat format?)",
             chat_format_name(format), tokenizer.source(), list);
  return true;
}

}  // namespace openrm
