// Regular expressions for tokenizer.json pre-tokenizers and normalizers
// (internal), on PCRE2 with its JIT. tokenizers compiles these patterns with
// Oniguruma (Ruby syntax); the few places where the two engines read a
// pattern differently are rewritten before compiling (see regex.cpp), so that
// matches are the ones tokenizers finds.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace openrm::detail {

class Regex {
 public:
  // `origin` names the pattern in errors ("tokenizer.json: pre_tokenizer...").
  // Throws openrm::Error when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& origin);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every match in `text` (valid UTF-8), left to right and non-overlapping,
  // as [begin, end) byte ranges; an empty match advances one character.
  // Thread-safe.
  void find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::string origin_;
  std::unique_ptr<Compiled> compiled_;
};

// Escapes `literal` so that it matches itself.
std::string regex_escape(std::string_view literal);

}  // namespace openrm::detail
