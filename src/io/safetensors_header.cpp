// Validation of safetensors headers. Torch-free on purpose: the fuzzers build
// this file with nlohmann_json and the standard library only.
//
// The rules follow the reference implementation (the Rust `safetensors`
// crate): tensors, sorted by offset, must tile the data section exactly, from
// byte 0 to the end of the file, with no overlap and no gap. See
// docs/formats.md for the full list.
#include "openrm/io/safetensors_header.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "io/json_util.h"
#include "openrm/error.h"

namespace openrm {

namespace {

using ordered_json = nlohmann::ordered_json;

// Products that overflow 64 bits are rejected rather than wrapped, so a
// crafted shape cannot make a huge tensor look small.
bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

std::string range_text(std::uint64_t begin, std::uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// A JSON value in an error message, cut short so that a 100 MB header cannot
// produce a 100 MB message.
std::string brief(const ordered_json& value) {
  std::string text =
      value.dump(-1, ' ', /*ensure_ascii=*/true, ordered_json::error_handler_t::replace);
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

// A non-negative JSON integer that fits in 64 bits, or false.
bool as_u64(const ordered_json& value, std::uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<std::uint64_t>();
    return true;
  }
  if (value.is_number_integer()) {
    std::int64_t v = value.get<std::int64_t>();
    if (v < 0) return false;
    *out = static_cast<std::uint64_t>(v);
    return true;
  }
  return false;
}

class HeaderParser {
 public:
  HeaderParser(const std::string& source, std::uint64_t data_size)
      : source_(source), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(source_ + ": " + problem);
  }
  [[noreturn]] void fail_tensor(const std::string& name, const std::string& problem) const {
    fail("tensor '" + name + "': " + problem);
  }

  void parse_metadata(const ordered_json& value, SafetensorsHeader* header) const {
    if (value.is_null()) return;  // the reference writer's "no metadata"
    if (!value.is_object()) {
      fail("'__metadata__' must be an object of strings, got " + std::string(value.type_name()));
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (!it.value().is_string()) {
        fail("'__metadata__' must be an object of strings, but key '" + it.key() + "' holds " +
             brief(it.value()));
      }
      header->metadata[it.key()] = it.value().get<std::string>();
    }
  }

  SafetensorsEntry parse_entry(const std::string& name, const ordered_json& value) const {
    if (name.empty()) fail("empty tensor name");
    if (!value.is_object()) {
      fail_tensor(
          name, "entry must be an object with dtype, shape and data_offsets, got " + brief(value));
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets") {
        fail_tensor(name, "unexpected key '" + it.key() +
                              "' (an entry has only dtype, shape and data_offsets)");
      }
    }
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
      if (!value.contains(key)) fail_tensor(name, std::string("missing key '") + key + "'");
    }

    SafetensorsEntry entry;
    entry.name = name;

    const ordered_json& dtype = value["dtype"];
    if (!dtype.is_string()) fail_tensor(name, "'dtype' must be a string, got " + brief(dtype));
    if (!parse_dtype(dtype.get<std::string>(), &entry.dtype)) {
      fail_tensor(name, "unknown dtype '" + dtype.get<std::string>() +
                            "'; supported: " + supported_dtype_names());
    }

