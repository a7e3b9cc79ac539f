// Bradley-Terry, reward centering and Plackett-Luce losses.
#include "openrm/train/losses.h"

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "openrm/error.h"

namespace openrm {
namespace {

// float64 stays float64; everything else is computed in float32.
c10::ScalarType compute_dtype(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// A (N) or (N, 1) tensor as a (N) tensor in the compute dtype.
at::Tensor as_vector(const at::Tensor& t, const char* where, const char* what) {
  if (!t.defined()) throw Error(std::string(where) + ": " + what + " is undefined");
  if (t.dim() == 2 && t.size(1) == 1) return as_vector(t.reshape({-1}), where, what);
  if (t.dim() != 1) {
    throw Error(std::string(where) + ": " + what + " must have shape (N) or (N, 1), got " +
                std::to_string(t.dim()) + " dimensions");
  }
  if (!at::isFloatingType(t.scalar_type())) {
    throw Error(std::string(where) + ": " + what + " must be a floating-point tensor");
  }
  return t.to(compute_dtype(t));
}

void check_pair_sizes(const char* where, const at::Tensor& chosen, const at::Tensor& rejected) {
  if (chosen.numel() != rejected.numel()) {
    throw Error(std::string(where) + ": reward_chosen has " + std::to_string(chosen.numel()) +
                " elements but reward_rejected has " + std::to_string(rejected.numel()));
  }
  if (chosen.numel() == 0) throw Error(std::string(where) + ": no pairs (empty reward tensors)");
}

// -log sigmoid(d), elementwise; log_sigmoid is exact for any |d|.
at::Tensor neg_log_sigmoid(const at::Tensor& d) { return -at::log_sigmoid(d); }

// Per-row Plackett-Luce losses of a (n, k) matrix of rewards, best first.
at::Tensor plackett_luce_rows(const at::Tensor& m) {
  const auto k = m.size(1);
  // lse[:, i] = logsumexp(m[:, i:]), a reverse cumulative logsumexp.
  at::Tensor lse = at::logcumsumexp(m.flip({1}), 1).flip({1});
  // The last term (i = k - 1) is r - logsumexp(r) = 0: left out.
  return -(m.narrow(1, 0, k - 1) - lse.narrow(1, 0, k - 1)).sum(1);
}

}  // namespace

at::Tensor bradley_terry_loss(const at::Tensor& reward_chosen, const at::Tensor& reward_rejected,
                              const at::Tensor& margin) {
  const char* where = "bradley_terry_loss";
  at::Tensor c = as_vector(reward_chosen, where, "reward_chosen");
  at::Tensor r = as_vector(reward_rejected, where, "reward_rejected");
  check_pair_sizes(where, c, r);
  at::Tensor d = c - r.to(c.scalar_type());
  if (margin.defined()) {
    at::Tensor m = as_vector(margin, where, "margin");
    if (m.numel() != c.numel()) {
      throw Error(std::string(where) + ": margin has " + std::to_string(m.numel()) +
                  " elements but there are " + std::to_string(c.numel()) + " pairs");
    }
    d = d - m.to(d.device(), d.scalar_type());
  }
  return neg_log_sigmoid(d).mean();
}

at::Tensor center_rewards_term(const at::Tensor& reward_chosen, const at::Tensor& reward_rejected,
                               double coefficient) {
  const char* where = "center_rewards_term";
  if (!(coefficient >= 0.0)) {
    throw Error(std::string(where) + ": center_rewards_coefficient must be >= 0, got " +
                std::to_string(coefficient));
  }
  at::Tensor c = as_vector(reward_chosen, where, "reward_chosen");
  at::Tensor r = as_vector(reward_rejected, where, "reward_rejected");
  check_pair_sizes(where, c, r);
  if (coefficient == 0.0) return at::zeros({}, c.options());
  return (c + r.to(c.scalar_type())).pow(2).mean() * coefficient;
}

at::Tensor plackett_luce_loss(const at::Tensor& rewards) {
  return plackett_luce_loss(std::vector<at::Tensor>{rewards});
}

at::Tensor plackett_luce_loss(const std::vector<at::Tensor>& records) {
  const char* where = "plackett_luce_loss";
  if (records.empty()) throw Error(std::string(where) + ": no records");
  // Records grouped by size, so each size is one (n, k) computation.
  std::map<std::int64_t, std::vector<at::Tensor>> by_size;
  c10::ScalarType dtype = at::kFloat;
  for (std::size_t j = 0; j < records.size(); ++j) {
    const std::string what = "record " + std::to_string(j);
    at::Tensor r = as_vector(records[j], where, what.c_str());
    if (r.numel() < 2) {
      throw Error(std::string(where) + ": " + what + " has " + std::to_string(r.numel()) +
                  " rewards; a ranking needs at least 2");
    }
    if (r.scalar_type() == at::kDouble) dtype = at::kDouble;
    by_size[r.numel()].push_back(r);
  }
  at::Tensor total;
  for (auto& [k, group] : by_size) {
    for (auto& r : group) r = r.to(dtype);
    at::Tensor sum = plackett_luce_rows(at::stack(group)).sum();
    total = total.defined() ? total + sum : sum;
  }
  return total / static_cast<double>(records.size());
}

at::Tensor plackett_luce_loss(const at::Tensor& rewards, const std::vector<std::int64_t>& offsets) {
  const char* where = "plackett_luce_loss";
  at::Tensor flat = as_vector(rewards, where, "rewards");
  if (offsets.size() < 2) {
    throw Error(std::string(where) + ": offsets must hold at least 2 entries (one record), got " +
                std::to_string(offsets.size()));
  }
  if (offsets.front() != 0 || offsets.back() != flat.numel()) {
    throw Error(std::string(where) + ": offsets must run from 0 to the number of rewards (" +
                std::to_string(flat.numel()) + "), got " + std::to_string(offsets.front()) +
                " .. " + std::to_string(offsets.back()));
  }
  std::vector<at::Tensor> records;
  records.reserve(offsets.size() - 1);
  for (std::size_t j = 0; j + 1 < offsets.size(); ++j) {
    if (offsets[j + 1] < offsets[j]) {
      throw Error(std::string(where) + ": offsets decrease at entry " + std::to_string(j + 1) +
                  " (" + std::to_string(offsets[j]) + " then " + std::to_string(offsets[j + 1]) +
                  ")");
    }
    records.push_back(flat.narrow(0, offsets[j], offsets[j + 1] - offsets[j]));
  }
  return plackett_luce_loss(records);
}

PairLoss compute_pair_loss(const at::Tensor& rewards_interleaved, const at::Tensor& margins,
                           const PairLossOptions& options) {
  const char* where = "compute_pair_loss";
  at::Tensor flat = as_vector(rewards_interleaved, where, "rewards");
  const auto n = flat.numel();
  if (n == 0 || n % 2 != 0) {
    throw Error(std::string(where) +
                ": rewards must hold chosen, rejected, chosen, ... for at least one pair "
                "(an even, positive count), got " + std::to_string(n));
  }
  at::Tensor chosen = flat.slice(0, 0, n, 2);
  at::Tensor rejected = flat.slice(0, 1, n, 2);
  if (margins.defined() && margins.numel() != n / 2) {
    throw Error(std::string(where) + ": margins has " + std::to_string(margins.numel()) +
                " elements but the batch has " + std::to_string(n / 2) + " pairs");
  }
  PairLoss out;
  out.bt_loss = bradley_terry_loss(chosen, rejected, options.use_margin ? margins : at::Tensor());
  out.center_term = center_rewards_term(chosen, rejected, options.center_rewards_coefficient);
  out.loss = options.center_rewards_coefficient == 0.0 ? out.bt_loss
                                                       : out.bt_loss + out.center_term;
  out.bt_loss = out.bt_loss.detach();
  out.center_term = out.center_term.detach();
  at::Tensor c = chosen.detach();
  at::Tensor r = rejected.detach();
  out.accuracy = c.gt(r).to(c.scalar_type()).mean();
  out.mean_margin = (c - r).mean();
  return out;
}

}  // namespace openrm
