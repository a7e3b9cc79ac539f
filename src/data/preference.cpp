// Preference pairs and k-wise rankings from JSONL: the plain, conversational
// (TRL), Anthropic HH and ranked layouts, decided per record or fixed.
#include "openrm/data/preference.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/record_fields.h"
#include "logging.h"
#include "openrm/data/jsonl.h"
#include "openrm/error.h"

namespace openrm {

namespace {

using data_detail::json;
using data_detail::RecordFields;

// Bounds the quadratic expansion of one ranked record: at most
// 1024 * 1023 / 2 pairs.
constexpr std::size_t kMaxRankedResponses = 1024;
// Bounds what that expansion copies: every pair holds its own copy of the
// prompt and of both responses, so a long prompt times many pairs could need
// far more memory than the file holds (a 1.9 KB prompt with 1024 responses:
// about 1 GB from one 8 KB line). Counted: the text of the prompt and both
// responses per pair, plus kPairOverheadBytes for the pair's own structures.
// 1024 short responses (523,776 pairs) stay under it.
constexpr std::uint64_t kMaxExpandedBytes = std::uint64_t{256} << 20;  // 256 MiB
constexpr std::uint64_t kPairOverheadBytes = 256;
constexpr std::size_t kMaxKeptErrors = 5;

std::uint64_t conversation_bytes(const Conversation& conversation) {
  std::uint64_t bytes = 0;
  for (const Message& m : conversation) bytes += m.role.size() + m.content.size();
  return bytes;
}

bool same_message(const Message& a, const Message& b) {
  return a.role == b.role && a.content == b.content;
}

std::size_t common_prefix(const Conversation& a, const Conversation& b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && same_message(a[n], b[n])) ++n;
  return n;
}

bool starts_with(const Conversation& conversation, const Conversation& prefix) {
  return prefix.size() <= conversation.size() &&
         common_prefix(conversation, prefix) == prefix.size();
}

bool same_conversation(const Conversation& a, const Conversation& b) {
  return a.size() == b.size() && common_prefix(a, b) == a.size();
}

// Splits two full conversations into their longest common prefix (the
// prompt) and the rest of each.
void split_common_prompt(const RecordFields& fields, const PreferenceFields& names,
                         Conversation chosen, Conversation rejected, PreferencePair& pair) {
  std::size_t n = common_prefix(chosen, rejected);
  if (n == chosen.size() && n == rejected.size()) {
    fields.fail(names.chosen, "chosen and rejected are identical");
  }
  pair.prompt.assign(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(n));
  pair.chosen.assign(chosen.begin() + static_cast<std::ptrdiff_t>(n), chosen.end());
  pair.rejected.assign(rejected.begin() + static_cast<std::ptrdiff_t>(n), rejected.end());
}

enum class Layout { kPlain, kConversational, kHH, kRanked };

Layout decide_layout(const RecordFields& fields, const ReadOptions& options) {
  const PreferenceFields& names = options.fields;
  switch (options.format) {
    case PreferenceFormat::kPlain: return Layout::kPlain;
    case PreferenceFormat::kConversational: return Layout::kConversational;
    case PreferenceFormat::kHH: return Layout::kHH;
    case PreferenceFormat::kRanked: return Layout::kRanked;
    case PreferenceFormat::kAuto: break;
  }
  if (fields.find(names.responses) != nullptr) return Layout::kRanked;
  const json* chosen = fields.find(names.chosen);
  if (chosen == nullptr) {
    fields.fail_missing(names.chosen, " (or '" + names.responses + "' for a ranked record)");
  }
  if (chosen->is_array()) return Layout::kConversational;
  if (!chosen->is_string()) {
    fields.fail_expected(names.chosen, "a string or a list of messages", *chosen);
  }
  return fields.find(names.prompt) != nullptr ? Layout::kPlain : Layout::kHH;
}

void read_margin(const RecordFields& fields, const PreferenceFields& names, PreferencePair& pair) {
  if (auto margin = fields.number(names.margin)) {
    pair.margin = *margin;
    pair.has_margin = true;
  }
}

PreferencePair read_plain(const RecordFields& fields, const PreferenceFields& names) {
  PreferencePair pair;
  const json& prompt = fields.require(names.prompt);
  pair.prompt = fields.conversation(prompt, names.prompt, "user");
  std::string chosen = fields.string(names.chosen, /*non_empty=*/false);
  std::string rejected = fields.string(names.rejected, /*non_empty=*/false);
  if (chosen == rejected) fields.fail(names.chosen, "chosen and rejected are identical");
  pair.chosen = {Message{"assistant", std::move(chosen)}};
  pair.rejected = {Message{"assistant", std::move(rejected)}};
  // Three strings are text: prompt + response, as written.
  if (prompt.is_string()) pair.text_format = ChatFormat::kPlain;
  return pair;
}

PreferencePair read_conversational(const RecordFields& fields, const PreferenceFields& names) {
  Conversation chosen = fields.messages(fields.require(names.chosen), names.chosen);
  Conversation rejected = fields.messages(fields.require(names.rejected), names.rejected);
  PreferencePair pair;
  if (const json* prompt = fields.find(names.prompt)) {
    pair.prompt = fields.conversation(*prompt, names.prompt, "user");
    // Some datasets (ultrafeedback_binarized) repeat the prompt at the start
    // of both lists; drop it there.
    if (!pair.prompt.empty() && starts_with(chosen, pair.prompt) &&
        starts_with(rejected, pair.prompt)) {
      chosen.erase(chosen.begin(),
                   chosen.begin() + static_cast<std::ptrdiff_t>(pair.prompt.size()));
      rejected.erase(rejected.begin(),
                     rejected.begin() + static_cast<std::ptrdiff_t>(pair.prompt.size()));
    }
    if (same_conversation(chosen, rejected)) {
      fields.fail(names.chosen, "chosen and rejected are identical");
    }
    pair.chosen = std::move(chosen);
    pair.rejected = std::move(rejected);
  } else {
    split_common_prompt(fields, names, std::move(chosen), std::move(rejected), pair);
  }
  fields.check_completion(pair.chosen, names.chosen);
  fields.check_completion(pair.rejected, names.rejected);
  return pair;
}

// One turn of an HH transcript: where its marker starts and where its
// content (after the marker and one space) begins and ends.
struct HHTurn {
  bool user = true;
  std::size_t start = 0, begin = 0, end = 0;
};

std::vector<HHTurn> hh_turns(const std::string& transcript) {
  static const std::string kHuman = "Human:";
  static const std::string kAssistant = "Assistant:";
  // The role marker at `at` ("Human:" / "Assistant:"), or "" when none.
  auto marker_at = [&](std::size_t at) -> const std::string* {
    if (transcript.compare(at, kHuman.size(), kHuman) == 0) return &kHuman;
    if (transcript.compare(at, kAssistant.size(), kAssistant) == 0) return &kAssistant;
    return nullptr;
  };
  std::size_t at;
  if (transcript.compare(0, 2 + kHuman.size(), "\n\n" + kHuman) == 0) {
    at = 2;
  } else if (transcript.compare(0, kHuman.size(), kHuman) == 0) {
    at = 0;  // the leading blank line stripped away
  } else {
    throw Error("not an HH transcript: it must start with \"\\n\\nHuman:\"");
  }
  std::vector<HHTurn> turns;
  std::size_t start = 0;
  while (true) {
    const std::string* marker = marker_at(at);
    std::size_t begin = at + marker->size();
    if (begin < transcript.size() && transcript[begin] == ' ') ++begin;
    // The next "\n\n" followed by a marker ends this turn.
    std::size_t end = begin;
    std::size_t next = std::string::npos;
    while ((end = transcript.find("\n\n", end)) != std::string::npos) {
      if (marker_at(end + 2) != nullptr) {
        next = end + 2;
        break;
      }
      ++end;
    }
    turns.push_back(HHTurn{marker == &kHuman, start, begin, end == std::string::npos ? transcript.size() : end});
    if (next == std::string::npos) break;
    start = next - 2;
    at = next;
  }
  return turns;
}

// A transcript as messages that render back to exactly its text: the
// parsed turns in the hh format when that gives the text back (every
// well-formed transcript), else each turn's exact slice of the text, markers
// included, in the plain format (the contents concatenated).
Conversation read_hh_field(const RecordFields& fields, const std::string& name, ChatFormat& format) {
  std::string transcript = fields.string(name, /*non_empty=*/false);
  std::vector<HHTurn> turns;
  try {
    turns = hh_turns(transcript);
  } catch (const Error& e) {
    fields.fail(name, e.what());
  }
  Conversation parsed;
  for (const HHTurn& t : turns) {
    parsed.push_back(Message{t.user ? "user" : "assistant", transcript.substr(t.begin, t.end - t.begin)});
  }
  if (format == ChatFormat::kHH && render_chat(ChatFormat::kHH, parsed, SpecialTokens{}) == transcript) return parsed;
  format = ChatFormat::kPlain;
  Conversation slices;
  for (std::size_t i = 0; i < turns.size(); ++i) {
    const std::size_t stop = i + 1 < turns.size() ? turns[i + 1].start : transcript.size();
    slices.push_back(Message{turns[i].user ? "user" : "assistant", transcript.substr(turns[i].start, stop - turns[i].start)});
  }
  return slices;
}

PreferencePair read_hh(const RecordFields& fields, const PreferenceFields& names) {
  ChatFormat format = ChatFormat::kHH;  // both sides must render in one format
  Conversation chosen = read_hh_field(fields, names.chosen, format);
  Conversation rejected = read_hh_field(fields, names.rejected, format);
  if (format == ChatFormat::kPlain) chosen = read_hh_field(fields, names.chosen, format);
  PreferencePair pair;
  split_common_prompt(fields, names, std::move(chosen), std::move(rejected), pair);
  fields.check_completion(pair.chosen, names.chosen);
  fields.check_completion(pair.rejected, names.rejected);
  pair.text_format = format;
  return pair;
}

RankedRecord read_ranked(const RecordFields& fields, const PreferenceFields& names) {
  RankedRecord record;
  record.prompt = fields.conversation(fields.require(names.prompt), names.prompt, "user");
  if (fields.find(names.margin) != nullptr) {
    fields.fail(names.margin, "not supported in a ranked record (the scores give the order)");
  }
  const json& responses = fields.require(names.responses);
  if (!responses.is_array()) {
    fields.fail_expected(names.responses, "a list of responses", responses);
  }
  std::size_t k = responses.size();
  if (k < 2) fields.fail(names.responses, "needs at least 2 responses, got " + std::to_string(k));
  if (k > kMaxRankedResponses) {
    fields.fail(names.responses, "has " + std::to_string(k) +
                                     " responses, more than the limit of " +
                                     std::to_string(kMaxRankedResponses));
  }
  bool all_text = fields.require(names.prompt).is_string();
  for (std::size_t i = 0; i < k; ++i) {
    std::string at = names.responses + "[" + std::to_string(i) + "]";
    record.responses.push_back(fields.conversation(responses[i], at, "assistant"));
    fields.check_completion(record.responses.back(), at);
    all_text = all_text && responses[i].is_string();
  }
  if (all_text) record.text_format = ChatFormat::kPlain;

  const json* scores = fields.find(names.scores);
  const json* ranking = fields.find(names.ranking);
  if (scores != nullptr && ranking != nullptr) {
    fields.fail(names.ranking, "give '" + names.scores + "' or '" + names.ranking + "', not both");
  }
  if (scores != nullptr) {
    if (!scores->is_array()) fields.fail_expected(names.scores, "a list of numbers", *scores);
    if (scores->size() != k) {
      fields.fail(names.scores, "has " + std::to_string(scores->size()) + " entries for " +
                                    std::to_string(k) + " responses");
    }
    for (std::size_t i = 0; i < k; ++i) {
      const json& score = (*scores)[i];
      std::string at = names.scores + "[" + std::to_string(i) + "]";
      if (!score.is_number()) fields.fail_expected(at, "a number", score);
      double value = score.get<double>();
      if (!std::isfinite(value)) fields.fail_expected(at, "a finite number", score);
      record.scores.push_back(value);
    }
  } else if (ranking != nullptr) {
    if (!ranking->is_array()) {
      fields.fail_expected(names.ranking, "a list of response indices", *ranking);
    }
    if (ranking->size() != k) {
      fields.fail(names.ranking, "has " + std::to_string(ranking->size()) + " entries for " +
                                     std::to_string(k) + " responses");
    }
    std::vector<bool> seen(k, false);
    record.scores.assign(k, 0.0);
    for (std::size_t position = 0; position < k; ++position) {
      const json& index = (*ranking)[position];
      std::string at = names.ranking + "[" + std::to_string(position) + "]";
      if (!index.is_number_integer() || index.get<std::int64_t>() < 0 ||
          static_cast<std::uint64_t>(index.get<std::int64_t>()) >= k) {
        fields.fail_expected(at, "a response index in 0.." + std::to_string(k - 1), index);
      }
      auto i = static_cast<std::size_t>(index.get<std::int64_t>());
      if (seen[i]) fields.fail(at, "index " + std::to_string(i) + " appears twice");
      seen[i] = true;
      record.scores[i] = static_cast<double>(k - 1 - position);
    }
  } else {
    fields.fail_missing(names.scores, " (or '" + names.ranking + "')");
  }

  // What expand_ranking will copy, counted before it does.
  const std::uint64_t prompt_bytes = conversation_bytes(record.prompt);
  std::vector<std::uint64_t> response_bytes;
  response_bytes.reserve(k);
  for (const Conversation& response : record.responses) {
    response_bytes.push_back(conversation_bytes(response));
  }
  std::uint64_t pairs = 0;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      if (!(record.scores[i] > record.scores[j])) continue;
      ++pairs;
      bytes += kPairOverheadBytes + prompt_bytes + response_bytes[i] + response_bytes[j];
    }
  }
  if (bytes > kMaxExpandedBytes) {
    fields.fail(names.responses, "expands to " + std::to_string(pairs) + " pairs holding about " +
                                     std::to_string(bytes >> 20) +
                                     " MiB (each pair copies the prompt and both " +
                                     "responses), more than the limit of " +
                                     std::to_string(kMaxExpandedBytes >> 20) + " MiB");
  }
  return record;
}

