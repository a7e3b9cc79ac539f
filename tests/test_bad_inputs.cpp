// The bad-input matrix: each tool, given a bad file, option or output path,
// exits with status 1 and one "<tool>: error: " line that names the file and
// the place (line, field, option), and leaves every file that was there
// (its inputs, and outputs written by earlier runs) byte for byte as it was,
// with nothing added. Also --version and the groups of --help of every tool.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;

// One case: a tool, its arguments and the parts of its error line. "{d}" in
// either stands for the folder of input files made once for all cases.
struct Case {
  const char* name;
  const char* tool;
  std::string args;
  std::vector<std::string> expect;
};

const char* const kPair = R"({"prompt": "The quick brown fox", "chosen": "jumps over the lazy dog", "rejected": "no"})";
const char* const kRecord = R"({"prompt": "The quick brown fox", "response": "jumps over the lazy dog"})";

// Score, eval, train and export with the usual arguments, the case's after them.
const std::string kScore = "--model '{d}/rm' --output '{d}/out.jsonl' ";
const std::string kEval = "--model '{d}/rm' --json '{d}/out.jsonl' ";
const std::string kTrain = "--output '{d}/run' --init-model '{d}/rm' --max-steps 1 --threads 1 ";
const std::string kExport = "--model '{d}/rm' --output '{d}/outdir' --force ";
const std::string kTokenize = "train --vocab-size 60 --output '{d}/tok.model' ";

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // ---- openrm-score: input files
      {"ScoreMalformedJson", "openrm-score", kScore + "--input '{d}/malformed.jsonl'",
       {"{d}/malformed.jsonl:2: malformed JSON"}},
      {"ScoreMissingField", "openrm-score", kScore + "--input '{d}/record-missing.jsonl'",
       {"{d}/record-missing.jsonl:2: missing field 'response'"}},
      {"ScoreWrongType", "openrm-score", kScore + "--input '{d}/record-wrong-type.jsonl'",
       {"{d}/record-wrong-type.jsonl:2: field 'prompt': expected a string"}},
      {"ScoreNotAnObject", "openrm-score", kScore + "--input '{d}/record-array.jsonl'",
       {"{d}/record-array.jsonl:2: expected a JSON object"}},
      {"ScoreEmptyFile", "openrm-score", kScore + "--input '{d}/empty.jsonl'", {"{d}/empty.jsonl: no records"}},
      {"ScoreTruncatedGzip", "openrm-score", kScore + "--input '{d}/truncated.jsonl.gz'",
       {"{d}/truncated.jsonl.gz: truncated gzip stream"}},
      {"ScoreMissingInput", "openrm-score", kScore + "--input '{d}/nope.jsonl'", {"{d}/nope.jsonl: no such file"}},
      {"ScoreInputIsAFolder", "openrm-score", kScore + "--input '{d}/rm'", {"{d}/rm: is a directory, not a file"}},
      {"ScoreRankingAsPairs", "openrm-score", kScore + "--input '{d}/ranked.jsonl' --kind pairs",
       {"{d}/ranked.jsonl:1: field 'responses': a k-wise ranking"}},
      {"ScoreRankedWrongType", "openrm-score", kScore + "--input '{d}/ranked-wrong-type.jsonl'",
       {"{d}/ranked-wrong-type.jsonl:1: field 'responses[1]': expected a string"}},
      // ---- openrm-score: the model folder
      {"ScoreMissingModel", "openrm-score", "--model '{d}/nope' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/nope: no such model folder"}},
      {"ScoreMalformedConfig", "openrm-score",
       "--model '{d}/bad-json' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/bad-json/config.json: malformed JSON"}},
      {"ScoreConfigWrongType", "openrm-score",
       "--model '{d}/bad-type' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/bad-type/config.json: field 'hidden_size': expected a positive integer"}},
      {"ScoreNoWeights", "openrm-score", "--model '{d}/no-weights' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/no-weights: no model.safetensors"}},
      {"ScoreHugeDimension", "openrm-score", "--model '{d}/huge' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/huge", "field 'hidden_size' is 1000000, more than the 131072 openrm accepts"}},
      {"TrainWarmUpLongerThanTheRun", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --warmup-steps 5",
       {"warmup_steps"}},
      {"ScoreUnknownArchitecture", "openrm-score",
       "--model '{d}/alien' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/alien/config.json: unsupported architecture 'BloomForSequenceClassification'"}},
      {"ScoreTruncatedWeights", "openrm-score",
       "--model '{d}/short-weights' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/short-weights/model.safetensors: header length"}},
      {"ScoreTruncatedTokenizerJson", "openrm-score",
       "--model '{d}/cut-tokenizer' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/cut-tokenizer/tokenizer.json", "malformed JSON"}},
      {"ScoreUnimplementedTokenizerPart", "openrm-score",
       "--model '{d}/unigram-tokenizer' --input '{d}/records.jsonl' --output '{d}/out.jsonl'",
       {"{d}/unigram-tokenizer/tokenizer.json: model: the model type 'Unigram' is not implemented"}},
      {"ScoreMissingTokenizer", "openrm-score", kScore + "--input '{d}/records.jsonl' --tokenizer '{d}/nope'",
       {"{d}/nope: no such tokenizer"}},
      {"ScoreNormalizeWithoutStatistics", "openrm-score", kScore + "--input '{d}/records.jsonl' --normalize",
       {"openrm.json has no reward_mean"}},
      // ---- openrm-score: option values
      {"ScoreBadDtype", "openrm-score", kScore + "--input '{d}/records.jsonl' --dtype fp8", {"--dtype: fp8 not in"}},
      {"ScoreUnknownChatFormat", "openrm-score", kScore + "--input '{d}/records.jsonl' --chat-format nope",
       {"--chat-format: nope not in"}},
      {"ScoreMaxTokensNotANumber", "openrm-score", kScore + "--input '{d}/records.jsonl' --max-tokens abc",
       {"--max-tokens: expected a positive integer, got 'abc'"}},
      {"ScoreChunkRecordsNegative", "openrm-score", kScore + "--input '{d}/records.jsonl' --chunk-records -5",
       {"--chunk-records: expected a positive integer, got '-5'"}},
      {"ScoreThreadsOutOfRange", "openrm-score", kScore + "--input '{d}/records.jsonl' --threads 99999999999",
       {"--threads: '99999999999' is out of range"}},
      {"ScoreSharePrefixesNotABoolean", "openrm-score", kScore + "--input '{d}/records.jsonl' --share-prefixes maybe",
       {"--share-prefixes: expected true or false, got 'maybe'"}},
      {"ScoreUnknownOption", "openrm-score", kScore + "--input '{d}/records.jsonl' --frobnicate", {"--frobnicate"}},
      {"ScoreMissingOption", "openrm-score", "--model '{d}/rm' --input '{d}/records.jsonl'", {"--output is required"}},
      {"ScoreUnavailableDevice", "openrm-score", kScore + "--input '{d}/records.jsonl' --device cuda:7",
       {"device 'cuda:7'"}},
      // ---- openrm-score: output paths
      {"ScoreOutputIsTheInput", "openrm-score", "--model '{d}/rm' --input '{d}/records.jsonl' --output '{d}/records.jsonl'",
       {"{d}/records.jsonl: is the same file as the input {d}/records.jsonl"}},
      {"ScoreOutputIsALinkToTheInput", "openrm-score",
       "--model '{d}/rm' --input '{d}/records.jsonl' --output '{d}/records-link.jsonl'",
       {"{d}/records-link.jsonl: is the same file as the input {d}/records.jsonl"}},
      {"ScoreOutputIsAModelFile", "openrm-score",
       "--model '{d}/rm' --input '{d}/records.jsonl' --output '{d}/rm/config.json'",
       {"{d}/rm/config.json: is the same file as {d}/rm/config.json (in the input folder {d}/rm)"}},
      {"ScoreOutputIsAFolder", "openrm-score", "--model '{d}/rm' --input '{d}/records.jsonl' --output '{d}/outdir'",
       {"{d}/outdir: is a directory, not a file"}},
      {"ScoreOutputFolderMissing", "openrm-score",
       "--model '{d}/rm' --input '{d}/records.jsonl' --output '{d}/no-dir/out.jsonl'",
       {"{d}/no-dir/out.jsonl: cannot be written: no folder"}},

      // ---- openrm-eval
      {"EvalMalformedJson", "openrm-eval", kEval + "--data '{d}/malformed.jsonl'",
       {"{d}/malformed.jsonl:2: malformed JSON"}},
      {"EvalMissingField", "openrm-eval", kEval + "--data '{d}/pair-missing.jsonl'",
       {"{d}/pair-missing.jsonl:2: missing field 'rejected'"}},
      {"EvalWrongType", "openrm-eval", kEval + "--data '{d}/pair-wrong-type.jsonl'",
       {"{d}/pair-wrong-type.jsonl:2: field 'chosen': expected a string"}},
      {"EvalRecordsAreNotPairs", "openrm-eval", kEval + "--data '{d}/records.jsonl'",
       {"{d}/records.jsonl:1: missing field 'chosen'"}},
      {"EvalMissingData", "openrm-eval", kEval + "--data '{d}/nope.jsonl'", {"{d}/nope.jsonl: cannot open"}},
      {"EvalDataIsAFolder", "openrm-eval", kEval + "--data '{d}/rm'", {"{d}/rm: is a directory, not a file"}},
      {"EvalMissingModel", "openrm-eval", "--model '{d}/nope' --data '{d}/pairs.jsonl'", {"{d}/nope: no such model folder"}},
      {"EvalMissingTokenizer", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --tokenizer '{d}/nope'",
       {"{d}/nope: no such tokenizer"}},
      {"EvalJsonIsTheData", "openrm-eval", "--model '{d}/rm' --data '{d}/pairs.jsonl' --json '{d}/pairs.jsonl'",
       {"{d}/pairs.jsonl: is the same file as the input {d}/pairs.jsonl"}},
      {"EvalRewardsIsTheJson", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --rewards '{d}/out.jsonl'",
       {"{d}/out.jsonl: is the same file as the output {d}/out.jsonl"}},
      {"EvalMaxTokensZero", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --max-tokens 0",
       {"--max-tokens: expected a positive integer, got '0'"}},
      {"EvalThreadsNotANumber", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --threads abc",
       {"--threads: expected a non-negative integer, got 'abc'"}},
      {"EvalBadTruncation", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --truncation cut",
       {"--truncation: cut not in"}},
      {"EvalUnknownChatFormat", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --chat-format nope",
       {"--chat-format: nope not in"}},
      {"EvalReportIsTheData", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --report '{d}/pairs.jsonl'",
       {"{d}/pairs.jsonl: is the same file as the input {d}/pairs.jsonl"}},
      {"EvalReportFolderMissing", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --report '{d}/no-dir/r.html'",
       {"{d}/no-dir/r.html: cannot be written: no folder"}},
      {"EvalReportOnStdout", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --report -",
       {"--report -: the report is a file"}},
      {"EvalNotARewardBenchFile", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --rewardbench v2",
       {"{d}/pairs.jsonl:1: missing field 'subset'"}},
      {"EvalBadRewardBenchVersion", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --rewardbench v3",
       {"--rewardbench: v3 not in"}},
      {"EvalNegativeEnsembleK", "openrm-eval", kEval + "--data '{d}/pairs.jsonl' --ensemble-k -1",
       {"--ensemble-k must be a finite number >= 0, got -1"}},
      {"EvalSameModelTwice", "openrm-eval", kEval + "--model '{d}/rm' --data '{d}/pairs.jsonl'",
       {"--model {d}/rm is given twice"}},
      {"EvalUpdateCardFromStdin", "openrm-eval", kEval + "--data - --update-card",
       {"--update-card records the data file's sha256"}},

      // ---- openrm-train
      {"TrainMissingData", "openrm-train", kTrain + "--data '{d}/nope.jsonl'", {"{d}/nope.jsonl: cannot open"}},
      {"TrainMalformedJson", "openrm-train", kTrain + "--data '{d}/malformed.jsonl'",
       {"{d}/malformed.jsonl:2: malformed JSON"}},
      {"TrainWrongType", "openrm-train", kTrain + "--data '{d}/pair-wrong-type.jsonl'",
       {"{d}/pair-wrong-type.jsonl:2: field 'chosen'"}},
      {"TrainDataIsAFolder", "openrm-train", kTrain + "--data '{d}/rm'", {"{d}/rm: is a directory, not a file"}},
      {"TrainLrNotANumber", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --lr abc",
       {"--lr: expected a number, got 'abc'"}},
      {"TrainEpochsNotAnInteger", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --epochs 1.5",
       {"--epochs: expected an integer, got '1.5'"}},
      {"TrainShuffleNotABoolean", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --shuffle maybe",
       {"--shuffle: expected true or false, got 'maybe'"}},
      {"TrainUnknownSchedule", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --schedule wavy",
       {"'schedule'", "wavy"}},
      {"TrainUnknownChatFormat", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --chat-format nope",
       {"'chat_format'", "nope"}},
      {"TrainConfigUnknownField", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --config '{d}/config-unknown.json'",
       {"{d}/config-unknown.json: unknown field(s): learning_rate"}},
      {"TrainConfigMalformed", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --config '{d}/config-malformed.json'",
       {"{d}/config-malformed.json: malformed JSON"}},
      {"TrainConfigWrongType", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --config '{d}/config-type.json'",
       {"{d}/config-type.json: field 'max_steps': expected an integer"}},
      {"TrainOutputIsSomeoneElses", "openrm-train",
       "--output '{d}/theirs' --init-model '{d}/rm' --data '{d}/pairs.jsonl'",
       {"{d}/theirs: exists, is not empty and is not an openrm run", "--overwrite-output-dir"}},
      {"TrainOutputIsTheInitModel", "openrm-train",
       "--output '{d}/rm' --init-model '{d}/rm' --data '{d}/pairs.jsonl' --overwrite-output-dir",
       {"{d}/rm: the output folder is the input folder {d}/rm"}},
      {"TrainOutputHoldsTheData", "openrm-train",
       "--output '{d}/run' --init-model '{d}/rm' --data '{d}/run/held.jsonl'",
       {"{d}/run: the output folder holds the input {d}/run/held.jsonl"}},
      {"TrainOutputIsAFile", "openrm-train", "--output '{d}/a-file' --init-model '{d}/rm' --data '{d}/pairs.jsonl'",
       {"{d}/a-file: exists and is not a folder"}},
      {"TrainUnavailableDevice", "openrm-train", kTrain + "--data '{d}/pairs.jsonl' --device cuda:7",
       {"device 'cuda:7'"}},

      // ---- openrm-export
      {"ExportMissingModel", "openrm-export", "--model '{d}/nope' --output '{d}/outdir' --force",
       {"{d}/nope: no such folder"}},
      {"ExportNotAModel", "openrm-export", "--model '{d}/theirs' --output '{d}/outdir' --force",
       {"{d}/theirs: not a model folder (no config.json)"}},
      {"ExportConfigWrongType", "openrm-export", "--model '{d}/bad-type' --output '{d}/outdir' --force",
       {"{d}/bad-type/config.json: field 'hidden_size'"}},
      {"ExportOutputIsTheInput", "openrm-export", "--model '{d}/rm' --output '{d}/rm' --force",
       {"{d}/rm: the output folder is the input folder {d}/rm"}},
      {"ExportOutputIsAFile", "openrm-export", "--model '{d}/rm' --output '{d}/a-file' --force",
       {"{d}/a-file: exists and is not a folder"}},
      {"ExportOutputIsSomeoneElses", "openrm-export", "--model '{d}/rm' --output '{d}/theirs' --force",
       {"{d}/theirs: exists, is not empty and is not an openrm model folder", "--overwrite-output-dir"}},
      {"ExportOutputNotForced", "openrm-export", "--model '{d}/rm' --output '{d}/outdir'",
       {"{d}/outdir: exists and is not empty (use --force"}},
      {"ExportBadDtype", "openrm-export", kExport + "--dtype int8", {"--dtype: int8 not in"}},
      {"ExportBadShardSize", "openrm-export", kExport + "--max-shard-size 2XB", {"--max-shard-size: invalid size '2XB'"}},
      {"ExportNegativePadToken", "openrm-export", kExport + "--pad-token-id -1",
       {"--pad-token-id: expected a non-negative integer, got '-1'"}},

      // ---- openrm-tokenizer
      {"TokenizerMissingInput", "openrm-tokenizer", kTokenize + "--input '{d}/nope.txt'", {"{d}/nope.txt: cannot open"}},
      {"TokenizerMalformedJson", "openrm-tokenizer", kTokenize + "--input '{d}/malformed.jsonl'",
       {"{d}/malformed.jsonl:2: malformed JSON"}},
      {"TokenizerWrongType", "openrm-tokenizer", kTokenize + "--input '{d}/pair-wrong-type.jsonl'",
       {"{d}/pair-wrong-type.jsonl:2: field 'chosen'"}},
      {"TokenizerVocabSizeNotANumber", "openrm-tokenizer",
       "train --vocab-size abc --output '{d}/tok.model' --input '{d}/pairs.jsonl'",
       {"--vocab-size: expected an integer, got 'abc'"}},
      {"TokenizerUnknownModelType", "openrm-tokenizer", kTokenize + "--input '{d}/pairs.jsonl' --model-type wordpiece",
       {"--model-type: wordpiece not in"}},
      {"TokenizerOutputIsTheInput", "openrm-tokenizer", kTokenize + "--input '{d}/tok.model'",
       {"{d}/tok.model: is the same file as the input {d}/tok.model"}},
      {"TokenizerOutputIsSomeoneElses", "openrm-tokenizer",
       "train --vocab-size 60 --output '{d}/theirs' --input '{d}/pairs.jsonl'",
       {"{d}/theirs: exists, is not empty and is not a model or tokenizer folder"}},
      {"TokenizerEncodeMissingTokenizer", "openrm-tokenizer", "encode --tokenizer '{d}/nope' --text hi",
       {"{d}/nope: no such file or folder"}},
      {"TokenizerDecodeBadId", "openrm-tokenizer", "decode --tokenizer '{d}/rm' --ids '1 x 2'",
       {"--ids: 'x' is not a token id"}},

      // ---- openrm-init-model
      {"InitModelMissingConfig", "openrm-init-model", "--config '{d}/nope.json' --output '{d}/new-model'",
       {"--config", "{d}/nope.json"}},
      {"InitModelConfigWrongType", "openrm-init-model", "--config '{d}/bad-type/config.json' --output '{d}/new-model'",
       {"{d}/bad-type/config.json: field 'hidden_size'"}},
      {"InitModelStdZero", "openrm-init-model", "--config '{d}/rm/config.json' --output '{d}/new-model' --std 0",
       {"--std: expected a positive number, got '0'"}},
      {"InitModelBadDtype", "openrm-init-model", "--config '{d}/rm/config.json' --output '{d}/new-model' --dtype int8",
       {"--dtype: int8 not in"}},
  };
  return all;
}

