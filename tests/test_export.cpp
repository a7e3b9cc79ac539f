// openrm-export / export_model: a tiny Llama reward model trained here by
// openrm (a tokenizer trained on the demo data, the llama2 chat format) is
// exported and read back by openrm (bit-equal scores, dtypes, shards) and by
// transformers in the reference environment (same ids, rewards within 1e-4
// in float32); inputs the export must refuse give one-line errors. A LoRA
// adapter folder exports merged onto its base: openrm and transformers score
// the export as the adapted model, and its weights are PEFT's
// merge_and_unload.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <openrm/data/preference.h>
#include <openrm/error.h>
#include <openrm/io/file.h>
#include <openrm/io/safetensors.h>
#include <openrm/logging.h>
#include <openrm/models/lora.h>
#include <openrm/models/model_folder.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/train_tokenizer.h>
#include <openrm/train/export.h>
#include <openrm/train/trainer.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sys/wait.h>
#include <torch/torch.h>

#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string demo_file(const char* name) { return std::string(OPENRM_SOURCE_DIR) + "/data/" + name; }

Json read_json_file(const std::string& path) { return Json::parse(read_text_file(path)); }

// A training run of a tiny Llama on 96 demo pairs (llama2 chat format,
// checkpoints every 3 steps), made once for the whole binary.
struct Run {
  test::TempDir dir;
  std::string tokenizer;  // folder
  std::string output;     // the training output folder
  std::vector<PreferencePair> held_out;
};

std::string pairs_jsonl(const std::vector<PreferencePair>& pairs) {
  std::string text;
  for (const auto& p : pairs) {
    text += Json({{"prompt", p.prompt.back().content},
                  {"chosen", p.chosen.back().content},
                  {"rejected", p.rejected.back().content}})
                .dump() +
            "\n";
  }
  return text;
}

const Run& run() {
  static const std::unique_ptr<Run> r = [] {
    auto r = std::make_unique<Run>();
    set_log_level(LogLevel::kWarn);
    ReadOptions read;
    read.max_records = 300;
    const auto demo = read_preferences(demo_file("demo-prefs-train.jsonl.gz"), read);
    std::vector<std::string> texts;
    for (const auto& p : demo.pairs) {
      texts.push_back(p.prompt.back().content);
      texts.push_back(p.chosen.back().content);
      texts.push_back(p.rejected.back().content);
    }
    TokenizerTrainOptions t;  // byte fallback on: every text has ids
    t.vocab_size = 400;
    r->tokenizer = r->dir.file("tokenizer");
    auto tok = train_tokenizer(texts, r->tokenizer, t);

    Json config = test::tiny_config("LlamaForSequenceClassification").to_json();
    config["vocab_size"] = tok->vocab_size();
    config.erase("pad_token_id");  // the trainer takes the tokenizer's
    write_file_atomic(r->dir.file("config.json"), config.dump(2));
    test::write_bytes(r->dir.file("train.jsonl"),
                      pairs_jsonl(std::vector<PreferencePair>(demo.pairs.begin(), demo.pairs.begin() + 96)));
    read.max_records = 8;
    r->held_out = read_preferences(demo_file("demo-prefs-test.jsonl.gz"), read).pairs;

    TrainOptions o;
    o.data = {r->dir.file("train.jsonl")};
    o.init_config = r->dir.file("config.json");
    o.tokenizer = r->tokenizer;
    o.chat_format = "llama2";
    o.output_dir = r->dir.file("run");
    o.max_length = 96;
    o.max_tokens = 2048;
    o.lr = 3e-3;
    o.max_steps = 6;
    o.save_every = 3;
    o.keep_checkpoints = 2;
    o.threads = 2;
    o.seed = 3;
    o.log_every = 1000;
    train_reward_model(o);
    r->output = o.output_dir;
    return r;
  }();
  return *r;
}

std::vector<std::int64_t> ids64(const std::vector<TokenId>& ids) { return {ids.begin(), ids.end()}; }

// Held-out texts: prompt + response, a few with characters only byte
// fallback covers, one with a special token's text inside.
std::vector<std::string> held_out_texts() {
  std::vector<std::string> texts;
  for (const auto& p : run().held_out) {
    texts.push_back(p.prompt.back().content + "\n" + p.chosen.back().content);
    texts.push_back(p.prompt.back().content + "\n" + p.rejected.back().content);
  }
  texts.push_back("Résumé of a naïve café visit: ✓ 日本");
  texts.push_back("Short.");
  texts.push_back("Tabs\tand  two spaces, then a newline\nand more.");
  return texts;
}

