// safetensors: round trips, the on-disk layout against a hand-assembled
// reference, every kind of corrupt file, sharded folders, atomic writes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "openrm/io/safetensors.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using test::contains;
using test::error_of;
using test::read_bytes;
using test::starts_with;
using test::TempDir;
using test::write_bytes;

std::string le64(std::uint64_t n) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
  return bytes;
}

// A file per the format: length prefix, header text (not padded), data.
std::string st_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string raw_bytes(const at::Tensor& tensor) {
  at::Tensor t = tensor.contiguous();
  return std::string(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& item : std::filesystem::directory_iterator(dir)) {
    names.push_back(item.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Random bit patterns (NaNs and denormals included) in every dtype, plus a
// scalar and an empty tensor: a round trip must return them bit for bit.
NamedTensors every_dtype() {
  torch::manual_seed(7);
  auto bits16 = [](at::IntArrayRef shape) { return at::randint(-32768, 32768, shape, at::kShort); };
  return {
      {"f64", at::randint(-(1LL << 40), 1LL << 40, {3, 2}, at::kLong).view(at::kDouble)},
      {"f32", at::randint(-(1 << 30), 1 << 30, {5, 3}, at::kInt).view(at::kFloat)},
      {"f16", bits16({4, 4}).view(at::kHalf)},
      {"bf16", bits16({2, 7}).view(at::kBFloat16)},
      {"i64", at::randint(-(1LL << 50), 1LL << 50, {6}, at::kLong)},
      {"i32", at::randint(-(1 << 30), 1 << 30, {2, 2, 2}, at::kInt)},
      {"i16", bits16({5})},
      {"i8", at::randint(-128, 128, {9}, at::kChar)},
      {"u8", at::randint(0, 256, {3, 3}, at::kByte)},
      {"bool", at::randint(0, 2, {7}, at::kLong).to(at::kBool)},
      {"scalar", at::scalar_tensor(3.25, at::kFloat)},
      {"empty", at::empty({0, 3}, at::kFloat)},
  };
}

void expect_same_tensors(const NamedTensors& expected, const WeightStore& store) {
  ASSERT_EQ(store.names().size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(store.contains(name));
    at::Tensor loaded = store.tensor(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type());
    EXPECT_EQ(loaded.sizes(), tensor.sizes());
    EXPECT_EQ(raw_bytes(loaded), raw_bytes(tensor));
  }
}

// ---- round trips ---------------------------------------------------------------

TEST(Safetensors, RoundTripsEveryDtypeBitForBit) {
  TempDir dir;
  NamedTensors tensors = every_dtype();
  save_safetensors(dir.file("m.safetensors"), tensors);
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  ASSERT_EQ(file->entries().size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    SCOPED_TRACE(name);
    EXPECT_EQ(file->entries()[i].name, name);  // header keeps the given order
    EXPECT_EQ(file->entries()[i].dtype, dtype_of(tensor));
    at::Tensor loaded = file->tensor(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type());
    EXPECT_EQ(loaded.sizes(), tensor.sizes());
    EXPECT_EQ(raw_bytes(loaded), raw_bytes(tensor));
  }
  EXPECT_EQ(file->header().metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  EXPECT_EQ(file->header().data_start % 8, 0u);
  EXPECT_EQ(file->tensor("scalar").dim(), 0);
  EXPECT_EQ(file->tensor("scalar").item<float>(), 3.25f);
}

TEST(Safetensors, SavesNonContiguousTensorsByValue) {
  TempDir dir;
  at::Tensor base = at::arange(12, at::kFloat).view({3, 4});
  at::Tensor transposed = base.t();
  at::Tensor sliced = base.index({at::indexing::Slice(), at::indexing::Slice(1, 3)});
  save_safetensors(dir.file("m.safetensors"), {{"t", transposed}, {"s", sliced}});
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  EXPECT_TRUE(at::equal(file->tensor("t"), transposed));
  EXPECT_TRUE(at::equal(file->tensor("s"), sliced));
}

TEST(Safetensors, WritesMetadataGiven) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"w", at::ones({2})}},
                   {{"format", "pt"}, {"note", "a \"quoted\" value"}});
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  EXPECT_EQ(file->header().metadata.at("note"), "a \"quoted\" value");
}

TEST(Safetensors, TensorViewsTheMappingWhenAligned) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"a", at::ones({3})}, {"w", at::arange(4.0)}});
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  // Two reads of a zero-copy tensor share the mapped bytes.
  EXPECT_EQ(file->tensor("w").data_ptr(), file->tensor("w").data_ptr());
}

