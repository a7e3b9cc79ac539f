// Parity with transformers: openrm's scores for tiny random-weight checkpoints
// that transformers itself wrote, against the scores transformers gave for
// them (tests/fixtures/parity/<name>/expected.json, written by
// tests/fixtures/make_parity_fixtures.py; see docs/parity.md).
//
// A fixture folder that is absent makes its test skip with a message saying
// how to generate it; the test never passes without transformers' numbers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "openrm/models/packed_batch.h"
#include "openrm/models/pooling.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/reward_model.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ParityFixture {
  const char* name;          // folder under tests/fixtures/parity/
  const char* architecture;  // config.json's architectures[0]
};

// Test names print the fixture's name, not its bytes.
void PrintTo(const ParityFixture& fixture, std::ostream* os) { *os << fixture.name; }

// Every fixture the generator writes (FIXTURES in make_parity_fixtures.py).
const ParityFixture kFixtures[] = {
    {"llama_llama3_rope", "LlamaForSequenceClassification"},
    {"llama_linear_rope_bias", "LlamaForSequenceClassification"},
    {"mistral", "MistralForSequenceClassification"},
    {"qwen2_bias", "Qwen2ForSequenceClassification"},
    {"qwen3_head_dim", "Qwen3ForSequenceClassification"},
    {"qwen2_pad_is_eos", "Qwen2ForSequenceClassification"},
    {"llama_bf16_checkpoint", "LlamaForSequenceClassification"},
    {"llama_added_pad", "LlamaForSequenceClassification"},
    {"gemma", "GemmaForSequenceClassification"},
    {"gemma2_softcap_window", "Gemma2ForSequenceClassification"},
    {"llama_three_labels", "LlamaForSequenceClassification"},
    {"llama_score_bias", "LlamaForSequenceClassification"},
    {"llama_v_head", "LlamaForCausalLM"},
    {"llama_two_layer_head", "INFORMForSequenceClassification"},
    {"llama_deepspeed_chat", "LlamaForCausalLM"},
    {"gpt_neox_parallel", "GPTNeoXForSequenceClassification"},
    {"gpt_neox_sequential", "GPTNeoXForSequenceClassification"},
    {"gpt2", "GPT2ForSequenceClassification"},
    {"gemma2_bf16_checkpoint", "Gemma2ForSequenceClassification"},
    {"gpt_neox_bf16_checkpoint", "GPTNeoXForSequenceClassification"},
    {"gpt2_bf16_checkpoint", "GPT2ForSequenceClassification"},
};

// The fixtures stored in bf16 (each also in kFixtures, upcast to fp32 there).
const ParityFixture kBf16Fixtures[] = {
    {"llama_bf16_checkpoint", "LlamaForSequenceClassification"},
    {"gemma2_bf16_checkpoint", "Gemma2ForSequenceClassification"},
    {"gpt_neox_bf16_checkpoint", "GPTNeoXForSequenceClassification"},
    {"gpt2_bf16_checkpoint", "GPT2ForSequenceClassification"},
};

// fp32 on both sides; tiny models whose scores are O(1). What is left is
// summation order (batched vs. unbatched matmuls, packed vs. padded
// attention), a few 1e-6 at most; a real mismatch (rope, mask, pooling, a
// missing bias or norm weight) moves scores by 1e-2 or more.
constexpr double kTolerance = 1e-4;
// openrm computing in bf16 against transformers computing in bf16 (eager,
// CPU), on a checkpoint stored in bf16. Both round every matmul output to
// bf16 (8 bits of mantissa), in different places; transformers' own bf16
// scores are ~2e-2 from its fp32 ones on these O(1) scores.
constexpr double kNarrowTolerance = 5e-2;

// The references the generator records, each (B, num_labels).
const char* const kReferences[] = {"unbatched", "right_padded", "left_padded"};

using Scores = std::vector<std::vector<double>>;  // (B, num_labels)

