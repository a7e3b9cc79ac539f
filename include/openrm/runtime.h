// Process-wide runtime settings: threads, the BLAS in use, devices.
#pragma once

#include <cstdint>
#include <string>

namespace openrm {

// Sets LibTorch's intra-op thread count (it starts at 1 on some systems).
// n <= 0 means the hardware concurrency. Returns the count now in effect.
int set_num_threads(int n);

// The shared BLAS library this process resolved (e.g.
// "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"), or "" if none.
std::string blas_library_path();

// Logs a warning when the reference (unoptimised) BLAS is in use, which makes
// CPU matmul ~30x slower; returns true when it warned. Safe to call often:
// it checks once.
bool warn_if_reference_blas();

// Checks a device name before any work: "cpu", "cuda" or "cuda:N", with CUDA
// present and N one of its devices. Throws openrm::Error with one line
// (never LibTorch's dispatcher text) otherwise.
void check_device(const std::string& name);

// How fast this CPU multiplies matrices in fp32 and in bf16, measured now on
// the current threads: an (m x k) @ (k x n) product at one shape of
// transformer size, best of a few runs each. bf16 is several times faster
// than fp32 on processors with AVX512-BF16 or AMX and many times slower
// without them, so `--dtype auto` on CPU asks this instead of guessing.
struct CpuMatmulProbe {
  std::int64_t m = 256, k = 1024, n = 1024;
  int threads = 0;
  double fp32_flops_per_s = 0.0;
  double bf16_flops_per_s = 0.0;
  double seconds = 0.0;  // what the probe took
  bool bf16_faster() const { return bf16_flops_per_s > fp32_flops_per_s; }
  std::string summary() const;  // "bf16 812.3 GFLOP/s, fp32 201.0 GFLOP/s (256x1024x1024, 2 threads)"
};
CpuMatmulProbe probe_cpu_matmul(std::int64_t m = 256, std::int64_t k = 1024, std::int64_t n = 1024);

// The probe for the current thread count, run once per process and count
// (under a second: where bf16 is slow, one run of it decides).
const CpuMatmulProbe& cpu_matmul_probe();

}  // namespace openrm
