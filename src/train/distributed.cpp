// c10d process groups for the trainer (distributed.h). The backends come
// from LibTorch itself: ProcessGroupGloo (Debian's LibTorch links Debian's
// Gloo; PyPI's carries its own, used through Debian's Gloo headers, which
// this file touches only through pointers) and ProcessGroupNCCL where the
// build has CUDA and NCCL's header.
#if OPENRM_HAVE_GLOO
#define USE_C10D_GLOO 1
#endif
#if OPENRM_HAVE_NCCL
#define USE_C10D_NCCL 1
#endif

#include "train/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if OPENRM_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if OPENRM_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <thread>

#include "logging.h"
#include "openrm/error.h"

namespace openrm {
namespace {

int env_int(const std::function<const char*(const char*)>& get, const char* name, int fallback, int min_value,
            int max_value) {
  const char* text = get(name);
  if (text == nullptr || *text == '\0') {
    if (fallback == std::numeric_limits<int>::min()) {
      throw Error(std::string("environment variable ") + name +
                  " is not set; a data-parallel job (WORLD_SIZE > 1) needs RANK, MASTER_ADDR and MASTER_PORT on "
                  "every process (torchrun sets them all)");
    }
    return fallback;
  }
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || value < min_value || value > max_value) {
    throw Error(std::string("environment variable ") + name + "='" + text + "': expected an integer in [" +
                std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
  }
  return static_cast<int>(value);
}

constexpr int kRequired = std::numeric_limits<int>::min();

}  // namespace

DistributedEnv read_distributed_env(const std::function<const char*(const char*)>& lookup) {
  const std::function<const char*(const char*)> get =
      lookup ? lookup : [](const char* name) -> const char* { return std::getenv(name); };
  DistributedEnv env;
  env.world_size = env_int(get, "WORLD_SIZE", 1, 1, 1 << 20);
  if (env.world_size == 1) return DistributedEnv{};
  env.rank = env_int(get, "RANK", kRequired, 0, 1 << 20);
  if (env.rank >= env.world_size) {
    throw Error("environment variable RANK=" + std::to_string(env.rank) + " is not below WORLD_SIZE=" +
                std::to_string(env.world_size) + ": each process needs a RANK in [0, WORLD_SIZE)");
  }
  env.local_world_size = env_int(get, "LOCAL_WORLD_SIZE", env.world_size, 1, env.world_size);
  env.local_rank = env_int(get, "LOCAL_RANK", env.local_world_size == env.world_size ? env.rank : kRequired, 0,
                           1 << 20);
  if (env.local_rank >= env.local_world_size) {
    throw Error("environment variable LOCAL_RANK=" + std::to_string(env.local_rank) +
                " is not below LOCAL_WORLD_SIZE=" + std::to_string(env.local_world_size));
  }
  const char* addr = get("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    throw Error("environment variable MASTER_ADDR is not set; a data-parallel job (WORLD_SIZE > 1) meets at "
                "MASTER_ADDR:MASTER_PORT, the host of rank 0 (torchrun sets both)");
  }
  env.master_addr = addr;
  env.master_port = env_int(get, "MASTER_PORT", kRequired, 1, 65535);
  const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
  const bool agent_store = agent != nullptr && (std::string(agent) == "True" || std::string(agent) == "1");
  env.store_port = env_int(get, "OPENRM_STORE_PORT", agent_store ? env.master_port % 65535 + 1 : env.master_port, 1,
                           65535);
  return env;
}

namespace detail {

std::string c10d_backend_for(const c10::Device& device) {
  if (device.is_cuda()) {
#if OPENRM_HAVE_NCCL
    return "nccl";
#else
    return "";
#endif
  }
#if OPENRM_HAVE_GLOO
  return "gloo";
#else
  return "";
#endif
}

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string from_bytes(const Bytes& b) { return std::string(b.begin(), b.end()); }

// The message of a c10d or Gloo error without the C++ backtrace c10 adds.
std::string message_of(const std::exception& e) {
  std::string m;
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) m = c->what_without_backtrace();
  else m = e.what();
  if (const auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
  return m;
}

std::string seconds_text(std::chrono::milliseconds ms) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.0f s", static_cast<double>(ms.count()) / 1000.0);
  return out;
}

}  // namespace

