// DeBERTa-v2/v3 (DebertaV2ForSequenceClassification): parity with
// transformers on tiny random-weight checkpoints that transformers wrote
// (tests/fixtures/deberta/<name>/, written by
// tests/fixtures/make_deberta_fixtures.py), config validation, and a fresh
// model's initialisation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "openrm/io/config.h"
#include "openrm/models/packed_batch.h"
#include "openrm/models/pooling.h"
#include "openrm/models/reward_model.h"
#include "test_paths.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr double kTolerance = 1e-4;

const char* const kDebertaFixtures[] = {"deberta_v3", "deberta_v2_unshared", "deberta_v2_conv", "deberta_v3_bf16"};
// openrm in bf16 against transformers in bf16 (both round each matmul output
// to bf16, in different places); transformers' own bf16 scores are ~2e-2 from
// its fp32 ones here.
constexpr double kBf16Tolerance = 5e-2;

fs::path deberta_root() { return fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures" / "deberta"; }

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return json::parse(in);
}

std::vector<std::vector<double>> to_scores(const at::Tensor& t) {
  auto cpu = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  std::vector<std::vector<double>> out(static_cast<std::size_t>(cpu.size(0)));
  auto a = cpu.accessor<double, 2>();
  for (std::int64_t b = 0; b < cpu.size(0); ++b) {
    for (std::int64_t l = 0; l < cpu.size(1); ++l) out[static_cast<std::size_t>(b)].push_back(a[b][l]);
  }
  return out;
}

double max_diff(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& want) {
  double worst = 0.0;
  EXPECT_EQ(got.size(), want.size());
  for (std::size_t b = 0; b < got.size() && b < want.size(); ++b) {
    EXPECT_EQ(got[b].size(), want[b].size());
    for (std::size_t l = 0; l < got[b].size() && l < want[b].size(); ++l) {
      double d = std::abs(got[b][l] - want[b][l]);
      if (std::isnan(d)) d = INFINITY;
      worst = std::max(worst, d);
    }
  }
  return worst;
}

class DebertaParityTest : public ::testing::TestWithParam<const char*> {};

TEST_P(DebertaParityTest, ScoresMatchTransformers) {
  const std::string name = GetParam();
  const fs::path dir = deberta_root() / name;
  if (!fs::is_directory(dir)) {
    GTEST_SKIP() << "DeBERTa fixture " << name << " is missing (" << dir.string()
                 << "). Generate it with the reference environment's python: "
                 << "python tests/fixtures/make_deberta_fixtures.py";
  }
  const json expected = read_json_file(dir / "expected.json");
  ASSERT_EQ(expected.at("format_version").get<int>(), 1);
  ASSERT_EQ(expected.at("architecture").get<std::string>(), "DebertaV2ForSequenceClassification");
  ASSERT_FALSE(expected.at("generator").at("transformers").get<std::string>().empty());
  const auto sequences = expected.at("sequences").get<std::vector<std::vector<std::int64_t>>>();
  ASSERT_FALSE(sequences.empty());
  const auto unbatched = expected.at("scores").at("unbatched").get<std::vector<std::vector<double>>>();
  const auto padded = expected.at("scores").at("right_padded").get<std::vector<std::vector<double>>>();

  LoadOptions options;
  options.dtype = c10::kFloat;
  std::shared_ptr<RewardModel> model;
  try {
    model = load_reward_model(dir.string(), options);
  } catch (const std::exception& e) {
    FAIL() << "loading " << dir.string() << ": " << e.what();
  }
  EXPECT_STREQ(pooling_name(model->pooling()), pooling_name(Pooling::kFirstToken));
  EXPECT_EQ(model->head_spec().name, "classifier");
  EXPECT_TRUE(model->head_spec().bias);
  EXPECT_EQ(model->config().num_labels, expected.at("num_labels").get<std::int64_t>());

  torch::NoGradGuard no_grad;
  std::vector<std::vector<double>> alone;
  for (const auto& s : sequences) {
    auto scores = to_scores(model->forward(PackedBatch::from_sequences({s})));
    alone.push_back(scores.at(0));
  }
  const double alone_diff = max_diff(alone, unbatched);
  const auto batched = to_scores(model->forward(PackedBatch::from_sequences(sequences)));
  const double batched_diff = max_diff(batched, padded);
  std::printf("[ deberta  ] %s: max |diff| alone %.3g, batched %.3g (transformers %s)\n", name.c_str(), alone_diff,
              batched_diff, expected.at("generator").at("transformers").get<std::string>().c_str());
  EXPECT_LE(alone_diff, kTolerance) << name << ": each sequence alone vs transformers' unbatched scores";
  EXPECT_LE(batched_diff, kTolerance) << name << ": one packed batch vs transformers' right-padded batch";
}

