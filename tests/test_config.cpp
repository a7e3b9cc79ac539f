// config.json: typed fields, both rope spellings, malformed configs, the
// checks every decoder needs, and writing back.
#include <gtest/gtest.h>

#include <string>

#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

using json = nlohmann::json;
using test::contains;
using test::error_of;
using test::starts_with;

const char* kSource = "/m/config.json";

// A Llama-3-style config.json, as transformers writes it for a reward model.
json llama_json() {
  return json::parse(R"({
    "architectures": ["LlamaForSequenceClassification"],
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {
      "factor": 8.0,
      "low_freq_factor": 1.0,
      "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192,
      "rope_type": "llama3"
    },
    "hidden_act": "silu",
    "attention_bias": false,
    "mlp_bias": false,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "pad_token_id": 128004,
    "id2label": {"0": "LABEL_0"},
    "label2id": {"LABEL_0": 0},
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": false,
    "transformers_version": "4.44.0"
  })");
}

ModelConfig parse(const json& j) {
  return parse_model_config(j.dump(), kSource);
}

// The error parsing j gives; it must start with the source.
std::string parse_error(const json& j) {
  std::string message = error_of([&] { parse(j); });
  EXPECT_TRUE(starts_with(message, std::string(kSource) + ": "));
  return message;
}

std::string with_field(const char* key, const json& value) {
  json j = llama_json();
  j[key] = value;
  return parse_error(j);
}

void expect_same_rope(const RopeScaling& a, const RopeScaling& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.factor, b.factor);
  EXPECT_EQ(a.low_freq_factor, b.low_freq_factor);
  EXPECT_EQ(a.high_freq_factor, b.high_freq_factor);
  EXPECT_EQ(a.original_max_position_embeddings, b.original_max_position_embeddings);
}

TEST(Config, ParsesLlama3RewardModel) {
  ModelConfig c = parse(llama_json());
  EXPECT_EQ(c.architecture, "LlamaForSequenceClassification");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_EQ(c.attention_bias, std::optional<bool>(false));
  EXPECT_EQ(c.bos_token_id, std::optional<std::int64_t>(128000));
  EXPECT_EQ(c.eos_token_ids, (std::vector<std::int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.pad_token_id, std::optional<std::int64_t>(128004));
  EXPECT_EQ(c.num_labels, 1);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.raw["transformers_version"], "4.44.0");
  EXPECT_NO_THROW(validate_decoder_config(c, kSource));
}

TEST(Config, DefaultsForAbsentFields) {
  ModelConfig c = parse(json::object());
  EXPECT_EQ(c.architecture, "");
  EXPECT_EQ(c.vocab_size, 0);
  EXPECT_EQ(c.head_dim, 0);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kDefault);
  EXPECT_EQ(c.hidden_act, "silu");
  EXPECT_FALSE(c.attention_bias.has_value());
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.num_labels, 1);
  EXPECT_EQ(c.sliding_window, 0);
}

TEST(Config, TinyConfigHelperValidates) {
  ModelConfig c = test::tiny_config("LlamaForSequenceClassification");
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_NO_THROW(validate_decoder_config(c, "tiny"));
}

// ---- rope: both spellings ---------------------------------------------------------

TEST(ConfigRope, ScalingAndParametersSpellingsAgree) {
  json old_style = llama_json();
  json new_style = llama_json();
  new_style.erase("rope_scaling");
  new_style.erase("rope_theta");
  new_style["rope_parameters"] = {
      {"rope_type", "llama3"},   {"rope_theta", 500000.0},
      {"factor", 8.0},           {"low_freq_factor", 1.0},
      {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  ModelConfig a = parse(old_style);
  ModelConfig b = parse(new_style);
  expect_same_rope(a.rope_scaling, b.rope_scaling);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
}

TEST(ConfigRope, LegacyTypeKeyIsAccepted) {
  json j = llama_json();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kLinear);
  EXPECT_EQ(c.rope_scaling.factor, 2.0);
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  expect_same_rope(parse(j).rope_scaling, c.rope_scaling);
}

TEST(ConfigRope, ParametersThetaOverridesTopLevel) {
  json j = llama_json();
  j.erase("rope_scaling");
  j["rope_theta"] = 10000.0;
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_theta, 1000000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kDefault);
}

