// Training building blocks: losses against closed forms and finite
// differences, AdamW groups and update rule against the written-out formula,
// learning-rate schedules against transformers' formulas, gradient clipping
// against a hand-computed norm, and optimizer state round trips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <random>

#include "openrm/error.h"
#include "openrm/models/packed_batch.h"
#include "openrm/models/reward_model.h"
#include "openrm/train/losses.h"
#include "openrm/train/optim.h"
#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

using test::contains;
using test::error_of;
using test::TempDir;
using test::tiny_config;

using LD = long double;

std::vector<double> random_values(int n, std::uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(dist(rng));
  return v;
}

at::Tensor dtensor(const std::vector<double>& v) {
  return torch::tensor(v, torch::dtype(torch::kDouble));
}

// The closed forms, in long double, written from the definitions.
LD bt_closed(LD x) { return -std::log(1.0L / (1.0L + std::exp(-x))); }

LD pl_closed(const std::vector<double>& r) {
  LD loss = 0;
  for (std::size_t i = 0; i + 1 < r.size(); ++i) {
    LD denom = 0;
    for (std::size_t j = i; j < r.size(); ++j) denom += std::exp(static_cast<LD>(r[j]));
    loss -= static_cast<LD>(r[i]) - std::log(denom);
  }
  return loss;
}

// Checks autograd's gradient of f against central differences, in double.
void expect_gradients_match(
    const std::function<at::Tensor(const std::vector<at::Tensor>&)>& f,
    const std::vector<at::Tensor>& inputs, double h = 1e-6, double tol = 1e-7) {
  std::vector<at::Tensor> leaves;
  for (const auto& x : inputs) leaves.push_back(x.detach().clone().set_requires_grad(true));
  f(leaves).backward();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    for (std::int64_t j = 0; j < inputs[i].numel(); ++j) {
      auto eval = [&](double delta) {
        torch::NoGradGuard no_grad;
        std::vector<at::Tensor> xs;
        for (const auto& x : inputs) xs.push_back(x.detach().clone());
        xs[i].view({-1})[j] += delta;
        return f(xs).item<double>();
      };
      const double fd = (eval(h) - eval(-h)) / (2 * h);
      const double ad = leaves[i].grad().view({-1})[j].item<double>();
      EXPECT_NEAR(ad, fd, tol * (1 + std::abs(fd))) << "input " << i << " element " << j;
    }
  }
}

// ---- losses ------------------------------------------------------------------

TEST(BradleyTerry, MatchesClosedFormWithAndWithoutMargin) {
  const auto c = random_values(9, 1, 3.0), r = random_values(9, 2, 3.0), m = random_values(9, 3);
  LD plain = 0, with_margin = 0;
  for (int p = 0; p < 9; ++p) {
    plain += bt_closed(static_cast<LD>(c[p]) - r[p]) / 9;
    with_margin += bt_closed(static_cast<LD>(c[p]) - r[p] - m[p]) / 9;
  }
  EXPECT_NEAR(bradley_terry_loss(dtensor(c), dtensor(r)).item<double>(), plain, 1e-14);
  EXPECT_NEAR(bradley_terry_loss(dtensor(c), dtensor(r), dtensor(m)).item<double>(), with_margin,
              1e-14);
  // float32 and bfloat16 inputs are computed in float32; (P, 1) is accepted.
  auto f32 = bradley_terry_loss(dtensor(c).to(at::kFloat).view({9, 1}), dtensor(r).to(at::kFloat),
                                dtensor(m).to(at::kFloat));
  EXPECT_EQ(f32.scalar_type(), at::kFloat);
  EXPECT_NEAR(f32.item<double>(), with_margin, 1e-6 * with_margin);
  auto bf = bradley_terry_loss(dtensor(c).to(at::kBFloat16), dtensor(r).to(at::kBFloat16));
  EXPECT_EQ(bf.scalar_type(), at::kFloat);
}

