#include "test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

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

std::string shared_dir() {
  fs::path p = fs::path(OPENRM_SOURCE_DIR).parent_path() / "shared";
  std::error_code ec;
  return fs::is_directory(p, ec) ? p.string() : std::string();
}

}  // namespace openrm::test
