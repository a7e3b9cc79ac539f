// AddedVocabulary; see added_vocabulary.h.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "openrm/error.h"
#include "tokenizer/unicode.h"

namespace openrm::detail {
namespace {

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

bool is_space(std::uint32_t c, AddedVocabulary::Spaces spaces) {
  return spaces == AddedVocabulary::Spaces::kPython ? unicode::is_python_space(c)
                                                    : unicode::is_white_space(c);
}

// The code point that ends at text[end) (end > 0), and its start.
std::uint32_t last_code_point(std::string_view text, std::size_t end, std::size_t* start) {
  std::size_t s = end - 1;
  while (s > 0 && end - s < 4 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
  std::size_t len;
  std::uint32_t c = unicode::decode(text, s, &len);
  if (c == unicode::kInvalid || s + len != end) {
    *start = end - 1;
    return unicode::kInvalid;
  }
  *start = s;
  return c;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view text, int value) {
  int node = 0;
  for (char ch : text) {
    auto byte = static_cast<unsigned char>(ch);
    int next = child(node, byte);
    if (next < 0) {
      next = static_cast<int>(nodes_.size());
      nodes_[node].children.emplace_back(byte, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  nodes_[node].value = value;
  if (!text.empty()) first_[static_cast<unsigned char>(text[0])] = true;
}

int AddedVocabulary::Trie::child(int node, unsigned char byte) const {
  for (const auto& [b, next] : nodes_[node].children) {
    if (b == byte) return next;
  }
  return -1;
}

template <typename Accept>
std::pair<int, std::size_t> AddedVocabulary::Trie::longest_match(std::string_view text,
                                                                 std::size_t pos,
                                                                 const Accept& accept) const {
  std::pair<int, std::size_t> best{-1, 0};
  int node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node < 0) break;
    int value = nodes_[node].value;
    if (value >= 0 && accept(value)) best = {value, i + 1 - pos};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(TokenId base_size, std::function<std::string(TokenId)> base_piece,
                                 std::string base_name)
    : base_size_(base_size), base_piece_(std::move(base_piece)), base_name_(std::move(base_name)) {}

void AddedVocabulary::add(AddedToken token, const std::string& origin, bool special_given) {
  if (token.text.empty())
    throw Error(origin + ": added token " + std::to_string(token.id) + " has empty content");
  if (token.id < 0)
    throw Error(origin + ": added token " + in_quotes(token.text) + " has a negative id");
  if (token.id < base_size_) {
    std::string piece = base_piece_(token.id);
    if (piece != token.text) {
      throw Error(origin + ": added token " + in_quotes(token.text) + " has id " +
                  std::to_string(token.id) + ", which is the piece " + in_quotes(piece) + " of " +
                  base_name_);
    }
  }
  auto by_text = by_text_.find(token.text);
  if (by_text != by_text_.end()) {
    AddedToken& existing = tokens_[by_text->second];
    if (existing.id != token.id) {
      throw Error(origin + ": token " + in_quotes(token.text) + " has id " +
                  std::to_string(token.id) + ", but id " + std::to_string(existing.id) + " in " +
                  origins_[by_text->second]);
    }
    existing.lstrip = token.lstrip;
    existing.rstrip = token.rstrip;
    existing.single_word = token.single_word;
    existing.normalized = token.normalized;
    if (special_given) existing.special = token.special;
    return;
  }
  auto by_id = by_id_.find(token.id);
  if (by_id != by_id_.end()) {
    throw Error(origin + ": id " + std::to_string(token.id) + " is given to " +
                in_quotes(token.text) + " here and to " + in_quotes(tokens_[by_id->second].text) +
                " in " + origins_[by_id->second]);
  }
  if (!special_given) token.special = false;
  by_text_[token.text] = tokens_.size();
  by_id_[token.id] = tokens_.size();
  tokens_.push_back(std::move(token));
  origins_.push_back(origin);
}

void AddedVocabulary::add_named_tokens(
    const TokenizerFolderConfig& config,
    const std::function<std::optional<TokenId>(std::string_view)>& base_id,
    const std::string& base_what, SpecialTokens& special) {
  auto resolve = [&](const TokenizerFolderConfig::NamedToken& named) -> SpecialToken {
    const AddedToken* found = find_text(named.text);
    AddedToken token;
    if (found) {
      token = *found;
    } else if (auto id = base_id(named.text)) {
      token.id = *id;
    } else {
      throw Error(named.origin + ": token " + in_quotes(named.text) + " is neither an added token nor " +
                  base_what);
    }
    token.text = named.text;
    token.special = true;
    if (named.lstrip) token.lstrip = *named.lstrip;
    if (named.rstrip) token.rstrip = *named.rstrip;
    const TokenId id = token.id;
    add(std::move(token), named.origin, true);
    return {id, named.text};
  };
  std::pair<const std::optional<TokenizerFolderConfig::NamedToken>*, SpecialToken*> named[] = {
      {&config.bos, &special.bos},
      {&config.eos, &special.eos},
      {&config.pad, &special.pad},
      {&config.unk, &special.unk},
      {&config.cls, &special.cls},
      {&config.sep, &special.sep}};
  for (auto& [given, target] : named) {
    if (given->has_value()) *target = resolve(**given);
  }
  for (const auto& extra : config.additional_special) resolve(extra);
}

void AddedVocabulary::finish(Spaces spaces,
                             const std::function<std::string(std::string_view)>& normalize) {
  spaces_ = spaces;
  std::vector<std::size_t> order(tokens_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return tokens_[a].id < tokens_[b].id; });
  std::vector<AddedToken> tokens;
  std::vector<std::string> origins;
  for (std::size_t i : order) {
    tokens.push_back(std::move(tokens_[i]));
    origins.push_back(std::move(origins_[i]));
  }
  tokens_ = std::move(tokens);
  origins_ = std::move(origins);
  by_text_.clear();
  by_id_.clear();
  raw_ = Trie();
  normalized_ = Trie();
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    by_text_[token.text] = i;
    by_id_[token.id] = i;
    if (token.normalized && normalize) {
      std::string form = normalize(token.text);
      if (!form.empty()) normalized_.insert(form, static_cast<int>(i));
    } else {
      raw_.insert(token.text, static_cast<int>(i));
    }
  }
}

const AddedToken* AddedVocabulary::find_text(std::string_view text) const {
  auto it = by_text_.find(std::string(text));
  return it == by_text_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_id(TokenId id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::int64_t AddedVocabulary::end_id() const {
  std::int64_t end = 0;
  for (const auto& token : tokens_) end = std::max<std::int64_t>(end, token.id + 1);
  return end;
}

bool AddedVocabulary::has_matchers(bool normalized) const {
  return !(normalized ? normalized_ : raw_).empty();
}

void AddedVocabulary::split(std::string_view text, bool normalized, bool with_special,
                            std::vector<Segment>& out) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  if (trie.empty()) {
    out.push_back({text, -1});
    return;
  }
  auto accept = [&](int index) { return with_special || !tokens_[index].special; };
  std::size_t chunk_start = 0;  // end of the previous match
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.may_start(static_cast<unsigned char>(text[pos]))) {
      ++pos;
      continue;
    }
    auto [index, length] = trie.longest_match(text, pos, accept);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    std::size_t start = pos;
    std::size_t stop = pos + length;
    if (token.single_word) {
      std::size_t before_start;
      std::size_t len;
      bool word_before = start > 0 && unicode::is_word(last_code_point(text, start, &before_start));
      bool word_after = stop < text.size() && unicode::is_word(unicode::decode(text, stop, &len));
      if (word_before || word_after) {
        pos = stop;  // as a non-overlapping search goes on after the match
        continue;
      }
    }
    if (token.lstrip) {
      while (start > chunk_start) {
        std::size_t prev;
        std::uint32_t c = last_code_point(text, start, &prev);
        if (c == unicode::kInvalid || !is_space(c, spaces_)) break;
        start = prev;
      }
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        std::size_t len;
        std::uint32_t c = unicode::decode(text, stop, &len);
        if (c == unicode::kInvalid || !is_space(c, spaces_)) break;
        stop += len;
      }
    }
    out.push_back({text.substr(chunk_start, start - chunk_start), -1});
    out.push_back({{}, index});
    chunk_start = stop;
    pos = stop;
  }
  out.push_back({text.substr(chunk_start), -1});
}

}  // namespace openrm::detail