TEST(BradleyTerry, StableAtLargeDifferences) {
  for (auto dtype : {at::kFloat, at::kDouble}) {
    // d = +-100 and -200: log(sigmoid(d)) would be log(0) = -inf in float32.
    auto c = torch::tensor({100.0, -100.0, -200.0}, torch::dtype(dtype)).set_requires_grad(true);
    auto r = torch::zeros({3}, torch::dtype(dtype));
    for (int p = 0; p < 3; ++p) {
      auto loss = bradley_terry_loss(c.narrow(0, p, 1), r.narrow(0, p, 1));
      const double d = c[p].item<double>();
      const LD expected = std::log1p(std::exp(-static_cast<LD>(d)));  // softplus(-d)
      EXPECT_TRUE(std::isfinite(loss.item<double>()));
      EXPECT_NEAR(loss.item<double>(), static_cast<double>(expected), 1e-12 * (1 + std::abs(d)));
    }
    auto loss = bradley_terry_loss(c, r);
    loss.backward();
    // d/dc_p = -(1 - sigmoid(d_p)) / P.
    auto g = c.grad().to(at::kDouble);
    for (int p = 0; p < 3; ++p) {
      const LD d = c[p].item<double>();
      const LD expected = -(1.0L - 1.0L / (1.0L + std::exp(-d))) / 3;
      EXPECT_NEAR(g[p].item<double>(), static_cast<double>(expected), 1e-7);
    }
  }
}

TEST(BradleyTerry, GradientsMatchFiniteDifferences) {
  const auto c = random_values(6, 11), r = random_values(6, 12), m = random_values(6, 13, 0.5);
  expect_gradients_match(
      [](const std::vector<at::Tensor>& x) { return bradley_terry_loss(x[0], x[1], x[2]); },
      {dtensor(c), dtensor(r), dtensor(m)});
}

TEST(PairLoss, CenteringMatchesTrlDefinitionAndFiniteDifferences) {
  const auto c = random_values(5, 21, 2.0), r = random_values(5, 22, 2.0);
  const auto m = random_values(5, 23, 0.3);
  const double coef = 0.01;
  LD center = 0, bt = 0;
  for (int p = 0; p < 5; ++p) {
    center += (static_cast<LD>(c[p]) + r[p]) * (static_cast<LD>(c[p]) + r[p]) / 5;
    bt += bt_closed(static_cast<LD>(c[p]) - r[p] - m[p]) / 5;
  }
  center *= coef;
  EXPECT_NEAR(center_rewards_term(dtensor(c), dtensor(r), coef).item<double>(), center, 1e-14);
  EXPECT_EQ(center_rewards_term(dtensor(c), dtensor(r), 0.0).item<double>(), 0.0);

  std::vector<double> interleaved;
  for (int p = 0; p < 5; ++p) interleaved.insert(interleaved.end(), {c[p], r[p]});
  PairLossOptions options;
  options.center_rewards_coefficient = coef;
  auto out = compute_pair_loss(dtensor(interleaved).view({10, 1}), dtensor(m), options);
  EXPECT_NEAR(out.loss.item<double>(), bt + center, 1e-14);
  EXPECT_NEAR(out.bt_loss.item<double>(), bt, 1e-14);
  EXPECT_NEAR(out.center_term.item<double>(), center, 1e-14);
  expect_gradients_match(
      [&](const std::vector<at::Tensor>& x) { return compute_pair_loss(x[0], x[1], options).loss; },
      {dtensor(interleaved), dtensor(m)});
}

TEST(PairLoss, AccuracyCountsTiesAsWrongAndMarginsAreOptional) {
  // Pairs: (2, 1) right, (0, 3) wrong, (1.5, 1.5) tie, (4, -1) right.
  auto rewards = torch::tensor({2.0, 1.0, 0.0, 3.0, 1.5, 1.5, 4.0, -1.0}).set_requires_grad(true);
  auto margins = torch::tensor({1.0, 1.0, 1.0, 1.0});
  auto out = compute_pair_loss(rewards, margins);
  EXPECT_DOUBLE_EQ(out.accuracy.item<double>(), 0.5);
  EXPECT_NEAR(out.mean_margin.item<double>(), (1.0 - 3.0 + 0.0 + 5.0) / 4, 1e-7);
  const double with = static_cast<double>(
      (bt_closed(1 - 1) + bt_closed(-3 - 1) + bt_closed(0 - 1) + bt_closed(5 - 1)) / 4);
  const double without =
      static_cast<double>((bt_closed(1) + bt_closed(-3) + bt_closed(0) + bt_closed(5)) / 4);
  EXPECT_NEAR(out.loss.item<double>(), with, 1e-6);
  EXPECT_EQ(out.center_term.item<double>(), 0.0);
  EXPECT_TRUE(out.loss.requires_grad());
  EXPECT_FALSE(out.bt_loss.requires_grad());
  EXPECT_FALSE(out.accuracy.requires_grad());
  PairLossOptions no_margin;
  no_margin.use_margin = false;
  EXPECT_NEAR(compute_pair_loss(rewards, margins, no_margin).loss.item<double>(), without, 1e-6);
  EXPECT_NEAR(compute_pair_loss(rewards, at::Tensor()).loss.item<double>(), without, 1e-6);
}

