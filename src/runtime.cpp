#include "openrm/runtime.h"

#include <ATen/Parallel.h>
#include <link.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "logging.h"

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

}  // namespace openrm
