// load_tokenizer / has_tokenizer: chooses the backend from the files of a
// model folder (tokenizer.json first, as transformers' fast tokenizers, then a
// sentencepiece model), and hands it what the folder's JSON files say about
// special and added tokens (folder_config.h).
#include "openrm/tokenizer/tokenizer.h"

#include <string>
#include <vector>

#include "logging.h"
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
  if (!use_json) return load_sentencepiece(model_path, config, path);
  // The fallback below only for the classes whose sentencepiece ids are
  // their ids (DeBERTa-v2/v3): others (XLM-R's fairseq offset, T5's extra
  // ids) would give other ids silently.
  const bool spm_ids_are_the_ids =
      config.tokenizer_class &&
      (*config.tokenizer_class == "DebertaV2Tokenizer" || *config.tokenizer_class == "DebertaV2TokenizerFast");
  if (backend != TokenizerBackend::kAuto || model_path.empty() || !spm_ids_are_the_ids) {
    return detail::make_hf_tokenizer(json_path, config, path);
  }
  try {
    return detail::make_hf_tokenizer(json_path, config, path);
  } catch (const detail::UnsupportedTokenizerComponent& e) {
    // DeBERTa-v3 folders: tokenizer.json holds a Unigram model converted from
    // the sentencepiece model next to it, which gives the same ids (and those
    // of transformers 4; docs/tokenizers.md has where transformers 5 departs).
    log().warn("{}: {}; reading the folder's sentencepiece model {} instead", path, e.what(), model_path);
    return load_sentencepiece(model_path, config, path);
  }
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

PairEncoding Tokenizer::encode_pair(std::string_view first, std::string_view second, bool parse_special) const {
  PairEncoding out;
  if (second.empty()) {
    // transformers takes an empty text_pair for none: tokenizer(first).
    EncodeOptions single;
    single.parse_special = parse_special;
    out.ids = encode(first, single);
    out.type_ids.assign(out.ids.size(), 0);
    return out;
  }
  EncodeOptions bare;
  bare.add_bos = false;
  bare.add_eos = false;
  bare.parse_special = parse_special;
  for (const TemplatePiece& piece : pair_template()) {
    if (piece.kind == TemplatePiece::Kind::kTokens) {
      out.ids.insert(out.ids.end(), piece.ids.begin(), piece.ids.end());
    } else {
      std::vector<TokenId> ids = encode(piece.kind == TemplatePiece::Kind::kFirst ? first : second, bare);
      out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    }
    out.type_ids.resize(out.ids.size(), piece.type_id);
  }
  return out;
}

namespace detail {

std::vector<TemplatePiece> pair_template_from_single(const std::vector<TokenId>& prefix,
                                                     const std::vector<TokenId>& suffix) {
  std::vector<TemplatePiece> out;
  for (int type = 0; type < 2; ++type) {
    if (!prefix.empty()) out.push_back({TemplatePiece::Kind::kTokens, prefix, type});
    out.push_back({type == 0 ? TemplatePiece::Kind::kFirst : TemplatePiece::Kind::kSecond, {}, type});
    if (!suffix.empty()) out.push_back({TemplatePiece::Kind::kTokens, suffix, type});
  }
  return out;
}

std::vector<TemplatePiece> bert_pair_template(TokenId cls, TokenId sep) {
  return {{TemplatePiece::Kind::kTokens, {cls}, 0},
          {TemplatePiece::Kind::kFirst, {}, 0},
          {TemplatePiece::Kind::kTokens, {sep}, 0},
          {TemplatePiece::Kind::kSecond, {}, 1},
          {TemplatePiece::Kind::kTokens, {sep}, 1}};
}

}  // namespace detail

std::string tokenizer_backend_name(TokenizerBackend backend) {
  switch (backend) {
    case TokenizerBackend::kAuto: return "auto";
    case TokenizerBackend::kTokenizerJson: return "tokenizer.json";
    case TokenizerBackend::kSentencePiece: return "sentencepiece";
  }
  return "?";
}

}  // namespace openrm
