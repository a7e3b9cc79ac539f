// Streaming JSON Lines reader: .jsonl and .jsonl.gz (zlib reads plain files
// transparently), or "-" for stdin, one line at a time in memory proportional
// to the longest line.
#pragma once

#include <openrm/error.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace openrm {

// An error confined to one line (one record): malformed JSON, invalid UTF-8,
// a line over the length cap, a record with a wrong or missing field. Reading
// can go on with the next line; readers with skip_invalid skip these and only
// these. Other openrm::Errors (a missing file, a corrupt gzip stream) end
// the reading.
class RecordError : public Error {
 public:
  using Error::Error;
};

class JsonlReader {
 public:
  static constexpr std::size_t kDefaultMaxLineBytes = std::size_t{64} << 20;  // 64 MiB

  // Opens `path` ("-": stdin, named "<stdin>" in messages); max_line_bytes 0
  // means the default. Throws
  // openrm::Error naming the file when it cannot be opened or is a folder.
  explicit JsonlReader(const std::string& path, std::size_t max_line_bytes = kDefaultMaxLineBytes);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // Reads the next non-blank line into `line`, without its "\n" or "\r\n"
  // (and without a UTF-8 byte-order mark at the start of the file); returns
  // false at the end of the input. Lines of only spaces, tabs and '\r' are
  // skipped but counted. Throws
  //  - RecordError "FILE:LINE: line is longer than N bytes" for a line over the
  //    cap; the line is consumed (without being stored), so the next call
  //    goes on with the line after it;
  //  - openrm::Error "FILE: truncated gzip stream ..." / "corrupt gzip data" /
  //    "read error" when the input itself is broken (not recoverable).
  bool next(std::string& line);

  // Validates UTF-8 and parses one line as JSON (nesting at most 64 levels,
  // no key twice in one object). Throws RecordError
  // "FILE:LINE: invalid UTF-8 at byte N" (N 1-based within the line) or
  // "FILE:LINE: malformed JSON: <detail>", with LINE the last line next()
  // returned.
  nlohmann::json parse(const std::string& line) const;

  // 1-based number of the line next() returned (or threw for) last; 0 before
  // the first call. After next() returned false it equals lines_read().
  std::int64_t line_number() const { return line_number_; }
  // Lines consumed so far, blank ones included.
  std::int64_t lines_read() const { return line_number_; }
  // The path as given, or "<stdin>".
  const std::string& name() const { return name_; }
  // "FILE:LINE" for the line next() returned last.
  std::string location() const { return name_ + ":" + std::to_string(line_number_); }

 private:
  bool fill();  // refills buf_; false at the end of the input
  [[noreturn]] void fail_stream(const std::string& what);

  struct GzFile;
  std::unique_ptr<GzFile> gz_;
  std::string name_;
  std::size_t max_line_bytes_;
  std::unique_ptr<char[]> buf_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
  std::int64_t line_number_ = 0;
};

// Offset (0-based) of the first byte of `text` that is not part of a valid
// UTF-8 sequence (overlong forms, surrogates and code points above U+10FFFF
// are invalid), or std::string_view::npos when all of it is valid.
std::size_t find_invalid_utf8(std::string_view text);

}  // namespace openrm
