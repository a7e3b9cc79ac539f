// A model folder loaded as a whole: model + tokenizer + chat format + openrm.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <tuple>
#include <openrm/io/file.h>
#include <openrm/io/safetensors.h>
#include <openrm/models/model_folder.h>
#include <openrm/tokenizer/train_tokenizer.h>

#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

// A saved tiny model whose vocabulary fits a 64-piece tokenizer.
std::string make_model_folder(const test::TempDir& tmp, const std::string& name) {
  const std::string dir = join_path(tmp.path(), name);
  auto model = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  model->init_weights(/*seed=*/1);
  save_reward_model(*model, dir);
  return dir;
}

void set_chat_template(const std::string& dir, const std::string& chat_template) {
  const std::string path = join_path(dir, "tokenizer_config.json");
  auto j = nlohmann::json::parse(read_text_file(path));
  j["chat_template"] = chat_template;
  write_file_atomic(path, j.dump(2));
}

TEST(ModelFolder, LoadsTokenizerAndChatFormatWithTheModel) {
  test::TempDir tmp;
  const std::string dir = make_model_folder(tmp, "rm");
  test::train_tiny_tokenizer(dir);

  auto folder = load_reward_model_folder(dir);
  ASSERT_TRUE(folder.model);
  ASSERT_TRUE(folder.tokenizer);
  EXPECT_EQ(folder.chat_format, ChatFormat::kPlain);  // no template, no openrm.json setting
  EXPECT_EQ(folder.tokenizer->encode("The quick brown fox").front(), folder.tokenizer->special_tokens().bos.id);

  // The tokenizer's chat_template decides when openrm.json says nothing ...
  set_chat_template(dir, "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n'}}{% endfor %}");
  EXPECT_EQ(load_reward_model_folder(dir).chat_format, ChatFormat::kChatML);

  // ... and openrm.json's chat_format wins over it.
  ModelMetadata meta = read_model_metadata(dir);
  meta.chat_format = ChatFormat::kHH;
  write_model_metadata(dir, meta);
  EXPECT_EQ(load_reward_model_folder(dir).chat_format, ChatFormat::kHH);
}

TEST(ModelFolder, FolderWithoutTokenizer) {
  test::TempDir tmp;
  const std::string dir = make_model_folder(tmp, "rm");
  auto folder = load_reward_model_folder(dir);
  EXPECT_TRUE(folder.model);
  EXPECT_FALSE(folder.tokenizer);
  EXPECT_EQ(folder.chat_format, ChatFormat::kPlain);
}

TEST(ModelFolder, MaxLengthAndTruncationRoundTripAndBadValuesNameTheField) {
  test::TempDir tmp;
  const std::string dir = make_model_folder(tmp, "rm");
  ModelMetadata meta = read_model_metadata(dir);
  EXPECT_FALSE(meta.max_length.has_value());
  EXPECT_FALSE(meta.truncation.has_value());
  meta.max_length = 300;
  meta.truncation = TruncationPolicy::kDrop;
  write_model_metadata(dir, meta);
  const auto j = nlohmann::json::parse(read_text_file(join_path(dir, "openrm.json")));
  EXPECT_EQ(j.at("max_length"), 300);
  EXPECT_EQ(j.at("truncation"), "drop");
  const ModelMetadata back = read_model_metadata(dir);
  EXPECT_EQ(back.max_length, 300);
  EXPECT_EQ(back.truncation, TruncationPolicy::kDrop);
  EXPECT_FALSE(back.other.contains("max_length"));

  const std::string path = join_path(dir, "openrm.json");
  for (const auto& [field, value, message] :
       {std::tuple<std::string, nlohmann::json, std::string>{"max_length", -1, "expected an integer >= 0"},
        {"max_length", "long", "expected an integer >= 0"},
        {"truncation", "cut", "unknown truncation policy 'cut'"}}) {
    write_file_atomic(path, nlohmann::json{{field, value}}.dump());
    const std::string err = test::error_of([&] { read_model_metadata(dir); });
    EXPECT_TRUE(test::contains(err, path + ": field '" + field + "'")) << err;
    EXPECT_TRUE(test::contains(err, message)) << err;
  }
}

TEST(ModelFolder, TheLengthRuleCapsAtThePositions) {
  ModelConfig config = test::tiny_config("LlamaForSequenceClassification");  // 128 positions
  ModelMetadata none, stored;
  stored.max_length = 64;
  EXPECT_EQ(effective_max_length(config, none, std::nullopt), 128);  // 2048, lowered
  EXPECT_EQ(effective_max_length(config, stored, std::nullopt), 64);
  EXPECT_EQ(effective_max_length(config, stored, 100), 100);  // asked wins
  EXPECT_EQ(effective_max_length(config, stored, 1000), 128);
  EXPECT_EQ(effective_max_length(config, stored, 0), 128);  // as long as the model takes
  stored.max_length = 4096;
  EXPECT_EQ(effective_max_length(config, stored, std::nullopt), 128);
  config.max_position_embeddings = 0;  // unknown: what is asked
  EXPECT_EQ(effective_max_length(config, none, std::nullopt), 2048);
  EXPECT_EQ(effective_max_length(config, none, 0), 0);
  EXPECT_EQ(effective_max_length(config, stored, 5000), 5000);
}