TEST(Safetensors, TensorOutlivesTheFileObject) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"w", at::arange(1000, at::kFloat)}});
  at::Tensor w;
  {
    auto file = SafetensorsFile::open(dir.file("m.safetensors"));
    w = file->tensor("w");
  }
  std::filesystem::remove(dir.file("m.safetensors"));
  // The mapping lives as long as the tensor does (ASan would flag a read of
  // unmapped memory; without it this would crash).
  EXPECT_TRUE(at::equal(w, at::arange(1000, at::kFloat)));
}

TEST(Safetensors, WritingToTensorLeavesFileUnchanged) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"w", at::zeros({4})}});
  std::string before = read_bytes(dir.file("m.safetensors"));
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  at::Tensor w = file->tensor("w");
  w.fill_(5.0);
  EXPECT_EQ(read_bytes(dir.file("m.safetensors")), before);
  EXPECT_TRUE(
      at::equal(SafetensorsFile::open(dir.file("m.safetensors"))->tensor("w"), at::zeros({4})));
}

TEST(Safetensors, CopiesMisalignedData) {
  // A header of odd length (a writer that does not pad) puts the F32 data at
  // an odd address; the tensor must then be an aligned copy.
  std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  header += (header.size() % 2 == 0) ? " " : "";
  ASSERT_EQ((8 + header.size()) % 2, 1u);
  float values[3] = {1.5f, -2.0f, 1e-3f};
  TempDir dir;
  write_bytes(dir.file("m.safetensors"),
              st_bytes(header, std::string(reinterpret_cast<const char*>(values), 12)));
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  at::Tensor w = file->tensor("w");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(w.data_ptr()) % alignof(float), 0u);
  EXPECT_NE(w.data_ptr(), file->tensor("w").data_ptr());  // copies, not views
  EXPECT_TRUE(at::equal(w, at::tensor({1.5f, -2.0f, 1e-3f})));
}

TEST(Safetensors, ZeroElementTensorsAreLegal) {
  TempDir dir;
  std::string header = R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                       R"("w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                       R"("z":{"dtype":"I64","shape":[3,0],"data_offsets":[2,2]}})";
  write_bytes(dir.file("m.safetensors"), st_bytes(header, "ab"));
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  EXPECT_EQ(file->tensor("e").sizes(), (std::vector<std::int64_t>{0, 5}));
  EXPECT_EQ(file->tensor("z").sizes(), (std::vector<std::int64_t>{3, 0}));
  EXPECT_EQ(file->tensor("w")[1].item<std::uint8_t>(), 'b');
}

TEST(Safetensors, EmptyHeaderObjectIsAValidFile) {
  TempDir dir;
  write_bytes(dir.file("m.safetensors"), st_bytes("{}", ""));
  EXPECT_TRUE(SafetensorsFile::open(dir.file("m.safetensors"))->entries().empty());
}

TEST(Safetensors, MissingTensorNamesFileAndTensor) {
  TempDir dir;
  save_safetensors(dir.file("m.safetensors"), {{"w", at::ones({1})}});
  auto file = SafetensorsFile::open(dir.file("m.safetensors"));
  EXPECT_EQ(file->find("x"), nullptr);
  std::string message = error_of([&] { file->tensor("x"); });
  EXPECT_TRUE(starts_with(message, dir.file("m.safetensors")));
  EXPECT_TRUE(contains(message, "no tensor named 'x'"));
}

TEST(Safetensors, DtypeOfRejectsTypesSafetensorsLacks) {
  EXPECT_EQ(dtype_of(at::ones({1}, at::kBFloat16)), DType::BF16);
  std::string message = error_of([] { dtype_of(at::ones({1}, at::kComplexFloat)); });
  EXPECT_TRUE(contains(message, "ComplexFloat"));
  EXPECT_TRUE(contains(message, "supported: F64, F32"));
}

TEST(Safetensors, SaveRejectsBadNames) {
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  EXPECT_TRUE(contains(error_of([&] {
                         save_safetensors(path, {{"", at::ones({1})}});
                       }),
                       "empty name"));
  EXPECT_TRUE(contains(error_of([&] {
                         save_safetensors(path, {{"w", at::ones({1})}, {"w", at::ones({1})}});
                       }),
                       "tensor name 'w' given twice"));
  EXPECT_TRUE(contains(error_of([&] {
                         save_safetensors(path, {{"__metadata__", at::ones({1})}});
                       }),
                       "reserved"));
  EXPECT_FALSE(path_exists(path));
}

// ---- the on-disk layout against an independent reference ---------------------

