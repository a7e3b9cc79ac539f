// The tokenizer.json backend; see hf_tokenizer.h and docs/tokenizers.md.
//
// The pipeline, as tokenizers runs it for one text:
//   1. split the raw text on the added tokens that are not "normalized";
//   2. normalize every other chunk, and split it on the "normalized" added
//      tokens;
//   3. pre-tokenize the remaining chunks into words;
//   4. the model (BPE, WordPiece, WordLevel) turns each word into ids;
//   5. the post-processor adds the special tokens around the ids.
// Offsets are not needed for ids, so text travels as plain strings; the one
// place tokenizers consults them (Metaspace's prepend_scheme "first": "does
// this piece start at the beginning of the original text?") is a flag on
// each piece.
#include "tokenizer/hf_tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "openrm/error.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace openrm::detail {
namespace {

using json = nlohmann::json;

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

// ---- reading the JSON ------------------------------------------------------------

// A JSON value and the path to it, for messages:
// "/m/tokenizer.json: pre_tokenizer.pretokenizers[1].behavior".
struct At {
  const json& value;
  std::string where;

  At field(const char* key) const {
    static const json kNull;
    auto it = value.find(key);
    return {it == value.end() ? kNull : *it, where + "." + key};
  }
  At item(std::size_t i) const { return {value[i], where + "[" + std::to_string(i) + "]"}; }
  bool present() const { return !value.is_null(); }

  [[noreturn]] void fail(const std::string& what) const { throw Error(where + ": " + what); }
  std::string type_name() const { return value.type_name(); }

  const json& object() const {
    if (!value.is_object()) fail("expected an object, got " + type_name());
    return value;
  }
  const json& array() const {
    if (!value.is_array()) fail("expected a list, got " + type_name());
    return value;
  }
  std::string string() const {
    if (!value.is_string()) fail("expected a string, got " + type_name());
    return value.get<std::string>();
  }
  std::string string_or(const std::string& fallback) const {
    return present() ? string() : fallback;
  }
  bool boolean_or(bool fallback) const {
    if (!present()) return fallback;
    if (!value.is_boolean()) fail("expected true or false, got " + type_name());
    return value.get<bool>();
  }
  std::int64_t integer(std::int64_t min, std::int64_t max) const {
    if (!value.is_number_integer()) fail("expected an integer, got " + type_name());
    auto v = value.get<std::int64_t>();
    if (v < min || v > max) {
      fail("expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
           ", got " + std::to_string(v));
    }
    return v;
  }
  TokenId token_id() const {
    return static_cast<TokenId>(integer(0, std::numeric_limits<TokenId>::max()));
  }
  // One character ("▁").
  std::string character() const {
    std::string s = string();
    std::size_t len = 0;
    if (s.empty() || unicode::decode(s, 0, &len) == unicode::kInvalid || len != s.size()) {
      fail("expected one character, got " + in_quotes(s));
    }
    return s;
  }
  std::string type() const {
    object();
    return field("type").string();
  }
};

[[noreturn]] void unsupported(const At& at, const std::string& kind, const std::string& type) {
  throw UnsupportedTokenizerComponent(at.where + ": the " + kind + " type " + in_quotes(type) +
                                      " is not implemented by openrm (docs/tokenizers.md lists the ones that are)");
}

// ---- splitting -------------------------------------------------------------------

// A piece of text on its way through the pipeline. `at_start`: it begins at
// the first byte of the text given to encode().
struct Piece {
  std::string text;
  bool at_start = false;
};

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior read_behavior(const At& at) {
  std::string name = at.string();
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  at.fail("unknown split behavior " + in_quotes(name) +
          " (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

using Range = std::pair<std::size_t, std::size_t>;
struct Span {
  Range range;
  bool match;
};

// `matches` (sorted, non-overlapping) as spans covering all of [0, size).
std::vector<Span> spans_of(const std::vector<Range>& matches, std::size_t size) {
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  std::size_t prev = 0;
  for (const Range& m : matches) {
    if (prev < m.first) spans.push_back({{prev, m.first}, false});
    spans.push_back({m, true});
    prev = m.second;
  }
  if (prev < size) spans.push_back({{prev, size}, false});
  return spans;
}

// Splits `piece` as tokenizers' NormalizedString::split does with `behavior`;
// appends the non-empty parts to `out`.
void split_piece(const Piece& piece, const std::vector<Span>& spans, Behavior behavior,
                 std::vector<Piece>& out) {
  std::vector<Span> parts;  // .match here means "remove"
  parts.reserve(spans.size());
  switch (behavior) {
    case Behavior::kIsolated:
      for (const Span& s : spans) parts.push_back({s.range, false});
      break;
    case Behavior::kRemoved: parts = spans; break;
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match == previous_match && !parts.empty()) {
          parts.back().range.second = s.range.second;
        } else {
          parts.push_back({s.range, false});
        }
        previous_match = s.match;
      }
      break;
    }
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.match && !previous_match && !parts.empty()) {
          parts.back().range.second = s.range.second;
        } else {
          parts.push_back({s.range, false});
        }
        previous_match = s.match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !parts.empty()) {
          parts.back().range.first = it->range.first;
        } else {
          parts.push_back({it->range, false});
        }
        previous_match = it->match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    }
  }
  for (const Span& part : parts) {
    if (part.match || part.range.first == part.range.second) continue;
    out.push_back({piece.text.substr(part.range.first, part.range.second - part.range.first),
                   piece.at_start && part.range.first == 0});
  }
}

// What to split on: a literal string or a regular expression.
class Pattern {
 public:
  static std::unique_ptr<Pattern> read(const At& at) {
    auto pattern = std::make_unique<Pattern>();
    at.object();
    At string = at.field("String");
    At regex = at.field("Regex");
    if (string.present() == regex.present()) {
      at.fail("expected {\"String\": ...} or {\"Regex\": ...}");
    }
    if (string.present()) {
      pattern->literal_ = string.string();
    } else {
      pattern->regex_ = std::make_unique<Regex>(regex.string(), regex.where);
    }
    return pattern;
  }
  void find(std::string_view text, std::vector<Range>& out) const {
    if (regex_) {
      regex_->find_all(text, out);
      return;
    }
    if (literal_.empty()) return;
    std::size_t pos = 0;
    while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
      out.emplace_back(pos, pos + literal_.size());
      pos += literal_.size();
    }
  }
  // Replaces every match with `content`.
  std::string replace(std::string_view text, std::string_view content) const {
    std::vector<Range> matches;
    find(text, matches);
    if (matches.empty()) return std::string(text);
    std::string out;
    out.reserve(text.size());
    std::size_t prev = 0;
    for (const Range& m : matches) {
      out.append(text.substr(prev, m.first - prev)).append(content);
      prev = m.second;
    }
    out.append(text.substr(prev));
    return out;
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// Spans of the characters for which `test` holds, one span per character.
template <typename Test>
std::vector<Span> char_spans(std::string_view text, const Test& test) {
  std::vector<Range> matches;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t len;
    std::uint32_t c = unicode::decode(text, pos, &len);
    if (test(c)) matches.emplace_back(pos, pos + len);
    pos += len;
  }
  return spans_of(matches, text.size());
}