std::string substitute(std::string text, const std::string& dir) {
  for (std::size_t at = text.find("{d}"); at != std::string::npos; at = text.find("{d}", at + dir.size())) {
    text.replace(at, 3, dir);
  }
  return text;
}

// Every file and folder under dir, with the bytes of the files.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> all;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string path = e.path().string();
    if (e.is_symlink()) {
      all[path] = "-> " + fs::read_symlink(e.path()).string();
    } else if (e.is_directory()) {
      all[path] = "<folder>";
    } else {
      all[path] = test::read_bytes(path);
    }
  }
  return all;
}

void copy_model(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive);
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(test::read_bytes(path)); }

class BadInput : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>();
    const std::string d = dir_->path();
    const std::string rm = d + "/rm";
    test::make_tiny_model_folder(rm, /*with_tokenizer=*/true);
    auto write = [&](const std::string& name, const std::string& text) { test::write_bytes(d + "/" + name, text); };
    const std::string pair = std::string(kPair) + "\n", record = std::string(kRecord) + "\n";
    write("pairs.jsonl", pair + pair);
    write("records.jsonl", record + record);
    fs::create_symlink(d + "/records.jsonl", d + "/records-link.jsonl");
    write("malformed.jsonl", pair + "{\"prompt\": \n");
    write("pair-missing.jsonl", pair + R"({"prompt": "Q", "chosen": "x"})" "\n");
    write("pair-wrong-type.jsonl", pair + R"({"prompt": "Q", "chosen": 5, "rejected": "x"})" "\n");
    write("record-missing.jsonl", record + R"({"prompt": "x"})" "\n");
    write("record-wrong-type.jsonl", record + R"({"prompt": 5, "response": "x"})" "\n");
    write("record-array.jsonl", record + "[1, 2]\n");
    write("empty.jsonl", "");
    write("ranked.jsonl", R"({"prompt": "q", "responses": ["a", "b"], "scores": [1, 0]})" "\n");
    write("ranked-wrong-type.jsonl", R"({"prompt": "q", "responses": ["a", 7]})" "\n");
    ASSERT_EQ(std::system(("gzip -c '" + d + "/pairs.jsonl' | head -c 30 > '" + d + "/truncated.jsonl.gz'").c_str()), 0);
    write("config-unknown.json", R"({"lr": 0.001, "learning_rate": 0.1})");
    write("config-malformed.json", R"({"lr": )");
    write("config-type.json", R"({"max_steps": "many"})");
    write("a-file", "not a folder\n");

    // Broken copies of the model folder.
    copy_model(rm, d + "/bad-json");
    write("bad-json/config.json", "{\"architectures\": [\"LlamaForSequenceClassification\"],\n");
    copy_model(rm, d + "/bad-type");
    nlohmann::json config = read_json(rm + "/config.json");
    config["hidden_size"] = "big";
    write("bad-type/config.json", config.dump(2));
    copy_model(rm, d + "/huge");
    config = read_json(rm + "/config.json");
    config["hidden_size"] = 1000000;
    write("huge/config.json", config.dump(2));
    copy_model(rm, d + "/alien");
    config = read_json(rm + "/config.json");
    config["architectures"] = {"BloomForSequenceClassification"};
    config["model_type"] = "bloom";
    write("alien/config.json", config.dump(2));
    copy_model(rm, d + "/cut-tokenizer");
    write("cut-tokenizer/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
    copy_model(rm, d + "/unigram-tokenizer");
    write("unigram-tokenizer/tokenizer.json",
          "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]]}}");
    copy_model(rm, d + "/no-weights");
    fs::remove(d + "/no-weights/model.safetensors");
    copy_model(rm, d + "/short-weights");
    write("short-weights/model.safetensors", test::read_bytes(rm + "/model.safetensors").substr(0, 1000));

    // Outputs of earlier runs, which no failed run may touch.
    write("out.jsonl", "precious scores\n");
    write("tok.model", "precious tokenizer\n");  // also a text file a case trains on
    fs::create_directories(d + "/outdir");
    write("outdir/openrm.json", "precious export\n");
    fs::create_directories(d + "/run");
    write("run/training_config.json", "precious run\n");
    write("run/held.jsonl", pair + pair);
    fs::create_directories(d + "/theirs");
    write("theirs/notes.txt", "someone's notes\n");
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::unique_ptr<test::TempDir> dir_;
};