// The tensors of tests/safetensors_reference.py's reference_tensors().
NamedTensors reference_tensors() {
  auto bf16 = at::tensor({1.0f, -2.0f, 0.5f, 3.0f}).to(at::kBFloat16).view({2, 2});
  return {
      {"a.weight", (at::arange(6, at::kFloat) * 0.5 - 1).view({2, 3})},
      {"b", at::tensor({0.0f, 1.5f, -2.0f, 65504.0f}).to(at::kHalf)},
      {"c", bf16},
      {"d", at::tensor(std::vector<std::int64_t>{-1, 0, 1LL << 40})},
      {"e", at::tensor(std::vector<std::int64_t>{1, 0, 1}).to(at::kBool)},
      {"f", at::scalar_tensor(7, at::kByte)},
      {"g", at::empty({0, 2}, at::kInt)},
      {"\xc3\xbc"
       "ber",
       at::tensor(std::vector<std::int64_t>{-128, 127}).to(at::kChar)},
      {"h", at::tensor(std::vector<double>{0.1})},
      {"i", at::tensor(std::vector<std::int64_t>{-300, 300}).to(at::kShort)},
  };
}

// Runs tests/safetensors_reference.py; returns its exit status (77: no numpy).
int run_reference_script(const std::string& mode, const std::string& path) {
  std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/safetensors_reference.py";
  // The reference environment has numpy; Debian's python3 has it only with
  // python3-numpy.
  std::string python = test::reference_python();
  if (python.empty()) python = path_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  int status = std::system((python + " '" + script + "' " + mode + " '" + path + "'").c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(SafetensorsSpec, WriterMatchesHandAssembledReferenceByteForByte) {
  TempDir dir;
  int status = run_reference_script("write", dir.file("reference.safetensors"));
  if (status == 77 || status == 127) GTEST_SKIP() << "python3 with numpy is not available; " << test::kNoReferenceMessage;
  ASSERT_EQ(status, 0);
  save_safetensors(dir.file("ours.safetensors"), reference_tensors());
  std::string ours = read_bytes(dir.file("ours.safetensors"));
  std::string reference = read_bytes(dir.file("reference.safetensors"));
  ASSERT_EQ(ours.size(), reference.size());
  EXPECT_EQ(ours.substr(0, 8), reference.substr(0, 8)) << "header length differs";
  EXPECT_EQ(ours, reference);
  // And the reference parser accepts what we wrote.
  EXPECT_EQ(run_reference_script("check", dir.file("ours.safetensors")), 0);
}

TEST(SafetensorsSpec, ReaderReadsHandAssembledReference) {
  TempDir dir;
  int status = run_reference_script("write", dir.file("reference.safetensors"));
  if (status == 77 || status == 127) GTEST_SKIP() << "python3 with numpy is not available; " << test::kNoReferenceMessage;
  ASSERT_EQ(status, 0);
  auto file = SafetensorsFile::open(dir.file("reference.safetensors"));
  NamedTensors expected = reference_tensors();
  ASSERT_EQ(file->entries().size(), expected.size());
  for (const auto& [name, tensor] : expected) {
    SCOPED_TRACE(name);
    at::Tensor loaded = file->tensor(name);
    EXPECT_EQ(loaded.scalar_type(), tensor.scalar_type());
    EXPECT_EQ(loaded.sizes(), tensor.sizes());
    EXPECT_EQ(raw_bytes(loaded), raw_bytes(tensor));
  }
}

TEST(SafetensorsSpec, HeaderIsPaddedWithSpacesToMultipleOf8) {
  TempDir dir;
  for (int name_length = 1; name_length <= 8; ++name_length) {
    std::string path = dir.file("m.safetensors");
    save_safetensors(path, {{std::string(name_length, 'w'), at::ones({1})}}, {});
    std::string bytes = read_bytes(path);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    EXPECT_EQ(n % 8, 0u);
    std::string header = bytes.substr(8, n);
    std::size_t json_end = header.find_last_of('}');
    EXPECT_LT(n - (json_end + 1), 8u);
    EXPECT_EQ(header.find_first_not_of(' ', json_end + 1), std::string::npos);
    EXPECT_EQ(bytes.size(), 8 + n + 4);
  }
}

// ---- corrupt files: each problem gives its own clear error ------------------

class CorruptSafetensors : public ::testing::Test {
 protected:
  // The message of the error that opening `bytes` as a file gives; it must
  // start with the file's path.
  std::string open_error(const std::string& bytes) {
    write_bytes(path_, bytes);
    std::string message = error_of([&] {
      auto file = SafetensorsFile::open(path_);
      for (const auto& entry : file->entries()) file->tensor(entry.name);
    });
    EXPECT_TRUE(starts_with(message, path_ + ": "));
    return message;
  }
  std::string header_error(const std::string& header, const std::string& data) {
    return open_error(st_bytes(header, data));
  }

  TempDir dir_;
  std::string path_ = dir_.file("model.safetensors");
};

TEST_F(CorruptSafetensors, EmptyFile) {
  EXPECT_TRUE(contains(open_error(""), "file is 0 bytes, too short"));
}

TEST_F(CorruptSafetensors, ShorterThanLengthPrefix) {
  EXPECT_TRUE(contains(open_error(std::string("\x10\x00\x00", 3)), "file is 3 bytes, too short"));
}

TEST_F(CorruptSafetensors, HeaderLengthOverLimit) {
  std::string message = open_error(le64(kMaxSafetensorsHeaderBytes + 1) + "{}");
  EXPECT_TRUE(contains(message, "header length 100000001 exceeds the limit"));
}

TEST_F(CorruptSafetensors, HugeHeaderLength) {
  std::string message = open_error(le64(std::numeric_limits<std::uint64_t>::max()) + "{}");
  EXPECT_TRUE(contains(message, "exceeds the limit"));
}

TEST_F(CorruptSafetensors, HeaderLengthPastEndOfFile) {
  std::string message = open_error(le64(100) + R"({"w":{"dtype":"F32")");
  EXPECT_TRUE(contains(message, "header length 100 runs past the end of the file"));
}

TEST_F(CorruptSafetensors, TruncatedData) {
  // A download cut short: the header is intact, the data is not.
  std::string message = header_error(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                     std::string(10, '\0'));
  EXPECT_TRUE(contains(message,
                       "tensor 'w': data_offsets [0, 16] run past the end of the data "
                       "section (10 bytes)"));
}

TEST_F(CorruptSafetensors, HeaderNotJson) {
  std::string message = header_error("{\"w\": nonsense}", "");
  EXPECT_TRUE(contains(message, "header: malformed JSON"));
  EXPECT_TRUE(contains(message, "line 1, column"));
}

TEST_F(CorruptSafetensors, HeaderJsonCutShort) {
  EXPECT_TRUE(contains(header_error(R"({"w":{"dtype":"F32","sha)", ""), "malformed JSON"));
}

TEST_F(CorruptSafetensors, HeaderInvalidUtf8) {
  EXPECT_TRUE(contains(header_error("{\"w\xff\":{}}", ""), "malformed JSON"));
}

TEST_F(CorruptSafetensors, HeaderNotAnObject) {
  EXPECT_TRUE(contains(header_error("[1, 2]", ""), "header must be a JSON object, got array"));
}

TEST_F(CorruptSafetensors, HeaderNestedTooDeep) {
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_TRUE(contains(header_error("{\"w\":" + deep + "}", ""), "nests deeper than"));
}

TEST_F(CorruptSafetensors, EntryNotAnObject) {
  EXPECT_TRUE(contains(header_error(R"({"w":5})", ""), "tensor 'w': entry must be an object"));
}

TEST_F(CorruptSafetensors, MissingDtype) {
  EXPECT_TRUE(contains(header_error(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"),
                       "tensor 'w': missing key 'dtype'"));
}

TEST_F(CorruptSafetensors, MissingShape) {
  EXPECT_TRUE(contains(header_error(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"),
                       "tensor 'w': missing key 'shape'"));
}

TEST_F(CorruptSafetensors, MissingDataOffsets) {
  EXPECT_TRUE(contains(header_error(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"),
                       "tensor 'w': missing key 'data_offsets'"));
}

TEST_F(CorruptSafetensors, ExtraKey) {
  std::string message = header_error(
      R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"offsets":[0,4]}})", "abcd");
  EXPECT_TRUE(contains(message, "tensor 'w': unexpected key 'offsets'"));
}

TEST_F(CorruptSafetensors, DtypeNotAString) {
  EXPECT_TRUE(
      contains(header_error(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd"),
               "tensor 'w': 'dtype' must be a string, got 4"));
}

TEST_F(CorruptSafetensors, UnknownDtype) {
  std::string message =
      header_error(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd");
  EXPECT_TRUE(contains(message, "tensor 'w': unknown dtype 'F8_E4M3'"));
  EXPECT_TRUE(contains(message, "supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL"));
}

TEST_F(CorruptSafetensors, ShapeNotAnArray) {
  EXPECT_TRUE(
      contains(header_error(R"({"w":{"dtype":"U8","shape":"4","data_offsets":[0,4]}})", "abcd"),
               "tensor 'w': 'shape' must be an array of non-negative integers"));
}

TEST_F(CorruptSafetensors, NegativeShapeDimension) {
  std::string message =
      header_error(R"({"w":{"dtype":"U8","shape":[2,-2],"data_offsets":[0,4]}})", "abcd");
  EXPECT_TRUE(contains(message, "tensor 'w': shape dimension 1 is -2"));
}

TEST_F(CorruptSafetensors, NonIntegerShapeDimension) {
  std::string message =
      header_error(R"({"w":{"dtype":"U8","shape":[4.0],"data_offsets":[0,4]}})", "abcd");
  EXPECT_TRUE(contains(message, "tensor 'w': shape dimension 0 is 4.0"));
}

TEST_F(CorruptSafetensors, ShapeDimensionTooLargeForTorch) {
  // Zero elements, so the byte count is fine, but 2^63 is no int64 size.
  std::string message = header_error(
      R"({"w":{"dtype":"U8","shape":[0,9223372036854775808],"data_offsets":[0,0]}})", "");
  EXPECT_TRUE(
      contains(message, "tensor 'w': shape dimension 1 (9223372036854775808) is too large"));
}

TEST_F(CorruptSafetensors, ByteCountOverflows) {
  // 2^32 * 2^32 elements wrap to 0 in 64 bits; unchecked, this would pass.
  std::string message = header_error(
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "");
  EXPECT_TRUE(contains(message,
                       "tensor 'w': shape [4294967296, 4294967296] of F32 has a byte "
                       "count that overflows 64 bits"));
}

TEST_F(CorruptSafetensors, ByteCountOverflowsOnlyWithElementSize) {
  // 2^62 elements fit, 2^62 * 4 bytes do not.
  std::string message = header_error(
      R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", "");
  EXPECT_TRUE(contains(message, "overflows 64 bits"));
}

TEST_F(CorruptSafetensors, DataOffsetsWrongLength) {
  EXPECT_TRUE(
      contains(header_error(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[4]}})", "abcd"),
               "tensor 'w': 'data_offsets' must be [begin, end]"));
}

TEST_F(CorruptSafetensors, DataOffsetsNegative) {
  EXPECT_TRUE(
      contains(header_error(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[-1,3]}})", "abcd"),
               "tensor 'w': 'data_offsets' must be [begin, end] with non-negative"));
}

TEST_F(CorruptSafetensors, DataOffsetsNotIntegers) {
  EXPECT_TRUE(
      contains(header_error(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":["0",4]}})", "abcd"),
               "'data_offsets' must be [begin, end]"));
}

TEST_F(CorruptSafetensors, DataOffsetsBeginAfterEnd) {
  EXPECT_TRUE(
      contains(header_error(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", "abcd"),
               "tensor 'w': data_offsets [4, 0] begin after they end"));
}

TEST_F(CorruptSafetensors, DataOffsetsPastDataSection) {
  std::string message = header_error(
      R"({"w":{"dtype":"U8","shape":[4],)"
      R"("data_offsets":[18446744073709551611,18446744073709551615]}})",
      "abcd");
  EXPECT_TRUE(contains(message, "run past the end of the data section (4 bytes)"));
}

TEST_F(CorruptSafetensors, ShapeDisagreesWithByteCount) {
  std::string message = header_error(R"({"w":{"dtype":"F32","shape":[4,2],"data_offsets":[0,16]}})",
                                     std::string(16, '\0'));
  EXPECT_TRUE(contains(message,
                       "tensor 'w': shape [4, 2] of F32 needs 32 bytes but data_offsets "
                       "[0, 16] hold 16"));
}

TEST_F(CorruptSafetensors, OverlappingTensors) {
  std::string message = header_error(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                                     std::string(12, '\0'));
  EXPECT_TRUE(contains(message, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]"));
}

TEST_F(CorruptSafetensors, IdenticalRangesOverlap) {
  // Two names for the same bytes (aliasing) is an overlap too.
  std::string message = header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                     R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                                     "abcd");
  EXPECT_TRUE(contains(message, "overlap tensor"));
}

TEST_F(CorruptSafetensors, GapBetweenTensors) {
  std::string message = header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                     R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})",
                                     std::string(12, '\0'));
  EXPECT_TRUE(contains(message, "tensor 'b': data_offsets [8, 12] leave a gap: bytes [4, 8]"));
}

TEST_F(CorruptSafetensors, GapAtStartOfData) {
  std::string message =
      header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", std::string(8, 'x'));
  EXPECT_TRUE(contains(message, "tensor 'a': data_offsets [4, 8] leave a gap: bytes [0, 4]"));
}

TEST_F(CorruptSafetensors, TrailingBytesAfterLastTensor) {
  std::string message =
      header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "abcdEXTRA");
  EXPECT_TRUE(contains(message, "the data section has 9 bytes but the tensors cover only 4"));
}

TEST_F(CorruptSafetensors, DuplicateTensorName) {
  std::string message = header_error(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                     R"("w":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})",
                                     std::string(8, '\0'));
  EXPECT_TRUE(contains(message, "duplicate tensor name 'w'"));
}

TEST_F(CorruptSafetensors, DuplicateKeyInsideEntry) {
  std::string message = header_error(
      R"({"w":{"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]}})", "abcd");
  EXPECT_TRUE(contains(message, "duplicate key 'dtype'"));
}

