// The sentencepiece Tokenizer: a model loaded through the bridge, plus the
// added and special tokens of a model folder, encoding text as transformers'
// sentencepiece-based (slow, LlamaTokenizer-style) tokenizers do.
// docs/tokenizers.md describes the rules.
#include "tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "openrm/error.h"

namespace openrm::detail {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, sentencepiece's space

// ---- whitespace as Python's str.strip() sees it ---------------------------------

bool is_python_space(std::uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Decodes the UTF-8 code point of `len` bytes at text[pos]; 0xFFFFFFFF when
// the bytes are not a well-formed sequence.
std::uint32_t code_point(std::string_view text, std::size_t pos, std::size_t len) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  if (len == 1) return byte(0) < 0x80 ? byte(0) : 0xFFFFFFFFu;
  std::uint32_t c = byte(0) & (0xFF >> (len + 1));
  for (std::size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0xFFFFFFFFu;
    c = (c << 6) | (byte(i) & 0x3F);
  }
  return c;
}

std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

std::string_view lstrip_space(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t len = sequence_length(static_cast<unsigned char>(text[pos]));
    if (len == 0 || pos + len > text.size() || !is_python_space(code_point(text, pos, len))) break;
    pos += len;
  }
  return text.substr(pos);
}

std::string_view rstrip_space(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;  // back to the lead byte, at most 3 steps
    while (start > 0 && end - start < 4 &&
           (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
      --start;
    }
    std::size_t len = sequence_length(static_cast<unsigned char>(text[start]));
    if (len != end - start || !is_python_space(code_point(text, start, len))) break;
    end = start;
  }
  return text.substr(0, end);
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (true) {
    std::size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos)).append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

// ---- longest-match lookup of token strings --------------------------------------

class TokenTrie {
 public:
  TokenTrie() : nodes_(1) {}
  void insert(std::string_view text, int value) {
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
  }
  // The value and length of the longest token that starts at text[pos].
  std::pair<int, std::size_t> longest_match(std::string_view text, std::size_t pos) const {
    std::pair<int, std::size_t> best{-1, 0};
    int node = 0;
    for (std::size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      if (nodes_[node].value >= 0) best = {nodes_[node].value, i + 1 - pos};
    }
    return best;
  }
  bool empty() const { return nodes_.size() == 1; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;
    int value = -1;
  };
  int child(int node, unsigned char byte) const {
    for (const auto& [b, next] : nodes_[node].children) {
      if (b == byte) return next;
    }
    return -1;
  }
  std::vector<Node> nodes_;
};

// ---- the tokenizer --------------------------------------------------------------

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::shared_ptr<const SpmModel> model,
                         std::shared_ptr<const SpmModel> no_dummy_prefix,
                         const SpmFolderConfig& config, std::string source);

  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special) const override;
  std::int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokens& special_tokens() const override { return special_; }
  const std::vector<AddedToken>& added_tokens() const override { return added_; }
  std::optional<TokenId> token_to_id(std::string_view piece) const override;
  std::string id_to_token(TokenId id) const override;
  bool default_add_bos() const override { return add_bos_; }
  bool default_add_eos() const override { return add_eos_; }
  const std::string& chat_template() const override { return chat_template_; }
  const std::string& source() const override { return source_; }

 private:
  struct Segment {
    std::string_view text;  // a chunk of text, when token < 0
    int token = -1;         // else an index into added_
  };
  void add_token(AddedToken token, const std::string& origin, bool special_given);
  SpecialToken resolve_named(const SpmFolderConfig::NamedToken& named);
  std::vector<Segment> split(std::string_view text, bool parse_special) const;
  void encode_chunk(std::string_view chunk, std::vector<TokenId>& out) const;

  std::shared_ptr<const SpmModel> model_;
  std::shared_ptr<const SpmModel> no_dummy_prefix_;  // legacy=false only
  std::string source_;
  TokenId base_size_ = 0;
  std::int64_t vocab_size_ = 0;
  SpecialTokens special_;
  std::vector<AddedToken> added_;
  std::vector<std::string> added_origin_;  // where each added token was declared
  std::unordered_map<std::string, std::size_t> added_by_text_;
  std::unordered_map<TokenId, std::size_t> added_by_id_;
  TokenTrie trie_;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool legacy_ = true;
  bool add_prefix_space_ = true;
  std::string unk_text_;             // legacy=false: the prefix that keeps a leading "▁"
  std::size_t unk_prefix_len_ = 0;   // ids that no_dummy_prefix_ encodes unk_text_ to
  std::optional<TokenId> space_id_;  // the piece "▁"
  std::string chat_template_;
};