TEST(ConfigRope, ParametersWithoutThetaKeepTopLevel) {
  json j = llama_json();
  j.erase("rope_scaling");
  j["rope_theta"] = 250000.0;
  j["rope_parameters"] = {{"rope_type", "default"}};
  EXPECT_EQ(parse(j).rope_theta, 250000.0);
}

TEST(ConfigRope, NullScalingIsDefault) {
  json j = llama_json();
  j["rope_scaling"] = nullptr;
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_scaling.type, RopeType::kDefault);
  EXPECT_EQ(c.rope_scaling.factor, 1.0);
}

TEST(ConfigRope, UnsupportedTypeListsSupported) {
  json j = llama_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  std::string message = parse_error(j);
  EXPECT_TRUE(contains(message, "field 'rope_scaling.rope_type': unsupported rope type 'yarn'"));
  EXPECT_TRUE(contains(message, "supported: default, linear, llama3"));
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 4.0}};
  EXPECT_TRUE(contains(parse_error(j),
                       "field 'rope_parameters.rope_type': unsupported rope "
                       "type 'dynamic'"));
}

TEST(ConfigRope, Llama3RequiresAllFields) {
  for (const char* key :
       {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    SCOPED_TRACE(key);
    json j = llama_json();
    j["rope_scaling"].erase(key);
    std::string message = parse_error(j);
    EXPECT_TRUE(contains(message, std::string("field 'rope_scaling.") + key +
                                      "': required for "
                                      "rope type 'llama3'"));
  }
}

TEST(ConfigRope, Llama3FrequencyFactorsMustBeOrdered) {
  json j = llama_json();
  j["rope_scaling"]["high_freq_factor"] = 1.0;
  EXPECT_TRUE(contains(parse_error(j),
                       "field 'rope_scaling.high_freq_factor': must be greater "
                       "than low_freq_factor"));
}

TEST(ConfigRope, LinearRequiresFactor) {
  json j = llama_json();
  j["rope_scaling"] = {{"type", "linear"}};
  EXPECT_TRUE(contains(parse_error(j),
                       "field 'rope_scaling.factor': required for rope type "
                       "'linear'"));
  j["rope_scaling"] = {{"type", "linear"}, {"factor", -2}};
  EXPECT_TRUE(contains(parse_error(j),
                       "field 'rope_scaling.factor': expected a positive number, "
                       "got -2"));
}

TEST(ConfigRope, MissingTypeIsAnError) {
  json j = llama_json();
  j["rope_scaling"] = {{"factor", 2.0}};
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_scaling': missing 'rope_type' (or 'type')"));
}

TEST(ConfigRope, ConflictingTypeKeysAreAnError) {
  json j = llama_json();
  j["rope_scaling"] = {{"type", "linear"}, {"rope_type", "default"}, {"factor", 2.0}};
  EXPECT_TRUE(contains(parse_error(j), "field 'rope_scaling.type': disagrees with rope_type"));
}

TEST(ConfigRope, DisagreeingSpellingsAreAnError) {
  json j = llama_json();
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  EXPECT_TRUE(contains(parse_error(j), "'rope_scaling' and 'rope_parameters' disagree"));
}

TEST(ConfigRope, ScalingMustBeAnObject) {
  EXPECT_TRUE(contains(with_field("rope_scaling", 8.0),
                       "field 'rope_scaling': expected an object or null, got 8.0"));
}

// ---- other fields ------------------------------------------------------------------

TEST(Config, HeadDimExplicit) {
  json j = llama_json();
  j["head_dim"] = 64;  // not hidden_size / num_attention_heads (128)
  ModelConfig c = parse(j);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_NO_THROW(validate_decoder_config(c, kSource));
}

TEST(Config, HeadDimNullIsDerived) {
  json j = llama_json();
  j["head_dim"] = nullptr;
  EXPECT_EQ(parse(j).head_dim, 128);
}

TEST(Config, HeadDimExplicitLetsHeadsNotDivideHidden) {
  json j = llama_json();
  j["hidden_size"] = 1000;
  j["head_dim"] = 128;
  EXPECT_NO_THROW(validate_decoder_config(parse(j), kSource));
}

TEST(Config, EosTokenIdIntOrList) {
  json j = llama_json();
  j["eos_token_id"] = 2;
  EXPECT_EQ(parse(j).eos_token_ids, std::vector<std::int64_t>{2});
  j["eos_token_id"] = json::array({2, 7});
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<std::int64_t>{2, 7}));
  j["eos_token_id"] = nullptr;
  EXPECT_TRUE(parse(j).eos_token_ids.empty());
}

