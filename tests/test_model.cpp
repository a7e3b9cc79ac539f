// The decoder reward models: numerics of the building blocks against closed
// forms, checkpoint names, save/load, batching invariance, sliding windows,
// GQA, and strict loading.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <tuple>

#include "byte_tokenizer.h"
#include "compat/torch_compat.h"
#include "models/blocks.h"
#include "models/decoder.h"
#include "openrm/data/batching.h"
#include "openrm/error.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/model_folder.h"
#include "openrm/models/reward_model.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using test::error_of;
using test::TempDir;
using test::tiny_config;

const std::vector<std::string> kArchitectures = {
    "LlamaForSequenceClassification", "MistralForSequenceClassification",
    "Qwen2ForSequenceClassification", "Qwen3ForSequenceClassification"};

// std 0.2 by default: large enough that every layer visibly moves the score.
std::shared_ptr<RewardModel> random_model(const ModelConfig& config, uint64_t seed = 1,
                                          c10::ScalarType dtype = at::kFloat, double std = 0.2) {
  LoadOptions options;
  options.dtype = dtype;
  auto model = create_reward_model(config, options);
  model->init_weights(seed, std);
  return model;
}

// Mixed lengths, none containing the pad id 0.
const std::vector<std::vector<int64_t>> kSequences = {
    {5, 9, 13},
    {7, 1, 22, 31, 40, 2, 8, 9, 10, 11, 12, 63},
    {17},
    {3, 4, 5, 6, 7, 8, 9},
};

// ---------------------------------------------------------------- blocks

TEST(RMSNorm, MatchesClosedFormInFloat32) {
  RMSNormImpl norm(2, 1e-6, at::TensorOptions().dtype(at::kFloat));
  torch::NoGradGuard no_grad;
  norm.weight.copy_(torch::tensor({2.0f, 0.5f}));
  auto y = norm.forward(torch::tensor({{3.0f, 4.0f}}));
  const double rms = std::sqrt((9.0 + 16.0) / 2.0 + 1e-6);
  EXPECT_NEAR(y[0][0].item<double>(), 2.0 * 3.0 / rms, 1e-6);
  EXPECT_NEAR(y[0][1].item<double>(), 0.5 * 4.0 / rms, 1e-6);
}

TEST(RMSNorm, Bfloat16RoundsBeforeTheWeightLikeTransformers) {
  // transformers normalises in fp32, casts to the input dtype, then
  // multiplies by the weight (a second rounding). For these inputs that
  // differs from a single rounding of the fp32 product in element 3.
  const float x[] = {-1.1328125f, 0.74609375f, -1.78125f, -3.015625f};
  const float w[] = {1.109375f, 4.375f, 2.8125f, 2.328125f};
  RMSNormImpl norm(4, 1e-6, at::TensorOptions().dtype(at::kBFloat16));
  torch::NoGradGuard no_grad;
  norm.weight.copy_(torch::tensor({w[0], w[1], w[2], w[3]}));
  auto y = norm.forward(torch::tensor({x[0], x[1], x[2], x[3]}).to(at::kBFloat16)).to(at::kFloat);
  float mean_sq = 0;
  for (float v : x) mean_sq += v * v / 4.0f;
  const float inv_rms = 1.0f / std::sqrt(mean_sq + 1e-6f);
  int differs_from_single_rounding = 0;
  for (int i = 0; i < 4; ++i) {
    const float normalised = x[i] * inv_rms;
    const float two_roundings =
        static_cast<float>(c10::BFloat16(static_cast<float>(c10::BFloat16(normalised)) * w[i]));
    const float one_rounding = static_cast<float>(c10::BFloat16(normalised * w[i]));
    EXPECT_EQ(y[i].item<float>(), two_roundings) << "element " << i;
    differs_from_single_rounding += two_roundings != one_rounding;
  }
  EXPECT_GT(differs_from_single_rounding, 0) << "inputs no longer tell the two orders apart";
}

TEST(Attention, GroupedQueryHeadsShareKeyValueHeadsInOrder) {
  // B=1, L=2, D=1, 4 query heads over 2 kv heads: query heads 0,1 read kv
  // head 0 and heads 2,3 read kv head 1. Causal mask. Position 0 sees only
  // key 0, so its output is that head's v[0]; position 1 mixes v[0], v[1]
  // with softmax weights of q*k*scale.
  const double scale = 0.5;
  auto q = torch::tensor({1.0f, 2.0f, -1.0f, 3.0f, 0.5f, 0.5f, 2.0f, -2.0f}).view({1, 4, 2, 1});
  auto k = torch::tensor({0.0f, 1.0f, 1.0f, -1.0f}).view({1, 2, 2, 1});
  auto v = torch::tensor({10.0f, 20.0f, -5.0f, 5.0f}).view({1, 2, 2, 1});
  auto mask = torch::tensor({true, false, true, true}).view({1, 1, 2, 2});
  auto out = compat::masked_attention(q, k, v, mask, scale);
  const float qv[4][2] = {{1, 2}, {-1, 3}, {0.5f, 0.5f}, {2, -2}};
  const float kv_k[2][2] = {{0, 1}, {1, -1}}, kv_v[2][2] = {{10, 20}, {-5, 5}};
  for (int h = 0; h < 4; ++h) {
    const int g = h / 2;
    EXPECT_NEAR(out[0][h][0][0].item<double>(), kv_v[g][0], 1e-5) << "head " << h;
    const double s0 = qv[h][1] * kv_k[g][0] * scale, s1 = qv[h][1] * kv_k[g][1] * scale;
    const double w1 = std::exp(s1) / (std::exp(s0) + std::exp(s1));
    EXPECT_NEAR(out[0][h][1][0].item<double>(), (1 - w1) * kv_v[g][0] + w1 * kv_v[g][1], 1e-5)
        << "head " << h;
  }
}

