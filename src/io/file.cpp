#include "openrm/io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <utility>

#include "openrm/error.h"

namespace openrm {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Never retried: on Linux the descriptor is released even when close()
// reports EINTR, and a retry could close a descriptor another thread opened.
int close_fd(int fd) {
  return ::close(fd);
}

// The folder that holds path, for the directory fsync after a rename.
std::string parent_dir(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// ---- the interrupt-cleanup registry ----
// Fixed slots, so that the signal handler reads only memory that exists for
// the whole process. Changes are made under a mutex (never taken by the
// handler) and bracketed by a sequence number that is odd while a slot
// changes: the handler skips a slot that changes under it.
constexpr int kCleanupSlots = 512;
constexpr std::size_t kCleanupPathBytes = 4096;

struct CleanupSlot {
  std::atomic<unsigned> seq{0};
  std::atomic<bool> used{false};
  bool folder = false;
  int owner = -1;  // for a file committed inside a registered folder: that folder's slot
  char path[kCleanupPathBytes] = {};
};

CleanupSlot g_cleanup[kCleanupSlots];

std::mutex& cleanup_mutex() {
  static std::mutex m;
  return m;
}

// Returns the slot, or -1 when the path is too long or every slot is taken
// (then it is simply not removed on an interrupt). Caller holds the mutex.
int cleanup_add_locked(const std::string& path, bool folder, int owner) {
  if (path.empty() || path.size() >= kCleanupPathBytes) return -1;
  for (int i = 0; i < kCleanupSlots; ++i) {
    CleanupSlot& slot = g_cleanup[i];
    if (slot.used.load(std::memory_order_relaxed)) continue;
    slot.seq.fetch_add(1, std::memory_order_acq_rel);
    std::memcpy(slot.path, path.c_str(), path.size() + 1);
    slot.folder = folder;
    slot.owner = owner;
    slot.used.store(true, std::memory_order_release);
    slot.seq.fetch_add(1, std::memory_order_acq_rel);
    return i;
  }
  return -1;
}

void cleanup_remove_locked(int i) {
  CleanupSlot& slot = g_cleanup[i];
  slot.seq.fetch_add(1, std::memory_order_acq_rel);
  slot.used.store(false, std::memory_order_release);
  slot.owner = -1;
  slot.seq.fetch_add(1, std::memory_order_acq_rel);
}

int cleanup_add(const std::string& path, bool folder) {
  std::lock_guard<std::mutex> lock(cleanup_mutex());
  return cleanup_add_locked(path, folder, -1);
}

void cleanup_remove(int i) {
  if (i < 0) return;
  std::lock_guard<std::mutex> lock(cleanup_mutex());
  cleanup_remove_locked(i);
}

// Registers a file just committed at `path` when it lies inside a
// registered temporary folder, so that the handler can empty the folder.
int cleanup_add_if_in_folder(const std::string& path) {
  std::lock_guard<std::mutex> lock(cleanup_mutex());
  for (int i = 0; i < kCleanupSlots; ++i) {
    const CleanupSlot& slot = g_cleanup[i];
    if (!slot.used.load(std::memory_order_relaxed) || !slot.folder) continue;
    const std::size_t n = std::strlen(slot.path);
    if (path.size() > n + 1 && path.compare(0, n, slot.path) == 0 && path[n] == '/') {
      return cleanup_add_locked(path, false, i);
    }
  }
  return -1;
}

// The handler's work: only lock-free loads, memcpy, unlink and rmdir.
void remove_registered(bool folders) {
  char path[kCleanupPathBytes];
  for (CleanupSlot& slot : g_cleanup) {
    const unsigned before = slot.seq.load(std::memory_order_acquire);
    if ((before & 1u) != 0 || !slot.used.load(std::memory_order_acquire) || slot.folder != folders) continue;
    std::memcpy(path, slot.path, sizeof(path));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.seq.load(std::memory_order_relaxed) != before) continue;
    path[sizeof(path) - 1] = '\0';
    if (folders) {
      ::rmdir(path);
    } else {
      ::unlink(path);
    }
  }
}

extern "C" void on_interrupt(int sig) {
  const int saved = errno;
  remove_registered(/*folders=*/false);
  // A folder inside another goes first; a few passes empty any nesting.
  for (int pass = 0; pass < 4; ++pass) remove_registered(/*folders=*/true);
  ::signal(sig, SIG_DFL);
  ::raise(sig);  // delivered with the default action once the handler returns
  errno = saved;
}

using FileId = std::pair<dev_t, ino_t>;

// What a tool reads: every file (and folder) by device and inode, with the
// words that name it in a message.
struct InputSet {
  std::map<FileId, std::string> files;
  std::map<FileId, std::string> folders;
};

constexpr int kWalkDepth = 4;
constexpr long kWalkEntries = 100000;

// Calls visit(path, stat) for the entries of dir and of its subfolders
// (through symlinks, each folder once, kWalkDepth levels, at most
// kWalkEntries entries), skipping the folder `skip`.
template <typename Visit>
void walk_folder(const std::string& dir, int depth, const FileId* skip, std::map<FileId, bool>& seen, long& budget,
                 Visit&& visit) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> subfolders;
  while (struct dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (--budget < 0) break;
    const std::string path = join_path(dir, name);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;  // a dangling link
    const FileId id{st.st_dev, st.st_ino};
    if (skip != nullptr && id == *skip) continue;
    visit(path, st);
    if (S_ISDIR(st.st_mode) && depth < kWalkDepth && seen.emplace(id, true).second) subfolders.push_back(path);
  }
  ::closedir(d);
  for (const auto& sub : subfolders) walk_folder(sub, depth + 1, skip, seen, budget, visit);
}

