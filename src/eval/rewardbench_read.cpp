// RewardBench v1 and v2 records from JSON Lines: read_rewardbench and
// is_rewardbench_file (docs/rewardbench.md, "The records").
#include "openrm/eval/rewardbench.h"

#include <algorithm>
#include <map>
#include <utility>

#include "data/record_fields.h"
#include "eval/rewardbench_ties.h"
#include "openrm/data/jsonl.h"
#include "openrm/error.h"

namespace openrm {
namespace {

using json = nlohmann::json;
using data_detail::RecordFields;
using rewardbench_detail::is_ties;
using rewardbench_detail::kTiesIdRule;
using rewardbench_detail::parse_ties_id;

// The prompt as a plain pair's is built (RecordFields::conversation: a
// string is one user message). rewardbench gives a list prompt's messages
// the roles user, assistant, user, ... by position whatever their role
// field says, and asserts that the last is the user's; a list that does not
// already read that way would be scored as something else than it says, so
// it is an error here.
Conversation read_prompt(const RecordFields& fields) {
  const json& value = fields.require("prompt");
  Conversation prompt = fields.conversation(value, "prompt", "user");
  if (!value.is_array()) return prompt;
  if (prompt.empty()) fields.fail("prompt", "an empty list of messages");
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    const char* expected = i % 2 == 0 ? "user" : "assistant";
    if (prompt[i].role != expected) {
      fields.fail("prompt[" + std::to_string(i) + "].role",
                  std::string("expected '") + expected + "' (rewardbench gives a list prompt's messages the roles "
                  "user, assistant, ... by position), got '" + prompt[i].role + "'");
    }
  }
  if (prompt.size() % 2 == 0) {
    fields.fail("prompt", "ends with an assistant message (the last prompt message must be the user's)");
  }
  return prompt;
}

Conversation completion(const Conversation& prompt, std::string response) {
  Conversation conversation = prompt;
  conversation.push_back(Message{"assistant", std::move(response)});
  return conversation;
}

// An optional non-negative integer field.
std::optional<std::int64_t> optional_count(const RecordFields& fields, const std::string& key) {
  const json* value = fields.find(key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number_integer() || value->get<std::int64_t>() < 0) {
    fields.fail_expected(key, "a non-negative integer", *value);
  }
  return value->get<std::int64_t>();
}

// v1: one string each.
void read_v1_sides(const RecordFields& fields, const std::string& why, RewardBenchExample& example) {
  for (const char* side : {"chosen", "rejected"}) {
    const json& value = fields.require(side);
    if (!value.is_string()) fields.fail_expected(side, "a string (" + why + ")", value);
    Conversation c = completion(example.prompt, value.get<std::string>());
    (std::string(side) == "chosen" ? example.chosen : example.rejected).push_back(std::move(c));
  }
}

// v2: a non-empty list of strings each, chosen (correct) first as upstream
// lays a record out; the counts, when given, must agree with the lists
// (upstream folds the unrolled rows back with total_completions and marks
// the first num_correct as correct).
void read_v2_sides(const RecordFields& fields, const std::string& why, RewardBenchExample& example) {
  for (const char* side : {"chosen", "rejected"}) {
    const json& value = fields.require(side);
    if (!value.is_array()) fields.fail_expected(side, "a list of strings (" + why + ")", value);
    if (value.empty()) fields.fail(side, "an empty list (each example needs at least one)");
    auto& out = std::string(side) == "chosen" ? example.chosen : example.rejected;
    for (std::size_t k = 0; k < value.size(); ++k) {
      if (!value[k].is_string()) {
        fields.fail_expected(std::string(side) + "[" + std::to_string(k) + "]", "a string", value[k]);
      }
      out.push_back(completion(example.prompt, value[k].get<std::string>()));
    }
  }
  const auto chosen = static_cast<std::int64_t>(example.chosen.size());
  const auto rejected = static_cast<std::int64_t>(example.rejected.size());
  auto agree = [&](const char* key, std::int64_t expected, const std::string& what) {
    if (auto n = optional_count(fields, key); n && *n != expected) {
      fields.fail(key, std::to_string(*n) + " but there are " + std::to_string(expected) + " " + what);
    }
  };
  agree("num_correct", chosen, "chosen completions");
  agree("num_incorrect", rejected, "rejected completions");
  agree("total_completions", chosen + rejected, "completions (chosen + rejected)");
}

}  // namespace