// ---- the byte-level alphabet -----------------------------------------------------

// GPT-2's reversible map of the 256 byte values onto printable characters.
struct ByteAlphabet {
  std::array<std::string, 256> to_char;               // byte -> UTF-8 of its character
  std::unordered_map<std::uint32_t, unsigned char> to_byte;  // character -> byte
  ByteAlphabet() {
    std::uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      std::uint32_t c = printable ? static_cast<std::uint32_t>(b) : next++;
      unicode::append_utf8(to_char[b], c);
      to_byte[c] = static_cast<unsigned char>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

std::string to_byte_level(std::string_view text) {
  const ByteAlphabet& alphabet = byte_alphabet();
  std::string out;
  out.reserve(text.size() * 2);
  for (char ch : text) out += alphabet.to_char[static_cast<unsigned char>(ch)];
  return out;
}

// Rust's String::from_utf8_lossy: each maximal ill-formed subsequence becomes
// one U+FFFD.
std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::size_t len;
    if (unicode::decode(bytes, pos, &len) != unicode::kInvalid) {
      out.append(bytes.substr(pos, len));
      pos += len;
      continue;
    }
    // The longest prefix that could still begin a valid sequence.
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
    const unsigned char lead = b(pos);
    std::size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      need = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      need = 2;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      need = 3;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    }
    std::size_t consumed = 1;
    for (std::size_t i = 0; i < need && pos + consumed < bytes.size(); ++i) {
      unsigned char c = b(pos + consumed);
      unsigned char l = i == 0 ? lo : 0x80, h = i == 0 ? hi : 0xBF;
      if (c < l || c > h) break;
      ++consumed;
    }
    out += "\xEF\xBF\xBD";
    pos += consumed;
  }
  return out;
}

// A "Sequence" component: its steps in order.
template <typename Base>
class Sequence final : public Base {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Base>> steps) : steps_(std::move(steps)) {}
  void apply(typename Base::Value& value) const override {
    for (const auto& step : steps_) step->apply(value);
  }

 private:
  std::vector<std::unique_ptr<Base>> steps_;
};

// Reads the list under `key` of a Sequence component with `read`, one step
// per entry (null entries skipped).
template <typename Base, typename Read>
std::unique_ptr<Base> read_sequence(const At& at, const char* key, Read read) {
  At list = at.field(key);
  list.array();
  std::vector<std::unique_ptr<Base>> steps;
  for (std::size_t i = 0; i < list.value.size(); ++i) {
    if (auto step = read(list.item(i))) steps.push_back(std::move(step));
  }
  return std::make_unique<Sequence<Base>>(std::move(steps));
}

// ---- normalizers -----------------------------------------------------------------

class Normalizer {
 public:
  using Value = std::string;
  virtual ~Normalizer() = default;
  virtual void apply(std::string& text) const = 0;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  void apply(std::string& text) const override { text = unicode::normalize(text, form_); }

 private:
  unicode::NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void apply(std::string& text) const override { text = unicode::lowercase(text); }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void apply(std::string& text) const override {
    std::size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        std::size_t len;
        std::uint32_t c = unicode::decode(text, begin, &len);
        if (!unicode::is_white_space(c)) break;
        begin += len;
      }
    }
    if (right_) {
      while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        std::size_t len;
        if (!unicode::is_white_space(unicode::decode(text, start, &len))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

// Drops marks: every mark for tokenizers' StripAccents, the non-spacing
// ones (Mn) for BertNormalizer's accent stripping.
class StripAccentsNormalizer final : public Normalizer {
 public:
  explicit StripAccentsNormalizer(bool all_marks) : all_marks_(all_marks) {}
  void apply(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t len;
      std::uint32_t c = unicode::decode(text, pos, &len);
      const bool mark = all_marks_ ? unicode::is_mark(c) : unicode::is_nonspacing_mark(c);
      if (!mark) out.append(text, pos, len);
      pos += len;
    }
    text = std::move(out);
  }

 private:
  bool all_marks_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void apply(std::string& text) const override { text = pattern_->replace(text, content_); }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void apply(std::string& text) const override { text = to_byte_level(text); }
};

// BERT's: control characters dropped and whitespace made " ", CJK ideographs
// padded with spaces, accents stripped (after NFD), lowercase.
class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, bool strip_accents, bool lowercase)
      : clean_text_(clean_text), chinese_(chinese), strip_accents_(strip_accents),
        lowercase_(lowercase) {}
  void apply(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t len;
      std::uint32_t c = unicode::decode(text, pos, &len);
      pos += len;
      if (clean_text_) {
        if (c == 0 || c == 0xFFFD || unicode::is_control(c)) continue;
        if (unicode::is_white_space(c)) c = ' ';
      }
      if (chinese_ && unicode::is_cjk(c)) {
        out += ' ';
        unicode::append_utf8(out, c);
        out += ' ';
      } else {
        unicode::append_utf8(out, c);
      }
    }
    if (strip_accents_) {
      out = unicode::normalize(out, unicode::NormalForm::kNFD);
      StripAccentsNormalizer(/*all_marks=*/false).apply(out);
    }
    if (lowercase_) out = unicode::lowercase(out);
    text = std::move(out);
  }

 private:
  bool clean_text_, chinese_, strip_accents_, lowercase_;
};

using SequenceNormalizer = Sequence<Normalizer>;

std::unique_ptr<Normalizer> read_normalizer(const At& at) {
  if (!at.present()) return nullptr;
  const std::string type = at.type();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::kNFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>(/*all_marks=*/true);
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(at.field("strip_left").boolean_or(true),
                                             at.field("strip_right").boolean_or(true));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(Pattern::read(at.field("pattern")),
                                               at.field("content").string());
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(at.field("prepend").string());
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "BertNormalizer") {
    bool lowercase = at.field("lowercase").boolean_or(true);
    At strip = at.field("strip_accents");
    bool strip_accents = strip.present() ? strip.boolean_or(false) : lowercase;
    return std::make_unique<BertNormalizer>(at.field("clean_text").boolean_or(true),
                                            at.field("handle_chinese_chars").boolean_or(true),
                                            strip_accents, lowercase);
  }
  if (type == "Sequence") return read_sequence<Normalizer>(at, "normalizers", read_normalizer);
  unsupported(at, "normalizer", type);
}

// ---- pre-tokenizers --------------------------------------------------------------

