// Process-wide runtime settings: threads, the BLAS in use, devices.
#pragma once

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

}  // namespace openrm
