// PyTorch checkpoints (pytorch_model.bin) read without running pickled code:
// the values torch.save wrote (tests/fixtures/torch_bin, written by
// tests/fixtures/make_torch_bin_fixtures.py) against the same tensors in
// safetensors, hostile pickles refused by name, and damaged files refused
// with the place.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "openrm/error.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/reward_model.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using test::contains;

const std::string kDir = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/torch_bin";

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void expect_same_as_safetensors(const WeightStore& store, const std::string& what) {
  auto values = WeightStore::open_file(kDir + "/values.safetensors");
  ASSERT_EQ(store.names(), values.names()) << what;
  for (const auto& name : values.names()) {
    const auto want = values.tensor(name);
    const auto got = store.tensor(name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type()) << what << " " << name;
    EXPECT_EQ(got.sizes(), want.sizes()) << what << " " << name;
    EXPECT_EQ(store.entry(name).shape, values.entry(name).shape) << what << " " << name;
    EXPECT_EQ(store.entry(name).dtype, values.entry(name).dtype) << what << " " << name;
    EXPECT_TRUE(got.is_contiguous()) << what << " " << name;
    // Exact equality (the values are finite, so equal values are equal bits).
    EXPECT_TRUE(torch::equal(got, want)) << what << " " << name;
  }
}

TEST(TorchBin, BothTorchSaveFormatsGiveTheStoredValues) {
  if (!fs::exists(kDir + "/zip.bin")) GTEST_SKIP() << kDir << " is missing (make_torch_bin_fixtures.py)";
  expect_same_as_safetensors(WeightStore::open_file(kDir + "/zip.bin"), "zip");
  expect_same_as_safetensors(WeightStore::open_file(kDir + "/legacy.bin"), "legacy");
}

TEST(TorchBin, ShardedFolderFollowsItsIndex) {
  if (!fs::exists(kDir + "/sharded")) GTEST_SKIP() << kDir << " is missing";
  auto store = WeightStore::open_folder(kDir + "/sharded");
  expect_same_as_safetensors(store, "sharded");
  EXPECT_NE(store.file_of("a.weight").find("pytorch_model-00001-of-00002.bin"), std::string::npos);
}

TEST(TorchBin, HostilePicklesAreRefusedByName) {
  if (!fs::exists(kDir + "/hostile_zip.bin")) GTEST_SKIP() << kDir << " is missing";
  for (const char* file : {"hostile_zip.bin", "hostile_legacy.bin"}) {
    const auto msg = error_of([&] { WeightStore::open_file(kDir + "/" + file); });
    EXPECT_NE(msg.find("refusing pickle global 'posix.system'"), std::string::npos) << file << ": " << msg;
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
  }
}

TEST(TorchBin, DamagedFilesAreErrorsNamingTheFile) {
  if (!fs::exists(kDir + "/zip.bin")) GTEST_SKIP() << kDir << " is missing";
  test::TempDir tmp;
  for (const char* file : {"zip.bin", "legacy.bin"}) {
    const std::string bytes = test::read_bytes(kDir + "/" + file);
    for (std::size_t cut : {std::size_t{0}, std::size_t{3}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 9}) {
      const std::string path = tmp.file(std::string("cut_") + file);
      test::write_bytes(path, bytes.substr(0, cut));
      const auto msg = error_of([&] {
        auto store = WeightStore::open_file(path);
        for (const auto& name : store.names()) store.tensor(name);
      });
      EXPECT_NE(msg.find(path), std::string::npos) << file << " cut at " << cut << ": " << msg;
    }
    // Flipped bytes anywhere: an error or the same tensor names, never a crash.
    for (std::size_t at = 0; at < bytes.size(); at += 97) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(damaged[at] ^ 0x5a);
      const std::string path = tmp.file(std::string("flip_") + file);
      test::write_bytes(path, damaged);
      try {
        auto store = WeightStore::open_file(path);
        for (const auto& name : store.names()) store.tensor(name);
      } catch (const Error&) {
      }
    }
  }
}

