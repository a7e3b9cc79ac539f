#include "logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>
#include <mutex>

#include "openrm/error.h"
#include "openrm/logging.h"

namespace openrm {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto existing = spdlog::get("openrm");
    if (existing) return existing;
    auto created = spdlog::stderr_color_mt("openrm");
    created->set_pattern("[%H:%M:%S %^%l%$] %v");
    return created;
  }();
  return *logger;
}

void set_log_level(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: log().set_level(spdlog::level::debug); break;
    case LogLevel::kInfo: log().set_level(spdlog::level::info); break;
    case LogLevel::kWarn: log().set_level(spdlog::level::warn); break;
    case LogLevel::kError: log().set_level(spdlog::level::err); break;
    case LogLevel::kOff: log().set_level(spdlog::level::off); break;
  }
}

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "off") return LogLevel::kOff;
  throw Error("unknown log level '" + name + "' (expected debug, info, warn, error or off)");
}

}  // namespace openrm
