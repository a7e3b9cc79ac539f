#include "openrm/runtime.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <link.h>

#include <climits>
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

}  // namespace openrm