std::vector<Conversation> held_out_conversations() {
  std::vector<Conversation> out;
  const auto& pairs = run().held_out;
  for (std::size_t i = 0; i < 4; ++i) {
    out.push_back({{"user", pairs[i].prompt.back().content}, {"assistant", pairs[i].chosen.back().content}});
  }
  out.push_back({{"system", "Answer briefly."},
                 {"user", pairs[4].prompt.back().content},
                 {"assistant", pairs[4].rejected.back().content}});
  out.push_back({{"user", pairs[5].prompt.back().content},
                 {"assistant", pairs[5].chosen.back().content},
                 {"user", pairs[6].prompt.back().content},
                 {"assistant", pairs[6].chosen.back().content}});
  return out;
}

std::vector<std::vector<std::int64_t>> encoded(const Tokenizer& tok) {
  std::vector<std::vector<std::int64_t>> out;
  for (const auto& text : held_out_texts()) out.push_back(ids64(tok.encode(text)));
  return out;
}

std::vector<float> folder_scores(const std::string& dir) {
  auto folder = load_reward_model_folder(dir);
  return folder.model->score(encoded(*folder.tokenizer));
}

ExportOptions export_options(const std::string& model, const std::string& output) {
  ExportOptions o;
  o.model_dir = model;
  o.output_dir = output;
  return o;
}

std::string newest_checkpoint(const std::string& output) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(join_path(output, "checkpoints"))) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0) names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  return names.empty() ? std::string() : names.back();
}

// ---- openrm reads the export back ---------------------------------------------

TEST(Export, RoundTripKeepsEveryTensorAndScoreBitForBit) {
  test::TempDir tmp;
  const std::string out = tmp.file("hf");
  const ExportResult r = export_model(export_options(run().output, out));
  EXPECT_EQ(r.dtype, "float32");
  EXPECT_EQ(r.chat_format, "llama2");
  EXPECT_TRUE(r.chat_template);
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json",
                           "special_tokens_map.json", "openrm.json", "README.md"}) {
    EXPECT_TRUE(path_exists(join_path(out, name))) << name;
  }
  EXPECT_FALSE(path_exists(join_path(out, "checkpoints")));

  const WeightStore a = WeightStore::open_folder(run().output);
  const WeightStore b = WeightStore::open_folder(out);
  ASSERT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) {
    EXPECT_EQ(b.tensor(name).scalar_type(), a.tensor(name).scalar_type()) << name;
    EXPECT_TRUE(b.tensor(name).equal(a.tensor(name))) << name;
  }
  EXPECT_EQ(folder_scores(out), folder_scores(run().output));

  // config.json: the trainer's pad id (the tokenizer's <pad>), dtype, head.
  const Json config = read_json_file(join_path(out, "config.json"));
  auto tok = load_tokenizer(run().tokenizer);
  EXPECT_EQ(config.at("pad_token_id").get<std::int64_t>(), tok->special_tokens().pad.id);
  EXPECT_EQ(config.at("architectures"), Json::array({"LlamaForSequenceClassification"}));
  EXPECT_EQ(config.at("model_type"), "llama");
  EXPECT_EQ(config.at("dtype"), "float32");
  EXPECT_EQ(config.at("num_labels"), 1);

  const Json tc = read_json_file(join_path(out, "tokenizer_config.json"));
  EXPECT_EQ(tc.at("chat_template").get<std::string>(), chat_template_for(ChatFormat::kLlama2));
  EXPECT_EQ(tc.at("pad_token"), "<pad>");
  EXPECT_EQ(tc.at("bos_token"), "<s>");
  const Json map = read_json_file(join_path(out, "special_tokens_map.json"));
  EXPECT_EQ(map.at("pad_token"), "<pad>");
  EXPECT_EQ(map.at("eos_token"), "</s>");
  const auto meta = read_model_metadata(out);
  ASSERT_TRUE(meta.chat_format.has_value());
  EXPECT_EQ(*meta.chat_format, ChatFormat::kLlama2);
  EXPECT_EQ(meta.other, read_model_metadata(run().output).other);  // the rest of openrm.json is kept

  // The card: the Hub's YAML header first, then the run's own card.
  const std::string card = read_text_file(join_path(out, "README.md"));
  EXPECT_EQ(card.rfind("---\nlibrary_name: transformers\npipeline_tag: text-classification\ntags:\n", 0), 0u)
      << card.substr(0, 200);
  EXPECT_NE(card.find("\n- reward-model\n"), std::string::npos);
  EXPECT_EQ(card.find("license:"), std::string::npos);  // not known
  EXPECT_NE(card.find("## Training data"), std::string::npos);  // the trainer's card follows

  // Exported again: one card of each kind, not nested ones.
  export_model(export_options(out, tmp.file("again")));
  const std::string again = read_text_file(tmp.file("again/README.md"));
  const auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = again.find(what); at != std::string::npos; at = again.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("## Loading with transformers"), 1u);
  EXPECT_EQ(count("## Training data"), 1u);
  EXPECT_TRUE(WeightStore::open_folder(tmp.file("again")).tensor("score.weight").equal(
      WeightStore::open_folder(out).tensor("score.weight")));
}