TEST(PlackettLuce, MatchesClosedFormForOneAndManyRecords) {
  const auto one = random_values(4, 31, 2.0);
  EXPECT_NEAR(plackett_luce_loss(dtensor(one)).item<double>(), pl_closed(one), 1e-13);

  const std::vector<int> sizes = {2, 3, 5, 3, 4};
  std::vector<at::Tensor> records;
  std::vector<double> flat;
  std::vector<std::int64_t> offsets = {0};
  LD expected = 0;
  for (std::size_t j = 0; j < sizes.size(); ++j) {
    auto r = random_values(sizes[j], 40 + static_cast<std::uint32_t>(j), 2.0);
    records.push_back(dtensor(r));
    flat.insert(flat.end(), r.begin(), r.end());
    offsets.push_back(static_cast<std::int64_t>(flat.size()));
    expected += pl_closed(r) / sizes.size();
  }
  EXPECT_NEAR(plackett_luce_loss(records).item<double>(), expected, 1e-13);
  EXPECT_NEAR(plackett_luce_loss(dtensor(flat), offsets).item<double>(), expected, 1e-13);
  expect_gradients_match(
      [&](const std::vector<at::Tensor>& x) { return plackett_luce_loss(x[0], offsets); },
      {dtensor(flat)});
}

TEST(PlackettLuce, TwoItemRecordsEqualBradleyTerry) {
  auto c = random_values(7, 51, 5.0), r = random_values(7, 52, 5.0);
  c.push_back(60.0);  // large differences stay exact too
  r.push_back(-60.0);
  c.push_back(-60.0);
  r.push_back(60.0);
  std::vector<at::Tensor> records;
  for (std::size_t p = 0; p < c.size(); ++p) records.push_back(dtensor({c[p], r[p]}));
  for (auto dtype : {at::kDouble, at::kFloat}) {
    std::vector<at::Tensor> typed;
    for (auto& t : records) typed.push_back(t.to(dtype));
    const double pl = plackett_luce_loss(typed).item<double>();
    const double bt = bradley_terry_loss(dtensor(c).to(dtype), dtensor(r).to(dtype)).item<double>();
    EXPECT_NEAR(pl, bt, (dtype == at::kDouble ? 1e-13 : 1e-5) * (1 + bt));
  }
  auto big = plackett_luce_loss(torch::tensor({100.0f, -100.0f, 0.0f}));
  EXPECT_NEAR(big.item<double>(), static_cast<double>(pl_closed({100.0, -100.0, 0.0})), 1e-4);
}