// OPENRM_PARITY_FIXTURES, when set, points at another fixtures folder (e.g. a
// freshly generated one before it is copied into the tree).
fs::path fixtures_root() {
  const char* env = std::getenv("OPENRM_PARITY_FIXTURES");
  if (env != nullptr && *env != '\0') return fs::path(env);
  return fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures" / "parity";
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return json::parse(in);
}

Scores scores_from_json(const json& j) { return j.get<Scores>(); }

Scores scores_from_tensor(const at::Tensor& t) {
  at::Tensor cpu = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  TORCH_CHECK(cpu.dim() == 2, "expected scores of shape (B, num_labels), got ", cpu.sizes());
  Scores out(static_cast<std::size_t>(cpu.size(0)));
  auto a = cpu.accessor<double, 2>();
  for (std::int64_t b = 0; b < cpu.size(0); ++b) {
    for (std::int64_t l = 0; l < cpu.size(1); ++l) out[b].push_back(a[b][l]);
  }
  return out;
}

struct Worst {
  double diff = 0.0;
  std::size_t sequence = 0;
  std::size_t label = 0;
};

// Largest |got - want|; NaN counts as infinitely far.
Worst worst_difference(const Scores& got, const Scores& want) {
  Worst worst;
  for (std::size_t b = 0; b < got.size(); ++b) {
    for (std::size_t l = 0; l < got[b].size(); ++l) {
      double d = std::abs(got[b][l] - want[b][l]);
      if (std::isnan(d)) d = INFINITY;
      if (d > worst.diff || (b == 0 && l == 0)) worst = {d, b, l};
    }
  }
  return worst;
}

// The padded references must be the recorded sequences, padded with
// pad_token_id and masked: otherwise they would not be references for them.
void check_padded_reference(const json& ref, const std::string& side,
                            const std::vector<std::vector<std::int64_t>>& sequences,
                            std::int64_t pad_token_id) {
  auto ids = ref.at("input_ids").get<std::vector<std::vector<std::int64_t>>>();
  auto mask = ref.at("attention_mask").get<std::vector<std::vector<std::int64_t>>>();
  ASSERT_EQ(ids.size(), sequences.size()) << side;
  ASSERT_EQ(mask.size(), sequences.size()) << side;
  for (std::size_t b = 0; b < sequences.size(); ++b) {
    const auto& s = sequences[b];
    ASSERT_EQ(ids[b].size(), mask[b].size()) << side << " row " << b;
    std::size_t pad = ids[b].size() - s.size();
    std::size_t first = side == "left" ? pad : 0;
    std::vector<std::int64_t> real(ids[b].begin() + first, ids[b].begin() + first + s.size());
    EXPECT_EQ(real, s) << side << " row " << b << " is not sequence " << b;
    for (std::size_t t = 0; t < ids[b].size(); ++t) {
      bool is_real = t >= first && t < first + s.size();
      EXPECT_EQ(mask[b][t], is_real ? 1 : 0) << side << " row " << b << " position " << t;
      if (!is_real) {
        EXPECT_EQ(ids[b][t], pad_token_id) << side << " row " << b << " position " << t;
      }
    }
  }
}

class ParityTest : public ::testing::TestWithParam<ParityFixture> {};

