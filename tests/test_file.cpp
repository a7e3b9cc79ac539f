// File utilities: memory maps, text reads, atomic writes, path helpers.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
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

TEST(AtomicFileWriter, FailedRenameThrowsAndRemovesTemporary) {
  TempDir dir;
  // rename() cannot replace a non-empty directory, whatever the permissions.
  std::string target = dir.file("target");
  std::filesystem::create_directory(target);
  write_bytes(dir.file("target/keep"), "keep me");
  std::string message = error_of([&] { write_file_atomic(target, "content"); });
  EXPECT_TRUE(starts_with(message, target));
  EXPECT_TRUE(contains(message, "cannot rename"));
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
