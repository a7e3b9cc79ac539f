// Errors raised by openrm. The library never exits or aborts on bad input:
// it throws openrm::Error with a message that names the file and the place.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace openrm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Runs fn(); any exception it throws is re-thrown as openrm::Error with
// "context: " prepended, so messages read like
// "loading /m/model.safetensors: tensor x: expected [4, 2], got [2, 4]".
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const std::exception& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace openrm
