// Tokenizing pairs and conversations with explicit truncation.
//
// Truncation works on the conversation, not on the token ids: turns are
// dropped and texts are cut, and the result is rendered and encoded again.
// That keeps the template's closing tokens (EOS, <|im_end|>, <|eot_id|>) in
// place, so the token a reward is read from is the same one the model saw in
// training, and the ids are exactly what the tokenizer gives for that text.
#include "openrm/data/tokenize.h"

#include <algorithm>
#include <exception>
#include <sstream>
#include <thread>

#include "data/parallel.h"
#include "logging.h"
#include "openrm/error.h"

namespace openrm {
namespace {

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Bisects over the UTF-8 character boundaries of `text` between lo and hi,
// where `pred` holds at lo and fails at hi (and flips once in between).
// Returns the last boundary where it holds and the first where it fails.
template <typename Pred>
std::pair<std::size_t, std::size_t> bisect_boundaries(const std::string& text, std::size_t lo,
                                                      std::size_t hi, Pred pred) {
  while (hi - lo > 1) {
    std::size_t mid = lo + (hi - lo) / 2;
    while (mid > lo && is_continuation_byte(text[mid])) --mid;
    if (mid == lo) {  // look for a boundary above the midpoint instead
      mid = lo + (hi - lo) / 2 + 1;
      while (mid < hi && is_continuation_byte(text[mid])) ++mid;
      if (mid == hi) break;  // no boundary strictly between lo and hi
    }
    (pred(mid) ? lo : hi) = mid;
  }
  return {lo, hi};
}

Conversation joined(const Conversation& prompt, const Conversation& completion) {
  Conversation c = prompt;
  c.insert(c.end(), completion.begin(), completion.end());
  return c;
}

// Fits a prompt and its completions (2 for a pair, 1 for a record) into
// max_length tokens. The prompt is shared, so turns are dropped from it for
// every side alike.
class GroupFitter {
 public:
  GroupFitter(const Tokenizer& tokenizer, const TokenizeOptions& options)
      : tokenizer_(tokenizer), options_(options) {}

  // Returns the ids of each side, or std::nullopt when the group is dropped.
  // `format` is the group's own (rendered text), or options.format.
  std::optional<std::vector<std::vector<TokenId>>> fit(Conversation prompt,
                                                       std::vector<Conversation> completions,
                                                       TruncationStats& stats, bool& truncated,
                                                       std::optional<ChatFormat> format = std::nullopt) {
    if (options_.format == ChatFormat::kPair && format) {
      // Text under the pair format: the prompt text and each response text,
      // as written, are the two texts (an hh transcript's slices joined back).
      prompt = joined_text(prompt, "user");
      for (auto& completion : completions) completion = joined_text(completion, "assistant");
      format = ChatFormat::kPair;
    }
    format_ = format.value_or(options_.format);
    truncated = false;
    std::vector<std::vector<TokenId>> ids(completions.size());
    for (std::size_t i = 0; i < completions.size(); ++i) {
      ids[i] = encode(joined(prompt, completions[i]));
      if (ids[i].empty()) {
        throw Error("renders to no tokens (an empty text, and a tokenizer that adds no BOS): nothing to score");
      }
    }
    const std::int64_t limit = options_.max_length;
    std::int64_t longest = longest_of(ids);
    stats.longest_before = std::max(stats.longest_before, longest);
    if (limit <= 0 || longest <= limit) return ids;
    if (options_.policy == TruncationPolicy::kDrop) return std::nullopt;
    truncated = true;

    // 1. Drop the oldest prompt turns, keeping a leading system message and
    // the last prompt message; the prompt keeps starting with a user turn.
    const std::size_t first = !prompt.empty() && prompt[0].role == "system" ? 1 : 0;
    while (prompt.size() > first + 1 && longest > limit) {
      do {
        prompt.erase(prompt.begin() + static_cast<std::ptrdiff_t>(first));
        ++stats.prompt_turns_dropped;
      } while (prompt.size() > first + 1 && prompt[first].role != "user");
      for (std::size_t i = 0; i < completions.size(); ++i) {
        ids[i] = encode(joined(prompt, completions[i]));
      }
      longest = longest_of(ids);
    }
    if (longest <= limit) return ids;

    // 2. If the prompt leaves too little room, cut the start of its last
    // message. Of the tokens left after the template's markup, each response
    // keeps up to half.
    if (!prompt.empty()) {
      std::int64_t with_prompt = 0;  // longest side with an empty response
      std::int64_t markup = 0;       // longest side with empty prompt text and response
      std::int64_t response_tokens = 0;
      Conversation bare_prompt = prompt;
      bare_prompt.back().content.clear();
      for (std::size_t i = 0; i < completions.size(); ++i) {
        const auto base = static_cast<std::int64_t>(encode(with_last_cut(prompt, completions[i], 0)).size());
        with_prompt = std::max(with_prompt, base);
        markup = std::max(markup, static_cast<std::int64_t>(
                                      encode(with_last_cut(bare_prompt, completions[i], 0)).size()));
        response_tokens = std::max(response_tokens, static_cast<std::int64_t>(ids[i].size()) - base);
      }
      const std::int64_t room = limit - markup;
      if (room <= 0) return std::nullopt;
      const std::int64_t reserve = std::max<std::int64_t>(1, std::min(response_tokens, room / 2));
      if (with_prompt > limit - reserve) {
        if (!cut_prompt_start(prompt, completions, limit - reserve)) return std::nullopt;
        ++stats.prompts_cut;
      }
    }

    // 3. Cut the end of each response that is still too long.
    for (std::size_t i = 0; i < completions.size(); ++i) {
      ids[i] = encode(joined(prompt, completions[i]));
      if (static_cast<std::int64_t>(ids[i].size()) <= limit) continue;
      if (!cut_response_end(prompt, completions[i], ids[i])) return std::nullopt;
      ++stats.responses_cut;
    }
    return ids;
  }

