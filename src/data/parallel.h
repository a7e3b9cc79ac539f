// Splitting independent per-item work (tokenizing) across threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace openrm::data_detail {

// Threads for `items` items: `requested` (0: the hardware's), at most one per
// 8 items, at least 1.
inline int worker_count(int requested, std::size_t items) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(1, n);
  return static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(n), std::max<std::size_t>(1, items / 8)));
}

// Calls work(worker, begin, end) for `workers` contiguous ranges covering
// [0, n), each on its own thread (inline when workers is 1), and rethrows the
// exception of the first worker that threw.
template <typename Work>
void for_each_range(std::size_t n, int workers, Work&& work) {
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(workers));
  auto run = [&](int w) {
    const std::size_t begin = n * static_cast<std::size_t>(w) / static_cast<std::size_t>(workers);
    const std::size_t end = n * static_cast<std::size_t>(w + 1) / static_cast<std::size_t>(workers);
    try {
      work(w, begin, end);
    } catch (...) {
      errors[static_cast<std::size_t>(w)] = std::current_exception();
    }
  };
  if (workers == 1) {
    run(0);
  } else {
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) threads.emplace_back(run, w);
    for (auto& t : threads) t.join();
  }
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace openrm::data_detail
