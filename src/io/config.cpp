// config.json parsing. Torch-free on purpose: the fuzzers build this file with
// nlohmann_json and the standard library only.
#include "openrm/io/config.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/json_util.h"
#include "openrm/error.h"
#include "openrm/io/file.h"

namespace openrm {

namespace {

using json = nlohmann::json;

constexpr const char* kSupportedRopeTypes = "default, linear, llama3";
constexpr const char* kSupportedLayerTypes = "full_attention, sliding_attention";
// More labels than any classification head plausibly has. The bound matters
// because to_json writes one id2label entry per label: the fuzzer found that
// "num_labels": 1354566326 made it build a billion-entry object.
constexpr std::int64_t kMaxNumLabels = 65536;

// A JSON value in an error message, cut short.
std::string brief(const json& value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

bool present(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

// Typed reads of one object's fields, with errors that name the file and the
// field's dotted path ("rope_scaling.factor").
class FieldReader {
 public:
  FieldReader(const json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw Error(source_ + ": field '" + prefix_ + key + "': " + problem);
  }
  [[noreturn]] void fail_expected(const std::string& key, const std::string& expected,
                                  const json& got) const {
    fail(key, "expected " + expected + ", got " + brief(got));
  }

  // nullptr when the key is absent or null.
  const json* find(const char* key) const {
    auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(const char* key) const { return find(key) != nullptr; }

  std::optional<std::int64_t> integer(const char* key, const char* expected) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (value->is_number_unsigned()) {
      if (value->get<std::uint64_t>() >
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail_expected(key, std::string(expected) + " (at most 2^63-1)", *value);
      }
      return static_cast<std::int64_t>(value->get<std::uint64_t>());
    }
    if (value->is_number_integer()) return value->get<std::int64_t>();
    fail_expected(key, expected, *value);
  }
  std::optional<std::int64_t> positive_int(const char* key) const {
    auto value = integer(key, "a positive integer");
    if (value && *value <= 0) fail_expected(key, "a positive integer", *find(key));
    return value;
  }
  std::optional<std::int64_t> non_negative_int(const char* key) const {
    auto value = integer(key, "a non-negative integer");
    if (value && *value < 0) fail_expected(key, "a non-negative integer", *find(key));
    return value;
  }
  std::optional<double> positive_number(const char* key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_number()) fail_expected(key, "a positive number", *value);
    double number = value->get<double>();
    if (!(number > 0) || !std::isfinite(number)) fail_expected(key, "a positive number", *value);
    return number;
  }
  std::optional<bool> boolean(const char* key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) fail_expected(key, "true or false", *value);
    return value->get<bool>();
  }
  std::optional<std::string> string(const char* key) const {
    const json* value = find(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_string()) fail_expected(key, "a string", *value);
    return value->get<std::string>();
  }
  std::vector<std::string> string_list(const char* key) const {
    std::vector<std::string> list;
    const json* value = find(key);
    if (value == nullptr) return list;
    if (!value->is_array()) fail_expected(key, "an array of strings", *value);
    for (const json& item : *value) {
      if (!item.is_string()) fail_expected(key, "an array of strings", *value);
      list.push_back(item.get<std::string>());
    }
    return list;
  }
  // A field that must be absent, null or an object.
  const json* object(const char* key) const {
    const json* value = find(key);
    if (value != nullptr && !value->is_object()) fail_expected(key, "an object or null", *value);
    return value;
  }

  const std::string& source() const { return source_; }

 private:
  const json& object_;
  std::string source_;
  std::string prefix_;
};

RopeType parse_rope_type(const FieldReader& reader, const std::string& name, const char* key) {
  if (name == "default") return RopeType::kDefault;
  if (name == "linear") return RopeType::kLinear;
  if (name == "llama3") return RopeType::kLlama3;
  reader.fail(key, "unsupported rope type '" + name + "'; supported: " + kSupportedRopeTypes);
}

// One rope object: rope_scaling ({"type"|"rope_type": ..., "factor": ...}) or
// rope_parameters ({"rope_type": ..., "rope_theta": ..., ...}).
RopeScaling parse_rope(const json& object, const std::string& source, const std::string& field) {
  FieldReader reader(object, source, field + ".");
  auto rope_type = reader.string("rope_type");
  auto legacy_type = reader.string("type");
  if (rope_type && legacy_type && *rope_type != *legacy_type) {
    reader.fail("type",
                "disagrees with rope_type ('" + *legacy_type + "' vs '" + *rope_type + "')");
  }
  if (!rope_type && !legacy_type) {
    throw Error(source + ": field '" + field + "': missing 'rope_type' (or 'type')");
  }
  const char* type_key = rope_type ? "rope_type" : "type";
  RopeScaling rope;
  rope.type = parse_rope_type(reader, rope_type ? *rope_type : *legacy_type, type_key);

  auto require_number = [&](const char* key) {
    auto value = reader.positive_number(key);
    if (!value) {
      reader.fail(key, std::string("required for rope type '") + rope_type_name(rope.type) +
                           "' (a positive number)");
    }
    return *value;
  };
  switch (rope.type) {
    case RopeType::kDefault: break;
    case RopeType::kLinear: rope.factor = require_number("factor"); break;
    case RopeType::kLlama3: {
      rope.factor = require_number("factor");
      rope.low_freq_factor = require_number("low_freq_factor");
      rope.high_freq_factor = require_number("high_freq_factor");
      auto original = reader.positive_int("original_max_position_embeddings");
      if (!original) {
        reader.fail("original_max_position_embeddings",
                    "required for rope type 'llama3' (a positive integer)");
      }
      rope.original_max_position_embeddings = *original;
      // The llama3 rule interpolates between the two wavelengths and divides
      // by their difference.
      if (!(rope.high_freq_factor > rope.low_freq_factor)) {
        reader.fail("high_freq_factor", "must be greater than low_freq_factor");
      }
      break;
    }
  }
  return rope;
}

bool same_rope(const RopeScaling& a, const RopeScaling& b) {
  return a.type == b.type && a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
         a.high_freq_factor == b.high_freq_factor &&
         a.original_max_position_embeddings == b.original_max_position_embeddings;
}

// Writes `rope` into a rope_scaling/rope_parameters object, keeping keys it
// does not model and dropping the ones that do not apply to its type.
void write_rope(const RopeScaling& rope, json* object) {
  bool legacy_only = object->contains("type") && !object->contains("rope_type");
  if (object->contains("type")) (*object)["type"] = rope_type_name(rope.type);
  if (!legacy_only) (*object)["rope_type"] = rope_type_name(rope.type);
  if (rope.type == RopeType::kDefault) {
    object->erase("factor");
  } else {
    (*object)["factor"] = rope.factor;
  }
  if (rope.type == RopeType::kLlama3) {
    (*object)["low_freq_factor"] = rope.low_freq_factor;
    (*object)["high_freq_factor"] = rope.high_freq_factor;
    (*object)["original_max_position_embeddings"] = rope.original_max_position_embeddings;
  } else {
    object->erase("low_freq_factor");
    object->erase("high_freq_factor");
    object->erase("original_max_position_embeddings");
  }
}

}  // namespace

const char* rope_type_name(RopeType type) {
  switch (type) {
    case RopeType::kDefault: return "default";
    case RopeType::kLinear: return "linear";
    case RopeType::kLlama3: return "llama3";
  }
  return "unknown";
}

ModelConfig parse_model_config(const std::string& text, const std::string& source) {
  detail::JsonParseLimits limits;
  limits.max_depth = 64;
  // Python's json module (and so transformers) keeps the last of duplicate
  // keys, as nlohmann does; accepting them keeps openrm reading what
  // transformers reads.
  limits.reject_duplicate_keys = false;
  json root =
      detail::parse_json_checked<json>(text.data(), text.data() + text.size(), source, limits);
  if (!root.is_object()) {
    throw Error(source + ": expected a JSON object at the top level, got " +
                std::string(root.type_name()));
  }
  FieldReader reader(root, source);
  ModelConfig config;

  std::vector<std::string> architectures = reader.string_list("architectures");
  if (!architectures.empty()) config.architecture = architectures[0];
  config.model_type = reader.string("model_type").value_or("");

  config.vocab_size = reader.positive_int("vocab_size").value_or(0);
  config.hidden_size = reader.positive_int("hidden_size").value_or(0);
  config.intermediate_size = reader.positive_int("intermediate_size").value_or(0);
  config.num_hidden_layers = reader.positive_int("num_hidden_layers").value_or(0);
  config.num_attention_heads = reader.positive_int("num_attention_heads").value_or(0);
  config.num_key_value_heads =
      reader.positive_int("num_key_value_heads").value_or(config.num_attention_heads);
  if (auto head_dim = reader.positive_int("head_dim")) {
    config.head_dim = *head_dim;
  } else if (config.num_attention_heads > 0 &&
             config.hidden_size % config.num_attention_heads == 0) {
    // Left 0 when the heads do not divide; validate_decoder_config says so.
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  config.max_position_embeddings = reader.positive_int("max_position_embeddings").value_or(0);
  config.rms_norm_eps = reader.positive_number("rms_norm_eps").value_or(config.rms_norm_eps);
  config.rope_theta = reader.positive_number("rope_theta").value_or(config.rope_theta);
  config.hidden_act = reader.string("hidden_act").value_or(config.hidden_act);
  config.attention_bias = reader.boolean("attention_bias");
  config.mlp_bias = reader.boolean("mlp_bias").value_or(false);

  config.sliding_window = reader.non_negative_int("sliding_window").value_or(0);
  config.use_sliding_window = reader.boolean("use_sliding_window");
  config.max_window_layers = reader.non_negative_int("max_window_layers").value_or(0);
  config.layer_types = reader.string_list("layer_types");

  config.pad_token_id = reader.integer("pad_token_id", "an integer or null");
  config.bos_token_id = reader.integer("bos_token_id", "an integer or null");
  if (const json* eos = reader.find("eos_token_id")) {
    if (eos->is_array()) {
      for (const json& id : *eos) {
        if (!id.is_number_integer()) {
          reader.fail_expected("eos_token_id", "an integer or a list of integers", *eos);
        }
        if (id.is_number_unsigned() &&
            id.get<std::uint64_t>() >
                static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          reader.fail_expected("eos_token_id", "token ids below 2^63", *eos);
        }
        config.eos_token_ids.push_back(id.get<std::int64_t>());
      }
    } else {
      config.eos_token_ids.push_back(
          *reader.integer("eos_token_id", "an integer or a list of integers"));
    }
  }

  // transformers sizes the head from id2label when present (num_labels then
  // only draws a warning), and from num_labels otherwise.
  if (const json* id2label = reader.object("id2label")) {
    if (id2label->empty()) reader.fail("id2label", "must name at least one label");
    config.num_labels = static_cast<std::int64_t>(id2label->size());
    reader.positive_int("num_labels");  // type-checked, but id2label wins
  } else {
    config.num_labels = reader.positive_int("num_labels").value_or(1);
  }
  if (config.num_labels > kMaxNumLabels) {
    reader.fail(reader.has("id2label") ? "id2label" : "num_labels",
                std::to_string(config.num_labels) + " labels is more than the " +
                    std::to_string(kMaxNumLabels) + " openrm supports");
  }

  // Newer transformers writes "dtype", older "torch_dtype".
  auto torch_dtype = reader.string("torch_dtype");
  if (!torch_dtype) torch_dtype = reader.string("dtype");
  config.torch_dtype = torch_dtype.value_or("");
  config.tie_word_embeddings = reader.boolean("tie_word_embeddings").value_or(false);

  // Rope: rope_scaling (with top-level rope_theta) or rope_parameters (which
  // carries its own rope_theta). When both are given they must agree.
  const json* rope_scaling = reader.object("rope_scaling");
  const json* rope_parameters = reader.object("rope_parameters");
  if (rope_scaling != nullptr) {
    config.rope_scaling = parse_rope(*rope_scaling, source, "rope_scaling");
  }
  if (rope_parameters != nullptr) {
    RopeScaling rope = parse_rope(*rope_parameters, source, "rope_parameters");
    if (rope_scaling != nullptr && !same_rope(rope, config.rope_scaling)) {
      throw Error(source + ": fields 'rope_scaling' and 'rope_parameters' disagree; give one");
    }
    config.rope_scaling = rope;
    FieldReader parameters(*rope_parameters, source, "rope_parameters.");
    if (auto theta = parameters.positive_number("rope_theta")) config.rope_theta = *theta;
  }

  config.raw = std::move(root);
  return config;
}

ModelConfig load_model_config(const std::string& path) {
  return parse_model_config(read_text_file(path), path);
}

void validate_decoder_config(const ModelConfig& config, const std::string& source) {
  auto fail = [&](const std::string& problem) { throw Error(source + ": " + problem); };
  auto require_positive = [&](const char* field, std::int64_t value) {
    if (value <= 0) {
      fail("field '" + std::string(field) + "' is required (a positive integer), got " +
           std::to_string(value));
    }
  };
  require_positive("vocab_size", config.vocab_size);
  require_positive("hidden_size", config.hidden_size);
  require_positive("intermediate_size", config.intermediate_size);
  require_positive("num_hidden_layers", config.num_hidden_layers);
  require_positive("num_attention_heads", config.num_attention_heads);
  require_positive("num_key_value_heads", config.num_key_value_heads);
  require_positive("num_labels", config.num_labels);
  // Far above every published model (Llama-3.1-405B: hidden 16384, MLP
  // 53248, 126 layers, 128 heads; vocabularies up to 256k), and low enough
  // that no product of them overflows before allocation is even tried.
  auto limit = [&](const char* field, std::int64_t value, std::int64_t most) {
    if (value > most) {
      fail("field '" + std::string(field) + "' is " + std::to_string(value) + ", more than the " +
           std::to_string(most) + " openrm accepts (is config.json corrupt?)");
    }
  };
  limit("vocab_size", config.vocab_size, std::int64_t{1} << 24);
  limit("hidden_size", config.hidden_size, std::int64_t{1} << 17);
  limit("intermediate_size", config.intermediate_size, std::int64_t{1} << 20);
  limit("num_hidden_layers", config.num_hidden_layers, 4096);
  limit("num_attention_heads", config.num_attention_heads, 4096);
  limit("num_key_value_heads", config.num_key_value_heads, 4096);
  limit("head_dim", config.head_dim, 4096);
  limit("max_position_embeddings", config.max_position_embeddings, std::int64_t{1} << 26);
  if (config.num_labels > kMaxNumLabels) {
    fail("num_labels " + std::to_string(config.num_labels) + " is more than the " +
         std::to_string(kMaxNumLabels) + " openrm supports");
  }

  // parse_model_config leaves head_dim 0 only when it was not given and the
  // heads do not divide hidden_size.
  if (config.head_dim == 0 && config.hidden_size % config.num_attention_heads != 0) {
    fail("hidden_size " + std::to_string(config.hidden_size) +
         " is not divisible by num_attention_heads " + std::to_string(config.num_attention_heads) +
         " and head_dim is not given");
  }
  require_positive("head_dim", config.head_dim);
  if (config.head_dim % 2 != 0) {
    fail("head_dim " + std::to_string(config.head_dim) +
         " must be even (rotary embeddings rotate pairs of channels)");
  }
  if (config.num_attention_heads % config.num_key_value_heads != 0) {
    fail("num_attention_heads " + std::to_string(config.num_attention_heads) +
         " is not divisible by num_key_value_heads " + std::to_string(config.num_key_value_heads));
  }
  if (!(config.rms_norm_eps > 0) || !std::isfinite(config.rms_norm_eps)) {
    fail("field 'rms_norm_eps' must be a positive number");
  }
  if (!(config.rope_theta > 0) || !std::isfinite(config.rope_theta)) {
    fail("field 'rope_theta' must be a positive number");
  }
  if (config.rope_scaling.type != RopeType::kDefault && !(config.rope_scaling.factor > 0)) {
    fail("rope factor must be positive");
  }
  if (config.rope_scaling.type == RopeType::kLlama3) {
    if (config.rope_scaling.original_max_position_embeddings <= 0) {
      fail("rope type 'llama3' needs original_max_position_embeddings");
    }
    if (!(config.rope_scaling.high_freq_factor > config.rope_scaling.low_freq_factor)) {
      fail("rope type 'llama3' needs high_freq_factor > low_freq_factor");
    }
  }
  if (config.sliding_window < 0) fail("field 'sliding_window' must not be negative");
  if (!config.layer_types.empty()) {
    if (static_cast<std::int64_t>(config.layer_types.size()) != config.num_hidden_layers) {
      fail("field 'layer_types' has " + std::to_string(config.layer_types.size()) +
           " entries but num_hidden_layers is " + std::to_string(config.num_hidden_layers));
    }
    bool any_sliding = false;
    for (std::size_t i = 0; i < config.layer_types.size(); ++i) {
      const std::string& type = config.layer_types[i];
      if (type == "sliding_attention") {
        any_sliding = true;
      } else if (type != "full_attention") {
        fail("field 'layer_types': layer " + std::to_string(i) + " has unsupported type '" + type +
             "'; supported: " + kSupportedLayerTypes);
      }
    }
    if (any_sliding && config.sliding_window <= 0) {
      fail("field 'layer_types' has sliding_attention layers but sliding_window is not set");
    }
  }
}

json ModelConfig::to_json() const {
  json out = raw.is_object() ? raw : json::object();
  auto had = [&](const char* key) { return raw.is_object() && raw.contains(key); };
  auto had_value = [&](const char* key) { return raw.is_object() && present(raw, key); };
  // An "absent" typed value (0, empty, nullopt) removes the key, except that
  // a key the input spelled as null stays null.
  auto put_or_drop = [&](const char* key, bool absent, const json& value) {
    if (!absent) {
      out[key] = value;
    } else if (had_value(key)) {
      out.erase(key);
    }
  };

  if (!architecture.empty()) {
    if (out.contains("architectures") && out["architectures"].is_array() &&
        !out["architectures"].empty()) {
      out["architectures"][0] = architecture;
    } else {
      out["architectures"] = json::array({architecture});
    }
  } else if (had_value("architectures")) {
    out.erase("architectures");
  }
  put_or_drop("model_type", model_type.empty(), model_type);
  put_or_drop("vocab_size", vocab_size == 0, vocab_size);
  put_or_drop("hidden_size", hidden_size == 0, hidden_size);
  put_or_drop("intermediate_size", intermediate_size == 0, intermediate_size);
  put_or_drop("num_hidden_layers", num_hidden_layers == 0, num_hidden_layers);
  put_or_drop("num_attention_heads", num_attention_heads == 0, num_attention_heads);
  put_or_drop("num_key_value_heads", num_key_value_heads == 0, num_key_value_heads);
  // head_dim is written when the input gave it or when it differs from what
  // hidden_size / num_attention_heads would give.
  bool head_dim_derived = num_attention_heads > 0 && hidden_size % num_attention_heads == 0 &&
                          head_dim == hidden_size / num_attention_heads;
  if (had_value("head_dim") || (head_dim != 0 && !head_dim_derived)) {
    put_or_drop("head_dim", head_dim == 0, head_dim);
  }
  put_or_drop("max_position_embeddings", max_position_embeddings == 0, max_position_embeddings);
  out["rms_norm_eps"] = rms_norm_eps;
  out["hidden_act"] = hidden_act;
  put_or_drop("attention_bias", !attention_bias.has_value(),
              attention_bias.has_value() && *attention_bias);
  out["mlp_bias"] = mlp_bias;
  if (sliding_window > 0) {
    out["sliding_window"] = sliding_window;
  } else if (had("sliding_window")) {
    out["sliding_window"] = nullptr;  // Mistral's spelling of "no window"
  }
  put_or_drop("use_sliding_window", !use_sliding_window.has_value(),
              use_sliding_window.has_value() && *use_sliding_window);
  if (max_window_layers > 0 || had_value("max_window_layers")) {
    out["max_window_layers"] = max_window_layers;
  }
  put_or_drop("layer_types", layer_types.empty(), layer_types);

  auto put_token = [&](const char* key, const std::optional<std::int64_t>& id) {
    if (id) {
      out[key] = *id;
    } else if (had(key)) {
      out[key] = nullptr;
    }
  };
  put_token("pad_token_id", pad_token_id);
  put_token("bos_token_id", bos_token_id);
  if (eos_token_ids.empty()) {
    if (had("eos_token_id")) out["eos_token_id"] = nullptr;
  } else if (eos_token_ids.size() == 1 &&
             !(had("eos_token_id") && raw["eos_token_id"].is_array())) {
    out["eos_token_id"] = eos_token_ids[0];
  } else {
    out["eos_token_id"] = eos_token_ids;
  }

  // transformers sizes the head from id2label (and defaults to 2 labels
  // without it), so id2label must always be there and match num_labels.
  bool id2label_matches = had_value("id2label") && raw["id2label"].is_object() &&
                          static_cast<std::int64_t>(raw["id2label"].size()) == num_labels;
  if (!id2label_matches && num_labels > kMaxNumLabels) {
    throw Error("cannot write config: num_labels " + std::to_string(num_labels) +
                " is more than the " + std::to_string(kMaxNumLabels) + " openrm supports");
  }
  if (!id2label_matches && num_labels > 0) {
    json id2label = json::object();
    json label2id = json::object();
    for (std::int64_t i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
      label2id["LABEL_" + std::to_string(i)] = i;
    }
    out["id2label"] = id2label;
    out["label2id"] = label2id;
  }
  if (had("num_labels")) out["num_labels"] = num_labels;

  const char* dtype_key = had("dtype") && !had("torch_dtype") ? "dtype" : "torch_dtype";
  if (!torch_dtype.empty()) {
    out[dtype_key] = torch_dtype;
  } else if (had_value(dtype_key)) {
    out[dtype_key] = nullptr;
  }
  out["tie_word_embeddings"] = tie_word_embeddings;

  // Rope, in the spelling it came in.
  bool has_parameters = had_value("rope_parameters") && raw["rope_parameters"].is_object();
  bool has_scaling = had_value("rope_scaling") && raw["rope_scaling"].is_object();
  if (has_parameters) {
    json parameters = raw["rope_parameters"];
    write_rope(rope_scaling, &parameters);
    if (!parameters.contains("rope_type"))
      parameters["rope_type"] = rope_type_name(rope_scaling.type);
    parameters["rope_theta"] = rope_theta;
    out["rope_parameters"] = parameters;
    if (had("rope_theta")) out["rope_theta"] = rope_theta;
  } else {
    out["rope_theta"] = rope_theta;
  }
  if (has_scaling) {
    json scaling = raw["rope_scaling"];
    write_rope(rope_scaling, &scaling);
    out["rope_scaling"] = scaling;
  } else if (!has_parameters) {
    if (rope_scaling.type == RopeType::kDefault) {
      if (!had("rope_scaling")) out["rope_scaling"] = nullptr;
    } else {
      json scaling = json::object();
      write_rope(rope_scaling, &scaling);
      out["rope_scaling"] = scaling;
    }
  }
  return out;
}

}  // namespace openrm