// A checkpoint stored in bf16, computed in bf16, near transformers in bf16.
TEST(DebertaBf16Test, CheckpointScoresNearTransformersInBf16) {
  const fs::path dir = deberta_root() / "deberta_v3_bf16";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "DeBERTa fixture deberta_v3_bf16 is missing (" << dir.string() << ")";
  const json expected = read_json_file(dir / "expected.json");
  ASSERT_EQ(expected.at("stored_dtype").get<std::string>(), "bfloat16");
  const auto sequences = expected.at("sequences").get<std::vector<std::vector<std::int64_t>>>();
  const auto want = expected.at("scores").at("unbatched_bf16").get<std::vector<std::vector<double>>>();
  LoadOptions options;
  options.dtype = c10::kBFloat16;
  auto model = load_reward_model(dir.string(), options);
  ASSERT_EQ(model->dtype(), c10::kBFloat16);
  torch::NoGradGuard no_grad;
  std::vector<std::vector<double>> alone;
  for (const auto& s : sequences) alone.push_back(to_scores(model->forward(PackedBatch::from_sequences({s}))).at(0));
  const double diff = max_diff(alone, want);
  std::printf("[ deberta  ] deberta_v3_bf16: openrm bf16 vs transformers bf16: max |diff| %.3g\n", diff);
  EXPECT_LE(diff, kBf16Tolerance);
}

// openrm's own save of a loaded checkpoint loads back to the same scores.
TEST(DebertaSaveTest, SaveAndReloadKeepsScores) {
  const fs::path dir = deberta_root() / "deberta_v3";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "DeBERTa fixture deberta_v3 is missing (" << dir.string() << ")";
  auto model = load_reward_model(dir.string());
  const fs::path out = fs::temp_directory_path() / "openrm_deberta_save_test";
  fs::remove_all(out);
  save_reward_model(*model, out.string());
  auto again = load_reward_model(out.string());
  torch::NoGradGuard no_grad;
  const auto batch = PackedBatch::from_sequences({{1, 5, 9, 2, 7, 2}, {1, 2}});
  EXPECT_TRUE(torch::equal(model->forward(batch), again->forward(batch)));
  EXPECT_STREQ(pooling_name(again->pooling()), pooling_name(Pooling::kFirstToken));
  fs::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DebertaParityTest, ::testing::ValuesIn(kDebertaFixtures),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// A small DeBERTa-v3-like config, with `changes` merged over it.
ModelConfig deberta_config(const json& changes = json::object()) {
  json c = {{"architectures", {"DebertaV2ForSequenceClassification"}},
            {"model_type", "deberta-v2"},
            {"vocab_size", 50},
            {"hidden_size", 16},
            {"intermediate_size", 32},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 2},
            {"max_position_embeddings", 64},
            {"hidden_act", "gelu"},
            {"layer_norm_eps", 1e-7},
            {"relative_attention", true},
            {"pos_att_type", {"p2c", "c2p"}},
            {"share_att_key", true},
            {"norm_rel_ebd", "layer_norm"},
            {"position_biased_input", false},
            {"position_buckets", 16},
            {"max_relative_positions", 32},
            {"type_vocab_size", 0},
            {"pad_token_id", 0},
            {"num_labels", 1}};
  c.merge_patch(changes);
  return parse_model_config(c.dump(), "config.json");
}

