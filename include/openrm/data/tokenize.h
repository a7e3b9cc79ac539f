// Turning preference pairs and conversations into token ids, with explicit,
// counted truncation: nothing is cut or dropped silently.
#pragma once

#include <openrm/data/preference.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/tokenizer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

enum class TruncationPolicy {
  // Fit over-long sequences: drop the oldest prompt turns first (a leading
  // system message is kept), then cut the end of the response, and as a last
  // resort cut the start of the remaining prompt. The template's closing tokens
  // (EOS, <|im_end|>, ...) are always kept, so the pooled token stays the same.
  kTruncate,
  // Drop any pair (or record) that does not fit.
  kDrop,
};
std::string truncation_policy_name(TruncationPolicy policy);  // "truncate", "drop"
TruncationPolicy truncation_policy_from_name(const std::string& name);

struct TokenizeOptions {
  ChatFormat format = ChatFormat::kPlain;
  // Longest sequence (prompt + response, in tokens) a model sees; 0: no limit.
  std::int64_t max_length = 2048;
  TruncationPolicy policy = TruncationPolicy::kTruncate;
  // Worker threads for tokenizing (0: all hardware threads).
  int threads = 0;
};

// What truncation did; also logged by tokenize_pairs.
struct TruncationStats {
  std::int64_t input = 0;                  // pairs (or records) in
  std::int64_t kept = 0;                   // pairs out
  std::int64_t truncated = 0;              // kept pairs with either side shortened
  std::int64_t dropped = 0;                // pairs left out (kDrop, or no way to fit)
  std::int64_t prompt_turns_dropped = 0;   // prompt messages removed, summed over pairs
  std::int64_t responses_cut = 0;          // responses whose end was cut (each side counts)
  std::int64_t prompts_cut = 0;            // prompts whose start was cut
  std::int64_t longest_before = 0;         // longest sequence before truncation, in tokens

  TruncationStats& operator+=(const TruncationStats& other);
  std::string summary() const;  // one line for logs and model cards
};

struct TokenizedPair {
  std::vector<TokenId> chosen;
  std::vector<TokenId> rejected;
  double margin = 0.0;
  bool has_margin = false;
  bool truncated = false;
  std::int64_t source_index = 0;  // index of the pair in the input vector
  std::int64_t line = 0;          // line in the source file
};

struct TokenizedPairs {
  std::vector<TokenizedPair> pairs;  // in input order, dropped pairs left out
  TruncationStats stats;
};

// Tokenizes pairs in parallel; the result does not depend on the thread count.
// A pair with a text_format (rendered text) is tokenized in that format,
// not in options.format; except under ChatFormat::kPair, where the prompt
// text and the response text, as written, are the text pair.
TokenizedPairs tokenize_pairs(const std::vector<PreferencePair>& pairs, const Tokenizer& tokenizer,
                              const TokenizeOptions& options);

// One conversation (last message = the response) to ids under the same
// truncation rules; std::nullopt when it is dropped. `stats` (optional) is
// updated as for one pair. `text_format`, when set, replaces options.format
// (a record of rendered text, ScoreRecord::text_format), except under kPair
// (as for pairs).
std::optional<std::vector<TokenId>> tokenize_conversation(const Conversation& conversation,
                                                          const Tokenizer& tokenizer,
                                                          const TokenizeOptions& options,
                                                          TruncationStats* stats = nullptr,
                                                          std::optional<ChatFormat> text_format = std::nullopt);

}  // namespace openrm