struct Communicator::Impl {
  DistributedEnv env;
  std::string backend;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::TCPStore> store;  // rank 0: the server
  c10::intrusive_ptr<c10d::Store> prefixed;  // the process group's keys
  c10::intrusive_ptr<c10d::TCPStore> beat_store;  // the heartbeat thread's own connection
#if OPENRM_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#if OPENRM_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::vector<c10::intrusive_ptr<c10d::Work>> pending;
  std::string where = "the start";
  // Heartbeat: every `beat` this rank adds 1 to openrm/alive/<rank>, so a
  // failure report can tell a dead or stopped rank from a slow one.
  std::chrono::milliseconds beat{1000};
  std::thread beat_thread;
  std::mutex beat_mutex;
  std::condition_variable beat_cv;
  bool stop_beat = false;
  std::atomic<bool> store_lost{false};
  bool failed = false;

  std::string key(const char* kind, int r) const { return std::string("openrm/") + kind + "/" + std::to_string(r); }

  template <typename F>
  auto collective(F&& f) {
#if OPENRM_HAVE_NCCL
    if (nccl) return f(*nccl);
#endif
#if OPENRM_HAVE_GLOO
    if (gloo) return f(*gloo);
#endif
    throw Error("no process group");
  }

  // What the other ranks say about themselves, for an error message.
  std::string diagnose() {
    std::string out;
    if (store_lost) {
      return env.rank == 0 ? std::string("the rendezvous store this rank serves stopped answering")
                           : "rank 0, which serves the rendezvous store at " + env.master_addr + ":" +
                                 std::to_string(env.store_port) + ", is gone (it died, or its machine is unreachable)";
    }
    try {
      store->setTimeout(std::chrono::milliseconds(5000));
      std::vector<std::int64_t> before(static_cast<std::size_t>(env.world_size));
      for (int r = 0; r < env.world_size; ++r) before[static_cast<std::size_t>(r)] = store->add(key("alive", r), 0);
      for (int r = 0; r < env.world_size; ++r) {
        if (r != env.rank && store->check({key("failed", r)})) {
          out += (out.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) +
                 " failed: " + from_bytes(store->get(key("failed", r)));
        }
      }
      if (!out.empty()) return out;
      std::this_thread::sleep_for(beat * 3);
      for (int r = 0; r < env.world_size; ++r) {
        if (r == env.rank) continue;
        const std::int64_t now = store->add(key("alive", r), 0);
        const std::string at = store->check({key("at", r)}) ? from_bytes(store->get(key("at", r))) : "the start";
        if (now == before[static_cast<std::size_t>(r)]) {
          out += (out.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + " is gone (no heartbeat for " +
                 seconds_text(beat * 3) + ": it died or was stopped; it had reached " + at + ")";
        } else if (at != where) {
          out += (out.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) +
                 " is alive but at " + at + " (hung or far behind?)";
        }
      }
    } catch (const std::exception&) {
      return env.rank == 0 ? std::string("the rendezvous store stopped answering")
                           : "rank 0, which serves the rendezvous store at " + env.master_addr + ":" +
                                 std::to_string(env.store_port) + ", is gone (it died, or its machine is unreachable)";
    }
    return out.empty() ? std::string("every other rank is alive and at ") + where : out;
  }
};

Communicator::Communicator(const DistributedEnv& env, const c10::Device& device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.env = env;
  s.timeout = timeout;
  s.backend = c10d_backend_for(device);
  if (s.backend.empty()) {
    throw Error(std::string("data-parallel training on ") + (device.is_cuda() ? "CUDA" : "the CPU") +
                " needs c10d's " + (device.is_cuda() ? "NCCL" : "Gloo") +
                " process group, which this build of openrm does not have (docs/distributed.md)");
  }
  s.beat = std::min(std::chrono::milliseconds(1000), std::max(std::chrono::milliseconds(100), timeout / 10));
  const std::string where = env.master_addr + ":" + std::to_string(env.store_port);
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.store_port);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<std::size_t>(env.world_size);
  so.waitWorkers = true;
  so.timeout = timeout;
  try {
    s.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    throw Error(env.rank == 0
                    ? "rank 0 could not serve the rendezvous store at " + where + " or not all " +
                          std::to_string(env.world_size) + " ranks joined within " + seconds_text(timeout) +
                          " (is that port free, and is every rank started with the same WORLD_SIZE?): " + message_of(e)
                    : "rank " + std::to_string(env.rank) + " could not join the rendezvous store of rank 0 at " +
                          where + " within " + seconds_text(timeout) +
                          " (is rank 0 running, and MASTER_ADDR/MASTER_PORT the same on every rank?): " + message_of(e));
  }
  s.prefixed = c10::make_intrusive<c10d::PrefixStore>("openrm/pg", s.store);
  try {
#if OPENRM_HAVE_NCCL
    if (s.backend == "nccl") {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      s.nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(s.prefixed, env.rank, env.world_size, options);
    }
#endif
#if OPENRM_HAVE_GLOO
    if (s.backend == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // The interface that reaches MASTER_ADDR, as torch.distributed picks it.
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
      options->threads = 2;
      s.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(s.prefixed, env.rank, env.world_size, options);
    }
#endif
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + ": not all " + std::to_string(env.world_size) +
                " ranks joined the " + s.backend + " process group within " + seconds_text(timeout) +
                " (is every rank started, with the same WORLD_SIZE, MASTER_ADDR and MASTER_PORT?): " + message_of(e));
  }
  c10d::TCPStoreOptions bo;
  bo.port = static_cast<std::uint16_t>(env.store_port);
  bo.isServer = false;
  bo.waitWorkers = false;
  bo.timeout = timeout;
  s.beat_store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, bo);
  s.beat_store->add(s.key("alive", env.rank), 1);
  s.beat_thread = std::thread([&s] {
    std::unique_lock<std::mutex> lock(s.beat_mutex);
    while (!s.beat_cv.wait_for(lock, s.beat, [&s] { return s.stop_beat; })) {
      try {
        s.beat_store->add(s.key("alive", s.env.rank), 1);
      } catch (const std::exception&) {
        s.store_lost = true;
        return;
      }
    }
  });
  log().info("rank {} of {}: {} process group formed through {}", env.rank, env.world_size, s.backend, where);
}