    const ordered_json& shape = value["shape"];
    if (!shape.is_array()) {
      fail_tensor(name, "'shape' must be an array of non-negative integers, got " + brief(shape));
    }
    std::uint64_t numel = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      std::uint64_t dim = 0;
      if (!as_u64(shape[i], &dim)) {
        fail_tensor(name, "shape dimension " + std::to_string(i) + " is " + brief(shape[i]) +
                              "; dimensions must be non-negative integers");
      }
      // LibTorch sizes are signed 64-bit.
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail_tensor(name, "shape dimension " + std::to_string(i) + " (" + std::to_string(dim) +
                              ") is too large");
      }
      entry.shape.push_back(static_cast<std::int64_t>(dim));
      if (!checked_mul(numel, dim, &numel)) overflow = true;
    }
    std::uint64_t nbytes = 0;
    if (overflow || !checked_mul(numel, dtype_size(entry.dtype), &nbytes)) {
      fail_tensor(name, "shape " + shape_string(entry.shape) + " of " + dtype_name(entry.dtype) +
                            " has a byte count that overflows 64 bits");
    }

    const ordered_json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !as_u64(offsets[0], &entry.begin) ||
        !as_u64(offsets[1], &entry.end)) {
      fail_tensor(name, "'data_offsets' must be [begin, end] with non-negative integers, got " +
                            brief(offsets));
    }
    if (entry.begin > entry.end) {
      fail_tensor(name,
                  "data_offsets " + range_text(entry.begin, entry.end) + " begin after they end");
    }
    if (entry.end > data_size_) {
      fail_tensor(name, "data_offsets " + range_text(entry.begin, entry.end) +
                            " run past the end of the data section (" + std::to_string(data_size_) +
                            " bytes); is the file truncated?");
    }
    if (entry.end - entry.begin != nbytes) {
      fail_tensor(name, "shape " + shape_string(entry.shape) + " of " + dtype_name(entry.dtype) +
                            " needs " + std::to_string(nbytes) + " bytes but data_offsets " +
                            range_text(entry.begin, entry.end) + " hold " +
                            std::to_string(entry.end - entry.begin));
    }
    return entry;
  }

  // The reference implementation requires the byte ranges, in offset order,
  // to tile the data section: no overlap (two tensors sharing bytes), no gap
  // (bytes nobody owns, where a corrupt or hand-edited file hides), and no
  // trailing bytes after the last tensor.
  void check_layout(const std::vector<SafetensorsEntry>& entries) const {
    std::vector<std::size_t> order(entries.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      if (entries[a].begin != entries[b].begin) return entries[a].begin < entries[b].begin;
      return entries[a].end < entries[b].end;
    });
    std::uint64_t covered = 0;
    const SafetensorsEntry* previous = nullptr;
    for (std::size_t index : order) {
      const SafetensorsEntry& entry = entries[index];
      if (entry.begin < covered) {
        fail_tensor(entry.name, "data_offsets " + range_text(entry.begin, entry.end) +
                                    " overlap tensor '" + previous->name + "' " +
                                    range_text(previous->begin, previous->end));
      }
      if (entry.begin > covered) {
        fail_tensor(entry.name, "data_offsets " + range_text(entry.begin, entry.end) +
                                    " leave a gap: bytes " + range_text(covered, entry.begin) +
                                    " of the data section belong to no tensor");
      }
      covered = entry.end;
      previous = &entry;
    }
    if (covered != data_size_) {
      fail("the data section has " + std::to_string(data_size_) +
           " bytes but the tensors cover only " + std::to_string(covered) + "; bytes " +
           range_text(covered, data_size_) + " belong to no tensor");
    }
  }

 private:
  const std::string& source_;
  std::uint64_t data_size_;
};

}  // namespace

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

SafetensorsHeader parse_safetensors_header(const std::uint8_t* bytes, std::size_t size,
                                           const std::string& source) {
  if (size < 8) {
    throw Error(source + ": file is " + std::to_string(size) +
                " bytes, too short for a safetensors file (it starts with an 8-byte header "
                "length)");
  }
  std::uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxSafetensorsHeaderBytes) {
    throw Error(source + ": header length " + std::to_string(header_len) +
                " exceeds the limit of " + std::to_string(kMaxSafetensorsHeaderBytes) +
                " bytes; not a safetensors file, or corrupt");
  }
  if (header_len > size - 8) {
    throw Error(source + ": header length " + std::to_string(header_len) +
                " runs past the end of the file (" + std::to_string(size - 8) +
                " bytes follow the length); is the file truncated?");
  }

  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  // Depth 3 is all a valid header needs (header -> entry -> shape); a little
  // more lets the structural checks below give the more specific message.
  detail::JsonParseLimits limits;
  limits.max_depth = 8;
  limits.reject_duplicate_keys = true;
  limits.top_level_key_noun = "tensor name";
  ordered_json root = detail::parse_json_checked<ordered_json>(text, text + header_len,
                                                               source + ": header", limits);
  if (!root.is_object()) {
    throw Error(source + ": header must be a JSON object, got " + std::string(root.type_name()));
  }

  HeaderParser parser(source, size - header.data_start);
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      parser.parse_metadata(it.value(), &header);
    } else {
      header.entries.push_back(parser.parse_entry(it.key(), it.value()));
    }
  }
  parser.check_layout(header.entries);
  return header;
}

}  // namespace openrm
