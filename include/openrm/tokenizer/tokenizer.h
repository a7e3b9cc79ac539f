// Tokenizers: text <-> token ids, with the special tokens a reward model's
// folder declares. Two backends: tokenizer.json files (Llama-3, Qwen2/3,
// Gemma-2, GPT-2, ...: Hugging Face tokenizers' pipeline in C++), and
// sentencepiece tokenizer.model files (Llama, Mistral, Gemma, ...) through a
// bridge library (see DESIGN.md, "sentencepiece and LibTorch clash"), so
// programs that use LibTorch can use it. docs/tokenizers.md has the details.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace openrm {

using TokenId = std::int32_t;

// One special token; id -1 and empty text when the tokenizer has none.
struct SpecialToken {
  TokenId id = -1;
  std::string text;
  bool present() const { return id >= 0; }
};

struct SpecialTokens {
  SpecialToken bos;
  SpecialToken eos;
  SpecialToken pad;
  SpecialToken unk;
  // BERT-style tokenizers (DeBERTa, ...): the tokens around and between the
  // texts of a pair, as tokenizer_config.json's cls_token / sep_token name them.
  SpecialToken cls;
  SpecialToken sep;
};

// One piece of a pair template (how tokenizer(first, second) lays out two
// texts): special tokens, or one of the two texts, and the token type id
// its tokens get (token_type_ids in transformers).
struct TemplatePiece {
  enum class Kind { kTokens, kFirst, kSecond };
  Kind kind = Kind::kTokens;
  std::vector<TokenId> ids;  // kTokens only
  int type_id = 0;
};

// A text pair encoded: the ids and one token type id per id.
struct PairEncoding {
  std::vector<TokenId> ids;
  std::vector<std::int32_t> type_ids;
};

// A token added on top of the base vocabulary (added_tokens.json,
// tokenizer_config.json's added_tokens_decoder), or a control symbol of the
// base model that may appear in text ("<s>", "[INST]" in Mistral v3, ...).
// Encoding splits text on these strings first, as transformers does.
struct AddedToken {
  std::string text;
  TokenId id = -1;
  bool special = true;  // dropped by decode(skip_special=true)
  bool lstrip = false;  // eats whitespace to its left when matched
  bool rstrip = false;  // eats whitespace to its right when matched
  // Matched only where no word character touches it on either side.
  bool single_word = false;
  // Matched in the normalized text rather than the raw text (tokenizer.json
  // tokenizers only; a sentencepiece tokenizer has no normalizer of its own).
  bool normalized = false;
};

struct EncodeOptions {
  // Prepend BOS / append EOS; std::nullopt means the tokenizer's default
  // (tokenizer_config.json's add_bos_token / add_eos_token, else BOS on, EOS off
  // when the model has them).
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;
  // Recognise special token strings in the text (transformers' default).
  // Off: "<s>" in user text is encoded as ordinary characters (with the
  // tokenizer.json backend, as tokenizers' encode_special_tokens: added
  // tokens that are not special are still recognised).
  bool parse_special = true;
};

// Which implementation reads a folder's tokenizer.
enum class TokenizerBackend {
  kAuto,           // tokenizer.json when the folder has one, else the sentencepiece model
  kTokenizerJson,  // Hugging Face tokenizers' tokenizer.json, run in C++
  kSentencePiece,  // tokenizer.model through sentencepiece (transformers' slow tokenizers)
};
std::string tokenizer_backend_name(TokenizerBackend backend);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Thread-safe: may be called from several threads at once.
  virtual std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const = 0;
  virtual std::string decode(const std::vector<TokenId>& ids, bool skip_special = false) const = 0;

  // Base vocabulary plus added tokens (the largest id + 1).
  virtual std::int64_t vocab_size() const = 0;
  virtual const SpecialTokens& special_tokens() const = 0;
  virtual const std::vector<AddedToken>& added_tokens() const = 0;
  // The id of a piece / added token, if it exists.
  virtual std::optional<TokenId> token_to_id(std::string_view piece) const = 0;
  virtual std::string id_to_token(TokenId id) const = 0;

  virtual bool default_add_bos() const = 0;
  virtual bool default_add_eos() const = 0;
  // tokenizer_config.json's chat_template (empty when absent).
  virtual const std::string& chat_template() const = 0;
  // Where it was loaded from (for messages and model cards).
  virtual const std::string& source() const = 0;
  // kTokenizerJson or kSentencePiece.
  virtual TokenizerBackend backend() const = 0;

  // How a text pair is laid out: tokenizer.json's post-processor ("pair" of a
  // TemplateProcessing, BertProcessing, RobertaProcessing), a sentencepiece
  // folder's class ([CLS] A [SEP] B [SEP] for DeBERTa-v2/v3), or the single
  // sequence rule applied to each text (types 0 and 1) as transformers does
  // for the others. Never empty; holds kFirst and kSecond once each.
  virtual const std::vector<TemplatePiece>& pair_template() const = 0;

  // tokenizer(first, second) in transformers: each text encoded without
  // special tokens (special token strings in them recognised unless
  // parse_special is false), then laid out by pair_template(). An empty
  // second text is no pair, as in transformers: tokenizer(first), types 0.
  PairEncoding encode_pair(std::string_view first, std::string_view second, bool parse_special = true) const;
};

// Loads a tokenizer from a tokenizer.json file, a sentencepiece model file,
// or a model folder holding tokenizer.json and/or tokenizer.model (or
// spm.model / sentencepiece.bpe.model) and, when present,
// tokenizer_config.json, special_tokens_map.json and added_tokens.json. With
// kAuto a folder's tokenizer.json is preferred, as transformers' AutoTokenizer
// does. Throws openrm::Error naming the file on any problem.
std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& path,
                                                TokenizerBackend backend = TokenizerBackend::kAuto);

// True when `folder` holds a tokenizer load_tokenizer can read.
bool has_tokenizer(const std::string& folder);

}  // namespace openrm
