// bench_train: how fast a reward model trains on CPU, and how close the
// training step's matrix products come to the machine's GEMM speed, measured
// in one run.
//
//   bench_train [--hidden 512] [--layers 4] [--heads N] [--kv-heads N] [--intermediate N]
//               [--vocab 32000] [--steps 4] [--warmup 1] [--max-tokens 8192]
//               [--max-length 1024] [--data FILE] [--tokenizer PATH] [--format hh]
//               [--threads N] [--gemm 2048] [--gemm-repeat 5] [--profile-steps 1]
//               [--lora R] [--world-size N] [--json OUT]
//
// --lora R: LoRA adapters of rank R (alpha 2R) on every attention and MLP
// projection, the base frozen, the head trained (openrm-train --lora-rank).
// Last, unless --no-prefix-sharing: the pairs of the warm-up and timed
// micro-batches trained with and without prefix sharing (the pair's common
// prompt once), each re-batched under the same budget of rows computed, on
// fresh models of the same seed, alternating for --sharing-rounds rounds;
// both rates in real tokens/s and the gain.
// --world-size N: data parallel on c10d Gloo, as openrm-train under
// torchrun: the run first benchmarks 1 process with N x --threads threads,
// then N processes (ranks on loopback) with --threads each, on the same
// batches, and prints both and the ratio. Each rank takes its token-balanced
// share of every micro-batch and the gradients are summed in buckets while
// backward runs (their wait counts in "backward").
//
// A random-init Llama (--arch qwen3: Qwen3) reward model of the given shape takes optimizer steps
// exactly as the trainer's step does (src/train/trainer.cpp, grad_accum 1):
// make_pair_batches (token budget, padding counted), pack_pairs,
// RewardModel::forward, compute_pair_loss, backward, grads_finite,
// clip_grad_norm (1.0) and AdamW from make_adamw. The pairs' lengths are those
// of the hh-rlhf test pairs tokenized with the Llama-2 tokenizer (defaults in
// ../shared/data) when both files exist, otherwise synthetic log-normal
// lengths (the output says which). The first --warmup steps are not timed.
//
// Printed: tokens/s and pairs/s; the time split between the phases of a step;
// the training step's matmul FLOP/s counted analytically (formula printed);
// the FLOP/s of a large fp32 GEMM (n x n x n, best of --gemm-repeat) and the
// ratio; GEMMs at the model's MLP and attention shapes; the load average; and, from --profile-steps extra
// steps run under an at::RecordFunction observer (not timed), the ops that
// take the time.
#include <ATen/record_function.h>
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "openrm/data/batching.h"
#include "openrm/data/preference.h"
#include "openrm/data/tokenize.h"
#include "openrm/error.h"
#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "openrm/logging.h"
#include "openrm/models/pooling.h"
#include "openrm/models/reward_model.h"
#include "openrm/runtime.h"
#include "openrm/tokenizer/tokenizer.h"
#include "openrm/train/losses.h"
#include "openrm/train/optim.h"
#include "openrm/models/lora.h"
#include "openrm/train/distributed.h"
#include "train/distributed.h"
#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include "bench_common.h"
#include "tool_main.h"