Communicator::~Communicator() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.beat_mutex);
    s.stop_beat = true;
  }
  s.beat_cv.notify_all();
  if (s.beat_thread.joinable()) s.beat_thread.join();
  if (s.failed) {
    // A group whose peer is gone can block in its destructor on work that
    // will never finish; the process is about to report and exit.
#if OPENRM_HAVE_GLOO
    if (s.gloo) (void)s.gloo.release();
#endif
#if OPENRM_HAVE_NCCL
    if (s.nccl) (void)s.nccl.release();
#endif
    for (auto& w : s.pending) (void)w.release();
    (void)s.prefixed.release();
    (void)s.store.release();
    (void)s.beat_store.release();
  }
}

int Communicator::rank() const { return impl_->env.rank; }
int Communicator::world_size() const { return impl_->env.world_size; }
const std::string& Communicator::backend() const { return impl_->backend; }

void Communicator::fail(const std::string& what, const std::exception& e) {
  Impl& s = *impl_;
  s.failed = true;
  const std::string detail = message_of(e);
  throw Error("data-parallel training stopped: rank " + std::to_string(s.env.rank) + " of " +
              std::to_string(s.env.world_size) + " failed in " + what + " (" + s.backend + ": " + detail +
              "): " + s.diagnose() + "; the newest checkpoint in the output folder is intact");
}

void Communicator::all_reduce_sum(at::Tensor& t, const std::string& what) {
  start_all_reduce_sum(t);
  wait_all(what);
}

void Communicator::start_all_reduce_sum(at::Tensor t) {
  std::vector<at::Tensor> tensors{std::move(t)};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  impl_->pending.push_back(impl_->collective([&](auto& pg) { return pg.allreduce(tensors, options); }));
}

void Communicator::wait_all(const std::string& what) {
  Impl& s = *impl_;
  try {
    for (auto& w : s.pending) w->wait(s.timeout);
  } catch (const std::exception& e) {
    fail(what, e);
  }
  s.pending.clear();
}

void Communicator::barrier(const std::string& what) {
  Impl& s = *impl_;
  // A sum of one number, which every backend has, in place of barrier()
  // (NCCL's needs a device of its own choosing).
  at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kFloat).device(
                                     s.backend == "nccl" ? c10::Device(c10::kCUDA, s.env.local_rank) : c10::Device(c10::kCPU)));
  all_reduce_sum(one, what);
}

void Communicator::broadcast_from_rank0(std::vector<at::Tensor>& tensors, const std::string& what) {
  Impl& s = *impl_;
  c10d::BroadcastOptions options;
  options.rootRank = 0;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t.detach()};
    s.pending.push_back(s.collective([&](auto& pg) { return pg.broadcast(one, options); }));
  }
  wait_all(what);
}

