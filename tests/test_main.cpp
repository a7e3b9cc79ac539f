// Test entry point: tests named *_CUDA are filtered out, with a message,
// when no CUDA device is present, so the CPU build passes on its own.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdio>
#include <string>

#include "openrm/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  openrm::set_num_threads(0);
  if (!torch::cuda::is_available()) {
    std::string filter = ::testing::GTEST_FLAG(filter);
    filter += (filter.find('-') == std::string::npos ? "-" : ":");
    filter += "*_CUDA:*_CUDA/*";
    ::testing::GTEST_FLAG(filter) = filter;
    std::fprintf(stderr, "note: no CUDA device; skipping *_CUDA tests\n");
  }
  return RUN_ALL_TESTS();
}