SentencePieceTokenizer::SentencePieceTokenizer(std::shared_ptr<const SpmModel> model,
                                               std::shared_ptr<const SpmModel> no_dummy_prefix,
                                               const SpmFolderConfig& config, std::string source)
    : model_(std::move(model)),
      no_dummy_prefix_(std::move(no_dummy_prefix)),
      source_(std::move(source)) {
  base_size_ = model_->piece_size();
  // The model's own control symbols and its unknown piece may be written in
  // text ("<s>", "[INST]"); transformers splits on them as special tokens.
  for (TokenId id = 0; id < base_size_; ++id) {
    if (model_->is_control(id) || model_->is_unknown(id)) {
      std::string_view piece = model_->id_to_piece(id);
      if (piece.empty()) continue;
      AddedToken token;
      token.text = std::string(piece);
      token.id = id;
      add_token(std::move(token), model_->name(), true);
    }
  }
  for (const auto& added : config.added) add_token(added.token, added.origin, added.special_given);

  auto model_token = [&](TokenId id) {
    SpecialToken token;
    if (id >= 0 && id < base_size_) token = {id, std::string(model_->id_to_piece(id))};
    return token;
  };
  special_.bos = model_token(model_->bos_id());
  special_.eos = model_token(model_->eos_id());
  special_.pad = model_token(model_->pad_id());
  special_.unk = model_token(model_->unk_id());
  std::pair<const std::optional<SpmFolderConfig::NamedToken>*, SpecialToken*> named[] = {
      {&config.bos, &special_.bos},
      {&config.eos, &special_.eos},
      {&config.pad, &special_.pad},
      {&config.unk, &special_.unk}};
  for (auto& [given, target] : named) {
    if (given->has_value()) *target = resolve_named(**given);
  }
  for (const auto& extra : config.additional_special) resolve_named(extra);

  vocab_size_ = base_size_;
  for (const auto& token : added_) vocab_size_ = std::max<std::int64_t>(vocab_size_, token.id + 1);
  std::vector<std::size_t> order(added_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return added_[a].id < added_[b].id; });
  std::vector<AddedToken> sorted;
  for (std::size_t i : order) sorted.push_back(added_[i]);
  added_ = std::move(sorted);
  added_by_text_.clear();
  added_by_id_.clear();
  for (std::size_t i = 0; i < added_.size(); ++i) {
    added_by_text_[added_[i].text] = i;
    added_by_id_[added_[i].id] = i;
    trie_.insert(added_[i].text, static_cast<int>(i));
  }

  add_bos_ = config.add_bos.value_or(special_.bos.present());
  add_eos_ = config.add_eos.value_or(false);
  legacy_ = config.legacy;
  add_prefix_space_ = config.add_prefix_space;
  chat_template_ = config.chat_template;
  space_id_ = model_->piece_to_id(kSpaceMarker);
  if (!legacy_) {
    if (!no_dummy_prefix_)
      throw Error(source_ + ": legacy=false needs the model without dummy prefix");
    unk_text_ = special_.unk.present() ? special_.unk.text
                                       : std::string(model_->id_to_piece(model_->unk_id()));
    unk_prefix_len_ = no_dummy_prefix_->encode(unk_text_).size();
  }
}