std::unique_ptr<test::TempDir> BadInput::dir_;

TEST_P(BadInput, FailsWithOneLineThatNamesThePlaceAndChangesNothing) {
  const Case& c = GetParam();
  if (!test::tool_built(c.tool)) GTEST_SKIP() << c.tool << " was not built";
  const std::string d = dir_->path();
  const auto before = snapshot(d);
  test::TempDir log;  // run_tool's output file, outside the folder checked
  const test::ToolRun run = test::run_tool(c.tool, substitute(c.args, d), log);
  const std::string line = test::error_line(run, c.tool);
  for (const std::string& part : c.expect) {
    EXPECT_TRUE(test::contains(line, substitute(part, d))) << c.name << ": " << run.output;
  }
  const auto after = snapshot(d);
  for (const auto& [path, bytes] : after) {
    const auto it = before.find(path);
    if (it == before.end()) {
      ADD_FAILURE() << c.name << ": the run left " << path;
    } else {
      EXPECT_TRUE(it->second == bytes) << c.name << ": the run changed " << path;
    }
  }
  for (const auto& [path, bytes] : before) {
    EXPECT_TRUE(after.count(path)) << c.name << ": the run removed " << path;
  }
}

INSTANTIATE_TEST_SUITE_P(Tools, BadInput, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(BadInputMatrix, HasEnoughCasesWithUniqueNames) {
  std::set<std::string> names, tools;
  for (const Case& c : cases()) {
    EXPECT_TRUE(names.insert(c.name).second) << c.name;
    tools.insert(c.tool);
    EXPECT_FALSE(c.expect.empty()) << c.name;
  }
  EXPECT_GE(cases().size(), 40u);
  EXPECT_EQ(tools.size(), 6u);
}

// ---- --version and --help -------------------------------------------------------

const std::vector<std::string> kTools = {"openrm-score",     "openrm-eval",   "openrm-train",
                                         "openrm-export",    "openrm-tokenizer", "openrm-init-model"};

TEST(ToolBasics, EveryToolPrintsItsVersion) {
  test::TempDir tmp;
  for (const std::string& tool : kTools) {
    if (!test::tool_built(tool)) continue;
    const test::ToolRun run = test::run_tool(tool, "--version", tmp);
    EXPECT_EQ(run.status, 0) << tool;
    EXPECT_EQ(run.output, tool + " " + OPENRM_VERSION + "\n");
  }
}

// The options of --help by group heading ("Input:" ...), in the order shown.
std::vector<std::pair<std::string, std::vector<std::string>>> help_groups(const std::string& help) {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  std::istringstream lines(help);
  std::string line;
  bool in_options = false;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line[0] != ' ') {
      in_options = line.back() == ':' && line != "Subcommands:" && line.rfind("Usage", 0) != 0;
      if (in_options) groups.push_back({line.substr(0, line.size() - 1), {}});
      continue;
    }
    const std::size_t start = line.find_first_not_of(' ');
    if (!in_options || line.compare(start, 1, "-") != 0) continue;  // a wrapped description
    const std::string names = line.substr(start, line.find(' ', start) - start);
    groups.back().second.push_back(names.substr(names.rfind(',') == std::string::npos ? 0 : names.rfind(',') + 1));
  }
  return groups;
}