struct Collector {
  const ReadOptions& options;
  PreferenceData& data;

  void add(const json& value, const std::string& where, std::int64_t line) {
    RecordFields fields(value, where);
    const PreferenceFields& names = options.fields;
    std::string id = fields.id(names.id);
    std::string subset = fields.id(names.subset);
    const bool id_is_number = fields.id_is_number(names.id);
    Layout layout = decide_layout(fields, options);
    if (layout == Layout::kRanked) {
      RankedRecord record = read_ranked(fields, names);
      record.id = std::move(id);
      record.subset = std::move(subset);
      record.id_is_number = id_is_number;
      record.line = line;
      std::vector<PreferencePair> pairs = expand_ranking(record);
      for (PreferencePair& pair : pairs) data.pairs.push_back(std::move(pair));
      data.rankings.push_back(std::move(record));
      ++data.stats.ranked_records;
      data.stats.pairs += static_cast<std::int64_t>(pairs.size());
    } else {
      PreferencePair pair = read_pair(fields, layout, names);
      pair.id = std::move(id);
      pair.subset = std::move(subset);
      pair.id_is_number = id_is_number;
      pair.line = line;
      data.pairs.push_back(std::move(pair));
      ++data.stats.pairs;
    }
    ++data.stats.records;
  }

  static PreferencePair read_pair(const RecordFields& fields, Layout layout, const PreferenceFields& names) {
    PreferencePair pair = layout == Layout::kPlain            ? read_plain(fields, names)
                          : layout == Layout::kConversational ? read_conversational(fields, names)
                                                              : read_hh(fields, names);
    read_margin(fields, names, pair);
    return pair;
  }
};

}  // namespace