std::string Communicator::share_from_rank0(const std::string& key, const std::string& value) {
  Impl& s = *impl_;
  const std::string k = "openrm/share/" + key;
  const std::string failed = s.key("failed", 0);
  try {
    if (s.env.rank == 0) {
      s.store->set(k, to_bytes(value));
      return value;
    }
    // Polled, so that rank 0 stopping before it shares is reported at once.
    const auto deadline = Clock::now() + s.timeout;
    while (!s.store->check({k})) {
      if (s.store->check({failed})) {
        s.failed = true;
        throw Error("data-parallel training stopped: rank 0 failed: " + from_bytes(s.store->get(failed)));
      }
      if (Clock::now() > deadline) {
        s.failed = true;
        throw Error("data-parallel training stopped: rank " + std::to_string(s.env.rank) + " waited " +
                    seconds_text(s.timeout) + " for rank 0 to share " + key + ": " + s.diagnose());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return from_bytes(s.store->get(k));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("waiting for rank 0 to share " + key, e);
  }
}

void Communicator::mark(const std::string& where) {
  Impl& s = *impl_;
  s.where = where;
  try {
    s.store->set(s.key("at", s.env.rank), to_bytes(where));
  } catch (const std::exception& e) {
    fail(where, e);
  }
}

void Communicator::report_failure(const std::string& message) noexcept {
  try {
    impl_->store->set(impl_->key("failed", impl_->env.rank), to_bytes(message));
  } catch (...) {
  }
}

// ---- gradient buckets

struct GradientReducer::Impl {
  Communicator* comm = nullptr;
  std::vector<at::Tensor> params;
  struct Bucket {
    at::Tensor flat;
    std::vector<std::size_t> members;
    std::size_t ready = 0;
  };
  std::vector<Bucket> buckets;
  std::vector<std::size_t> bucket_of, offset;
  std::vector<std::int64_t> expected, delivered;
  std::vector<char> filled;
  std::vector<unsigned> hooks;
  std::size_t next_launch = 0;
  bool armed = false, learning = true, late = false;
  std::mutex mutex;  // hooks may run on an autograd device thread

  // A step's bookkeeping back to nothing sent.
  void reset() {
    late = false;
    next_launch = 0;
    std::fill(delivered.begin(), delivered.end(), 0);
    std::fill(filled.begin(), filled.end(), 0);
    for (auto& b : buckets) b.ready = 0;
  }
  at::Tensor slice(std::size_t i) {
    const Bucket& b = buckets[bucket_of[i]];
    return b.flat.narrow(0, static_cast<std::int64_t>(offset[i]), params[i].numel()).view(params[i].sizes());
  }
  void fill_from_grad(std::size_t i) {
    const at::Tensor& g = params[i].grad();
    at::Tensor s = slice(i);
    if (g.defined()) s.copy_(g);
    else s.zero_();
    filled[i] = 1;
  }
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].members.size()) {
      comm->start_all_reduce_sum(buckets[next_launch].flat);
      ++next_launch;
    }
  }
  void on_grad(std::size_t i, const at::Tensor& g) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) return;
    ++delivered[i];
    if (learning) return;
    if (delivered[i] > expected[i]) {
      late = true;
      return;
    }
    if (delivered[i] == expected[i]) {
      // The grad holds the deliveries so far; this one is added after the hook.
      const at::Tensor& prev = params[i].grad();
      at::Tensor s = slice(i);
      if (prev.defined()) at::add_out(s, prev, g.view(params[i].sizes()));
      else s.copy_(g.view(params[i].sizes()));
      filled[i] = 1;
      ++buckets[bucket_of[i]].ready;
      launch_ready();
    }
  }
};