void SentencePieceTokenizer::add_token(AddedToken token, const std::string& origin,
                                       bool special_given) {
  if (token.text.empty())
    throw Error(origin + ": added token " + std::to_string(token.id) + " has empty content");
  if (token.id < 0)
    throw Error(origin + ": added token " + in_quotes(token.text) + " has a negative id");
  if (token.id < base_size_) {
    std::string_view piece = model_->id_to_piece(token.id);
    if (piece != token.text) {
      throw Error(origin + ": added token " + in_quotes(token.text) + " has id " +
                  std::to_string(token.id) + ", which is the piece " + in_quotes(piece) + " of " +
                  model_->name());
    }
  }
  auto by_text = added_by_text_.find(token.text);
  if (by_text != added_by_text_.end()) {
    AddedToken& existing = added_[by_text->second];
    if (existing.id != token.id) {
      throw Error(origin + ": token " + in_quotes(token.text) + " has id " +
                  std::to_string(token.id) + ", but id " + std::to_string(existing.id) + " in " +
                  added_origin_[by_text->second]);
    }
    existing.lstrip = token.lstrip;
    existing.rstrip = token.rstrip;
    if (special_given) existing.special = token.special;
    return;
  }
  auto by_id = added_by_id_.find(token.id);
  if (by_id != added_by_id_.end()) {
    throw Error(origin + ": id " + std::to_string(token.id) + " is given to " +
                in_quotes(token.text) + " here and to " + in_quotes(added_[by_id->second].text) +
                " in " + added_origin_[by_id->second]);
  }
  if (!special_given) token.special = false;
  added_by_text_[token.text] = added_.size();
  added_by_id_[token.id] = added_.size();
  added_.push_back(std::move(token));
  added_origin_.push_back(origin);
}

// A token a JSON file names (bos_token, additional_special_tokens, ...):
// looked up among the added tokens, then in the model's pieces; it becomes a
// special added token, so encode splits on it.
SpecialToken SentencePieceTokenizer::resolve_named(const SpmFolderConfig::NamedToken& named) {
  TokenId id = -1;
  auto found = added_by_text_.find(named.text);
  if (found != added_by_text_.end()) {
    id = added_[found->second].id;
  } else if (auto piece = model_->piece_to_id(named.text)) {
    id = *piece;
  } else {
    throw Error(named.origin + ": token " + in_quotes(named.text) +
                " is neither an added token nor a piece of " + model_->name());
  }
  AddedToken token;
  token.text = named.text;
  token.id = id;
  token.special = true;
  if (found != added_by_text_.end()) {
    token.lstrip = added_[found->second].lstrip;
    token.rstrip = added_[found->second].rstrip;
  }
  if (named.lstrip) token.lstrip = *named.lstrip;
  if (named.rstrip) token.rstrip = *named.rstrip;
  add_token(std::move(token), named.origin, true);
  return {id, named.text};
}

std::vector<SentencePieceTokenizer::Segment> SentencePieceTokenizer::split(
    std::string_view text, bool parse_special) const {
  std::vector<Segment> segments;
  if (!parse_special || trie_.empty()) {
    segments.push_back({text, -1});
    return segments;
  }
  std::size_t chunk_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto [token, length] = trie_.longest_match(text, pos);
    if (token < 0) {
      ++pos;
      continue;
    }
    segments.push_back({text.substr(chunk_start, pos - chunk_start), -1});
    segments.push_back({{}, token});
    pos += length;
    chunk_start = pos;
  }
  segments.push_back({text.substr(chunk_start), -1});
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].token < 0) continue;
    const AddedToken& token = added_[segments[i].token];
    if (token.lstrip && i > 0) segments[i - 1].text = rstrip_space(segments[i - 1].text);
    if (token.rstrip && i + 1 < segments.size()) {
      segments[i + 1].text = lstrip_space(segments[i + 1].text);
    }
  }
  return segments;
}

