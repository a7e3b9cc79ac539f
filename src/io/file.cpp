#include "openrm/io/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

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

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  // pid + a process-wide counter keeps concurrent writers (threads or
  // processes) from sharing a temporary file; O_EXCL makes sure of it.
  static std::atomic<unsigned long> counter{0};
  tmp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    throw Error(path + ": cannot create temporary file " + tmp_path_ + ": " + errno_text(errno));
  }
  // Replacing a file keeps its permission bits, as editors do.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    ::fchmod(fd_, st.st_mode & 07777);
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  if (fd_ >= 0) close_fd(fd_);
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
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
      close_fd(fd_);
      fd_ = -1;
      ::unlink(tmp_path_.c_str());
      tmp_path_.clear();
      throw Error(path_ + ": cannot write: " + errno_text(err));
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  if (committed_) throw Error(path_ + ": committed twice");
  if (fd_ < 0) throw Error(path_ + ": commit after a failed write or commit");
  auto fail = [&](const std::string& what, int err) {
    if (fd_ >= 0) close_fd(fd_);
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
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
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    fail("cannot rename " + tmp_path_ + " into place", err);
  }
  committed_ = true;
  // Persist the rename itself. Some file systems cannot fsync a directory
  // (EINVAL); the file is already in place there, so that is not an error.
  int dir_fd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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

// ---- paths -----------------------------------------------------------------

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
