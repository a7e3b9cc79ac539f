// A reward-model folder as a whole: the model, the tokenizer beside it, the
// chat format, and openrm.json (what config.json has no field for).
#pragma once

#include <openrm/models/reward_model.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/tokenizer.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

namespace openrm {

// The contents of openrm.json. Fields openrm does not know are kept in
// `other` and written back unchanged.
struct ModelMetadata {
  std::optional<Pooling> pooling;
  std::optional<ChatFormat> chat_format;
  nlohmann::json other = nlohmann::json::object();
};

// Reads dir/openrm.json; an absent file gives empty metadata. Errors name the
// file and field.
ModelMetadata read_model_metadata(const std::string& dir);
// Writes dir/openrm.json atomically.
void write_model_metadata(const std::string& dir, const ModelMetadata& metadata);

struct RewardModelFolder {
  std::shared_ptr<RewardModel> model;
  // Null when the folder holds no tokenizer (has_tokenizer(dir) is false).
  std::shared_ptr<const Tokenizer> tokenizer;
  // openrm.json's chat_format, else the tokenizer's recognised chat_template,
  // else kPlain.
  ChatFormat chat_format = ChatFormat::kPlain;
  ModelMetadata metadata;
};

// load_reward_model + load_tokenizer (when the folder has one) + metadata.
RewardModelFolder load_reward_model_folder(const std::string& dir, const LoadOptions& options = {});

}  // namespace openrm