TEST(ModelFolder, SavingKeepsOtherMetadata) {
  test::TempDir tmp;
  const std::string dir = make_model_folder(tmp, "rm");
  ModelMetadata meta = read_model_metadata(dir);
  ASSERT_TRUE(meta.pooling.has_value());
  meta.chat_format = ChatFormat::kLlama31;
  meta.other["trained_by"] = "a test";
  write_model_metadata(dir, meta);

  auto model = load_reward_model(dir);
  model->set_pooling(Pooling::kLastToken);
  save_reward_model(*model, dir);
  ModelMetadata after = read_model_metadata(dir);
  EXPECT_EQ(after.pooling, Pooling::kLastToken);
  EXPECT_EQ(after.chat_format, ChatFormat::kLlama31);
  EXPECT_EQ(after.other.value("trained_by", ""), "a test");
}

TEST(ModelFolder, BadMetadataNamesFileAndField) {
  test::TempDir tmp;
  const std::string dir = make_model_folder(tmp, "rm");
  write_file_atomic(join_path(dir, "openrm.json"), R"({"chat_format": "vicuna"})");
  std::string err = test::error_of([&] { load_reward_model_folder(dir); });
  EXPECT_TRUE(test::contains(err, "openrm.json")) << err;
  EXPECT_TRUE(test::contains(err, "chat_format")) << err;
  EXPECT_TRUE(test::contains(err, "vicuna")) << err;

  write_file_atomic(join_path(dir, "openrm.json"), R"({"chat_format": 3})");
  err = test::error_of([&] { read_model_metadata(dir); });
  EXPECT_TRUE(test::contains(err, "expected a string")) << err;

  write_file_atomic(join_path(dir, "openrm.json"), R"([1, 2])");
  err = test::error_of([&] { read_model_metadata(dir); });
  EXPECT_TRUE(test::contains(err, "expected a JSON object")) << err;
}

}  // namespace
}  // namespace openrm

namespace openrm {
namespace {

// A base causal-LM folder made from a tiny reward model: the backbone, an
// lm_head, no score head, architectures ["LlamaForCausalLM"].
std::string make_causal_lm_folder(const test::TempDir& tmp, RewardModel& source) {
  const std::string dir = join_path(tmp.path(), "base-lm");
  NamedTensors tensors;
  for (const auto& item : source.named_parameters()) {
    if (item.key() != "score.weight") tensors.emplace_back(item.key(), item.value().detach());
  }
  const auto& c = source.config();
  tensors.emplace_back("lm_head.weight", torch::randn({c.vocab_size, c.hidden_size}));
  save_safetensors_folder(dir, tensors);
  auto config = c.to_json();
  config["architectures"] = {"LlamaForCausalLM"};
  config.erase("id2label");
  config.erase("label2id");
  write_file_atomic(join_path(dir, "config.json"), config.dump(2));
  return dir;
}

TEST(ModelFolder, RewardModelFromACausalLM) {
  test::TempDir tmp;
  auto source = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  source->init_weights(/*seed=*/3);
  const std::string dir = make_causal_lm_folder(tmp, *source);

  auto model = load_reward_model_from_causal_lm(dir, /*seed=*/5);
  EXPECT_EQ(model->config().architecture, "LlamaForSequenceClassification");
  EXPECT_EQ(model->config().num_labels, 1);
  auto source_params = source->named_parameters();
  const std::int64_t hidden = model->config().hidden_size;
  for (const auto& item : model->named_parameters()) {
    if (item.key() == "score.weight") {
      // The new head: N(0, std 1/(H+1)); with H values its sample std is within
      // a factor of 2 of that, and it is not the source's head.
      const double std = item.value().std().item<double>();
      EXPECT_GT(std, 0.5 / static_cast<double>(hidden + 1));
      EXPECT_LT(std, 2.0 / static_cast<double>(hidden + 1));
      EXPECT_FALSE(torch::equal(item.value(), source_params["score.weight"]));
      continue;
    }
    EXPECT_TRUE(torch::equal(item.value(), source_params[item.key()])) << item.key();
  }
  // Same seed, same head; the result saves as a reward-model folder.
  auto again = load_reward_model_from_causal_lm(dir, /*seed=*/5);
  EXPECT_TRUE(torch::equal(again->named_parameters()["score.weight"], model->named_parameters()["score.weight"]));
  const std::string out = join_path(tmp.path(), "rm");
  save_reward_model(*model, out);
  auto reloaded = load_reward_model(out);
  EXPECT_TRUE(torch::equal(reloaded->named_parameters()["score.weight"], model->named_parameters()["score.weight"]));
}

TEST(ModelFolder, CausalLMLoadingIsStillStrictAboutTheBackbone) {
  test::TempDir tmp;
  auto source = create_reward_model(test::tiny_config("LlamaForSequenceClassification"));
  source->init_weights(/*seed=*/3);
  const std::string dir = join_path(tmp.path(), "broken");
  NamedTensors tensors;
  for (const auto& item : source->named_parameters()) {
    if (item.key() != "score.weight" && item.key() != "model.norm.weight") {
      tensors.emplace_back(item.key(), item.value().detach());
    }
  }
  save_safetensors_folder(dir, tensors);
  auto config = source->config().to_json();
  config["architectures"] = {"LlamaForCausalLM"};
  write_file_atomic(join_path(dir, "config.json"), config.dump(2));
  const std::string err = test::error_of([&] { load_reward_model_from_causal_lm(dir, 0); });
  EXPECT_TRUE(test::contains(err, "missing tensor model.norm.weight")) << err;
  EXPECT_FALSE(test::contains(err, "score.weight")) << err;
}

}  // namespace
}  // namespace openrm