// Attention as its definition reads, in double precision, one sequence at a
// time: query i of a sequence continuing `parent` rows sits at position
// parent + i and sees keys j <= parent + i (within the window), scores
// scaled, soft-capped, then softmax-weighted sums of v. q (T, Hq, D), k and
// v (T, Hkv, D) packed as `lengths`; parents[b] >= 0 names the sequence b
// continues. Differentiable (autograd in double).
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const std::vector<std::int64_t>& lengths, const std::vector<std::int64_t>& parents,
                               const AttentionSpec& spec) {
  const auto Hq = q.size(1), Hkv = k.size(1), D = q.size(2);
  std::vector<std::int64_t> starts;
  std::int64_t row = 0;
  for (auto len : lengths) {
    starts.push_back(row);
    row += len;
  }
  std::vector<at::Tensor> outs;
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    const std::int64_t p = parents.empty() ? -1 : parents[b];
    const std::int64_t offset = p >= 0 ? lengths[static_cast<std::size_t>(p)] : 0;
    auto own = [&](const at::Tensor& t) { return t.narrow(0, starts[b], lengths[b]); };
    at::Tensor keys = own(k), values = own(v);
    if (p >= 0) {
      const auto pi = static_cast<std::size_t>(p);
      keys = at::cat({k.narrow(0, starts[pi], lengths[pi]), keys}, 0);
      values = at::cat({v.narrow(0, starts[pi], lengths[pi]), values}, 0);
    }
    const auto n = lengths[b], nk = keys.size(0);
    auto qi = at::arange(offset, offset + n, at::kLong).unsqueeze(1);
    auto kj = at::arange(nk, at::kLong).unsqueeze(0);
    auto allowed = kj.le(qi);
    if (spec.window > 0) allowed = allowed.logical_and((qi - kj).lt(spec.window));
    std::vector<at::Tensor> heads;
    for (std::int64_t h = 0; h < Hq; ++h) {
      const auto g = h / (Hq / Hkv);
      auto scores = at::matmul(own(q).select(1, h), keys.select(1, g).t()) * spec.scale;  // (n, nk)
      if (spec.softcap > 0) scores = at::tanh(scores / spec.softcap) * spec.softcap;
      scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
      heads.push_back(at::matmul(at::softmax(scores, -1), values.select(1, g)));  // (n, D)
    }
    outs.push_back(at::stack(heads, 1).reshape({n, Hq * D}));
  }
  return at::cat(outs, 0);
}

TEST(Attention, LongSequencesInQueryBlocksMatchTheDefinitionWithItsGradients) {
  // Lengths long enough that the CPU path splits the queries into blocks
  // (4 heads x 1100 keys: blocks of 238 rows), with and without a sliding
  // window and soft-capping, a sequence continuing a shared 400-token parent
  // (its blocks reach back into the parent's keys), a one-token continuation
  // and short sequences that stay whole.
  const std::vector<std::int32_t> ids(4000, 1);
  struct Case {
    const char* name;
    std::vector<PackedBatch::Segment> segments;
    AttentionSpec spec;
  };
  const AttentionSpec plain{0.35, 0, 0.0}, windowed{0.35, 100, 30.0};
  const std::vector<Case> cases = {
      {"one long sequence", {{ids.data(), 1100, -1}}, plain},
      {"windowed, soft-capped", {{ids.data(), 1100, -1}, {ids.data(), 7, -1}}, windowed},
      {"shared parent",
       {{ids.data(), 400, -1}, {ids.data(), 700, 0}, {ids.data(), 9, -1}, {ids.data(), 1, 0}},
       plain},
      {"shared parent, windowed", {{ids.data(), 400, -1}, {ids.data(), 700, 0}, {ids.data(), 1, 0}}, windowed},
  };
  for (const auto& c : cases) {
    const PackedBatch batch = PackedBatch::from_segments(c.segments);
    AttentionLayout layout = AttentionLayout::of(batch);
    const auto T = batch.num_tokens();
    at::manual_seed(11);
    auto q = at::randn({T, 4, 8}, at::kDouble).requires_grad_(true);
    auto k = at::randn({T, 2, 8}, at::kDouble).requires_grad_(true);
    auto v = at::randn({T, 2, 8}, at::kDouble).requires_grad_(true);
    const auto weights = at::randn({T, 32}, at::kDouble);
    auto expected = reference_attention(q, k, v, batch.lengths, batch.parents, c.spec);
    (expected * weights).sum().backward();
    const auto eq = q.grad().clone(), ek = k.grad().clone(), ev = v.grad().clone();
    q.mutable_grad().reset();
    k.mutable_grad().reset();
    v.mutable_grad().reset();
    // openrm's path runs in fp32 (its softmax is fp32 whatever the input).
    auto qf = q.detach().to(at::kFloat).requires_grad_(true);
    auto kf = k.detach().to(at::kFloat).requires_grad_(true);
    auto vf = v.detach().to(at::kFloat).requires_grad_(true);
    auto got = causal_self_attention(qf, kf, vf, layout, c.spec);
    ASSERT_EQ(got.sizes(), expected.sizes()) << c.name;
    EXPECT_LT((got.to(at::kDouble) - expected.detach()).abs().max().item<double>(), 1e-5) << c.name;
    (got * weights.to(at::kFloat)).sum().backward();
    for (const auto& [name, mine, ref] :
         {std::make_tuple("q", qf.grad(), eq), std::make_tuple("k", kf.grad(), ek), std::make_tuple("v", vf.grad(), ev)}) {
      const double scale = ref.abs().max().item<double>();
      EXPECT_LT((mine.to(at::kDouble) - ref).abs().max().item<double>() / scale, 1e-5) << c.name << ": d" << name;
    }
  }
}

// The CUDA flash path (LibTorch >= 2.5, bf16): packed rows with and without
// shared parents, in training (autograd through the varlen kernel), against
// the definition in double precision on the CPU. Runs only on a GPU.
TEST(Attention, VarlenFlashWithSharedKeysAndBackwardMatchesTheDefinition_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const std::vector<std::int32_t> ids(2000, 1);
  const std::vector<std::vector<PackedBatch::Segment>> cases = {
      {{ids.data(), 300, -1}, {ids.data(), 17, -1}, {ids.data(), 64, -1}},
      {{ids.data(), 300, -1}, {ids.data(), 120, 0}, {ids.data(), 9, -1}, {ids.data(), 1, 0}},
  };
  for (const AttentionSpec spec : {AttentionSpec{0.125, 0, 0.0}, AttentionSpec{0.125, 50, 0.0}}) {
    for (const auto& segments : cases) {
      const PackedBatch batch = PackedBatch::from_segments(segments);
      const PackedBatch on_gpu = batch.to(c10::Device(c10::kCUDA));
      AttentionLayout layout = AttentionLayout::of(on_gpu);
      const auto T = batch.num_tokens();
      at::manual_seed(5);
      auto q = at::randn({T, 8, 64}, at::kDouble).requires_grad_(true);
      auto k = at::randn({T, 2, 64}, at::kDouble).requires_grad_(true);
      auto v = at::randn({T, 2, 64}, at::kDouble).requires_grad_(true);
      const auto weights = at::randn({T, 8 * 64}, at::kDouble);
      auto expected = reference_attention(q, k, v, batch.lengths, batch.parents, spec);
      (expected * weights).sum().backward();
      const auto gpu = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
      auto qg = q.detach().to(gpu).requires_grad_(true);
      auto kg = k.detach().to(gpu).requires_grad_(true);
      auto vg = v.detach().to(gpu).requires_grad_(true);
      ASSERT_TRUE(compat::varlen_attention_supported(qg)) << "LibTorch " << compat::torch_version();
      auto got = causal_self_attention(qg, kg, vg, layout, spec);
      (got.to(at::kFloat) * weights.to(gpu).to(at::kFloat)).sum().backward();
      const double scale = expected.abs().max().item<double>();
      EXPECT_LT((got.to(at::kCPU, at::kDouble) - expected.detach()).abs().max().item<double>() / scale, 3e-2)
          << "window " << spec.window << ", " << segments.size() << " segments";
      for (const auto& [name, mine, ref] : {std::make_tuple("q", qg.grad(), q.grad()),
                                            std::make_tuple("k", kg.grad(), k.grad()),
                                            std::make_tuple("v", vg.grad(), v.grad())}) {
        const double g = ref.abs().max().item<double>();
        EXPECT_LT((mine.to(at::kCPU, at::kDouble) - ref).abs().max().item<double>() / g, 5e-2) << "d" << name;
      }
    }
  }
}