TEST(Export, Bf16AndFp16StoreTheRoundedTensors) {
  test::TempDir tmp;
  for (const auto& [dtype, name, scalar] :
       {std::tuple{ExportDType::kBFloat16, "bfloat16", at::kBFloat16}, std::tuple{ExportDType::kFloat16, "float16", at::kHalf}}) {
    SCOPED_TRACE(name);
    ExportOptions o = export_options(run().output, tmp.file(name));
    o.dtype = dtype;
    export_model(o);
    EXPECT_EQ(read_json_file(tmp.file(std::string(name) + "/config.json")).at("dtype"), name);
    const WeightStore a = WeightStore::open_folder(run().output);
    const WeightStore b = WeightStore::open_folder(tmp.file(name));
    for (const auto& n : a.names()) {
      const at::Tensor t = b.tensor(n);
      EXPECT_EQ(t.scalar_type(), scalar) << n;
      EXPECT_TRUE(t.equal(a.tensor(n).to(scalar))) << n;
    }
    // Loaded into fp32, the rounded weights score close to the originals.
    const auto got = folder_scores(tmp.file(name));
    const auto want = folder_scores(run().output);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.05) << i;
  }
}

TEST(Export, ShardsTileTheTensors) {
  test::TempDir tmp;
  const std::string out = tmp.file("sharded");
  ExportOptions o = export_options(run().output, out);
  o.max_shard_bytes = parse_byte_size("20KB");
  export_model(o);
  EXPECT_FALSE(path_exists(join_path(out, "model.safetensors")));
  const Json index = read_json_file(join_path(out, "model.safetensors.index.json"));
  const WeightStore src = WeightStore::open_folder(run().output);
  std::map<std::string, std::set<std::string>> by_file;
  for (const auto& [tensor, file] : index.at("weight_map").items()) by_file[file.get<std::string>()].insert(tensor);
  EXPECT_GT(by_file.size(), 2u);
  std::set<std::string> all;
  std::uint64_t total = 0;
  for (const auto& [file, names] : by_file) {
    auto shard = SafetensorsFile::open(join_path(out, file));
    std::set<std::string> in_file;
    std::uint64_t bytes = 0;
    for (const auto& e : shard->entries()) {
      in_file.insert(e.name);
      bytes += shard->tensor(e.name).nbytes();
    }
    EXPECT_EQ(in_file, names) << file;
    if (names.size() > 1) EXPECT_LE(bytes, 20000u) << file;  // a larger tensor gets a shard of its own
    total += bytes;
    for (const auto& n : names) EXPECT_TRUE(all.insert(n).second) << n << " in two shards";
  }
  const auto src_names = src.names();
  EXPECT_EQ(all, std::set<std::string>(src_names.begin(), src_names.end()));
  EXPECT_EQ(index.at("metadata").at("total_size").get<std::uint64_t>(), total);
  EXPECT_EQ(folder_scores(out), folder_scores(run().output));
}

