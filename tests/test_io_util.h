// Assertion helpers for the I/O tests (test_file, test_safetensors,
// test_config).
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

#include "openrm/error.h"

namespace openrm::test {

// The message of the openrm::Error that fn() throws, or a marker that makes
// the message checks below fail with a readable reason.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an openrm::Error: ") + e.what() + ">";
  }
  return "<no error thrown>";
}

inline ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

inline ::testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not start with \"" << prefix << "\"";
}

}  // namespace openrm::test
