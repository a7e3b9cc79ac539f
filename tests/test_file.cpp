// File utilities: memory maps, text reads, atomic writes, path helpers.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "openrm/io/file.h"
#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

using test::contains;
using test::error_of;
using test::read_bytes;
using test::starts_with;
using test::TempDir;
using test::write_bytes;

// Everything in dir except the names listed, to catch stray temporary files.
std::vector<std::string> other_files(const std::string& dir,
                                     const std::vector<std::string>& known) {
  std::vector<std::string> others;
  for (const auto& item : std::filesystem::directory_iterator(dir)) {
    std::string name = item.path().filename().string();
    bool is_known = false;
    for (const std::string& k : known) is_known = is_known || name == k;
    if (!is_known) others.push_back(name);
  }
  return others;
}

TEST(MappedFile, MapsWholeFile) {
  TempDir dir;
  std::string content("\x00\x01hello\xff", 8);
  write_bytes(dir.file("a.bin"), content);
  auto map = MappedFile::open(dir.file("a.bin"));
  ASSERT_EQ(map->size(), content.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(map->data()), map->size()), content);
  EXPECT_EQ(map->path(), dir.file("a.bin"));
}

TEST(MappedFile, EmptyFileHasNoData) {
  TempDir dir;
  write_bytes(dir.file("empty"), "");
  auto map = MappedFile::open(dir.file("empty"));
  EXPECT_EQ(map->size(), 0u);
  EXPECT_EQ(map->data(), nullptr);
}

TEST(MappedFile, MissingFileNamesPath) {
  TempDir dir;
  std::string path = dir.file("nope.safetensors");
  std::string message = error_of([&] { MappedFile::open(path); });
  EXPECT_TRUE(starts_with(message, path));
  EXPECT_TRUE(contains(message, "No such file"));
}

TEST(MappedFile, DirectoryIsRejected) {
  TempDir dir;
  std::string message = error_of([&] { MappedFile::open(dir.path()); });
  EXPECT_TRUE(starts_with(message, dir.path()));
  EXPECT_TRUE(contains(message, "is a directory"));
}

TEST(MappedFile, WritesToMappingDoNotReachFile) {
  TempDir dir;
  write_bytes(dir.file("a.bin"), "abcd");
  auto map = MappedFile::open(dir.file("a.bin"));
  const_cast<std::uint8_t*>(map->data())[0] = 'z';
  EXPECT_EQ(map->data()[0], 'z');
  EXPECT_EQ(read_bytes(dir.file("a.bin")), "abcd");
}

TEST(MappedFile, StaysReadableAfterFileIsDeleted) {
  TempDir dir;
  write_bytes(dir.file("a.bin"), "abcd");
  auto map = MappedFile::open(dir.file("a.bin"));
  std::filesystem::remove(dir.file("a.bin"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(map->data()), 4), "abcd");
}

TEST(ReadTextFile, ReadsContent) {
  TempDir dir;
  std::string content(200000, 'x');  // more than one read() call's buffer
  content[123456] = '\n';
  write_bytes(dir.file("t.txt"), content);
  EXPECT_EQ(read_text_file(dir.file("t.txt")), content);
}

TEST(ReadTextFile, MissingFileNamesPath) {
  TempDir dir;
  std::string path = dir.file("config.json");
  std::string message = error_of([&] { read_text_file(path); });
  EXPECT_TRUE(starts_with(message, path));
  EXPECT_TRUE(contains(message, "cannot open"));
}

TEST(ReadTextFile, DirectoryIsRejected) {
  TempDir dir;
  EXPECT_TRUE(contains(error_of([&] { read_text_file(dir.path()); }), "is a directory"));
}

TEST(AtomicFileWriter, CreatesFileAndLeavesNoTemporary) {
  TempDir dir;
  write_file_atomic(dir.file("out.txt"), "new content");
  EXPECT_EQ(read_bytes(dir.file("out.txt")), "new content");
  EXPECT_EQ(other_files(dir.path(), {"out.txt"}), std::vector<std::string>{});
}

