#include "openrm/models/model_folder.h"

#include "io/json_util.h"
#include "openrm/error.h"
#include "openrm/io/file.h"

namespace openrm {
namespace {
constexpr const char* kOpenrmJson = "openrm.json";
}  // namespace

ModelMetadata read_model_metadata(const std::string& dir) {
  ModelMetadata meta;
  const auto path = join_path(dir, kOpenrmJson);
  if (!path_exists(path)) return meta;
  const std::string text = read_text_file(path);
  auto j = detail::parse_json_checked<nlohmann::json>(text.data(), text.data() + text.size(), path,
                                                      detail::JsonParseLimits{});
  with_context(path, [&] {
    if (!j.is_object()) throw Error("expected a JSON object");
    if (j.contains("pooling")) {
      if (!j["pooling"].is_string()) throw Error("field 'pooling': expected a string");
      meta.pooling = with_context("field 'pooling'", [&] { return parse_pooling(j["pooling"].get<std::string>()); });
      j.erase("pooling");
    }
    if (j.contains("chat_format")) {
      if (!j["chat_format"].is_string()) throw Error("field 'chat_format': expected a string");
      meta.chat_format = with_context("field 'chat_format'",
                                      [&] { return chat_format_from_name(j["chat_format"].get<std::string>()); });
      j.erase("chat_format");
    }
  });
  meta.other = std::move(j);
  return meta;
}

void write_model_metadata(const std::string& dir, const ModelMetadata& metadata) {
  nlohmann::json j = metadata.other.is_object() ? metadata.other : nlohmann::json::object();
  if (!j.contains("format_version")) j["format_version"] = 1;
  if (metadata.pooling) j["pooling"] = pooling_name(*metadata.pooling);
  if (metadata.chat_format) j["chat_format"] = chat_format_name(*metadata.chat_format);
  write_file_atomic(join_path(dir, kOpenrmJson), j.dump(2) + "\n");
}

RewardModelFolder load_reward_model_folder(const std::string& dir, const LoadOptions& options) {
  RewardModelFolder folder;
  folder.metadata = read_model_metadata(dir);
  folder.model = load_reward_model(dir, options);
  if (has_tokenizer(dir)) folder.tokenizer = load_tokenizer(dir);
  if (folder.metadata.chat_format) {
    folder.chat_format = *folder.metadata.chat_format;
  } else if (folder.tokenizer) {
    folder.chat_format = default_chat_format(*folder.tokenizer);
  }
  return folder;
}

}  // namespace openrm