TEST_P(ParityTest, ScoresMatchTransformers) {
  const ParityFixture& fixture = GetParam();
  const fs::path dir = fixtures_root() / fixture.name;
  if (!fs::is_directory(dir)) {
    GTEST_SKIP() << "parity fixture " << fixture.name << " is missing (" << dir.string()
                 << "). Generate it with the reference environment's python "
                 << "(scripts/install-reference.sh): "
                 << "python tests/fixtures/make_parity_fixtures.py (docs/parity.md).";
  }
  for (const char* file : {"config.json", "expected.json"}) {
    ASSERT_TRUE(fs::is_regular_file(dir / file))
        << "parity fixture " << dir.string() << " is incomplete: no " << file
        << " (regenerate it with tests/fixtures/make_parity_fixtures.py)";
  }
  // Weights as safetensors, or as torch.save wrote them (llama_deepspeed_chat).
  ASSERT_TRUE(fs::is_regular_file(dir / "model.safetensors") || fs::is_regular_file(dir / "pytorch_model.bin"))
      << "parity fixture " << dir.string() << " has no weights";

  const json expected = read_json(dir / "expected.json");
  ASSERT_EQ(expected.at("format_version").get<int>(), 1);
  ASSERT_EQ(expected.at("architecture").get<std::string>(), fixture.architecture);
  const std::string transformers_version =
      expected.at("generator").at("transformers").get<std::string>();
  ASSERT_FALSE(transformers_version.empty()) << "expected.json names no transformers version";
  const auto sequences = expected.at("sequences").get<std::vector<std::vector<std::int64_t>>>();
  const auto pad_token_id = expected.at("pad_token_id").get<std::int64_t>();
  const auto num_labels = expected.at("num_labels").get<std::int64_t>();
  ASSERT_FALSE(sequences.empty());
  for (const char* side : {"right", "left"}) {
    ASSERT_NO_FATAL_FAILURE(check_padded_reference(expected.at(std::string(side) + "_padded"), side,
                                                   sequences, pad_token_id));
  }

  LoadOptions options;
  options.device = c10::Device(c10::kCPU);
  options.dtype = c10::kFloat;
  std::shared_ptr<RewardModel> model;
  try {
    model = load_reward_model(dir.string(), options);
  } catch (const std::exception& e) {
    FAIL() << "loading " << dir.string() << ": " << e.what();
  }
  EXPECT_EQ(model->config().architecture, fixture.architecture);
  EXPECT_EQ(model->config().pad_token_id, std::optional<std::int64_t>(pad_token_id));
  EXPECT_EQ(model->config().num_labels, num_labels);
  EXPECT_STREQ(pooling_name(model->pooling()), pooling_name(Pooling::kRightmostNonPad))
      << "imported checkpoints must default to transformers' pooling rule";
  EXPECT_EQ(model->dtype(), c10::kFloat);
  EXPECT_EQ(model->config().vocab_size, expected.at("vocab_size").get<std::int64_t>());
  if (expected.contains("head")) {
    // A head transformers has no class for: the one its tensor names say.
    const json& head = expected.at("head");
    EXPECT_EQ(model->head_spec().name, head.at("name").get<std::string>());
    EXPECT_EQ(model->head_spec().bias, head.at("bias").get<bool>());
    EXPECT_EQ(model->head_spec().kind == HeadKind::kTwoLayer, head.at("kind") == "two_layer");
    const auto stored = expected.at("tensors").get<std::vector<std::string>>();
    for (const auto& name : model->head_spec().tensor_names()) {
      EXPECT_NE(std::find(stored.begin(), stored.end(), name), stored.end()) << name;
    }
  } else {
    EXPECT_EQ(model->head_spec().name, "score");
    EXPECT_FALSE(model->head_spec().bias);
  }

  // openrm's scores, three ways: each sequence alone, all in one packed
  // batch, and through the score() convenience.
  std::vector<std::pair<std::string, Scores>> ours;
  {
    torch::NoGradGuard no_grad;
    Scores alone;
    for (const auto& s : sequences) {
      alone.push_back(scores_from_tensor(model->forward(PackedBatch::from_sequences({s})))[0]);
    }
    ours.emplace_back("alone", alone);
    ours.emplace_back("packed batch",
                      scores_from_tensor(model->forward(PackedBatch::from_sequences(sequences))));
    if (num_labels == 1) {
      Scores via_score;
      for (float x : model->score(sequences)) via_score.push_back({static_cast<double>(x)});
      ours.emplace_back("score()", via_score);
    }
  }

  for (const char* reference : kReferences) {
    const Scores want = scores_from_json(expected.at(reference).at("scores"));
    ASSERT_EQ(want.size(), sequences.size()) << reference;
    for (const auto& [how, got] : ours) {
      ASSERT_EQ(got.size(), want.size()) << how;
      for (std::size_t b = 0; b < got.size(); ++b) {
        ASSERT_EQ(got[b].size(), want[b].size()) << how << " sequence " << b;
      }
      const Worst w = worst_difference(got, want);
      std::printf(
          "[ parity   ] %s: openrm %s vs transformers %s: max |diff| %.3g "
          "(sequence %zu, length %zu)\n",
          fixture.name, how.c_str(), reference, w.diff, w.sequence, sequences[w.sequence].size());
      EXPECT_LE(w.diff, kTolerance)
          << fixture.name << ": openrm " << how << " vs transformers " << reference
          << " (transformers " << transformers_version << "): worst at sequence " << w.sequence
          << " (length " << sequences[w.sequence].size() << "), label " << w.label << ": openrm "
          << got[w.sequence][w.label] << ", transformers " << want[w.sequence][w.label];
    }
  }
}

