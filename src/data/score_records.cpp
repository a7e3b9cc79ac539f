// Records to score, streamed from JSONL one at a time.
#include <cstddef>
#include <string>
#include <utility>

#include "data/record_fields.h"
#include "logging.h"
#include "openrm/data/jsonl.h"
#include "openrm/data/preference.h"
#include "openrm/error.h"

namespace openrm {

namespace {

constexpr std::size_t kMaxKeptErrors = 5;

// {messages: [...]} or {prompt: string | [...], response: string}, plus an
// optional id. The last message is the assistant's response (possibly empty);
// a string prompt with a string response is text (ScoreRecord::text_format).
ScoreRecord read_score_record(const nlohmann::json& value, const std::string& where,
                              std::int64_t line, const ScoreFields& names) {
  data_detail::RecordFields fields(value, where);
  ScoreRecord record;
  record.id = fields.id(names.id);
  record.id_is_number = fields.id_is_number(names.id);
  record.line = line;
  std::string checked_field;
  if (const nlohmann::json* messages = fields.find(names.messages)) {
    record.conversation = fields.messages(*messages, names.messages);
    checked_field = names.messages;
  } else if (fields.find(names.prompt) != nullptr || fields.find(names.response) != nullptr) {
    const nlohmann::json& prompt = fields.require(names.prompt);
    record.conversation = fields.conversation(prompt, names.prompt, "user");
    std::string response = fields.string(names.response, /*non_empty=*/false);
    record.conversation.push_back(Message{"assistant", std::move(response)});
    if (prompt.is_string()) record.text_format = ChatFormat::kPlain;
    checked_field = names.response;
  } else {
    fields.fail_missing(names.messages,
                        " (or '" + names.prompt + "' and '" + names.response + "')");
  }
  if (record.conversation.empty()) fields.fail(checked_field, "no messages");
  fields.check_completion(record.conversation, checked_field);
  return record;
}

}  // namespace

ScoreRecord parse_score_record(const nlohmann::json& value, const std::string& where, std::int64_t line,
                               const ScoreFields& fields) {
  return read_score_record(value, where, line, fields);
}

ResponseGroup parse_response_group(const nlohmann::json& value, const std::string& where, std::int64_t line,
                                   const ScoreFields& names) {
  constexpr std::size_t kMaxResponses = 1024;
  data_detail::RecordFields fields(value, where);
  ResponseGroup group;
  group.id = fields.id(names.id);
  group.id_is_number = fields.id_is_number(names.id);
  group.line = line;
  const nlohmann::json& prompt = fields.require(names.prompt);
  group.prompt = fields.conversation(prompt, names.prompt, "user");
  bool all_text = prompt.is_string();
  const nlohmann::json& responses = fields.require(names.responses);
  if (!responses.is_array()) fields.fail_expected(names.responses, "a list of responses", responses);
  if (responses.empty()) fields.fail(names.responses, "no responses");
  if (responses.size() > kMaxResponses) {
    fields.fail(names.responses, "has " + std::to_string(responses.size()) + " responses, more than the limit of " +
                                     std::to_string(kMaxResponses));
  }
  for (std::size_t i = 0; i < responses.size(); ++i) {
    const std::string at = names.responses + "[" + std::to_string(i) + "]";
    group.responses.push_back(fields.conversation(responses[i], at, "assistant"));
    fields.check_completion(group.responses.back(), at);
    all_text = all_text && responses[i].is_string();
  }
  if (all_text) group.text_format = ChatFormat::kPlain;
  return group;
}

struct ScoreRecordReader::Impl {
  Impl(const std::string& path, const ScoreReadOptions& options) : reader(path), options(options) {}
  JsonlReader reader;
  ScoreReadOptions options;
  ReadStats stats;
  std::string line;
  bool done = false;
};

ScoreRecordReader::ScoreRecordReader(const std::string& path, const ScoreReadOptions& options)
    : impl_(std::make_unique<Impl>(path, options)) {}

ScoreRecordReader::~ScoreRecordReader() = default;

const ReadStats& ScoreRecordReader::stats() const { return impl_->stats; }

bool ScoreRecordReader::next(ScoreRecord& record) {
  Impl& s = *impl_;
  if (s.done) return false;
  for (;;) {
    try {
      bool more = s.reader.next(s.line);
      s.stats.lines = s.reader.lines_read();
      if (!more) break;
      nlohmann::json value = s.reader.parse(s.line);
      record =
          read_score_record(value, s.reader.location(), s.reader.line_number(), s.options.fields);
      ++s.stats.records;
      return true;
    } catch (const RecordError& e) {
      s.stats.lines = s.reader.lines_read();
      if (!s.options.skip_invalid) throw;
      ++s.stats.skipped_invalid;
      if (s.stats.first_errors.size() < kMaxKeptErrors) s.stats.first_errors.push_back(e.what());
    }
  }
  s.done = true;
  const std::string& name = s.reader.name();
  if (s.stats.records == 0) {
    if (s.stats.skipped_invalid == 0) throw Error(name + ": no records");
    throw Error(name + ": no valid record (" + std::to_string(s.stats.skipped_invalid) +
                " invalid skipped; first: " + s.stats.first_errors.front() + ")");
  }
  if (s.stats.skipped_invalid > 0) {
    log().warn("{}: skipped {} invalid record(s) of {}; first: {}", name, s.stats.skipped_invalid,
               s.stats.records + s.stats.skipped_invalid, s.stats.first_errors.front());
  }
  return false;
}

}  // namespace openrm