TEST(Config, PadTokenIdNull) {
  json j = llama_json();
  j["pad_token_id"] = nullptr;
  EXPECT_FALSE(parse(j).pad_token_id.has_value());
}

TEST(Config, NumLabelsFromFieldOrId2Label) {
  json j = llama_json();
  j.erase("id2label");
  j["num_labels"] = 3;
  EXPECT_EQ(parse(j).num_labels, 3);
  j.erase("num_labels");
  j["id2label"] = {{"0", "bad"}, {"1", "good"}};
  EXPECT_EQ(parse(j).num_labels, 2);
  // As in transformers, id2label wins over a disagreeing num_labels.
  j["num_labels"] = 5;
  EXPECT_EQ(parse(j).num_labels, 2);
}

TEST(Config, LayerTypesAndSlidingWindow) {
  json j = llama_json();
  j["num_hidden_layers"] = 3;
  j["sliding_window"] = 4096;
  j["layer_types"] = {"sliding_attention", "full_attention", "sliding_attention"};
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 2;
  ModelConfig c = parse(j);
  EXPECT_EQ(c.layer_types.size(), 3u);
  EXPECT_EQ(c.layer_types[0], "sliding_attention");
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.use_sliding_window, std::optional<bool>(true));
  EXPECT_EQ(c.max_window_layers, 2);
  EXPECT_NO_THROW(validate_decoder_config(c, kSource));
  j["sliding_window"] = nullptr;  // Mistral's "no window"
  EXPECT_EQ(parse(j).sliding_window, 0);
}

TEST(Config, DuplicateKeysKeepTheLastAsPythonDoes) {
  ModelConfig c = parse_model_config(R"({"hidden_size": 8, "hidden_size": 16})", kSource);
  EXPECT_EQ(c.hidden_size, 16);
}

TEST(Config, DtypeSpellings) {
  json j = llama_json();
  j.erase("torch_dtype");
  j["dtype"] = "float16";  // transformers >= 4.56 writes "dtype"
  EXPECT_EQ(parse(j).torch_dtype, "float16");
}

TEST(Config, LoadsFromFile) {
  test::TempDir dir;
  write_file_atomic(dir.file("config.json"), llama_json().dump(2));
  EXPECT_EQ(load_model_config(dir.file("config.json")).hidden_size, 4096);
  std::string message = error_of([&] { load_model_config(dir.file("missing.json")); });
  EXPECT_TRUE(starts_with(message, dir.file("missing.json")));
}

TEST(Config, LoadErrorNamesFile) {
  test::TempDir dir;
  write_file_atomic(dir.file("config.json"), R"({"hidden_size": -4})");
  std::string message = error_of([&] { load_model_config(dir.file("config.json")); });
  EXPECT_EQ(message,
            dir.file("config.json") + ": field 'hidden_size': expected a positive integer, got -4");
}

// ---- malformed configs ---------------------------------------------------------------

TEST(ConfigErrors, MalformedJsonGivesLineAndColumn) {
  std::string message = error_of(
      [] { parse_model_config("{\n  \"hidden_size\": 8,\n  \"vocab_size\": ,\n}", kSource); });
  EXPECT_TRUE(starts_with(message, std::string(kSource) + ": malformed JSON"));
  EXPECT_TRUE(contains(message, "line 3, column"));
}

TEST(ConfigErrors, EmptyText) {
  EXPECT_TRUE(contains(error_of([] { parse_model_config("", kSource); }), "malformed JSON"));
}

TEST(ConfigErrors, TopLevelNotAnObject) {
  EXPECT_TRUE(contains(error_of([] { parse_model_config("[1]", kSource); }),
                       "expected a JSON object at the top level, got array"));
}

TEST(ConfigErrors, DeeplyNested) {
  std::string deep = "{\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_TRUE(contains(error_of([&] { parse_model_config(deep, kSource); }), "nests deeper"));
}

