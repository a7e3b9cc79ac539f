// Tokenizers: text <-> token ids, with the special tokens a reward model's
// folder declares. The sentencepiece backend loads tokenizer.model files
// (Llama, Mistral, Gemma, ...) through a bridge library (see DESIGN.md,
// "sentencepiece and LibTorch clash"), so programs that use LibTorch can use it.
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
};

struct EncodeOptions {
  // Prepend BOS / append EOS; std::nullopt means the tokenizer's default
  // (tokenizer_config.json's add_bos_token / add_eos_token, else BOS on, EOS off
  // when the model has them).
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;
  // Recognise added/special token strings in the text (transformers' default).
  // Off: "<s>" in user text is encoded as ordinary characters.
  bool parse_special = true;
};

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
};

// Loads a tokenizer from a sentencepiece model file, or from a model folder
// holding tokenizer.model (or spm.model / sentencepiece.bpe.model) and, when
// present, tokenizer_config.json, special_tokens_map.json and
// added_tokens.json. Throws openrm::Error naming the file on any problem.
std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& path);

// True when `folder` holds a tokenizer load_tokenizer can read.
bool has_tokenizer(const std::string& folder);

}  // namespace openrm
