// Training sentencepiece tokenizers through the bridge, and writing the
// tokenizer_config.json that makes a trained model a loadable folder.
#include "openrm/tokenizer/train_tokenizer.h"

#include <filesystem>
#include <iomanip>
#include <locale>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "openrm/error.h"
#include "openrm/io/file.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace openrm {
namespace {

const std::set<std::string> kModelTypes = {"bpe", "unigram"};
const std::set<std::string> kNormalizations = {"identity", "nmt_nfkc", "nfkc", "nmt_nfkc_cf",
                                               "nfkc_cf"};

std::string join_names(const std::set<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

void check_symbols(const std::vector<std::string>& symbols, const char* field) {
  for (const auto& symbol : symbols) {
    if (symbol.empty()) throw Error(std::string(field) + ": empty symbol");
    if (symbol.find(',') != std::string::npos) {
      throw Error(std::string(field) + ": '" + symbol +
                  "' contains a comma, which sentencepiece's flag cannot carry");
    }
  }
}

std::string exact(double value) {
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out << std::setprecision(17) << value;
  return out.str();
}

std::string flag(bool value) { return value ? "true" : "false"; }

std::string join_symbols(const std::vector<std::string>& symbols) {
  std::string out;
  for (const auto& symbol : symbols) out += (out.empty() ? "" : ",") + symbol;
  return out;
}

std::vector<std::pair<std::string, std::string>> trainer_flags(const TokenizerTrainOptions& o) {
  std::vector<std::pair<std::string, std::string>> flags = {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", exact(o.character_coverage)},
      {"byte_fallback", flag(o.byte_fallback)},
      {"unk_id", std::to_string(o.unk_id)},
      {"bos_id", std::to_string(o.bos_id)},
      {"eos_id", std::to_string(o.eos_id)},
      {"pad_id", std::to_string(o.pad_id)},
      {"unk_piece", o.unk_piece},
      {"bos_piece", o.bos_piece},
      {"eos_piece", o.eos_piece},
      {"pad_piece", o.pad_piece},
      {"normalization_rule_name", o.normalization},
      {"add_dummy_prefix", flag(o.add_dummy_prefix)},
      {"remove_extra_whitespaces", flag(o.remove_extra_whitespaces)},
      {"split_digits", flag(o.split_digits)},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"num_threads", std::to_string(o.num_threads)},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      {"shuffle_input_sentence", flag(o.shuffle_input_sentence)},
      // 0: progress lines; 2: errors only (their text also comes back in
      // the returned status).
      {"minloglevel", o.verbose ? "0" : "2"},
  };
  if (!o.user_defined_symbols.empty()) {
    flags.emplace_back("user_defined_symbols", join_symbols(o.user_defined_symbols));
  }
  if (!o.control_symbols.empty()) {
    flags.emplace_back("control_symbols", join_symbols(o.control_symbols));
  }
  return flags;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void validate(const TokenizerTrainOptions& o) {
  if (o.vocab_size <= 0)
    throw Error("vocab_size must be positive, got " + std::to_string(o.vocab_size));
  if (kModelTypes.count(o.model_type) == 0) {
    throw Error("model_type '" + o.model_type + "' is not one of " + join_names(kModelTypes));
  }
  if (!(o.character_coverage > 0.0 && o.character_coverage <= 1.0)) {
    throw Error("character_coverage must be in (0, 1], got " +
                std::to_string(o.character_coverage));
  }
  if (kNormalizations.count(o.normalization) == 0) {
    throw Error("normalization '" + o.normalization + "' is not one of " +
                join_names(kNormalizations));
  }
  std::pair<const char*, int> ids[] = {
      {"unk_id", o.unk_id}, {"bos_id", o.bos_id}, {"eos_id", o.eos_id}, {"pad_id", o.pad_id}};
  std::set<int> seen;
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= o.vocab_size) {
      throw Error(std::string(name) + " must be -1 or in [0, vocab_size), got " +
                  std::to_string(id));
    }
    if (id >= 0 && !seen.insert(id).second) {
      throw Error(std::string(name) + " " + std::to_string(id) +
                  " is also another special piece's id");
    }
  }
  if (o.unk_id < 0) throw Error("unk_id cannot be -1: sentencepiece needs an unknown piece");
  check_symbols(o.user_defined_symbols, "user_defined_symbols");
  check_symbols(o.control_symbols, "control_symbols");
  if (o.max_sentence_length <= 0) throw Error("max_sentence_length must be positive");
  if (o.num_threads <= 0) throw Error("num_threads must be positive");
  if (o.input_sentence_size < 0) throw Error("input_sentence_size must not be negative");
}

