// The tokenizer.json backend (internal): Hugging Face tokenizers' pipeline
// (normalizer, pre-tokenizer, model, post-processor, decoder) read from a
// tokenizer.json file and run in C++, giving the ids the `tokenizers` library
// gives. docs/tokenizers.md lists the components it implements; any other
// component in a file is an error naming it.
#pragma once

#include <memory>
#include <string>

#include "openrm/error.h"
#include "openrm/tokenizer/tokenizer.h"
#include "tokenizer/folder_config.h"

namespace openrm::detail {

// Thrown for a component of tokenizer.json that openrm does not implement
// (a Unigram model, a Precompiled normalizer, ...), so that a folder that
// also holds its sentencepiece model can be read through that instead.
class UnsupportedTokenizerComponent : public Error {
 public:
  using Error::Error;
};

// `json_path` is the tokenizer.json file; `config` what the folder's other
// JSON files say (empty for a lone tokenizer.json); `source` names the
// tokenizer in messages. Throws openrm::Error naming the file and the
// component on anything it cannot read or does not implement.
std::shared_ptr<const Tokenizer> make_hf_tokenizer(const std::string& json_path,
                                                   const TokenizerFolderConfig& config,
                                                   std::string source);

}  // namespace openrm::detail
