// load_tokenizer / has_tokenizer: chooses the backend from the files of a
// model folder (tokenizer.json first, as transformers' fast tokenizers, then a
// sentencepiece model), and hands it what the folder's JSON files say about
// special and added tokens (folder_config.h).
#include "openrm/tokenizer/tokenizer.h"

#include <string>
#include <vector>

#include "openrm/error.h"
#include "openrm/io/file.h"
#include "tokenizer/folder_config.h"
#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace openrm {
namespace {

using detail::TokenizerFolderConfig;

constexpr const char* kTokenizerJson = "tokenizer.json";

// The file names a folder's sentencepiece model may have, in order of preference.
const char* const kModelFiles[] = {"tokenizer.model", "spm.model", "sentencepiece.bpe.model"};

std::string find_model_file(const std::string& folder) {
  for (const char* name : kModelFiles) {
    std::string path = join_path(folder, name);
    if (path_exists(path) && !is_directory(path)) return path;
  }
  return {};
}

bool is_json_file(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

std::shared_ptr<const Tokenizer> load_sentencepiece(const std::string& model_path,
                                                    const TokenizerFolderConfig& config,
                                                    const std::string& source) {
  std::string bytes = read_text_file(model_path);
  auto model = detail::SpmModel::load_bytes(bytes, model_path);
  std::shared_ptr<const detail::SpmModel> no_dummy_prefix;
  if (!config.legacy)
    no_dummy_prefix = detail::SpmModel::load_bytes_without_dummy_prefix(bytes, model_path);
  return detail::make_sentencepiece_tokenizer(std::move(model), std::move(no_dummy_prefix), config,
                                              source);
}

std::shared_ptr<const Tokenizer> load_from(const std::string& path, TokenizerBackend backend) {
  if (!is_directory(path)) {
    if (!path_exists(path)) throw Error("no such file or folder");
    // A lone file: tokenizer.json, or a sentencepiece model.
    if (is_json_file(path)) return detail::make_hf_tokenizer(path, {}, path);
    return load_sentencepiece(path, {}, path);
  }
  const std::string json_path = join_path(path, kTokenizerJson);
  const bool has_json = path_exists(json_path) && !is_directory(json_path);
  const std::string model_path = find_model_file(path);
  // transformers' fast tokenizers, what AutoTokenizer loads, read
  // tokenizer.json when the folder has one.
  bool use_json = has_json;
  if (backend == TokenizerBackend::kTokenizerJson) {
    if (!has_json) throw Error("no tokenizer.json in the folder (the tokenizer.json backend was asked for)");
    use_json = true;
  } else if (backend == TokenizerBackend::kSentencePiece) {
    if (model_path.empty()) {
      throw Error(
          "no sentencepiece model (tokenizer.model, spm.model or sentencepiece.bpe.model) in the "
          "folder (the sentencepiece backend was asked for)");
    }
    use_json = false;
  }
  if (!use_json && model_path.empty()) {
    throw Error(
        "no tokenizer in the folder: neither tokenizer.json nor a sentencepiece model "
        "(tokenizer.model, spm.model or sentencepiece.bpe.model)");
  }
  TokenizerFolderConfig config = detail::read_tokenizer_folder_config(path);
  if (use_json) return detail::make_hf_tokenizer(json_path, config, path);
  return load_sentencepiece(model_path, config, path);
}

}  // namespace

std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& path, TokenizerBackend backend) {
  return with_context("loading tokenizer " + path, [&] { return load_from(path, backend); });
}

bool has_tokenizer(const std::string& folder) {
  if (!is_directory(folder)) return false;
  const std::string json_path = join_path(folder, kTokenizerJson);
  if (path_exists(json_path) && !is_directory(json_path)) return true;
  return !find_model_file(folder).empty();
}

std::string tokenizer_backend_name(TokenizerBackend backend) {
  switch (backend) {
    case TokenizerBackend::kAuto: return "auto";
    case TokenizerBackend::kTokenizerJson: return "tokenizer.json";
    case TokenizerBackend::kSentencePiece: return "sentencepiece";
  }
  return "?";
}

}  // namespace openrm
