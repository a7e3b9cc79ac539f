// What a model folder's JSON files say about its tokenizer (internal), read
// once for every backend: the special-token fields, added tokens with their
// flags, add_bos_token/add_eos_token, legacy, the chat template.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "openrm/tokenizer/tokenizer.h"

namespace openrm::detail {

// What a model folder's JSON files say about the tokenizer. `origin` strings
// ("tokenizer_config.json: bos_token") name where a value came from, for
// error messages.
struct TokenizerFolderConfig {
  struct NamedToken {
    std::string text;
    std::string origin;
    std::optional<bool> lstrip;  // set when given as an AddedToken object
    std::optional<bool> rstrip;
  };
  struct Added {
    AddedToken token;
    std::string origin;
    bool special_given = false;  // token.special came from the file
  };
  std::optional<NamedToken> bos, eos, pad, unk;
  // BERT-style tokenizers' [CLS] and [SEP] (DeBERTa, ...): the pair template
  // [CLS] A [SEP] B [SEP] of a sentencepiece folder is built from them.
  std::optional<NamedToken> cls, sep;
  std::vector<NamedToken> additional_special;
  std::vector<Added> added;
  std::optional<bool> add_bos;
  std::optional<bool> add_eos;
  bool legacy = true;            // transformers' default when the file does not say
  bool add_prefix_space = true;  // only used when legacy is false
  std::string chat_template;
  // transformers' decode() clean-up of spaces before punctuation; unset
  // when the file does not say.
  std::optional<bool> clean_up_tokenization_spaces;
  std::optional<std::string> tokenizer_class;
  // The files that were read, for messages.
  std::vector<std::string> files;
};

// Reads the JSON files of a model folder that describe its tokenizer:
// added_tokens.json, then tokenizer_config.json, then special_tokens_map.json
// (whose values replace tokenizer_config.json's, as in transformers), then
// chat_template.jinja (transformers 5 writes the template there). Absent
// files are skipped; a malformed one is an openrm::Error naming the file and
// the field.
TokenizerFolderConfig read_tokenizer_folder_config(const std::string& folder);

// Parses a JSON file whose top level must be an object (duplicate keys are an
// error); throws openrm::Error naming the file and the place.
nlohmann::json read_json_object_file(const std::string& path);

// The pair template transformers gives a tokenizer whose single-sequence
// rule is prefix A suffix: prefix A suffix prefix B suffix, types 0 then 1.
std::vector<TemplatePiece> pair_template_from_single(const std::vector<TokenId>& prefix,
                                                     const std::vector<TokenId>& suffix);
// [CLS] A [SEP] B [SEP], types 0 0 0 1 1 (BertProcessing, DebertaV2Tokenizer).
std::vector<TemplatePiece> bert_pair_template(TokenId cls, TokenId sep);

}  // namespace openrm::detail