TEST(TorchBin, SafetensorsWinsOverPytorchModelBin) {
  if (!fs::exists(kDir + "/zip.bin")) GTEST_SKIP() << kDir << " is missing";
  test::TempDir tmp;
  fs::copy_file(kDir + "/zip.bin", tmp.file("pytorch_model.bin"));
  EXPECT_NE(WeightStore::open_folder(tmp.path()).file_of("a.weight").find("pytorch_model.bin"), std::string::npos);
  fs::copy_file(kDir + "/values.safetensors", tmp.file("model.safetensors"));
  EXPECT_NE(WeightStore::open_folder(tmp.path()).file_of("a.weight").find("model.safetensors"), std::string::npos);
  test::TempDir empty;
  const auto msg = error_of([&] { WeightStore::open_folder(empty.path()); });
  EXPECT_NE(msg.find("pytorch_model.bin"), std::string::npos) << msg;
}

// torch.save run now, by the reference environment's torch.
TEST(TorchBin, LiveTorchSaveLoads) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  const std::string script = tmp.file("save.py");
  test::write_bytes(script,
                    "import sys, torch\n"
                    "from safetensors.torch import save_file\n"
                    "g = torch.Generator().manual_seed(3)\n"
                    "sd = {'w': torch.randn(7, 5, generator=g), 'h': torch.randn(9, generator=g).half(),\n"
                    "      'v': torch.randn(5, 7, generator=g).t()}\n"
                    "torch.save(sd, sys.argv[1] + '/live.bin')\n"
                    "save_file({k: v.contiguous() for k, v in sd.items()}, sys.argv[1] + '/live.safetensors')\n");
  const std::string cmd = python + " " + script + " " + tmp.path() + " > " + tmp.file("log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(tmp.file("log"));
  auto got = WeightStore::open_file(tmp.file("live.bin"));
  auto want = WeightStore::open_file(tmp.file("live.safetensors"));
  ASSERT_EQ(got.names(), want.names());
  for (const auto& name : want.names()) EXPECT_TRUE(torch::equal(got.tensor(name), want.tensor(name))) << name;
}

// A reward-model folder that has only pytorch_model.bin (written by torch
// from a parity fixture's weights, bf16, legacy format) scores as the
// safetensors folder does.
TEST(TorchBin, RewardModelFolderWithPytorchModelBinScoresTheSame) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  const std::string fixture = std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/parity/llama_score_bias";
  if (!fs::exists(fixture + "/model.safetensors")) GTEST_SKIP() << fixture << " is missing";
  test::TempDir tmp;
  fs::copy_file(fixture + "/config.json", tmp.file("config.json"));
  test::write_bytes(tmp.file("convert.py"),
                    "import sys, torch\n"
                    "from safetensors.torch import load_file\n"
                    "sd = load_file(sys.argv[1])\n"
                    "torch.save(sd, sys.argv[2])\n");
  const std::string cmd = python + " " + tmp.file("convert.py") + " " + fixture + "/model.safetensors " +
                          tmp.file("pytorch_model.bin") + " > " + tmp.file("log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::read_bytes(tmp.file("log"));
  auto from_bin = load_reward_model(tmp.path());
  auto from_safetensors = load_reward_model(fixture);
  EXPECT_EQ(from_bin->head_spec().describe(), from_safetensors->head_spec().describe());
  const std::vector<std::vector<std::int64_t>> seqs = {{5, 9, 13, 4}, {7}, {3, 3, 8, 21, 40, 11}};
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(from_bin->forward(PackedBatch::from_sequences(seqs)),
                           from_safetensors->forward(PackedBatch::from_sequences(seqs))));
}

// ---- hand-built checkpoints: each rule of the reader, one at a time -------------

std::string le(std::uint64_t v, int n) {
  std::string out(static_cast<std::size_t>(n), '\0');
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  return out;
}

