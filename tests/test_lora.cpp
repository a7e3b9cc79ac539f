// LoRA adapters in PEFT's layout (openrm/models/lora.h): a fresh adapter
// leaves the scores as they were, only adapters and the head train, and the
// adapter folder openrm writes loads in PEFT (PeftModel.from_pretrained on
// the transformers base) with openrm's scores.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "openrm/models/lora.h"
#include "openrm/models/packed_batch.h"
#include "openrm/models/reward_model.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using json = nlohmann::json;

const std::string kBase = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/parity/llama_llama3_rope";

std::vector<std::vector<std::int64_t>> fixture_sequences() {
  std::ifstream in(kBase + "/expected.json");
  return json::parse(in).at("sequences").get<std::vector<std::vector<std::int64_t>>>();
}

// The base fixture in fp32, and rank-4 alpha-8 options.
std::shared_ptr<RewardModel> load_base() {
  LoadOptions load;
  load.dtype = c10::kFloat;
  return load_reward_model(kBase, load);
}

LoraOptions rank_four() {
  LoraOptions options;
  options.rank = 4;
  options.alpha = 8;
  return options;
}

std::vector<double> scores_alone(RewardModel& model, const std::vector<std::vector<std::int64_t>>& sequences) {
  torch::NoGradGuard no_grad;
  std::vector<double> out;
  for (const auto& s : sequences) out.push_back(model.forward(PackedBatch::from_sequences({s}))[0][0].item<double>());
  return out;
}

TEST(Lora, AFreshAdapterChangesNothingAndOnlyAdaptersAndTheHeadTrain) {
  if (!std::filesystem::is_directory(kBase)) GTEST_SKIP() << kBase << " is missing";
  auto model = load_base();
  const auto sequences = fixture_sequences();
  const auto before = scores_alone(*model, sequences);
  const LoraOptions options = rank_four();
  const auto adapted = apply_lora(*model, options, /*seed=*/3);
  EXPECT_EQ(adapted.size(), 2u * 7u) << "7 linear layers in each of 2 layers";
  EXPECT_EQ(scores_alone(*model, sequences), before) << "B = 0: the same scores, exactly";
  std::int64_t trainable = 0, frozen = 0;
  for (const auto& item : model->named_parameters()) {
    const bool lora = item.key().find(".lora_") != std::string::npos;
    const bool head = item.key() == "score.weight";
    EXPECT_EQ(item.value().requires_grad(), lora || head) << item.key();
    (item.value().requires_grad() ? trainable : frozen) += item.value().numel();
  }
  EXPECT_GT(frozen, trainable);
  // A backward reaches the adapters and the head only.
  model->train();
  model->forward(PackedBatch::from_sequences(sequences)).sum().backward();
  for (const auto& item : model->named_parameters()) {
    EXPECT_EQ(item.value().grad().defined(), item.value().requires_grad()) << item.key();
  }
  EXPECT_TRUE(test::contains(test::error_of([&] { apply_lora(*model, options); }), "already has an adapter"));
  LoraOptions none;
  none.targets = {"no_such_layer"};
  auto other = load_base();
  const std::string error = test::error_of([&] { apply_lora(*other, none); });
  EXPECT_TRUE(test::contains(error, "q_proj")) << error;
  LoraOptions bad;
  bad.rank = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { bad.validate(); }), "rank"));
}

TEST(Lora, PeftLoadsTheAdapterWithOpenrmsScores) {
  if (!std::filesystem::is_directory(kBase)) GTEST_SKIP() << kBase << " is missing";
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  auto model = load_base();
  const auto sequences = fixture_sequences();
  const auto base_scores = scores_alone(*model, sequences);
  LoraOptions options = rank_four();
  options.targets = {"q_proj", "v_proj", "down_proj"};
  apply_lora(*model, options, /*seed=*/5);
  {
    // As if trained: B and the head away from their start.
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    for (auto& item : model->named_parameters()) {
      if (item.key().find(".lora_B.") != std::string::npos || item.key() == "score.weight") {
        item.value().add_(at::empty(item.value().sizes(), at::kFloat).normal_(0.0, 0.3, gen));
      }
    }
  }
  model->eval();
  const auto ours = scores_alone(*model, sequences);
  test::TempDir tmp;
  const std::string adapter = tmp.file("adapter");
  save_lora_adapter(*model, options, adapter, kBase);
  const std::string script = tmp.file("peft_scores.py");
  test::write_bytes(script,
                    "import json, sys\n"
                    "try:\n"
                    "    import torch\n"
                    "    from peft import PeftModel\n"
                    "    from transformers import AutoModelForSequenceClassification\n"
                    "except ImportError:\n"
                    "    sys.exit(77)\n"
                    "base_dir, adapter_dir, sequences = sys.argv[1], sys.argv[2], json.loads(open(sys.argv[3]).read())\n"
                    "base = AutoModelForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32, "
                    "attn_implementation='eager')\n"
                    "model = PeftModel.from_pretrained(base, adapter_dir).eval()\n"
                    "with torch.no_grad():\n"
                    "    out = [model(input_ids=torch.tensor([s])).logits[0, 0].item() for s in sequences]\n"
                    "print(json.dumps(out))\n");
  test::write_bytes(tmp.file("sequences.json"), json(sequences).dump());
  const std::string out = tmp.file("peft.json");
  const std::string cmd = "'" + python + "' '" + script + "' '" + kBase + "' '" + adapter + "' '" +
                          tmp.file("sequences.json") + "' > '" + out + "' 2> '" + tmp.file("peft.log") + "'";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << test::kNoReferenceMessage;
  ASSERT_EQ(code, 0) << test::read_bytes(tmp.file("peft.log"));
  const auto peft = json::parse(test::read_bytes(out)).get<std::vector<double>>();
  ASSERT_EQ(peft.size(), ours.size());
  double worst = 0.0, effect = 0.0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    worst = std::max(worst, std::abs(peft[i] - ours[i]));
    effect = std::max(effect, std::abs(ours[i] - base_scores[i]));
  }
  std::printf("[ lora     ] PEFT on the transformers base vs openrm: max |diff| %.3g (the adapter moves scores by up to "
              "%.3g)\n",
              worst, effect);
  EXPECT_LE(worst, 1e-4);
  EXPECT_GT(effect, 1e-2) << "the adapter and head must matter for the comparison to mean anything";
  // Merged, the model is a plain reward model with the same scores, and it
  // saves and loads as one.
  EXPECT_EQ(merge_lora(*model), 2 * 3);
  for (const auto& item : model->named_parameters()) EXPECT_EQ(item.key().find(".lora_"), std::string::npos) << item.key();
  const auto merged = scores_alone(*model, sequences);
  double merge_diff = 0.0;
  for (std::size_t i = 0; i < ours.size(); ++i) merge_diff = std::max(merge_diff, std::abs(merged[i] - ours[i]));
  EXPECT_LE(merge_diff, 1e-5);
  save_reward_model(*model, tmp.file("merged"));
  LoadOptions load;
  load.dtype = c10::kFloat;
  auto reloaded = load_reward_model(tmp.file("merged"), load);
  EXPECT_EQ(scores_alone(*reloaded, sequences), merged);
  const json config = json::parse(test::read_bytes(adapter + "/adapter_config.json"));
  EXPECT_EQ(config.at("peft_type"), "LORA");
  EXPECT_EQ(config.at("modules_to_save"), json::array({"score"}));
}

}  // namespace
}  // namespace openrm