std::string rewardbench_version_name(RewardBenchVersion version) {
  switch (version) {
    case RewardBenchVersion::kAuto: return "auto";
    case RewardBenchVersion::kV1: return "v1";
    case RewardBenchVersion::kV2: return "v2";
  }
  return "unknown";
}

RewardBenchVersion rewardbench_version_from_name(const std::string& name) {
  for (auto v : {RewardBenchVersion::kAuto, RewardBenchVersion::kV1, RewardBenchVersion::kV2}) {
    if (rewardbench_version_name(v) == name) return v;
  }
  throw Error("unknown RewardBench version '" + name + "' (expected auto, v1 or v2)");
}

RewardBenchData read_rewardbench(const std::string& path, RewardBenchVersion version) {
  RewardBenchData data;
  JsonlReader reader(path);
  data.path = reader.name();
  std::string why;  // why a record must be of `version`, for the messages
  if (version != RewardBenchVersion::kAuto) why = "the version asked for is " + rewardbench_version_name(version);
  std::map<std::pair<bool, std::int64_t>, std::int64_t> ties_lines;  // Ties id -> its line
  std::string line;
  while (reader.next(line)) {
    const json value = reader.parse(line);
    const RecordFields fields(value, reader.location());
    if (version == RewardBenchVersion::kAuto) {
      const json& chosen = fields.require("chosen");
      if (chosen.is_string()) {
        version = RewardBenchVersion::kV1;
      } else if (chosen.is_array()) {
        version = RewardBenchVersion::kV2;
      } else {
        fields.fail_expected("chosen", "a string (RewardBench v1) or a list of strings (v2)", chosen);
      }
      why = "the file is RewardBench " + rewardbench_version_name(version) + ", as its first record, line " +
            std::to_string(reader.line_number()) + ", says";
    }
    RewardBenchExample example;
    example.line = reader.line_number();
    const json& subset = fields.require("subset");
    if (!subset.is_string()) fields.fail_expected("subset", "a string", subset);
    example.subset = subset.get<std::string>();
    if (example.subset.empty()) fields.fail("subset", "empty");
    example.id = fields.id("id");
    example.id_is_number = fields.id_is_number("id");
    example.prompt = read_prompt(fields);
    if (version == RewardBenchVersion::kV1) {
      read_v1_sides(fields, why, example);
    } else {
      read_v2_sides(fields, why, example);
    }
    if (version == RewardBenchVersion::kV2 && is_ties(example.subset)) {
      const auto id = parse_ties_id(example.id);
      if (!id) {
        if (fields.find("id") == nullptr) fields.fail_missing("id", std::string(" (expected ") + kTiesIdRule + ")");
        fields.fail_expected("id", kTiesIdRule, *fields.find("id"));
      }
      const auto [it, fresh] = ties_lines.emplace(std::make_pair(id->ref, id->prompt), example.line);
      if (!fresh) {
        fields.fail("id", "\"" + example.id + "\" again (first on line " + std::to_string(it->second) +
                              "); each Ties prompt appears once");
      }
    }
    data.examples.push_back(std::move(example));
  }
  data.lines = reader.lines_read();
  if (data.examples.empty()) {
    throw Error(reader.name() + ": no records (expected RewardBench records {prompt, chosen, rejected, subset, ...})");
  }
  data.version = version;
  return data;
}

bool is_rewardbench_file(const std::string& path) {
  if (path == "-") return false;
  try {
    JsonlReader reader(path);
    std::string line;
    if (!reader.next(line)) return false;
    const json value = reader.parse(line);
    if (!value.is_object()) return false;
    auto subset = value.find("subset");
    if (subset == value.end() || !subset->is_string()) return false;
    auto chosen = value.find("chosen"), rejected = value.find("rejected");
    if (chosen == value.end() || rejected == value.end()) return false;
    if (chosen->is_string() && rejected->is_string()) return true;
    auto strings = [](const json& list) {
      return list.is_array() && std::all_of(list.begin(), list.end(), [](const json& x) { return x.is_string(); });
    };
    return strings(*chosen) && strings(*rejected);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace openrm
