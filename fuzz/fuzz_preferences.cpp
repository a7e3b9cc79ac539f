// Feeds arbitrary bytes, as a .jsonl file, to the preference-data readers:
// read_preferences in every PreferenceFormat with skip_invalid off and on,
// ScoreRecordReader, and JsonlReader itself (sometimes with a small line
// cap), and checks find_invalid_utf8 against an independent decoder. Whatever
// reads is checked against the promised invariants and rendered with
// render_chat in every chat format. A rejection (openrm::Error) is fine;
// anything else (another exception type, a broken invariant, a sanitizer
// report, a hang) is a bug.
//
// The first input byte chooses how the rest is written to the temp file:
//   byte % 8 in 0..4: as is (plain JSONL; zlib reads plain files too);
//   5: gzip, one member;  6: gzip, two members (split in the middle);
//   7: gzip cut short (byte / 8 in 0..23 gives where, in 24ths of the
//      compressed size; every reader must then fail, unless fewer than two
//      bytes are left) or with one byte flipped (byte / 8 in 24..31).
// Bit 3 of the byte also decides whether the special tokens given to
// render_chat are present ("<s>", "</s>") or absent.
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "openrm/data/jsonl.h"
#include "openrm/data/preference.h"
#include "openrm/error.h"
#include "openrm/logging.h"
#include "openrm/tokenizer/chat_format.h"

namespace {

using openrm::ChatFormat;
using openrm::Conversation;
using openrm::Message;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_preferences: invariant broken: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// Anything but openrm::Error escaping a reader is a bug: say what it was
// before aborting, so the report is readable.
[[noreturn]] void unexpected(const std::exception& e, const char* where) {
  std::fprintf(stderr, "fuzz_preferences: %s threw %s: %s\n", where, typeid(e).name(), e.what());
  std::abort();
}

// One temp file per process, rewritten for every input.
std::string g_path;

void remove_temp_file() {
  if (!g_path.empty()) unlink(g_path.c_str());
}

const std::string& temp_path() {
  if (g_path.empty()) {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
                          "/openrm_fuzz_preferences_XXXXXX.jsonl";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    int fd = mkstemps(name.data(), 6);
    if (fd < 0) {
      std::perror("fuzz_preferences: mkstemps");
      std::abort();
    }
    close(fd);
    g_path = name.data();
    std::atexit(remove_temp_file);
  }
  return g_path;
}

void write_file(const std::string& bytes) {
  std::FILE* out = std::fopen(temp_path().c_str(), "wb");
  if (out == nullptr) {
    std::perror("fuzz_preferences: fopen");
    std::abort();
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), out) != bytes.size()) {
    std::perror("fuzz_preferences: fwrite");
    std::abort();
  }
  std::fclose(out);
}

// One gzip member (deflate with a gzip header and trailer).
std::string gzip(std::string_view text) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    fail("deflateInit2");
  }
  std::string out(deflateBound(&stream, static_cast<uLong>(text.size())) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  stream.avail_in = static_cast<uInt>(text.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  int status = deflate(&stream, Z_FINISH);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) fail("deflate");
  out.resize(stream.total_out);
  return out;
}

// ---------------------------------------------------------------------------
// Invariants of what the readers return.

// An independent UTF-8 check (decode, then range-check the code point).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t length = c < 0x80           ? 1
                         : (c >> 5) == 0x6  ? 2
                         : (c >> 4) == 0xE  ? 3
                         : (c >> 3) == 0x1E ? 4
                                            : 0;
    if (length == 0 || i + length > s.size()) return false;
    std::uint32_t cp = length == 1   ? c
                       : length == 2 ? (c & 0x1F)
                       : length == 3 ? (c & 0x0F)
                                     : (c & 0x07);
    for (std::size_t k = 1; k < length; ++k) {
      auto t = static_cast<unsigned char>(s[i + k]);
      if ((t & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (t & 0x3F);
    }
    static const std::uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

bool known_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant";
}

void check_messages(const Conversation& c) {
  for (const Message& m : c) {
    check(known_role(m.role), "a message with an unknown role");
    check(valid_utf8(m.content), "a message that is not valid UTF-8");
  }
}

// A completion ends in a non-empty assistant message.
void check_completion(const Conversation& c) {
  check(!c.empty(), "an empty completion");
  check(c.back().role == "assistant", "a completion that does not end with the assistant");
  check(!c.back().content.empty(), "a completion with an empty response");
  check_messages(c);
}

bool same(const Conversation& a, const Conversation& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].role != b[i].role || a[i].content != b[i].content) return false;
  }
  return true;
}

Conversation join(const Conversation& a, const Conversation& b) {
  Conversation c = a;
  c.insert(c.end(), b.begin(), b.end());
  return c;
}

