// A model folder loaded as a whole: model + tokenizer + chat format + openrm.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <openrm/io/file.h>
#include <openrm/models/model_folder.h>
#include <openrm/tokenizer/train_tokenizer.h>

#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

std::vector<std::string> training_texts() {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("The quick brown fox " + std::to_string(i) + " jumps over the lazy dog.");
    texts.push_back("A reward model scores answer number " + std::to_string(i * 7) + " for you.");
  }
  return texts;
}

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

TokenizerTrainOptions tiny_tokenizer_options() {
  TokenizerTrainOptions o;
  o.vocab_size = 64;
  o.byte_fallback = false;
  o.character_coverage = 1.0;
  return o;
}

TEST(ModelFolder, LoadsTokenizerAndChatFormatWithTheModel) {
  test::TempDir tmp;
  const std::string dir = make_model_folder(tmp, "rm");
  train_tokenizer(training_texts(), dir, tiny_tokenizer_options());

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