TEST(Export, CheckpointTakesItsRunsTokenizerAndChatFormat) {
  test::TempDir tmp;
  const std::string ckpt = newest_checkpoint(run().output);
  ASSERT_FALSE(ckpt.empty());
  const std::string out = tmp.file("from-ckpt");
  const ExportResult r = export_model(export_options(ckpt, out));
  EXPECT_EQ(r.chat_format, "llama2");  // from trainer_state.json's options
  EXPECT_EQ(sha256_file(join_path(out, "tokenizer.model")), sha256_file(join_path(run().tokenizer, "tokenizer.model")));
  const WeightStore a = WeightStore::open_folder(ckpt);
  const WeightStore b = WeightStore::open_folder(out);
  for (const auto& name : a.names()) EXPECT_TRUE(b.tensor(name).equal(a.tensor(name))) << name;
  EXPECT_FALSE(path_exists(join_path(out, "optimizer.pt")));
  EXPECT_FALSE(path_exists(join_path(out, "trainer_state.json")));
  const std::string card = read_text_file(join_path(out, "README.md"));
  EXPECT_NE(card.find("trainer checkpoint"), std::string::npos);
  EXPECT_EQ(card.find("## Training data"), std::string::npos);  // the run's card is not this model's

  // A run folder without its final model (an unfinished run): its newest checkpoint.
  const std::string unfinished = tmp.file("unfinished");
  fs::create_directories(unfinished + "/checkpoints");
  fs::copy(ckpt, unfinished + "/checkpoints/" + fs::path(ckpt).filename().string(), fs::copy_options::recursive);
  const ExportResult u = export_model(export_options(unfinished, tmp.file("from-unfinished")));
  EXPECT_EQ(u.chat_format, "llama2");
  EXPECT_EQ(sha256_file(tmp.file("from-unfinished/model.safetensors")), sha256_file(join_path(out, "model.safetensors")));
}

// A folder whose config.json has no pad_token_id, with a tokenizer that has
// a pad token or (no_pad) only eos.
std::string folder_without_pad(const test::TempDir& tmp, const std::string& name, bool no_pad) {
  const std::string dir = tmp.file(name);
  test::make_tiny_model_folder(dir, /*with_tokenizer=*/false);
  Json config = read_json_file(join_path(dir, "config.json"));
  config.erase("pad_token_id");
  write_file_atomic(join_path(dir, "config.json"), config.dump(2));
  std::vector<std::string> texts;
  for (int i = 0; i < 100; ++i) texts.push_back("The quick brown fox " + std::to_string(i) + " jumps over the dog.");
  TokenizerTrainOptions t;
  t.vocab_size = 60;
  t.byte_fallback = false;
  t.character_coverage = 1.0;
  if (no_pad) t.pad_id = -1;
  train_tokenizer(texts, dir, t);
  return dir;
}

TEST(Export, PadTokenIdIsFilledFromTheTokenizer) {
  test::TempDir tmp;
  {
    const std::string in = folder_without_pad(tmp, "with-pad", false);
    const ExportResult r = export_model(export_options(in, tmp.file("out1")));
    EXPECT_EQ(r.pad_token_id, load_tokenizer(in)->special_tokens().pad.id);
    EXPECT_EQ(read_json_file(tmp.file("out1/config.json")).at("pad_token_id"), r.pad_token_id);
    EXPECT_EQ(r.chat_format, "plain");
    EXPECT_FALSE(r.chat_template);
    EXPECT_FALSE(read_json_file(tmp.file("out1/tokenizer_config.json")).contains("chat_template"));
  }
  {
    const std::string in = folder_without_pad(tmp, "eos-only", true);
    auto tok = load_tokenizer(in);
    ASSERT_FALSE(tok->special_tokens().pad.present());
    const ExportResult r = export_model(export_options(in, tmp.file("out2")));
    EXPECT_EQ(r.pad_token_id, tok->special_tokens().eos.id);
    EXPECT_EQ(read_json_file(tmp.file("out2/config.json")).at("pad_token_id"), r.pad_token_id);
    // The tokenizer pads with the id the model skips.
    EXPECT_EQ(read_json_file(tmp.file("out2/tokenizer_config.json")).at("pad_token"), "</s>");
    EXPECT_EQ(read_json_file(tmp.file("out2/special_tokens_map.json")).at("pad_token"), "</s>");
    EXPECT_EQ(load_tokenizer(tmp.file("out2"))->special_tokens().pad.id, r.pad_token_id);
  }
  {
    const std::string in = folder_without_pad(tmp, "given", false);
    ExportOptions o = export_options(in, tmp.file("out3"));
    o.pad_token_id = 5;
    EXPECT_EQ(export_model(o).pad_token_id, 5);
    // A given id that contradicts config.json's is refused.
    ExportOptions again = export_options(tmp.file("out3"), tmp.file("out4"));
    again.pad_token_id = 6;
    try {
      export_model(again);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("pad_token_id"), std::string::npos) << e.what();
    }
  }
}