 private:
  std::vector<TokenId> encode(const Conversation& c) const { return encode_chat(tokenizer_, format_, c); }

  // One message holding the contents of `c` concatenated (none for an empty `c`).
  static Conversation joined_text(const Conversation& c, const char* role) {
    if (c.size() <= 1) return c;
    std::string text;
    for (const auto& m : c) text += m.content;
    return {Message{role, std::move(text)}};
  }

  static std::int64_t longest_of(const std::vector<std::vector<TokenId>>& ids) {
    std::int64_t n = 0;
    for (const auto& v : ids) n = std::max(n, static_cast<std::int64_t>(v.size()));
    return n;
  }

  // prompt + completion with the completion's last message cut to `keep` bytes.
  static Conversation with_last_cut(const Conversation& prompt, const Conversation& completion,
                                    std::size_t keep) {
    Conversation c = joined(prompt, completion);
    c.back().content.resize(keep);
    return c;
  }

  bool fits(const Conversation& c) const {
    return static_cast<std::int64_t>(encode(c).size()) <= options_.max_length;
  }

  // Keeps the longest prefix of the response (last message) that fits.
  bool cut_response_end(const Conversation& prompt, Conversation& completion,
                        std::vector<TokenId>& ids) const {
    const std::string& text = completion.back().content;
    if (!fits(with_last_cut(prompt, completion, 0))) return false;
    // The whole response is known not to fit.
    const std::size_t keep = bisect_boundaries(text, 0, text.size(), [&](std::size_t len) {
                               return fits(with_last_cut(prompt, completion, len));
                             }).first;
    if (keep == 0) return false;  // nothing of the response would remain
    completion.back().content.resize(keep);
    ids = encode(joined(prompt, completion));
    return true;
  }

  // Cuts the start of the prompt's last message so that every side, with an
  // empty response, takes at most `budget` tokens.
  bool cut_prompt_start(Conversation& prompt, const std::vector<Conversation>& completions,
                        std::int64_t budget) const {
    if (budget <= 0) return false;
    const std::string text = prompt.back().content;
    auto too_long = [&](std::size_t start) {
      Conversation p = prompt;
      p.back().content = text.substr(start);
      for (const auto& completion : completions) {
        if (static_cast<std::int64_t>(encode(with_last_cut(p, completion, 0)).size()) > budget) {
          return true;
        }
      }
      return false;
    };
    if (too_long(text.size())) return false;
    // The whole prompt is known to be too long.
    const std::size_t start = bisect_boundaries(text, 0, text.size(), too_long).second;
    prompt.back().content = text.substr(start);
    return true;
  }

