// Training losses of reward models, on tensors and differentiable: the
// Bradley-Terry pair loss (with an optional per-pair margin), TRL's reward
// centering term, and the Plackett-Luce loss of ranked records.
// docs/training.md gives the exact formulas.
//
// Every loss is computed in float32 whatever the input dtype (bfloat16 and
// float16 rewards are promoted first), or in float64 when the input is
// float64. Reward vectors may be given as (N) or (N, 1), the shape a reward
// model with one label returns. Size mismatches and empty inputs throw
// openrm::Error naming the sizes.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace openrm {

// mean_p -log sigmoid(r_c[p] - r_r[p] - m[p]), computed as
// mean_p softplus(-(r_c - r_r - m)) through log_sigmoid, so it is finite and
// exact for any |difference| (no log(sigmoid(x)), which gives inf for
// x < -104 in float32). `margin` may be undefined (no margin); otherwise it
// must have P elements. Returns a 0-dim tensor.
at::Tensor bradley_terry_loss(const at::Tensor& reward_chosen, const at::Tensor& reward_rejected,
                              const at::Tensor& margin = {});

// TRL RewardTrainer's center_rewards_coefficient term:
// coefficient * mean_p (r_c[p] + r_r[p])^2. It pulls the mean reward of a
// pair towards 0 and leaves the difference (what BT learns) free. Returns a
// 0-dim tensor (zero when coefficient == 0). Throws for a negative
// coefficient.
at::Tensor center_rewards_term(const at::Tensor& reward_chosen, const at::Tensor& reward_rejected,
                               double coefficient);

// Plackett-Luce negative log-likelihood of one ranked record, rewards (K)
// best first, K >= 2:
//   -sum_{i=0}^{K-2} [ r_i - logsumexp(r_i, ..., r_{K-1}) ]
// (the i = K-1 term is identically 0). Not normalised by K - 1: it is the
// log-likelihood of the whole ranking, so for K = 2 it equals the
// Bradley-Terry loss of (r_0, r_1).
at::Tensor plackett_luce_loss(const at::Tensor& rewards);

// The mean over records of the per-record loss above, records of any sizes
// (each >= 2). Records of equal size are computed together.
at::Tensor plackett_luce_loss(const std::vector<at::Tensor>& records);
// The same with the records laid end to end in `rewards` (N):
// record j is rewards[offsets[j] .. offsets[j+1]), offsets (R+1) increasing
// from 0 to N.
at::Tensor plackett_luce_loss(const at::Tensor& rewards, const std::vector<std::int64_t>& offsets);

struct PairLossOptions {
  // TRL's center_rewards_coefficient (0: no centering term; TRL's
  // documentation suggests 0.01).
  double center_rewards_coefficient = 0.0;
  // Subtract the pairs' margins inside the BT loss when margins are given.
  bool use_margin = true;
};

// What compute_pair_loss returns. Every field is a 0-dim tensor on the
// rewards' device; only `loss` carries autograd history, the rest are
// detached (read them with .item<double>() when logging).
struct PairLoss {
  at::Tensor loss;         // bt_loss + center_term: the tensor to backward()
  at::Tensor bt_loss;      // bradley_terry_loss (with margins if used)
  at::Tensor center_term;  // center_rewards_term (0 when the coefficient is 0)
  at::Tensor accuracy;     // mean(r_c > r_r); a tie counts as wrong
  at::Tensor mean_margin;  // mean(r_c - r_r), without the data's margin
};

// The loss of a batch packed by pack_pairs: `rewards_interleaved` (2P) or
// (2P, 1) holds chosen_0, rejected_0, chosen_1, rejected_1, ... (row 2k is
// pair k's chosen side). `margins` (P) may be undefined; it is used only
// when options.use_margin is set.
PairLoss compute_pair_loss(const at::Tensor& rewards_interleaved, const at::Tensor& margins,
                           const PairLossOptions& options = {});

}  // namespace openrm