TEST(Losses, ErrorsNameTheSizes) {
  auto t3 = torch::zeros({3}), t2 = torch::zeros({2});
  auto msg = error_of([&] { bradley_terry_loss(t3, t2); });
  EXPECT_TRUE(contains(msg, "reward_chosen has 3 elements but reward_rejected has 2")) << msg;
  msg = error_of([&] { bradley_terry_loss(t3, t3, torch::zeros({4})); });
  EXPECT_TRUE(contains(msg, "margin has 4 elements but there are 3 pairs")) << msg;
  msg = error_of([&] { bradley_terry_loss(torch::zeros({0}), torch::zeros({0})); });
  EXPECT_TRUE(contains(msg, "no pairs")) << msg;
  msg = error_of([&] { bradley_terry_loss(torch::zeros({3, 2}), torch::zeros({3, 2})); });
  EXPECT_TRUE(contains(msg, "shape (N) or (N, 1)")) << msg;
  msg = error_of([&] { compute_pair_loss(t3, at::Tensor()); });
  EXPECT_TRUE(contains(msg, "even, positive count), got 3")) << msg;
  msg = error_of([&] { compute_pair_loss(torch::zeros({4}), t3); });
  EXPECT_TRUE(contains(msg, "margins has 3 elements but the batch has 2 pairs")) << msg;
  msg = error_of([&] { center_rewards_term(t3, t3, -0.1); });
  EXPECT_TRUE(contains(msg, "center_rewards_coefficient must be >= 0")) << msg;
  msg = error_of([&] { plackett_luce_loss(std::vector<at::Tensor>{t3, torch::zeros({1})}); });
  EXPECT_TRUE(contains(msg, "record 1 has 1 rewards; a ranking needs at least 2")) << msg;
  msg = error_of([&] { plackett_luce_loss(torch::zeros({5}), {0, 2, 4}); });
  EXPECT_TRUE(contains(msg, "offsets must run from 0 to the number of rewards (5)")) << msg;
  msg = error_of([&] { plackett_luce_loss(torch::zeros({5}), {0, 3, 2, 5}); });
  EXPECT_TRUE(contains(msg, "offsets decrease at entry 2")) << msg;
}

// ---- parameter groups and AdamW ------------------------------------------------

TEST(ParamGroups, DecayRuleByNameAndDimension) {
  EXPECT_TRUE(decays("model.embed_tokens.weight", 2));
  EXPECT_TRUE(decays("model.layers.0.self_attn.q_proj.weight", 2));
  EXPECT_TRUE(decays("score.weight", 2));
  EXPECT_TRUE(decays("normalizer.weight", 2));  // "norm" only as a component
  EXPECT_FALSE(decays("model.layers.0.self_attn.q_proj.bias", 1));
  EXPECT_FALSE(decays("model.layers.0.input_layernorm.weight", 1));
  EXPECT_FALSE(decays("model.norm.weight", 1));
  EXPECT_FALSE(decays("some.vector", 1));
  // Names win even for matrices.
  EXPECT_FALSE(decays("model.layers.0.self_attn.q_norm.weight", 2));
  EXPECT_FALSE(decays("encoder.LayerNorm.weight", 2));
  EXPECT_FALSE(decays("model.final_RMSNorm.weight", 2));
  EXPECT_FALSE(decays("head.bias_table", 2));
}