// A checkpoint stored in bf16: the tensors on disk are BF16 (the fp32 check
// above upcast them), and openrm computing in bf16 stays near transformers
// computing in bf16.
class ParityBf16 : public ::testing::TestWithParam<ParityFixture> {};

TEST_P(ParityBf16, CheckpointScoresNearTransformersInBf16) {
  const ParityFixture fixture = GetParam();
  const fs::path dir = fixtures_root() / fixture.name;
  if (!fs::is_directory(dir)) {
    GTEST_SKIP() << "parity fixture " << fixture.name << " is missing (" << dir.string()
                 << "); generate it with tests/fixtures/make_parity_fixtures.py (docs/parity.md)";
  }
  const json expected = read_json(dir / "expected.json");
  ASSERT_EQ(expected.at("stored_dtype").get<std::string>(), "bfloat16");
  ASSERT_EQ(expected.at("unbatched_narrow").at("dtype").get<std::string>(), "bfloat16");
  auto file = SafetensorsFile::open((dir / "model.safetensors").string());
  ASSERT_FALSE(file->entries().empty());
  for (const auto& entry : file->entries()) {
    EXPECT_EQ(file->tensor(entry.name).scalar_type(), c10::kBFloat16)
        << entry.name << " is not stored in bf16";
  }
  LoadOptions options;
  options.device = c10::Device(c10::kCPU);
  options.dtype = c10::kBFloat16;
  auto model = load_reward_model(dir.string(), options);
  ASSERT_EQ(model->dtype(), c10::kBFloat16);
  const auto sequences = expected.at("sequences").get<std::vector<std::vector<std::int64_t>>>();
  Scores alone;
  {
    torch::NoGradGuard no_grad;
    for (const auto& s : sequences) {
      alone.push_back(scores_from_tensor(model->forward(PackedBatch::from_sequences({s})))[0]);
    }
  }
  const Scores want = scores_from_json(expected.at("unbatched_narrow").at("scores"));
  const Worst w = worst_difference(alone, want);
  std::printf("[ parity   ] %s: openrm bf16 vs transformers bf16: max |diff| %.3g (sequence %zu)\n",
              fixture.name, w.diff, w.sequence);
  EXPECT_LE(w.diff, kNarrowTolerance) << "openrm " << alone[w.sequence][w.label]
                                      << ", transformers " << want[w.sequence][w.label];
}

