// PCRE2-backed Regex; see regex.h.
//
// Oniguruma (Ruby syntax, as tokenizers uses it) and PCRE2 in UCP mode agree
// on \p{..} classes, lookaround, (?i:..) and quantifiers. They differ on:
//   \s  Oniguruma: Unicode White_Space. PCRE2's \s lacks U+0085 and has
//       U+180E. Rewritten as the White_Space class.
//   \w  Oniguruma: letters, marks, decimal digits, connector punctuation;
//       PCRE2 10.42: letters, all numbers and "_". Rewritten as the class.
//   \h  Oniguruma: a hexadecimal digit; PCRE2: horizontal space. Rewritten.
//   ^ $ Oniguruma (Ruby): always line anchors: PCRE2_MULTILINE.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "openrm/error.h"

namespace openrm::detail {
namespace {

constexpr const char* kSpaceClass =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";
constexpr const char* kWordClass = "\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}";

std::string rewrite(const std::string& pattern, const std::string& origin) {
  std::string out;
  out.reserve(pattern.size() + 16);
  int class_depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[++i];
      const bool in_class = class_depth > 0;
      switch (e) {
        case 's':
          out += in_class ? std::string(kSpaceClass) : "[" + std::string(kSpaceClass) + "]";
          break;
        case 'S':
          if (in_class) throw Error(origin + ": \\S inside a character class is not supported");
          out += "[^" + std::string(kSpaceClass) + "]";
          break;
        case 'w':
          out += in_class ? std::string(kWordClass) : "[" + std::string(kWordClass) + "]";
          break;
        case 'W':
          if (in_class) throw Error(origin + ": \\W inside a character class is not supported");
          out += "[^" + std::string(kWordClass) + "]";
          break;
        case 'h': out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]"; break;
        case 'H':
          if (in_class) throw Error(origin + ": \\H inside a character class is not supported");
          out += "[^0-9a-fA-F]";
          break;
        default:
          out += '\\';
          out += e;
          // \p{..}, \x{..}: copy the braces through untouched.
          if ((e == 'p' || e == 'P' || e == 'x') && i + 1 < pattern.size() && pattern[i + 1] == '{') {
            std::size_t close = pattern.find('}', i + 1);
            if (close == std::string::npos) throw Error(origin + ": unterminated \\" + e + "{");
            out.append(pattern, i + 1, close - i);
            i = close;
          }
      }
      continue;
    }
    if (c == '[') {
      // "[" right after "[" or "[^" is a literal in both engines; "[:" is POSIX.
      ++class_depth;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

struct ThreadState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  ThreadState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern, const std::string& origin)
    : pattern_(pattern), origin_(origin), compiled_(std::make_unique<Compiled>()) {
  const std::string rewritten = rewrite(pattern, origin);
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error, &offset, nullptr);
  if (!compiled_->code) {
    throw Error(origin + ": the regular expression " + pattern + " does not compile: " +
                pcre2_message(error) + " (at offset " + std::to_string(offset) + ")");
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

void Regex::find_all(std::string_view text,
                     std::vector<std::pair<std::size_t, std::size_t>>& out) const {
  ThreadState& state = thread_state();
  if (!state.data || !state.context) throw Error(origin_ + ": out of memory for a regex match");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t start = 0;
  while (start <= text.size()) {
    int rc = pcre2_match(compiled_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK,
                         state.data, state.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Deep backtracking on a huge input: the interpreter keeps its frames
      // on the heap.
      rc = pcre2_match(compiled_->code, subject, text.size(), start,
                       PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, state.data, state.context);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      throw Error(origin_ + ": matching the regular expression " + pattern_ + " on a text of " +
                  std::to_string(text.size()) + " bytes failed: " + pcre2_message(rc));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
    std::size_t begin = ovector[0];
    std::size_t end = ovector[1];
    out.emplace_back(begin, end);
    if (end > begin) {
      start = end;
    } else {
      // Step over one whole character.
      std::size_t next = end + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      start = next;
    }
  }
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  out.reserve(literal.size() * 2);
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace openrm::detail