TEST(ParamGroups, SplitsATinyQwen2CoveringEveryTrainableParameterOnce) {
  auto model = create_reward_model(tiny_config("Qwen2ForSequenceClassification"));
  auto named = model->named_parameters();
  named["model.layers.1.mlp.up_proj.weight"].set_requires_grad(false);  // frozen
  auto groups = split_decay_groups(*model, 0.1);
  EXPECT_EQ(groups.weight_decay, 0.1);
  EXPECT_EQ(groups.decay.size(), groups.decay_names.size());
  EXPECT_EQ(groups.no_decay.size(), groups.no_decay_names.size());
  EXPECT_EQ(groups.decay.size() + groups.no_decay.size(), named.size() - 1);
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  EXPECT_TRUE(has(groups.decay_names, "model.embed_tokens.weight"));
  EXPECT_TRUE(has(groups.decay_names, "score.weight"));
  EXPECT_TRUE(has(groups.decay_names, "model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(has(groups.no_decay_names, "model.layers.0.self_attn.q_proj.bias"));
  EXPECT_TRUE(has(groups.no_decay_names, "model.layers.0.input_layernorm.weight"));
  EXPECT_TRUE(has(groups.no_decay_names, "model.norm.weight"));
  EXPECT_FALSE(has(groups.decay_names, "model.layers.1.mlp.up_proj.weight"));
  for (const auto& t : groups.no_decay) EXPECT_EQ(t.dim(), 1);
  for (const auto& t : groups.decay) EXPECT_EQ(t.dim(), 2);
  EXPECT_TRUE(contains(groups.summary(), "no decay: " + std::to_string(groups.no_decay.size())));
  EXPECT_TRUE(contains(error_of([&] { split_decay_groups(*model, -1.0); }), "weight_decay"));
}

struct TinyLinear : torch::nn::Module {
  TinyLinear() {
    weight = register_parameter("weight", torch::zeros({2, 3}, torch::kDouble));
    bias = register_parameter("bias", torch::zeros({2}, torch::kDouble));
  }
  at::Tensor weight, bias;
};

TEST(AdamW, StepsFollowTheDecoupledUpdateRule) {
  TinyLinear m;
  const std::vector<double> w0 = {0.5, -1.0, 2.0, 0.25, -0.75, 1.5}, b0 = {0.3, -0.2};
  const std::vector<std::vector<double>> gw = {{0.1, -0.2, 0.3, -0.4, 0.5, -0.6},
                                               {-0.05, 0.4, 0.0, 0.2, -0.1, 0.7}};
  const std::vector<std::vector<double>> gb = {{1.0, -2.0}, {0.5, 0.25}};
  {
    torch::NoGradGuard no_grad;
    m.weight.copy_(dtensor(w0).view({2, 3}));
    m.bias.copy_(dtensor(b0));
  }
  AdamWOptions o{1e-2, {0.9, 0.99}, 1e-8, 0.1};
  auto opt = make_adamw(m, o);
  ASSERT_EQ(opt->param_groups().size(), 2u);

  // The rule written out, per element, in long double.
  struct Elem { LD p, m = 0, v = 0; };
  auto run = [&](std::vector<double> p0, const std::vector<std::vector<double>>& g, double wd) {
    std::vector<Elem> e;
    for (double p : p0) e.push_back({p});
    for (std::size_t t = 1; t <= g.size(); ++t) {
      const LD b1 = o.betas.first, b2 = o.betas.second;
      const LD bc1 = 1 - std::pow(b1, static_cast<LD>(t)), bc2 = 1 - std::pow(b2, static_cast<LD>(t));
      for (std::size_t i = 0; i < e.size(); ++i) {
        const LD gi = g[t - 1][i];
        e[i].p *= 1 - static_cast<LD>(o.lr) * wd;  // decoupled: not added to the gradient
        e[i].m = b1 * e[i].m + (1 - b1) * gi;
        e[i].v = b2 * e[i].v + (1 - b2) * gi * gi;
        e[i].p -= o.lr / bc1 * e[i].m / (std::sqrt(e[i].v) / std::sqrt(bc2) + o.eps);
      }
    }
    return e;
  };
  for (std::size_t t = 0; t < 2; ++t) {
    m.weight.mutable_grad() = dtensor(gw[t]).view({2, 3});
    m.bias.mutable_grad() = dtensor(gb[t]);
    opt->step();
  }
  auto ew = run(w0, gw, o.weight_decay), eb = run(b0, gb, 0.0);
  auto w = m.weight.detach().view({-1});
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(w[i].item<double>(), ew[i].p, 1e-14) << i;
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(m.bias[i].item<double>(), eb[i].p, 1e-14) << i;
}

TEST(AdamW, EmptyGroupAndBadOptions) {
  struct OnlyVector : torch::nn::Module {
    OnlyVector() { v = register_parameter("v", torch::ones({3})); }
    at::Tensor v;
  } m;
  auto opt = make_adamw(m, AdamWOptions{});
  EXPECT_EQ(opt->param_groups()[0].params().size(), 0u);
  m.v.mutable_grad() = torch::ones({3});
  opt->step();
  EXPECT_LT(m.v[0].item<double>(), 1.0);
  EXPECT_TRUE(contains(error_of([&] { make_adamw(m, AdamWOptions{-1.0}); }), "lr must be"));
  EXPECT_TRUE(contains(error_of([&] { make_adamw(m, AdamWOptions{1e-3, {1.0, 0.9}}); }), "beta1"));
  EXPECT_TRUE(contains(error_of([&] { make_adamw(m, AdamWOptions{1e-3, {0.9, 0.999}, 1e-8, -1}); }),
                       "weight_decay"));
}

// ---- schedules -------------------------------------------------------------------

// transformers' lambdas (optimization.py), written out.
double hf_warmup(std::int64_t s, std::int64_t w) {
  return static_cast<double>(s) / static_cast<double>(std::max<std::int64_t>(1, w));
}
double hf_cosine(std::int64_t s, std::int64_t w, std::int64_t t, double min_rate = 0.0) {
  if (s < w) return hf_warmup(s, w);
  const double progress = double(s - w) / double(std::max<std::int64_t>(1, t - w));
  const double f = 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress));
  return std::max(0.0, f * (1 - min_rate) + min_rate);
}
double hf_linear(std::int64_t s, std::int64_t w, std::int64_t t) {
  if (s < w) return hf_warmup(s, w);
  return std::max(0.0, double(t - s) / double(std::max<std::int64_t>(1, t - w)));
}
double hf_constant(std::int64_t s, std::int64_t w) { return s < w ? hf_warmup(s, w) : 1.0; }

