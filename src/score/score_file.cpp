// Scoring a JSONL file chunk by chunk, in bounded memory (openrm-score).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "logging.h"
#include "openrm/data/jsonl.h"
#include "openrm/error.h"
#include "openrm/score/scorer.h"

#include <cstdlib>
#include <fstream>

namespace openrm {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxKeptErrors = 5;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A reward as JSON text: 9 significant digits give back the same float; a
// dropped record (NaN) is null.
std::string reward_text(float value) {
  if (!std::isfinite(value)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(value));
  return buf;
}

// One input record of a chunk: a record to score, a pair, or a group of
// responses to one prompt.
struct Item {
  enum Kind { kRecord, kPair, kGroup } kind = kRecord;
  std::int64_t line = 0;
  std::string id;
  bool id_is_number = false;
  std::size_t index = 0;  // into the chunk's records or pairs; a group's first record
  std::size_t count = 1;  // a group's responses
};

class ProgressReporter {
 public:
  explicit ProgressReporter(double every_seconds)
      : every_(every_seconds), tty_(::isatty(2) == 1), start_(Clock::now()), last_(start_) {}

  void update(std::int64_t records, std::int64_t tokens) {
    if (every_ <= 0) return;
    const bool live = tty_ && seconds_since(last_) >= 0.5;
    if (!live && seconds_since(last_) < every_) return;
    last_ = Clock::now();
    const double elapsed = seconds_since(start_);
    char line[160];
    std::snprintf(line, sizeof line, "scored %lld records, %.1f records/s, %.0f tokens/s, %.0f s",
                  static_cast<long long>(records), static_cast<double>(records) / elapsed,
                  static_cast<double>(tokens) / elapsed, elapsed);
    if (tty_) {
      std::fprintf(stderr, "\r%s\x1b[K", line);
      std::fflush(stderr);
      shown_ = true;
    } else {
      log().info("{}", line);
    }
  }
  void finish() {
    if (shown_) std::fprintf(stderr, "\n");
  }

