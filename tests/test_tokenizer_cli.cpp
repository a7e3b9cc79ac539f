// openrm-tokenizer on bad preference files: a clear error naming file and
// line, a non-zero exit, and --skip-invalid skipping and counting instead.
#include <gtest/gtest.h>

#include <openrm/io/file.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

test::ToolRun run_tool(const std::string& args, const test::TempDir& tmp) {
  return test::run_tool("openrm-tokenizer", args, tmp);
}

class TokenizerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::tool_built("openrm-tokenizer")) {
      GTEST_SKIP() << "openrm-tokenizer was not built (OPENRM_BUILD_TOOLS=OFF)";
    }
  }
  test::TempDir tmp;
};

std::string good_lines(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += R"({"prompt": "Question )" + std::to_string(i) +
            R"(: what is a reward model?", "chosen": "A model that scores answers.", "rejected": "No idea."})" "\n";
  }
  return text;
}

TEST_F(TokenizerCli, InvalidRecordStopsTrainingWithFileAndLine) {
  const std::string data = tmp.file("prefs.jsonl");
  test::write_bytes(data, good_lines(1) + R"({"prompt": "Q", "chosen": 5, "rejected": "x"})" "\n" + good_lines(30));
  test::ToolRun run = run_tool("train --input '" + data + "' --output '" + tmp.file("tok") + "' --vocab-size 60 --no-byte-fallback", tmp);
  EXPECT_NE(run.status, 0) << run.output;
  EXPECT_TRUE(test::contains(run.output, "openrm-tokenizer: error: " + data + ":2: field 'chosen': expected a string or a list of messages, got 5"))
      << run.output;
  EXPECT_FALSE(path_exists(tmp.file("tok/tokenizer.model")));

  run = run_tool("train --skip-invalid --input '" + data + "' --output '" + tmp.file("tok") +
                 "' --vocab-size 60 --no-byte-fallback", tmp);
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(test::contains(run.output, "skipped 1 invalid record(s)")) << run.output;
  EXPECT_TRUE(path_exists(tmp.file("tok/tokenizer.model")));
}

TEST_F(TokenizerCli, EmptyAndMalformedFilesAreClearErrors) {
  const std::string empty = tmp.file("empty.jsonl");
  test::write_bytes(empty, "");
  test::ToolRun run = run_tool("train --input '" + empty + "' --output '" + tmp.file("t1") + "' --vocab-size 60", tmp);
  EXPECT_NE(run.status, 0);
  EXPECT_TRUE(test::contains(run.output, empty + ": no records")) << run.output;

  const std::string broken = tmp.file("broken.jsonl");
  test::write_bytes(broken, good_lines(2) + "{\"prompt\": \"unterminated\n");
  run = run_tool("train --input '" + broken + "' --output '" + tmp.file("t2") + "' --vocab-size 60", tmp);
  EXPECT_NE(run.status, 0);
  EXPECT_TRUE(test::contains(run.output, broken + ":3: malformed JSON")) << run.output;

  run = run_tool("train --input '" + tmp.file("missing.jsonl") + "' --output '" + tmp.file("t3") + "' --vocab-size 60", tmp);
  EXPECT_NE(run.status, 0);
  EXPECT_TRUE(test::contains(run.output, "missing.jsonl")) << run.output;
}

TEST_F(TokenizerCli, AnOutputThatIsAnInputOrSomeoneElsesFolderIsRefused) {
  namespace fs = std::filesystem;
  const std::string prefs = tmp.file("prefs.jsonl");
  test::write_bytes(prefs, good_lines(30));
  const std::string train = " --vocab-size 60 --no-byte-fallback";
  auto refused = [&](const std::string& args, const std::string& message) {
    const test::ToolRun run = run_tool("train " + args + train, tmp);
    const std::string line = test::error_line(run, "openrm-tokenizer");
    EXPECT_TRUE(test::contains(line, message)) << line;
  };
  // A .model output that is the input (a text file of that name) or a folder.
  const std::string texts = tmp.file("corpus.model");
  test::write_bytes(texts, "The quick brown fox\njumps over the lazy dog\n");
  refused("--input '" + texts + "' --output '" + texts + "'", texts + ": is the same file as the input " + texts);
  EXPECT_EQ(test::read_bytes(texts), "The quick brown fox\njumps over the lazy dog\n");
  fs::create_directories(tmp.file("dir.model"));
  refused("--input '" + prefs + "' --output '" + tmp.file("dir.model") + "'",
          tmp.file("dir.model") + ": is a directory, not a file");

  // A folder that holds the input.
  fs::create_directories(tmp.file("rm"));
  test::write_bytes(tmp.file("rm/config.json"), "{}");
  fs::copy_file(prefs, tmp.file("rm/prefs.jsonl"));
  refused("--input '" + tmp.file("rm/prefs.jsonl") + "' --output '" + tmp.file("rm") + "'",
          tmp.file("rm") + ": the output folder holds the input " + tmp.file("rm/prefs.jsonl"));
  EXPECT_FALSE(path_exists(tmp.file("rm/tokenizer.model")));

  // Someone else's folder: refused and untouched, unless told.
  fs::create_directories(tmp.file("notes"));
  test::write_bytes(tmp.file("notes/todo.txt"), "mine\n");
  refused("--input '" + prefs + "' --output '" + tmp.file("notes") + "'",
          tmp.file("notes") + ": exists, is not empty and is not a model or tokenizer folder");
  EXPECT_FALSE(path_exists(tmp.file("notes/tokenizer.model")));
  test::ToolRun run =
      run_tool("train --input '" + prefs + "' --output '" + tmp.file("notes") + "' --overwrite-output-dir" + train, tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(path_exists(tmp.file("notes/tokenizer.model")));
  EXPECT_EQ(test::read_bytes(tmp.file("notes/todo.txt")), "mine\n");

  // A model folder (openrm-init-model's, then the tokenizer) is fine.
  fs::remove(tmp.file("rm/prefs.jsonl"));
  run = run_tool("train --input '" + prefs + "' --output '" + tmp.file("rm") + "'" + train, tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(path_exists(tmp.file("rm/tokenizer_config.json")));
}

}  // namespace
}  // namespace openrm