// The CRC-32 ZIP uses (the reader checks it on data.pkl and byteorder).
std::uint32_t crc32_of(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

struct ZipItem {
  std::string name, data;
  int method = 0;  // 0 stored; anything else is only labelled so, never compressed
};

// A ZIP archive as torch.save's writer lays it out, minus the alignment padding.
std::string zip_of(const std::vector<ZipItem>& items) {
  std::string out, cd;
  for (const ZipItem& item : items) {
    const std::string sizes = le(crc32_of(item.data), 4) + le(item.data.size(), 4) + le(item.data.size(), 4);
    const std::string common = le(0, 2) + le(static_cast<std::uint64_t>(item.method), 2) + le(0, 4) + sizes +
                               le(item.name.size(), 2) + le(0, 2);
    cd += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
          le(out.size(), 4) + item.name;
    out += le(0x04034b50, 4) + le(20, 2) + common + item.name + item.data;
  }
  return out + cd + le(0x06054b50, 4) + le(0, 4) + le(items.size(), 2) + le(items.size(), 2) + le(cd.size(), 4) +
         le(out.size(), 4) + le(0, 2);
}

// Protocol-2 pickles written opcode by opcode.
struct Pickle {
  std::string b = "\x80\x02";
  Pickle& op(const std::string& o) { return b += o, *this; }
  Pickle& str(const std::string& s) { return b += 'X' + le(s.size(), 4) + s, *this; }
  Pickle& i4(std::int64_t v) { return b += 'J' + le(static_cast<std::uint64_t>(v), 4), *this; }
  Pickle& global(const std::string& module, const std::string& name) { return b += 'c' + module + '\n' + name + '\n', *this; }
  Pickle& tuple(const std::vector<std::int64_t>& v) {
    op("(");
    for (std::int64_t x : v) i4(x);
    return op("t");
  }
  std::string done() const { return b + "."; }
};

struct TensorSpec {
  std::int64_t offset = 0;
  std::vector<std::int64_t> size = {2, 2}, stride = {2, 1};
  std::int64_t numel = 6;
  std::string storage = "FloatStorage";
  std::string view_metadata = "N";  // legacy only: the sixth persistent-id field
};

// _rebuild_tensor_v2(storage '0', offset, size, stride, False, {}), pushed.
void push_tensor(Pickle& p, const TensorSpec& t, bool legacy) {
  p.global("torch._utils", "_rebuild_tensor_v2").op("(");
  p.op("(").str("storage").global("torch", t.storage).str("0").str("cpu").i4(t.numel);
  if (legacy) p.op(t.view_metadata);
  p.op("tQ").i4(t.offset).tuple(t.size).tuple(t.stride).op("\x89}tR");
}

std::string state_dict_pickle(const TensorSpec& t, bool legacy) {
  Pickle p;
  p.op("}(").str("w");
  push_tensor(p, t, legacy);
  p.str("step").i4(3);  // not a tensor: skipped
  return p.op("u").done();
}

const std::string kSixFloats = [] {
  std::string bytes;
  for (float f : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) bytes.append(reinterpret_cast<const char*>(&f), 4);
  return bytes;
}();

std::string zip_checkpoint(const std::string& pickle, const std::string& storage = kSixFloats,
                           const std::string& byteorder = "little", int method = 0) {
  return zip_of({{"archive/data.pkl", pickle},
                 {"archive/byteorder", byteorder},
                 {"archive/data/0", storage, method},
                 {"archive/version", "3\n"}});
}

std::string legacy_checkpoint(const std::string& pickle, const std::string& storage = kSixFloats,
                              bool little_endian = true, std::size_t element = 4) {
  const std::string magic = "\x80\x02\x8a\x0a" + le(0x469cfc6cULL | (0x6a20f9ULL << 32), 7) + le(0x1950a8, 3) + ".";
  const std::string protocol = Pickle().op("M").op(le(1001, 2)).done();
  const std::string sys_info = Pickle().op("}(").str("protocol_version").i4(1001).str("little_endian")
                                   .op(little_endian ? "\x88" : "\x89").op("u").done();
  const std::string keys = Pickle().op("](").str("0").op("e").done();
  return magic + protocol + sys_info + pickle + keys + le(storage.size() / element, 8) + storage;
}

class TorchBinRules : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = tmp_.file(name);
    test::write_bytes(path, bytes);
    return path;
  }
  // The error of opening `bytes` as a .bin and reading every tensor.
  std::string error_for(const std::string& bytes) {
    const std::string path = write("model.bin", bytes);
    return error_of([&] {
      auto store = WeightStore::open_file(path);
      for (const auto& name : store.names()) store.tensor(name);
    });
  }
  test::TempDir tmp_;
};