// ------------------------------------------------------ per architecture

class EachArchitecture : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Models, EachArchitecture, ::testing::ValuesIn(kArchitectures),
                         [](const auto& info) { return info.param.substr(0, info.param.find("For")); });

TEST_P(EachArchitecture, ParameterNamesAreTheCheckpointNames) {
  auto model = random_model(tiny_config(GetParam()));
  std::set<std::string> names;
  for (const auto& p : model->named_parameters()) names.insert(p.key());
  for (const char* name :
       {"model.embed_tokens.weight", "model.norm.weight", "score.weight",
        "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight",
        "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.1.input_layernorm.weight",
        "model.layers.1.post_attention_layernorm.weight"}) {
    EXPECT_TRUE(names.count(name)) << name;
  }
  const bool qwen2 = GetParam().rfind("Qwen2", 0) == 0, qwen3 = GetParam().rfind("Qwen3", 0) == 0;
  EXPECT_EQ(names.count("model.layers.0.self_attn.q_proj.bias"), qwen2 ? 1u : 0u);
  EXPECT_EQ(names.count("model.layers.0.self_attn.o_proj.bias"), 0u);
  EXPECT_EQ(names.count("model.layers.0.self_attn.q_norm.weight"), qwen3 ? 1u : 0u);
  EXPECT_EQ(names.count("model.layers.0.self_attn.k_norm.weight"), qwen3 ? 1u : 0u);
  // Llama/Mistral/Qwen2: 9 tensors per layer (+3 q/k/v biases for Qwen2);
  // Qwen3: 11 (q_norm, k_norm); plus embeddings, final norm and score.
  const size_t per_layer = qwen2 ? 12 : (qwen3 ? 11 : 9);
  EXPECT_EQ(names.size(), 2 * per_layer + 3);
  auto score = model->named_parameters()["score.weight"];
  EXPECT_EQ(score.sizes(), (std::vector<int64_t>{1, 32}));
}

TEST_P(EachArchitecture, SaveLoadRoundTripIsBitIdentical) {
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    auto model = random_model(tiny_config(GetParam()), 7, dtype);
    TempDir dir;
    save_reward_model(*model, dir.path());
    LoadOptions options;
    options.dtype = dtype;
    auto loaded = load_reward_model(dir.path(), options);
    auto a = model->named_parameters(), b = loaded->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (const auto& p : a) {
      ASSERT_TRUE(b.contains(p.key())) << p.key();
      EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
    }
    EXPECT_EQ(model->score(kSequences), loaded->score(kSequences));
    EXPECT_EQ(loaded->config().architecture, GetParam());
  }
}

TEST_P(EachArchitecture, ScoreAloneEqualsScoreInMixedBatch) {
  auto config = tiny_config(GetParam());
  if (GetParam().rfind("Mistral", 0) == 0) {
    config.sliding_window = 4;  // shorter than the longest sequence
  }
  // The standard initialisation (transformers' initializer_range 0.02). The
  // math is exactly batch-independent; what remains is rounding from BLAS
  // kernels chosen by matrix shape, a few units in the last place of each
  // activation, which the 10x larger weights of random_model's default
  // amplify to ~1e-6 in the score.
  auto model = random_model(config, 11, at::kFloat, /*std=*/0.02);
  auto batched = model->score(kSequences);
  ASSERT_EQ(batched.size(), kSequences.size());
  for (size_t i = 0; i < kSequences.size(); ++i) {
    auto alone = model->score({kSequences[i]});
    EXPECT_LE(std::abs(alone[0] - batched[i]), 1e-6) << "sequence " << i;
    EXPECT_TRUE(std::isfinite(batched[i]));
  }
  // Different order, same scores.
  auto reversed = std::vector<std::vector<int64_t>>(kSequences.rbegin(), kSequences.rend());
  auto rev_scores = model->score(reversed);
  for (size_t i = 0; i < kSequences.size(); ++i) {
    EXPECT_LE(std::abs(rev_scores[kSequences.size() - 1 - i] - batched[i]), 1e-6);
  }
}

