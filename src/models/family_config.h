// Reading family-specific config.json fields from ModelConfig::raw, with
// errors that name the field ("config: field 'rotary_pct': expected a
// number, got \"x\""). Header-only; used by gpt_neox.cpp and gpt2.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "openrm/error.h"
#include "openrm/io/config.h"

namespace openrm {
namespace family_config {

using nlohmann::json;

[[noreturn]] inline void fail_field(const std::string& key, const std::string& expected, const json& got) {
  throw Error("config: field '" + key + "': expected " + expected + ", got " + got.dump());
}

[[noreturn]] inline void fail(const std::string& key, const std::string& message) {
  throw Error("config: field '" + key + "' " + message);
}

// The field `key` of `object` (raw when null), or nullptr when absent or null.
inline const json* find(const json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

inline std::optional<std::int64_t> integer(const json& object, const std::string& key,
                                           const std::string& shown = "") {
  const json* v = find(object, key);
  if (!v) return std::nullopt;
  const std::string name = shown.empty() ? key : shown;
  if (v->is_number_integer() || v->is_number_unsigned()) {
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > (std::uint64_t{1} << 62)) {
      fail_field(name, "an integer below 2^62", *v);
    }
    return v->get<std::int64_t>();
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::abs(d) < 4e18) return static_cast<std::int64_t>(d);
  }
  fail_field(name, "an integer", *v);
}

// A positive integer, required unless `fallback` is given.
inline std::int64_t positive_int(const json& object, const std::string& key,
                                 std::optional<std::int64_t> fallback = std::nullopt) {
  auto v = integer(object, key);
  if (!v) {
    if (fallback) return *fallback;
    fail(key, "is required (a positive integer)");
  }
  if (*v <= 0) fail_field(key, "a positive integer", *find(object, key));
  return *v;
}

inline std::optional<double> number(const json& object, const std::string& key, const std::string& shown = "") {
  const json* v = find(object, key);
  if (!v) return std::nullopt;
  if (v->is_number()) return v->get<double>();
  fail_field(shown.empty() ? key : shown, "a number", *v);
}

inline bool boolean(const json& object, const std::string& key, bool fallback) {
  const json* v = find(object, key);
  if (!v) return fallback;
  if (v->is_boolean()) return v->get<bool>();
  fail_field(key, "true or false", *v);
}

inline std::string string(const json& object, const std::string& key, const std::string& fallback) {
  const json* v = find(object, key);
  if (!v) return fallback;
  if (v->is_string()) return v->get<std::string>();
  fail_field(key, "a string", *v);
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace family_config
}  // namespace openrm
