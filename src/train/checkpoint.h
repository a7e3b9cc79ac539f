// Checkpoint folders: written whole into a temporary folder and renamed into
// place, so a kill at any moment leaves every checkpoint-N folder complete.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace openrm::detail {

// "<root>/checkpoint-00000042"
std::string checkpoint_path(const std::string& root, std::int64_t step);

// Calls write(tmp_dir) on a fresh temporary folder under root, flushes it to
// disk, renames it to checkpoint_path(root, step) (replacing an existing one)
// and then removes all but the newest `keep` checkpoints.
void write_checkpoint(const std::string& root, std::int64_t step, std::int64_t keep,
                      const std::function<void(const std::string& dir)>& write);

// Complete checkpoints under root, oldest first, as (step, path).
std::vector<std::pair<std::int64_t, std::string>> list_checkpoints(const std::string& root);

// Removes a checkpoint folder: renamed to a temporary name first, so a kill
// never leaves a half-removed checkpoint-N (remove_stale_checkpoint_temps
// clears the rest). Throws openrm::Error if it cannot be removed.
void discard_checkpoint(const std::string& root, const std::string& path);

// Removes temporary folders a killed writer left behind.
void remove_stale_checkpoint_temps(const std::string& root);

// fsync a file or folder (folders: so a rename inside it is durable).
void sync_path(const std::string& path);

// Copies a file atomically (write_file_atomic of its bytes).
void copy_file_atomic(const std::string& from, const std::string& to);

}  // namespace openrm::detail