TEST(LrSchedule, FollowsTransformersFormulas) {
  const double peak = 3e-4;
  const std::int64_t W = 10, T = 110;
  LrSchedule cosine{LrSchedule::kCosine, W, T, peak};
  LrSchedule linear{LrSchedule::kLinear, W, T, peak};
  LrSchedule constant{LrSchedule::kConstant, W, T, peak};
  for (std::int64_t s : {0, 1, 5, 9, 10, 11, 35, 60, 85, 109, 110}) {
    EXPECT_NEAR(lr_at(cosine, s), peak * hf_cosine(s, W, T), 1e-18) << s;
    EXPECT_NEAR(lr_at(linear, s), peak * hf_linear(s, W, T), 1e-18) << s;
    EXPECT_NEAR(lr_at(constant, s), peak * hf_constant(s, W), 1e-18) << s;
  }
  EXPECT_EQ(lr_at(cosine, 0), 0.0);
  EXPECT_NEAR(lr_at(cosine, 5), peak / 2, 1e-18);
  EXPECT_NEAR(lr_at(cosine, 10), peak, 1e-18);
  EXPECT_NEAR(lr_at(cosine, 60), peak / 2, 1e-18);
  // Past the end the rate stays at its final value (transformers' cosine
  // would rise again: 0.5 * (1 + cos(pi * 1.9)) at step 200).
  EXPECT_NEAR(lr_at(cosine, 200), 0.0, 1e-18);
  EXPECT_NEAR(lr_at(linear, 200), 0.0, 1e-18);
  EXPECT_EQ(lr_at(constant, 200), peak);
  // The floor: transformers' cosine_with_min_lr formula; linear likewise.
  LrSchedule floor{LrSchedule::kCosine, W, T, peak, 0.1};
  for (std::int64_t s : {0, 7, 10, 50, 110}) {
    EXPECT_NEAR(lr_at(floor, s), peak * hf_cosine(s, W, T, 0.1), 1e-18) << s;
  }
  EXPECT_NEAR(lr_at(floor, 500), 0.1 * peak, 1e-18);
  LrSchedule linear_floor{LrSchedule::kLinear, W, T, peak, 0.25};
  EXPECT_NEAR(lr_at(linear_floor, 60), peak * (0.25 + 0.75 * 0.5), 1e-18);
  // No warm-up: step 0 already gets the peak.
  EXPECT_EQ(lr_at(LrSchedule{LrSchedule::kCosine, 0, 100, peak}, 0), peak);
}

TEST(LrSchedule, RejectsBadSchedulesAndNamesKinds) {
  auto msg = error_of([] { lr_at(LrSchedule{LrSchedule::kCosine, 20, 10, 1e-3}, 0); });
  EXPECT_TRUE(contains(msg, "warmup_steps (20) exceeds total_steps (10)")) << msg;
  msg = error_of([] { lr_at(LrSchedule{LrSchedule::kLinear, 0, 10, -1e-3}, 0); });
  EXPECT_TRUE(contains(msg, "peak_lr must be a finite value >= 0")) << msg;
  msg = error_of([] { lr_at(LrSchedule{LrSchedule::kLinear, 0, 0, 1e-3}, 0); });
  EXPECT_TRUE(contains(msg, "total_steps must be >= 1")) << msg;
  msg = error_of([] { lr_at(LrSchedule{LrSchedule::kLinear, 0, 10, 1e-3, 1.5}, 0); });
  EXPECT_TRUE(contains(msg, "min_lr_ratio")) << msg;
  msg = error_of([] { lr_at(LrSchedule{LrSchedule::kLinear, 0, 10, 1e-3}, -1); });
  EXPECT_TRUE(contains(msg, "step must be >= 0")) << msg;
  for (auto k : {LrSchedule::kCosine, LrSchedule::kLinear, LrSchedule::kConstant}) {
    EXPECT_EQ(parse_lr_schedule_kind(to_string(k)), k);
  }
  msg = error_of([] { parse_lr_schedule_kind("step"); });
  EXPECT_TRUE(contains(msg, "known: cosine, linear, constant")) << msg;
}

