// Training every family: openrm's gradients of the Bradley-Terry loss that
// openrm-train minimises equal transformers' autograd gradients
// (tests/fixtures/gradients.json, written by
// tests/fixtures/make_gradient_fixtures.py from the parity fixtures), with
// gradient checkpointing off and on.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "openrm/models/packed_batch.h"
#include "openrm/models/reward_model.h"
#include "test_paths.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixtures() { return fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures"; }

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return json::parse(in);
}

struct Gradients {
  double loss = 0.0;
  std::map<std::string, at::Tensor> grads;  // float64 copies
};

Gradients bradley_terry_gradients(const fs::path& folder, const std::vector<std::vector<std::int64_t>>& sequences,
                                  bool checkpointing) {
  LoadOptions options;
  options.dtype = c10::kFloat;
  auto model = load_reward_model(folder.string(), options);
  model->set_gradient_checkpointing(checkpointing);
  model->train();
  const at::Tensor rewards = model->forward(PackedBatch::from_sequences(sequences)).select(1, 0);
  const auto n = rewards.size(0);
  const at::Tensor chosen = rewards.slice(0, 0, n, 2), rejected = rewards.slice(0, 1, n, 2);
  const at::Tensor loss = -torch::log_sigmoid(chosen - rejected).mean();
  loss.backward();
  Gradients out;
  out.loss = loss.item<double>();
  for (const auto& item : model->named_parameters()) {
    if (item.value().grad().defined()) out.grads[item.key()] = item.value().grad().to(torch::kDouble).clone();
  }
  return out;
}

class GradientTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GradientTest, BradleyTerryGradientsMatchTransformers) {
  const fs::path path = fixtures() / "gradients.json";
  if (!fs::is_regular_file(path)) {
    GTEST_SKIP() << path.string() << " is missing: generate it with tests/fixtures/make_gradient_fixtures.py";
  }
  const json all = read_json_file(path);
  ASSERT_EQ(all.at("format_version").get<int>(), 1);
  const json& want = all.at("fixtures").at(GetParam());
  const fs::path folder = fixtures() / want.at("folder").get<std::string>();
  const json expected = read_json_file(folder / "expected.json");
  auto sequences = expected.at("sequences").get<std::vector<std::vector<std::int64_t>>>();
  if (sequences.size() % 2) sequences.pop_back();

  const Gradients got = bradley_terry_gradients(folder, sequences, /*checkpointing=*/false);
  EXPECT_NEAR(got.loss, want.at("loss").get<double>(), 1e-5 * std::max(1.0, std::abs(want.at("loss").get<double>())));
  const json& grads = want.at("gradients");
  EXPECT_EQ(got.grads.size(), grads.size()) << "parameters with a gradient";
  double worst = 0.0;
  for (const auto& [name, g] : grads.items()) {
    SCOPED_TRACE(name);
    auto it = got.grads.find(name);
    if (it == got.grads.end()) {
      ADD_FAILURE() << "openrm has no gradient for " << name;
      continue;
    }
    const double norm = g.at("norm").get<double>(), sum = g.at("sum").get<double>();
    const double abs_sum = g.at("abs_sum").get<double>();
    const double got_norm = it->second.norm().item<double>(), got_sum = it->second.sum().item<double>();
    // float32 rounding of both sides; a wrong formula moves these by far more.
    EXPECT_NEAR(got_norm, norm, 1e-4 * norm + 1e-7);
    EXPECT_NEAR(got_sum, sum, 1e-4 * abs_sum + 1e-7);
    // (Gradients that are 0 in exact arithmetic, such as a key bias under
    // softmax or the head's bias in a difference of rewards, are rounding
    // noise on both sides; the absolute term covers them.)
    if (norm > 1e-6) worst = std::max(worst, std::abs(got_norm - norm) / norm);
  }
  std::printf("[ gradient ] %s: loss %.6f (transformers %.6f), worst relative |norm diff| %.2g (norms > 1e-6) over %zu tensors\n",
              GetParam().c_str(), got.loss, want.at("loss").get<double>(), worst, got.grads.size());

  // Gradient checkpointing recomputes the layers in backward: the same gradients.
  const Gradients again = bradley_terry_gradients(folder, sequences, /*checkpointing=*/true);
  EXPECT_NEAR(again.loss, got.loss, 1e-6);
  for (const auto& [name, g] : got.grads) {
    auto it = again.grads.find(name);
    ASSERT_NE(it, again.grads.end()) << name;
    const double scale = g.abs().max().item<double>() + 1e-12;
    EXPECT_LE((it->second - g).abs().max().item<double>(), 1e-5 * scale) << name << " with checkpointing";
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GradientTest,
                         ::testing::Values("llama_llama3_rope", "qwen3_head_dim", "gemma", "gemma2_softcap_window",
                                           "gpt_neox_parallel", "gpt_neox_sequential", "gpt2", "deberta_v3",
                                           "deberta_v2_unshared", "deberta_v2_conv"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace openrm
