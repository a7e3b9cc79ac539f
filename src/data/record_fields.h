// Typed reads of one JSONL record's fields, shared by the preference and
// score-record readers (internal). Every problem is a RecordError
// "FILE:LINE: field 'chosen[1].role': ..." so that skip_invalid can skip it.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "openrm/data/jsonl.h"
#include "openrm/tokenizer/chat_format.h"

namespace openrm::data_detail {

using json = nlohmann::json;

// A JSON value in an error message, cut short.
inline std::string brief(const json& value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

inline bool is_known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant";
}

class RecordFields {
 public:
  // `where` is "FILE:LINE". Throws when `record` is not an object.
  RecordFields(const json& record, std::string where) : record_(record), where_(std::move(where)) {
    if (!record_.is_object()) {
      throw RecordError(where_ + ": expected a JSON object, got " + brief(record_));
    }
  }

  const std::string& where() const { return where_; }

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw RecordError(where_ + ": field '" + field + "': " + problem);
  }
  [[noreturn]] void fail_expected(const std::string& field, const std::string& expected,
                                  const json& got) const {
    fail(field, "expected " + expected + ", got " + brief(got));
  }
  [[noreturn]] void fail_missing(const std::string& field, const std::string& note = "") const {
    throw RecordError(where_ + ": missing field '" + field + "'" + note);
  }

  // nullptr when the key is absent or null.
  const json* find(const std::string& key) const {
    auto it = record_.find(key);
    return it == record_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& require(const std::string& key) const {
    const json* value = find(key);
    if (value == nullptr) fail_missing(key);
    return *value;
  }

  // A required string; `non_empty` rejects "".
  std::string string(const std::string& key, bool non_empty) const {
    const json& value = require(key);
    if (!value.is_string()) fail_expected(key, "a string", value);
    std::string text = value.get<std::string>();
    if (non_empty && text.empty()) fail(key, "empty response");
    return text;
  }

  // An optional number; non-numbers and non-finite numbers are errors.
  std::optional<double> number(const std::string& key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number()) fail_expected(key, "a number", *value);
    double number = value->get<double>();
    if (!std::isfinite(number)) fail_expected(key, "a finite number", *value);
    return number;
  }

  // Whether the id field holds an integer (echoed as a number).
  bool id_is_number(const std::string& key) const {
    const json* value = find(key);
    return value != nullptr && (value->is_number_unsigned() || value->is_number_integer());
  }

  // An optional id: a string, or an integer written in decimal.
  std::string id(const std::string& key) const {
    const json* value = find(key);
    if (value == nullptr) return "";
    if (value->is_string()) return value->get<std::string>();
    if (value->is_number_unsigned()) return std::to_string(value->get<std::uint64_t>());
    if (value->is_number_integer()) return std::to_string(value->get<std::int64_t>());
    fail_expected(key, "a string or an integer", *value);
  }

  // A list of {"role": ..., "content": ...} objects; `field` names the list
  // in messages ("chosen", "responses[2]").
  Conversation messages(const json& value, const std::string& field) const {
    if (!value.is_array()) fail_expected(field, "a list of messages", value);
    Conversation conversation;
    conversation.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
      const json& item = value[i];
      std::string at = field + "[" + std::to_string(i) + "]";
      if (!item.is_object()) fail_expected(at, "a message object {role, content}", item);
      auto role = item.find("role");
      if (role == item.end()) fail(at, "missing 'role'");
      if (!role->is_string()) fail_expected(at + ".role", "a string", *role);
      auto content = item.find("content");
      if (content == item.end()) fail(at, "missing 'content'");
      if (!content->is_string()) fail_expected(at + ".content", "a string", *content);
      Message message{role->get<std::string>(), content->get<std::string>()};
      if (!is_known_role(message.role)) {
        fail(at + ".role",
             "unknown role " + brief(*role) + " (expected system, user or assistant)");
      }
      conversation.push_back(std::move(message));
    }
    return conversation;
  }

  // A string (one message of `string_role`) or a list of messages.
  Conversation conversation(const json& value, const std::string& field,
                            const char* string_role) const {
    if (value.is_string()) {
      std::string text = value.get<std::string>();
      if (text.empty() && std::string(string_role) == "user") return {};
      return {Message{string_role, std::move(text)}};
    }
    if (value.is_array()) return messages(value, field);
    fail_expected(field, "a string or a list of messages", value);
  }

  // A completion: at least one message, ending in the assistant's response.
  // The response may be empty: a policy can answer nothing, and the answer
  // gets a reward like any other.
  void check_completion(const Conversation& completion, const std::string& field) const {
    if (completion.empty()) fail(field, "no messages after the prompt");
    const Message& last = completion.back();
    if (last.role != "assistant") {
      fail(field,
           "the last message must be the assistant's response, got role '" + last.role + "'");
    }
  }

 private:
  const json& record_;
  std::string where_;
};

}  // namespace openrm::data_detail
