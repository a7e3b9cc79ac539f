// read_tokenizer_folder_config; see folder_config.h.
#include "tokenizer/folder_config.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/json_util.h"
#include "openrm/error.h"
#include "openrm/io/file.h"

namespace openrm::detail {
namespace {

using json = nlohmann::json;

}  // namespace

json read_json_object_file(const std::string& path) {
  std::string text = read_text_file(path);
  detail::JsonParseLimits limits;
  limits.reject_duplicate_keys = true;
  json root =
      detail::parse_json_checked<json>(text.data(), text.data() + text.size(), path, limits);
  if (!root.is_object()) throw Error(path + ": expected a JSON object at the top level");
  return root;
}

namespace {

std::string type_name(const json& value) { return value.type_name(); }

std::optional<bool> optional_bool(const json& object, const char* key, const std::string& file) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) {
    throw Error(file + ": " + key + ": expected true or false, got " + type_name(*it));
  }
  return it->get<bool>();
}

// A token field: "text", {"content": "text", "lstrip": ..., ...}, or null
// (std::nullopt).
std::optional<TokenizerFolderConfig::NamedToken> parse_named_token(const json& value,
                                                             const std::string& origin) {
  if (value.is_null()) return std::nullopt;
  TokenizerFolderConfig::NamedToken token;
  token.origin = origin;
  if (value.is_string()) {
    token.text = value.get<std::string>();
  } else if (value.is_object()) {
    auto content = value.find("content");
    if (content == value.end() || !content->is_string()) {
      throw Error(origin + ": expected a string \"content\" in the token object");
    }
    token.text = content->get<std::string>();
    token.lstrip = optional_bool(value, "lstrip", origin);
    token.rstrip = optional_bool(value, "rstrip", origin);
  } else {
    throw Error(origin + ": expected a string, an object with \"content\", or null, got " +
                type_name(value));
  }
  if (token.text.empty()) throw Error(origin + ": the token is an empty string");
  return token;
}

void read_token_fields(const json& root, const std::string& file, TokenizerFolderConfig& config) {
  std::pair<const char*, std::optional<TokenizerFolderConfig::NamedToken>*> named[] = {
      {"bos_token", &config.bos},
      {"eos_token", &config.eos},
      {"pad_token", &config.pad},
      {"unk_token", &config.unk},
      {"cls_token", &config.cls},
      {"sep_token", &config.sep}};
  for (auto& [key, target] : named) {
    auto it = root.find(key);
    if (it == root.end()) continue;
    auto token = parse_named_token(*it, file + ": " + key);
    if (token) *target = std::move(token);
  }
  // transformers splits text on this too; openrm has no role for it.
  for (const char* key : {"mask_token"}) {
    auto it = root.find(key);
    if (it == root.end()) continue;
    if (auto token = parse_named_token(*it, file + ": " + key)) {
      config.additional_special.push_back(std::move(*token));
    }
  }
  auto extra = root.find("additional_special_tokens");
  if (extra == root.end() || extra->is_null()) return;
  if (!extra->is_array()) {
    throw Error(file + ": additional_special_tokens: expected a list, got " + type_name(*extra));
  }
  for (std::size_t i = 0; i < extra->size(); ++i) {
    auto origin = file + ": additional_special_tokens[" + std::to_string(i) + "]";
    if (auto token = parse_named_token((*extra)[i], origin)) {
      config.additional_special.push_back(std::move(*token));
    }
  }
}

TokenId parse_id(const std::string& text, const std::string& origin) {
  if (text.empty() || text.size() > 10 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(origin + ": expected a non-negative token id, got \"" + text + "\"");
  }
  long long id = std::stoll(text);
  if (id > std::numeric_limits<TokenId>::max())
    throw Error(origin + ": token id " + text + " is too large");
  return static_cast<TokenId>(id);
}

void read_added_tokens_decoder(const json& decoder, const std::string& file,
                               TokenizerFolderConfig& config) {
  if (decoder.is_null()) return;
  if (!decoder.is_object()) {
    throw Error(file + ": added_tokens_decoder: expected an object, got " + type_name(decoder));
  }
  for (auto it = decoder.begin(); it != decoder.end(); ++it) {
    std::string origin = file + ": added_tokens_decoder[\"" + it.key() + "\"]";
    TokenizerFolderConfig::Added added;
    added.origin = origin;
    added.token.id = parse_id(it.key(), origin);
    const json& entry = it.value();
    if (!entry.is_object()) throw Error(origin + ": expected an object, got " + type_name(entry));
    auto content = entry.find("content");
    if (content == entry.end() || !content->is_string()) {
      throw Error(origin + ": expected a string \"content\"");
    }
    added.token.text = content->get<std::string>();
    added.token.lstrip = optional_bool(entry, "lstrip", origin).value_or(false);
    added.token.rstrip = optional_bool(entry, "rstrip", origin).value_or(false);
    added.token.single_word = optional_bool(entry, "single_word", origin).value_or(false);
    auto special = optional_bool(entry, "special", origin);
    added.token.special = special.value_or(false);
    added.special_given = special.has_value();
    // transformers' AddedToken: normalized defaults to "not special".
    added.token.normalized = optional_bool(entry, "normalized", origin).value_or(!added.token.special);
    config.added.push_back(std::move(added));
  }
}