openrm::SpecialTokens g_special;  // set per input
// The file is a gzip stream cut short (at least its two magic bytes kept):
// every reader must end in an openrm::Error, none may read to a normal end.
bool g_expect_stream_error = false;

// Renders `c` in every chat format. Rejections are fine; what renders must
// hold the contents, and an HH transcript must split back into `c`.
void render_all(const Conversation& c) {
  for (const std::string& name : openrm::chat_format_names()) {
    ChatFormat format = openrm::chat_format_from_name(name);
    std::string text;
    try {
      text = openrm::render_chat(format, c, g_special);
    } catch (const openrm::Error&) {
      continue;
    } catch (const std::exception& e) {
      unexpected(e, "render_chat");
    }
    if (format == ChatFormat::kPlain) {
      std::string joined;
      for (const Message& m : c) joined += m.content;
      check(text == joined, "plain rendering is not the contents joined");
    } else if (format == ChatFormat::kChatML) {
      for (const Message& m : c) {
        check(text.find(m.content) != std::string::npos, "chatml rendering lost a content");
      }
    } else if (format == ChatFormat::kHH && !c.empty() && c.front().role == "user") {
      bool has_marker = false;
      for (const Message& m : c) {
        has_marker = has_marker || m.content.find("\n\nHuman:") != std::string::npos ||
                     m.content.find("\n\nAssistant:") != std::string::npos;
      }
      if (has_marker) continue;
      Conversation back;
      try {
        back = openrm::parse_hh_transcript(text);
      } catch (const openrm::Error&) {
        fail("an HH rendering does not parse as an HH transcript");
      }
      check(same(back, c), "an HH rendering does not split back into its messages");
    }
  }
}

void check_pair(const openrm::PreferencePair& pair, std::int64_t lines, bool ranked) {
  check_messages(pair.prompt);
  check_completion(pair.chosen);
  check_completion(pair.rejected);
  if (!ranked) check(!same(pair.chosen, pair.rejected), "identical chosen and rejected");
  if (pair.has_margin) check(std::isfinite(pair.margin), "a margin that is not finite");
  check(pair.line >= 1 && pair.line <= lines, "a pair's line outside the file");
  check(valid_utf8(pair.id), "an id that is not valid UTF-8");
}

std::uint64_t text_bytes(const Conversation& c) {
  std::uint64_t n = 0;
  for (const Message& m : c) n += m.role.size() + m.content.size();
  return n;
}

// A ranked record's pairs copy its prompt and two responses each; the reader
// refuses records whose copies (plus 256 bytes a pair) exceed 256 MiB.
void check_expansion_bytes(const openrm::RankedRecord& record) {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < record.scores.size(); ++i) {
    for (std::size_t j = 0; j < record.scores.size(); ++j) {
      if (record.scores[i] > record.scores[j]) {
        bytes += 256 + text_bytes(record.prompt) + text_bytes(record.responses[i]) +
                 text_bytes(record.responses[j]);
      }
    }
  }
  check(bytes <= (std::uint64_t{256} << 20), "a ranked record expands past the byte limit");
}

// Reads with one format / skip_invalid; returns whether it read.
bool read_one(openrm::PreferenceFormat format, bool skip, openrm::PreferenceData& data) {
  openrm::ReadOptions options;
  options.format = format;
  options.skip_invalid = skip;
  try {
    data = openrm::read_preferences(temp_path(), options);
  } catch (const openrm::Error&) {
    return false;
  } catch (const std::exception& e) {
    unexpected(e, "read_preferences");
  }
  check(!g_expect_stream_error, "read_preferences accepted a truncated gzip file");
  const openrm::ReadStats& stats = data.stats;
  check(stats.records > 0 && !data.pairs.empty(), "an accepted file without pairs");
  check(stats.pairs == static_cast<std::int64_t>(data.pairs.size()), "stats.pairs is off");
  check(stats.ranked_records == static_cast<std::int64_t>(data.rankings.size()),
        "stats.ranked_records is off");
  check(stats.records + stats.skipped_invalid <= stats.lines, "more records than lines");
  check(skip || stats.skipped_invalid == 0, "skipped records without skip_invalid");
  check(stats.first_errors.size() <= static_cast<std::size_t>(stats.skipped_invalid) &&
            stats.first_errors.size() <= 5,
        "first_errors is off");
  if (format == openrm::PreferenceFormat::kRanked) {
    check(stats.ranked_records == stats.records, "a ranked read with a non-ranked record");
  } else if (format != openrm::PreferenceFormat::kAuto) {
    check(data.rankings.empty(), "rankings from a pairwise format");
  }
  std::size_t expanded = 0;
  for (const openrm::RankedRecord& record : data.rankings) {
    check_expansion_bytes(record);
    check(record.responses.size() == record.scores.size(), "responses and scores differ");
    check(record.responses.size() >= 2 && record.responses.size() <= 1024,
          "a ranking of a bad size");
    check_messages(record.prompt);
    for (const Conversation& response : record.responses) check_completion(response);
    for (double score : record.scores) check(std::isfinite(score), "a score that is not finite");
    for (double a : record.scores) {
      for (double b : record.scores) expanded += a > b ? 1 : 0;
    }
  }
  check(expanded <= data.pairs.size(), "fewer pairs than the rankings expand to");
  // A ranked record's pairs may pair equal responses; the others may not.
  std::set<std::int64_t> ranked_lines;
  for (const openrm::RankedRecord& record : data.rankings) ranked_lines.insert(record.line);
  std::size_t from_rankings = 0;
  for (std::size_t i = 0; i < data.pairs.size(); ++i) {
    const openrm::PreferencePair& pair = data.pairs[i];
    bool ranked = ranked_lines.count(pair.line) != 0;
    from_rankings += ranked ? 1 : 0;
    check_pair(pair, stats.lines, ranked);
    if (i < 3) {
      render_all(join(pair.prompt, pair.chosen));
      render_all(join(pair.prompt, pair.rejected));
    }
  }
  check(from_rankings == expanded, "the rankings' pairs are not their expansions");
  return true;
}