class PreTokenizer {
 public:
  using Value = std::vector<Piece>;
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` with their parts.
  virtual void apply(std::vector<Piece>& pieces) const = 0;
};

// GPT-2's word pattern, which ByteLevel uses when use_regex is set.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, where + " (GPT-2's pattern)");
  }
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<Range> matches;
    for (Piece& piece : pieces) {
      if (add_prefix_space_ && (piece.text.empty() || piece.text[0] != ' ')) {
        piece.text.insert(0, " ");
      }
      if (!regex_) {
        if (!piece.text.empty()) out.push_back(std::move(piece));
        continue;
      }
      matches.clear();
      regex_->find_all(piece.text, matches);
      split_piece(piece, spans_of(matches, piece.text.size()), Behavior::kIsolated, out);
    }
    for (Piece& piece : out) piece.text = to_byte_level(piece.text);
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Pattern> pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<Range> matches;
    for (const Piece& piece : pieces) {
      matches.clear();
      pattern_->find(piece.text, matches);
      std::vector<Span> spans = spans_of(matches, piece.text.size());
      if (invert_) {
        for (Span& s : spans) s.match = !s.match;
      }
      split_piece(piece, spans, behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  Behavior behavior_;
  bool invert_;
};

// Splits on characters that pass a test (whitespace, punctuation, digits, a
// delimiter).
template <typename Test>
class CharSplitPreTokenizer final : public PreTokenizer {
 public:
  CharSplitPreTokenizer(Test test, Behavior behavior) : test_(test), behavior_(behavior) {}
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    for (const Piece& piece : pieces) split_piece(piece, char_spans(piece.text, test_), behavior_, out);
    pieces = std::move(out);
  }

 private:
  Test test_;
  Behavior behavior_;
};

template <typename Test>
std::unique_ptr<PreTokenizer> char_split(Test test, Behavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Test>>(test, behavior);
}

enum class PrependScheme { kAlways, kFirst, kNever };

PrependScheme read_prepend_scheme(const At& at) {
  // Older files say add_prefix_space instead.
  At scheme = at.field("prepend_scheme");
  if (!scheme.present()) {
    return at.field("add_prefix_space").boolean_or(true) ? PrependScheme::kAlways
                                                          : PrependScheme::kNever;
  }
  std::string name = scheme.string();
  if (name == "always") return PrependScheme::kAlways;
  if (name == "first") return PrependScheme::kFirst;
  if (name == "never") return PrependScheme::kNever;
  scheme.fail("unknown prepend_scheme " + in_quotes(name) + " (expected always, first or never)");
}

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void apply(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<Range> matches;
    for (Piece& piece : pieces) {
      std::string text;
      text.reserve(piece.text.size() + replacement_.size());
      for (char ch : piece.text) {
        if (ch == ' ') {
          text += replacement_;
        } else {
          text += ch;
        }
      }
      const bool starts = text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways ||
                      (scheme_ == PrependScheme::kFirst && piece.at_start))) {
        text.insert(0, replacement_);
      }
      Piece replaced{std::move(text), piece.at_start};
      if (!split_) {
        if (!replaced.text.empty()) out.push_back(std::move(replaced));
        continue;
      }
      matches.clear();
      std::size_t pos = 0;
      while ((pos = replaced.text.find(replacement_, pos)) != std::string::npos) {
        matches.emplace_back(pos, pos + replacement_.size());
        pos += replacement_.size();
      }
      split_piece(replaced, spans_of(matches, replaced.text.size()), Behavior::kMergedWithNext,
                  out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

using SequencePreTokenizer = Sequence<PreTokenizer>;

std::unique_ptr<PreTokenizer> read_pre_tokenizer(const At& at) {
  if (!at.present()) return nullptr;
  const std::string type = at.type();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(at.field("add_prefix_space").boolean_or(true),
                                                   at.field("use_regex").boolean_or(true),
                                                   at.where);
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(Pattern::read(at.field("pattern")),
                                               read_behavior(at.field("behavior")),
                                               at.field("invert").boolean_or(false));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(at.field("replacement").character(),
                                                   read_prepend_scheme(at),
                                                   at.field("split").boolean_or(true));
  }
  if (type == "Whitespace") {
    // \w+|[^\w\s]+, keeping the matches.
    auto pattern = std::make_unique<Regex>(R"(\w+|[^\w\s]+)", at.where + " (its pattern)");
    struct Holder final : PreTokenizer {
      std::unique_ptr<Regex> regex;
      void apply(std::vector<Piece>& pieces) const override {
        std::vector<Piece> out;
        std::vector<Range> matches;
        for (const Piece& piece : pieces) {
          matches.clear();
          regex->find_all(piece.text, matches);
          std::vector<Span> spans = spans_of(matches, piece.text.size());
          for (Span& s : spans) s.match = !s.match;
          split_piece(piece, spans, Behavior::kRemoved, out);
        }
        pieces = std::move(out);
      }
    };
    auto holder = std::make_unique<Holder>();
    holder->regex = std::move(pattern);
    return holder;
  }
  if (type == "WhitespaceSplit") {
    return char_split([](std::uint32_t c) { return unicode::is_white_space(c); }, Behavior::kRemoved);
  }
  if (type == "Punctuation") {
    At behavior = at.field("behavior");
    return char_split([](std::uint32_t c) { return unicode::is_punctuation(c); },
                      behavior.present() ? read_behavior(behavior) : Behavior::kIsolated);
  }
  if (type == "Digits") {
    if (at.field("individual_digits").boolean_or(false)) {
      return char_split([](std::uint32_t c) { return unicode::is_numeric(c); }, Behavior::kIsolated);
    }
    return char_split([](std::uint32_t c) { return unicode::is_numeric(c); }, Behavior::kContiguous);
  }
  if (type == "CharDelimiterSplit") {
    std::string delimiter = at.field("delimiter").character();
    std::size_t len;
    std::uint32_t d = unicode::decode(delimiter, 0, &len);
    return char_split([d](std::uint32_t c) { return c == d; }, Behavior::kRemoved);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(
        char_split([](std::uint32_t c) { return unicode::is_white_space(c); }, Behavior::kRemoved));
    steps.push_back(
        char_split([](std::uint32_t c) { return unicode::is_punctuation(c); }, Behavior::kIsolated));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Sequence") return read_sequence<PreTokenizer>(at, "pretokenizers", read_pre_tokenizer);
  unsupported(at, "pre-tokenizer", type);
}

// ---- models ----------------------------------------------------------------------

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized word (non-empty).
  virtual void tokenize(std::string_view word, std::vector<TokenId>& out) const = 0;
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  // Empty when no token has the id.
  virtual const std::string* id_to_token(TokenId id) const = 0;
  // The largest id + 1.
  virtual TokenId end_id() const = 0;
  virtual std::optional<std::string> unk_token() const = 0;
};

// token -> id, and id -> token, from a tokenizer.json "vocab" object.
struct Vocabulary {
  std::unordered_map<std::string, TokenId> ids;
  std::vector<std::string> tokens;  // by id ("" where no token has the id)
  std::vector<bool> present;
  TokenId end = 0;

  void read(const At& at) {
    at.object();
    ids.reserve(at.value.size());
    for (auto it = at.value.begin(); it != at.value.end(); ++it) {
      At entry{it.value(), at.where + "[" + in_quotes(it.key()) + "]"};
      TokenId id = entry.token_id();
      if (id >= end) end = id + 1;
      ids.emplace(it.key(), id);
    }
    if (static_cast<std::size_t>(end) > ids.size() * 4 + 1024) {
      at.fail("the ids go up to " + std::to_string(end - 1) + " for " +
              std::to_string(ids.size()) + " tokens");
    }
    tokens.assign(static_cast<std::size_t>(end), std::string());
    present.assign(static_cast<std::size_t>(end), false);
    for (const auto& [token, id] : ids) {
      if (present[id]) {
        at.fail("id " + std::to_string(id) + " is given to both " + in_quotes(tokens[id]) +
                " and " + in_quotes(token));
      }
      tokens[id] = token;
      present[id] = true;
    }
  }
  std::optional<TokenId> find(std::string_view token) const {
    auto it = ids.find(std::string(token));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(TokenId id) const {
    if (id < 0 || id >= end || !present[id]) return nullptr;
    return &tokens[id];
  }
};

std::optional<std::string> optional_string(const At& at) {
  if (!at.present()) return std::nullopt;
  return at.string();
}

// Words seen before and their ids, shared by the threads that encode.
class WordCache {
 public:
  bool get(std::string_view word, std::vector<TokenId>& out) const {
    const Shard& shard = shard_for(word);
    thread_local std::string key;
    key.assign(word.data(), word.size());
    std::shared_lock lock(shard.mutex);
    auto it = shard.map.find(key);
    if (it == shard.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view word, const TokenId* ids, std::size_t count) const {
    if (word.size() > kMaxWordBytes) return;
    Shard& shard = shard_for(word);
    std::unique_lock lock(shard.mutex);
    if (shard.map.size() >= kShardCapacity) return;  // full: stays as it is, as tokenizers' cache
    shard.map.emplace(std::string(word), std::vector<TokenId>(ids, ids + count));
  }

 private:
  static constexpr std::size_t kShards = 32;
  static constexpr std::size_t kShardCapacity = 4096;
  static constexpr std::size_t kMaxWordBytes = 256;
  struct Shard {
    mutable std::shared_mutex mutex;
    std::unordered_map<std::string, std::vector<TokenId>> map;
  };
  Shard& shard_for(std::string_view word) const {
    return shards_[std::hash<std::string_view>()(word) % kShards];
  }
  mutable std::array<Shard, kShards> shards_;
};

class BpeModel final : public Model {
 public:
  explicit BpeModel(const At& at) {
    vocab_.read(at.field("vocab"));
    At dropout = at.field("dropout");
    if (dropout.present() && !(dropout.value.is_number() && dropout.value.get<double>() == 0.0)) {
      dropout.fail("BPE dropout is random at every call; openrm encodes deterministically and "
                   "does not implement it");
    }
    unk_token_ = optional_string(at.field("unk_token"));
    prefix_ = at.field("continuing_subword_prefix").string_or("");
    suffix_ = at.field("end_of_word_suffix").string_or("");
    fuse_unk_ = at.field("fuse_unk").boolean_or(false);
    byte_fallback_ = at.field("byte_fallback").boolean_or(false);
    ignore_merges_ = at.field("ignore_merges").boolean_or(false);
    if (unk_token_) {
      if (auto id = vocab_.find(*unk_token_)) unk_id_ = *id;
    }
    if (byte_fallback_) {
      char name[8];
      for (int b = 0; b < 256; ++b) {
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        if (auto id = vocab_.find(name)) byte_ids_[b] = *id;
      }
    }
    // Single characters, looked up without building strings.
    if (prefix_.empty() && suffix_.empty()) {
      for (const auto& [token, id] : vocab_.ids) {
        std::size_t len;
        if (token.empty()) continue;
        std::uint32_t c = unicode::decode(token, 0, &len);
        if (c != unicode::kInvalid && len == token.size()) char_ids_.emplace(c, id);
      }
    }
    read_merges(at.field("merges"));
  }

  void tokenize(std::string_view word, std::vector<TokenId>& out) const override {
    if (ignore_merges_) {
      if (auto id = vocab_.find(word)) {
        out.push_back(*id);
        return;
      }
    }
    if (cache_.get(word, out)) return;
    const std::size_t before = out.size();
    merge_word(word, out);
    cache_.put(word, out.data() + before, out.size() - before);
  }
  std::optional<TokenId> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(TokenId id) const override { return vocab_.token(id); }
  TokenId end_id() const override { return vocab_.end; }
  std::optional<std::string> unk_token() const override { return unk_token_; }

 private:
  void read_merges(const At& at) {
    if (!at.present()) return;
    at.array();
    merges_.reserve(at.value.size());
    for (std::size_t i = 0; i < at.value.size(); ++i) {
      At entry = at.item(i);
      std::string left, right;
      if (entry.value.is_string()) {
        // "left right": the older form; the split is at the first space
        // after the first character.
        std::string text = entry.string();
        std::size_t space = text.find(' ', 1);
        if (space == std::string::npos) entry.fail("expected \"left right\", got " + in_quotes(text));
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else if (entry.value.is_array() && entry.value.size() == 2) {
        left = entry.item(0).string();
        right = entry.item(1).string();
      } else {
        entry.fail("expected \"left right\" or [left, right], got " + entry.type_name());
      }
      auto l = vocab_.find(left);
      auto r = vocab_.find(right);
      if (!l) entry.fail("the merge's left part " + in_quotes(left) + " is not in the vocab");
      if (!r) entry.fail("the merge's right part " + in_quotes(right) + " is not in the vocab");
      // As tokenizers: the prefix length is cut from the right part.
      std::string merged = left + right.substr(std::min(prefix_.size(), right.size()));
      auto m = vocab_.find(merged);
      if (!m) entry.fail("the merged token " + in_quotes(merged) + " is not in the vocab");
      // A pair listed twice keeps its last rank, as in tokenizers.
      merges_[key(*l, *r)] = std::make_pair(static_cast<std::uint32_t>(i), *m);
    }
  }

  static std::uint64_t key(TokenId left, TokenId right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }

  struct Symbol {
    TokenId id;
    int prev;
    int next;
    bool alive;
  };

  // The symbols of a word before any merge: its characters (with the
  // subword prefix and word suffix where the model has them), bytes for
  // characters outside the vocab when byte_fallback is on, else the unknown
  // token (consecutive ones fused when fuse_unk is on).
  void initial_symbols(std::string_view word, std::vector<TokenId>& ids) const {
    bool pending_unk = false;
    std::string scratch;
    std::size_t pos = 0;
    while (pos < word.size()) {
      std::size_t len;
      std::uint32_t c = unicode::decode(word, pos, &len);
      const bool first = pos == 0;
      const bool last = pos + len == word.size();
      std::optional<TokenId> id;
      if (prefix_.empty() && suffix_.empty()) {
        auto it = char_ids_.find(c);
        if (it != char_ids_.end()) id = it->second;
      } else {
        scratch.clear();
        if (!first) scratch += prefix_;
        scratch.append(word.substr(pos, len));
        if (last) scratch += suffix_;
        id = vocab_.find(scratch);
      }
      if (id) {
        if (pending_unk) ids.push_back(unk_id_);
        pending_unk = false;
        ids.push_back(*id);
        pos += len;
        continue;
      }
      if (byte_fallback_) {
        // Every byte of the (prefixed) character must have its <0xXX> token.
        std::string bytes = (prefix_.empty() && suffix_.empty()) ? std::string(word.substr(pos, len))
                                                                 : scratch;
        bool all = true;
        for (char b : bytes) all = all && byte_ids_[static_cast<unsigned char>(b)] >= 0;
        if (all) {
          if (pending_unk) ids.push_back(unk_id_);
          pending_unk = false;
          for (char b : bytes) ids.push_back(byte_ids_[static_cast<unsigned char>(b)]);
          pos += len;
          continue;
        }
      }
      if (unk_token_) {
        if (unk_id_ < 0) {
          throw Error("the unknown token " + in_quotes(*unk_token_) +
                      " of the BPE model is not in its vocab");
        }
        if (pending_unk && !fuse_unk_) ids.push_back(unk_id_);
        pending_unk = true;
      }
      // Without an unknown token the character is dropped, as in tokenizers.
      pos += len;
    }
    if (pending_unk) ids.push_back(unk_id_);
  }

  void merge_word(std::string_view word, std::vector<TokenId>& out) const {
    std::vector<TokenId> ids;
    ids.reserve(word.size());
    initial_symbols(word, ids);
    const int n = static_cast<int>(ids.size());
    if (n <= 1 || merges_.empty()) {
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
    std::vector<Symbol> symbols(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) symbols[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, true};
    // (rank, position, new id), lowest rank first, then leftmost.
    struct Candidate {
      std::uint32_t rank;
      int pos;
      TokenId new_id;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
    auto consider = [&](int left) {
      int right = symbols[left].next;
      if (right < 0) return;
      auto it = merges_.find(key(symbols[left].id, symbols[right].id));
      if (it != merges_.end()) queue.push({it->second.first, left, it->second.second});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!queue.empty()) {
      Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      auto it = merges_.find(key(left.id, right.id));
      if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (left.prev >= 0) consider(left.prev);
      consider(top.pos);
    }
    for (int i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  }

  Vocabulary vocab_;
  std::unordered_map<std::uint64_t, std::pair<std::uint32_t, TokenId>> merges_;
  std::unordered_map<std::uint32_t, TokenId> char_ids_;
  std::array<TokenId, 256> byte_ids_ = [] {
    std::array<TokenId, 256> a{};
    a.fill(-1);
    return a;
  }();
  std::optional<std::string> unk_token_;
  TokenId unk_id_ = -1;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  WordCache cache_;
};

// Greedy longest-match-first word pieces, BERT style.
class WordPieceModel final : public Model {
 public:
  explicit WordPieceModel(const At& at) {
    vocab_.read(at.field("vocab"));
    unk_token_ = at.field("unk_token").string_or("[UNK]");
    prefix_ = at.field("continuing_subword_prefix").string_or("##");
    At max = at.field("max_input_chars_per_word");
    max_chars_ = max.present() ? static_cast<std::size_t>(max.integer(0, 1 << 30)) : 100;
    auto unk = vocab_.find(unk_token_);
    if (!unk) at.field("unk_token").fail("the unknown token " + in_quotes(unk_token_) + " is not in the vocab");
    unk_id_ = *unk;
  }
  void tokenize(std::string_view word, std::vector<TokenId>& out) const override {
    std::vector<std::size_t> starts;  // character boundaries
    for (std::size_t pos = 0; pos < word.size();) {
      starts.push_back(pos);
      std::size_t len;
      unicode::decode(word, pos, &len);
      pos += len;
    }
    if (starts.size() > max_chars_) {
      out.push_back(unk_id_);
      return;
    }
    starts.push_back(word.size());
    std::vector<TokenId> ids;
    std::size_t begin = 0;  // index into starts
    std::string candidate;
    while (begin + 1 < starts.size()) {
      std::optional<TokenId> found;
      std::size_t end = starts.size() - 1;
      for (; end > begin; --end) {
        candidate.clear();
        if (begin > 0) candidate += prefix_;
        candidate.append(word.substr(starts[begin], starts[end] - starts[begin]));
        if ((found = vocab_.find(candidate))) break;
      }
      if (!found) {
        out.push_back(unk_id_);
        return;
      }
      ids.push_back(*found);
      begin = end;
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }
  std::optional<TokenId> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(TokenId id) const override { return vocab_.token(id); }
  TokenId end_id() const override { return vocab_.end; }
  std::optional<std::string> unk_token() const override { return unk_token_; }

 private:
  Vocabulary vocab_;
  std::string unk_token_, prefix_;
  std::size_t max_chars_ = 100;
  TokenId unk_id_ = -1;
};

class WordLevelModel final : public Model {
 public:
  explicit WordLevelModel(const At& at) {
    vocab_.read(at.field("vocab"));
    unk_token_ = optional_string(at.field("unk_token"));
    if (unk_token_) {
      auto unk = vocab_.find(*unk_token_);
      if (!unk) at.field("unk_token").fail("the unknown token " + in_quotes(*unk_token_) + " is not in the vocab");
      unk_id_ = *unk;
    }
  }
  void tokenize(std::string_view word, std::vector<TokenId>& out) const override {
    if (auto id = vocab_.find(word)) {
      out.push_back(*id);
    } else if (unk_id_ >= 0) {
      out.push_back(unk_id_);
    } else {
      throw Error("the word " + in_quotes(word) +
                  " is not in the WordLevel vocab, which has no unknown token");
    }
  }
  std::optional<TokenId> token_to_id(std::string_view token) const override {
    return vocab_.find(token);
  }
  const std::string* id_to_token(TokenId id) const override { return vocab_.token(id); }
  TokenId end_id() const override { return vocab_.end; }
  std::optional<std::string> unk_token() const override { return unk_token_; }

 private:
  Vocabulary vocab_;
  std::optional<std::string> unk_token_;
  TokenId unk_id_ = -1;
};

std::unique_ptr<Model> read_model(const At& at) {
  at.object();
  At type_at = at.field("type");
  std::string type;
  if (type_at.present()) {
    type = type_at.string();
  } else if (at.value.contains("merges")) {
    type = "BPE";  // files older than the "type" field
  } else {
    at.fail("the model has no \"type\"");
  }
  if (type == "BPE") return std::make_unique<BpeModel>(at);
  if (type == "WordPiece") return std::make_unique<WordPieceModel>(at);
  if (type == "WordLevel") return std::make_unique<WordLevelModel>(at);
  unsupported(at, "model", type);
}

// ---- post-processors -------------------------------------------------------------

// What a post-processor adds around a single sequence, and how it lays out
// a pair (empty: as the single rule applied to each text).
struct Around {
  std::vector<TokenId> prefix;
  std::vector<TokenId> suffix;
  std::vector<TemplatePiece> pair;
};

void set_pair(const At& at, Around& around, std::vector<TemplatePiece> pair) {
  if (!around.pair.empty()) {
    at.fail("a second post-processor with a pair template in one Sequence is not implemented by openrm");
  }
  around.pair = std::move(pair);
}

std::pair<std::string, TokenId> read_token_pair(const At& at) {
  at.array();
  if (at.value.size() != 2) at.fail("expected [token, id]");
  return {at.item(0).string(), at.item(1).token_id()};
}

void read_post_processor(const At& at, Around& around) {
  if (!at.present()) return;
  const std::string type = at.type();
  if (type == "ByteLevel") return;  // offsets only
  if (type == "TemplateProcessing") {
    At single = at.field("single");
    single.array();
    At specials = at.field("special_tokens");
    auto ids_of = [&](const At& item, const std::string& name) {
      At entry = specials.field(name.c_str());
      if (!entry.present()) {
        item.fail("the special token " + in_quotes(name) + " is not in special_tokens");
      }
      At ids = entry.field("ids");
      ids.array();
      std::vector<TokenId> out;
      for (std::size_t i = 0; i < ids.value.size(); ++i) out.push_back(ids.item(i).token_id());
      return out;
    };
    std::vector<TokenId> prefix, suffix;
    bool seen_sequence = false;
    for (std::size_t i = 0; i < single.value.size(); ++i) {
      At item = single.item(i);
      item.object();
      At special = item.field("SpecialToken");
      At sequence = item.field("Sequence");
      if (special.present()) {
        auto ids = ids_of(item, special.field("id").string());
        auto& target = seen_sequence ? suffix : prefix;
        target.insert(target.end(), ids.begin(), ids.end());
      } else if (sequence.present()) {
        std::string id = sequence.field("id").string();
        if (id != "A") item.fail("a single-sequence template can only hold sequence A, not " + id);
        if (seen_sequence) item.fail("sequence A appears twice in the template");
        seen_sequence = true;
      } else {
        item.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
    }
    if (!seen_sequence) single.fail("the template has no sequence A");
    around.prefix.insert(around.prefix.begin(), prefix.begin(), prefix.end());
    around.suffix.insert(around.suffix.end(), suffix.begin(), suffix.end());
    At pair = at.field("pair");
    if (!pair.present()) return;  // the single rule for each text
    pair.array();
    std::vector<TemplatePiece> pieces;
    bool seen_a = false, seen_b = false;
    for (std::size_t i = 0; i < pair.value.size(); ++i) {
      At item = pair.item(i);
      item.object();
      At special = item.field("SpecialToken");
      At sequence = item.field("Sequence");
      if (!special.present() && !sequence.present()) {
        item.fail("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      }
      At type_at = (special.present() ? special : sequence).field("type_id");
      TemplatePiece piece;
      piece.type_id = type_at.present() ? static_cast<int>(type_at.token_id()) : 0;
      if (special.present()) {
        piece.ids = ids_of(item, special.field("id").string());
      } else {
        const std::string id = sequence.field("id").string();
        if (id != "A" && id != "B") item.fail("a pair template holds sequences A and B, not " + id);
        bool& seen = id == "A" ? seen_a : seen_b;
        if (seen) item.fail("sequence " + id + " appears twice in the pair template");
        seen = true;
        piece.kind = id == "A" ? TemplatePiece::Kind::kFirst : TemplatePiece::Kind::kSecond;
      }
      pieces.push_back(std::move(piece));
    }
    if (!seen_a || !seen_b) pair.fail("the pair template must hold sequences A and B");
    set_pair(at, around, std::move(pieces));
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto cls = read_token_pair(at.field("cls"));
    auto sep = read_token_pair(at.field("sep"));
    around.prefix.insert(around.prefix.begin(), cls.second);
    around.suffix.push_back(sep.second);
    if (type == "BertProcessing") {
      set_pair(at, around, bert_pair_template(cls.second, sep.second));
    } else {
      // <s> A </s> </s> B </s>; RoBERTa has no token types (all 0).
      using Kind = TemplatePiece::Kind;
      set_pair(at, around, {{Kind::kTokens, {cls.second}, 0}, {Kind::kFirst, {}, 0},
                            {Kind::kTokens, {sep.second, sep.second}, 0}, {Kind::kSecond, {}, 0},
                            {Kind::kTokens, {sep.second}, 0}});
    }
    return;
  }
  if (type == "Sequence") {
    At list = at.field("processors");
    list.array();
    for (std::size_t i = 0; i < list.value.size(); ++i) read_post_processor(list.item(i), around);
    return;
  }
  unsupported(at, "post-processor", type);
}

// ---- decoders --------------------------------------------------------------------

class Decoder {
 public:
  using Value = std::vector<std::string>;
  virtual ~Decoder() = default;
  virtual void apply(std::vector<std::string>& tokens) const = 0;
};

class ByteLevelDecoder final : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    const ByteAlphabet& alphabet = byte_alphabet();
    std::string bytes;
    for (const std::string& token : tokens) {
      std::string mapped;
      bool all = true;
      std::size_t pos = 0;
      while (pos < token.size()) {
        std::size_t len;
        std::uint32_t c = unicode::decode(token, pos, &len);
        auto it = alphabet.to_byte.find(c);
        if (it == alphabet.to_byte.end()) {
          all = false;
          break;
        }
        mapped += static_cast<char>(it->second);
        pos += len;
      }
      bytes += all ? mapped : token;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      std::size_t pos = 0;
      const std::string& token = tokens[i];
      while (pos < token.size()) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && scheme_ != PrependScheme::kNever)) out += ' ';
          pos += replacement_.size();
        } else {
          out += token[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) token = pattern_->replace(token, content_);
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

// "<0x41>" tokens become their bytes; a run of them that is not valid UTF-8
// becomes one U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string run;
    std::size_t run_length = 0;
    auto flush = [&] {
      if (run_length == 0) return;
      if (unicode::find_invalid_utf8(run) == std::string::npos) {
        out.push_back(run);
      } else {
        for (std::size_t i = 0; i < run_length; ++i) out.push_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_length = 0;
    };
    for (auto& token : tokens) {
      int byte = byte_value(token);
      if (byte >= 0) {
        run += static_cast<char>(byte);
        ++run_length;
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int byte_value(const std::string& token) {
    if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
      char c = token[i];
      int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void apply(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const auto& t : tokens) joined += t;
    tokens.assign(1, std::move(joined));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, std::size_t start, std::size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::size_t begin = 0, end = token.size();
      for (std::size_t i = 0; i < start_ && token.compare(begin, content_.size(), content_) == 0 &&
                              begin + content_.size() <= end;
           ++i) {
        begin += content_.size();
      }
      for (std::size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                              token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  std::size_t start_, stop_;
};

std::string cleanup_spaces(std::string text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},          {" ,", ","},   {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"},
      {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    std::string out;
    std::string_view f(from);
    std::size_t pos = 0, prev = 0;
    while ((pos = text.find(f, prev)) != std::string::npos) {
      out.append(text, prev, pos - prev).append(to);
      prev = pos + f.size();
    }
    out.append(text, prev, std::string::npos);
    text = std::move(out);
  }
  return text;
}

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string& token = tokens[i];
      if (i != 0) {
        if (token.compare(0, prefix_.size(), prefix_) == 0) {
          token.erase(0, prefix_.size());
        } else {
          token.insert(0, " ");
        }
      }
      if (cleanup_) token = cleanup_spaces(std::move(token));
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void apply(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string replacement = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      std::size_t pos = 0, prev = 0;
      while (!suffix_.empty() && (pos = tokens[i].find(suffix_, prev)) != std::string::npos) {
        out.append(tokens[i], prev, pos - prev).append(replacement);
        prev = pos + suffix_.size();
      }
      out.append(tokens[i], prev, std::string::npos);
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string suffix_;
};

using SequenceDecoder = Sequence<Decoder>;

std::unique_ptr<Decoder> read_decoder(const At& at) {
  if (!at.present()) return nullptr;
  const std::string type = at.type();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(at.field("replacement").character(),
                                              read_prepend_scheme(at));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(Pattern::read(at.field("pattern")),
                                            at.field("content").string());
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(
        at.field("content").character(),
        static_cast<std::size_t>(at.field("start").integer(0, 1 << 20)),
        static_cast<std::size_t>(at.field("stop").integer(0, 1 << 20)));
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(at.field("prefix").string_or("##"),
                                              at.field("cleanup").boolean_or(true));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(at.field("suffix").string_or("</w>"));
  if (type == "Sequence") return read_sequence<Decoder>(at, "decoders", read_decoder);
  unsupported(at, "decoder", type);
}

// ---- the tokenizer ---------------------------------------------------------------

class HfTokenizer final : public Tokenizer {
 public:
  HfTokenizer(const std::string& json_path, const TokenizerFolderConfig& config, std::string source);

  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special) const override;
  std::int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokens& special_tokens() const override { return special_; }
  const std::vector<AddedToken>& added_tokens() const override { return vocab_->tokens(); }
  std::optional<TokenId> token_to_id(std::string_view piece) const override {
    if (const AddedToken* token = vocab_->find_text(piece)) return token->id;
    return model_->token_to_id(piece);
  }
  std::string id_to_token(TokenId id) const override {
    if (const AddedToken* token = vocab_->find_id(id)) return added_text(*token);
    if (const std::string* token = model_->id_to_token(id)) return *token;
    throw Error(source_ + ": token id " + std::to_string(id) + " is not in the vocabulary (size " +
                std::to_string(vocab_size_) + ")");
  }
  bool default_add_bos() const override { return !around_.prefix.empty(); }
  bool default_add_eos() const override { return !around_.suffix.empty(); }
  const std::string& chat_template() const override { return chat_template_; }
  const std::string& source() const override { return source_; }
  TokenizerBackend backend() const override { return TokenizerBackend::kTokenizerJson; }
  const std::vector<TemplatePiece>& pair_template() const override { return pair_; }

 private:
  void encode_words(std::vector<Piece>& pieces, std::vector<TokenId>& out) const;
  // What decode() and id_to_token() give for an added token: a "normalized"
  // one comes out in its normalized form, as in tokenizers.
  const std::string& added_text(const AddedToken& token) const {
    auto it = normalized_text_.find(token.id);
    return it == normalized_text_.end() ? token.text : it->second;
  }

  std::string source_;
  std::string file_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<AddedVocabulary> vocab_;
  Around around_;
  std::vector<TemplatePiece> pair_;
  SpecialTokens special_;
  std::int64_t vocab_size_ = 0;
  std::string chat_template_;
  bool clean_up_spaces_ = false;
  std::unordered_map<TokenId, std::string> normalized_text_;
};

HfTokenizer::HfTokenizer(const std::string& json_path, const TokenizerFolderConfig& config,
                         std::string source)
    : source_(std::move(source)), file_(json_path) {
  const json root = read_json_object_file(json_path);
  At top{root, json_path + ":"};
  // "tokenizer.json: model" reads better than "tokenizer.json:.model".
  auto field = [&](const char* key) {
    At at = top.field(key);
    at.where = json_path + ": " + key;
    return at;
  };
  model_ = read_model(field("model"));
  normalizer_ = read_normalizer(field("normalizer"));
  pre_tokenizer_ = read_pre_tokenizer(field("pre_tokenizer"));
  read_post_processor(field("post_processor"), around_);
  decoder_ = read_decoder(field("decoder"));
  // "truncation" and "padding" are not read: transformers resets both on
  // every call, to what the call asks for.

  const Model* model = model_.get();
  vocab_ = std::make_unique<AddedVocabulary>(
      model->end_id(),
      [model](TokenId id) {
        const std::string* token = model->id_to_token(id);
        return token ? *token : std::string();
      },
      json_path + " (its model's vocab)");
  At added = field("added_tokens");
  if (added.present()) {
    added.array();
    for (std::size_t i = 0; i < added.value.size(); ++i) {
      At entry = added.item(i);
      entry.object();
      AddedToken token;
      token.id = entry.field("id").token_id();
      token.text = entry.field("content").string();
      token.single_word = entry.field("single_word").boolean_or(false);
      token.lstrip = entry.field("lstrip").boolean_or(false);
      token.rstrip = entry.field("rstrip").boolean_or(false);
      token.special = entry.field("special").boolean_or(false);
      token.normalized = entry.field("normalized").boolean_or(!token.special);
      // An added token with the id of a model token must be that token.
      if (token.id < model->end_id() && model->id_to_token(token.id) &&
          *model->id_to_token(token.id) != token.text) {
        entry.fail("the added token " + in_quotes(token.text) + " has id " +
                   std::to_string(token.id) + ", which is " +
                   in_quotes(*model->id_to_token(token.id)) + " in the model's vocab");
      }
      vocab_->add(token, entry.where, true);
    }
  }
  for (const auto& extra : config.added) vocab_->add(extra.token, extra.origin, extra.special_given);

  if (auto unk = model->unk_token()) {
    if (auto id = token_to_id(*unk)) special_.unk = {*id, *unk};
  }
  // Without the folder's word, BOS and EOS are what the template adds.
  auto from_id = [&](TokenId id) -> SpecialToken {
    if (const AddedToken* t = vocab_->find_id(id)) return {id, t->text};
    if (const std::string* t = model->id_to_token(id)) return {id, *t};
    return {};
  };
  if (!around_.prefix.empty()) special_.bos = from_id(around_.prefix.front());
  if (!around_.suffix.empty()) special_.eos = from_id(around_.suffix.back());
  vocab_->add_named_tokens(
      config, [model](std::string_view text) { return model->token_to_id(text); },
      "a token of " + file_, special_);

  const Normalizer* normalizer = normalizer_.get();
  vocab_->finish(AddedVocabulary::Spaces::kUnicode, [normalizer](std::string_view text) {
    std::string out(text);
    if (normalizer) normalizer->apply(out);
    return out;
  });
  for (const AddedToken& token : vocab_->tokens()) {
    if (!token.normalized || !normalizer_) continue;
    std::string form = token.text;
    normalizer_->apply(form);
    if (form != token.text) normalized_text_.emplace(token.id, std::move(form));
  }
  // transformers replaces the file's post-processor when tokenizer_config.json
  // says add_bos_token / add_eos_token: BOS before, EOS after, as asked.
  if (config.add_bos.has_value() || config.add_eos.has_value()) {
    auto special_ids = [&](const SpecialToken& token, bool wanted, const char* what) {
      std::vector<TokenId> ids;
      if (!wanted) return ids;
      if (!token.present()) {
        throw Error(file_ + ": tokenizer_config.json asks for " + what +
                    " but the tokenizer has no such token");
      }
      ids.push_back(token.id);
      return ids;
    };
    Around replaced;
    replaced.prefix = special_ids(special_.bos, config.add_bos.value_or(!around_.prefix.empty()),
                                  "add_bos_token");
    replaced.suffix = special_ids(special_.eos, config.add_eos.value_or(false), "add_eos_token");
    around_ = std::move(replaced);
  }
  // transformers' update_post_processor writes the pair as the single rule
  // for each text (types 0 and 1), as does a file without a pair template.
  pair_ = around_.pair.empty() ? pair_template_from_single(around_.prefix, around_.suffix) : around_.pair;
  vocab_size_ = std::max<std::int64_t>(model->end_id(), vocab_->end_id());
  chat_template_ = config.chat_template;
  clean_up_spaces_ = config.clean_up_tokenization_spaces.value_or(false);
}

void HfTokenizer::encode_words(std::vector<Piece>& pieces, std::vector<TokenId>& out) const {
  if (pre_tokenizer_) pre_tokenizer_->apply(pieces);
  for (const Piece& piece : pieces) {
    if (!piece.text.empty()) model_->tokenize(piece.text, out);
  }
}

std::vector<TokenId> HfTokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::size_t bad = unicode::find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    throw Error(source_ + ": cannot encode text that is not valid UTF-8 (byte " +
                std::to_string(bad) + " of " + std::to_string(text.size()) + ")");
  }
  std::vector<TokenId> ids;
  const bool prefix = options.add_bos.value_or(true);
  const bool suffix = options.add_eos.value_or(true);
  if (prefix) {
    if (!around_.prefix.empty()) {
      ids.insert(ids.end(), around_.prefix.begin(), around_.prefix.end());
    } else if (options.add_bos.has_value() && special_.bos.present()) {
      ids.push_back(special_.bos.id);
    }
  }
  const std::vector<AddedToken>& added = vocab_->tokens();
  std::vector<AddedVocabulary::Segment> raw, normalized_segments;
  vocab_->split(text, /*normalized=*/false, options.parse_special, raw);
  std::vector<Piece> pieces;
  for (const auto& segment : raw) {
    if (segment.token >= 0) {
      ids.push_back(added[segment.token].id);
      continue;
    }
    if (segment.text.empty()) continue;
    const bool at_start = segment.text.data() == text.data();
    std::string chunk(segment.text);
    if (normalizer_) normalizer_->apply(chunk);
    if (chunk.empty()) continue;
    if (!vocab_->has_matchers(true)) {
      pieces.clear();
      pieces.push_back({std::move(chunk), at_start});
      encode_words(pieces, ids);
      continue;
    }
    normalized_segments.clear();
    vocab_->split(chunk, /*normalized=*/true, options.parse_special, normalized_segments);
    for (const auto& inner : normalized_segments) {
      if (inner.token >= 0) {
        ids.push_back(added[inner.token].id);
        continue;
      }
      if (inner.text.empty()) continue;
      pieces.clear();
      pieces.push_back({std::string(inner.text), at_start && inner.text.data() == chunk.data()});
      encode_words(pieces, ids);
    }
  }
  if (suffix) {
    if (!around_.suffix.empty()) {
      ids.insert(ids.end(), around_.suffix.begin(), around_.suffix.end());
    } else if (options.add_eos.has_value() && special_.eos.present()) {
      ids.push_back(special_.eos.id);
    }
  }
  return ids;
}

std::string HfTokenizer::decode(const std::vector<TokenId>& ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    if (const AddedToken* token = vocab_->find_id(id)) {
      if (skip_special && token->special) continue;
      tokens.push_back(added_text(*token));
      continue;
    }
    const std::string* token = model_->id_to_token(id);
    if (!token) {
      throw Error(source_ + ": cannot decode token id " + std::to_string(id) +
                  ": no token has it (vocabulary size " + std::to_string(vocab_size_) + ")");
    }
    tokens.push_back(*token);
  }
  std::string text;
  if (decoder_) {
    decoder_->apply(tokens);
    for (const auto& t : tokens) text += t;
  } else {
    for (std::size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  }
  if (clean_up_spaces_) text = cleanup_spaces(std::move(text));
  return text;
}

}  // namespace

std::shared_ptr<const Tokenizer> make_hf_tokenizer(const std::string& json_path,
                                                   const TokenizerFolderConfig& config,
                                                   std::string source) {
  return std::make_shared<const HfTokenizer>(json_path, config, std::move(source));
}

}  // namespace openrm::detail