std::string creation_error(const json& changes) {
  try {
    create_reward_model(deberta_config(changes));
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(DebertaConfigTest, RefusesUnsupportedFieldValuesClearly) {
  const struct {
    json changes;
    const char* field;
  } cases[] = {
      {{{"pos_att_type", {"p2c", "p2p"}}}, "pos_att_type"},
      {{{"pos_att_type", "c2p|p2p"}}, "pos_att_type"},
      {{{"norm_rel_ebd", "batch_norm"}}, "norm_rel_ebd"},
      {{{"conv_kernel_size", 2}}, "conv_kernel_size"},
      {{{"conv_kernel_size", 3}, {"conv_groups", 3}}, "conv_groups"},
      {{{"pooler_hidden_size", 8}}, "pooler_hidden_size"},
      {{{"share_att_key", "yes"}}, "share_att_key"},
      {{{"layer_norm_eps", -1.0}}, "layer_norm_eps"},
      {{{"hidden_act", "swiglu_unknown"}}, "swiglu_unknown"},
      {{{"position_buckets", 16}, {"max_relative_positions", 8}}, "max_relative_positions"},
  };
  for (const auto& c : cases) {
    const auto message = creation_error(c.changes);
    EXPECT_NE(message.find(c.field), std::string::npos)
        << c.changes.dump() << ": expected an error naming " << c.field << ", got '" << message << "'";
  }
  EXPECT_EQ(creation_error(json::object()), "");
  EXPECT_EQ(creation_error({{"pos_att_type", "p2c|c2p"}}), "");
  EXPECT_EQ(creation_error({{"conv_kernel_size", 3}, {"conv_act", "gelu"}}), "");
}

TEST(DebertaInitTest, CreateAndInitWeights) {
  for (const json& changes : {json::object(), json{{"share_att_key", false},
                                                   {"position_biased_input", true},
                                                   {"type_vocab_size", 2},
                                                   {"embedding_size", 8},
                                                   {"conv_kernel_size", 3}}}) {
    auto model = create_reward_model(deberta_config(changes));
    EXPECT_STREQ(pooling_name(model->pooling()), pooling_name(Pooling::kFirstToken));
    EXPECT_EQ(model->head_spec().name, "classifier");
    model->init_weights(7);
    bool saw_layer_norm = false, saw_classifier = false, saw_pooler = false;
    for (const auto& item : model->named_parameters()) {
      const auto& n = item.key();
      const auto& p = item.value();
      auto ends_with = [&](const std::string& s) {
        return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
      };
      if (ends_with("LayerNorm.weight")) {
        saw_layer_norm = true;
        EXPECT_TRUE(torch::equal(p, torch::ones_like(p))) << n;
      } else if (ends_with(".bias")) {
        EXPECT_TRUE(torch::equal(p, torch::zeros_like(p))) << n;
      } else {
        EXPECT_GT(p.abs().sum().item<double>(), 0.0) << n;
      }
      saw_classifier |= n == "classifier.weight";
      saw_pooler |= n == "pooler.dense.weight";
    }
    EXPECT_TRUE(saw_layer_norm);
    EXPECT_TRUE(saw_classifier);
    EXPECT_TRUE(saw_pooler);
    torch::NoGradGuard no_grad;
    auto scores = model->forward(PackedBatch::from_sequences({{1, 5, 2, 7, 9, 2}, {1, 2}}));
    ASSERT_EQ(scores.size(0), 2);
    EXPECT_TRUE(torch::isfinite(scores).all().item<bool>());
  }
}

TEST(DebertaInitTest, RefusesOutOfRangeTokensAndLongSequences) {
  auto model = create_reward_model(deberta_config({{"position_biased_input", true}, {"max_position_embeddings", 8}}));
  model->init_weights(3);
  torch::NoGradGuard no_grad;
  EXPECT_THROW(model->forward(PackedBatch::from_sequences({{1, 50, 2}})), std::exception);
  EXPECT_THROW(model->forward(PackedBatch::from_sequences({std::vector<std::int64_t>(9, 3)})), std::exception);
  EXPECT_NO_THROW(model->forward(PackedBatch::from_sequences({std::vector<std::int64_t>(8, 3)})));
}

}  // namespace
}  // namespace openrm