void read_scores(bool skip) {
  openrm::ScoreReadOptions options;
  options.skip_invalid = skip;
  try {
    openrm::ScoreRecordReader reader(temp_path(), options);
    openrm::ScoreRecord record;
    std::int64_t count = 0;
    std::int64_t last_line = 0;
    while (reader.next(record)) {
      ++count;
      check(!record.conversation.empty(), "an empty score record");
      check_completion(record.conversation);
      check(record.line > last_line, "score records out of order");
      last_line = record.line;
      check(valid_utf8(record.id), "an id that is not valid UTF-8");
      if (count <= 3) render_all(record.conversation);
    }
    check(!g_expect_stream_error, "ScoreRecordReader read a truncated gzip file to the end");
    check(!reader.next(record), "next() after the end returned a record");
    const openrm::ReadStats& stats = reader.stats();
    check(stats.records == count && count > 0, "score stats.records is off");
    check(skip || stats.skipped_invalid == 0, "skipped score records without skip_invalid");
    check(stats.records + stats.skipped_invalid <= stats.lines, "more score records than lines");
  } catch (const openrm::Error&) {
  } catch (const std::exception& e) {
    unexpected(e, "ScoreRecordReader");
  }
}

// Each line as openrm-score reads it: a group of responses, a pair or a
// record, each parser called on whatever parses as JSON. What parses must
// hold its invariants; anything else must be a RecordError.
void parse_each_line() {
  try {
    openrm::JsonlReader reader(temp_path());
    std::string line;
    int count = 0;
    while (count++ < 64) {
      try {
        if (!reader.next(line)) break;
        const nlohmann::json value = reader.parse(line);
        try {
          const openrm::ResponseGroup group = openrm::parse_response_group(value, reader.location(), 1);
          check(!group.responses.empty() && group.responses.size() <= 1024, "a group's response count");
          for (const Conversation& response : group.responses) check_completion(response);
          check(valid_utf8(group.id), "a group id that is not valid UTF-8");
        } catch (const openrm::RecordError&) {
        }
        try {
          const openrm::PreferencePair pair = openrm::parse_preference_record(value, reader.location(), 1);
          check_completion(pair.chosen);
          check_completion(pair.rejected);
        } catch (const openrm::RecordError&) {
        }
        try {
          const openrm::ScoreRecord record = openrm::parse_score_record(value, reader.location(), 1);
          check_completion(record.conversation);
        } catch (const openrm::RecordError&) {
        }
      } catch (const openrm::RecordError&) {
      }
    }
  } catch (const openrm::Error&) {
  } catch (const std::exception& e) {
    unexpected(e, "the per-line parsers");
  }
}

// JsonlReader line by line, with the given line cap: over-long lines are
// RecordErrors that reading goes on after; other Errors end it.
// find_invalid_utf8 against the independent check: npos exactly when valid,
// and otherwise the bytes before the offset valid.
void check_utf8_finder(std::string_view text) {
  std::size_t bad = openrm::find_invalid_utf8(text);
  check((bad == std::string_view::npos) == valid_utf8(text), "find_invalid_utf8 disagrees");
  if (bad != std::string_view::npos) {
    check(bad < text.size() && valid_utf8(text.substr(0, bad)),
          "find_invalid_utf8 points after an invalid byte");
  }
}