InputSet collect_inputs(const std::vector<std::string>& inputs, const FileId* skip) {
  InputSet set;
  std::map<FileId, bool> seen;
  long budget = kWalkEntries;
  for (const std::string& input : inputs) {
    if (input.empty() || input == "-") continue;
    struct stat st {};
    if (::stat(input.c_str(), &st) != 0) continue;
    const FileId id{st.st_dev, st.st_ino};
    if (!S_ISDIR(st.st_mode)) {
      set.files.emplace(id, "the input " + input);
      continue;
    }
    set.folders.emplace(id, "the input folder " + input);
    if (skip != nullptr && id == *skip) continue;
    if (!seen.emplace(id, true).second) continue;
    walk_folder(input, 1, skip, seen, budget, [&](const std::string& path, const struct stat& s) {
      (S_ISDIR(s.st_mode) ? set.folders : set.files)
          .emplace(FileId{s.st_dev, s.st_ino}, path + " (in the input folder " + input + ")");
    });
  }
  return set;
}

}  // namespace

// ---- MappedFile ------------------------------------------------------------

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    close_fd(fd);
    throw Error(path + ": cannot stat: " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) {
    close_fd(fd);
    throw Error(path + ": is a directory, not a file");
  }
  if (!S_ISREG(st.st_mode)) {
    close_fd(fd);
    throw Error(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<std::size_t>(st.st_size);
  if (file->size_ > 0) {
    // Private and writable: tensors that view the mapping may be modified in
    // place by callers, and those writes must stay in this process's pages.
    void* addr = ::mmap(nullptr, file->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      close_fd(fd);
      throw Error(path + ": cannot map " + std::to_string(file->size_) +
                  " bytes: " + errno_text(err));
    }
    file->data_ = static_cast<std::uint8_t*>(addr);
  }
  // The mapping keeps its own reference to the file.
  close_fd(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

// ---- read_text_file --------------------------------------------------------

std::string read_text_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close_fd(fd);
    throw Error(path + ": is a directory, not a file");
  }
  std::string text;
  if (st.st_size > 0) text.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close_fd(fd);
      throw Error(path + ": cannot read: " + errno_text(err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  close_fd(fd);
  return text;
}

// ---- AtomicFileWriter ------------------------------------------------------

std::string follow_symlinks(const std::string& path) {
  std::string current = path;
  for (int hop = 0; hop < 40; ++hop) {
    struct stat st {};
    if (::lstat(current.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return current;
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 255) + 1, '\0');
    ssize_t n = ::readlink(current.c_str(), target.data(), target.size());
    if (n < 0) throw Error(path + ": cannot read the symlink " + current + ": " + errno_text(errno));
    if (static_cast<std::size_t>(n) >= target.size()) {  // grew meanwhile; read it again
      --hop;
      continue;
    }
    target.resize(static_cast<std::size_t>(n));
    if (target.empty()) return current;
    const std::size_t slash = current.find_last_of('/');
    current = target[0] == '/' || slash == std::string::npos ? target : current.substr(0, slash + 1) + target;
  }
  throw Error(path + ": too many levels of symbolic links");
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path), target_(follow_symlinks(path)) {
  struct stat st {};
  const bool exists = ::stat(target_.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) throw Error(path + ": is a directory, not a file");
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or a FIFO: renaming a regular file over it would destroy it
    // (as root, even /dev/null), so it is written in place. Opening a FIFO
    // waits for its reader.
    do {
      fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw Error(path + ": cannot open for writing: " + errno_text(errno));
    in_place_ = true;
    return;
  }
  // pid + a process-wide counter keeps concurrent writers (threads or
  // processes) from sharing a temporary file; O_EXCL makes sure of it.
  static std::atomic<unsigned long> counter{0};
  tmp_path_ = target_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    throw Error(path + ": cannot create temporary file " + tmp_path_ + ": " + errno_text(errno));
  }
  slot_ = cleanup_add(tmp_path_, /*folder=*/false);
  // Replacing a file keeps its permission bits, as editors do.
  if (exists) ::fchmod(fd_, st.st_mode & 07777);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

// Closes and removes the temporary file (nothing is removed in place).
void AtomicFileWriter::discard() {
  if (fd_ >= 0) close_fd(fd_);
  fd_ = -1;
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  tmp_path_.clear();
  cleanup_remove(slot_);
  slot_ = -1;
}

void AtomicFileWriter::write(const void* bytes, std::size_t size) {
  if (committed_) throw Error(path_ + ": write after commit");
  if (fd_ < 0) throw Error(path_ + ": write after a failed write or commit");
  const char* p = static_cast<const char*>(bytes);
  while (size > 0) {
    // Linux writes at most ~2 GiB per call; larger requests come back partial
    // anyway, so ask for no more than that.
    std::size_t chunk = size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30);
    ssize_t n = ::write(fd_, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      discard();
      throw Error(path_ + ": cannot write: " + errno_text(err));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  if (committed_) throw Error(path_ + ": committed twice");
  if (fd_ < 0) throw Error(path_ + ": commit after a failed write or commit");
  if (in_place_) {
    const int fd = fd_;
    fd_ = -1;
    if (close_fd(fd) != 0) throw Error(path_ + ": cannot close: " + errno_text(errno));
    committed_ = true;
    return;
  }
  auto fail = [&](const std::string& what, int err) {
    discard();
    throw Error(path_ + ": " + what + ": " + errno_text(err));
  };
  // Data must be on disk before the rename makes it visible; otherwise a crash
  // could leave the new name pointing at an empty or partial file.
  if (::fsync(fd_) != 0) {
    int err = errno;
    fail("cannot flush to disk", err);
  }
  int fd = fd_;
  fd_ = -1;
  if (close_fd(fd) != 0) {
    int err = errno;
    fail("cannot close temporary file", err);
  }
  // Inside a temporary folder the file is registered under its new name
  // before it gets it, so an interrupt can still empty the folder.
  const int final_slot = cleanup_add_if_in_folder(target_);
  if (::rename(tmp_path_.c_str(), target_.c_str()) != 0) {
    int err = errno;
    cleanup_remove(final_slot);
    fail("cannot rename " + tmp_path_ + " into place", err);
  }
  committed_ = true;
  cleanup_remove(slot_);
  slot_ = -1;
  // Persist the rename itself. Some file systems cannot fsync a directory
  // (EINVAL); the file is already in place there, so that is not an error.
  int dir_fd = ::open(parent_dir(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    int rc = ::fsync(dir_fd);
    int err = errno;
    close_fd(dir_fd);
    if (rc != 0 && err != EINVAL && err != EROFS) {
      throw Error(path_ + ": written, but cannot flush its folder to disk: " + errno_text(err));
    }
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFileWriter writer(path);
  writer.write(content);
  writer.commit();
}

// ---- OutputFile --------------------------------------------------------------

OutputFile::OutputFile(const std::string& path) : path_(path) {
  if (path != "-") file_ = std::make_unique<AtomicFileWriter>(path);
}

void OutputFile::write(const std::string& text) {
  if (file_) {
    file_->write(text);
    return;
  }
  std::cout << text;
  if (!std::cout) throw Error("writing to standard output failed");
}

void OutputFile::commit() {
  if (file_) {
    file_->commit();
    return;
  }
  std::cout.flush();
  if (!std::cout) throw Error("writing to standard output failed");
}

// ---- output checks -------------------------------------------------------------

void check_output_files(const std::vector<std::string>& outputs, const std::vector<std::string>& inputs) {
  const InputSet in = collect_inputs(inputs, nullptr);
  std::map<FileId, std::string> existing;  // regular files already named as an output
  std::map<std::string, std::string> created;  // new files, by their folder's real path and name
  bool stdout_taken = false;
  for (const std::string& output : outputs) {
    if (output.empty()) continue;
    if (output == "-") {
      if (stdout_taken) throw Error("-: two outputs are standard output");
      stdout_taken = true;
      continue;
    }
    const std::string target = follow_symlinks(output);
    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) throw Error(output + ": is a directory, not a file");
      const FileId id{st.st_dev, st.st_ino};
      const auto input = in.files.find(id);
      if (input != in.files.end()) {
        throw Error(output + ": is the same file as " + input->second + "; refusing to overwrite an input");
      }
      // Two outputs may share a device (/dev/null), not a regular file.
      if (S_ISREG(st.st_mode) && !existing.emplace(id, output).second) {
        throw Error(output + ": is the same file as the output " + existing[id]);
      }
      continue;
    }
    const std::string folder = parent_dir(target);
    char real[PATH_MAX];
    if (::realpath(folder.c_str(), real) == nullptr || !is_directory(real)) {
      throw Error(output + ": cannot be written: no folder " + folder);
    }
    const std::size_t slash = target.find_last_of('/');
    const std::string key = std::string(real) + "/" + (slash == std::string::npos ? target : target.substr(slash + 1));
    if (!created.emplace(key, output).second) throw Error(output + ": is the same file as the output " + created[key]);
  }
}

void check_output_folder(const std::string& folder, const std::vector<std::string>& inputs,
                         const OutputFolderRules& rules) {
  if (folder.empty()) return;
  if (folder == "-") throw Error("-: an output folder cannot be standard output");
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0) return;  // created by the tool
  if (!S_ISDIR(st.st_mode)) throw Error(folder + ": exists and is not a folder");
  const FileId out_id{st.st_dev, st.st_ino};
  const InputSet in = collect_inputs(inputs, &out_id);
  const auto same = in.folders.find(out_id);
  if (same != in.folders.end()) throw Error(folder + ": the output folder is " + same->second);
  std::map<FileId, bool> seen{{out_id, true}};
  long budget = kWalkEntries;
  std::string held;
  walk_folder(folder, 1, nullptr, seen, budget, [&](const std::string&, const struct stat& s) {
    if (!held.empty()) return;
    const auto& map = S_ISDIR(s.st_mode) ? in.folders : in.files;
    const auto found = map.find(FileId{s.st_dev, s.st_ino});
    if (found != map.end()) held = found->second;
  });
  if (!held.empty()) throw Error(folder + ": the output folder holds " + held);

  bool empty = true, marked = false;
  if (DIR* d = ::opendir(folder.c_str())) {
    while (struct dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      empty = false;
      for (const auto& marker : rules.markers) marked = marked || name == marker;
    }
    ::closedir(d);
  }
  if (empty || marked || rules.overwrite) return;
  std::string names;
  for (const auto& marker : rules.markers) names += (names.empty() ? "" : ", ") + marker;
  const std::string what = names.empty() ? "exists and is not empty"
                                         : "exists, is not empty and is not " + rules.kind + " (it holds none of " +
                                               names + ")";
  throw Error(folder + ": " + what + "; refusing to write into it (" + rules.overwrite_flag + " to use it anyway)");
}

// ---- cleanup on interrupt --------------------------------------------------------

void install_interrupt_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    for (int sig : signals) sigaddset(&action.sa_mask, sig);  // one cleanup at a time
    for (int sig : signals) {
      struct sigaction old {};
      // An ignored signal (nohup) or someone else's handler stays as it is.
      if (::sigaction(sig, nullptr, &old) != 0) continue;
      if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
      ::sigaction(sig, &action, nullptr);
    }
  });
}

TemporaryFolder::TemporaryFolder(const std::string& path) : path_(path) {
  slot_ = cleanup_add(path, /*folder=*/true);
}

TemporaryFolder::~TemporaryFolder() {
  if (slot_ < 0) return;
  std::lock_guard<std::mutex> lock(cleanup_mutex());
  for (int i = 0; i < kCleanupSlots; ++i) {
    if (g_cleanup[i].used.load(std::memory_order_relaxed) && g_cleanup[i].owner == slot_) cleanup_remove_locked(i);
  }
  cleanup_remove_locked(slot_);
}

// ---- paths -----------------------------------------------------------------

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  std::size_t dir_end = dir.find_last_not_of('/');
  std::size_t name_begin = name.find_first_not_of('/');
  std::string head = dir_end == std::string::npos ? std::string() : dir.substr(0, dir_end + 1);
  std::string tail = name_begin == std::string::npos ? std::string() : name.substr(name_begin);
  return head + "/" + tail;
}

}  // namespace openrm
