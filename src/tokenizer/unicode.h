// Unicode helpers for the tokenizer backends (internal): UTF-8 decoding,
// the character classes tokenizers' components test (Rust's char methods),
// and normalization through utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace openrm::detail::unicode {

constexpr std::uint32_t kInvalid = 0xFFFFFFFFu;

// The code point that starts at text[pos] and its length in bytes; kInvalid
// and length 1 when the bytes there are not well-formed UTF-8 (overlong forms,
// surrogates and values above U+10FFFF included).
std::uint32_t decode(std::string_view text, std::size_t pos, std::size_t* length);
void append_utf8(std::string& out, std::uint32_t c);
// Byte offset of the first malformed sequence, or npos when `text` is valid.
std::size_t find_invalid_utf8(std::string_view text);

// Python's str.isspace() (what transformers' slow tokenizers strip).
bool is_python_space(std::uint32_t c);
// Unicode White_Space: Rust's char::is_whitespace and its regex's \s.
bool is_white_space(std::uint32_t c);
// Rust regex's \w: letters, marks, decimal digits, connector punctuation,
// letter numbers and the joiners.
bool is_word(std::uint32_t c);
// Rust's char::is_numeric: the categories Nd, Nl and No.
bool is_numeric(std::uint32_t c);
// tokenizers' punctuation test: ASCII punctuation or a P* category.
bool is_punctuation(std::uint32_t c);
// General category "Mn" (BERT's accent stripping).
bool is_nonspacing_mark(std::uint32_t c);
// Any mark: Mn, Mc or Me (tokenizers' StripAccents).
bool is_mark(std::uint32_t c);
// Category Cc/Cf/Co/Cn/Cs but not \t \n \r (BERT's "control").
bool is_control(std::uint32_t c);
// The CJK ideograph blocks BERT pads with spaces.
bool is_cjk(std::uint32_t c);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };
// `text` must be valid UTF-8.
std::string normalize(std::string_view text, NormalForm form);
// Rust's char::to_lowercase applied to every character (full mappings).
std::string lowercase(std::string_view text);

}  // namespace openrm::detail::unicode
