#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "logging.h"
#include "openrm/error.h"
#include "openrm/io/file.h"

namespace fs = std::filesystem;

namespace openrm::detail {
namespace {

constexpr const char* kPrefix = "checkpoint-";
constexpr const char* kTempPrefix = ".tmp-checkpoint-";

std::optional<std::int64_t> step_of(const std::string& name) {
  if (name.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(digits);
}


}  // namespace

std::string checkpoint_path(const std::string& root, std::int64_t step) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s%08lld", kPrefix, static_cast<long long>(step));
  return join_path(root, name);
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open to sync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw Error(path + ": fsync failed");
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  write_file_atomic(to, read_text_file(from));
}

// Removes a checkpoint folder so that no kill leaves a half-removed
// checkpoint-N behind: it is renamed to a temporary name first, which
// remove_stale_checkpoint_temps clears if the removal does not finish.
void discard_checkpoint(const std::string& root, const std::string& path) {
  const std::string doomed = join_path(root, std::string(kTempPrefix) + "discarded-" +
                                                 fs::path(path).filename().string() + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(doomed, ec);
  fs::rename(path, doomed, ec);
  fs::remove_all(ec ? path : doomed, ec);
  if (fs::exists(path)) throw Error(path + ": cannot remove the checkpoint");
}

std::vector<std::pair<std::int64_t, std::string>> list_checkpoints(const std::string& root) {
  std::vector<std::pair<std::int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (!entry.is_directory()) continue;
    if (auto step = step_of(entry.path().filename().string())) {
      out.emplace_back(*step, entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void remove_stale_checkpoint_temps(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.path().filename().string().rfind(kTempPrefix, 0) == 0) {
      fs::remove_all(entry.path(), ec);
      log().info("removed an unfinished checkpoint left by an interrupted run: {}", entry.path().string());
    }
  }
}

void write_checkpoint(const std::string& root, std::int64_t step, std::int64_t keep,
                      const std::function<void(const std::string& dir)>& write) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw Error(root + ": cannot create the checkpoint folder: " + ec.message());
  const std::string tmp = join_path(root, std::string(kTempPrefix) + std::to_string(step) + "-" +
                                              std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error(tmp + ": cannot create: " + ec.message());
  const TemporaryFolder interrupt_cleanup(tmp);  // removed by the tools' SIGINT/SIGTERM handler
  try {
    write(tmp);  // each file inside is written and fsynced by write_file_atomic
    sync_path(tmp);
    const std::string final_path = checkpoint_path(root, step);
    if (fs::exists(final_path, ec)) {
      // Only when a run saves the same step again: swap via a temporary name
      // that remove_stale_checkpoint_temps clears.
      const std::string old = join_path(root, std::string(kTempPrefix) + "replaced-" + std::to_string(step) + "-" +
                                                  std::to_string(::getpid()));
      fs::remove_all(old, ec);
      fs::rename(final_path, old);
      fs::rename(tmp, final_path);
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, final_path);
    }
    sync_path(root);
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw Error("writing checkpoint " + std::to_string(step) + " in " + root + ": " + e.what());
  }
  auto all = list_checkpoints(root);
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < all.size(); ++i) {
    try {
      discard_checkpoint(root, all[i].second);
    } catch (const std::exception& e) {
      log().warn("could not prune an old checkpoint: {}", e.what());  // the new one is safe
    }
  }
}

}  // namespace openrm::detail
