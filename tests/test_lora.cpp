// LoRA adapters in PEFT's layout (openrm/models/lora.h): a fresh adapter
// leaves the scores as they were, only adapters and the head train, and the
// adapter folder openrm writes loads in PEFT (PeftModel.from_pretrained on
// the transformers base) with openrm's scores. Adapter folders load back
// (load_lora_adapter bit for bit; load_reward_model merged onto the base),
// folders PEFT itself saved load with PEFT's scores, and bad folders are
// refused naming the file, the model left as it was.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "openrm/eval/evaluate.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/lora.h"
#include "openrm/models/model_folder.h"
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
  test::perturb_adapters_and_head(*model);  // as if trained
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

std::int64_t adapter_tensors(RewardModel& model) {
  std::int64_t n = 0;
  for (const auto& item : model.named_parameters()) n += item.key().find(".lora_") != std::string::npos;
  return n;
}

double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

json read_json(const std::string& path) { return json::parse(test::read_bytes(path)); }

void write_json(const std::string& path, const json& j) { test::write_bytes(path, j.dump(2)); }

// A copy of the adapter folder `from` at `to` with adapter_config.json edited.
std::string edited_copy(const std::string& from, const std::string& to, const std::function<void(json&)>& edit) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
  json config = read_json(to + "/adapter_config.json");
  edit(config);
  write_json(to + "/adapter_config.json", config);
  return to;
}

TEST(Lora, ALoadedAdapterGivesTheSavedScoresBitForBit) {
  test::TempDir tmp;
  const std::string adapter = tmp.file("adapter");
  auto adapted = test::make_tiny_lora_adapter(tmp.file("base"), adapter, /*with_tokenizer=*/false);
  const auto sequences = test::tiny_sequences();
  const auto ours = scores_alone(*adapted, sequences);

  EXPECT_TRUE(is_lora_adapter_folder(adapter));
  EXPECT_FALSE(is_lora_adapter_folder(tmp.file("base")));
  const LoraOptions read = read_lora_config(adapter);
  EXPECT_EQ(read.rank, 4);
  EXPECT_EQ(read.alpha, 8.0);
  EXPECT_EQ(read.dropout, 0.0);
  EXPECT_EQ(read.targets, (std::vector<std::string>{"q_proj", "v_proj", "down_proj"}));
  EXPECT_TRUE(read.target_regex.empty());

  auto model = load_reward_model(tmp.file("base"));
  const auto base_scores = scores_alone(*model, sequences);
  load_lora_adapter(*model, adapter);
  EXPECT_EQ(adapter_tensors(*model), 2 * 3 * 2) << "A and B on 3 layers in each of 2 layers";
  const auto loaded = scores_alone(*model, sequences);
  EXPECT_EQ(loaded, ours) << "the same tensors, the same computation: the same bits";
  const auto theirs = adapted->named_parameters();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(theirs.contains(item.key())) << item.key();
    EXPECT_TRUE(at::equal(item.value(), theirs[item.key()])) << item.key();
    const bool trainable = item.key().find(".lora_") != std::string::npos || item.key() == "score.weight";
    EXPECT_EQ(item.value().requires_grad(), trainable) << item.key();
  }
  const double effect = max_diff(ours, base_scores);
  std::printf("[ lora     ] load_lora_adapter: %zu scores bit-equal to the saved model's (the adapter moves them by "
              "up to %.3g)\n",
              ours.size(), effect);
  EXPECT_GT(effect, 1e-2);
  EXPECT_TRUE(test::contains(test::error_of([&] { load_lora_adapter(*model, adapter); }), "already has an adapter"));
}