 private:
  double every_;
  bool tty_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

}  // namespace

ScoreFileResult score_file(Scorer& scorer, const std::string& input,
                           const std::function<void(const std::string&)>& write, const ScoreFileOptions& options) {
  if (options.kind != "auto" && options.kind != "records" && options.kind != "pairs") {
    throw Error("score_file: kind must be auto, records or pairs, got '" + options.kind + "'");
  }
  if (options.chunk_records <= 0) {
    throw Error("score_file: chunk_records must be positive, got " + std::to_string(options.chunk_records));
  }
  const auto start = Clock::now();
  ScoreFileResult result;
  JsonlReader reader(input);
  ProgressReporter progress(options.progress_seconds);
  std::vector<Item> items;
  std::vector<ScoreRecord> records;
  std::vector<PreferencePair> pairs;
  std::vector<ScoreRecord> group_records;  // every group's prompt + response, in order
  if (options.shard_count < 1 || options.shard_rank < 0 || options.shard_rank >= options.shard_count) {
    throw Error("score_file: shard " + std::to_string(options.shard_rank) + " of " + std::to_string(options.shard_count) +
                " is not a shard (0 <= rank < count)");
  }
  std::int64_t record_index = -1;  // non-blank lines read, for sharding
  std::string line;
  bool more = true;
  while (more) {
    items.clear();
    records.clear();
    pairs.clear();
    group_records.clear();
    while (static_cast<std::int64_t>(items.size()) < options.chunk_records) {
      try {
        more = reader.next(line);
        if (!more) break;
        if (++record_index % options.shard_count != options.shard_rank) continue;  // another process's
        const nlohmann::json value = reader.parse(line);
        const bool is_group = options.kind != "pairs" && value.is_object() && value.contains(options.records.responses);
        const bool is_pair =
            options.kind == "pairs" ||
            (options.kind == "auto" && !is_group && value.is_object() &&
             (value.contains(options.pairs.fields.chosen) || value.contains(options.pairs.fields.rejected)));
        Item item;
        item.line = reader.line_number();
        if (is_group) {
          ResponseGroup group = parse_response_group(value, reader.location(), item.line, options.records);
          item.kind = Item::kGroup;
          item.id = group.id;
          item.id_is_number = group.id_is_number;
          item.index = group_records.size();
          item.count = group.responses.size();
          for (std::size_t k = 0; k < group.responses.size(); ++k) {
            ScoreRecord record;
            record.conversation = group.prompt;
            record.conversation.insert(record.conversation.end(), group.responses[k].begin(),
                                       group.responses[k].end());
            record.line = item.line;
            record.text_format = group.text_format;
            group_records.push_back(std::move(record));
          }
        } else if (is_pair) {
          PreferencePair pair = parse_preference_record(value, reader.location(), item.line, options.pairs);
          item.kind = Item::kPair;
          item.id = pair.id;
          item.id_is_number = pair.id_is_number;
          item.index = pairs.size();
          pairs.push_back(std::move(pair));
        } else {
          ScoreRecord record = parse_score_record(value, reader.location(), item.line, options.records);
          item.id = record.id;
          item.id_is_number = record.id_is_number;
          item.index = records.size();
          records.push_back(std::move(record));
        }
        items.push_back(std::move(item));
      } catch (const RecordError& e) {
        if (!options.skip_invalid) throw;
        ++result.skipped_invalid;
        if (result.first_errors.size() < kMaxKeptErrors) result.first_errors.push_back(e.what());
      }
    }
    if (items.empty()) break;

    ScoreResult record_scores, group_scores;
    PairScores pair_scores;
    if (!records.empty()) record_scores = scorer.score_records(records);
    if (!pairs.empty()) pair_scores = scorer.score_pairs(pairs);
    if (!group_records.empty()) group_scores = scorer.score_records(group_records);
    result.stats += record_scores.stats;
    result.stats += pair_scores.stats;
    result.stats += group_scores.stats;

    std::string out;
    for (const Item& item : items) {
      out += "{\"line\": " + std::to_string(item.line);
      if (!item.id.empty()) {
        out += ", \"id\": " + (item.id_is_number ? item.id : nlohmann::json(item.id).dump());
      }
      bool dropped = false, non_finite = false;
      if (item.kind == Item::kGroup) {
        out += ", \"rewards\": [";
        for (std::size_t k = 0; k < item.count; ++k) {
          const float r = group_scores.rewards[item.index + k];
          const bool lost = group_scores.dropped[item.index + k];
          dropped = dropped || lost;
          non_finite = non_finite || (!lost && !std::isfinite(r));
          out += (k > 0 ? ", " : "") + reward_text(r);
        }
        out += "]";
        ++result.groups;
      } else if (item.kind == Item::kPair) {
        const float c = pair_scores.chosen[item.index], r = pair_scores.rejected[item.index];
        dropped = pair_scores.dropped[item.index];
        non_finite = !dropped && (!std::isfinite(c) || !std::isfinite(r));
        out += ", \"reward_chosen\": " + reward_text(c) + ", \"reward_rejected\": " + reward_text(r);
        ++result.pairs;
      } else {
        const float r = record_scores.rewards[item.index];
        dropped = record_scores.dropped[item.index];
        non_finite = !dropped && !std::isfinite(r);
        out += ", \"reward\": " + reward_text(r);
      }
      if (dropped) {
        out += ", \"dropped\": true";
        ++result.dropped;
      }
      if (non_finite) {
        out += ", \"non_finite\": true";
        ++result.non_finite;
      }
      out += "}\n";
      ++result.records;
    }
    write(out);
    progress.update(result.records, result.stats.tokens);
  }
  progress.finish();
  result.lines = reader.lines_read();
  if (result.records == 0) {
    if (result.skipped_invalid == 0) throw Error(reader.name() + ": no records");
    throw Error(reader.name() + ": no valid record (" + std::to_string(result.skipped_invalid) +
                " invalid skipped; first: " + result.first_errors.front() + ")");
  }
  if (result.skipped_invalid > 0) {
    log().warn("{}: skipped {} invalid record(s); first: {}", reader.name(), result.skipped_invalid,
               result.first_errors.front());
  }
  if (result.non_finite > 0) {
    log().warn("{}: {} record(s) got a non-finite reward from the model (written with a null reward and "
               "\"non_finite\": true)",
               reader.name(), result.non_finite);
  }
  if (result.dropped > 0) {
    log().warn("{}: {} record(s) dropped by truncation (written with a null reward): {}", reader.name(),
               result.dropped, result.stats.truncation.summary());
  } else if (result.stats.truncation.truncated > 0) {
    log().info("{}: truncation: {}", reader.name(), result.stats.truncation.summary());
  }
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace openrm

namespace openrm {

void merge_shard_outputs(const std::vector<std::string>& parts, const std::function<void(const std::string&)>& write) {
  struct Part {
    std::ifstream in;
    std::string path, line;
    std::int64_t number = 0, count = 0;
    bool open = false;
  };
  std::vector<Part> p(parts.size());
  auto advance = [](Part& part) {
    part.open = static_cast<bool>(std::getline(part.in, part.line));
    if (!part.open) return;
    ++part.count;
    const std::string prefix = "{\"line\": ";
    char* end = nullptr;
    if (part.line.rfind(prefix, 0) != 0 ||
        (part.number = std::strtoll(part.line.c_str() + prefix.size(), &end, 10), end == part.line.c_str() + prefix.size())) {
      throw Error(part.path + ":" + std::to_string(part.count) + ": not an openrm-score output line");
    }
  };
  for (std::size_t i = 0; i < parts.size(); ++i) {
    p[i].path = parts[i];
    p[i].in.open(parts[i]);
    if (!p[i].in) throw Error(parts[i] + ": cannot open");
    advance(p[i]);
  }
  std::int64_t last = -1;
  for (;;) {
    Part* next = nullptr;
    for (auto& part : p) {
      if (part.open && (next == nullptr || part.number < next->number)) next = &part;
    }
    if (next == nullptr) break;
    if (next->number <= last) throw Error(next->path + ": line " + std::to_string(next->number) + " out of order");
    last = next->number;
    write(next->line + "\n");
    advance(*next);
  }
}

}  // namespace openrm
