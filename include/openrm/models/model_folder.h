// A reward-model folder as a whole: the model, the tokenizer beside it, the
// chat format, and openrm.json (what config.json has no field for).
#pragma once

#include <openrm/data/tokenize.h>
#include <openrm/io/config.h>
#include <openrm/models/reward_model.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/tokenizer.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace openrm {

// The contents of openrm.json. Fields openrm does not know are kept in
// `other` and written back unchanged.
struct ModelMetadata {
  std::optional<Pooling> pooling;
  std::optional<ChatFormat> chat_format;
  // The max_length and truncation policy the model was trained with
  // (openrm-train writes them): the defaults of openrm-eval and openrm-score.
  std::optional<std::int64_t> max_length;
  std::optional<TruncationPolicy> truncation;
  nlohmann::json other = nlohmann::json::object();
};

// Reads dir/openrm.json; an absent file gives empty metadata. Errors name the
// file and field.
ModelMetadata read_model_metadata(const std::string& dir);
// Writes dir/openrm.json atomically.
void write_model_metadata(const std::string& dir, const ModelMetadata& metadata);

// max_length when neither the caller nor openrm.json gives one.
inline constexpr std::int64_t kDefaultMaxLength = 2048;

// The one length rule of openrm-train, openrm-eval and openrm-score
// (docs/batching.md): `requested`, else openrm.json's max_length, else
// kDefaultMaxLength; 0 asks for as many tokens as the model takes; the result
// is never more than config.max_position_embeddings (when the config has
// one). A request for more, from the caller or openrm.json, is lowered with
// one warning; the default is lowered silently. Returns 0 (no limit) only for
// a request of 0 on a model with no max_position_embeddings.
std::int64_t effective_max_length(const ModelConfig& config, const ModelMetadata& metadata,
                                  std::optional<std::int64_t> requested);

struct RewardModelFolder {
  std::shared_ptr<RewardModel> model;
  // Null when the folder holds no tokenizer (has_tokenizer(dir) is false).
  std::shared_ptr<const Tokenizer> tokenizer;
  // openrm.json's chat_format, else the tokenizer's recognised chat_template,
  // else kPlain.
  ChatFormat chat_format = ChatFormat::kPlain;
  // Set (and chat_format left kPlain) when the tokenizer has a chat_template
  // that is none of the built-in formats and openrm.json names none: the
  // message default_chat_format threw, for a caller that needs the format
  // and was given none (Scorer::from_folder without ScoreOptions::chat_format).
  std::string chat_format_error;
  ModelMetadata metadata;
};

// load_reward_model + load_tokenizer (when the folder has one) + metadata.
// A PEFT adapter folder (openrm/models/lora.h) loads merged onto its base;
// the tokenizer and openrm.json are the adapter folder's, else the base
// folder's.
RewardModelFolder load_reward_model_folder(const std::string& dir, const LoadOptions& options = {});

// The folder whose tokenizer goes with the model folder `dir`: `dir` when
// has_tokenizer(dir); for a PEFT adapter folder without tokenizer files, its
// base folder (LoadOptions::base_model, else base_model_name_or_path) when
// that has one; else "".
std::string model_tokenizer_folder(const std::string& dir, const LoadOptions& options = {});

// Throws openrm::Error, naming both, when `tokenizer` can produce ids the
// model has no embedding for (its vocabulary, added tokens included, is
// larger than the model's vocab_size): the tokenizer does not fit the model.
void check_tokenizer_fits_model(const Tokenizer& tokenizer, const ModelConfig& config, const std::string& model);

// How `model` reads token types from the ids: for records encoded as text
// pairs (ChatFormat::kPair), type 1 after the tokenizer's [SEP]
// (RewardModel::set_token_type_separator); for every other format, none.
void set_pair_token_types(RewardModel& model, const Tokenizer& tokenizer, ChatFormat format);

}  // namespace openrm
