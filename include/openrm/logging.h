// openrm logs through spdlog; these calls choose what reaches the user.
#pragma once

#include <string>

namespace openrm {

enum class LogLevel { kDebug, kInfo, kWarn, kError, kOff };

void set_log_level(LogLevel level);
// "debug", "info", "warn", "error", "off"; throws openrm::Error otherwise.
LogLevel parse_log_level(const std::string& name);

}  // namespace openrm
