// Helpers shared by the tests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "openrm/io/config.h"

namespace openrm {
class RewardModel;
}

namespace openrm::test {

// A fresh empty directory under $TMPDIR (or /tmp), removed with its contents
// when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_bytes(const std::string& path, const std::string& bytes);
std::string read_bytes(const std::string& path);

// A tiny decoder config of the given architecture
// ("LlamaForSequenceClassification", ...): hidden 32, 2 layers, 4 heads,
// 2 kv heads, vocab 64, pad token 0.
ModelConfig tiny_config(const std::string& architecture);

// Trains a 64-piece sentencepiece tokenizer (no byte fallback) on short
// English sentences into dir (tokenizer.model + its json files).
void train_tiny_tokenizer(const std::string& dir);

// A random tiny_config Llama reward model (weights N(0, 0.2), seed 5) saved
// in dir, with train_tiny_tokenizer's tokenizer unless with_tokenizer is false.
void make_tiny_model_folder(const std::string& dir, bool with_tokenizer);

// As if trained: every LoRA B and the head "score.weight" moved by N(0, 0.3)
// draws from a fixed seed.
void perturb_adapters_and_head(RewardModel& model);

// make_tiny_model_folder(base_dir, with_tokenizer), then rank-4 alpha-8 LoRA
// adapters on its q_proj, v_proj and down_proj layers with B and the head
// moved from their start as if trained (N(0, 0.3) added, seed 11), saved by
// save_lora_adapter in adapter_dir (base_model_name_or_path = base_dir, no
// tokenizer files). Returns the adapted model, in eval mode.
std::shared_ptr<RewardModel> make_tiny_lora_adapter(const std::string& base_dir, const std::string& adapter_dir,
                                                    bool with_tokenizer);

// Sequences of token ids below 64 (tiny_config's vocabulary) of lengths 1
// to 23, for scoring tiny models.
std::vector<std::vector<std::int64_t>> tiny_sequences();

// A command-line tool's run: exit status (-1 when it did not exit normally,
// e.g. killed by a signal) and its stdout and stderr together.
struct ToolRun {
  int status = -1;
  std::string output;
};

// Runs OPENRM_BINARY_DIR/tools/<tool> with `args` (a shell fragment: quote
// paths), capturing its output in a file under tmp.
ToolRun run_tool(const std::string& tool, const std::string& args, const TempDir& tmp);

// Starts OPENRM_BINARY_DIR/tools/<tool> with `args` (no shell), its stdout
// and stderr going to the file `log`; returns its pid (wait for it with
// waitpid). Throws std::runtime_error when it cannot be started.
int spawn_tool(const std::string& tool, const std::vector<std::string>& args, const std::string& log);

// A waitpid status as the exit code, or -signal for a process killed by a
// signal.
int decode_status(int status);

// Waits for process `pid` until `now()` is true (polled every `poll`
// microseconds) or `timeout_s` seconds pass, then kills it with SIGKILL; a
// process that exits first is not killed. Returns decode_status of its end.
int kill_when(int pid, const std::function<bool()>& now, double timeout_s, int poll_us = 500);

// Whether the tool was built (it is not with OPENRM_BUILD_TOOLS=OFF).
bool tool_built(const std::string& tool);

// The one "<tool>: error: " line of a failed run; records a test failure
// unless the run exited with status 1, printed exactly one such line and
// nothing that looks like a crash.
std::string error_line(const ToolRun& run, const std::string& tool);

// Root of the shared read-only data (../shared next to the checkout), or ""
// when it is absent.
std::string shared_dir();

// The reference environment's python (scripts/install-reference.sh):
// $OPENRM_REFERENCE_PYTHON if set, else $OPENRM_REFERENCE_VENV/bin/python,
// else $HOME/.cache/openrm/reference-venv/bin/python; "" when that file is
// not an executable. Tests that need it skip with kNoReferenceMessage.
std::string reference_python();
inline constexpr const char* kNoReferenceMessage =
    "the reference environment (transformers, tokenizers, ...) is not installed; "
    "run scripts/install-reference.sh (or set OPENRM_REFERENCE_PYTHON)";

}  // namespace openrm::test