// What openrm saves, transformers loads with the same scores: every fixture
// of a class transformers has is loaded, saved with save_reward_model (what
// openrm-train and openrm-export write) and scored again by transformers
// (AutoModelForSequenceClassification, eager, fp32) on its sequences.
TEST(ParitySave, SavedFoldersLoadInTransformersWithTheSameScores) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  json jobs = json::array();
  std::vector<std::string> dirs = {};
  for (const auto& fixture : kFixtures) dirs.push_back((fixtures_root() / fixture.name).string());
  for (const char* name : {"deberta_v3", "deberta_v2_unshared", "deberta_v2_conv"}) {
    dirs.push_back((fs::path(OPENRM_SOURCE_DIR) / "tests" / "fixtures" / "deberta" / name).string());
  }
  for (const auto& dir : dirs) {
    if (!fs::exists(fs::path(dir) / "expected.json")) continue;
    const json expected = read_json(fs::path(dir) / "expected.json");
    if (expected.contains("head")) continue;  // no transformers class for these heads
    const std::string out = tmp.file(fs::path(dir).filename().string());
    save_reward_model(*load_reward_model(dir), out);
    // The DeBERTa fixtures keep their references under "scores".
    const json& unbatched = expected.contains("unbatched") ? expected.at("unbatched").at("scores")
                                                           : expected.at("scores").at("unbatched");
    jobs.push_back({{"dir", out}, {"name", fs::path(dir).filename().string()},
                    {"sequences", expected.at("sequences")}, {"scores", unbatched}});
  }
  ASSERT_GE(jobs.size(), 10U);
  test::write_bytes(tmp.file("jobs.json"), jobs.dump());
  test::write_bytes(tmp.file("check.py"),
                    "import json, sys, torch\n"
                    "from transformers import AutoModelForSequenceClassification\n"
                    "torch.set_num_threads(1)\n"
                    "out = {}\n"
                    "for job in json.load(open(sys.argv[1])):\n"
                    "    m = AutoModelForSequenceClassification.from_pretrained(job['dir'], attn_implementation='eager',\n"
                    "                                                           dtype=torch.float32).eval()\n"
                    "    worst = 0.0\n"
                    "    with torch.no_grad():\n"
                    "        for s, want in zip(job['sequences'], job['scores']):\n"
                    "            got = m(input_ids=torch.tensor([s])).logits[0].tolist()\n"
                    "            worst = max(worst, max(abs(a - b) for a, b in zip(got, want)))\n"
                    "    out[job['name']] = {'class': type(m).__name__, 'worst': worst}\n"
                    "json.dump(out, open(sys.argv[2], 'w'))\n");
  const std::string cmd = python + " " + tmp.file("check.py") + " " + tmp.file("jobs.json") + " " +
                          tmp.file("result.json") + " > " + tmp.file("log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(tmp.file("log"));
  const json result = read_json(tmp.file("result.json"));
  ASSERT_EQ(result.size(), jobs.size());
  for (const auto& [name, r] : result.items()) {
    std::printf("[ parity   ] %s saved by openrm, loaded by transformers as %s: max |diff| %.3g\n", name.c_str(),
                r.at("class").get<std::string>().c_str(), r.at("worst").get<double>());
    EXPECT_LE(r.at("worst").get<double>(), kTolerance) << name;
  }
}

