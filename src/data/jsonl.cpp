// Streaming JSON Lines reader over zlib's gz* interface, which reads gzip and
// plain files alike.
#include "openrm/data/jsonl.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "io/json_util.h"

namespace openrm {

namespace {

constexpr std::size_t kBufferBytes = std::size_t{256} << 10;
constexpr const char kBom[] = "\xEF\xBB\xBF";

bool is_blank(const std::string& line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// zlib's gzerror() text is "<path>: <message>"; keep the message.
std::string zlib_message(const char* text) {
  std::string message = text ? text : "";
  std::size_t colon = message.rfind(": ");
  if (colon != std::string::npos) message.erase(0, colon + 2);
  return message;
}

}  // namespace

struct JsonlReader::GzFile {
  gzFile file = nullptr;
  ~GzFile() {
    if (file != nullptr) gzclose(file);
  }
};

JsonlReader::JsonlReader(const std::string& path, std::size_t max_line_bytes)
    : gz_(std::make_unique<GzFile>()),
      name_(path == "-" ? "<stdin>" : path),
      max_line_bytes_(max_line_bytes == 0 ? kDefaultMaxLineBytes : max_line_bytes),
      buf_(new char[kBufferBytes]) {
  if (path == "-") {
    int fd = dup(STDIN_FILENO);  // gzclose closes the descriptor; keep stdin open
    if (fd < 0) throw Error(name_ + ": cannot read stdin: " + std::strerror(errno));
    gz_->file = gzdopen(fd, "rb");
    if (gz_->file == nullptr) {
      close(fd);
      throw Error(name_ + ": cannot read stdin");
    }
  } else {
    struct stat info {};
    if (path.empty()) throw Error("cannot open a JSONL file with an empty path");
    if (stat(path.c_str(), &info) != 0) {
      throw Error(path + ": cannot open: " + std::strerror(errno));
    }
    if (S_ISDIR(info.st_mode)) throw Error(path + ": is a folder, expected a .jsonl file");
    errno = 0;
    gz_->file = gzopen(path.c_str(), "rb");
    if (gz_->file == nullptr) {
      throw Error(path + ": cannot open: " + (errno != 0 ? std::strerror(errno) : "out of memory"));
    }
  }
  gzbuffer(gz_->file, static_cast<unsigned>(kBufferBytes));
}

JsonlReader::~JsonlReader() = default;

void JsonlReader::fail_stream(const std::string& what) {
  eof_ = true;
  pos_ = end_ = 0;
  throw Error(name_ + ": " + what + " (after line " + std::to_string(line_number_) + ")");
}

bool JsonlReader::fill() {
  if (eof_) return false;
  int n = gzread(gz_->file, buf_.get(), static_cast<unsigned>(kBufferBytes));
  int code = Z_OK;
  const char* text = gzerror(gz_->file, &code);
  if (n < 0 || (n == 0 && code != Z_OK)) {
    if (code == Z_ERRNO) fail_stream(std::string("read error: ") + std::strerror(errno));
    if (code == Z_BUF_ERROR) fail_stream("truncated gzip stream: " + zlib_message(text));
    fail_stream("corrupt gzip data: " + zlib_message(text));
  }
  if (n == 0) {
    eof_ = true;
    return false;
  }
  pos_ = 0;
  end_ = static_cast<std::size_t>(n);
  return true;
}

bool JsonlReader::next(std::string& line) {
  for (;;) {
    line.clear();
    bool any = false;       // a byte or a newline of this line was read
    bool too_long = false;  // over the cap: the rest is consumed, not stored
    for (;;) {
      if (pos_ == end_ && !fill()) break;
      any = true;
      const char* start = buf_.get() + pos_;
      std::size_t available = end_ - pos_;
      const void* newline = std::memchr(start, '\n', available);
      std::size_t n = newline ? static_cast<const char*>(newline) - start : available;
      if (!too_long) {
        if (n > max_line_bytes_ - line.size()) {
          too_long = true;
          std::string().swap(line);
        } else {
          line.append(start, n);
        }
      }
      pos_ += n;
      if (newline != nullptr) {
        ++pos_;
        break;
      }
    }
    if (!any) return false;
    ++line_number_;
    if (too_long) {
      throw RecordError(location() + ": line is longer than " + std::to_string(max_line_bytes_) +
                        " bytes");
    }
    if (line_number_ == 1 && line.compare(0, 3, kBom) == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (is_blank(line)) continue;
    return true;
  }
}

nlohmann::json JsonlReader::parse(const std::string& line) const {
  std::size_t bad = find_invalid_utf8(line);
  if (bad != std::string_view::npos) {
    throw RecordError(location() + ": invalid UTF-8 at byte " + std::to_string(bad + 1));
  }
  detail::JsonParseLimits limits;
  limits.max_depth = 64;
  limits.reject_duplicate_keys = true;
  try {
    return detail::parse_json_checked<nlohmann::json>(line.data(), line.data() + line.size(),
                                                      location(), limits);
  } catch (const RecordError&) {
    throw;
  } catch (const Error& e) {
    throw RecordError(e.what());
  }
}

std::size_t find_invalid_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    unsigned char c = bytes[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length;
    unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;   // no overlong forms
      if (c == 0xED) high = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;   // no overlong forms
      if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (i + 1 >= size || bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (i + k >= size || (bytes[i + k] & 0xC0) != 0x80) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

}  // namespace openrm
