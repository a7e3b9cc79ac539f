// Preference data: pairs (and k-wise rankings) read from JSONL or .jsonl.gz,
// and records to score.
#pragma once

#include <openrm/tokenizer/chat_format.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

// Records whose sides are already rendered text (plain strings, hh-rlhf
// transcripts) carry text_format: the format in which their messages render
// back to exactly that text (kPlain: the contents concatenated; kHH: the
// transcript's markers). They are tokenized in it, as the text, whatever chat
// format the model uses, as TRL and RewardBench tokenize such data; a chat
// format applies only to records given as message lists (text_format unset).
//
// An id is echoed as it came: id_is_number says the record's id was an
// integer (id holds its decimal digits), not a string.

// One human preference: two completions of the same prompt. chosen and
// rejected are the turns after the shared prompt (usually one assistant
// message each); the last message is the response that truncation may cut
// (it may be empty: a policy can answer nothing, and that gets a reward too).
struct PreferencePair {
  Conversation prompt;
  Conversation chosen;
  Conversation rejected;
  double margin = 0.0;      // how strongly chosen is preferred (BT loss margin)
  bool has_margin = false;
  std::string id;           // the record's id field, if any
  // The record's subset field, if any (RewardBench's "subset", a source or a
  // category): evaluation reports accuracy per subset.
  std::string subset;
  bool id_is_number = false;
  std::int64_t line = 0;    // 1-based line in the source file
  std::optional<ChatFormat> text_format;  // set for rendered text (see above)
};

// k responses to one prompt with scores (higher is better). A record given as
// a ranking (indices, best first) gets scores k-1, k-2, ..., 0.
struct RankedRecord {
  Conversation prompt;
  std::vector<Conversation> responses;
  std::vector<double> scores;
  std::string id;
  std::string subset;  // as PreferencePair::subset
  bool id_is_number = false;
  std::int64_t line = 0;
  std::optional<ChatFormat> text_format;  // kPlain when the prompt and every response are strings
};

enum class PreferenceFormat {
  kAuto,            // decided per record from the fields present
  kPlain,           // {prompt, chosen, rejected} strings
  kConversational,  // TRL: chosen/rejected message lists, optional prompt (string or list)
  kHH,              // Anthropic hh-rlhf: chosen/rejected full transcripts, no prompt
  kRanked,          // {prompt, responses, scores | ranking}
};
std::string preference_format_name(PreferenceFormat format);  // "auto", "plain", "conversational", "hh", "ranked"
PreferenceFormat preference_format_from_name(const std::string& name);

// JSON field names (configurable for datasets that use other names).
struct PreferenceFields {
  std::string prompt = "prompt";
  std::string chosen = "chosen";
  std::string rejected = "rejected";
  std::string margin = "margin";
  std::string responses = "responses";
  std::string scores = "scores";
  std::string ranking = "ranking";
  std::string id = "id";
  std::string subset = "subset";  // optional: a string (or integer) label per record
};

struct ReadOptions {
  PreferenceFormat format = PreferenceFormat::kAuto;
  PreferenceFields fields;
  // Skip and count invalid records instead of throwing on the first one.
  bool skip_invalid = false;
  // Stop after this many records (0: read all).
  std::int64_t max_records = 0;
};

struct ReadStats {
  std::int64_t lines = 0;            // lines read, blank ones included
  std::int64_t records = 0;          // valid records
  std::int64_t skipped_invalid = 0;  // invalid records skipped (skip_invalid)
  std::int64_t ranked_records = 0;   // k-wise records among `records`
  std::int64_t pairs = 0;            // pairs produced (k-wise ones expanded)
  std::vector<std::string> first_errors;  // the first few skip messages
};

struct PreferenceData {
  std::vector<PreferencePair> pairs;     // every pair, k-wise records expanded
  std::vector<RankedRecord> rankings;    // the k-wise records as read
  ReadStats stats;
};

// Reads a .jsonl or .jsonl.gz file ("-" is stdin). Errors (also those that
// skip_invalid counts) read "FILE:LINE: message". An empty file, or one with
// no valid record, is an error.
PreferenceData read_preferences(const std::string& path, const ReadOptions& options = {});

// One parsed JSON record as a pair (plain, conversational or hh layout, as
// options.format and options.fields say; a k-wise ranking is an error), for
// callers that stream records themselves. `where` ("FILE:LINE") starts the
// messages; throws RecordError.
PreferencePair parse_preference_record(const nlohmann::json& value, const std::string& where,
                                       std::int64_t line, const ReadOptions& options = {});

// Every ordered pair (better, worse) of a ranking; ties give no pair.
std::vector<PreferencePair> expand_ranking(const RankedRecord& record);

// Splits an Anthropic HH transcript ("\n\nHuman: ...\n\nAssistant: ...") into
// messages; throws openrm::Error when it is not one.
Conversation parse_hh_transcript(const std::string& transcript);

// A record to score: a conversation whose last message is the response.
struct ScoreRecord {
  Conversation conversation;
  std::string id;
  bool id_is_number = false;
  std::int64_t line = 0;
  std::optional<ChatFormat> text_format;  // kPlain for {prompt: string, response: string}
};

struct ScoreFields {
  std::string messages = "messages";  // a message list
  std::string prompt = "prompt";      // or prompt (string or list) + response
  std::string response = "response";
  std::string responses = "responses";  // or prompt + several responses (a ResponseGroup)
  std::string id = "id";
};

// Several responses to one prompt, each to be scored (best-of-n candidates,
// or the responses of a k-wise record; any scores or ranking are ignored).
struct ResponseGroup {
  Conversation prompt;
  std::vector<Conversation> responses;  // each ends with the assistant's response
  std::string id;
  bool id_is_number = false;
  std::int64_t line = 0;
  std::optional<ChatFormat> text_format;  // kPlain when the prompt and every response are strings
};

// {prompt: string | [...], responses: [string | [...], ...]} (1 to 1024
// responses) plus an optional id; throws RecordError naming `where`.
ResponseGroup parse_response_group(const nlohmann::json& value, const std::string& where, std::int64_t line,
                                   const ScoreFields& fields = {});

struct ScoreReadOptions {
  ScoreFields fields;
  bool skip_invalid = false;
};

// One parsed JSON record as a ScoreRecord (see ScoreFields); throws
// RecordError naming `where` ("FILE:LINE").
ScoreRecord parse_score_record(const nlohmann::json& value, const std::string& where, std::int64_t line,
                               const ScoreFields& fields = {});

// Streams ScoreRecords from JSONL / .jsonl.gz ("-" is stdin) one at a time,
// so memory does not grow with the file.
class ScoreRecordReader {
 public:
  ScoreRecordReader(const std::string& path, const ScoreReadOptions& options = {});
  ~ScoreRecordReader();
  ScoreRecordReader(const ScoreRecordReader&) = delete;
  ScoreRecordReader& operator=(const ScoreRecordReader&) = delete;

  // Fills `record` and returns true, or returns false at the end of the file.
  bool next(ScoreRecord& record);
  const ReadStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace openrm