TEST_F(CorruptSafetensors, EmptyTensorName) {
  EXPECT_TRUE(
      contains(header_error(R"({"":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "abcd"),
               "empty tensor name"));
}

TEST_F(CorruptSafetensors, MetadataNotAnObject) {
  EXPECT_TRUE(contains(header_error(R"({"__metadata__":["pt"]})", ""),
                       "'__metadata__' must be an object of strings, got array"));
}

TEST_F(CorruptSafetensors, MetadataValueNotAString) {
  EXPECT_TRUE(contains(header_error(R"({"__metadata__":{"format":"pt","step":1000}})", ""),
                       "'__metadata__' must be an object of strings, but key 'step' holds 1000"));
}

TEST_F(CorruptSafetensors, BoolDataOtherThanZeroOrOne) {
  std::string message = header_error(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                                     std::string("\x01\x00\x02", 3));
  EXPECT_TRUE(contains(message, "tensor 'm': BOOL data holds byte 2 at element 2"));
}

TEST(SafetensorsHeader, ParserNamesSourceAndNeverReadsPastSize) {
  // The buffer holds a valid file, but the size passed cuts it short: the
  // parser must judge only the bytes it was given.
  std::string bytes = st_bytes(R"({"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", "abcd");
  auto data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  EXPECT_EQ(parse_safetensors_header(data, bytes.size(), "src").entries.size(), 1u);
  std::string message = error_of([&] { parse_safetensors_header(data, bytes.size() - 1, "src"); });
  EXPECT_TRUE(starts_with(message, "src: tensor 'w'"));
  EXPECT_TRUE(contains(message, "run past the end of the data section (3 bytes)"));
}

TEST(SafetensorsHeader, NullMetadataMeansNone) {
  std::string bytes = st_bytes(R"({"__metadata__":null})", "");
  auto header = parse_safetensors_header(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                         bytes.size(), "src");
  EXPECT_TRUE(header.metadata.empty());
  EXPECT_TRUE(header.entries.empty());
}

// ---- atomic writes -------------------------------------------------------------

TEST(SafetensorsWriter, FailedSaveKeepsExistingFileAndLeavesNoTemporary) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"w", at::ones({2})}});
  std::string before = read_bytes(path);
  std::string message = error_of([&] {
    save_safetensors(path, {{"w", at::zeros({2})}, {"c", at::ones({2}, at::kComplexFloat)}});
  });
  EXPECT_TRUE(starts_with(message, path + ": tensor 'c'"));
  EXPECT_TRUE(contains(message, "ComplexFloat cannot be stored"));
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(files_in(dir.path()), std::vector<std::string>{"model.safetensors"});
}