PreferencePair parse_preference_record(const json& value, const std::string& where, std::int64_t line,
                                       const ReadOptions& options) {
  RecordFields fields(value, where);
  const PreferenceFields& names = options.fields;
  std::string id = fields.id(names.id);
  const Layout layout = decide_layout(fields, options);
  if (layout == Layout::kRanked) {
    fields.fail(names.responses, "a k-wise ranking, not a pair (score its responses as records)");
  }
  PreferencePair pair = Collector::read_pair(fields, layout, names);
  pair.id = std::move(id);
  pair.subset = fields.id(names.subset);
  pair.id_is_number = fields.id_is_number(names.id);
  pair.line = line;
  return pair;
}

std::string preference_format_name(PreferenceFormat format) {
  switch (format) {
    case PreferenceFormat::kAuto: return "auto";
    case PreferenceFormat::kPlain: return "plain";
    case PreferenceFormat::kConversational: return "conversational";
    case PreferenceFormat::kHH: return "hh";
    case PreferenceFormat::kRanked: return "ranked";
  }
  return "unknown";
}

PreferenceFormat preference_format_from_name(const std::string& name) {
  for (PreferenceFormat format :
       {PreferenceFormat::kAuto, PreferenceFormat::kPlain, PreferenceFormat::kConversational,
        PreferenceFormat::kHH, PreferenceFormat::kRanked}) {
    if (preference_format_name(format) == name) return format;
  }
  throw Error("unknown preference format '" + name +
              "' (expected auto, plain, conversational, hh or ranked)");
}