TEST(Export, ParsesSizesAndDtypes) {
  EXPECT_EQ(parse_byte_size("2GB"), 2000000000u);
  EXPECT_EQ(parse_byte_size("5GiB"), 5368709120u);
  EXPECT_EQ(parse_byte_size("500mb"), 500000000u);
  EXPECT_EQ(parse_byte_size("123"), 123u);
  EXPECT_EQ(parse_byte_size("0"), 0u);
  EXPECT_EQ(parse_byte_size("1.5KB"), 1500u);
  for (const char* bad : {"", "GB", "2XB", "-1", "1e99GB", "2 G B"}) {
    EXPECT_THROW(parse_byte_size(bad), Error) << bad;
  }
  EXPECT_EQ(parse_export_dtype("bf16"), ExportDType::kBFloat16);
  EXPECT_EQ(parse_export_dtype("float16"), ExportDType::kFloat16);
  EXPECT_THROW(parse_export_dtype("int8"), Error);
}

// ---- the tool and its errors ----------------------------------------------------

class ExportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::tool_built("openrm-export")) GTEST_SKIP() << "openrm-export was not built";
  }
  std::string fail(const std::string& args) { return test::error_line(test::run_tool("openrm-export", args, tmp_), "openrm-export"); }
  test::TempDir tmp_;
};

TEST_F(ExportCli, WritesTheFolderAndRefusesToOverwriteIt) {
  const std::string out = tmp_.file("hf");
  auto ok = test::run_tool("openrm-export", "--model '" + run().output + "' --output '" + out + "' --dtype bf16", tmp_);
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("openrm-export: wrote " + out), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("  model.safetensors\n"), std::string::npos) << ok.output;
  EXPECT_EQ(read_json_file(out + "/config.json").at("dtype"), "bfloat16");

  // Exists and not empty: refused, and left as it was.
  const std::string before = sha256_file(out + "/model.safetensors");
  EXPECT_NE(fail("--model '" + run().output + "' --output '" + out + "'").find(out + ": exists and is not empty"),
            std::string::npos);
  EXPECT_EQ(sha256_file(out + "/model.safetensors"), before);
  // --force replaces it whole; no temporary folder is left beside it.
  ok = test::run_tool("openrm-export", "--model '" + run().output + "' --output '" + out + "' --force", tmp_);
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(read_json_file(out + "/config.json").at("dtype"), "float32");
  for (const auto& e : fs::directory_iterator(tmp_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-export"), std::string::npos) << e.path();
  }
  // An empty folder is fine.
  fs::create_directories(tmp_.file("empty"));
  ok = test::run_tool("openrm-export", "--model '" + run().output + "' --output '" + tmp_.file("empty") + "'", tmp_);
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_TRUE(path_exists(tmp_.file("empty/model.safetensors")));
}