// A Llama/Mistral forward written out from the definitions in transformers'
// modeling_llama.py, one sequence, in double precision, with plain loops for
// attention: an outside reference for the packed, batched model (no parity
// fixtures exist yet; see docs/parity.md).
double textbook_reward(RewardModel& model, const std::vector<int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  std::map<std::string, at::Tensor> w;
  for (const auto& item : model.named_parameters()) w[item.key()] = item.value().to(at::kDouble);
  const int64_t T = static_cast<int64_t>(ids.size()), D = c.head_dim, Hq = c.num_attention_heads;
  const int64_t Hkv = c.num_key_value_heads;
  auto rms = [&](const at::Tensor& x, const at::Tensor& weight) {
    return weight * x / at::sqrt(x.pow(2).mean(-1, true) + c.rms_norm_eps);
  };
  // RoPE, rotate_half form: x * cos + rotate_half(x) * sin, with the angle of
  // pair i at position p equal to p / theta^(2i / D), repeated over both halves.
  auto rope = [&](const at::Tensor& x) {  // (T, heads, D)
    auto inv = 1.0 / at::pow(c.rope_theta, at::arange(0, D, 2, at::kDouble) / static_cast<double>(D));
    auto ang = at::arange(T, at::kDouble).unsqueeze(1) * inv.unsqueeze(0);  // (T, D/2)
    auto emb = at::cat({ang, ang}, -1).unsqueeze(1);                          // (T, 1, D)
    auto rotated = at::cat({-x.narrow(-1, D / 2, D / 2), x.narrow(-1, 0, D / 2)}, -1);
    return x * emb.cos() + rotated * emb.sin();
  };
  const int64_t window = c.sliding_window;
  auto x = w["model.embed_tokens.weight"].index_select(0, at::tensor(ids, at::kLong));  // (T, H)
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto h = rms(x, w[p + "input_layernorm.weight"]);
    auto q = rope(at::matmul(h, w[p + "self_attn.q_proj.weight"].t()).view({T, Hq, D}));
    auto k = rope(at::matmul(h, w[p + "self_attn.k_proj.weight"].t()).view({T, Hkv, D}));
    auto v = at::matmul(h, w[p + "self_attn.v_proj.weight"].t()).view({T, Hkv, D});
    auto out = at::zeros({T, Hq, D}, at::kDouble);
    for (int64_t head = 0; head < Hq; ++head) {
      const int64_t kv = head / (Hq / Hkv);
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> logits;
        std::vector<int64_t> keys;
        for (int64_t j = 0; j <= i; ++j) {
          if (window > 0 && i - j >= window) continue;
          logits.push_back((q[i][head] * k[j][kv]).sum().item<double>() / std::sqrt(static_cast<double>(D)));
          keys.push_back(j);
        }
        const double top = *std::max_element(logits.begin(), logits.end());
        double total = 0;
        for (double& e : logits) total += (e = std::exp(e - top));
        for (size_t n = 0; n < keys.size(); ++n) out[i][head] += logits[n] / total * v[keys[n]][kv];
      }
    }
    x = x + at::matmul(out.view({T, Hq * D}), w[p + "self_attn.o_proj.weight"].t());
    h = rms(x, w[p + "post_attention_layernorm.weight"]);
    auto gate = at::matmul(h, w[p + "mlp.gate_proj.weight"].t());
    auto up = at::matmul(h, w[p + "mlp.up_proj.weight"].t());
    x = x + at::matmul(gate * at::sigmoid(gate) * up, w[p + "mlp.down_proj.weight"].t());
  }
  x = rms(x, w["model.norm.weight"]);
  return at::matmul(x[T - 1], w["score.weight"].t()).item<double>();
}

// ------------------------------------------------- shared prefixes and pooled rows

std::vector<std::int32_t> random_ids(std::size_t n, std::uint64_t seed) {
  std::vector<std::int32_t> ids(n);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> id(1, 63);
  for (auto& t : ids) t = id(rng);
  return ids;
}

// The models of EachArchitecture, Mistral with a window shorter than the
// shared prefix (a continuation must still see the prefix's last keys only).
std::shared_ptr<RewardModel> shared_prefix_model(const std::string& arch) {
  auto config = tiny_config(arch);
  if (arch.rfind("Mistral", 0) == 0) config.sliding_window = 6;
  return random_model(config, 17, at::kFloat, /*std=*/0.02);
}

TEST_P(EachArchitecture, ASharedPrefixGivesTheHiddenStatesOfTheWholeSequence) {
  auto model = shared_prefix_model(GetParam());
  torch::NoGradGuard no_grad;
  const auto prefix = random_ids(20, 1), own_a = random_ids(7, 2), other = random_ids(9, 3), own_b = random_ids(1, 4);
  // Segments: the prefix, its continuation a, an unrelated sequence, and a
  // second continuation b of one token.
  const std::vector<PackedBatch::Segment> segments = {
      {prefix.data(), 20, -1}, {own_a.data(), 7, 0}, {other.data(), 9, -1}, {own_b.data(), 1, 0}};
  const PackedBatch shared = PackedBatch::from_segments(segments);
  ASSERT_EQ(shared.parents, (std::vector<std::int64_t>{-1, 0, -1, 0}));
  EXPECT_EQ(shared.position_ids[20].item<std::int64_t>(), 20);  // a continues at position 20
  EXPECT_EQ(shared.position_ids[36].item<std::int64_t>(), 20);  // so does b
  const at::Tensor h = model->hidden_states(shared);             // (37, H)

  auto whole = [&](std::vector<std::int32_t> head, const std::vector<std::int32_t>& tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return model->hidden_states(PackedBatch::from_segments({{head.data(), static_cast<std::int64_t>(head.size()), -1}}));
  };
  const at::Tensor a = whole(prefix, own_a), b = whole(prefix, own_b), alone = whole(other, {});
  const double tol = 1e-5;
  EXPECT_LT((h.narrow(0, 0, 20) - a.narrow(0, 0, 20)).abs().max().item<double>(), tol) << "the prefix rows";
  EXPECT_LT((h.narrow(0, 20, 7) - a.narrow(0, 20, 7)).abs().max().item<double>(), tol) << "continuation a";
  EXPECT_LT((h.narrow(0, 27, 9) - alone).abs().max().item<double>(), tol) << "the unrelated sequence";
  EXPECT_LT((h.narrow(0, 36, 1) - b.narrow(0, 20, 1)).abs().max().item<double>(), tol) << "continuation b";
  // The continuation depends on the prefix it continues: not a no-op.
  auto other_prefix = random_ids(20, 9);
  EXPECT_GT((h.narrow(0, 20, 7) - whole(other_prefix, own_a).narrow(0, 20, 7)).abs().max().item<double>(), 1e-3);
}

TEST_P(EachArchitecture, PooledRowsEqualTheRowsOfTheFullHiddenStates) {
  auto model = shared_prefix_model(GetParam());
  const auto prefix = random_ids(14, 5), own_a = random_ids(5, 6), other = random_ids(11, 7), own_b = random_ids(3, 8);
  const PackedBatch plain = PackedBatch::from_sequences(
      {{prefix.begin(), prefix.end()}, {other.begin(), other.end()}, {own_a.begin(), own_a.end()}});
  const PackedBatch shared = PackedBatch::from_segments(
      {{prefix.data(), 14, -1}, {own_a.data(), 5, 0}, {other.data(), 11, -1}, {own_b.data(), 3, 0}});
  for (const PackedBatch* batch : {&plain, &shared}) {
    torch::NoGradGuard no_grad;
    const at::Tensor full = model->hidden_states(*batch);
    // Rows of every kind: first and last of a segment, inside the window's
    // reach of the prefix and beyond it, repeated, out of order.
    const std::vector<std::int64_t> rows = {batch->num_tokens() - 1, 0, 13, 15, 18, 3, 18, 20, 29};
    const at::Tensor index = at::tensor(rows, at::kLong);
    const at::Tensor pooled = model->pooled_hidden_states(*batch, index);
    EXPECT_LT((pooled - full.index_select(0, index)).abs().max().item<double>(), 1e-5)
        << (batch == &plain ? "plain batch" : "shared batch");
    const at::Tensor rewards = model->forward_rows(*batch, rows);
    EXPECT_LT((rewards - model->head(full.index_select(0, index))).abs().max().item<double>(), 1e-5);
  }
  // forward() pools by the rule and agrees with the full path.
  torch::NoGradGuard no_grad;
  const at::Tensor index = pooled_token_indices(plain, model->pooling(), model->config().pad_token_id);
  EXPECT_LT((model->forward(plain) - model->head(model->hidden_states(plain).index_select(0, index)))
                .abs()
                .max()
                .item<double>(),
            1e-5);
  // A shared batch's rewards are only read at rows the caller names.
  EXPECT_NE(error_of([&] { model->forward(shared); }).find("forward_rows"), std::string::npos);
  EXPECT_NE(error_of([&] { model->forward_rows(shared, {33}); }).find("row 33"), std::string::npos);
}