TEST_F(TorchBinRules, HandBuiltCheckpointsLoadInBothFormats) {
  // Offset 1, strides (1, 2): elements 1, 3 / 2, 4 of the storage.
  TensorSpec t;
  t.offset = 1;
  t.stride = {1, 2};
  for (bool legacy : {false, true}) {
    const std::string pickle = state_dict_pickle(t, legacy);
    const std::string path = write(legacy ? "legacy.bin" : "zip.bin",
                                   legacy ? legacy_checkpoint(pickle) : zip_checkpoint(pickle));
    auto store = WeightStore::open_file(path);
    ASSERT_EQ(store.names(), std::vector<std::string>{"w"}) << legacy;
    EXPECT_EQ(store.entry("w").dtype, DType::F32);
    EXPECT_EQ(store.entry("w").shape, (std::vector<std::int64_t>{2, 2}));
    EXPECT_EQ(store.file_of("w"), path);
    EXPECT_TRUE(torch::equal(store.tensor("w"), torch::tensor({2.f, 4.f, 3.f, 5.f}).reshape({2, 2}))) << legacy;
  }
}

TEST_F(TorchBinRules, EveryOtherGlobalIsRefusedByName) {
  // builtins.eval by STACK_GLOBAL (protocol 4's spelling) and os.system by
  // GLOBAL, in either format, even where a tensor would be expected.
  const std::string eval = Pickle().op("\x8c\x08").op("builtins").op("\x8c\x04").op("eval").op("\x93")
                               .str("__import__('os').system('touch /tmp/openrm-pwned')").op("\x85R").done();
  Pickle p;
  p.op("}(").str("w").global("os", "system").str("true").op("\x85Ru");
  const std::string system = p.done();
  for (const auto& [pickle, global] : {std::pair{eval, "builtins.eval"}, std::pair{system, "os.system"}}) {
    const std::string zip = error_for(zip_checkpoint(pickle));
    EXPECT_TRUE(contains(zip, tmp_.file("model.bin") + ": archive/data.pkl: byte ")) << zip;
    EXPECT_TRUE(contains(zip, std::string("refusing pickle global '") + global + "' (only tensors")) << zip;
    const std::string legacy = error_for(legacy_checkpoint(pickle));
    EXPECT_TRUE(contains(legacy, std::string("refusing pickle global '") + global + "'")) << legacy;
    EXPECT_TRUE(contains(legacy, tmp_.file("model.bin") + ": state dict pickle: byte ")) << legacy;
  }
  // A storage class that torch has but openrm does not read is refused too.
  TensorSpec complex;
  complex.storage = "ComplexFloatStorage";
  EXPECT_TRUE(contains(error_for(zip_checkpoint(state_dict_pickle(complex, false))),
                       "refusing pickle global 'torch.ComplexFloatStorage'"));
}

