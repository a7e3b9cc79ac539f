// Feeds arbitrary bytes to parse_safetensors_header as a whole file. A
// rejection (openrm::Error) is fine; anything else, a sanitizer report, or an
// accepted header that breaks the promised invariants is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "openrm/error.h"
#include "openrm/io/safetensors_header.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  openrm::SafetensorsHeader header;
  try {
    header = openrm::parse_safetensors_header(data, size, "fuzz.safetensors");
  } catch (const openrm::Error&) {
    return 0;
  }
  // Accepted: every range lies in the data section, matches its shape, and
  // together they cover the section exactly.
  check(header.data_start >= 8 && header.data_start <= size);
  std::uint64_t data_size = size - header.data_start;
  std::uint64_t covered = 0;
  for (const openrm::SafetensorsEntry& entry : header.entries) {
    check(!entry.name.empty());
    check(entry.begin <= entry.end && entry.end <= data_size);
    // The exact byte count, recomputed without wrap-around: a parser that let
    // the element count overflow must not agree with it by wrapping too.
    bool has_zero = false;
    for (std::int64_t dim : entry.shape) {
      check(dim >= 0);
      has_zero = has_zero || dim == 0;
    }
    std::uint64_t bytes = has_zero ? 0 : openrm::dtype_size(entry.dtype);
    for (std::int64_t dim : entry.shape) {
      if (has_zero) break;
      check(!__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes));
    }
    check(bytes == entry.end - entry.begin);
    covered += bytes;
    // Touch the bytes, so AddressSanitizer sees any range outside the input.
    volatile std::uint8_t sink = 0;
    for (std::uint64_t i = entry.begin; i < entry.end; ++i) sink ^= data[header.data_start + i];
    (void)sink;
  }
  check(covered == data_size);
  return 0;
}