TEST_P(EachArchitecture, PooledRowsGiveTheGradientsOfTheFullPath) {
  // Training reads the rewards through forward(), whose last layer runs on
  // the pooled rows only: the gradients must be those of the full forward.
  auto model = shared_prefix_model(GetParam());
  const PackedBatch batch = PackedBatch::from_sequences(kSequences);
  auto gradients = [&](bool full) {
    model->zero_grad();
    at::Tensor rewards;
    if (full) {
      const at::Tensor index = pooled_token_indices(batch, model->pooling(), model->config().pad_token_id);
      rewards = model->head(model->hidden_states(batch).index_select(0, index));
    } else {
      rewards = model->forward(batch);
    }
    (rewards.reshape({-1}) * at::arange(1, 1 + rewards.numel(), at::kFloat)).sum().backward();
    std::vector<at::Tensor> out;
    for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  const auto full = gradients(true), pooled = gradients(false);
  ASSERT_EQ(full.size(), pooled.size());
  for (std::size_t i = 0; i < full.size(); ++i) {
    const double scale = std::max(1e-6, full[i].abs().max().item<double>());
    EXPECT_LT((full[i] - pooled[i]).abs().max().item<double>() / scale, 1e-4) << "parameter " << i;
  }
}

TEST_P(EachArchitecture, SharedPairsGiveTheRewardsAndGradientsOfWholePairs) {
  // Training with prefix sharing (pack_shared_pairs + forward_rows) against
  // the pairs run whole (pack_pairs + forward), with and without gradient
  // checkpointing: a pair with a 24-token prompt, one whose chosen side's
  // pooled token (the last before its trailing pad tokens) lies inside the
  // shared part, and one with no common prompt.
  auto model = shared_prefix_model(GetParam());
  std::vector<TokenizedPair> pairs(3);
  const auto prompt = random_ids(24, 21);
  auto join = [](std::vector<std::int32_t> a, const std::vector<std::int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  pairs[0].chosen = join(prompt, random_ids(9, 22));
  pairs[0].rejected = join(prompt, random_ids(5, 23));
  pairs[1].chosen = join(prompt, {7, 0, 0});  // 0: the pad id
  pairs[1].rejected = join(join(prompt, {7, 0}), random_ids(5, 24));
  pairs[2].chosen = random_ids(8, 25);
  pairs[2].rejected = random_ids(11, 26);
  const auto shared = shared_prefix_lengths(pairs);
  ASSERT_EQ(shared, (std::vector<std::int64_t>{24, 26, 0}));
  const std::vector<std::int64_t> indices = {1, 0, 2};
  for (const bool checkpointing : {false, true}) {
    model->set_gradient_checkpointing(checkpointing);
    model->train();
    auto run = [&](bool share) {
      model->zero_grad();
      at::Tensor rewards;
      if (share) {
        const PoolingRule rule{model->pooling(), model->config().pad_token_id, model->config().eos_token_ids};
        const SharedPairBatch b = pack_shared_pairs(pairs, indices, shared, rule);
        EXPECT_EQ(b.packed.num_tokens(), (26 + 1 + 5) + (24 + 9 + 5) + (8 + 11));
        EXPECT_EQ(b.tokens, 27 + 31 + 33 + 29 + 19);
        EXPECT_EQ(b.rows[0], 24) << "pair 1's chosen side is read in the shared part";
        rewards = model->forward_rows(b.packed, b.rows);
      } else {
        rewards = model->forward(pack_pairs(pairs, indices));
      }
      rewards = rewards.reshape({-1});
      (rewards * at::arange(1, 1 + rewards.numel(), at::kFloat)).sum().backward();
      std::vector<at::Tensor> grads;
      for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
      return std::make_pair(rewards.detach(), grads);
    };
    const auto [whole, whole_grads] = run(false);
    const auto [sharing, sharing_grads] = run(true);
    EXPECT_LT((whole - sharing).abs().max().item<double>(), 1e-5) << "checkpointing " << checkpointing;
    ASSERT_EQ(whole_grads.size(), sharing_grads.size());
    for (std::size_t i = 0; i < whole_grads.size(); ++i) {
      const double scale = std::max(1e-6, whole_grads[i].abs().max().item<double>());
      EXPECT_LT((whole_grads[i] - sharing_grads[i]).abs().max().item<double>() / scale, 1e-4)
          << "parameter " << i << ", checkpointing " << checkpointing;
    }
  }
  model->set_gradient_checkpointing(false);
}

TEST(PackedBatch, SegmentsMustContinueAnEarlierSegmentWithoutParent) {
  const auto ids = random_ids(4, 1);
  EXPECT_NE(error_of([&] { PackedBatch::from_segments({{ids.data(), 4, -1}, {ids.data(), 2, 1}}); })
                .find("segment 1 continues segment 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              PackedBatch::from_segments({{ids.data(), 4, -1}, {ids.data(), 2, 0}, {ids.data(), 1, 1}});
            }).find("segment 2 continues segment 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { PackedBatch::from_segments({{ids.data(), 4, -1}, {ids.data(), 0, 0}}); })
                .find("sequence 1 is empty"),
            std::string::npos);
  const PackedBatch plain = PackedBatch::from_segments({{ids.data(), 4, -1}, {ids.data(), 2, -1}});
  EXPECT_FALSE(plain.has_shared_prefixes());
}

TEST(Decoder, ConvertingTheDtypeKeepsRopeInFloat32) {
  // Module::to(dtype) converts the weights; the RoPE frequencies are not
  // weights and stay fp32, so fp64 weights give the fp32 model's rewards
  // to fp32 rounding.
  auto model = random_model(tiny_config("LlamaForSequenceClassification"), 13);
  const auto fp32 = model->score(kSequences);
  model->to(at::kDouble);
  EXPECT_EQ(model->dtype(), at::kDouble);
  const auto fp64 = model->score(kSequences);
  for (size_t i = 0; i < kSequences.size(); ++i) EXPECT_NEAR(fp32[i], fp64[i], 1e-5) << i;
}

TEST(Decoder, MatchesATextbookForwardInDoublePrecision) {
  for (const char* arch : {"LlamaForSequenceClassification", "MistralForSequenceClassification"}) {
    auto config = tiny_config(arch);
    if (std::string(arch).rfind("Mistral", 0) == 0) config.sliding_window = 4;
    auto model = random_model(config, 17);
    const auto batched = model->score(kSequences);
    for (size_t i = 0; i < kSequences.size(); ++i) {
      const double expected = textbook_reward(*model, kSequences[i]);
      EXPECT_NEAR(batched[i], expected, 2e-5 * std::max(1.0, std::fabs(expected))) << arch << " sequence " << i;
    }
  }
}

TEST_P(EachArchitecture, TrailingPadTokensAreSkippedByTheDefaultPooling) {
  // With the rightmost-non-pad rule, [a b c pad pad] is read at c, and causal
  // attention means c's state is unaffected by what follows.
  auto model = random_model(tiny_config(GetParam()), 5);
  auto plain = model->score({{4, 8, 15, 16}});
  auto padded = model->score({{4, 8, 15, 16, 0, 0}});
  EXPECT_LE(std::abs(plain[0] - padded[0]), 1e-6);
  model->set_pooling(Pooling::kLastToken);
  auto last = model->score({{4, 8, 15, 16, 0, 0}});
  EXPECT_GT(std::abs(last[0] - plain[0]), 1e-4);
}

TEST_P(EachArchitecture, InitialisationDependsOnlyOnTheSeed) {
  auto a = random_model(tiny_config(GetParam()), 3);
  auto b = random_model(tiny_config(GetParam()), 3);
  auto c = random_model(tiny_config(GetParam()), 4);
  EXPECT_EQ(a->score(kSequences), b->score(kSequences));
  EXPECT_NE(a->score(kSequences), c->score(kSequences));
}

TEST(Qwen3, HeadDimDefaultsTo128WhenConfigOmitsIt) {
  // Qwen3Config's own default, not hidden_size / num_attention_heads (8 here).
  auto model = random_model(tiny_config("Qwen3ForSequenceClassification"));
  EXPECT_EQ(model->named_parameters()["model.layers.0.self_attn.q_proj.weight"].sizes(),
            (std::vector<int64_t>{4 * 128, 32}));
  EXPECT_EQ(model->config().head_dim, 128);
  auto explicit_config = tiny_config("Qwen3ForSequenceClassification");
  explicit_config.raw["head_dim"] = 16;
  explicit_config.head_dim = 16;
  auto explicit_model = random_model(explicit_config);
  EXPECT_EQ(explicit_model->named_parameters()["model.layers.0.self_attn.k_proj.weight"].sizes(),
            (std::vector<int64_t>{2 * 16, 32}));
}

// --------------------------------------------------- attention variants

TEST(SlidingWindow, TokensOutsideTheReceptiveFieldDoNotMatter) {
  // Two layers with a window of 3: after layer 1 position i has seen
  // i-2..i, after layer 2 i-4..i. So the last token of a length-8 sequence
  // (position 7) cannot see position 0 or 1 through any path, and changing
  // token 0 leaves its reward unchanged; with full attention it changes.
  auto config = tiny_config("MistralForSequenceClassification");
  config.sliding_window = 3;
  auto windowed = random_model(config, 21);
  std::vector<int64_t> a = {1, 2, 3, 4, 5, 6, 7, 8}, b = a;
  b[0] = 40;
  auto s = windowed->score({a, b});
  EXPECT_NEAR(s[0], s[1], 1e-6);
  // Position 4 still sees position 0 (via 2 hops), so a length-5 prefix differs.
  auto prefix = windowed->score({{a.begin(), a.begin() + 5}, {b.begin(), b.begin() + 5}});
  EXPECT_GT(std::abs(prefix[0] - prefix[1]), 1e-5);

  config.sliding_window = 0;
  auto full = random_model(config, 21);
  auto f = full->score({a, b});
  EXPECT_GT(std::abs(f[0] - f[1]), 1e-5);
}

TEST(SlidingWindow, QwenUsesItOnlyWhenEnabledAndFromMaxWindowLayersOn) {
  auto config = tiny_config("Qwen2ForSequenceClassification");
  config.sliding_window = 2;
  config.max_window_layers = 1;  // layer 0 full, layer 1 windowed
  std::vector<int64_t> a = {1, 2, 3, 4, 5, 6}, b = a;
  b[0] = 50;
  config.use_sliding_window = false;
  auto off = random_model(config, 2)->score({a, b});
  EXPECT_GT(std::abs(off[0] - off[1]), 1e-5);
  config.use_sliding_window = true;
  config.max_window_layers = 0;  // both layers windowed: receptive field 3
  auto on = random_model(config, 2)->score({a, b});
  EXPECT_NEAR(on[0], on[1], 1e-6);
  config.max_window_layers = 1;  // layer 0 full attention reaches token 0
  auto mixed = random_model(config, 2)->score({a, b});
  EXPECT_GT(std::abs(mixed[0] - mixed[1]), 1e-5);
}

TEST(GroupedQueryAttention, EqualsMultiHeadWithRepeatedKeyValueWeights) {
  // A model with 2 kv heads for 4 query heads must equal a 4-kv-head model
  // whose k/v projections repeat each kv head's rows for its two query heads.
  auto gqa_config = tiny_config("LlamaForSequenceClassification");
  auto gqa = random_model(gqa_config, 8);
  auto mha_config = gqa_config;
  mha_config.num_key_value_heads = 4;
  auto mha = random_model(mha_config, 99);
  torch::NoGradGuard no_grad;
  auto mha_params = mha->named_parameters();
  const int64_t head_dim = gqa_config.head_dim;
  for (const auto& p : gqa->named_parameters()) {
    auto target = mha_params[p.key()];
    const bool kv = p.key().find("k_proj") != std::string::npos ||
                    p.key().find("v_proj") != std::string::npos;
    if (kv) {
      auto heads = p.value().view({2, head_dim, -1});
      target.copy_(heads.repeat_interleave(2, 0).reshape(target.sizes()));
    } else {
      target.copy_(p.value());
    }
  }
  auto a = gqa->score(kSequences), b = mha->score(kSequences);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
}

// ------------------------------------------------------- strict loading

class StrictLoading : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = random_model(tiny_config("LlamaForSequenceClassification"));
    save_reward_model(*model_, dir_.path());
    auto store = WeightStore::open_folder(dir_.path());
    for (const auto& name : store.names()) tensors_.emplace_back(name, store.tensor(name).clone());
  }
  void rewrite(const NamedTensors& tensors) {
    save_safetensors(dir_.file("model.safetensors"), tensors);
  }
  std::string load_error() {
    return error_of([&] { load_reward_model(dir_.path()); });
  }
  std::shared_ptr<RewardModel> model_;
  TempDir dir_;
  NamedTensors tensors_;
};