TEST(SafetensorsWriter, FailedFolderSaveKeepsEarlierSave) {
  TempDir dir;
  save_safetensors_folder(dir.path(), {{"a", at::ones({64})}, {"b", at::ones({64})}}, 300);
  std::vector<std::string> before = files_in(dir.path());
  std::string message = error_of([&] {
    save_safetensors_folder(dir.path(),
                            {{"a", at::ones({64})}, {"c", at::ones({1}, at::kComplexDouble)}}, 300);
  });
  EXPECT_TRUE(contains(message, "tensor 'c'"));
  EXPECT_EQ(files_in(dir.path()), before);
  expect_same_tensors({{"a", at::ones({64})}, {"b", at::ones({64})}},
                      WeightStore::open_folder(dir.path()));
}

// ---- folders and shards --------------------------------------------------------

NamedTensors shard_test_tensors() {
  // Sizes 400, 400, 200, 1200 and 40 bytes.
  return {
      {"model.embed_tokens.weight", at::arange(100, at::kFloat)},
      {"model.layers.0.w", at::arange(100, at::kInt)},
      {"model.layers.1.w", at::arange(100, at::kShort).to(at::kBFloat16)},
      {"model.norm.weight", at::arange(150, at::kDouble)},
      {"score.weight", at::arange(10, at::kFloat)},
  };
}