TEST_F(TorchBinRules, ContainerRulesAreChecked) {
  EXPECT_TRUE(contains(error_for(zip_checkpoint(state_dict_pickle({}, false), kSixFloats, "big")),
                       "byteorder is 'big'; only little-endian"));
  EXPECT_TRUE(contains(error_for(legacy_checkpoint(state_dict_pickle({}, true), kSixFloats, false)),
                       "big-endian"));
  EXPECT_TRUE(contains(error_for(zip_checkpoint(state_dict_pickle({}, false), kSixFloats, "little", 8)),
                       "entry archive/data/0 is compressed (method 8)"));
  TensorSpec view;
  view.view_metadata = "(X" + le(1, 4) + "1J" + le(0, 4) + "J" + le(4, 4) + "t";
  EXPECT_TRUE(contains(error_for(legacy_checkpoint(state_dict_pickle(view, true))), "is a view of another storage"));
  // A flipped byte in data.pkl is caught by its CRC.
  std::string zip = zip_checkpoint(state_dict_pickle({}, false));
  zip[60] = static_cast<char>(zip[60] ^ 1);
  EXPECT_TRUE(contains(error_for(zip), "entry archive/data.pkl fails its CRC-32 check")) << error_for(zip);
  // Neither format.
  EXPECT_TRUE(contains(error_for("hello, world"), "not a PyTorch checkpoint"));
  EXPECT_TRUE(contains(error_for(test::read_bytes(kDir + "/values.safetensors")), "not a PyTorch checkpoint"));
  EXPECT_TRUE(contains(error_for(""), "not a PyTorch checkpoint"));
}

TEST_F(TorchBinRules, ViewsAreCheckedAgainstTheirStorage) {
  auto refused = [&](const TensorSpec& t, const std::string& storage, const std::string& part) {
    for (bool legacy : {false, true}) {
      const std::string pickle = state_dict_pickle(t, legacy);
      const std::size_t element = t.storage == "BoolStorage" ? 1 : 4;
      const std::string msg =
          error_for(legacy ? legacy_checkpoint(pickle, storage, true, element) : zip_checkpoint(pickle, storage));
      EXPECT_TRUE(contains(msg, tmp_.file("model.bin") + ": tensor 'w': ")) << msg;
      EXPECT_TRUE(contains(msg, part)) << (legacy ? "legacy: " : "zip: ") << msg;
    }
  };
  TensorSpec t;
  t.offset = 3;  // reads elements 3..6 of 6
  refused(t, kSixFloats, "reads past its storage of 6 elements");
  t = {};
  t.stride = {-2, 1};
  refused(t, kSixFloats, "negative size or stride");
  t = {};
  t.size = {2, -1};
  refused(t, kSixFloats, "negative size or stride");
  t = {};
  t.size.assign(65, 1);
  t.stride.assign(65, 1);
  refused(t, kSixFloats, "65 dimensions");
  // The storage's bytes in the file are fewer than its element count needs.
  refused({}, kSixFloats.substr(0, 16), "less than its 6 elements need");
  t = {};
  t.storage = "BoolStorage";
  t.numel = 4;
  refused(t, std::string("\x01\x00\x02\x01", 4), "BOOL data holds byte 2");
}

