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
#include "tokenizer/added_vocabulary.h"

namespace openrm::detail {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, sentencepiece's space

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

// ---- the tokenizer --------------------------------------------------------------

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::shared_ptr<const SpmModel> model,
                         std::shared_ptr<const SpmModel> no_dummy_prefix,
                         const TokenizerFolderConfig& config, std::string source);

  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options) const override;
  std::string decode(const std::vector<TokenId>& ids, bool skip_special) const override;
  std::int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokens& special_tokens() const override { return special_; }
  const std::vector<AddedToken>& added_tokens() const override { return vocab_.tokens(); }
  std::optional<TokenId> token_to_id(std::string_view piece) const override;
  std::string id_to_token(TokenId id) const override;
  bool default_add_bos() const override { return add_bos_; }
  bool default_add_eos() const override { return add_eos_; }
  const std::string& chat_template() const override { return chat_template_; }
  const std::string& source() const override { return source_; }
  TokenizerBackend backend() const override { return TokenizerBackend::kSentencePiece; }
  const std::vector<TemplatePiece>& pair_template() const override { return pair_; }

 private:
  using Segment = AddedVocabulary::Segment;
  void encode_chunk(std::string_view chunk, std::vector<TokenId>& out) const;

  std::shared_ptr<const SpmModel> model_;
  std::shared_ptr<const SpmModel> no_dummy_prefix_;  // legacy=false only
  std::string source_;
  TokenId base_size_ = 0;
  std::int64_t vocab_size_ = 0;
  SpecialTokens special_;
  AddedVocabulary vocab_;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool legacy_ = true;
  bool add_prefix_space_ = true;
  std::string unk_text_;             // legacy=false: the prefix that keeps a leading "▁"
  std::size_t unk_prefix_len_ = 0;   // ids that no_dummy_prefix_ encodes unk_text_ to
  std::optional<TokenId> space_id_;  // the piece "▁"
  std::string chat_template_;
  // What add_bos / add_eos write: BOS and EOS, or [CLS] and [SEP] for the
  // BERT-style classes (DebertaV2Tokenizer, AlbertTokenizer).
  SpecialToken prefix_token_;
  SpecialToken suffix_token_;
  std::vector<TemplatePiece> pair_;
};

// transformers' sentencepiece classes that write [CLS] A [SEP] and
// [CLS] A [SEP] B [SEP] rather than BOS/EOS.
bool is_bert_style_class(const std::optional<std::string>& name) {
  if (!name) return false;
  for (const char* known : {"DebertaV2Tokenizer", "DebertaV2TokenizerFast", "AlbertTokenizer", "AlbertTokenizerFast"}) {
    if (*name == known) return true;
  }
  return false;
}