TEST(ConfigErrors, IntegerFieldAsString) {
  EXPECT_TRUE(contains(with_field("hidden_size", "4096"),
                       "field 'hidden_size': expected a positive integer, got \"4096\""));
}

TEST(ConfigErrors, IntegerFieldNegative) {
  EXPECT_TRUE(contains(with_field("num_attention_heads", -4),
                       "field 'num_attention_heads': expected a positive integer, got -4"));
}

TEST(ConfigErrors, IntegerFieldZero) {
  EXPECT_TRUE(contains(with_field("num_key_value_heads", 0),
                       "field 'num_key_value_heads': expected a positive integer, got 0"));
}

TEST(ConfigErrors, IntegerFieldAsFloat) {
  EXPECT_TRUE(contains(with_field("vocab_size", 32000.0),
                       "field 'vocab_size': expected a positive integer, got 32000.0"));
}

TEST(ConfigErrors, IntegerFieldTooLarge) {
  EXPECT_TRUE(contains(with_field("intermediate_size", 18446744073709551615ULL),
                       "field 'intermediate_size': expected a positive integer (at most 2^63-1)"));
}

TEST(ConfigErrors, HeadDimNotPositive) {
  EXPECT_TRUE(contains(with_field("head_dim", 0), "field 'head_dim': expected a positive integer"));
}

TEST(ConfigErrors, NumberFieldAsString) {
  EXPECT_TRUE(contains(with_field("rms_norm_eps", "1e-5"),
                       "field 'rms_norm_eps': expected a positive number, got \"1e-5\""));
}

TEST(ConfigErrors, NumberFieldNotPositive) {
  EXPECT_TRUE(contains(with_field("rope_theta", 0),
                       "field 'rope_theta': expected a positive "
                       "number, got 0"));
}

TEST(ConfigErrors, BoolFieldAsInteger) {
  EXPECT_TRUE(contains(with_field("tie_word_embeddings", 1),
                       "field 'tie_word_embeddings': expected true or false, got 1"));
}

TEST(ConfigErrors, StringFieldAsNumber) {
  EXPECT_TRUE(
      contains(with_field("hidden_act", 3), "field 'hidden_act': expected a string, got 3"));
}

TEST(ConfigErrors, ArchitecturesNotAList) {
  EXPECT_TRUE(contains(with_field("architectures", "LlamaForSequenceClassification"),
                       "field 'architectures': expected an array of strings"));
}

TEST(ConfigErrors, LayerTypesNotStrings) {
  EXPECT_TRUE(contains(with_field("layer_types", json::array({1, 2})),
                       "field 'layer_types': expected an array of strings, got [1,2]"));
}

TEST(ConfigErrors, EosTokenIdNotIntegers) {
  EXPECT_TRUE(contains(with_field("eos_token_id", json::array({"</s>"})),
                       "field 'eos_token_id': expected an integer or a list of integers"));
  EXPECT_TRUE(contains(with_field("eos_token_id", 2.5),
                       "field 'eos_token_id': expected an integer or a list of integers"));
}

TEST(ConfigErrors, PadTokenIdNotInteger) {
  EXPECT_TRUE(contains(with_field("pad_token_id", "0"),
                       "field 'pad_token_id': expected an integer or null, got \"0\""));
}

TEST(ConfigErrors, Id2LabelNotAnObject) {
  EXPECT_TRUE(contains(with_field("id2label", json::array({"LABEL_0"})),
                       "field 'id2label': expected an object or null"));
  EXPECT_TRUE(contains(with_field("id2label", json::object()),
                       "field 'id2label': must name at least one label"));
}

TEST(ConfigErrors, NumLabelsNotPositive) {
  json j = llama_json();
  j.erase("id2label");
  j["num_labels"] = 0;
  EXPECT_TRUE(contains(parse_error(j), "field 'num_labels': expected a positive integer, got 0"));
}

// Regression: fuzz_config found that a config with "num_labels": 1354566326
// parsed, and to_json then built a 1.35-billion-entry id2label (a hang).
TEST(ConfigErrors, NumLabelsImplausiblyLarge) {
  json j = llama_json();
  j.erase("id2label");
  j["num_labels"] = 1354566326;
  EXPECT_TRUE(contains(parse_error(j),
                       "field 'num_labels': 1354566326 labels is more than the "
                       "65536 openrm supports"));
  j["num_labels"] = 65536;
  EXPECT_EQ(parse(j).num_labels, 65536);
}