Conversation parse_hh_transcript(const std::string& transcript) {
  Conversation conversation;
  for (const HHTurn& t : hh_turns(transcript)) {
    conversation.push_back(Message{t.user ? "user" : "assistant", transcript.substr(t.begin, t.end - t.begin)});
  }
  return conversation;
}

std::vector<PreferencePair> expand_ranking(const RankedRecord& record) {
  std::vector<PreferencePair> pairs;
  std::size_t k = std::min(record.responses.size(), record.scores.size());
  for (std::size_t i = 0; i < k; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      if (!(record.scores[i] > record.scores[j])) continue;
      PreferencePair pair;
      pair.prompt = record.prompt;
      pair.chosen = record.responses[i];
      pair.rejected = record.responses[j];
      pair.id = record.id;
      pair.subset = record.subset;
      pair.id_is_number = record.id_is_number;
      pair.line = record.line;
      pair.text_format = record.text_format;
      pairs.push_back(std::move(pair));
    }
  }
  return pairs;
}

PreferenceData read_preferences(const std::string& path, const ReadOptions& options) {
  PreferenceData data;
  JsonlReader reader(path);
  Collector collector{options, data};
  std::string line;
  while (options.max_records <= 0 || data.stats.records < options.max_records) {
    try {
      if (!reader.next(line)) break;
      json value = reader.parse(line);
      collector.add(value, reader.location(), reader.line_number());
    } catch (const RecordError& e) {
      if (!options.skip_invalid) throw;
      ++data.stats.skipped_invalid;
      if (data.stats.first_errors.size() < kMaxKeptErrors) {
        data.stats.first_errors.push_back(e.what());
      }
    }
  }
  data.stats.lines = reader.lines_read();
  ReadStats& stats = data.stats;
  if (stats.records == 0) {
    if (stats.skipped_invalid == 0) throw Error(reader.name() + ": no records");
    throw Error(reader.name() + ": no valid record (" + std::to_string(stats.skipped_invalid) +
                " invalid skipped; first: " + stats.first_errors.front() + ")");
  }
  if (data.pairs.empty()) {
    throw Error(reader.name() + ": no preference pairs (every ranking is a tie)");
  }
  if (stats.skipped_invalid > 0) {
    log().warn("{}: skipped {} invalid record(s) of {}; first: {}", reader.name(),
               stats.skipped_invalid, stats.records + stats.skipped_invalid,
               stats.first_errors.front());
  }
  return data;
}

}  // namespace openrm