SentencePieceTokenizer::SentencePieceTokenizer(std::shared_ptr<const SpmModel> model,
                                               std::shared_ptr<const SpmModel> no_dummy_prefix,
                                               const TokenizerFolderConfig& config, std::string source)
    : model_(std::move(model)),
      no_dummy_prefix_(std::move(no_dummy_prefix)),
      source_(std::move(source)),
      base_size_(model_->piece_size()),
      vocab_(base_size_, [m = model_](TokenId id) { return std::string(m->id_to_piece(id)); },
             model_->name()) {
  // The model's own control symbols and its unknown piece may be written in
  // text ("<s>", "[INST]"); transformers splits on them as special tokens.
  for (TokenId id = 0; id < base_size_; ++id) {
    if (model_->is_control(id) || model_->is_unknown(id)) {
      std::string_view piece = model_->id_to_piece(id);
      if (piece.empty()) continue;
      AddedToken token;
      token.text = std::string(piece);
      token.id = id;
      vocab_.add(std::move(token), model_->name(), true);
    }
  }
  for (const auto& added : config.added) vocab_.add(added.token, added.origin, added.special_given);

  auto model_token = [&](TokenId id) {
    SpecialToken token;
    if (id >= 0 && id < base_size_) token = {id, std::string(model_->id_to_piece(id))};
    return token;
  };
  special_.bos = model_token(model_->bos_id());
  special_.eos = model_token(model_->eos_id());
  special_.pad = model_token(model_->pad_id());
  special_.unk = model_token(model_->unk_id());
  vocab_.add_named_tokens(
      config, [this](std::string_view text) { return model_->piece_to_id(text); },
      "a piece of " + model_->name(), special_);

  vocab_.finish(AddedVocabulary::Spaces::kPython);
  vocab_size_ = std::max<std::int64_t>(base_size_, vocab_.end_id());

  if (is_bert_style_class(config.tokenizer_class)) {
    // The class's defaults when the folder names no [CLS] / [SEP].
    auto piece = [&](SpecialToken& token, const char* text) {
      if (token.present()) return;
      if (auto id = model_->piece_to_id(text)) token = {*id, text};
    };
    piece(special_.cls, "[CLS]");
    piece(special_.sep, "[SEP]");
    if (!special_.cls.present() || !special_.sep.present()) {
      throw Error(source_ + ": tokenizer_config.json names the class " + *config.tokenizer_class +
                  ", which writes [CLS] text [SEP], but the folder names no cls_token / sep_token and the "
                  "model has no [CLS] / [SEP] piece");
    }
    prefix_token_ = special_.cls;
    suffix_token_ = special_.sep;
    add_bos_ = config.add_bos.value_or(true);
    add_eos_ = config.add_eos.value_or(true);
    pair_ = bert_pair_template(special_.cls.id, special_.sep.id);
  } else {
    prefix_token_ = special_.bos;
    suffix_token_ = special_.eos;
    add_bos_ = config.add_bos.value_or(special_.bos.present());
    add_eos_ = config.add_eos.value_or(false);
    std::vector<TokenId> prefix, suffix;
    if (add_bos_ && prefix_token_.present()) prefix.push_back(prefix_token_.id);
    if (add_eos_ && suffix_token_.present()) suffix.push_back(suffix_token_.id);
    pair_ = pair_template_from_single(prefix, suffix);
  }
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
  if (options.add_bos.value_or(add_bos_) && prefix_token_.present()) ids.push_back(prefix_token_.id);
  if (!text.empty()) {
    std::string prepared;
    if (!legacy_) {
      // transformers (legacy=false): "▁" in the text is a space, and one
      // prefix "▁" stands for sentencepiece's dummy prefix.
      prepared = replace_all(text, kSpaceMarker, " ");
      if (add_prefix_space_) prepared.insert(0, kSpaceMarker);
      text = prepared;
    }
    std::vector<Segment> segments;
    if (options.parse_special) {
      vocab_.split(text, /*normalized=*/false, /*with_special=*/true, segments);
    } else {
      segments.push_back({text, -1});
    }
    const std::size_t body_start = ids.size();
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const Segment& segment = segments[i];
      if (segment.token >= 0) {
        ids.push_back(vocab_.tokens()[segment.token].id);
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
  if (options.add_eos.value_or(add_eos_) && suffix_token_.present()) ids.push_back(suffix_token_.id);
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
    if (const AddedToken* token = vocab_.find_id(id)) {
      if (skip_special && token->special) continue;
      flush();
      out += token->text;
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
  if (const AddedToken* token = vocab_.find_text(piece)) return token->id;
  return model_->piece_to_id(piece);
}

std::string SentencePieceTokenizer::id_to_token(TokenId id) const {
  if (const AddedToken* token = vocab_.find_id(id)) return token->text;
  if (id >= 0 && id < base_size_) return std::string(model_->id_to_piece(id));
  throw Error(source_ + ": token id " + std::to_string(id) + " is not in the vocabulary (size " +
              std::to_string(vocab_size_) + ")");
}

}  // namespace

std::shared_ptr<const Tokenizer> make_sentencepiece_tokenizer(
    std::shared_ptr<const SpmModel> model, std::shared_ptr<const SpmModel> no_dummy_prefix,
    const TokenizerFolderConfig& config, std::string source) {
  return std::make_shared<const SentencePieceTokenizer>(
      std::move(model), std::move(no_dummy_prefix), config, std::move(source));
}

}  // namespace openrm::detail