namespace {

using namespace openrm::bench;

struct BenchOptions : CommonOptions {
  std::int64_t max_tokens = 8192;  // the trainer's default micro-batch budget
  std::int64_t steps = 4;
  std::int64_t warmup = 1;
  std::int64_t profile_steps = 1;
  double lr = 1e-4;
  std::int64_t lora = 0;
  int world_size = 1;
  bool no_prefix_sharing = false;
  std::int64_t sharing_rounds = 2;
};

// ---- FLOPs -------------------------------------------------------------------

struct BatchWork {
  std::int64_t pairs = 0, sequences = 0, tokens = 0, padded_tokens = 0, max_len = 0;
  double flops_linear = 0, flops_attention = 0;  // forward only
  double forward_flops() const { return flops_linear + flops_attention; }
  double train_flops() const { return 3.0 * forward_flops(); }  // backward ~ 2x forward
};

// Forward matmul FLOPs of one packed batch:
//   linear:    2 * T * (linear params per layer) * layers  + 2 * B * hidden (score head)
//   attention: 2 * 2 * sum(len^2) * heads * head_dim * layers (QK^T and PV; the CPU path
//              runs attention per sequence, over the whole len x len square, masked)
BatchWork batch_work(const Shape& s, const openrm::PackedBatch& packed, std::int64_t pairs) {
  BatchWork w;
  w.pairs = pairs;
  w.sequences = packed.num_sequences();
  w.tokens = packed.num_tokens();
  w.max_len = packed.max_seqlen;
  w.padded_tokens = w.sequences * w.max_len;
  w.flops_linear = 2.0 * static_cast<double>(w.tokens) * static_cast<double>(s.linear_params_per_layer()) *
                       static_cast<double>(s.layers) +
                   2.0 * static_cast<double>(w.sequences) * static_cast<double>(s.hidden);
  double squares = 0;
  for (const auto len : packed.lengths) squares += static_cast<double>(len) * static_cast<double>(len);
  w.flops_attention = 4.0 * squares * static_cast<double>(s.heads * s.head_dim) * static_cast<double>(s.layers);
  return w;
}

// ---- an op-level profile through at::RecordFunction --------------------------------

struct OpStat {
  std::int64_t calls = 0;
  double self_s = 0, total_s = 0;
};

struct Frame {
  Clock::time_point start;
  double child_s = 0;
};

thread_local std::vector<Frame> t_frames;
std::mutex g_profile_mutex;
std::map<std::string, OpStat> g_profile;

struct TimedContext : at::ObserverContext {};

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction&) {
  t_frames.push_back({Clock::now(), 0.0});
  return std::make_unique<TimedContext>();
}

void on_op_end(const at::RecordFunction& fn, at::ObserverContext*) {
  if (t_frames.empty()) return;
  const Frame frame = t_frames.back();
  t_frames.pop_back();
  const double total = seconds_since(frame.start);
  if (!t_frames.empty()) t_frames.back().child_s += total;
  std::lock_guard<std::mutex> lock(g_profile_mutex);
  OpStat& s = g_profile[fn.name()];
  ++s.calls;
  s.total_s += total;
  s.self_s += total - frame.child_s;
}

bool is_matmul_op(const std::string& name) {
  static const char* kOps[] = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                               "aten::addbmm", "aten::mv", "aten::addmv", "aten::dot"};
  for (const char* op : kOps) {
    if (name == op) return true;
  }
  return false;
}

// ---- the training step ------------------------------------------------------------

enum Phase { kData, kForward, kBackward, kGrads, kOptimizer, kPhases };
const char* kPhaseNames[kPhases] = {"pack batch", "forward + loss", "backward", "grad check + clip",
                                    "AdamW step + zero_grad"};

struct StepTimes {
  double phase[kPhases] = {0, 0, 0, 0, 0};
  double total() const {
    double t = 0;
    for (double p : phase) t += p;
    return t;
  }
};

class Stepper {
 public:
  Stepper(std::shared_ptr<openrm::RewardModel> model, const BenchOptions& o,
          openrm::detail::Communicator* comm = nullptr)
      : model_(std::move(model)), comm_(comm) {
    model_->train();
    auto groups = openrm::split_decay_groups(*model_, 0.0);
    openrm::AdamWOptions adam;
    adam.lr = o.lr;
    optimizer_ = openrm::make_adamw(groups, adam);
    params_ = groups.decay;
    params_.insert(params_.end(), groups.no_decay.begin(), groups.no_decay.end());
    if (comm_) {
      std::vector<at::Tensor> trainable;
      for (const auto& p : model_->parameters()) {
        if (p.requires_grad()) trainable.push_back(p);
      }
      reducer_ = std::make_unique<openrm::detail::GradientReducer>(*comm_, trainable, std::int64_t{25} << 20);
    }
  }