void read_tokenizer_config(const std::string& path, TokenizerFolderConfig& config) {
  json root = read_json_object_file(path);
  const std::string file = path;
  if (auto it = root.find("added_tokens_decoder"); it != root.end()) {
    read_added_tokens_decoder(*it, file, config);
  }
  read_token_fields(root, file, config);
  config.add_bos = optional_bool(root, "add_bos_token", file);
  config.add_eos = optional_bool(root, "add_eos_token", file);
  config.legacy = optional_bool(root, "legacy", file).value_or(true);
  config.add_prefix_space = optional_bool(root, "add_prefix_space", file).value_or(true);
  config.clean_up_tokenization_spaces = optional_bool(root, "clean_up_tokenization_spaces", file);
  if (auto it = root.find("tokenizer_class"); it != root.end() && !it->is_null()) {
    if (!it->is_string())
      throw Error(file + ": tokenizer_class: expected a string, got " + type_name(*it));
    config.tokenizer_class = it->get<std::string>();
  }
  auto chat = root.find("chat_template");
  if (chat == root.end() || chat->is_null()) return;
  if (chat->is_string()) {
    config.chat_template = chat->get<std::string>();
  } else if (chat->is_array()) {
    // Several named templates: the one called "default" is the chat template.
    for (std::size_t i = 0; i < chat->size(); ++i) {
      const json& entry = (*chat)[i];
      std::string origin = file + ": chat_template[" + std::to_string(i) + "]";
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
          !entry.contains("template") || !entry["template"].is_string()) {
        throw Error(origin + ": expected {\"name\": string, \"template\": string}");
      }
      if (entry["name"] == "default") config.chat_template = entry["template"].get<std::string>();
    }
  } else {
    throw Error(file + ": chat_template: expected a string or a list, got " + type_name(*chat));
  }
}

void read_special_tokens_map(const std::string& path, TokenizerFolderConfig& config) {
  json root = read_json_object_file(path);
  // Its values replace tokenizer_config.json's, as in transformers.
  if (root.contains("additional_special_tokens")) {
    std::vector<TokenizerFolderConfig::NamedToken> kept;
    for (auto& token : config.additional_special) {
      if (token.origin.find("additional_special_tokens") == std::string::npos) {
        kept.push_back(std::move(token));
      }
    }
    config.additional_special = std::move(kept);
  }
  read_token_fields(root, path, config);
}

void read_added_tokens_json(const std::string& path, TokenizerFolderConfig& config) {
  json root = read_json_object_file(path);
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string origin = path + ": \"" + it.key() + "\"";
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
        it->get<std::int64_t>() > std::numeric_limits<TokenId>::max()) {
      throw Error(origin + ": expected a non-negative integer token id, got " + it->dump());
    }
    TokenizerFolderConfig::Added added;
    added.origin = origin;
    added.token.text = it.key();
    added.token.id = static_cast<TokenId>(it->get<std::int64_t>());
    added.token.special = false;  // unless a special-token field names it
    config.added.push_back(std::move(added));
  }
}

}  // namespace

TokenizerFolderConfig read_tokenizer_folder_config(const std::string& folder) {
  TokenizerFolderConfig config;
  // added_tokens.json first: the others may name its tokens as special.
  std::string added = join_path(folder, "added_tokens.json");
  if (path_exists(added)) {
    read_added_tokens_json(added, config);
    config.files.push_back(added);
  }
  std::string tokenizer_config = join_path(folder, "tokenizer_config.json");
  if (path_exists(tokenizer_config)) {
    read_tokenizer_config(tokenizer_config, config);
    config.files.push_back(tokenizer_config);
  }
  std::string special_map = join_path(folder, "special_tokens_map.json");
  if (path_exists(special_map)) {
    read_special_tokens_map(special_map, config);
    config.files.push_back(special_map);
  }
  // transformers 5's save_pretrained writes the template to its own file,
  // which takes the place of tokenizer_config.json's.
  std::string jinja = join_path(folder, "chat_template.jinja");
  if (path_exists(jinja) && !is_directory(jinja)) {
    config.chat_template = read_text_file(jinja);
    config.files.push_back(jinja);
  }
  return config;
}

}  // namespace openrm::detail
