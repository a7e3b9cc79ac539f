#include "openrm/io/dtype.h"

#include <iterator>

namespace openrm {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};

// Indexed by the enum's value; the order is also the order error messages
// list them in.
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

constexpr bool table_matches_enum() {
  for (std::size_t i = 0; i < std::size(kDTypes); ++i) {
    if (static_cast<std::size_t>(kDTypes[i].dtype) != i) return false;
  }
  return true;
}
static_assert(table_matches_enum(), "kDTypes must be in DType's order");

const DTypeInfo& info(DType dtype) {
  auto index = static_cast<std::size_t>(dtype);
  // An out-of-range enum value can only come from a cast; fall back to the
  // first entry rather than read past the table.
  if (index >= std::size(kDTypes)) index = 0;
  return kDTypes[index];
}

}  // namespace

const char* dtype_name(DType dtype) {
  return info(dtype).name;
}

std::size_t dtype_size(DType dtype) {
  return info(dtype).size;
}

bool parse_dtype(const std::string& name, DType* out) {
  for (const DTypeInfo& entry : kDTypes) {
    if (name == entry.name) {
      if (out != nullptr) *out = entry.dtype;
      return true;
    }
  }
  return false;
}

std::string supported_dtype_names() {
  std::string names;
  for (const DTypeInfo& entry : kDTypes) {
    if (!names.empty()) names += ", ";
    names += entry.name;
  }
  return names;
}

}  // namespace openrm