TEST(AtomicFileWriter, ReplacesExistingFile) {
  TempDir dir;
  write_bytes(dir.file("out.txt"), "old content that is longer");
  write_file_atomic(dir.file("out.txt"), "new");
  EXPECT_EQ(read_bytes(dir.file("out.txt")), "new");
}

TEST(AtomicFileWriter, WritesLargeContentInPieces) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < (3 << 20); ++i) content.push_back(static_cast<char>(i * 131 % 251));
  AtomicFileWriter writer(dir.file("big.bin"));
  writer.write(content.data(), 1000);
  writer.write(content.data() + 1000, content.size() - 1000);
  writer.commit();
  EXPECT_EQ(read_bytes(dir.file("big.bin")), content);
}

TEST(AtomicFileWriter, UncommittedWriterKeepsOldFileAndRemovesTemporary) {
  TempDir dir;
  write_bytes(dir.file("out.txt"), "old");
  {
    AtomicFileWriter writer(dir.file("out.txt"));
    writer.write("half of the new cont");
    // The temporary file is beside the target while writing.
    EXPECT_EQ(other_files(dir.path(), {"out.txt"}).size(), 1u);
  }
  EXPECT_EQ(read_bytes(dir.file("out.txt")), "old");
  EXPECT_EQ(other_files(dir.path(), {"out.txt"}), std::vector<std::string>{});
}

TEST(AtomicFileWriter, FolderIsRefusedBeforeAnythingIsWritten) {
  TempDir dir;
  std::string target = dir.file("target");
  std::filesystem::create_directory(target);
  write_bytes(dir.file("target/keep"), "keep me");
  std::string message = error_of([&] { write_file_atomic(target, "content"); });
  EXPECT_TRUE(starts_with(message, target));
  EXPECT_TRUE(contains(message, "is a directory"));
  EXPECT_EQ(read_bytes(dir.file("target/keep")), "keep me");
  EXPECT_EQ(other_files(dir.path(), {"target"}), std::vector<std::string>{});
}

TEST(AtomicFileWriter, MissingFolderNamesPath) {
  TempDir dir;
  std::string path = dir.file("no/such/folder/out.txt");
  std::string message = error_of([&] { write_file_atomic(path, "x"); });
  EXPECT_TRUE(starts_with(message, path));
  EXPECT_TRUE(contains(message, "cannot create temporary file"));
}

TEST(AtomicFileWriter, KeepsPermissionsOfReplacedFile) {
  TempDir dir;
  write_bytes(dir.file("secret"), "old");
  ASSERT_EQ(::chmod(dir.file("secret").c_str(), 0600), 0);
  write_file_atomic(dir.file("secret"), "new");
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicFileWriter, RejectsUseAfterCommit) {
  TempDir dir;
  AtomicFileWriter writer(dir.file("out.txt"));
  writer.write("a");
  writer.commit();
  EXPECT_TRUE(contains(error_of([&] { writer.write("b"); }), "write after commit"));
  EXPECT_TRUE(contains(error_of([&] { writer.commit(); }), "committed twice"));
  EXPECT_EQ(read_bytes(dir.file("out.txt")), "a");
}

TEST(AtomicFileWriter, ConcurrentWritersUseDistinctTemporaries) {
  TempDir dir;
  AtomicFileWriter first(dir.file("out.txt"));
  AtomicFileWriter second(dir.file("out.txt"));
  first.write("first");
  second.write("second");
  EXPECT_EQ(other_files(dir.path(), {}).size(), 2u);
  first.commit();
  second.commit();
  EXPECT_EQ(read_bytes(dir.file("out.txt")), "second");
  EXPECT_EQ(other_files(dir.path(), {"out.txt"}), std::vector<std::string>{});
}

// ---- output paths -------------------------------------------------------------

// Reads a FIFO to its end in a thread (a writer's open waits for it).
class FifoReader {
 public:
  explicit FifoReader(const std::string& path)
      : thread_([this, path] { text_ = read_bytes(path); }) {}
  std::string text() {
    thread_.join();
    return text_;
  }