  // One optimizer step on one micro-batch, phase by phase as the trainer does it.
  // With `shared` (shared_prefix_lengths of `pairs`), the batch runs with
  // prefix sharing, as openrm-train runs it by default.
  StepTimes step(const std::vector<openrm::TokenizedPair>& pairs, const std::vector<std::int64_t>& batch,
                 double* loss_out, const std::vector<std::int64_t>* shared = nullptr) {
    StepTimes t;
    auto t0 = Clock::now();
    optimizer_->zero_grad();
    // Data parallel: this rank's share, weighted as a part of the whole batch.
    std::vector<std::int64_t> indices = batch;
    if (comm_) {
      std::vector<std::int64_t> tokens;
      for (auto i : batch) {
        const auto& p = pairs[static_cast<std::size_t>(i)];
        tokens.push_back(static_cast<std::int64_t>(p.chosen.size() + p.rejected.size()));
      }
      indices = openrm::detail::rank_share(batch, tokens, comm_->rank(), comm_->world_size());
    }
    const double weight = static_cast<double>(indices.size()) / static_cast<double>(batch.size());
    if (indices.empty()) {  // nothing to compute; still in the gradient sum
      at::Tensor stats = torch::zeros({1}, at::kDouble);
      reducer_->finish(stats, "a step");
      *loss_out = stats[0].item<double>();
      return finish_step(t, std::isfinite(*loss_out));
    }
    openrm::PackedBatch packed;
    std::vector<std::int64_t> rows;
    if (shared) {
      const openrm::PoolingRule rule{model_->pooling(), model_->config().pad_token_id, model_->config().eos_token_ids};
      openrm::SharedPairBatch b = openrm::pack_shared_pairs(pairs, indices, *shared, rule);
      packed = std::move(b.packed);
      rows = std::move(b.rows);
    } else {
      packed = openrm::pack_pairs(pairs, indices);
    }
    std::vector<float> margins;
    for (auto i : indices) margins.push_back(static_cast<float>(pairs[static_cast<std::size_t>(i)].margin));
    auto margin_tensor = torch::tensor(margins);
    t.phase[kData] = seconds_since(t0);

    t0 = Clock::now();
    at::Tensor rewards = shared ? model_->forward_rows(packed, rows) : model_->forward(packed);
    const openrm::PairLoss pl =
        openrm::compute_pair_loss(rewards.reshape({-1}).to(at::kFloat), margin_tensor, openrm::PairLossOptions{});
    const double loss = pl.loss.item<double>();
    t.phase[kForward] = seconds_since(t0);

    t0 = Clock::now();
    double step_loss = loss;
    if (comm_) {
      reducer_->arm();
      (pl.loss * weight).backward();
      at::Tensor stats = torch::full({1}, loss * weight, at::kDouble);
      reducer_->finish(stats, "a step");
      step_loss = stats[0].item<double>();
    } else {
      pl.loss.backward();
    }
    (void)pl.accuracy.item<double>();
    t.phase[kBackward] = seconds_since(t0);
    *loss_out = step_loss;
    return finish_step(t, std::isfinite(step_loss));
  }

  StepTimes finish_step(StepTimes t, bool finite_loss) {
    auto t0 = Clock::now();
    const bool finite = finite_loss && openrm::grads_finite(params_);
    if (finite) openrm::clip_grad_norm(params_, 1.0);
    t.phase[kGrads] = seconds_since(t0);

    t0 = Clock::now();
    if (finite) optimizer_->step();
    optimizer_->zero_grad();
    t.phase[kOptimizer] = seconds_since(t0);
    return t;
  }

 private:
  std::shared_ptr<openrm::RewardModel> model_;
  openrm::detail::Communicator* comm_ = nullptr;
  std::unique_ptr<openrm::detail::GradientReducer> reducer_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<at::Tensor> params_;
};