TEST(ConfigErrors, LongValuesAreCutShortInMessages) {
  std::string message = with_field("hidden_act", json::array({std::string(1000, 'x')}));
  EXPECT_TRUE(contains(message, "..."));
  EXPECT_LT(message.size(), 200u);
}

// ---- validate_decoder_config ------------------------------------------------------

std::string validate_error(const json& j) {
  ModelConfig c = parse(j);
  std::string message = error_of([&] { validate_decoder_config(c, kSource); });
  EXPECT_TRUE(starts_with(message, std::string(kSource) + ": "));
  return message;
}

TEST(ValidateDecoder, RequiresSizes) {
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads"}) {
    SCOPED_TRACE(key);
    json j = llama_json();
    j.erase(key);
    EXPECT_TRUE(contains(validate_error(j), std::string("field '") + key + "' is required"));
  }
}

TEST(ValidateDecoder, HeadsMustDivideHiddenWithoutHeadDim) {
  json j = llama_json();
  j["hidden_size"] = 1000;
  EXPECT_TRUE(contains(validate_error(j),
                       "hidden_size 1000 is not divisible by "
                       "num_attention_heads 32 and head_dim is not given"));
}

TEST(ValidateDecoder, KeyValueHeadsMustDivideHeads) {
  json j = llama_json();
  j["num_key_value_heads"] = 5;
  EXPECT_TRUE(contains(validate_error(j),
                       "num_attention_heads 32 is not divisible by "
                       "num_key_value_heads 5"));
}

TEST(ValidateDecoder, HeadDimMustBeEven) {
  json j = llama_json();
  j["head_dim"] = 65;
  EXPECT_TRUE(contains(validate_error(j), "head_dim 65 must be even"));
}

TEST(ValidateDecoder, LayerTypesMustMatchLayerCount) {
  json j = llama_json();
  j["layer_types"] = {"full_attention"};
  EXPECT_TRUE(contains(validate_error(j),
                       "field 'layer_types' has 1 entries but "
                       "num_hidden_layers is 32"));
}

TEST(ValidateDecoder, UnknownLayerType) {
  json j = llama_json();
  j["num_hidden_layers"] = 2;
  j["layer_types"] = {"full_attention", "chunked_attention"};
  std::string message = validate_error(j);
  EXPECT_TRUE(contains(message, "layer 1 has unsupported type 'chunked_attention'"));
  EXPECT_TRUE(contains(message, "supported: full_attention, sliding_attention"));
}

TEST(ValidateDecoder, SlidingLayersNeedAWindow) {
  json j = llama_json();
  j["num_hidden_layers"] = 2;
  j["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_TRUE(contains(validate_error(j), "sliding_window is not set"));
}

TEST(ValidateDecoder, ProgrammaticConfigIsChecked) {
  ModelConfig c = test::tiny_config("LlamaForSequenceClassification");
  c.num_key_value_heads = 3;
  EXPECT_TRUE(contains(error_of([&] { validate_decoder_config(c, "tiny"); }),
                       "not divisible by num_key_value_heads 3"));
  c = test::tiny_config("LlamaForSequenceClassification");
  c.rope_scaling.type = RopeType::kLlama3;
  EXPECT_TRUE(contains(error_of([&] { validate_decoder_config(c, "tiny"); }),
                       "needs original_max_position_embeddings"));
}

// ---- to_json ---------------------------------------------------------------------------

void expect_same_fields(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.model_type, b.model_type);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_hidden_layers, b.num_hidden_layers);
  EXPECT_EQ(a.num_attention_heads, b.num_attention_heads);
  EXPECT_EQ(a.num_key_value_heads, b.num_key_value_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.max_position_embeddings, b.max_position_embeddings);
  EXPECT_EQ(a.rms_norm_eps, b.rms_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  expect_same_rope(a.rope_scaling, b.rope_scaling);
  EXPECT_EQ(a.hidden_act, b.hidden_act);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.use_sliding_window, b.use_sliding_window);
  EXPECT_EQ(a.max_window_layers, b.max_window_layers);
  EXPECT_EQ(a.layer_types, b.layer_types);
  EXPECT_EQ(a.pad_token_id, b.pad_token_id);
  EXPECT_EQ(a.bos_token_id, b.bos_token_id);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
  EXPECT_EQ(a.num_labels, b.num_labels);
  EXPECT_EQ(a.torch_dtype, b.torch_dtype);
  EXPECT_EQ(a.tie_word_embeddings, b.tie_word_embeddings);
}

