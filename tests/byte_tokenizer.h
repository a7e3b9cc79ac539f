// A tokenizer with one token per byte (id = byte + 3; BOS 1, EOS 2, PAD 0),
// so tests know every sequence length in closed form: bytes + specials.
#pragma once

#include <openrm/tokenizer/tokenizer.h>

#include <string>
#include <vector>

namespace openrm::test {

class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(bool add_bos = true) : add_bos_(add_bos) {
    special_.pad = {0, "<pad>"};
    special_.bos = {1, "<s>"};
    special_.eos = {2, "</s>"};
    using Kind = TemplatePiece::Kind;
    if (add_bos) {
      pair_ = {{Kind::kTokens, {1}, 0}, {Kind::kFirst, {}, 0}, {Kind::kTokens, {1}, 1}, {Kind::kSecond, {}, 1}};
    } else {
      pair_ = {{Kind::kFirst, {}, 0}, {Kind::kSecond, {}, 1}};
    }
  }
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& o = {}) const override {
    std::vector<TokenId> ids;
    if (o.add_bos.value_or(add_bos_)) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(static_cast<TokenId>(c) + 3);
    if (o.add_eos.value_or(false)) ids.push_back(2);
    return ids;
  }
  std::string decode(const std::vector<TokenId>& ids, bool skip_special = false) const override {
    std::string s;
    for (TokenId id : ids) {
      if (id >= 3) s.push_back(static_cast<char>(id - 3));
      else if (!skip_special) s += id == 1 ? "<s>" : id == 2 ? "</s>" : "<pad>";
    }
    return s;
  }
  std::int64_t vocab_size() const override { return 259; }
  const SpecialTokens& special_tokens() const override { return special_; }
  const std::vector<AddedToken>& added_tokens() const override { return added_; }
  std::optional<TokenId> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(TokenId id) const override { return decode({id}); }
  bool default_add_bos() const override { return add_bos_; }
  bool default_add_eos() const override { return false; }
  const std::string& chat_template() const override { return template_; }
  const std::string& source() const override { return source_; }
  TokenizerBackend backend() const override { return TokenizerBackend::kSentencePiece; }
  const std::vector<TemplatePiece>& pair_template() const override { return pair_; }

 private:
  bool add_bos_;
  SpecialTokens special_;
  std::vector<AddedToken> added_;
  std::vector<TemplatePiece> pair_;
  std::string template_;
  std::string source_ = "byte-tokenizer";
};

}  // namespace openrm::test
