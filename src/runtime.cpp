#include "openrm/runtime.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <link.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <map>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "logging.h"
#include "openrm/error.h"

namespace openrm {

int set_num_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
}

namespace {

int find_blas(struct dl_phdr_info* info, size_t, void* data) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  auto slash = name.rfind('/');
  std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  if (base.rfind("libblas.so", 0) == 0 || base.rfind("libopenblas", 0) == 0 ||
      base.rfind("libmkl_rt", 0) == 0 || base.rfind("libblis", 0) == 0) {
    char resolved[PATH_MAX];
    *static_cast<std::string*>(data) = realpath(name.c_str(), resolved) ? resolved : name;
    return 1;
  }
  return 0;
}

}  // namespace

std::string blas_library_path() {
  std::string path;
  dl_iterate_phdr(find_blas, &path);
  return path;
}

bool warn_if_reference_blas() {
  static bool warned = [] {
    const std::string path = blas_library_path();
    // Debian's reference BLAS lives in .../blas/libblas.so.3; the optimised
    // ones (openblas-*, blis-*, atlas, mkl) in folders or files of their own.
    const bool reference = path.find("/blas/libblas.so") != std::string::npos;
    if (reference) {
      log().warn(
          "LibTorch is using the reference BLAS ({}): CPU matmul will be ~30x slower. "
          "Install libopenblas0-openmp (scripts/install-deps.sh does).",
          path);
    }
    return reference;
  }();
  return warned;
}

void check_device(const std::string& name) {
  if (name == "cpu") return;
  const std::string digits = name.rfind("cuda:", 0) == 0 ? name.substr(5) : std::string();
  if (name != "cuda" && (digits.empty() || digits.size() > 4 || digits.find_first_not_of("0123456789") != std::string::npos)) {
    throw Error("device '" + name + "' is not one of cpu, cuda, cuda:N");
  }
  if (!torch::cuda::is_available()) {
    throw Error("device '" + name + "' was asked for, but this process sees no CUDA GPU (no device, or a LibTorch "
                "built without CUDA); use cpu");
  }
  const auto count = static_cast<long long>(torch::cuda::device_count());
  if (!digits.empty() && std::stoll(digits) >= count) {
    throw Error("device '" + name + "' does not exist: " + std::to_string(count) + " CUDA device(s) visible");
  }
}

std::string CpuMatmulProbe::summary() const {
  char line[200];
  std::snprintf(line, sizeof(line), "bf16 %.1f GFLOP/s, fp32 %.1f GFLOP/s (%lldx%lldx%lld, %d threads)",
                bf16_flops_per_s / 1e9, fp32_flops_per_s / 1e9, static_cast<long long>(m), static_cast<long long>(k),
                static_cast<long long>(n), threads);
  return line;
}

CpuMatmulProbe probe_cpu_matmul(std::int64_t m, std::int64_t k, std::int64_t n) {
  if (m < 1 || k < 1 || n < 1) throw Error("probe_cpu_matmul: the shape must be positive");
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  CpuMatmulProbe p;
  p.m = m;
  p.k = k;
  p.n = n;
  p.threads = at::get_num_threads();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  const auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto a32 = at::randn({m, k}, gen, at::TensorOptions().dtype(at::kFloat));
  const auto b32 = at::randn({n, k}, gen, at::TensorOptions().dtype(at::kFloat));
  // As a linear layer multiplies: x W^T.
  auto best = [&](const at::Tensor& a, const at::Tensor& b, double fastest_other) {
    double best_s = 1e30;
    (void)at::linear(a, b);  // warm-up: packing buffers, thread pool
    for (int r = 0; r < 3; ++r) {
      const auto t0 = Clock::now();
      (void)at::linear(a, b);
      best_s = std::min(best_s, std::chrono::duration<double>(Clock::now() - t0).count());
      // Four times slower than the other dtype after one run: no need to refine.
      if (fastest_other > 0 && flops / best_s * 4 < fastest_other) break;
    }
    return flops / best_s;
  };
  p.fp32_flops_per_s = best(a32, b32, 0.0);
  p.bf16_flops_per_s = best(a32.to(at::kBFloat16), b32.to(at::kBFloat16), p.fp32_flops_per_s);
  p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return p;
}

const CpuMatmulProbe& cpu_matmul_probe() {
  static std::mutex mutex;
  static std::map<int, CpuMatmulProbe> probes;  // by thread count
  std::lock_guard<std::mutex> lock(mutex);
  const int threads = at::get_num_threads();
  auto it = probes.find(threads);
  if (it == probes.end()) it = probes.emplace(threads, probe_cpu_matmul()).first;
  return it->second;
}

}  // namespace openrm
