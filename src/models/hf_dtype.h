// config.json's spelling of a tensor dtype (internal).
#pragma once

#include <c10/core/ScalarType.h>

namespace openrm {

// "float32", "bfloat16", "float16", "float64" (others: "float32"), as
// transformers writes `dtype` / `torch_dtype`.
const char* hf_dtype_name(c10::ScalarType dtype);

}  // namespace openrm
