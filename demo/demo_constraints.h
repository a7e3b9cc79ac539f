// The instructions of the demo dataset and their checkers: whether a response
// follows an instruction is decided by these functions alone.
#pragma once

#include <cctype>
#include <string>

namespace demo {

struct Constraint {
  enum Kind {
    kUppercase,         // no lower-case letter, at least one letter
    kLowercase,         // no upper-case letter, at least one letter
    kOneSentence,       // exactly one sentence end ('.', '?', '!')
    kSeveralSentences,  // at least three sentence ends
    kNumberedList,      // at least two lines, each "N. ..." numbered from 1
    kNoList,            // no line starts with a number and ". "
    kEndWithQuestion,   // the last character is '?'
    kNoQuestion,        // no '?' anywhere
    kMentionWord,       // `word` appears as a whole word, any case
  };
  static constexpr int kKinds = 9;
  Kind kind;
  std::string word;  // kMentionWord only
};

inline const char* constraint_name(Constraint::Kind kind) {
  switch (kind) {
    case Constraint::kUppercase: return "uppercase";
    case Constraint::kLowercase: return "lowercase";
    case Constraint::kOneSentence: return "one_sentence";
    case Constraint::kSeveralSentences: return "several_sentences";
    case Constraint::kNumberedList: return "numbered_list";
    case Constraint::kNoList: return "no_list";
    case Constraint::kEndWithQuestion: return "end_with_question";
    case Constraint::kNoQuestion: return "no_question";
    case Constraint::kMentionWord: return "mention_word";
  }
  return "?";
}

inline bool contains_word(const std::string& text, const std::string& word) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string t = lower(text), w = lower(word);
  for (std::size_t pos = t.find(w); pos != std::string::npos; pos = t.find(w, pos + 1)) {
    const bool left = pos == 0 || !std::isalpha(static_cast<unsigned char>(t[pos - 1]));
    const std::size_t end = pos + w.size();
    const bool right = end == t.size() || !std::isalpha(static_cast<unsigned char>(t[end]));
    if (left && right) return true;
  }
  return false;
}

inline int count_sentence_ends(const std::string& text) {
  int n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    // "1. " list markers are not sentence ends.
    const bool list_marker = c == '.' && i > 0 && std::isdigit(static_cast<unsigned char>(text[i - 1])) &&
                             (i == 1 || text[i - 2] == '\n');
    if ((c == '.' || c == '?' || c == '!') && !list_marker) ++n;
  }
  return n;
}

// Number of leading "N. " lines numbered 1, 2, ...; -1 if any line starts with
// a number and ". " out of order.
inline int numbered_lines(const std::string& text) {
  int expected = 1, count = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    std::size_t digits = 0;
    while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
    if (digits > 0 && line.compare(digits, 2, ". ") == 0) {
      if (std::stoi(line.substr(0, digits)) != expected) return -1;
      ++expected;
      ++count;
    }
    start = end + 1;
  }
  return count;
}

inline bool satisfies(const Constraint& c, const std::string& r) {
  bool has_lower = false, has_upper = false;
  for (unsigned char ch : r) {
    has_lower |= std::islower(ch) != 0;
    has_upper |= std::isupper(ch) != 0;
  }
  switch (c.kind) {
    case Constraint::kUppercase: return has_upper && !has_lower;
    case Constraint::kLowercase: return has_lower && !has_upper;
    case Constraint::kOneSentence: return count_sentence_ends(r) == 1;
    case Constraint::kSeveralSentences: return count_sentence_ends(r) >= 3;
    case Constraint::kNumberedList: {
      int lines = 1;
      for (char ch : r) lines += ch == '\n';
      return numbered_lines(r) >= 2 && numbered_lines(r) == lines;
    }
    case Constraint::kNoList: return numbered_lines(r) == 0;
    case Constraint::kEndWithQuestion: return !r.empty() && r.back() == '?';
    case Constraint::kNoQuestion: return r.find('?') == std::string::npos;
    case Constraint::kMentionWord: return contains_word(r, c.word);
  }
  return false;
}

}  // namespace demo