void read_lines(std::size_t cap) {
  if (cap == 0) cap = openrm::JsonlReader::kDefaultMaxLineBytes;
  try {
    openrm::JsonlReader reader(temp_path(), cap);
    std::string line;
    std::int64_t last = 0;
    for (;;) {
      bool more;
      try {
        more = reader.next(line);
      } catch (const openrm::RecordError&) {
        check(reader.line_number() > last, "a too-long line was not consumed");
        last = reader.line_number();
        continue;
      }
      if (!more) break;
      check(reader.line_number() > last, "line numbers do not grow");
      last = reader.line_number();
      check(line.size() <= cap, "a line over the cap was returned");
      check(line.find('\n') == std::string::npos, "a line holds a newline");
      check_utf8_finder(line);
      try {
        (void)reader.parse(line);
      } catch (const openrm::RecordError&) {
      }
    }
    check(!g_expect_stream_error, "JsonlReader read a truncated gzip file to the end");
    check(reader.line_number() == reader.lines_read() && reader.lines_read() >= last,
          "lines_read is off at the end");
  } catch (const openrm::RecordError&) {
    fail("a RecordError escaped the line loop");
  } catch (const openrm::Error&) {
  } catch (const std::exception& e) {
    unexpected(e, "JsonlReader");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  openrm::set_log_level(openrm::LogLevel::kOff);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  const std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);

  if (mode & 8) {
    g_special.bos = {1, "<s>"};
    g_special.eos = {2, "</s>"};
  } else {
    g_special.bos = {};
    g_special.eos = {};
  }

  check_utf8_finder(payload);

  // Straight at the HH splitter: whatever splits must render and split back.
  try {
    Conversation c = openrm::parse_hh_transcript(std::string(payload));
    check(!c.empty(), "an empty HH transcript");
    render_all(c);
  } catch (const openrm::Error&) {
  } catch (const std::exception& e) {
    unexpected(e, "parse_hh_transcript");
  }

  const bool gz_complete = mode % 8 == 5 || mode % 8 == 6;
  g_expect_stream_error = false;
  std::string file;
  switch (mode % 8) {
    case 5: file = gzip(payload); break;
    case 6:
      file = gzip(payload.substr(0, payload.size() / 2)) + gzip(payload.substr(payload.size() / 2));
      break;
    case 7: {
      file = gzip(payload);
      unsigned where = mode / 8;  // 0..31
      if (where < 24) {
        file.resize(file.size() * where / 24);
        g_expect_stream_error = file.size() >= 2;
      } else {
        std::size_t at = 10 + (file.size() - 10) * (where - 24) / 8;  // past the gzip header
        if (at < file.size()) file[at] = static_cast<char>(file[at] ^ 0x5A);
      }
      break;
    }
    default: file.assign(payload); break;
  }
  write_file(file);

  using openrm::PreferenceFormat;
  std::int64_t auto_pairs = -1;
  for (PreferenceFormat format :
       {PreferenceFormat::kAuto, PreferenceFormat::kPlain, PreferenceFormat::kConversational,
        PreferenceFormat::kHH, PreferenceFormat::kRanked}) {
    openrm::PreferenceData strict;
    openrm::PreferenceData lenient;
    bool strict_ok = read_one(format, false, strict);
    bool lenient_ok = read_one(format, true, lenient);
    // A file that reads strictly reads the same with skip_invalid.
    if (strict_ok) {
      check(lenient_ok, "a file that reads strictly fails with skip_invalid");
      check(lenient.stats.skipped_invalid == 0 && lenient.pairs.size() == strict.pairs.size() &&
                lenient.stats.records == strict.stats.records,
            "skip_invalid changed a file without invalid records");
    }
    if (format == PreferenceFormat::kAuto && lenient_ok) {
      auto_pairs = static_cast<std::int64_t>(lenient.pairs.size());
    }
  }
  read_scores(false);
  read_scores(true);
  parse_each_line();
  // Line caps: 16, 64 or 256 bytes for 3/8 of the inputs, else the default.
  const unsigned cap_choice = (mode >> 4) & 7;
  read_lines(cap_choice == 0 ? 16 : cap_choice == 1 ? 64 : cap_choice == 2 ? 256 : 0);

  // A complete gzip file reads like the plain text it holds.
  const bool payload_is_gzip = payload.size() >= 2 &&
                               static_cast<unsigned char>(payload[0]) == 0x1F &&
                               static_cast<unsigned char>(payload[1]) == 0x8B;
  if (gz_complete && !payload_is_gzip) {
    g_expect_stream_error = false;
    write_file(std::string(payload));
    openrm::PreferenceData plain;
    bool plain_ok = read_one(PreferenceFormat::kAuto, true, plain);
    check(plain_ok == (auto_pairs >= 0), "gzip and plain text read differently");
    check(!plain_ok || static_cast<std::int64_t>(plain.pairs.size()) == auto_pairs,
          "gzip and plain text give different pairs");
  }
  return 0;
}