TEST_F(ExportCli, RefusesAFolderThatIsNotOpenrmsOrHoldsAnInputBeforeAnyWork) {
  const std::string model = run().output;
  // Someone else's folder: refused even with --force, and left as it was.
  const std::string theirs = tmp_.file("theirs");
  fs::create_directories(theirs);
  test::write_bytes(theirs + "/config.json", "their config\n");
  std::string line = fail("--model '" + model + "' --output '" + theirs + "' --force");
  EXPECT_NE(line.find(theirs + ": exists, is not empty and is not an openrm model folder (it holds none of "
                               "openrm.json)"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("--overwrite-output-dir"), std::string::npos) << line;
  EXPECT_EQ(test::read_bytes(theirs + "/config.json"), "their config\n");
  // --overwrite-output-dir replaces it whole.
  auto ok = test::run_tool("openrm-export", "--model '" + model + "' --output '" + theirs + "' --overwrite-output-dir",
                           tmp_);
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_TRUE(read_json_file(theirs + "/config.json").contains("architectures"));

  // An openrm folder that holds (a link to) a file of the input: refused
  // even with --force, the input untouched.
  const std::string linked = tmp_.file("linked");
  fs::create_directories(linked);
  test::write_bytes(linked + "/openrm.json", "{}");
  fs::create_symlink(model + "/model.safetensors", linked + "/model.safetensors");
  const std::string weights = sha256_file(model + "/model.safetensors");
  line = fail("--model '" + model + "' --output '" + linked + "' --force");
  EXPECT_NE(line.find(linked + ": the output folder holds " + model + "/model.safetensors (in the input folder " +
                      model + ")"),
            std::string::npos)
      << line;
  EXPECT_EQ(sha256_file(model + "/model.safetensors"), weights);
  EXPECT_TRUE(fs::is_symlink(linked + "/model.safetensors"));
  for (const auto& e : fs::directory_iterator(tmp_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-export"), std::string::npos) << e.path();
  }
}

TEST_F(ExportCli, BadInputsGiveOneLineErrors) {
  const std::string model = run().output;
  const std::string missing = tmp_.file("missing");
  EXPECT_NE(fail("--model '" + missing + "' --output '" + tmp_.file("o") + "'").find(missing + ": no such folder"),
            std::string::npos);
  fs::create_directories(tmp_.file("not-a-model"));
  test::write_bytes(tmp_.file("not-a-model/notes.txt"), "hello");
  EXPECT_NE(fail("--model '" + tmp_.file("not-a-model") + "' --output '" + tmp_.file("o") + "'")
                .find("not a model folder (no config.json)"),
            std::string::npos);
  EXPECT_NE(fail("--model '" + model + "' --output '" + model + "' --force").find("is the input folder"),
            std::string::npos);
  EXPECT_NE(fail("--model '" + newest_checkpoint(model) + "' --output '" + model + "' --force").find("holds the input"),
            std::string::npos);
  test::write_bytes(tmp_.file("a-file"), "x");
  EXPECT_NE(fail("--model '" + model + "' --output '" + tmp_.file("a-file") + "' --force").find("not a folder"),
            std::string::npos);
  EXPECT_NE(fail("--model '" + model + "' --output '" + tmp_.file("o") + "' --max-shard-size 2XB").find("'2XB'"),
            std::string::npos);
  EXPECT_NE(fail("--model '" + model + "' --output '" + tmp_.file("o") + "' --dtype int8").find("--dtype"),
            std::string::npos);
  // A model folder without a tokenizer names the way out.
  test::make_tiny_model_folder(tmp_.file("no-tok"), /*with_tokenizer=*/false);
  EXPECT_NE(fail("--model '" + tmp_.file("no-tok") + "' --output '" + tmp_.file("o") + "'").find("--tokenizer"),
            std::string::npos);
  // A corrupt config.json is named with its field.
  fs::copy(model, tmp_.file("bad-config"), fs::copy_options::recursive);
  Json config = read_json_file(tmp_.file("bad-config/config.json"));
  config["num_attention_heads"] = -4;
  write_file_atomic(tmp_.file("bad-config/config.json"), config.dump());
  const std::string line = fail("--model '" + tmp_.file("bad-config") + "' --output '" + tmp_.file("o") + "'");
  EXPECT_NE(line.find("config.json"), std::string::npos) << line;
  EXPECT_NE(line.find("num_attention_heads"), std::string::npos) << line;
  EXPECT_FALSE(path_exists(tmp_.file("o")));
}

// ---- transformers loads the export ----------------------------------------------

TEST(ExportReference, TransformersGivesOpenrmsIdsAndRewards) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  test::TempDir tmp;
  const std::string out = tmp.file("hf");
  export_model(export_options(run().output, out));

  const auto texts = held_out_texts();
  const auto conversations = held_out_conversations();
  Json request = {{"texts", texts}, {"conversations", Json::array()}};
  for (const auto& c : conversations) {
    Json conv = Json::array();
    for (const auto& m : c) conv.push_back({{"role", m.role}, {"content", m.content}});
    request["conversations"].push_back(conv);
  }
  write_file_atomic(tmp.file("request.json"), request.dump());
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/export_reference.py";
  const std::string cmd = "'" + python + "' '" + script + "' '" + out + "' '" + tmp.file("request.json") + "' '" +
                          tmp.file("reference.json") + "' > '" + tmp.file("python.log") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << test::kNoReferenceMessage;
  ASSERT_EQ(code, 0) << read_text_file(tmp.file("python.log"));
  const Json ref = read_json_file(tmp.file("reference.json"));
  std::cout << "transformers " << ref["versions"]["transformers"] << ", torch " << ref["versions"]["torch"]
            << ", tokenizer " << ref["tokenizer_class"] << ", padding side " << ref["padding_side"] << "\n";

  auto folder = load_reward_model_folder(out);
  ASSERT_EQ(folder.chat_format, ChatFormat::kLlama2);
  double max_diff = 0;
  const auto compare = [&](const Json& rows, const std::vector<std::vector<std::int64_t>>& ids, const char* what) {
    ASSERT_EQ(rows.size(), ids.size()) << what;
    const std::vector<float> rewards = folder.model->score(ids);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      SCOPED_TRACE(std::string(what) + " " + std::to_string(i));
      EXPECT_EQ(rows[i].at("ids").get<std::vector<std::int64_t>>(), ids[i]);
      const double diff = std::abs(rows[i].at("reward").get<double>() - rewards[i]);
      EXPECT_LE(diff, 1e-4) << "transformers " << rows[i].at("reward") << ", openrm " << rewards[i];
      max_diff = std::max(max_diff, diff);
    }
    std::cout << what << "s: max |transformers - openrm| so far " << max_diff << "\n";
  };
  compare(ref.at("texts"), encoded(*folder.tokenizer), "text");
  std::vector<std::vector<std::int64_t>> chat_ids;
  for (std::size_t i = 0; i < conversations.size(); ++i) {
    chat_ids.push_back(ids64(encode_chat(*folder.tokenizer, folder.chat_format, conversations[i])));
    EXPECT_EQ(ref["conversations"][i].at("text").get<std::string>(),
              render_chat(folder.chat_format, conversations[i], folder.tokenizer->special_tokens()))
        << "conversation " << i;
  }
  compare(ref.at("conversations"), chat_ids, "conversation");
  std::cout << "max |transformers - openrm| = " << max_diff << " over " << texts.size() + conversations.size()
            << " sequences\n";
}