void SentencePieceTokenizer::encode_chunk(std::string_view chunk, std::vector<TokenId>& out) const {
  if (legacy_) {
    // Each chunk on its own: sentencepiece adds its dummy "▁" to each.
    std::vector<TokenId> ids = model_->encode(chunk);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  // legacy=false, as transformers: the model without its dummy prefix; a
  // chunk that starts with a space is encoded as "<unk>" + chunk, and the
  // ids of "<unk>" dropped, so that sentencepiece keeps the space.
  if (chunk.substr(0, kSpaceMarker.size()) != kSpaceMarker && chunk.substr(0, 1) != " ") {
    std::vector<TokenId> ids = no_dummy_prefix_->encode(chunk);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  std::string joined = unk_text_;
  joined.append(chunk);
  std::vector<TokenId> ids = no_dummy_prefix_->encode(joined);
  std::size_t skip = ids.size() >= unk_prefix_len_ ? unk_prefix_len_ : 0;
  out.insert(out.end(), ids.begin() + static_cast<std::ptrdiff_t>(skip), ids.end());
}

std::vector<TokenId> SentencePieceTokenizer::encode(std::string_view text,
                                                    const EncodeOptions& options) const {
  std::vector<TokenId> ids;
  if (options.add_bos.value_or(add_bos_) && special_.bos.present()) ids.push_back(special_.bos.id);
  if (!text.empty()) {
    std::string prepared;
    if (!legacy_) {
      // transformers (legacy=false): "▁" in the text is a space, and one
      // prefix "▁" stands for sentencepiece's dummy prefix.
      prepared = replace_all(text, kSpaceMarker, " ");
      if (add_prefix_space_) prepared.insert(0, kSpaceMarker);
      text = prepared;
    }
    std::vector<Segment> segments = split(text, options.parse_special);
    const std::size_t body_start = ids.size();
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const Segment& segment = segments[i];
      if (segment.token >= 0) {
        ids.push_back(added_[segment.token].id);
        continue;
      }
      if (segment.text.empty()) continue;
      const std::size_t before = ids.size();
      encode_chunk(segment.text, ids);
      // legacy=false: a lone "▁" in front of a leading added token goes,
      // special or not (transformers 5's LlamaTokenizer: its Metaspace
      // prepends "▁" only to text at the very start, and the added token is
      // matched before it; transformers 4's slow class kept it before
      // non-special tokens).
      if (!legacy_ && before == body_start && ids.size() == before + 1 && space_id_ &&
          ids[before] == *space_id_ && i + 1 < segments.size() && segments[i + 1].token >= 0) {
        ids.pop_back();
      }
    }
  }
  if (options.add_eos.value_or(add_eos_) && special_.eos.present()) ids.push_back(special_.eos.id);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<TokenId>& ids,
                                           bool skip_special) const {
  std::string out;
  std::vector<TokenId> run;  // consecutive ids that sentencepiece decodes
  auto flush = [&] {
    if (run.empty()) return;
    std::string text = model_->decode(run.data(), run.size());
    // sentencepiece drops the leading "▁" of what it decodes. In the middle
    // of a text encoded with legacy=false that "▁" was a real space.
    if (!legacy_ && !out.empty() && (text.empty() || text[0] != ' ') &&
        model_->id_to_piece(run.front()).substr(0, kSpaceMarker.size()) == kSpaceMarker) {
      out += ' ';
    }
    out += text;
    run.clear();
  };
  for (TokenId id : ids) {
    if (id < 0 || id >= vocab_size_) {
      throw Error(source_ + ": cannot decode token id " + std::to_string(id) +
                  ": out of range for vocabulary size " + std::to_string(vocab_size_));
    }
    auto added = added_by_id_.find(id);
    if (added != added_by_id_.end()) {
      const AddedToken& token = added_[added->second];
      if (skip_special && token.special) continue;
      flush();
      out += token.text;
      continue;
    }
    if (id >= base_size_) {
      throw Error(source_ + ": cannot decode token id " + std::to_string(id) +
                  ": no piece or added token has it (vocabulary size " +
                  std::to_string(vocab_size_) + ")");
    }
    run.push_back(id);
  }
  flush();
  return out;
}

std::optional<TokenId> SentencePieceTokenizer::token_to_id(std::string_view piece) const {
  auto added = added_by_text_.find(std::string(piece));
  if (added != added_by_text_.end()) return added_[added->second].id;
  return model_->piece_to_id(piece);
}

std::string SentencePieceTokenizer::id_to_token(TokenId id) const {
  auto added = added_by_id_.find(id);
  if (added != added_by_id_.end()) return added_[added->second].text;
  if (id >= 0 && id < base_size_) return std::string(model_->id_to_piece(id));
  throw Error(source_ + ": token id " + std::to_string(id) + " is not in the vocabulary (size " +
              std::to_string(vocab_size_) + ")");
}

}  // namespace

std::shared_ptr<const Tokenizer> make_sentencepiece_tokenizer(
    std::shared_ptr<const SpmModel> model, std::shared_ptr<const SpmModel> no_dummy_prefix,
    const SpmFolderConfig& config, std::string source) {
  return std::make_shared<const SentencePieceTokenizer>(
      std::move(model), std::move(no_dummy_prefix), config, std::move(source));
}

}  // namespace openrm::detail
