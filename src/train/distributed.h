// Data-parallel training on PyTorch's c10d: a process group (Gloo on the
// CPU, NCCL on CUDA) met through a TCPStore, gradient buckets summed over the
// ranks while backward runs, and failure reports that name the rank at
// fault. Internal to the trainer; docs/distributed.md has the user's side.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "openrm/train/distributed.h"

namespace openrm::detail {

// Whether this build has a c10d backend for `device` ("gloo" for the CPU,
// "nccl" for CUDA); "" when it has none.
std::string c10d_backend_for(const c10::Device& device);

class Communicator {
 public:
  // Rendezvous: rank 0 serves a TCPStore at MASTER_ADDR:MASTER_PORT, every
  // rank connects to it, then the process group forms. Every wait (the
  // rendezvous, each collective) ends after `timeout` with an openrm::Error
  // that names the rank(s) at fault where they can be told.
  Communicator(const DistributedEnv& env, const c10::Device& device, std::chrono::milliseconds timeout);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int world_size() const;
  const std::string& backend() const;

  // Sums `t` over the ranks in place; `what` names the step in errors.
  void all_reduce_sum(at::Tensor& t, const std::string& what);
  // Starts a sum of `t` in place; collect it with wait_all. Every rank must
  // start the same sums in the same order.
  void start_all_reduce_sum(at::Tensor t);
  void wait_all(const std::string& what);
  void barrier(const std::string& what);
  // Rank 0's values of `tensors` (in place) on every rank.
  void broadcast_from_rank0(std::vector<at::Tensor>& tensors, const std::string& what);
  // Rank 0's `value` under `key`, on every rank.
  std::string share_from_rank0(const std::string& key, const std::string& value);
  // Where this rank is (e.g. "step 7"); a failure report says where each rank was.
  void mark(const std::string& where);
  // Tells the other ranks why this one stops (their errors quote it).
  void report_failure(const std::string& message) noexcept;

 private:
  [[noreturn]] void fail(const std::string& what, const std::exception& e);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sums the gradients of `params` over the ranks in buckets of about
// `bucket_bytes`, the last parameters first (the order backward reaches
// them). Armed before the last backward of a step, a bucket is sent as soon
// as all its gradients are final, while backward goes on; finish() sends
// the rest and waits. How many times backward delivers each gradient is
// learnt on the first armed step (a layer recomputed under gradient
// checkpointing delivers in its own pass); a step that breaks that pattern
// is summed again whole after the backward, never wrongly.
class GradientReducer {
 public:
  GradientReducer(Communicator& comm, std::vector<at::Tensor> params, std::int64_t bucket_bytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void arm();
  // After the step's backward passes (or none, for a rank with no pairs):
  // every rank's gradients summed into each parameter's grad. `stats` (a
  // CPU double tensor) is summed over the ranks too, in the same exchange.
  void finish(at::Tensor& stats, const std::string& what);
  std::int64_t buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits a micro-batch's pairs over the ranks by their tokens (longest
// first to the least loaded rank; ties to the lower rank): rank r's share,
// in the batch's order. Every rank computes the same split.
std::vector<std::int64_t> rank_share(const std::vector<std::int64_t>& indices,
                                     const std::vector<std::int64_t>& tokens, int rank, int world_size);

}  // namespace openrm::detail