// ---- a LoRA adapter folder exports merged ---------------------------------------

std::vector<double> model_scores(RewardModel& model, const std::vector<std::vector<std::int64_t>>& sequences) {
  torch::NoGradGuard no_grad;
  std::vector<double> out;
  for (const auto& s : sequences) out.push_back(model.forward(PackedBatch::from_sequences({s}))[0][0].item<double>());
  return out;
}

double largest_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

TEST(ExportLora, AnAdapterFolderExportsMergedAsPeftMergesIt) {
  if (!test::tool_built("openrm-export")) GTEST_SKIP() << "openrm-export was not built";
  test::TempDir tmp;
  const std::string base = tmp.file("base"), adapter = tmp.file("adapter"), out = tmp.file("hf");
  auto adapted = test::make_tiny_lora_adapter(base, adapter, /*with_tokenizer=*/true);
  const auto sequences = test::tiny_sequences();
  const auto ours = model_scores(*adapted, sequences);

  auto run = test::run_tool("openrm-export", "--model '" + adapter + "' --output '" + out + "'", tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("openrm-export: wrote " + out + " from " + adapter), std::string::npos) << run.output;
  const WeightStore store = WeightStore::open_folder(out);
  for (const auto& name : store.names()) EXPECT_EQ(name.find("lora_"), std::string::npos) << name;
  EXPECT_FALSE(path_exists(out + "/adapter_config.json"));
  EXPECT_TRUE(path_exists(out + "/tokenizer.model")) << "the base's tokenizer";
  EXPECT_NE(read_text_file(out + "/README.md").find("merged onto its base model `" + base + "`"), std::string::npos);
  auto exported = load_reward_model_folder(out);
  ASSERT_TRUE(exported.tokenizer);
  const auto openrm_scores = model_scores(*exported.model, sequences);
  const double openrm_diff = largest_diff(openrm_scores, ours);
  EXPECT_LE(openrm_diff, 1e-5);

  // A base that is not where adapter_config.json says: --base-model-dir.
  fs::copy(adapter, tmp.file("moved"), fs::copy_options::recursive);
  Json config = read_json_file(tmp.file("moved/adapter_config.json"));
  config["base_model_name_or_path"] = "some-org/some-base";
  write_file_atomic(tmp.file("moved/adapter_config.json"), config.dump());
  const std::string line = test::error_line(
      test::run_tool("openrm-export", "--model '" + tmp.file("moved") + "' --output '" + tmp.file("o") + "'", tmp),
      "openrm-export");
  EXPECT_NE(line.find("field 'base_model_name_or_path': 'some-org/some-base' is not a folder here"), std::string::npos)
      << line;
  EXPECT_NE(line.find("--base-model-dir"), std::string::npos) << line;
  EXPECT_FALSE(path_exists(tmp.file("o")));
  run = test::run_tool("openrm-export",
                       "--model '" + tmp.file("moved") + "' --base-model-dir '" + base + "' --output '" +
                           tmp.file("o") + "'",
                       tmp);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(sha256_file(tmp.file("o/model.safetensors")), sha256_file(out + "/model.safetensors"));
  // The card's base_model is a Hub id, never a local path.
  EXPECT_EQ(read_text_file(out + "/README.md").find("base_model:"), std::string::npos);
  EXPECT_NE(read_text_file(tmp.file("o/README.md")).find("\nbase_model: some-org/some-base\n"), std::string::npos);
  // --base-model-dir is for adapter folders only; the output may not be the base.
  EXPECT_NE(test::error_line(test::run_tool("openrm-export",
                                            "--model '" + base + "' --base-model-dir '" + base + "' --output '" +
                                                tmp.file("o2") + "'",
                                            tmp),
                             "openrm-export")
                .find("is for a LoRA adapter folder"),
            std::string::npos);
  EXPECT_NE(test::error_line(test::run_tool("openrm-export", "--model '" + adapter + "' --output '" + base + "' --force",
                                            tmp),
                             "openrm-export")
                .find("the output folder is the input folder " + base),
            std::string::npos);

  // transformers loads the export alone; PEFT merges the adapter into the
  // same weights.
  const std::string python = test::reference_python();
  if (python.empty()) {
    std::printf("[ export   ] openrm on the export: max |diff| %.3g; transformers and PEFT skipped: %s\n", openrm_diff,
                test::kNoReferenceMessage);
    GTEST_SKIP() << test::kNoReferenceMessage;
  }
  const std::string script = tmp.file("peft_merge.py");
  test::write_bytes(script,
                    "import json, sys\n"
                    "try:\n"
                    "    import torch\n"
                    "    from peft import PeftModel\n"
                    "    from safetensors.torch import load_file\n"
                    "    from transformers import AutoModelForSequenceClassification\n"
                    "except ImportError:\n"
                    "    sys.exit(77)\n"
                    "export_dir, base_dir, adapter_dir = sys.argv[1:4]\n"
                    "sequences = json.loads(open(sys.argv[4]).read())\n"
                    "def scores(model):\n"
                    "    with torch.no_grad():\n"
                    "        return [model(input_ids=torch.tensor([s])).logits[0, 0].item() for s in sequences]\n"
                    "exported = AutoModelForSequenceClassification.from_pretrained(export_dir, dtype=torch.float32).eval()\n"
                    "base = AutoModelForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32)\n"
                    "merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().eval()\n"
                    "theirs = merged.state_dict()\n"
                    "written = load_file(export_dir + '/model.safetensors')\n"
                    "diff = max(float((theirs[k].float() - written[k].float()).abs().max()) for k in written if k in theirs)\n"
                    "print(json.dumps({'scores': scores(exported), 'peft_scores': scores(merged), 'weight_diff': diff,\n"
                    "                  'only_peft': sorted(set(theirs) - set(written)),\n"
                    "                  'only_export': sorted(set(written) - set(theirs))}))\n");
  test::write_bytes(tmp.file("sequences.json"), Json(sequences).dump());
  const std::string cmd = "'" + python + "' '" + script + "' '" + out + "' '" + base + "' '" + adapter + "' '" +
                          tmp.file("sequences.json") + "' > '" + tmp.file("peft.json") + "' 2> '" +
                          tmp.file("peft.log") + "'";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) GTEST_SKIP() << test::kNoReferenceMessage;
  ASSERT_EQ(code, 0) << read_text_file(tmp.file("peft.log"));
  const Json ref = read_json_file(tmp.file("peft.json"));
  EXPECT_EQ(ref.at("only_peft"), Json::array()) << "tensors of PEFT's merged model the export lacks";
  EXPECT_EQ(ref.at("only_export"), Json::array()) << "tensors of the export PEFT's merged model lacks";
  const double transformers_diff = largest_diff(ref.at("scores").get<std::vector<double>>(), ours);
  const double peft_diff = largest_diff(ref.at("peft_scores").get<std::vector<double>>(), ours);
  const double weight_diff = ref.at("weight_diff").get<double>();
  std::printf("[ export   ] LoRA adapter exported merged, against the adapted model's %zu scores: openrm max |diff| "
              "%.3g, transformers %.3g, PEFT merge_and_unload %.3g; weights against PEFT's merged state dict: max "
              "|diff| %.3g\n",
              ours.size(), openrm_diff, transformers_diff, peft_diff, weight_diff);
  EXPECT_LE(transformers_diff, 1e-5);
  EXPECT_LE(peft_diff, 1e-5);
  EXPECT_LE(weight_diff, 1e-6);
}

}  // namespace
}  // namespace openrm