TEST_F(TorchBinRules, HostileStructureIsAnErrorNotACrash) {
  auto is_error = [&](const std::string& pickle, const std::string& part) {
    const std::string msg = error_for(zip_checkpoint(pickle));
    EXPECT_TRUE(contains(msg, part)) << msg;
  };
  // A million nested tuples (one byte each): freed without recursion.
  is_error(Pickle().op(")").op(std::string(1'000'000, '\x85')).done(), "not a dict of tensors");
  // A list that holds itself.
  is_error(Pickle().op("]q").op(std::string(1, '\0')).op("h").op(std::string(1, '\0')).op("a").done(),
           "not a dict of tensors");
  // Five bytes asking for a memo of four billion entries.
  is_error(Pickle().op(")r").op(le(0xFFFFFFF0u, 4)).done(), "memo index 4294967280 is implausibly large");
  // A string longer than the pickle, an unknown opcode, a pop of an empty stack.
  is_error(Pickle().op("X").op(le(0xFFFFFFFFu, 4)).done(), "runs past the end of the pickle");
  is_error(Pickle().op("i").done(), "unsupported pickle opcode 0x69");
  is_error(Pickle().op("R").done(), "the pickle pops an empty stack");
  is_error(Pickle().op("h").op(std::string(1, '\x07')).done(), "memo index 7 was never stored");
  is_error(Pickle().op("}(").str("w").op("u").done(), "SETITEMS with an odd number of values");
  is_error(Pickle().op("}").str("w").op("(").op("s").done(), "a MARK where a value was expected");
  is_error(Pickle().b, "the pickle ends early");  // no STOP
  // A ZIP64 locator pointing past the end of a file shorter than a ZIP64 record.
  const std::string tiny = le(0x04034b50, 4) + std::string(6, '\0') + le(0x07064b50, 4) + le(0, 4) + le(1000, 8) +
                           le(1, 4) + le(0x06054b50, 4) + le(0, 4) + le(0xFFFF, 2) + le(0xFFFF, 2) +
                           le(0xFFFFFFFFu, 4) + le(0xFFFFFFFFu, 4) + le(0, 2);
  EXPECT_TRUE(contains(error_for(tiny), "bad ZIP64 end-of-central-directory record")) << error_for(tiny);
}

TEST_F(TorchBinRules, AStateDictNestedUnderStateDictIsFound) {
  // torch.save({"state_dict": sd, "epoch": 3}), as training scripts write.
  Pickle p;
  p.op("}(").str("state_dict").op("}(").str("w");
  push_tensor(p, {}, false);
  p.op("u").str("epoch").i4(3).op("u");
  auto store = WeightStore::open_file(write("nested.bin", zip_checkpoint(p.done())));
  EXPECT_EQ(store.names(), std::vector<std::string>{"w"});
}

TEST(TorchBin, EveryTruncationIsAnErrorNamingTheFile) {
  if (!fs::exists(kDir + "/zip.bin")) GTEST_SKIP() << kDir << " is missing";
  test::TempDir tmp;
  for (const char* file : {"zip.bin", "legacy.bin"}) {
    const std::string bytes = test::read_bytes(kDir + "/" + file);
    const std::string path = tmp.file(file);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      test::write_bytes(path, bytes.substr(0, cut));
      const auto msg = error_of([&] {
        auto store = WeightStore::open_file(path);
        for (const auto& name : store.names()) store.tensor(name);
      });
      ASSERT_TRUE(contains(msg, path + ": ")) << file << " cut at " << cut;
    }
  }
}

TEST(TorchBin, IndexOrderMatchesTransformers) {
  // model.safetensors > model.safetensors.index.json > pytorch_model.bin >
  // pytorch_model.bin.index.json.
  if (!fs::exists(kDir + "/sharded")) GTEST_SKIP() << kDir << " is missing";
  test::TempDir tmp;
  for (const auto& item : fs::directory_iterator(kDir + "/sharded")) {
    fs::copy_file(item.path(), tmp.file(item.path().filename().string()));
  }
  EXPECT_TRUE(contains(WeightStore::open_folder(tmp.path()).file_of("a.weight"), "pytorch_model-00001-of-00002.bin"));
  fs::copy_file(kDir + "/legacy.bin", tmp.file("pytorch_model.bin"));
  EXPECT_EQ(WeightStore::open_folder(tmp.path()).file_of("f.slice"), tmp.file("pytorch_model.bin"));
  save_safetensors_folder(tmp.file("st"), {{"x", torch::ones({2})}, {"y", torch::ones({2})}}, 8);
  for (const auto& item : fs::directory_iterator(tmp.file("st"))) {
    fs::copy_file(item.path(), tmp.file(item.path().filename().string()));
  }
  ASSERT_TRUE(fs::exists(tmp.file("model.safetensors.index.json")));
  EXPECT_EQ(WeightStore::open_folder(tmp.path()).names(), (std::vector<std::string>{"x", "y"}));
}

}  // namespace
}  // namespace openrm