TEST(Lora, LoadRewardModelMergesAnAdapterFolderOntoItsBase) {
  test::TempDir tmp;
  const std::string base = tmp.file("base"), adapter = tmp.file("adapter");
  auto adapted = test::make_tiny_lora_adapter(base, adapter, /*with_tokenizer=*/true);
  const auto sequences = test::tiny_sequences();
  const auto ours = scores_alone(*adapted, sequences);

  auto merged = load_reward_model(adapter);
  EXPECT_EQ(adapter_tensors(*merged), 0) << "merged: a plain reward model";
  const auto merged_scores = scores_alone(*merged, sequences);
  const double diff = max_diff(merged_scores, ours);
  std::printf("[ lora     ] load_reward_model(adapter folder), merged: max |diff| %.3g against the adapted model\n",
              diff);
  EXPECT_LE(diff, 1e-5);

  // base_model_name_or_path relative to the adapter folder.
  std::filesystem::create_directories(tmp.file("deeper"));
  const std::string relative = edited_copy(adapter, tmp.file("deeper/adapter"),
                                           [](json& c) { c["base_model_name_or_path"] = "../../base"; });
  EXPECT_EQ(scores_alone(*load_reward_model(relative), sequences), merged_scores);
  // A Hub id cannot be fetched: the error says so and how to give the base.
  const std::string hub = edited_copy(adapter, tmp.file("hub"),
                                      [](json& c) { c["base_model_name_or_path"] = "meta-llama/Llama-2-7b-hf"; });
  const std::string error = test::error_of([&] { load_reward_model(hub); });
  EXPECT_TRUE(test::contains(error, hub + "/adapter_config.json: field 'base_model_name_or_path'")) << error;
  EXPECT_TRUE(test::contains(error, "'meta-llama/Llama-2-7b-hf' is not a folder here")) << error;
  EXPECT_TRUE(test::contains(error, "LoadOptions::base_model")) << error;
  LoadOptions given;
  given.base_model = base;
  EXPECT_EQ(scores_alone(*load_reward_model(hub, given), sequences), merged_scores);
  given.base_model = tmp.file("no-such-base");
  EXPECT_TRUE(test::contains(test::error_of([&] { load_reward_model(hub, given); }), "no-such-base"));

  // The folder: the adapter's tokenizer files, else the base's (openrm-eval,
  // openrm-score).
  auto folder = load_reward_model_folder(adapter);
  ASSERT_TRUE(folder.tokenizer);
  EXPECT_EQ(model_tokenizer_folder(adapter), base);
  EXPECT_EQ(scores_alone(*folder.model, sequences), merged_scores);
  const std::string pairs = tmp.file("pairs.jsonl");
  test::write_bytes(pairs,
                    "{\"prompt\": \"The quick brown fox\", \"chosen\": \"jumps over the lazy dog.\", \"rejected\": "
                    "\"scores answer number 7.\"}\n"
                    "{\"prompt\": \"A reward model\", \"chosen\": \"scores answer number 14 for you.\", \"rejected\": "
                    "\"The lazy dog.\"}\n");
  EvalOptions eval;
  eval.threads = 1;
  const EvalResult on_adapter = evaluate_file(adapter, pairs, eval);
  const EvalResult on_base = evaluate_file(base, pairs, eval);
  ASSERT_EQ(on_adapter.rewards.size(), 2u);
  ASSERT_EQ(on_base.rewards.size(), 2u);
  EXPECT_GT(std::abs(on_adapter.rewards[0].chosen - on_base.rewards[0].chosen), 1e-3) << "the adapter is applied";
  // Neither folder has a tokenizer: the error says so.
  const std::string bare = tmp.file("bare-adapter");
  test::make_tiny_lora_adapter(tmp.file("bare-base"), bare, /*with_tokenizer=*/false);
  const std::string no_tokenizer = test::error_of([&] { evaluate_file(bare, pairs, eval); });
  EXPECT_TRUE(test::contains(no_tokenizer, "nor has its base model folder")) << no_tokenizer;
}