GradientReducer::GradientReducer(Communicator& comm, std::vector<at::Tensor> params, std::int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.comm = &comm;
  s.params = std::move(params);
  const std::size_t n = s.params.size();
  s.bucket_of.assign(n, 0);
  s.offset.assign(n, 0);
  s.expected.assign(n, 0);
  s.delivered.assign(n, 0);
  s.filled.assign(n, 0);
  // Last parameters first: backward reaches the head and the top layers first.
  std::vector<std::int64_t> sizes;
  for (std::size_t k = n; k-- > 0;) {
    const at::Tensor& p = s.params[k];
    const std::int64_t bytes = p.numel() * static_cast<std::int64_t>(p.element_size());
    const bool start = s.buckets.empty() || sizes.back() + bytes > bucket_bytes ||
                       s.params[s.buckets.back().members.front()].scalar_type() != p.scalar_type();
    if (start) {
      s.buckets.emplace_back();
      sizes.push_back(0);
    }
    auto& b = s.buckets.back();
    s.bucket_of[k] = s.buckets.size() - 1;
    s.offset[k] = static_cast<std::size_t>(sizes.back() / static_cast<std::int64_t>(p.element_size()));
    b.members.push_back(k);
    sizes.back() += bytes;
  }
  for (std::size_t b = 0; b < s.buckets.size(); ++b) {
    const at::Tensor& first = s.params[s.buckets[b].members.front()];
    s.buckets[b].flat = at::zeros({sizes[b] / static_cast<std::int64_t>(first.element_size())}, first.options());
  }
  for (std::size_t i = 0; i < n; ++i) {
    s.hooks.push_back(s.params[i].register_hook([impl = &s, i](const at::Tensor& g) { impl->on_grad(i, g); }));
  }
}

GradientReducer::~GradientReducer() {
  for (std::size_t i = 0; i < impl_->params.size(); ++i) impl_->params[i].remove_hook(impl_->hooks[i]);
}

std::int64_t GradientReducer::buckets() const { return static_cast<std::int64_t>(impl_->buckets.size()); }

void GradientReducer::arm() {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> lock(s.mutex);
  s.reset();
  s.armed = true;
  if (s.learning) return;
  // Parameters backward never reaches count as final now.
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    if (s.expected[i] == 0) {
      s.fill_from_grad(i);
      ++s.buckets[s.bucket_of[i]].ready;
    }
  }
  s.launch_ready();
}

void GradientReducer::finish(at::Tensor& stats, const std::string& what) {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.armed) {
      s.reset();  // no backward on this rank this step (no pairs): everything is sent below
    } else if (s.learning &&
               std::any_of(s.delivered.begin(), s.delivered.end(), [](std::int64_t d) { return d > 0; })) {
      s.expected = s.delivered;
      s.learning = false;
    }
    s.armed = false;
    for (std::size_t b = s.next_launch; b < s.buckets.size(); ++b) {
      for (std::size_t i : s.buckets[b].members) {
        if (!s.filled[i]) s.fill_from_grad(i);
      }
      s.comm->start_all_reduce_sum(s.buckets[b].flat);
    }
    s.next_launch = s.buckets.size();
  }
  // The step's figures and whether any rank saw a gradient arrive late.
  at::Tensor all = at::cat({stats.to(at::kDouble).reshape({-1}), at::full({1}, s.late ? 1.0 : 0.0, at::kDouble)});
  s.comm->wait_all(what);
  s.comm->all_reduce_sum(all, what);
  if (all[-1].item<double>() > 0) {
    log().debug("{}: a gradient arrived after its bucket was sent; summing every bucket again", what);
    for (std::size_t i = 0; i < s.params.size(); ++i) s.fill_from_grad(i);
    for (auto& b : s.buckets) s.comm->start_all_reduce_sum(b.flat);
    s.comm->wait_all(what);
  }
  for (std::size_t i = 0; i < s.params.size(); ++i) {
    at::Tensor& g = s.params[i].mutable_grad();
    if (g.defined()) g.copy_(s.slice(i));
    else g = s.slice(i).clone();
  }
  stats = all.narrow(0, 0, all.numel() - 1).reshape(stats.sizes()).to(stats.scalar_type());
}

std::vector<std::int64_t> rank_share(const std::vector<std::int64_t>& indices,
                                     const std::vector<std::int64_t>& tokens, int rank, int world_size) {
  if (world_size <= 1) return indices;
  std::vector<std::size_t> order(indices.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tokens[a] > tokens[b]; });
  std::vector<std::int64_t> load(static_cast<std::size_t>(world_size), 0);
  std::vector<char> mine(indices.size(), 0);
  for (std::size_t k : order) {
    const auto r = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[r] += tokens[k];
    if (static_cast<int>(r) == rank) mine[k] = 1;
  }
  std::vector<std::int64_t> out;
  for (std::size_t k = 0; k < indices.size(); ++k) {
    if (mine[k]) out.push_back(indices[k]);
  }
  return out;
}

}  // namespace detail
}  // namespace openrm
