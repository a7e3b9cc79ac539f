// RoPE against closed forms: inverse frequencies for each scaling type, and
// the rotation it applies.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "models/rope.h"

namespace openrm {
namespace {

TEST(Rope, DefaultInverseFrequenciesArePowersOfTheta) {
  // dim 8, theta 10000: theta^(-2i/8) = 1, 0.1, 0.01, 0.001.
  auto inv = rope_inverse_frequencies(8, 10000.0, RopeScaling{});
  ASSERT_EQ(inv.sizes(), (std::vector<int64_t>{4}));
  const double expected[] = {1.0, 0.1, 0.01, 0.001};
  // fp32: within a few units in the last place.
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(inv[i].item<double>(), expected[i], 3e-7 * expected[i]) << i;
  EXPECT_EQ(inv.scalar_type(), at::kFloat);
}

TEST(Rope, LinearScalingDividesFrequenciesByFactor) {
  RopeScaling linear;
  linear.type = RopeType::kLinear;
  linear.factor = 4.0;
  auto base = rope_inverse_frequencies(16, 500000.0, RopeScaling{});
  auto scaled = rope_inverse_frequencies(16, 500000.0, linear);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(scaled[i].item<double>(), base[i].item<double>() / 4.0, 1e-12) << i;
  }
}

// Llama 3.1's rule, written out per frequency in double precision: long
// wavelengths (> original_len / low_freq_factor) are divided by factor,
// short ones (< original_len / high_freq_factor) kept, and the band between
// interpolated with s = (original_len / wavelength - low) / (high - low).
double llama3_expected(double inv_freq, const RopeScaling& s) {
  const double wavelength = 2 * M_PI / inv_freq;
  const double low_wavelength = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelength = s.original_max_position_embeddings / s.high_freq_factor;
  if (wavelength < high_wavelength) return inv_freq;
  if (wavelength > low_wavelength) return inv_freq / s.factor;
  const double smooth = (s.original_max_position_embeddings / wavelength - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  return (1 - smooth) * inv_freq / s.factor + smooth * inv_freq;
}

TEST(Rope, Llama3ScalingCoversAllThreeBands) {
  RopeScaling s;
  s.type = RopeType::kLlama3;
  s.factor = 8.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 64;  // bands: wavelength < 16, 16..64, > 64
  const int64_t dim = 16;
  auto base = rope_inverse_frequencies(dim, 10000.0, RopeScaling{});
  auto scaled = rope_inverse_frequencies(dim, 10000.0, s);
  int short_band = 0, middle_band = 0, long_band = 0;
  for (int i = 0; i < dim / 2; ++i) {
    const double f = base[i].item<double>();
    const double wavelength = 2 * M_PI / f;
    short_band += wavelength < 16;
    long_band += wavelength > 64;
    middle_band += wavelength >= 16 && wavelength <= 64;
    EXPECT_NEAR(scaled[i].item<double>(), llama3_expected(f, s), 1e-6 * f) << "frequency " << i;
  }
  EXPECT_GT(short_band, 0);
  EXPECT_GT(middle_band, 0);
  EXPECT_GT(long_band, 0);
}

TEST(Rope, CosSinTablesRepeatOverBothHalves) {
  auto inv = torch::tensor({1.0f, 0.25f});
  auto pos = torch::tensor({0L, 3L, 7L});
  auto [cos, sin] = rope_cos_sin(inv, pos, at::kFloat);
  ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{3, 4}));
  const double p[] = {0, 3, 7}, f[] = {1.0, 0.25};
  for (int t = 0; t < 3; ++t) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(cos[t][i].item<double>(), std::cos(p[t] * f[i % 2]), 1e-6);
      EXPECT_NEAR(sin[t][i].item<double>(), std::sin(p[t] * f[i % 2]), 1e-6);
    }
  }
}

TEST(Rope, RotatesEachPairOfHalvesByPositionTimesFrequency) {
  // dim 4 pairs element 0 with 2 and 1 with 3. A unit vector on element 0 at
  // position p turns into (cos(p f0), 0, sin(p f0), 0).
  auto inv = torch::tensor({1.0f, 0.01f});
  auto pos = torch::tensor({5L});
  auto [cos, sin] = rope_cos_sin(inv, pos, at::kFloat);
  auto x = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}).view({1, 1, 4});
  auto y = apply_rope(x, cos, sin);
  EXPECT_NEAR(y[0][0][0].item<double>(), std::cos(5.0), 1e-6);
  EXPECT_NEAR(y[0][0][1].item<double>(), 0.0, 1e-7);
  EXPECT_NEAR(y[0][0][2].item<double>(), std::sin(5.0), 1e-6);
  EXPECT_NEAR(y[0][0][3].item<double>(), 0.0, 1e-7);
  // A unit vector on element 3 (second half, pair 1) turns the other way:
  // (0, -sin(p f1), 0, cos(p f1)).
  auto x3 = torch::tensor({0.0f, 0.0f, 0.0f, 1.0f}).view({1, 1, 4});
  auto y3 = apply_rope(x3, cos, sin);
  EXPECT_NEAR(y3[0][0][1].item<double>(), -std::sin(0.05), 1e-6);
  EXPECT_NEAR(y3[0][0][3].item<double>(), std::cos(0.05), 1e-6);
}

TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  torch::manual_seed(3);
  auto inv = rope_inverse_frequencies(8, 10000.0, RopeScaling{});
  auto q = torch::randn({1, 1, 8}), k = torch::randn({1, 1, 8});
  auto rotated_dot = [&](int64_t m, int64_t n) {
    auto [cm, sm] = rope_cos_sin(inv, torch::tensor({m}), at::kFloat);
    auto [cn, sn] = rope_cos_sin(inv, torch::tensor({n}), at::kFloat);
    return (apply_rope(q, cm, sm) * apply_rope(k, cn, sn)).sum().item<double>();
  };
  EXPECT_NEAR(rotated_dot(7, 3), rotated_dot(104, 100), 1e-4);
  EXPECT_NEAR(rotated_dot(3, 3), (q * k).sum().item<double>(), 1e-5);
}

}  // namespace
}  // namespace openrm