TEST_F(StrictLoading, MissingTensorIsNamed) {
  NamedTensors t;
  for (auto& p : tensors_) {
    if (p.first != "model.layers.1.mlp.up_proj.weight") t.push_back(p);
  }
  rewrite(t);
  auto msg = load_error();
  EXPECT_NE(msg.find("missing tensor model.layers.1.mlp.up_proj.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[48, 32]"), std::string::npos) << msg;
}

TEST_F(StrictLoading, WrongShapeNamesExpectedAndActual) {
  for (auto& p : tensors_) {
    if (p.first == "model.layers.1.mlp.up_proj.weight") p.second = p.second.t().contiguous();
  }
  rewrite(tensors_);
  auto msg = load_error();
  EXPECT_NE(msg.find("tensor model.layers.1.mlp.up_proj.weight: expected [48, 32], got [32, 48]"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST_F(StrictLoading, UnusedTensorIsAnError) {
  tensors_.emplace_back("lm_head.weight", torch::zeros({64, 32}));
  rewrite(tensors_);
  auto msg = load_error();
  EXPECT_NE(msg.find("unexpected tensor(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
}

TEST_F(StrictLoading, RotaryInverseFrequencyBuffersAreIgnored) {
  tensors_.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", torch::ones({4}));
  rewrite(tensors_);
  auto loaded = load_reward_model(dir_.path());
  EXPECT_EQ(loaded->score(kSequences), model_->score(kSequences));
}

TEST_F(StrictLoading, IntegerWeightsAreRejected) {
  for (auto& p : tensors_) {
    if (p.first == "model.norm.weight") p.second = torch::ones({32}, at::kInt);
  }
  rewrite(tensors_);
  auto msg = load_error();
  EXPECT_NE(msg.find("model.norm.weight: dtype I32 is not a floating type"), std::string::npos)
      << msg;
}

TEST_F(StrictLoading, Float16WeightsConvertToTheRequestedDtype) {
  for (auto& p : tensors_) p.second = p.second.to(at::kHalf);
  rewrite(tensors_);
  auto loaded = load_reward_model(dir_.path());
  EXPECT_EQ(loaded->dtype(), at::kFloat);
  auto a = model_->score(kSequences), b = loaded->score(kSequences);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 5e-2);
}

TEST_F(StrictLoading, UnknownArchitectureListsSupportedOnes) {
  auto config = nlohmann::json::parse(test::read_bytes(dir_.file("config.json")));
  config["architectures"] = {"BloomForSequenceClassification"};
  config["model_type"] = "bloom";
  test::write_bytes(dir_.file("config.json"), config.dump());
  auto msg = load_error();
  EXPECT_NE(msg.find("unsupported architecture 'BloomForSequenceClassification'"),
            std::string::npos)
      << msg;
  for (const auto& arch : kArchitectures) EXPECT_NE(msg.find(arch), std::string::npos) << msg;
}

TEST_F(StrictLoading, MissingFolderAndTokenOutsideVocabulary) {
  EXPECT_NE(error_of([&] { load_reward_model(dir_.file("nope")); }).find("does not exist"),
            std::string::npos);
  auto msg = error_of([&] { model_->score({{1, 2, 64}}); });
  EXPECT_NE(msg.find("token id 64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside the vocabulary [0, 64)"), std::string::npos) << msg;
}

TEST(Config, HugeDimensionsAreRefusedWithTheFieldBeforeAnyAllocation) {
  auto config = tiny_config("LlamaForSequenceClassification");
  config.hidden_size = 1'000'000;
  config.head_dim = 1'000'000 / 4;
  const std::string field = error_of([&] { create_reward_model(config); });
  EXPECT_NE(field.find("field 'hidden_size' is 1000000, more than the 131072 openrm accepts"), std::string::npos)
      << field;
  // Every field within its bound, the whole far beyond any machine: refused
  // from the arithmetic, before a byte is allocated (16M x 131072 fp32
  // embeddings alone are 8.8 TB).
  config = tiny_config("LlamaForSequenceClassification");
  config.vocab_size = std::int64_t{1} << 24;
  config.hidden_size = std::int64_t{1} << 17;
  config.num_attention_heads = 64;
  config.num_key_value_heads = 64;
  config.head_dim = config.hidden_size / config.num_attention_heads;
  const std::string total = error_of([&] { create_reward_model(config); });
  EXPECT_NE(total.find("for its weights alone"), std::string::npos) << total;
  EXPECT_NE(total.find("vocab_size 16777216, hidden_size 131072"), std::string::npos) << total;
  EXPECT_NE(total.find("of memory"), std::string::npos) << total;
}

TEST_F(StrictLoading, ATokenizerLargerThanTheVocabularyDoesNotFitAndBothAreNamed) {
  // The tiny model has 64 embeddings; the byte tokenizer has 259 ids.
  test::ByteTokenizer bytes;
  const std::string msg = error_of([&] { check_tokenizer_fits_model(bytes, model_->config(), dir_.path()); });
  EXPECT_NE(msg.find("the tokenizer " + bytes.source() + " does not fit the model " + dir_.path()), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("259 token ids (0..258)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size is 64"), std::string::npos) << msg;
  ModelConfig wider = model_->config();
  wider.vocab_size = 259;
  EXPECT_NO_THROW(check_tokenizer_fits_model(bytes, wider, dir_.path()));
}

TEST_F(StrictLoading, PoolingIsStoredInOpenrmJson) {
  model_->set_pooling(Pooling::kLastToken);
  save_reward_model(*model_, dir_.path());
  EXPECT_EQ(load_reward_model(dir_.path())->pooling(), Pooling::kLastToken);
  LoadOptions options;
  options.pooling = Pooling::kBeforeFirstPad;
  EXPECT_EQ(load_reward_model(dir_.path(), options)->pooling(), Pooling::kBeforeFirstPad);
  test::write_bytes(dir_.file("openrm.json"), "{\"pooling\": \"mean\"}");
  auto msg = load_error();
  EXPECT_NE(msg.find("openrm.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown pooling rule 'mean'"), std::string::npos) << msg;
}

TEST(ShardedCheckpoint, LoadsBackIdentically) {
  auto model = random_model(tiny_config("Qwen3ForSequenceClassification"), 13);
  TempDir dir;
  save_reward_model(*model, dir.path(), /*max_shard_bytes=*/200'000);
  EXPECT_TRUE(std::filesystem::exists(dir.file("model.safetensors.index.json")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("model.safetensors")));
  auto loaded = load_reward_model(dir.path());
  EXPECT_EQ(model->score(kSequences), loaded->score(kSequences));
}

// Gradient checkpointing recomputes each layer in backward; on the same
// device the recomputation is bit-identical, so every gradient must equal the
// plain path's exactly, for every architecture (Qwen3's q/k norms, Mistral's
// sliding window included).
TEST(GradientCheckpointing, GivesTheSameGradientsAsThePlainPath) {
  for (const char* arch : {"LlamaForSequenceClassification", "MistralForSequenceClassification",
                           "Qwen2ForSequenceClassification", "Qwen3ForSequenceClassification"}) {
    auto model = create_reward_model(tiny_config(arch));
    model->init_weights(/*seed=*/11, /*std=*/0.1);
    model->train();
    auto batch = PackedBatch::from_sequences({{5, 9, 2, 7, 1}, {3, 3}, {8, 1, 4, 4, 6, 2, 9, 10}});
    auto gradients = [&](bool checkpointing) {
      model->set_gradient_checkpointing(checkpointing);
      model->zero_grad();
      auto rewards = model->forward(batch).reshape({-1});
      (rewards * torch::tensor({1.0f, -2.0f, 0.5f})).sum().backward();
      std::map<std::string, at::Tensor> grads;
      for (const auto& p : model->named_parameters()) grads[p.key()] = p.value().grad().clone();
      return std::make_pair(rewards.detach(), grads);
    };
    auto plain = gradients(false);
    auto checkpointed = gradients(true);
    EXPECT_TRUE(torch::equal(plain.first, checkpointed.first)) << arch;
    for (const auto& [name, grad] : plain.second) {
      ASSERT_TRUE(grad.defined()) << arch << " " << name;
      EXPECT_TRUE(torch::equal(grad, checkpointed.second[name])) << arch << " " << name;
      EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << arch << " " << name;
    }
  }
}

// Under autocast the recompute must run in the forward's precision: a
// recompute in fp32 behind a bf16 forward differentiates another function.
// The CPU's bf16 autocast stands in for CUDA's (the same mechanism; the
// trainer uses CUDA's), so this runs everywhere; the _CUDA twin checks CUDA's.
void expect_checkpointing_under_autocast_is_exact(const c10::Device& device) {
  compat::AutocastState bf16;
  if (device.is_cuda()) {
    bf16.cuda_enabled = true;
    bf16.cuda_dtype = at::kBFloat16;
  } else {
    bf16.cpu_enabled = true;
    bf16.cpu_dtype = at::kBFloat16;
  }
  LoadOptions options;
  options.device = device;
  auto model = create_reward_model(tiny_config("LlamaForSequenceClassification"), options);
  model->init_weights(/*seed=*/11, /*std=*/0.3);
  model->train();
  auto batch = PackedBatch::from_sequences({{5, 9, 2, 7, 1}, {3, 3}, {8, 1, 4, 4, 6, 2, 9, 10}})
                   .to(device);
  auto gradients = [&](bool checkpointing, bool autocast) {
    model->set_gradient_checkpointing(checkpointing);
    model->zero_grad();
    at::Tensor rewards;
    {
      std::optional<compat::AutocastScope> scope;
      if (autocast) scope.emplace(bf16);
      rewards = model->forward(batch).reshape({-1}).to(at::kFloat);
    }
    // backward runs outside the autocast region, as in the trainer.
    (rewards * torch::tensor({1.0f, -2.0f, 0.5f}, rewards.options())).sum().backward();
    std::map<std::string, at::Tensor> grads;
    for (const auto& p : model->named_parameters()) grads[p.key()] = p.value().grad().cpu().clone();
    return grads;
  };
  const auto fp32 = gradients(false, false);
  const auto plain = gradients(false, true);
  const auto checkpointed = gradients(true, true);
  const auto after = compat::current_autocast();
  EXPECT_FALSE(after.cpu_enabled || after.cuda_enabled) << "the scope left autocast on";
  double bf16_effect = 0.0;
  for (const auto& [name, grad] : plain) {
    ASSERT_TRUE(grad.defined()) << name;
    EXPECT_TRUE(torch::equal(grad, checkpointed.at(name)))
        << name << ": max |diff| "
        << (grad - checkpointed.at(name)).abs().max().item<double>();
    bf16_effect = std::max(bf16_effect, (grad - fp32.at(name)).abs().max().item<double>());
  }
  // Proof that autocast really changed the arithmetic (else the test is void).
  EXPECT_GT(bf16_effect, 1e-4);
}

TEST(GradientCheckpointing, RecomputesUnderTheForwardsAutocast) {
  expect_checkpointing_under_autocast_is_exact(c10::Device(c10::kCPU));
}

TEST(GradientCheckpointing, RecomputesUnderTheForwardsAutocast_CUDA) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  expect_checkpointing_under_autocast_is_exact(c10::Device(c10::kCUDA));
}

// A fresh model's norms leave their input as it is, in every family: weight
// ones, except Gemma's (1+w) RMSNorm, whose weight is an offset (zeros).
TEST(InitWeights, FreshNormsAreTheIdentityInEveryFamily) {
  const struct {
    const char* fixture;
    double norm_weight;
  } families[] = {{"parity/llama_llama3_rope", 1.0}, {"parity/gemma", 0.0},         {"parity/gemma2_softcap_window", 0.0},
                  {"parity/gpt_neox_parallel", 1.0}, {"parity/gpt2", 1.0},          {"deberta/deberta_v3", 1.0}};
  for (const auto& f : families) {
    SCOPED_TRACE(f.fixture);
    const std::string path = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/" + f.fixture + "/config.json";
    auto model = create_reward_model(parse_model_config(test::read_bytes(path), path));
    model->init_weights(/*seed=*/2, /*std=*/0.02);
    int norms = 0;
    for (const auto& item : model->named_parameters()) {
      const std::string& n = item.key();
      const bool is_norm_weight = item.value().dim() == 1 && n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0 &&
                                  (n.find("norm") != std::string::npos || n.find("LayerNorm") != std::string::npos ||
                                   n.find(".ln_") != std::string::npos);
      if (!is_norm_weight) continue;
      ++norms;
      EXPECT_TRUE(torch::equal(item.value(), torch::full_like(item.value(), f.norm_weight))) << n;
    }
    EXPECT_GE(norms, 3);
  }
}

}  // namespace
}  // namespace openrm