  const Tokenizer& tokenizer_;
  const TokenizeOptions& options_;
  ChatFormat format_ = ChatFormat::kPlain;
};

}  // namespace

std::string truncation_policy_name(TruncationPolicy policy) {
  return policy == TruncationPolicy::kDrop ? "drop" : "truncate";
}

TruncationPolicy truncation_policy_from_name(const std::string& name) {
  if (name == "truncate") return TruncationPolicy::kTruncate;
  if (name == "drop") return TruncationPolicy::kDrop;
  throw Error("unknown truncation policy '" + name + "'; known policies: truncate, drop");
}

TruncationStats& TruncationStats::operator+=(const TruncationStats& o) {
  input += o.input;
  kept += o.kept;
  truncated += o.truncated;
  dropped += o.dropped;
  prompt_turns_dropped += o.prompt_turns_dropped;
  responses_cut += o.responses_cut;
  prompts_cut += o.prompts_cut;
  longest_before = std::max(longest_before, o.longest_before);
  return *this;
}

std::string TruncationStats::summary() const {
  std::ostringstream out;
  out << kept << " of " << input << " kept, " << truncated << " truncated (" << prompt_turns_dropped
      << " prompt turns dropped, " << prompts_cut << " prompts cut, " << responses_cut
      << " responses cut), " << dropped << " dropped; longest before truncation " << longest_before
      << " tokens";
  return out.str();
}

std::optional<std::vector<TokenId>> tokenize_conversation(const Conversation& conversation,
                                                          const Tokenizer& tokenizer,
                                                          const TokenizeOptions& options,
                                                          TruncationStats* stats,
                                                          std::optional<ChatFormat> text_format) {
  if (conversation.empty()) throw Error("cannot tokenize an empty conversation");
  TruncationStats local;
  ++local.input;
  Conversation prompt(conversation.begin(), conversation.end() - 1);
  std::vector<Conversation> completion{{conversation.back()}};
  bool truncated = false;
  auto ids = GroupFitter(tokenizer, options).fit(std::move(prompt), std::move(completion), local, truncated,
                                                 text_format);
  if (ids) {
    ++local.kept;
    local.truncated += truncated ? 1 : 0;
  } else {
    ++local.dropped;
  }
  if (stats) *stats += local;
  if (!ids) return std::nullopt;
  return std::move((*ids)[0]);
}

TokenizedPairs tokenize_pairs(const std::vector<PreferencePair>& pairs, const Tokenizer& tokenizer,
                              const TokenizeOptions& options) {
  const std::size_t n = pairs.size();
  const int workers = data_detail::worker_count(options.threads, n);
  std::vector<std::optional<TokenizedPair>> slots(n);
  std::vector<TruncationStats> stats(static_cast<std::size_t>(workers));

  data_detail::for_each_range(n, workers, [&](int w, std::size_t begin, std::size_t end) {
    GroupFitter fitter(tokenizer, options);
    for (std::size_t i = begin; i < end; ++i) {
      const PreferencePair& pair = pairs[i];
      TruncationStats& s = stats[static_cast<std::size_t>(w)];
      ++s.input;
      bool truncated = false;
      auto ids = with_context(
          "pair " + std::to_string(i) + (pair.line > 0 ? " (line " + std::to_string(pair.line) + ")" : ""),
          [&] { return fitter.fit(pair.prompt, {pair.chosen, pair.rejected}, s, truncated, pair.text_format); });
      if (!ids) {
        ++s.dropped;
        continue;
      }
      ++s.kept;
      s.truncated += truncated ? 1 : 0;
      TokenizedPair out;
      out.chosen = std::move((*ids)[0]);
      out.rejected = std::move((*ids)[1]);
      out.margin = pair.margin;
      out.has_margin = pair.has_margin;
      out.truncated = truncated;
      out.source_index = static_cast<std::int64_t>(i);
      out.line = pair.line;
      slots[i] = std::move(out);
    }
  });

  TokenizedPairs result;
  for (const auto& s : stats) result.stats += s;
  result.pairs.reserve(static_cast<std::size_t>(result.stats.kept));
  for (auto& slot : slots) {
    if (slot) result.pairs.push_back(std::move(*slot));
  }
  const TruncationStats& s = result.stats;
  if (s.dropped > 0) {
    log().warn("tokenized pairs (max_length {}, policy {}): {}", options.max_length,
                truncation_policy_name(options.policy), s.summary());
  } else {
    log().info("tokenized pairs (max_length {}, policy {}): {}", options.max_length,
                truncation_policy_name(options.policy), s.summary());
  }
  return result;
}

}  // namespace openrm