TEST(ToolBasics, HelpGroupsTheOptions) {
  test::TempDir tmp;
  const std::vector<std::string> order = {"Input", "Model", "Output", "Training", "Performance", "Other"};
  const std::set<std::string> other_allowed = {"--help", "--version", "--log-level", "--verbose"};
  // Where a few options belong.
  const std::map<std::string, std::map<std::string, std::string>> placed = {
      {"openrm-score", {{"--input", "Input"}, {"--model", "Model"}, {"--output", "Output"}, {"--threads", "Performance"}}},
      {"openrm-eval", {{"--data", "Input"}, {"--model", "Model"}, {"--json", "Output"}, {"--max-tokens", "Performance"}}},
      {"openrm-train",
       {{"--data", "Input"}, {"--init-model", "Model"}, {"--overwrite-output-dir", "Output"}, {"--lr", "Training"},
        {"--device", "Performance"}}},
      {"openrm-export", {{"--model", "Input"}, {"--dtype", "Model"}, {"--overwrite-output-dir", "Output"}}},
      {"openrm-tokenizer train", {{"--input", "Input"}, {"--output", "Output"}, {"--vocab-size", "Training"},
                                  {"--threads", "Performance"}}},
      {"openrm-init-model", {{"--config", "Input"}, {"--std", "Model"}, {"--output", "Output"}}},
  };
  for (const auto& [command, where] : placed) {
    const std::string tool = command.substr(0, command.find(' '));
    if (!test::tool_built(tool)) continue;
    const std::string args = command.size() > tool.size() ? command.substr(tool.size() + 1) + " --help" : "--help";
    const test::ToolRun run = test::run_tool(tool, args, tmp);
    ASSERT_EQ(run.status, 0) << command << ": " << run.output;
    const auto groups = help_groups(run.output);
    std::size_t last = 0;
    std::map<std::string, std::string> group_of;
    for (const auto& [group, options] : groups) {
      const auto at = std::find(order.begin(), order.end(), group);
      ASSERT_NE(at, order.end()) << command << ": group " << group;
      EXPECT_GE(static_cast<std::size_t>(at - order.begin()), last) << command << ": " << group << " out of order";
      last = static_cast<std::size_t>(at - order.begin());
      for (const auto& option : options) {
        group_of[option] = group;
        if (group == "Other") EXPECT_TRUE(other_allowed.count(option)) << command << ": " << option << " has no group";
      }
    }
    for (const auto& [option, group] : where) EXPECT_EQ(group_of[option], group) << command << " " << option;
  }
}

}  // namespace
}  // namespace openrm