// A reward model started from a causal LM of each decoder family that
// transformers wrote (load_reward_model_from_causal_lm, what openrm-train
// --init-causal-lm does), saved, scores in transformers as it does in openrm.
TEST(ParitySave, RewardModelsStartedFromEachCausalLmFamilyScoreTheSameInTransformers) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  test::write_bytes(tmp.file("make.py"),
                    "import sys, torch\n"
                    "from transformers import AutoConfig, AutoModelForCausalLM\n"
                    "torch.manual_seed(0)\n"
                    "common = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,\n"
                    "              num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, eos_token_id=2,\n"
                    "              bos_token_id=1, max_position_embeddings=128)\n"
                    "families = {'llama': {}, 'mistral': {}, 'qwen2': {}, 'qwen3': {'head_dim': 8},\n"
                    "            'gemma': {'head_dim': 8}, 'gemma2': {'head_dim': 8, 'query_pre_attn_scalar': 8,\n"
                    "            'sliding_window': 4},\n"
                    "            'gpt_neox': {'num_key_value_heads': None}, 'gpt2': {'n_embd': 32, 'n_layer': 2,\n"
                    "            'n_head': 4, 'n_positions': 128}}\n"
                    "for name, extra in families.items():\n"
                    "    kw = dict(common); kw.update({k: v for k, v in extra.items() if v is not None})\n"
                    "    if name == 'gpt_neox': kw.pop('num_key_value_heads')\n"
                    "    c = AutoConfig.for_model(name, **kw)\n"
                    "    m = AutoModelForCausalLM.from_config(c)\n"
                    "    with torch.no_grad():\n"
                    "        for p in m.parameters(): p.normal_(0, 0.5)\n"
                    "    m.save_pretrained(sys.argv[1] + '/' + name)\n");
  std::string cmd = python + " " + tmp.file("make.py") + " " + tmp.path() + " > " + tmp.file("log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(tmp.file("log"));
  const std::vector<std::vector<std::int64_t>> seqs = {{5, 9, 13, 4, 7, 30}, {11}, {3, 8, 21, 40, 11, 6, 9, 12, 50}};
  json jobs = json::array();
  for (const char* family : {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gpt_neox", "gpt2"}) {
    std::shared_ptr<RewardModel> model;
    try {
      model = load_reward_model_from_causal_lm(tmp.file(family), 7);
    } catch (const std::exception& e) {
      ADD_FAILURE() << family << ": " << e.what();
      continue;
    }
    EXPECT_EQ(model->head_spec().name, "score") << family;
    save_reward_model(*model, tmp.file(std::string(family) + "_rm"));
    Scores ours;
    {
      torch::NoGradGuard no_grad;
      for (const auto& s : seqs) ours.push_back(scores_from_tensor(model->forward(PackedBatch::from_sequences({s})))[0]);
    }
    jobs.push_back({{"dir", tmp.file(std::string(family) + "_rm")}, {"name", family}, {"sequences", seqs},
                    {"scores", ours}});
  }
  test::write_bytes(tmp.file("jobs.json"), jobs.dump());
  test::write_bytes(tmp.file("check.py"),
                    "import json, sys, torch\n"
                    "from transformers import AutoModelForSequenceClassification\n"
                    "out = {}\n"
                    "for job in json.load(open(sys.argv[1])):\n"
                    "    m = AutoModelForSequenceClassification.from_pretrained(job['dir'], attn_implementation='eager',\n"
                    "                                                           dtype=torch.float32).eval()\n"
                    "    with torch.no_grad():\n"
                    "        got = [m(input_ids=torch.tensor([s])).logits[0].tolist() for s in job['sequences']]\n"
                    "    out[job['name']] = {'class': type(m).__name__,\n"
                    "        'worst': max(abs(a - b) for g, w in zip(got, job['scores']) for a, b in zip(g, w))}\n"
                    "json.dump(out, open(sys.argv[2], 'w'))\n");
  cmd = python + " " + tmp.file("check.py") + " " + tmp.file("jobs.json") + " " + tmp.file("result.json") + " > " +
        tmp.file("log2") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(tmp.file("log2"));
  const json result = read_json(tmp.file("result.json"));
  EXPECT_EQ(result.size(), 8U);
  for (const auto& [name, r] : result.items()) {
    std::printf("[ parity   ] %s causal LM -> openrm reward model -> transformers %s: max |diff| %.3g\n", name.c_str(),
                r.at("class").get<std::string>().c_str(), r.at("worst").get<double>());
    EXPECT_LE(r.at("worst").get<double>(), kTolerance) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Transformers, ParityTest, ::testing::ValuesIn(kFixtures),
                         [](const ::testing::TestParamInfo<ParityFixture>& info) {
                           return std::string(info.param.name);
                         });
INSTANTIATE_TEST_SUITE_P(Transformers, ParityBf16, ::testing::ValuesIn(kBf16Fixtures),
                         [](const ::testing::TestParamInfo<ParityFixture>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace openrm