TEST(LrSchedule, SetLrReachesEveryGroup) {
  TinyLinear m;
  auto opt = make_adamw(m, AdamWOptions{1e-3, {0.9, 0.999}, 1e-8, 0.1});
  set_lr(*opt, 2.5e-4);
  for (auto& g : opt->param_groups()) {
    EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(g.options()).lr(), 2.5e-4);
  }
  EXPECT_EQ(get_lr(*opt), 2.5e-4);
  EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options()).weight_decay(),
            0.1);
  EXPECT_EQ(static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[1].options()).weight_decay(),
            0.0);
  EXPECT_TRUE(contains(error_of([&] { set_lr(*opt, -1); }), "lr must be"));
}

// ---- gradients ---------------------------------------------------------------------

TEST(ClipGradNorm, ReturnsThePreClipNormAndScalesLikeTorch) {
  auto a = torch::zeros({3, 4}).set_requires_grad(true);
  auto b = torch::zeros({5}).set_requires_grad(true);
  auto c = torch::zeros({2}).set_requires_grad(true);  // no gradient: skipped
  const auto ga = random_values(12, 61), gb = random_values(5, 62);
  LD sq = 0;
  for (double g : ga) sq += static_cast<LD>(g) * g;
  for (double g : gb) sq += static_cast<LD>(g) * g;
  const double norm = static_cast<double>(std::sqrt(sq));
  auto set_grads = [&] {
    a.mutable_grad() = dtensor(ga).to(at::kFloat).view({3, 4});
    b.mutable_grad() = dtensor(gb).to(at::kFloat);
  };
  set_grads();
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 0.0), norm, 1e-6 * norm);  // measure only
  EXPECT_NEAR(a.grad()[0][0].item<double>(), ga[0], 1e-7);
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 10 * norm), norm, 1e-6 * norm);  // below: untouched
  EXPECT_NEAR(a.grad()[0][0].item<double>(), ga[0], 1e-7);
  const double max_norm = norm / 4;
  EXPECT_NEAR(clip_grad_norm({a, b, c}, max_norm), norm, 1e-6 * norm);
  const double coef = max_norm / (norm + 1e-6);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(b.grad()[i].item<double>(), gb[i] * coef, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 0.0), max_norm, 1e-5 * max_norm);
  // LibTorch 1.13's clip_grad_norm_ also returns the norm before clipping.
  set_grads();
  EXPECT_NEAR(torch::nn::utils::clip_grad_norm_({a, b}, max_norm), norm, 1e-6 * norm);
  EXPECT_NEAR(b.grad()[0].item<double>(), gb[0] * coef, 1e-6);
  // A non-finite norm leaves the gradients alone; negative max_norm throws.
  set_grads();
  b.mutable_grad()[1] = std::nan("");
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, max_norm)));
  EXPECT_NEAR(a.grad()[0][0].item<double>(), ga[0], 1e-7);
  EXPECT_TRUE(contains(error_of([&] { clip_grad_norm({a}, -1.0); }), "max_norm must be >= 0"));
  EXPECT_EQ(clip_grad_norm({c}, 1.0), 0.0);
}

TEST(GradsFinite, DetectsNanAndInfAndSkipsMissingGradients) {
  auto a = torch::zeros({4}).set_requires_grad(true);
  auto b = torch::zeros({2, 2}).set_requires_grad(true);
  auto c = torch::zeros({3}).set_requires_grad(true);
  EXPECT_TRUE(grads_finite({a, b, c}));
  a.mutable_grad() = torch::ones({4});
  b.mutable_grad() = torch::ones({2, 2}) * 1e30;
  EXPECT_TRUE(grads_finite({a, b, c}));
  b.mutable_grad()[1][1] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(grads_finite({a, b, c}));
  b.mutable_grad()[1][1] = std::nan("");
  EXPECT_FALSE(grads_finite({a, b, c}));
  b.mutable_grad()[1][1] = 0;
  EXPECT_TRUE(grads_finite({a, b, c}));
}

