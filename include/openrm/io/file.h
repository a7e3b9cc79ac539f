// File utilities: read-only memory maps, crash-safe writes, the rules for
// output paths, and the removal of temporary files on an interrupt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
//
// What "path" means (DESIGN.md, "Running as root"; docs/formats.md):
// - a symlink is followed (through every hop; a relative link is relative to
//   its folder) and its target is replaced as above; the link stays a link;
// - a path that exists and is neither a regular file nor a folder (a
//   character or block device such as /dev/null, a FIFO) is opened and
//   written in place, never renamed over: commit() only closes it;
// - a folder is an error at construction.
// The temporary file is registered for removal on an interrupt (see
// install_interrupt_cleanup below).
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();  // removes the temporary file unless commit() succeeded
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* bytes, std::size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and renames into place (in place: closes).
  void commit();
  // True when the path is written in place (a device or a FIFO).
  bool in_place() const { return in_place_; }

 private:
  void discard();
  std::string path_;    // as given, for messages
  std::string target_;  // path with its symlinks followed
  std::string tmp_path_;
  int fd_ = -1;
  int slot_ = -1;  // interrupt-cleanup registration of tmp_path_
  bool in_place_ = false;
  bool committed_ = false;
};

// One-call form of AtomicFileWriter.
void write_file_atomic(const std::string& path, const std::string& content);

// path with the symlinks of its last component followed, hop by hop (the
// final name need not exist: a dangling link gives the name it points to).
// Throws openrm::Error after 40 hops (a loop).
std::string follow_symlinks(const std::string& path);

// A command-line tool's output file: "-" is standard output (written as it
// comes, through std::cout), any other path an AtomicFileWriter.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  void write(const std::string& text);
  void commit();
  bool is_stdout() const { return file_ == nullptr; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<AtomicFileWriter> file_;
};

// ---- output checks ----------------------------------------------------------
// A tool checks its outputs with these before any work, so that a run never
// destroys what it reads and refuses a wrong path before it has spent time.
// `inputs` are the files and folders the tool reads ("" and "-" are skipped,
// and so are paths that do not exist: the tool reports those itself). A
// folder stands for every file in it and in its subfolders (four levels),
// the output folder's own content excepted. Files are compared by device and
// inode, through symlinks. Errors are openrm::Error "<output>: <reason>".

// Refuses an output file that is a folder, lies in a folder that does not
// exist, is the same file as an input, or is the same as another output
// (two "-" are both standard output).
void check_output_files(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs);

// How a tool may use an output folder that exists and is not empty.
struct OutputFolderRules {
  // Names whose presence (any one) shows the folder is one this tool writes
  // into (an openrm run, an openrm model folder): e.g. "checkpoints",
  // "training_config.json", "openrm.json".
  std::vector<std::string> markers;
  // What the markers stand for, for the message ("an openrm run").
  std::string kind = "an openrm folder";
  // The folder may be written into whatever it holds (the tool's explicit
  // flag, named in the message).
  bool overwrite = false;
  std::string overwrite_flag = "--overwrite-output-dir";
};

// Refuses an output folder that is "-", exists and is not a folder, is an
// input folder, or holds an input; and one that exists, is not empty and
// holds none of rules.markers, unless rules.overwrite.
void check_output_folder(const std::string& folder, const std::vector<std::string>& inputs,
                         const OutputFolderRules& rules);

// ---- cleanup on interrupt ----------------------------------------------------
// Temporary files and folders that an interrupted run must not leave behind.
// Registration is cheap and thread-safe; nothing happens on a signal unless
// install_interrupt_cleanup() was called (the tools call it; a program that
// links the library keeps its own signal handling otherwise).

// Installs a handler for SIGINT, SIGTERM, SIGHUP and SIGPIPE (each only if
// its disposition is the default) that removes every registered temporary
// file (unlink) and then every registered temporary folder (rmdir, once
// empty), then re-raises the signal with its default action. Idempotent.
void install_interrupt_cleanup();

// Registers a temporary folder for the life of this object. Files committed
// by AtomicFileWriter inside it are registered too, so the handler can empty
// and remove it; the caller still removes or renames it in the normal course.
class TemporaryFolder {
 public:
  explicit TemporaryFolder(const std::string& path);
  ~TemporaryFolder();
  TemporaryFolder(const TemporaryFolder&) = delete;
  TemporaryFolder& operator=(const TemporaryFolder&) = delete;

 private:
  std::string path_;
  int slot_ = -1;
};

// SHA-256 of a file's bytes / of a string, as 64 lower-case hex digits.
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);
// sha256_file, calling progress(bytes hashed so far) after each 1 MiB read:
// a multi-gigabyte weight file takes a while, and a caller may log how far
// it is (reward reports, src/train/reward_report.cpp).
std::string sha256_file(const std::string& path, const std::function<void(std::uint64_t)>& progress);

// True when both paths exist and are the same file (device and inode,
// through symlinks).
bool same_file(const std::string& a, const std::string& b);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
// Joins two path parts with exactly one '/'.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace openrm
