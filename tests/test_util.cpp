#include "test_util.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "openrm/models/lora.h"
#include "openrm/models/reward_model.h"
#include "openrm/tokenizer/train_tokenizer.h"
#include "test_paths.h"

namespace openrm::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/openrm-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ModelConfig tiny_config(const std::string& architecture) {
  nlohmann::json j = {
      {"architectures", {architecture}},
      {"vocab_size", 64},
      {"hidden_size", 32},
      {"intermediate_size", 48},
      {"num_hidden_layers", 2},
      {"num_attention_heads", 4},
      {"num_key_value_heads", 2},
      {"max_position_embeddings", 128},
      {"rms_norm_eps", 1e-6},
      {"rope_theta", 10000.0},
      {"pad_token_id", 0},
      {"num_labels", 1},
  };
  if (architecture.rfind("Llama", 0) == 0) j["model_type"] = "llama";
  if (architecture.rfind("Mistral", 0) == 0) j["model_type"] = "mistral";
  if (architecture.rfind("Qwen2", 0) == 0) j["model_type"] = "qwen2";
  if (architecture.rfind("Qwen3", 0) == 0) j["model_type"] = "qwen3";
  return parse_model_config(j.dump(), "tiny_config(" + architecture + ")");
}

void train_tiny_tokenizer(const std::string& dir) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("The quick brown fox " + std::to_string(i) + " jumps over the lazy dog.");
    texts.push_back("A reward model scores answer number " + std::to_string(i * 7) + " for you.");
  }
  TokenizerTrainOptions o;
  o.vocab_size = 64;
  o.byte_fallback = false;
  o.character_coverage = 1.0;
  train_tokenizer(texts, dir, o);
}

void make_tiny_model_folder(const std::string& dir, bool with_tokenizer) {
  auto model = create_reward_model(tiny_config("LlamaForSequenceClassification"));
  model->init_weights(/*seed=*/5, /*std=*/0.2);
  save_reward_model(*model, dir);
  if (with_tokenizer) train_tiny_tokenizer(dir);
}

void perturb_adapters_and_head(RewardModel& model) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  for (auto& item : model.named_parameters()) {
    if (item.key().find(".lora_B.") != std::string::npos || item.key() == "score.weight") {
      item.value().add_(at::empty(item.value().sizes(), at::kFloat).normal_(0.0, 0.3, gen));
    }
  }
}

std::shared_ptr<RewardModel> make_tiny_lora_adapter(const std::string& base_dir, const std::string& adapter_dir,
                                                    bool with_tokenizer) {
  make_tiny_model_folder(base_dir, with_tokenizer);
  auto model = load_reward_model(base_dir);
  LoraOptions options;
  options.rank = 4;
  options.alpha = 8;
  options.targets = {"q_proj", "v_proj", "down_proj"};
  apply_lora(*model, options, /*seed=*/5);
  perturb_adapters_and_head(*model);
  model->eval();
  save_lora_adapter(*model, options, adapter_dir, base_dir);
  return model;
}

std::vector<std::vector<std::int64_t>> tiny_sequences() {
  std::vector<std::vector<std::int64_t>> out;
  for (int n = 1; n <= 23; n += 2) {
    std::vector<std::int64_t> s;
    for (int i = 0; i < n; ++i) s.push_back(1 + (n * 7 + i * 13) % 63);
    out.push_back(s);
  }
  return out;
}

ToolRun run_tool(const std::string& tool, const std::string& args, const TempDir& tmp) {
  const std::string path = std::string(OPENRM_BINARY_DIR) + "/tools/" + tool;
  const std::string out = tmp.file("tool-output.txt");
  const int status = std::system((path + " " + args + " > '" + out + "' 2>&1").c_str());
  ToolRun run;
  run.status = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.output = read_bytes(out);
  return run;
}

int spawn_tool(const std::string& tool, const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const std::string path = std::string(OPENRM_BINARY_DIR) + "/tools/" + tool;
  std::vector<std::string> all = {path};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The tool starts with the default action for the signals tests send it,
  // even where this process inherited them ignored (a background job).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::runtime_error("posix_spawn " + path + " failed");
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

int kill_when(int pid, const std::function<bool()>& now, double timeout_s, int poll_us) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!now() && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return decode_status(status);
    std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return decode_status(status);
}

bool tool_built(const std::string& tool) {
  std::error_code ec;
  return fs::exists(std::string(OPENRM_BINARY_DIR) + "/tools/" + tool, ec);
}

std::string error_line(const ToolRun& run, const std::string& tool) {
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_EQ(run.output.find("terminate"), std::string::npos) << run.output;
  std::istringstream lines(run.output);
  std::string line, found;
  int count = 0;
  while (std::getline(lines, line)) {
    if (line.rfind(tool + ": error: ", 0) == 0) {
      found = line;
      ++count;
    }
  }
  EXPECT_EQ(count, 1) << run.output;
  return found;
}

std::string shared_dir() {
  fs::path p = fs::path(OPENRM_SOURCE_DIR).parent_path() / "shared";
  std::error_code ec;
  return fs::is_directory(p, ec) ? p.string() : std::string();
}

std::string reference_python() {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  std::string path = env("OPENRM_REFERENCE_PYTHON");
  if (path.empty() && !env("OPENRM_REFERENCE_VENV").empty()) {
    path = env("OPENRM_REFERENCE_VENV") + "/bin/python";
  }
  if (path.empty() && !env("HOME").empty()) {
    path = env("HOME") + "/.cache/openrm/reference-venv/bin/python";
  }
  return !path.empty() && ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

}  // namespace openrm::test