TEST(ConfigToJson, UnchangedConfigWritesBackItsInput) {
  json input = llama_json();
  EXPECT_EQ(parse(input).to_json(), input);
}

TEST(ConfigToJson, ChangedFieldsAreWrittenOverRaw) {
  ModelConfig c = parse(llama_json());
  c.num_labels = 2;
  c.pad_token_id.reset();
  c.architecture = "MistralForSequenceClassification";
  json out = c.to_json();
  EXPECT_EQ(out["id2label"], (json{{"0", "LABEL_0"}, {"1", "LABEL_1"}}));
  EXPECT_EQ(out["label2id"], (json{{"LABEL_0", 0}, {"LABEL_1", 1}}));
  EXPECT_TRUE(out["pad_token_id"].is_null());
  EXPECT_EQ(out["architectures"], json::array({"MistralForSequenceClassification"}));
  EXPECT_EQ(out["transformers_version"], "4.44.0");  // fields openrm does not model survive
  expect_same_fields(parse(out), c);
}

TEST(ConfigToJson, RefusesHugeNumLabels) {
  ModelConfig c = parse(llama_json());
  c.num_labels = std::int64_t{1} << 40;
  EXPECT_TRUE(contains(error_of([&] { c.to_json(); }), "num_labels 1099511627776 is more than"));
  EXPECT_TRUE(contains(error_of([&] { validate_decoder_config(c, kSource); }),
                       "num_labels 1099511627776 is more than"));
}

TEST(ConfigToJson, KeepsRopeParametersSpelling) {
  json j = llama_json();
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 1e6}, {"factor", 2.0}};
  ModelConfig c = parse(j);
  c.rope_scaling.factor = 4.0;
  json out = c.to_json();
  EXPECT_FALSE(out.contains("rope_scaling"));
  EXPECT_FALSE(out.contains("rope_theta"));
  EXPECT_EQ(out["rope_parameters"],
            (json{{"rope_type", "linear"}, {"rope_theta", 1e6}, {"factor", 4.0}}));
  expect_same_fields(parse(out), c);
}

TEST(ConfigToJson, KeepsLegacyTypeKey) {
  json j = llama_json();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  json out = parse(j).to_json();
  EXPECT_EQ(out["rope_scaling"], (json{{"type", "linear"}, {"factor", 2.0}}));
}

TEST(ConfigToJson, WithoutRopeFieldsWritesThetaAndScaling) {
  ModelConfig c = parse(json{{"hidden_size", 32}, {"num_attention_heads", 4}});
  json out = c.to_json();
  EXPECT_EQ(out["rope_theta"], 10000.0);
  EXPECT_TRUE(out.contains("rope_scaling") && out["rope_scaling"].is_null());
  EXPECT_EQ(out["id2label"], (json{{"0", "LABEL_0"}}));  // transformers would default to 2
  c.rope_scaling.type = RopeType::kLinear;
  c.rope_scaling.factor = 2.0;
  out = c.to_json();
  EXPECT_EQ(out["rope_scaling"], (json{{"rope_type", "linear"}, {"factor", 2.0}}));
  expect_same_fields(parse(out), c);
}

TEST(ConfigToJson, NullsAndDerivedValuesRoundTrip) {
  json j = llama_json();
  j["head_dim"] = nullptr;
  j["sliding_window"] = nullptr;
  j["eos_token_id"] = json::array({7});
  ModelConfig c = parse(j);
  json out = c.to_json();
  EXPECT_TRUE(out["head_dim"].is_null());
  EXPECT_TRUE(out["sliding_window"].is_null());
  EXPECT_EQ(out["eos_token_id"], json::array({7}));
  expect_same_fields(parse(out), c);
}

}  // namespace
}  // namespace openrm