TEST(SafetensorsFolder, SmallModelIsOneFile) {
  TempDir dir;
  NamedTensors tensors = shard_test_tensors();
  save_safetensors_folder(dir.path(), tensors);
  EXPECT_EQ(files_in(dir.path()), std::vector<std::string>{"model.safetensors"});
  WeightStore store = WeightStore::open_folder(dir.path());
  expect_same_tensors(tensors, store);
  EXPECT_EQ(store.file_of("score.weight"), dir.file("model.safetensors"));
}

TEST(SafetensorsFolder, ShardedRoundTrip) {
  TempDir dir;
  NamedTensors tensors = shard_test_tensors();
  // 1000-byte shards, filled as huggingface_hub does: the 1200-byte tensor
  // exceeds the limit and gets a shard of its own, ahead of the shard still
  // filling ([400, 400, 200]); the last 40 bytes then start a third.
  save_safetensors_folder(dir.path(), tensors, 1000);
  EXPECT_EQ(files_in(dir.path()),
            (std::vector<std::string>{
                "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  // The index as transformers writes it: sorted keys, two-space indent.
  EXPECT_EQ(read_bytes(dir.file("model.safetensors.index.json")),
            "{\n"
            "  \"metadata\": {\n"
            "    \"total_size\": 2240\n"
            "  },\n"
            "  \"weight_map\": {\n"
            "    \"model.embed_tokens.weight\": \"model-00002-of-00003.safetensors\",\n"
            "    \"model.layers.0.w\": \"model-00002-of-00003.safetensors\",\n"
            "    \"model.layers.1.w\": \"model-00002-of-00003.safetensors\",\n"
            "    \"model.norm.weight\": \"model-00001-of-00003.safetensors\",\n"
            "    \"score.weight\": \"model-00003-of-00003.safetensors\"\n"
            "  }\n"
            "}\n");
  WeightStore store = WeightStore::open_folder(dir.path());
  expect_same_tensors(tensors, store);
  EXPECT_EQ(store.names(),
            (std::vector<std::string>{"model.embed_tokens.weight", "model.layers.0.w",
                                      "model.layers.1.w", "model.norm.weight", "score.weight"}));
  EXPECT_EQ(store.file_of("model.norm.weight"), dir.file("model-00001-of-00003.safetensors"));
  EXPECT_EQ(store.entry("model.layers.1.w").dtype, DType::BF16);
  for (const char* shard :
       {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"}) {
    auto file = SafetensorsFile::open(dir.file(shard));
    EXPECT_EQ(file->header().metadata.at("format"), "pt");
  }
}

TEST(SafetensorsFolder, ResavingRemovesStaleWeightFilesOnly) {
  TempDir dir;
  write_bytes(dir.file("config.json"), "{}");
  write_bytes(dir.file("model-notes.txt"), "mine");
  save_safetensors_folder(dir.path(), shard_test_tensors(), 1000);
  // Fewer, larger shards: the old 3-shard files must go.
  NamedTensors all = shard_test_tensors();
  NamedTensors smaller(all.begin(), all.begin() + 3);
  save_safetensors_folder(dir.path(), smaller, 800);
  EXPECT_EQ(files_in(dir.path()),
            (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                      "model-00002-of-00002.safetensors", "model-notes.txt",
                                      "model.safetensors.index.json"}));
  expect_same_tensors(smaller, WeightStore::open_folder(dir.path()));
  // Back to a single file: shards and index go.
  save_safetensors_folder(dir.path(), smaller);
  EXPECT_EQ(files_in(dir.path()),
            (std::vector<std::string>{"config.json", "model-notes.txt", "model.safetensors"}));
  expect_same_tensors(smaller, WeightStore::open_folder(dir.path()));
  // And sharded again: model.safetensors goes, or loaders would prefer it.
  save_safetensors_folder(dir.path(), smaller, 800);
  EXPECT_FALSE(path_exists(dir.file("model.safetensors")));
  expect_same_tensors(smaller, WeightStore::open_folder(dir.path()));
}

TEST(SafetensorsFolder, SingleFileWinsOverIndex) {
  TempDir dir;
  save_safetensors_folder(dir.path(), shard_test_tensors(), 1000);
  save_safetensors(dir.file("model.safetensors"), {{"only", at::ones({1})}});
  EXPECT_EQ(WeightStore::open_folder(dir.path()).names(), std::vector<std::string>{"only"});
}

TEST(SafetensorsFolder, EmptyFolderIsAnError) {
  TempDir dir;
  std::string message = error_of([&] { WeightStore::open_folder(dir.path()); });
  EXPECT_TRUE(starts_with(message, dir.path()));
  EXPECT_TRUE(contains(message, "no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json")) << message;
  EXPECT_TRUE(
      contains(error_of([&] { WeightStore::open_folder(dir.file("missing")); }), "not a folder"));
}

TEST(SafetensorsFolder, MissingTensorNamesTheStore) {
  TempDir dir;
  save_safetensors_folder(dir.path(), shard_test_tensors(), 1000);
  WeightStore store = WeightStore::open_folder(dir.path());
  EXPECT_FALSE(store.contains("lm_head.weight"));
  std::string message = error_of([&] { store.tensor("lm_head.weight"); });
  EXPECT_TRUE(contains(message, "no tensor named 'lm_head.weight' in " + dir.path()));
  EXPECT_TRUE(contains(error_of([&] { store.entry("x"); }), "'x'"));
  EXPECT_TRUE(contains(error_of([&] { store.file_of("x"); }), "'x'"));
}

// Hand-made sharded folders with inconsistent indexes.
class BadIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    save_safetensors(dir_.file("a.safetensors"), {{"x", at::ones({2})}, {"y", at::ones({2})}});
    save_safetensors(dir_.file("b.safetensors"), {{"z", at::ones({2})}});
  }
  std::string open_error(const std::string& index) {
    write_bytes(dir_.file("model.safetensors.index.json"), index);
    std::string message = error_of([&] { WeightStore::open_folder(dir_.path()); });
    EXPECT_TRUE(starts_with(message, dir_.file("model.safetensors.index.json") + ": "));
    return message;
  }
  TempDir dir_;
};

TEST_F(BadIndex, ConsistentIndexOpens) {
  write_bytes(dir_.file("model.safetensors.index.json"),
              R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  WeightStore store = WeightStore::open_folder(dir_.path());
  EXPECT_EQ(store.names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(store.file_of("z"), dir_.file("b.safetensors"));
}

TEST_F(BadIndex, NameMissingInShard) {
  std::string message =
      open_error(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors",)"
                 R"("w":"b.safetensors"}})");
  EXPECT_TRUE(contains(message,
                       "tensor 'w' is listed in shard b.safetensors, which has no tensor "
                       "of that name"));
}

TEST_F(BadIndex, NameListedInWrongShard) {
  std::string message =
      open_error(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"a.safetensors"}})");
  EXPECT_TRUE(contains(message, "tensor 'z' is listed in shard a.safetensors"));
}

TEST_F(BadIndex, ShardFileMissing) {
  std::string message =
      open_error(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"c.safetensors"}})");
  EXPECT_TRUE(contains(message, "tensor 'z' is in shard c.safetensors, which does not exist"));
}

