// JSON parsing shared by the safetensors and config.json readers: turns
// nlohmann's exceptions into openrm::Error and guards against inputs that
// parse but would hurt later (nesting deep enough to exhaust the stack in
// recursive copies and dumps; duplicate keys, which nlohmann would silently
// resolve to the last one).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "openrm/error.h"

namespace openrm::detail {

struct JsonParseLimits {
  int max_depth = 64;                  // objects and arrays nested deeper are rejected
  bool reject_duplicate_keys = false;  // a key twice in one object is an error
  // What a key of the top-level object is, for the duplicate-key message
  // ("duplicate tensor name 'w'").
  const char* top_level_key_noun = "key";
};

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// tag helps nobody reading an error about their file.
inline std::string json_error_text(const std::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text[0] == '[') {
    std::size_t close = text.find("] ");
    if (close != std::string::npos) text.erase(0, close + 2);
  }
  return text;
}

// Parses [begin, end) as one JSON value. Errors are openrm::Error with
// "<prefix>: " in front, e.g. "/m/config.json: malformed JSON: parse error at
// line 3, column 5: ...".
// Json is nlohmann::json or nlohmann::ordered_json (to keep key order).
template <typename Json>
Json parse_json_checked(const char* begin, const char* end, const std::string& prefix,
                        const JsonParseLimits& limits) {
  using json = Json;
  int depth = 0;
  std::vector<std::set<std::string>> keys_seen;  // one set per open object
  using Event = typename json::parse_event_t;
  typename json::parser_callback_t check = [&](int /*depth*/, Event event, json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (++depth > limits.max_depth) {
          throw Error(prefix + ": JSON nests deeper than " + std::to_string(limits.max_depth) +
                      " levels");
        }
        if (limits.reject_duplicate_keys && event == Event::object_start) {
          keys_seen.emplace_back();
        }
        break;
      case Event::object_end:
      case Event::array_end:
        --depth;
        if (limits.reject_duplicate_keys && event == Event::object_end && !keys_seen.empty()) {
          keys_seen.pop_back();
        }
        break;
      case Event::key:
        if (limits.reject_duplicate_keys && !keys_seen.empty() && parsed.is_string()) {
          const auto& key = parsed.template get_ref<const std::string&>();
          if (!keys_seen.back().insert(key).second) {
            const char* noun = keys_seen.size() == 1 ? limits.top_level_key_noun : "key";
            throw Error(prefix + ": duplicate " + noun + " '" + key + "'");
          }
        }
        break;
      case Event::value: break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, check, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::exception& e) {
    throw Error(prefix + ": malformed JSON: " + json_error_text(e));
  }
}

}  // namespace openrm::detail