// --world-size N: this program again, 1 process with N x threads, then N
// ranks with `threads` each; both runs' figures and their ratio.
int compare_world_sizes(int argc, char** argv, const BenchOptions& o) {
  const int threads = o.threads > 0 ? o.threads : 1;
  std::vector<std::string> base;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--world-size" || a == "--threads" || a == "--json") {
      ++i;
      continue;
    }
    if (a.rfind("--world-size=", 0) == 0 || a.rfind("--threads=", 0) == 0 || a.rfind("--json=", 0) == 0) continue;
    base.push_back(a);
  }
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) throw openrm::Error("cannot find this program's path (/proc/self/exe)");
  exe[n] = '\0';
  const std::string dir = "/tmp/bench_train_world." + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const auto run = [&](int world, int t, const std::string& json) {
    const int port = 20000 + static_cast<int>(::getpid() % 20000);
    std::vector<pid_t> pids;
    for (int rank = 0; rank < world; ++rank) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        if (world > 1) {
          ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
          ::setenv("RANK", std::to_string(rank).c_str(), 1);
          ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
          ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
          ::setenv("MASTER_ADDR", "127.0.0.1", 1);
          ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
        }
        if (rank > 0) {
          const std::string log = dir + "/rank" + std::to_string(rank) + ".log";
          if (!std::freopen(log.c_str(), "w", stdout)) _exit(1);
        }
        std::vector<std::string> args = {exe};
        args.insert(args.end(), base.begin(), base.end());
        for (const std::string& a : {std::string("--threads"), std::to_string(t), std::string("--json"), json}) {
          args.push_back(a);
        }
        std::vector<char*> cargs;
        for (auto& a : args) cargs.push_back(a.data());
        cargs.push_back(nullptr);
        ::execv(exe, cargs.data());
        _exit(127);
      }
      pids.push_back(pid);
    }
    bool ok = true;
    for (pid_t pid : pids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (!ok) throw openrm::Error("a run with " + std::to_string(world) + " rank(s) failed (logs in " + dir + ")");
    return Json::parse(openrm::read_text_file(json));
  };
  std::printf("==== 1 process x %d threads\n", threads * o.world_size);
  std::fflush(stdout);
  const Json one = run(1, threads * o.world_size, dir + "/one.json");
  std::printf("\n==== %d ranks (c10d Gloo, loopback) x %d thread(s)\n", o.world_size, threads);
  std::fflush(stdout);
  const Json many = run(o.world_size, threads, dir + "/many.json");
  const double a = one.at("tokens_per_s").get<double>(), b = many.at("tokens_per_s").get<double>();
  std::printf("\ndata parallel: 1 process x %d threads %.0f tokens/s; %d ranks x %d thread(s) %.0f tokens/s; "
              "ratio %.2fx (same batches, same machine, this run)\n",
              threads * o.world_size, a, o.world_size, threads, b, b / a);
  if (!o.json_out.empty()) {
    openrm::write_file_atomic(o.json_out, Json{{"one_process", one}, {"ranks", many}, {"world_size", o.world_size},
                                               {"ratio", b / a}}.dump(2) + "\n");
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

// The model a run trains: random-init of `shape` from the seed, pooling the
// last token (what the trainer does without a pad id), with --lora R:
// rank-R adapters (alpha 2R) on every projection; `adapted` gets their
// count, `base_params` the parameters before them.
std::shared_ptr<openrm::RewardModel> make_train_model(const Shape& shape, const BenchOptions& o,
                                                      std::size_t* adapted = nullptr,
                                                      std::int64_t* base_params = nullptr) {
  auto model = make_model(shape, std::max<std::int64_t>(4096, o.max_length), o.seed);
  model->set_pooling(openrm::Pooling::kLastToken);
  if (base_params) *base_params = parameter_count(*model);
  if (o.lora > 0) {
    openrm::LoraOptions lora;
    lora.rank = o.lora;
    lora.alpha = 2.0 * static_cast<double>(o.lora);
    const auto layers = openrm::apply_lora(*model, lora, o.seed);
    if (adapted) *adapted = layers.size();
  }
  return model;
}

// Prefix sharing against openrm's packed path on the same pairs: those of
// the warm-up and timed micro-batches, re-batched by each path under the same
// budget of token rows computed (no padding counted: both attend per
// sequence), each path on its own fresh model of the same seed. The paths
// alternate, round by round, so a drift in the machine's speed hits both.
Json compare_prefix_sharing(const BenchOptions& o, const Shape& shape, const std::vector<openrm::TokenizedPair>& all,
                            const std::vector<std::vector<std::int64_t>>& batches) {
  std::vector<openrm::TokenizedPair> pairs;
  for (std::int64_t s = 0; s < o.warmup + o.steps; ++s) {
    for (const auto i : batches[static_cast<std::size_t>(s)]) pairs.push_back(all[static_cast<std::size_t>(i)]);
  }
  const auto shared = openrm::shared_prefix_lengths(pairs);
  openrm::BatchingOptions b;
  b.max_tokens = o.max_tokens;
  b.count_padding = false;
  b.seed = o.seed;
  struct Path {
    const char* name;
    const std::vector<std::int64_t>* shared;
    std::vector<std::vector<std::int64_t>> batches;
    std::shared_ptr<openrm::RewardModel> model;
    std::unique_ptr<Stepper> stepper;
    double seconds = 0;
    std::int64_t computed = 0;
  };
  Path paths[2] = {{"packed", nullptr, openrm::make_pair_batches(pairs, b), {}, {}, 0, 0},
                   {"prefix-shared", &shared, openrm::make_pair_batches(pairs, b, shared), {}, {}, 0, 0}};
  std::int64_t real = 0, saved = 0, sharing = 0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    real += static_cast<std::int64_t>(pairs[i].chosen.size() + pairs[i].rejected.size());
    saved += shared[i];
    sharing += shared[i] > 0;
  }
  for (auto& path : paths) {
    path.model = make_train_model(shape, o);
    path.stepper = std::make_unique<Stepper>(path.model, o);
    double loss = 0;
    path.stepper->step(pairs, path.batches[0], &loss, path.shared);  // warm-up
  }
  for (std::int64_t round = 0; round < o.sharing_rounds; ++round) {
    for (auto& path : paths) {
      double loss = 0;
      for (const auto& batch : path.batches) path.seconds += path.stepper->step(pairs, batch, &loss, path.shared).total();
    }
  }
  paths[0].computed = real;
  paths[1].computed = real - saved;
  std::printf("\nprefix sharing (--no-prefix-sharing: skipped): the %zu pairs of the first %lld micro-batches, "
              "%lld of them with a shared prompt (>= 16 tokens); %lld real tokens, %lld (%.1f%%) computed once "
              "instead of twice; budget %lld token rows computed; %lld round(s), one warm-up step each\n",
              pairs.size(), static_cast<long long>(o.warmup + o.steps), static_cast<long long>(sharing),
              static_cast<long long>(real), static_cast<long long>(saved),
              100.0 * static_cast<double>(saved) / static_cast<double>(real), static_cast<long long>(o.max_tokens),
              static_cast<long long>(o.sharing_rounds));
  std::printf("  %-14s %8s %14s %10s %14s\n", "path", "batches", "rows computed", "seconds", "real tokens/s");
  Json j = {{"pairs", pairs.size()}, {"pairs_sharing", sharing}, {"real_tokens", real}, {"shared_tokens", saved},
            {"rounds", o.sharing_rounds}};
  for (auto& path : paths) {
    const double rate = static_cast<double>(real * o.sharing_rounds) / path.seconds;
    std::printf("  %-14s %8zu %14lld %10.3f %14.0f\n", path.name, path.batches.size(),
                static_cast<long long>(path.computed), path.seconds, rate);
    j[path.name] = {{"batches", path.batches.size()}, {"rows_computed", path.computed}, {"seconds", path.seconds},
                    {"real_tokens_per_s", rate}};
  }
  const double gain = paths[0].seconds / paths[1].seconds;
  std::printf("  prefix sharing: %.2fx the packed path's tokens/s\n", gain);
  j["gain"] = gain;
  return j;
}