TEST_F(BadIndex, TensorInTwoShards) {
  save_safetensors(dir_.file("b.safetensors"), {{"z", at::ones({2})}, {"x", at::ones({2})}});
  std::string message =
      open_error(R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  EXPECT_TRUE(contains(message,
                       "tensor 'x' appears in two shards: a.safetensors and "
                       "b.safetensors"));
}

TEST_F(BadIndex, ShardTensorNotInIndex) {
  std::string message = open_error(R"({"weight_map":{"x":"a.safetensors","z":"b.safetensors"}})");
  EXPECT_TRUE(contains(message,
                       "shard a.safetensors holds tensor 'y', which weight_map does not "
                       "list"));
}

TEST_F(BadIndex, WeightMapMissing) {
  EXPECT_TRUE(
      contains(open_error(R"({"metadata":{"total_size":24}})"), "'weight_map' must be an object"));
}

TEST_F(BadIndex, ShardOutsideFolder) {
  std::string message = open_error(R"({"weight_map":{"x":"../a.safetensors"}})");
  EXPECT_TRUE(contains(message,
                       "tensor 'x': shard '../a.safetensors' is not a file name in this "
                       "folder"));
}

TEST_F(BadIndex, MalformedJson) {
  EXPECT_TRUE(contains(open_error("{\"weight_map\": {\n\"x\": }"), "malformed JSON"));
}

TEST_F(BadIndex, CorruptShardNamesShardFile) {
  write_bytes(dir_.file("b.safetensors"), "garbage");
  write_bytes(dir_.file("model.safetensors.index.json"),
              R"({"weight_map":{"x":"a.safetensors","y":"a.safetensors","z":"b.safetensors"}})");
  std::string message = error_of([&] { WeightStore::open_folder(dir_.path()); });
  EXPECT_TRUE(starts_with(message, dir_.file("b.safetensors") + ": file is 7 bytes"));
}

}  // namespace
}  // namespace openrm