 private:
  std::string text_;
  std::thread thread_;
};

TEST(AtomicFileWriter, ReplacesASymlinksTargetAndKeepsTheLink) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("real"));
  write_bytes(dir.file("real/target.txt"), "old");
  std::filesystem::create_symlink("real/target.txt", dir.file("hop"));  // relative, two hops
  std::filesystem::create_symlink(dir.file("hop"), dir.file("link"));
  write_file_atomic(dir.file("link"), "new");
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("link")));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("hop")));
  EXPECT_EQ(read_bytes(dir.file("real/target.txt")), "new");
  EXPECT_EQ(other_files(dir.path(), {"real", "hop", "link"}), std::vector<std::string>{});
  EXPECT_EQ(other_files(dir.file("real"), {"target.txt"}), std::vector<std::string>{});
  EXPECT_EQ(follow_symlinks(dir.file("link")), dir.file("real/target.txt"));

  // A dangling link gets its target created.
  std::filesystem::create_symlink("made.txt", dir.file("dangling"));
  write_file_atomic(dir.file("dangling"), "made");
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("dangling")));
  EXPECT_EQ(read_bytes(dir.file("made.txt")), "made");

  std::filesystem::create_symlink("loop-b", dir.file("loop-a"));
  std::filesystem::create_symlink("loop-a", dir.file("loop-b"));
  EXPECT_TRUE(contains(error_of([&] { write_file_atomic(dir.file("loop-a"), "x"); }), "too many levels"));
}

TEST(AtomicFileWriter, WritesAFifoInPlace) {
  TempDir dir;
  const std::string fifo = dir.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  FifoReader reader(fifo);
  AtomicFileWriter writer(fifo);
  EXPECT_TRUE(writer.in_place());
  writer.write("first ");
  writer.write("second\n");
  writer.commit();
  EXPECT_EQ(reader.text(), "first second\n");
  struct stat st {};
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(other_files(dir.path(), {"pipe"}), std::vector<std::string>{});
}

