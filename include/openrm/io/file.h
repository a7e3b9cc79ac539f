// File utilities: read-only memory maps and crash-safe writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace openrm {

// A whole file mapped read-only and private (copy-on-write), so tensors may
// view it without copying. Empty files map to data() == nullptr, size() == 0.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Reads a whole (small) file into a string; throws openrm::Error naming it.
std::string read_text_file(const std::string& path);

// Writes a file so that readers see either the old content or the new one,
// never a half-written file: the bytes go to "<path>.tmp.<pid>.<n>" in the same
// folder, are flushed to disk, and the temporary file is renamed over path.
// On any failure the temporary file is removed and openrm::Error is thrown.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();  // removes the temporary file unless commit() succeeded
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* bytes, std::size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and renames into place.
  void commit();

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// One-call form of AtomicFileWriter.
void write_file_atomic(const std::string& path, const std::string& content);

// SHA-256 of a file's bytes / of a string, as 64 lower-case hex digits.
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
// Joins two path parts with exactly one '/'.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace openrm