void train_sentencepiece(const std::vector<std::string>& texts,
                         const std::string& output_model_path,
                         const TokenizerTrainOptions& options) {
  with_context("training tokenizer " + output_model_path, [&] {
    validate(options);
    std::size_t usable = 0;
    for (const auto& text : texts) {
      if (!text.empty() && static_cast<std::int64_t>(text.size()) <= options.max_sentence_length) {
        ++usable;
      }
    }
    if (usable == 0) {
      throw Error("no training text (" + std::to_string(texts.size()) +
                  " texts, none non-empty and at most max_sentence_length = " +
                  std::to_string(options.max_sentence_length) + " bytes)");
    }
    std::string model = detail::spm_train(trainer_flags(options), texts, options.seed);
    // A model that does not load is not written.
    detail::SpmModel::load_bytes(model, "the trained model");
    write_file_atomic(output_model_path, model);
  });
}

void write_tokenizer_config(const std::string& folder, const Tokenizer& tokenizer) {
  using json = nlohmann::ordered_json;
  const SpecialTokens& special = tokenizer.special_tokens();
  auto token_or_null = [](const SpecialToken& token) {
    return token.present() ? json(token.text) : json(nullptr);
  };
  json decoder = json::object();
  for (const auto& token : tokenizer.added_tokens()) {
    decoder[std::to_string(token.id)] = {{"content", token.text}, {"lstrip", token.lstrip},
                                         {"normalized", false},   {"rstrip", token.rstrip},
                                         {"single_word", false},  {"special", token.special}};
  }
  json config;
  if (tokenizer.backend() == TokenizerBackend::kTokenizerJson) {
    // The tokenizer.json's own pipeline and post-processor, unchanged: the
    // generic fast class (transformers 5: TokenizersBackend) keeps both, and
    // no add_bos_token/add_eos_token, which would replace the post-processor.
    config = {
        {"tokenizer_class", "PreTrainedTokenizerFast"},
        {"added_tokens_decoder", decoder},
        {"bos_token", token_or_null(special.bos)},
        {"eos_token", token_or_null(special.eos)},
        {"pad_token", token_or_null(special.pad)},
        {"unk_token", token_or_null(special.unk)},
        {"clean_up_tokenization_spaces", false},
    };
  } else {
    config = {
        {"tokenizer_class", "LlamaTokenizer"},
        {"add_bos_token", tokenizer.default_add_bos()},
        {"add_eos_token", tokenizer.default_add_eos()},
        {"added_tokens_decoder", decoder},
        {"bos_token", token_or_null(special.bos)},
        {"eos_token", token_or_null(special.eos)},
        {"pad_token", token_or_null(special.pad)},
        {"unk_token", token_or_null(special.unk)},
        // Written out, so transformers does not warn; true is what it assumes
        // when the field is absent, and what openrm does with a bare .model.
        {"legacy", true},
        {"clean_up_tokenization_spaces", false},
        {"sp_model_kwargs", json::object()},
    };
  }
  if (!tokenizer.chat_template().empty()) config["chat_template"] = tokenizer.chat_template();
  write_file_atomic(join_path(folder, "tokenizer_config.json"), config.dump(2) + "\n");
}

std::shared_ptr<const Tokenizer> train_tokenizer(const std::vector<std::string>& texts,
                                                 const std::string& output,
                                                 const TokenizerTrainOptions& options) {
  if (ends_with(output, ".model")) {
    train_sentencepiece(texts, output, options);
    return load_tokenizer(output);
  }
  std::error_code ec;
  std::filesystem::create_directories(output, ec);
  if (ec) throw Error(output + ": cannot create folder: " + ec.message());
  std::string model_path = join_path(output, "tokenizer.model");
  train_sentencepiece(texts, model_path, options);
  write_tokenizer_config(output, *load_tokenizer(model_path));
  return load_tokenizer(output);
}

}  // namespace openrm
