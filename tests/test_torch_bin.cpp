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
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;

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

}  // namespace
}  // namespace openrm