// Adapters made and saved by PEFT on the transformers base: a list of
// targets with dropout (off in eval), and a regex string.
TEST(Lora, LoadsAdaptersThatPeftSavedWithPeftsScores) {
  if (!std::filesystem::is_directory(kBase)) GTEST_SKIP() << kBase << " is missing";
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  const auto sequences = fixture_sequences();
  const std::string script = tmp.file("peft_save.py");
  test::write_bytes(script,
                    "import json, sys\n"
                    "try:\n"
                    "    import torch\n"
                    "    import peft\n"
                    "    from peft import LoraConfig, get_peft_model\n"
                    "    from transformers import AutoModelForSequenceClassification\n"
                    "except ImportError:\n"
                    "    sys.exit(77)\n"
                    "base_dir, out_dir, sequences = sys.argv[1], sys.argv[2], json.loads(open(sys.argv[3]).read())\n"
                    "configs = [\n"
                    "    dict(r=4, lora_alpha=16, lora_dropout=0.1, target_modules=['q_proj', 'k_proj', 'o_proj', "
                    "'up_proj']),\n"
                    "    dict(r=2, lora_alpha=3, target_modules=r'model\\.layers\\.1\\.(self_attn\\.v_proj|mlp\\.(gate|down)_proj)'),\n"
                    "]\n"
                    "result = {'peft': peft.__version__, 'adapters': []}\n"
                    "for i, options in enumerate(configs):\n"
                    "    torch.manual_seed(100 + i)\n"
                    "    base = AutoModelForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32, "
                    "attn_implementation='eager')\n"
                    "    model = get_peft_model(base, LoraConfig(task_type='SEQ_CLS', **options))\n"
                    "    with torch.no_grad():\n"
                    "        for name, p in model.named_parameters():\n"
                    "            if 'lora_B' in name or 'modules_to_save.default' in name:\n"
                    "                p.add_(torch.randn_like(p) * 0.3)\n"
                    "    model.eval()\n"
                    "    with torch.no_grad():\n"
                    "        scores = [model(input_ids=torch.tensor([s])).logits[0, 0].item() for s in sequences]\n"
                    "    folder = f'{out_dir}/adapter{i}'\n"
                    "    model.save_pretrained(folder)\n"
                    "    result['adapters'].append({'dir': folder, 'scores': scores})\n"
                    "print(json.dumps(result))\n");
  test::write_bytes(tmp.file("sequences.json"), json(sequences).dump());
  const std::string out = tmp.file("peft.json");
  const std::string cmd = "'" + python + "' '" + script + "' '" + kBase + "' '" + tmp.path() + "' '" +
                          tmp.file("sequences.json") + "' > '" + out + "' 2> '" + tmp.file("peft.log") + "'";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << test::kNoReferenceMessage;
  ASSERT_EQ(code, 0) << test::read_bytes(tmp.file("peft.log"));
  const json result = read_json(out);
  ASSERT_EQ(result.at("adapters").size(), 2u);
  auto base = load_base();
  const auto base_scores = scores_alone(*base, sequences);
  const std::int64_t expected_layers[] = {2 * 4, 3};
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("adapter " + std::to_string(i));
    const json& a = result["adapters"][i];
    const std::string dir = a.at("dir");
    const auto peft = a.at("scores").get<std::vector<double>>();
    auto model = load_base();
    load_lora_adapter(*model, dir);
    EXPECT_EQ(adapter_tensors(*model), 2 * expected_layers[i]);
    const double loaded = max_diff(scores_alone(*model, sequences), peft);
    const double merged = max_diff(scores_alone(*load_reward_model(dir), sequences), peft);
    const double effect = max_diff(peft, base_scores);
    std::printf("[ lora     ] PEFT %s adapter %zu (%s target_modules): load_lora_adapter max |diff| %.3g, "
                "load_reward_model (merged) %.3g, against PEFT's scores (the adapter moves them by up to %.3g)\n",
                result.at("peft").get<std::string>().c_str(), i, i == 0 ? "list" : "regex", loaded, merged, effect);
    EXPECT_LE(loaded, 1e-5);
    EXPECT_LE(merged, 1e-5);
    EXPECT_GT(effect, 1e-2);
  }
  EXPECT_EQ(read_lora_config(result["adapters"][0].at("dir")).dropout, 0.1);
  EXPECT_FALSE(read_lora_config(result["adapters"][1].at("dir")).target_regex.empty());
}

