// Element types of tensors stored in safetensors files.
#pragma once

#include <cstddef>
#include <string>

namespace openrm {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// The safetensors spelling: "F32", "BF16", ...
const char* dtype_name(DType dtype);
// Bytes per element.
std::size_t dtype_size(DType dtype);
// Parses a safetensors dtype string; returns false for unknown ones.
bool parse_dtype(const std::string& name, DType* out);
// Comma-separated list of the dtypes openrm reads, for error messages.
std::string supported_dtype_names();

}  // namespace openrm