TEST(AtomicFileWriter, WritesACharacterDeviceInPlace) {
  TempDir dir;
  // A null device of our own (needs root and a file system that allows
  // device nodes), so that a failure cannot touch the system's /dev/null.
  const std::string null = dir.file("null");
  if (::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) GTEST_SKIP() << "cannot create a device node here";
  const int probe = ::open(null.c_str(), O_WRONLY);
  if (probe < 0) GTEST_SKIP() << "device nodes do not open on this file system";
  ::close(probe);
  write_file_atomic(null, "scores nobody reads\n");
  struct stat st {};
  ASSERT_EQ(::lstat(null.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(other_files(dir.path(), {"null"}), std::vector<std::string>{});
}

TEST(OutputFile, DashIsStandardOutput) {
  TempDir dir;
  OutputFile out("-");
  EXPECT_TRUE(out.is_stdout());
  OutputFile file(dir.file("out.txt"));
  EXPECT_FALSE(file.is_stdout());
  file.write("text");
  file.commit();
  EXPECT_EQ(read_bytes(dir.file("out.txt")), "text");
  EXPECT_FALSE(path_exists(dir.file("-")));
}

TEST(CheckOutputFiles, RefusesAnInputAndNamesBoth) {
  TempDir dir;
  const std::string in = dir.file("in.jsonl");
  write_bytes(in, "data\n");
  std::filesystem::create_directory(dir.file("model"));
  write_bytes(dir.file("model/config.json"), "{}");
  std::filesystem::create_symlink(in, dir.file("link.jsonl"));
  std::filesystem::create_hard_link(in, dir.file("hard.jsonl"));
  const std::vector<std::string> inputs = {in, dir.file("model"), "-", ""};

  std::string message = error_of([&] { check_output_files({in}, inputs); });
  EXPECT_TRUE(starts_with(message, in + ": is the same file as the input " + in)) << message;
  // Through a symlink and a hard link: the same inode.
  message = error_of([&] { check_output_files({dir.file("link.jsonl")}, inputs); });
  EXPECT_TRUE(starts_with(message, dir.file("link.jsonl") + ": is the same file as the input " + in)) << message;
  message = error_of([&] { check_output_files({dir.file("hard.jsonl")}, inputs); });
  EXPECT_TRUE(contains(message, "is the same file as the input " + in)) << message;
  // A file of an input folder.
  message = error_of([&] { check_output_files({dir.file("model/config.json")}, inputs); });
  EXPECT_TRUE(contains(message, "model/config.json (in the input folder " + dir.file("model") + ")")) << message;
  EXPECT_EQ(read_bytes(in), "data\n");

  // New files, "-", another file of the same folder, an input that is missing.
  EXPECT_NO_THROW(check_output_files({dir.file("out.jsonl"), "-", dir.file("model/scores.jsonl")},
                                     {in, dir.file("model"), dir.file("missing.jsonl")}));
}

TEST(CheckOutputFiles, RefusesFoldersMissingFoldersAndTwoOutputsInOne) {
  TempDir dir;
  std::string message = error_of([&] { check_output_files({dir.path()}, {}); });
  EXPECT_TRUE(starts_with(message, dir.path() + ": is a directory")) << message;
  message = error_of([&] { check_output_files({dir.file("no/such/out.json")}, {}); });
  EXPECT_TRUE(starts_with(message, dir.file("no/such/out.json") + ": cannot be written: no folder")) << message;

  message = error_of([&] { check_output_files({dir.file("a.json"), dir.file("./a.json")}, {}); });
  EXPECT_TRUE(contains(message, "is the same file as the output " + dir.file("a.json"))) << message;
  write_bytes(dir.file("b.json"), "old");
  std::filesystem::create_symlink("b.json", dir.file("b-link"));
  message = error_of([&] { check_output_files({dir.file("b.json"), dir.file("b-link")}, {}); });
  EXPECT_TRUE(contains(message, "is the same file as the output " + dir.file("b.json"))) << message;
  EXPECT_TRUE(contains(error_of([&] { check_output_files({"-", "-"}, {}); }), "two outputs are standard output"));
  // A device may take any number of outputs.
  EXPECT_NO_THROW(check_output_files({"/dev/null", "/dev/null"}, {}));
  EXPECT_EQ(read_bytes(dir.file("b.json")), "old");
}

TEST(CheckOutputFolder, RefusesAnInputFolderOrOneThatHoldsAnInput) {
  TempDir dir;
  const std::string model = dir.file("model");
  std::filesystem::create_directories(model + "/checkpoints/checkpoint-00000002");
  write_bytes(model + "/config.json", "{}");
  write_bytes(model + "/checkpoints/checkpoint-00000002/config.json", "{}");
  OutputFolderRules rules;
  rules.markers = {"openrm.json"};

  std::string message = error_of([&] { check_output_folder(model, {model}, rules); });
  EXPECT_TRUE(starts_with(message, model + ": the output folder is the input folder " + model)) << message;
  std::filesystem::create_symlink(model, dir.file("model-link"));
  message = error_of([&] { check_output_folder(dir.file("model-link"), {model}, rules); });
  EXPECT_TRUE(contains(message, "the output folder is the input folder")) << message;

  // An input inside the output folder, given itself or as a symlink there.
  const std::string ckpt = model + "/checkpoints/checkpoint-00000002";
  message = error_of([&] { check_output_folder(model, {ckpt}, rules); });
  EXPECT_TRUE(contains(message, model + ": the output folder holds the input folder " + ckpt)) << message;
  const std::string data = dir.file("data.jsonl");
  write_bytes(data, "x\n");
  std::filesystem::create_directory(dir.file("out"));
  write_bytes(dir.file("out/openrm.json"), "{}");
  std::filesystem::create_symlink(data, dir.file("out/data.jsonl"));
  message = error_of([&] { check_output_folder(dir.file("out"), {data}, rules); });
  EXPECT_TRUE(contains(message, "the output folder holds the input " + data)) << message;

  // An output folder inside an input folder is fine (its content is not
  // an input), and so are new and empty folders.
  std::filesystem::create_directory(model + "/hf");
  write_bytes(model + "/hf/openrm.json", "{}");
  EXPECT_NO_THROW(check_output_folder(model + "/hf", {model}, rules));
  EXPECT_NO_THROW(check_output_folder(dir.file("new"), {model}, rules));
  std::filesystem::create_directory(dir.file("empty"));
  EXPECT_NO_THROW(check_output_folder(dir.file("empty"), {model}, rules));

  write_bytes(dir.file("a-file"), "x");
  message = error_of([&] { check_output_folder(dir.file("a-file"), {}, rules); });
  EXPECT_TRUE(starts_with(message, dir.file("a-file") + ": exists and is not a folder")) << message;
  EXPECT_TRUE(contains(error_of([&] { check_output_folder("-", {}, rules); }), "cannot be standard output"));
}

TEST(CheckOutputFolder, RefusesSomeoneElsesFolderUnlessTold) {
  TempDir dir;
  const std::string theirs = dir.file("theirs");
  std::filesystem::create_directory(theirs);
  write_bytes(theirs + "/config.json", "their config");
  OutputFolderRules rules;
  rules.markers = {"checkpoints", "training_config.json"};
  rules.kind = "an openrm run";
  std::string message = error_of([&] { check_output_folder(theirs, {}, rules); });
  EXPECT_TRUE(starts_with(message, theirs + ": exists, is not empty and is not an openrm run")) << message;
  EXPECT_TRUE(contains(message, "checkpoints, training_config.json")) << message;
  EXPECT_TRUE(contains(message, "--overwrite-output-dir")) << message;
  EXPECT_EQ(read_bytes(theirs + "/config.json"), "their config");

  rules.overwrite = true;
  EXPECT_NO_THROW(check_output_folder(theirs, {}, rules));
  rules.overwrite = false;
  std::filesystem::create_directory(theirs + "/checkpoints");
  EXPECT_NO_THROW(check_output_folder(theirs, {}, rules));
}

TEST(Paths, SameFile) {
  TempDir dir;
  write_bytes(dir.file("a"), "x");
  write_bytes(dir.file("b"), "x");
  std::filesystem::create_symlink(dir.file("a"), dir.file("l"));
  EXPECT_TRUE(same_file(dir.file("a"), dir.file("l")));
  EXPECT_FALSE(same_file(dir.file("a"), dir.file("b")));
  EXPECT_FALSE(same_file(dir.file("a"), dir.file("missing")));
}

// ---- cleanup on interrupt -----------------------------------------------------------

// Runs body in a child process that then raises `sig`; returns how the child
// ended (-signal, or the exit code).
template <typename Body>
int in_child_raising(int sig, Body&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      body();
      ::raise(sig);
    } catch (...) {
    }
    ::_exit(99);  // raise returned, or body threw
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return test::decode_status(status);
}

TEST(InterruptCleanup, RemovesTemporaryFilesAndFoldersThenDiesOfTheSignal) {
  for (int sig : {SIGINT, SIGTERM}) {
    TempDir dir;
    write_bytes(dir.file("out.jsonl"), "precious\n");
    write_bytes(dir.file("done.json"), "old");
    const std::string folder = dir.file(".tmp-export-hf-1");
    const int end = in_child_raising(sig, [&] {
      install_interrupt_cleanup();
      write_file_atomic(dir.file("done.json"), "new");  // committed: stays
      AtomicFileWriter pending(dir.file("out.jsonl"));
      pending.write("half of the new");
      std::filesystem::create_directory(folder);
      TemporaryFolder temporary(folder);
      write_file_atomic(folder + "/config.json", "{}");  // committed inside the folder
      AtomicFileWriter inside(folder + "/model.safetensors");
      inside.write("weights");
      if (other_files(dir.path(), {"out.jsonl", "done.json", ".tmp-export-hf-1"}).size() != 1u) ::_exit(98);
      ::raise(sig);
    });
    EXPECT_EQ(end, -sig);
    EXPECT_EQ(read_bytes(dir.file("out.jsonl")), "precious\n");
    EXPECT_EQ(read_bytes(dir.file("done.json")), "new");
    EXPECT_EQ(other_files(dir.path(), {"out.jsonl", "done.json"}), std::vector<std::string>{});
  }
}

TEST(InterruptCleanup, ForgetsFoldersAndFilesOnceTheyAreInPlace) {
  TempDir dir;
  const int end = in_child_raising(SIGTERM, [&] {
    install_interrupt_cleanup();
    const std::string tmp = dir.file(".tmp-checkpoint-2-1");
    std::filesystem::create_directory(tmp);
    {
      TemporaryFolder temporary(tmp);
      write_file_atomic(tmp + "/trainer_state.json", "{}");
      std::filesystem::rename(tmp, dir.file("checkpoint-00000002"));
    }
    // A later folder of the same name is not the registered one.
    std::filesystem::create_directory(tmp);
    write_bytes(tmp + "/trainer_state.json", "someone else's");
  });
  EXPECT_EQ(end, -SIGTERM);
  EXPECT_EQ(read_bytes(dir.file("checkpoint-00000002/trainer_state.json")), "{}");
  EXPECT_EQ(read_bytes(dir.file(".tmp-checkpoint-2-1/trainer_state.json")), "someone else's");
}

TEST(InterruptCleanup, LeavesAnIgnoredSignalIgnored) {
  TempDir dir;
  const int end = in_child_raising(SIGTERM, [&] {
    ::signal(SIGTERM, SIG_IGN);
    install_interrupt_cleanup();
    AtomicFileWriter pending(dir.file("out.jsonl"));
    pending.write("x");
    ::raise(SIGTERM);  // ignored: the body returns, the child exits 99
    pending.commit();
  });
  EXPECT_EQ(end, 99);
  EXPECT_EQ(read_bytes(dir.file("out.jsonl")), "x");
}

TEST(Paths, JoinPathUsesExactlyOneSlash) {
  EXPECT_EQ(join_path("a", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "b"), "a/b");
  EXPECT_EQ(join_path("a//", "/b"), "a/b");
  EXPECT_EQ(join_path("/", "b"), "/b");
  EXPECT_EQ(join_path("", "b"), "b");
  EXPECT_EQ(join_path("/m/model", "config.json"), "/m/model/config.json");
}

TEST(Paths, ExistsAndIsDirectory) {
  TempDir dir;
  write_bytes(dir.file("f"), "x");
  EXPECT_TRUE(path_exists(dir.file("f")));
  EXPECT_FALSE(is_directory(dir.file("f")));
  EXPECT_TRUE(path_exists(dir.path()));
  EXPECT_TRUE(is_directory(dir.path()));
  EXPECT_FALSE(path_exists(dir.file("missing")));
  EXPECT_FALSE(is_directory(dir.file("missing")));
}

TEST(Sha256, KnownVectors) {
  // FIPS 180-4 examples.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, FilesMatchCoreutils) {
  TempDir dir;
  // Sizes around the 64-byte block and 1 MiB read boundaries.
  for (std::size_t size : {0u, 55u, 56u, 64u, 1000u, (1u << 20) + 7u}) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 251);
    const std::string path = dir.file("f" + std::to_string(size));
    write_bytes(path, bytes);
    const std::string out = dir.file("sum");
    ASSERT_EQ(std::system(("sha256sum '" + path + "' > '" + out + "'").c_str()), 0);
    EXPECT_EQ(sha256_file(path), read_bytes(out).substr(0, 64)) << size;
  }
  EXPECT_TRUE(contains(error_of([&] { sha256_file(dir.file("missing")); }), "missing"));
}

}  // namespace
}  // namespace openrm