int main(int argc, char** argv) {
  BenchOptions o;
  CLI::App app{"Benchmark reward-model training steps on CPU against the machine's GEMM speed."};
  add_common_options(app, o);
  app.add_option("--steps", o.steps, "timed optimizer steps")->capture_default_str();
  app.add_option("--warmup", o.warmup, "untimed steps first")->capture_default_str();
  app.add_option("--profile-steps", o.profile_steps, "extra steps under the op profiler (0: none)")
      ->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "token budget of a micro-batch (sequences x longest)")
      ->capture_default_str();
  app.add_option("--synthetic-pairs", o.synthetic_pairs, "pairs drawn when the data is missing")
      ->capture_default_str();
  app.add_option("--lr", o.lr, "AdamW learning rate")->capture_default_str();
  app.add_option("--lora", o.lora, "LoRA adapters of this rank, the base frozen (0: full training)")
      ->capture_default_str();
  app.add_option("--world-size", o.world_size,
                 "data parallel: compare 1 process x N*threads with N ranks x threads (c10d Gloo)")
      ->capture_default_str();
  app.add_flag("--no-prefix-sharing", o.no_prefix_sharing,
               "skip the comparison of training with and without prefix sharing");
  app.add_option("--sharing-rounds", o.sharing_rounds,
                 "rounds of the prefix-sharing comparison (each runs both paths over the same pairs)")
      ->capture_default_str();
  return openrm::tools::run_tool("bench_train", app, argc, argv, [&] {
    const openrm::DistributedEnv env = openrm::read_distributed_env();
    if (o.world_size > 1 && !env.distributed()) {
      compare_world_sizes(argc, argv, o);
      return;
    }
    std::unique_ptr<openrm::detail::Communicator> comm;
    if (env.distributed()) {
      comm = std::make_unique<openrm::detail::Communicator>(env, c10::Device(c10::kCPU), std::chrono::seconds(600));
      o.profile_steps = 0;
    }
    if (o.hidden < 1 || o.layers < 1 || o.vocab < 2 || o.steps < 1 || o.warmup < 0 || o.profile_steps < 0 ||
        o.max_tokens < 1 || o.gemm < 1 || o.gemm_repeat < 1 || o.sharing_rounds < 1) {
      throw openrm::Error("--hidden, --layers, --steps, --max-tokens, --gemm, --gemm-repeat and --sharing-rounds must be >= 1, "
                          "--vocab >= 2, --warmup and --profile-steps >= 0");
    }
    const Setting setting = start_bench("bench_train", o.threads);
    const int threads = setting.threads;
    const double load_before = setting.load_before;
    const std::string& core = setting.openblas_core;

    // The pairs and their batches.
    Pairs data = load_pairs(o);
    openrm::BatchingOptions batching;
    batching.max_tokens = o.max_tokens;
    batching.seed = o.seed;
    const auto batches = openrm::make_pair_batches(data.pairs, batching);
    const std::int64_t needed = o.warmup + o.steps + o.profile_steps;
    if (static_cast<std::int64_t>(batches.size()) < needed) {
      throw openrm::Error("only " + std::to_string(batches.size()) + " micro-batches; lower --steps");
    }

    // The model.
    const Shape shape = make_shape(o);
    std::size_t adapted = 0;
    std::int64_t params_total = 0;
    auto model = make_train_model(shape, o, &adapted, &params_total);
    if (o.lora > 0) {
      std::int64_t trainable = 0;
      for (const auto& p : model->parameters()) {
        if (p.requires_grad()) trainable += p.numel();
      }
      std::printf("LoRA: rank %lld on %zu layers, %lld trainable parameters of %lld\n", static_cast<long long>(o.lora),
                  adapted, static_cast<long long>(trainable), static_cast<long long>(params_total));
    }
    Stepper stepper(model, o, comm.get());

    std::printf("data: %s\n", data.source.c_str());
    const Json lengths = length_stats(data.pairs);
    std::printf("sequence lengths: %s\n", lengths.dump().c_str());
    std::printf("model: %s\n", describe_model(shape, params_total).c_str());
    std::printf("steps: %lld warm-up + %lld timed (+ %lld profiled), one micro-batch of <= %lld padded tokens "
                "each, AdamW lr %g, clip 1.0\n",
                static_cast<long long>(o.warmup), static_cast<long long>(o.steps),
                static_cast<long long>(o.profile_steps), static_cast<long long>(o.max_tokens), o.lr);

    // Warm-up, then the timed steps.
    auto work_of = [&](std::size_t b) {
      return batch_work(shape, openrm::pack_pairs(data.pairs, batches[b]), static_cast<std::int64_t>(batches[b].size()));
    };
    double loss = 0;
    for (std::int64_t s = 0; s < o.warmup; ++s) stepper.step(data.pairs, batches[static_cast<std::size_t>(s)], &loss);
    StepTimes timed;
    BatchWork work;
    std::printf("\n%-5s %6s %6s %7s %8s %9s %9s %10s %10s\n", "step", "pairs", "seqs", "max_len", "tokens",
                "padded", "loss", "seconds", "GFLOP/s");
    Json steps_json = Json::array();
    for (std::int64_t s = o.warmup; s < o.warmup + o.steps; ++s) {
      const auto b = static_cast<std::size_t>(s);
      const BatchWork w = work_of(b);
      const StepTimes t = stepper.step(data.pairs, batches[b], &loss);
      for (int p = 0; p < kPhases; ++p) timed.phase[p] += t.phase[p];
      work.pairs += w.pairs;
      work.sequences += w.sequences;
      work.tokens += w.tokens;
      work.padded_tokens += w.padded_tokens;
      work.flops_linear += w.flops_linear;
      work.flops_attention += w.flops_attention;
      std::printf("%-5lld %6lld %6lld %7lld %8lld %9lld %9.4f %10.3f %10.1f\n", static_cast<long long>(s + 1),
                  static_cast<long long>(w.pairs), static_cast<long long>(w.sequences),
                  static_cast<long long>(w.max_len), static_cast<long long>(w.tokens),
                  static_cast<long long>(w.padded_tokens), loss, t.total(), w.train_flops() / t.total() / 1e9);
      steps_json.push_back({{"pairs", w.pairs}, {"sequences", w.sequences}, {"max_len", w.max_len},
                            {"tokens", w.tokens}, {"padded_tokens", w.padded_tokens}, {"seconds", t.total()},
                            {"train_flops", w.train_flops()}});
    }
    const double seconds = timed.total();
    const double tokens_per_s = static_cast<double>(work.tokens) / seconds;
    const double pairs_per_s = static_cast<double>(work.pairs) / seconds;
    const double achieved = work.train_flops() / seconds;

    // The reference GEMMs, same threads, same run.
    const double peak = gemm_flops(o.gemm, o.gemm, o.gemm, o.gemm_repeat);
    const std::int64_t typical_tokens = std::max<std::int64_t>(1, work.tokens / o.steps);
    const double mlp_gemm = gemm_flops(typical_tokens, shape.hidden, shape.intermediate, o.gemm_repeat);
    const std::int64_t typical_seqs = std::max<std::int64_t>(1, work.sequences / o.steps);
    std::int64_t typical_len = 0;
    for (const auto& st : steps_json) typical_len += st["max_len"].get<std::int64_t>();
    typical_len = std::max<std::int64_t>(1, typical_len / o.steps);
    const double attn_bmm = matmul_flops(typical_seqs * shape.heads, typical_len, shape.head_dim, typical_len, o.gemm_repeat);

    std::printf("\ntimed: %lld steps, %lld pairs, %lld tokens (%lld padded to the batch's longest, %.0f%% padding) "
                "in %.3f s\n",
                static_cast<long long>(o.steps), static_cast<long long>(work.pairs), static_cast<long long>(work.tokens),
                static_cast<long long>(work.padded_tokens),
                100.0 * (1.0 - static_cast<double>(work.tokens) / static_cast<double>(work.padded_tokens)), seconds);
    std::printf("training: %.0f tokens/s, %.2f pairs/s, %.2f s per step\n", tokens_per_s, pairs_per_s,
                seconds / static_cast<double>(o.steps));
    std::printf("phases: ");
    for (int p = 0; p < kPhases; ++p) {
      std::printf("%s %.1f%%%s", kPhaseNames[p], 100.0 * timed.phase[p] / seconds, p + 1 < kPhases ? ", " : "\n");
    }
    std::printf("matmul FLOPs per step = 3 x forward (backward ~ 2 x forward); forward = 2 * tokens * %lld "
                "(linear weights per layer) * %lld layers + 2 * 2 * sum over sequences of len^2 * %lld (heads x head_dim) "
                "* %lld layers (attention runs per sequence, unpadded)\n",
                static_cast<long long>(shape.linear_params_per_layer()), static_cast<long long>(shape.layers),
                static_cast<long long>(shape.heads * shape.head_dim), static_cast<long long>(shape.layers));
    std::printf("  timed steps: %.1f GFLOP (linear %.1f, attention %.1f)\n", work.train_flops() / 1e9,
                3 * work.flops_linear / 1e9, 3 * work.flops_attention / 1e9);
    std::printf("achieved matmul rate of the training step: %s\n", si(achieved, "FLOP/s").c_str());
    std::printf("fp32 GEMM %lld^3 (best of %d): %s\n", static_cast<long long>(o.gemm), o.gemm_repeat,
                si(peak, "FLOP/s").c_str());
    std::printf("fp32 GEMM at the MLP shape (%lld x %lld) @ (%lld x %lld): %s\n",
                static_cast<long long>(typical_tokens), static_cast<long long>(shape.hidden),
                static_cast<long long>(shape.hidden), static_cast<long long>(shape.intermediate),
                si(mlp_gemm, "FLOP/s").c_str());
    std::printf("fp32 batched GEMM at the attention shape (%lld x %lld x %lld) @ (%lld x %lld x %lld): %s\n",
                static_cast<long long>(typical_seqs * shape.heads), static_cast<long long>(typical_len),
                static_cast<long long>(shape.head_dim), static_cast<long long>(typical_seqs * shape.heads),
                static_cast<long long>(shape.head_dim), static_cast<long long>(typical_len),
                si(attn_bmm, "FLOP/s").c_str());
    std::printf("ratio: the training step reaches %.1f%% of the large GEMM's FLOP/s\n", 100.0 * achieved / peak);

    const double load_after = load_average();
    std::printf("1-minute load average: %.2f before, %.2f after the timed steps and GEMMs (%d hardware threads)\n", load_before,
                load_after, static_cast<int>(std::thread::hardware_concurrency()));
    Json out = {{"threads", threads},
                {"load_average_before", load_before},
                {"load_average_after", load_after},
                {"blas", openrm::blas_library_path()},
                {"openblas_core", core},
                {"data", data.describe},
                {"lengths", lengths},
                {"model", model_json(shape, params_total)},
                {"max_tokens", o.max_tokens},
                {"max_length", o.max_length},
                {"warmup_steps", o.warmup},
                {"steps", steps_json},
                {"seconds", seconds},
                {"tokens", work.tokens},
                {"padded_tokens", work.padded_tokens},
                {"pairs", work.pairs},
                {"tokens_per_s", tokens_per_s},
                {"pairs_per_s", pairs_per_s},
                {"train_flops", work.train_flops()},
                {"train_flops_linear", 3 * work.flops_linear},
                {"train_flops_attention", 3 * work.flops_attention},
                {"achieved_flops_per_s", achieved},
                {"gemm_n", o.gemm},
                {"gemm_flops_per_s", peak},
                {"mlp_gemm_flops_per_s", mlp_gemm},
                {"attention_bmm_flops_per_s", attn_bmm},
                {"fraction_of_gemm", achieved / peak}};
    Json phases;
    for (int p = 0; p < kPhases; ++p) phases[kPhaseNames[p]] = timed.phase[p] / seconds;
    out["phase_share"] = phases;

    // Where the time goes: steps under an op observer (slower, not timed above).
    if (o.profile_steps > 0) {
      {
        std::lock_guard<std::mutex> lock(g_profile_mutex);
        g_profile.clear();
      }
      auto handle = at::addGlobalCallback(at::RecordFunctionCallback(&on_op_start, &on_op_end)
                                              .needsInputs(false)
                                              .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
      StepTimes prof;
      BatchWork pwork;
      for (std::int64_t s = o.warmup + o.steps; s < needed; ++s) {
        const auto b = static_cast<std::size_t>(s);
        const BatchWork w = work_of(b);
        pwork.flops_linear += w.flops_linear;
        pwork.flops_attention += w.flops_attention;
        const StepTimes t = stepper.step(data.pairs, batches[b], &loss);
        for (int p = 0; p < kPhases; ++p) prof.phase[p] += t.phase[p];
      }
      at::removeCallback(handle);
      std::vector<std::pair<std::string, OpStat>> ops(g_profile.begin(), g_profile.end());
      std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.self_s > b.second.self_s; });
      double matmul_s = 0, all_s = 0;
      for (const auto& [name, s] : ops) {
        all_s += s.self_s;
        if (is_matmul_op(name)) matmul_s += s.self_s;
      }
      const double prof_s = prof.total();
      std::printf("\nprofile of %lld more step(s) (op observer on; %.3f s, %.1f GFLOP): self time by op\n",
                  static_cast<long long>(o.profile_steps), prof_s, pwork.train_flops() / 1e9);
      std::printf("  %-44s %7s %10s %7s\n", "op", "calls", "self s", "share");
      Json top = Json::array();
      for (std::size_t i = 0; i < ops.size() && i < 20; ++i) {
        const auto& [name, s] = ops[i];
        std::printf("  %-44s %7lld %10.3f %6.1f%%\n", name.c_str(), static_cast<long long>(s.calls), s.self_s,
                    100.0 * s.self_s / prof_s);
        top.push_back({{"op", name}, {"calls", s.calls}, {"self_s", s.self_s}});
      }
      std::printf("  matmul ops (mm, addmm, bmm, ...): %.3f s = %.1f%% of the step; inside them %s "
                  "(%.1f%% of the large GEMM)\n",
                  matmul_s, 100.0 * matmul_s / prof_s, si(pwork.train_flops() / matmul_s, "FLOP/s").c_str(),
                  100.0 * pwork.train_flops() / matmul_s / peak);
      std::printf("  everything else: %.3f s = %.1f%% (time outside any op: %.3f s)\n", prof_s - matmul_s,
                  100.0 * (prof_s - matmul_s) / prof_s, prof_s - all_s);
      Json pphases;
      for (int p = 0; p < kPhases; ++p) pphases[kPhaseNames[p]] = prof.phase[p] / prof_s;
      out["profile"] = {{"steps", o.profile_steps}, {"seconds", prof_s}, {"matmul_seconds", matmul_s},
                        {"matmul_flops_per_s", pwork.train_flops() / matmul_s}, {"phase_share", pphases},
                        {"top_ops", top}};
    }
    if (!comm && !o.no_prefix_sharing) {
      out["prefix_sharing"] = compare_prefix_sharing(o, shape, data.pairs, batches);
    }
    if (comm) out["world_size"] = comm->world_size();
    if (!o.json_out.empty() && (!comm || comm->rank() == 0)) openrm::write_file_atomic(o.json_out, out.dump(2) + "\n");
  });
}
