// The library's logger (internal): spdlog behind openrm/logging.h.
#pragma once

#include <spdlog/spdlog.h>

namespace openrm {

// The "openrm" logger, created on first use (stderr, colour when a terminal).
spdlog::logger& log();

}  // namespace openrm