// ---- optimizer state ---------------------------------------------------------------

// A few AdamW steps of a tiny reward model on fixed pairs.
struct TrainRun {
  std::shared_ptr<RewardModel> model;
  std::unique_ptr<torch::optim::AdamW> opt;
  TrainRun(double lr = 1e-2) {
    model = create_reward_model(tiny_config("LlamaForSequenceClassification"));
    model->init_weights(5, 0.2);
    opt = make_adamw(*model, AdamWOptions{lr, {0.9, 0.999}, 1e-8, 0.1});
  }
  void steps(int n) {
    const auto batch =
        PackedBatch::from_sequences({{5, 9, 13, 2}, {5, 9, 7}, {11, 3}, {11, 3, 8, 8, 1}});
    for (int i = 0; i < n; ++i) {
      opt->zero_grad();
      compute_pair_loss(model->forward(batch), at::Tensor()).loss.backward();
      clip_grad_norm(*model, 1.0);
      opt->step();
    }
  }
  void copy_weights_from(RewardModel& other) {
    torch::NoGradGuard no_grad;
    auto src = other.named_parameters();
    for (auto& item : model->named_parameters()) item.value().copy_(src[item.key()]);
  }
  void expect_same_weights(RewardModel& other) {
    auto theirs = other.named_parameters();
    for (auto& item : model->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), theirs[item.key()])) << item.key();
    }
  }
};

TEST(OptimizerState, ResumeIsBitExact) {
  TempDir dir;
  TrainRun a;
  a.steps(3);
  save_optimizer_state(*a.opt, dir.file("optimizer.pt"));
  TrainRun b(5e-3);  // a fresh process: new tensors, other lr
  b.copy_weights_from(*a.model);
  load_optimizer_state(*b.opt, dir.file("optimizer.pt"));
  // Options are not restored by LibTorch: the caller's lr stays.
  EXPECT_EQ(get_lr(*b.opt), 5e-3);
  set_lr(*b.opt, 1e-2);
  a.steps(4);
  b.steps(4);
  a.expect_same_weights(*b.model);
  // Without the state, the same resume diverges (the test can tell).
  TrainRun c;
  c.steps(3);
  TrainRun d;
  d.copy_weights_from(*c.model);
  c.steps(1);
  d.steps(1);
  EXPECT_FALSE(torch::equal(c.model->named_parameters()["score.weight"],
                            d.model->named_parameters()["score.weight"]));
}

TEST(OptimizerState, LibTorchSerializeRoundTripsAdamWBitExactly) {
  TempDir dir;
  TrainRun a;
  a.steps(2);
  torch::save(*a.opt, dir.file("plain.pt"));
  TrainRun b;
  b.copy_weights_from(*a.model);
  torch::load(*b.opt, dir.file("plain.pt"));
  a.steps(3);
  b.steps(3);
  a.expect_same_weights(*b.model);
}

TEST(OptimizerState, LayoutMismatchAndMissingFileAreClearErrors) {
  TempDir dir;
  TrainRun a;
  a.steps(1);
  save_optimizer_state(*a.opt, dir.file("optimizer.pt"));
  auto config = tiny_config("LlamaForSequenceClassification");
  config.hidden_size = 16;
  auto other = create_reward_model(config);
  auto opt = make_adamw(*other, AdamWOptions{});
  auto msg = error_of([&] { load_optimizer_state(*opt, dir.file("optimizer.pt")); });
  EXPECT_TRUE(contains(msg, "loading optimizer state")) << msg;
  EXPECT_TRUE(contains(msg, "group 0 parameter 0: shape [64, 32] in the file, [64, 16]")) << msg;
  msg = error_of([&] { load_optimizer_state(*opt, dir.file("missing.pt")); });
  EXPECT_TRUE(contains(msg, "no such file")) << msg;
}

}  // namespace
}  // namespace openrm
