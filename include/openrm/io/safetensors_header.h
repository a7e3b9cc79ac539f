// The header of a safetensors file: parsing and validation only. Needs no
// LibTorch, so the fuzzers can build it alone; safetensors.h includes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "openrm/io/dtype.h"

namespace openrm {

// Headers longer than this are rejected before any allocation (the reference
// implementation uses the same 100 MB bound).
constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;  // e.g. {4096, 4096}; {} for a scalar
  std::uint64_t begin = 0;          // byte offsets into the data section
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;        // in header order
  std::map<std::string, std::string> metadata;  // the "__metadata__" object
  std::uint64_t data_start = 0;                 // file offset of the data section (8 + N)
};

// Parses and validates the header of a safetensors file whose complete
// contents are bytes[0, size). Checks: length prefix present and within
// bounds, valid JSON object, unique non-empty names, known dtypes,
// non-negative shapes whose byte count matches the offsets (without
// overflow), byte ranges that tile the data section exactly (no overlap, gap
// or trailing bytes, as the reference implementation requires), string-only
// metadata. Rules in docs/formats.md. Throws openrm::Error
// whose message starts with `source` (normally the file path). Never reads
// outside [bytes, bytes + size).
// A shape as error messages print it: "[4096, 4096]", "[]" for a scalar.
std::string shape_string(const std::vector<std::int64_t>& shape);

SafetensorsHeader parse_safetensors_header(const std::uint8_t* bytes, std::size_t size,
                                           const std::string& source);

}  // namespace openrm