TEST(Lora, BadAdapterFoldersAreRefusedNamingTheFileAndLeaveTheModelAsItWas) {
  test::TempDir tmp;
  const std::string adapter = tmp.file("adapter");
  test::make_tiny_lora_adapter(tmp.file("base"), adapter, /*with_tokenizer=*/false);
  auto model = load_reward_model(tmp.file("base"));
  int n = 0;
  // The message of load_lora_adapter on a copy of the adapter changed by
  // `change`; the model must come out untouched.
  const auto load_error = [&](const std::function<void(const std::string&)>& change) {
    const std::string dir = tmp.file("case" + std::to_string(n++));
    std::filesystem::copy(adapter, dir, std::filesystem::copy_options::recursive);
    change(dir);
    const std::string error = test::error_of([&] { load_lora_adapter(*model, dir); });
    EXPECT_EQ(adapter_tensors(*model), 0) << "the model was changed by a failed load: " << error;
    return std::make_pair(dir, error);
  };
  const auto config_edit = [](const std::function<void(json&)>& edit) {
    return [edit](const std::string& dir) {
      json config = read_json(dir + "/adapter_config.json");
      edit(config);
      write_json(dir + "/adapter_config.json", config);
    };
  };
  std::printf("[ lora     ] errors:\n");
  const auto expect = [](const std::pair<std::string, std::string>& got, const std::string& file,
                         const std::vector<std::string>& parts) {
    const auto& [dir, error] = got;
    std::printf("  %s\n", error.c_str());
    EXPECT_TRUE(test::contains(error, dir + "/" + file)) << error;
    for (const auto& part : parts) EXPECT_TRUE(test::contains(error, part)) << error;
  };
  expect(load_error([](const std::string& dir) { std::filesystem::remove(dir + "/adapter_model.safetensors"); }),
         "adapter_model.safetensors", {"no such file"});
  expect(load_error(config_edit([](json& c) { c["r"] = 8; })), "adapter_model.safetensors",
         {"tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight: expected [8, 32], got [4, 32]",
          "gives r = 8"});
  expect(load_error(config_edit([](json& c) { c["use_dora"] = true; })), "adapter_config.json",
         {"field 'use_dora': true is not supported"});
  expect(load_error(config_edit([](json& c) { c["use_rslora"] = true; })), "adapter_config.json", {"use_rslora"});
  expect(load_error(config_edit([](json& c) { c["bias"] = "all"; })), "adapter_config.json", {"field 'bias'"});
  expect(load_error(config_edit([](json& c) { c["target_modules"] = {"no_such_proj"}; })), "adapter_config.json",
         {"field 'target_modules'", "no linear layer is named like the targets", "q_proj"});
  expect(load_error(config_edit([](json& c) { c["target_modules"] = "all-linear"; })), "adapter_config.json",
         {"field 'target_modules'", "all-linear"});
  expect(load_error(config_edit([](json& c) { c["target_modules"] = {"q_proj"}; })), "adapter_model.safetensors",
         {"does not account for", "v_proj.lora_A.weight"});
  expect(load_error(config_edit([](json& c) { c["peft_type"] = "IA3"; })), "adapter_config.json",
         {"field 'peft_type'"});
  expect(load_error(config_edit([](json& c) { c.erase("r"); })), "adapter_config.json", {"field 'r'"});
  expect(load_error([](const std::string& dir) { test::write_bytes(dir + "/adapter_config.json", "{\"r\": "); }),
         "adapter_config.json", {"JSON"});
  // A tensor missing from the file.
  expect(load_error([](const std::string& dir) {
           const std::string file = dir + "/adapter_model.safetensors";
           NamedTensors kept;
           {
             const WeightStore store = WeightStore::open_file(file);
             for (const auto& name : store.names()) {
               if (name.find("layers.1.mlp.down_proj.lora_B") == std::string::npos) {
                 kept.emplace_back(name, store.tensor(name).clone());
               }
             }
           }
           save_safetensors(file, kept);
         }),
         "adapter_model.safetensors", {"missing tensor base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"});
  expect(load_error([](const std::string& dir) { std::filesystem::remove(dir + "/adapter_config.json"); }),
         "adapter_config.json", {"no such file"});
  // The base of load_reward_model must exist.
  const std::string gone = edited_copy(adapter, tmp.file("gone"), [&](json& c) {
    c["base_model_name_or_path"] = tmp.file("no-such-base");
  });
  const std::string error = test::error_of([&] { load_reward_model(gone); });
  EXPECT_TRUE(test::contains(error, gone + "/adapter_config.json: field 'base_model_name_or_path'")) << error;
  // After all that, the model still loads the good adapter.
  load_lora_adapter(*model, adapter);
  EXPECT_EQ(adapter_tensors(*model), 12);
}

}  // namespace
}  // namespace openrm
