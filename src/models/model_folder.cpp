#include "openrm/models/model_folder.h"

#include "io/json_util.h"
#include "logging.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/models/lora.h"

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
    // A field holding a name, parsed by `parse` into `out` and taken out of j.
    auto named = [&](const char* key, auto& out, auto parse) {
      if (!j.contains(key)) return;
      const std::string field = std::string("field '") + key + "'";
      if (!j[key].is_string()) throw Error(field + ": expected a string");
      out = with_context(field, [&] { return parse(j[key].get<std::string>()); });
      j.erase(key);
    };
    named("pooling", meta.pooling, parse_pooling);
    named("chat_format", meta.chat_format, chat_format_from_name);
    if (j.contains("max_length")) {
      if (!j["max_length"].is_number_integer() || j["max_length"].get<std::int64_t>() < 0) {
        throw Error("field 'max_length': expected an integer >= 0, got " + j["max_length"].dump());
      }
      meta.max_length = j["max_length"].get<std::int64_t>();
      j.erase("max_length");
    }
    named("truncation", meta.truncation, truncation_policy_from_name);
  });
  meta.other = std::move(j);
  return meta;
}

void write_model_metadata(const std::string& dir, const ModelMetadata& metadata) {
  nlohmann::json j = metadata.other.is_object() ? metadata.other : nlohmann::json::object();
  if (!j.contains("format_version")) j["format_version"] = 1;
  if (metadata.pooling) j["pooling"] = pooling_name(*metadata.pooling);
  if (metadata.chat_format) j["chat_format"] = chat_format_name(*metadata.chat_format);
  if (metadata.max_length) j["max_length"] = *metadata.max_length;
  if (metadata.truncation) j["truncation"] = truncation_policy_name(*metadata.truncation);
  write_file_atomic(join_path(dir, kOpenrmJson), j.dump(2) + "\n");
}

std::int64_t effective_max_length(const ModelConfig& config, const ModelMetadata& metadata,
                                  std::optional<std::int64_t> requested) {
  const std::optional<std::int64_t> asked = requested ? requested : metadata.max_length;
  const std::int64_t length = asked.value_or(kDefaultMaxLength);
  const std::int64_t positions = config.max_position_embeddings;
  if (positions <= 0 || (length > 0 && length <= positions)) return length;
  if (asked && *asked > positions) {
    log().warn("max_length {}{} is more than the model's max_position_embeddings, {}: sequences are truncated "
               "to {} tokens", *asked, requested ? "" : " (openrm.json)", positions, positions);
  }
  return positions;
}

std::string model_tokenizer_folder(const std::string& dir, const LoadOptions& options) {
  if (has_tokenizer(dir)) return dir;
  if (is_lora_adapter_folder(dir)) {
    const std::string base = lora_base_folder(dir, options.base_model);
    if (has_tokenizer(base)) return base;
  }
  return "";
}

RewardModelFolder load_reward_model_folder(const std::string& dir, const LoadOptions& options) {
  RewardModelFolder folder;
  const bool adapter = is_lora_adapter_folder(dir);
  const std::string base = adapter ? lora_base_folder(dir, options.base_model) : std::string();
  folder.metadata = read_model_metadata(adapter && !path_exists(join_path(dir, kOpenrmJson)) ? base : dir);
  folder.model = load_reward_model(dir, options);
  const std::string tokenizer_dir = model_tokenizer_folder(dir, options);
  if (!tokenizer_dir.empty()) {
    folder.tokenizer = load_tokenizer(tokenizer_dir);
    check_tokenizer_fits_model(*folder.tokenizer, folder.model->config(), dir);
  }
  if (folder.metadata.chat_format) {
    folder.chat_format = *folder.metadata.chat_format;
  } else if (folder.tokenizer) {
    try {
      folder.chat_format = default_chat_format(*folder.tokenizer);
    } catch (const Error& e) {
      folder.chat_format_error = e.what();
    }
  }
  return folder;
}

void check_tokenizer_fits_model(const Tokenizer& tokenizer, const ModelConfig& config, const std::string& model) {
  const std::int64_t ids = tokenizer.vocab_size();
  if (ids <= config.vocab_size) return;
  throw Error("the tokenizer " + tokenizer.source() + " does not fit the model " + model + ": it has " +
              std::to_string(ids) + " token ids (0.." + std::to_string(ids - 1) +
              "), and the model's vocab_size is " + std::to_string(config.vocab_size) +
              " (config.json); use the tokenizer the model was trained with");
}

void set_pair_token_types(RewardModel& model, const Tokenizer& tokenizer, ChatFormat format) {
  const SpecialToken& sep = tokenizer.special_tokens().sep;
  if (format == ChatFormat::kPair && sep.present()) {
    model.set_token_type_separator(sep.id);
  } else {
    model.set_token_type_separator(std::nullopt);
  }
}

}  // namespace openrm
