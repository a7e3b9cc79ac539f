// The added vocabulary shared by the tokenizer backends (internal): tokens
// declared on top of a base vocabulary (tokenizer.json's added_tokens,
// added_tokens.json, tokenizer_config.json's added_tokens_decoder and
// special-token fields, a sentencepiece model's control pieces), and the
// splitting of text on them that comes before the base model, honouring each
// token's lstrip, rstrip, single_word, normalized and special flags as
// tokenizers' AddedVocabulary does.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "openrm/tokenizer/tokenizer.h"
#include "tokenizer/folder_config.h"

namespace openrm::detail {

class AddedVocabulary {
 public:
  // What lstrip/rstrip eat: Python's str.isspace() (transformers' slow
  // tokenizers) or Unicode White_Space (tokenizers).
  enum class Spaces { kPython, kUnicode };

  // `base_size` ids belong to the base vocabulary; `base_piece(id)` gives the
  // base piece of such an id, to check tokens that claim one; `base_name`
  // names the base in errors.
  AddedVocabulary(TokenId base_size, std::function<std::string(TokenId)> base_piece,
                  std::string base_name);

  // Adds `token`, or updates the flags of the token with the same text and
  // id. Throws openrm::Error (naming `origin` and the earlier declaration)
  // for an empty or negative token, a base id with other text, one text with
  // two ids, or one id with two texts. `special_given`: token.special comes
  // from the file; otherwise an existing token keeps its flag and a new one
  // is not special.
  void add(AddedToken token, const std::string& origin, bool special_given);

  // The special-token fields of `config` (bos/eos/pad/unk_token, then
  // sep/cls/mask and additional_special_tokens): each named text is looked up
  // among the added tokens, then with `base_id` in the base vocabulary, and
  // becomes a special added token (so encode splits on it), keeping the flags
  // of an added token it names and the lstrip/rstrip its field gives. Sets the
  // entries of `special` the config names. A text found nowhere is an error
  // ("... is neither an added token nor " + `base_what`).
  void add_named_tokens(const TokenizerFolderConfig& config,
                        const std::function<std::optional<TokenId>(std::string_view)>& base_id,
                        const std::string& base_what, SpecialTokens& special);

  // Call once after the last add(): orders the tokens by id and builds the
  // matchers. `normalize` gives the form a normalized=true token is matched in
  // (the backend's normalizer applied to its text). Without it (a backend
  // with no normalizer stage, sentencepiece) every token is matched in the
  // raw text.
  void finish(Spaces spaces, const std::function<std::string(std::string_view)>& normalize = {});

  // By id, ascending (after finish()).
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  const AddedToken* find_text(std::string_view text) const;
  const AddedToken* find_id(TokenId id) const;
  // Largest id + 1, or 0 when empty.
  std::int64_t end_id() const;

  struct Segment {
    std::string_view text;  // a chunk of text, when token < 0
    int token = -1;         // else an index into tokens()
  };
  // Cuts `text` at the tokens whose `normalized` flag equals `normalized`
  // (special tokens only when `with_special`), appending text chunks and
  // tokens in order; text chunks may be empty.
  void split(std::string_view text, bool normalized, bool with_special,
             std::vector<Segment>& out) const;
  bool has_matchers(bool normalized) const;

 private:
  class Trie {
   public:
    Trie() : nodes_(1) {}
    void insert(std::string_view text, int value);
    // The longest key that starts at text[pos] and passes `accept`, as
    // (value, length); (-1, 0) when none.
    template <typename Accept>
    std::pair<int, std::size_t> longest_match(std::string_view text, std::size_t pos,
                                              const Accept& accept) const;
    bool may_start(unsigned char byte) const { return first_[byte]; }
    bool empty() const { return nodes_.size() == 1; }

   private:
    struct Node {
      std::vector<std::pair<unsigned char, int>> children;
      int value = -1;
    };
    int child(int node, unsigned char byte) const;
    std::vector<Node> nodes_;
    bool first_[256] = {};
  };

  TokenId base_size_;
  std::function<std::string(TokenId)> base_piece_;
  std::string base_name_;
  Spaces spaces_ = Spaces::kUnicode;
  std::vector<AddedToken> tokens_;
  std::vector<std::string> origins_;
  std::unordered_map<std::string, std::size_t> by_text_;
  std::unordered_map<TokenId, std::size_t> by_id_;
  Trie raw_, normalized_;
};

}  // namespace openrm::detail
