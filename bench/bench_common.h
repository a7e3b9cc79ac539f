// Shared pieces of the benchmark programs: the preference pairs whose lengths
// they use (hh-rlhf from ../shared/data when present, else synthetic), the
// reference GEMMs measured in the same run, and facts about the machine.
#pragma once

#include <CLI/CLI.hpp>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "openrm/data/preference.h"
#include "openrm/data/tokenize.h"
#include "openrm/error.h"
#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "openrm/models/reward_model.h"
#include "openrm/logging.h"
#include "openrm/runtime.h"
#include "openrm/tokenizer/tokenizer.h"

namespace openrm::bench {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Where the pairs come from.
struct PairSourceOptions {
  std::string data = "../shared/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
  std::string tokenizer = "../shared/data/llama2-tokenizer.model";
  std::string format = "hh";
  std::int64_t max_length = 1024;  // TRL RewardConfig's default
  std::int64_t vocab = 32000;      // the model's vocabulary (ids are taken modulo it)
  std::int64_t synthetic_pairs = 1800;
  std::uint64_t seed = 0;
};

// What both benchmarks take besides their own settings: the pairs, the
// model's shape, the reference GEMM, threads, seed and the JSON output.
struct CommonOptions : PairSourceOptions {
  std::string arch = "llama";     // llama or qwen3
  std::int64_t head_dim = 0;      // 0: hidden / heads
  std::int64_t hidden = 512;
  std::int64_t layers = 4;
  std::int64_t heads = 0;         // 0: hidden / 64
  std::int64_t kv_heads = 0;      // 0: heads
  std::int64_t intermediate = 0;  // 0: hidden * 11 / 4
  std::int64_t gemm = 2048;
  int gemm_repeat = 5;
  int threads = 0;
  std::string json_out;
};

inline void add_common_options(CLI::App& app, CommonOptions& o) {
  app.add_option("--arch", o.arch, "llama, or qwen3 (q/k RMSNorm)")->capture_default_str();
  app.add_option("--hidden", o.hidden, "hidden size")->capture_default_str();
  app.add_option("--head-dim", o.head_dim, "head size (0: hidden / heads)")->capture_default_str();
  app.add_option("--layers", o.layers, "decoder layers")->capture_default_str();
  app.add_option("--heads", o.heads, "attention heads (0: hidden / 64)")->capture_default_str();
  app.add_option("--kv-heads", o.kv_heads, "key/value heads (0: as many as heads)")->capture_default_str();
  app.add_option("--intermediate", o.intermediate, "MLP size (0: hidden * 11 / 4)")->capture_default_str();
  app.add_option("--vocab", o.vocab, "vocabulary size")->capture_default_str();
  app.add_option("--max-length", o.max_length, "truncation length in tokens")->capture_default_str();
  app.add_option("--data", o.data, "preference file whose lengths are used")->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "tokenizer .model file or folder")->capture_default_str();
  app.add_option("--format", o.format, "chat format")->capture_default_str();
  app.add_option("--gemm", o.gemm, "size n of the n x n x n reference GEMM")->capture_default_str();
  app.add_option("--gemm-repeat", o.gemm_repeat, "GEMM runs; the best is reported")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: all)")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the weights, batch order and synthetic lengths")->capture_default_str();
  app.add_option("--json", o.json_out, "also write the results as JSON here");
}

// ---- the pairs -------------------------------------------------------------


struct Pairs {
  std::vector<openrm::TokenizedPair> pairs;
  std::string source;  // one line saying where the lengths come from
  Json describe;
};

inline Pairs hh_pairs(const PairSourceOptions& o) {
  openrm::ReadOptions read;
  read.skip_invalid = true;  // a malformed record is skipped and counted (the shared file has none)
  auto data = openrm::read_preferences(o.data, read);
  auto tok = openrm::load_tokenizer(o.tokenizer);
  openrm::TokenizeOptions t;
  t.format = openrm::chat_format_from_name(o.format);
  t.max_length = o.max_length;
  auto tokenized = openrm::tokenize_pairs(data.pairs, *tok, t);
  Pairs out;
  out.pairs = std::move(tokenized.pairs);
  // The model's vocabulary may be smaller than the tokenizer's: the ids only
  // select embedding rows, so taking them modulo the vocabulary keeps the work.
  if (tok->vocab_size() > o.vocab) {
    for (auto& p : out.pairs) {
      for (auto* side : {&p.chosen, &p.rejected}) {
        for (auto& id : *side) id %= o.vocab;
      }
    }
  }
  out.source = "hh-rlhf lengths: " + o.data + " (" + std::to_string(data.stats.skipped_invalid) +
               " invalid records skipped), format " + o.format + ", tokenized with " + o.tokenizer +
               "; truncation: " + tokenized.stats.summary();
  out.describe = {{"kind", "hh-rlhf"}, {"data", o.data}, {"tokenizer", o.tokenizer},
                  {"format", o.format}, {"truncation", tokenized.stats.summary()}};
  return out;
}

// Prompt and response lengths drawn from log-normals roughly matching the
// hh-rlhf test pairs under the Llama-2 tokenizer (median prompt ~100 tokens,
// median response ~50); chosen and rejected share the prompt.
inline Pairs synthetic_pairs(const PairSourceOptions& o, const std::string& why) {
  std::mt19937_64 rng(o.seed);
  std::lognormal_distribution<double> prompt_len(std::log(100.0), 0.9), response_len(std::log(50.0), 0.8);
  std::uniform_int_distribution<std::int64_t> token(1, o.vocab - 1);
  auto clamp_len = [&](double x, std::int64_t lo, std::int64_t hi) {
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(std::llround(x)), lo, hi);
  };
  Pairs out;
  for (std::int64_t i = 0; i < o.synthetic_pairs; ++i) {
    const auto limit = o.max_length > 0 ? o.max_length : 1 << 20;
    const auto prompt = clamp_len(prompt_len(rng), 1, limit - 1);
    openrm::TokenizedPair p;
    for (auto* side : {&p.chosen, &p.rejected}) {
      const auto n = std::min(limit, prompt + clamp_len(response_len(rng), 1, limit));
      for (std::int64_t k = 0; k < n; ++k) side->push_back(token(rng));
    }
    p.source_index = i;
    out.pairs.push_back(std::move(p));
  }
  out.source = "SYNTHETIC lengths (" + why + "): " + std::to_string(o.synthetic_pairs) +
               " pairs, prompt ~ lognormal(ln 100, 0.9), responses ~ lognormal(ln 50, 0.8), capped at " +
               std::to_string(o.max_length);
  out.describe = {{"kind", "synthetic"}, {"reason", why}};
  return out;
}

inline Json length_stats(const std::vector<openrm::TokenizedPair>& pairs) {
  std::vector<std::int64_t> lengths;
  for (const auto& p : pairs) {
    lengths.push_back(static_cast<std::int64_t>(p.chosen.size()));
    lengths.push_back(static_cast<std::int64_t>(p.rejected.size()));
  }
  std::sort(lengths.begin(), lengths.end());
  double sum = 0;
  for (auto l : lengths) sum += static_cast<double>(l);
  auto q = [&](double f) { return lengths[static_cast<std::size_t>(f * static_cast<double>(lengths.size() - 1))]; };
  return {{"sequences", lengths.size()}, {"mean", sum / static_cast<double>(lengths.size())},
          {"median", q(0.5)}, {"p90", q(0.9)}, {"max", lengths.back()}};
}

// hh-rlhf's pairs when the data and tokenizer exist, synthetic ones otherwise
// (the description says which).
inline Pairs load_pairs(const PairSourceOptions& o) {
  if (openrm::path_exists(o.data) && openrm::path_exists(o.tokenizer)) return hh_pairs(o);
  return synthetic_pairs(o, (openrm::path_exists(o.data) ? o.tokenizer : o.data) + " not found");
}

// ---- GEMM reference -------------------------------------------------------------

// Best FLOP/s over `repeat` runs (after one warm-up) of `batch` products
// (m x k) @ (k x n): one mm when batch is 1, else one bmm; fp32 on the CPU
// unless told otherwise (a CUDA device is synchronised around each run).
inline double matmul_flops(std::int64_t batch, std::int64_t m, std::int64_t k, std::int64_t n, int repeat,
                           const at::TensorOptions& options = at::TensorOptions()) {
  torch::NoGradGuard no_grad;
  auto a = batch == 1 ? torch::randn({m, k}, options) : torch::randn({batch, m, k}, options);
  auto b = batch == 1 ? torch::randn({k, n}, options) : torch::randn({batch, k, n}, options);
  auto c = at::matmul(a, b);
  const bool cuda = a.is_cuda();
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    if (cuda) torch::cuda::synchronize();
    auto t0 = Clock::now();
    if (batch == 1) {
      at::mm_out(c, a, b);
    } else {
      at::bmm_out(c, a, b);
    }
    if (cuda) torch::cuda::synchronize();
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * static_cast<double>(batch) * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n) /
         best;
}

// The reference: an (n x n) @ (n x n) GEMM.
inline double gemm_flops(std::int64_t m, std::int64_t k, std::int64_t n, int repeat) {
  return matmul_flops(1, m, k, n, repeat);
}

// OpenBLAS's kernel set ("SkylakeX", "Haswell", "Prescott", ...), or "" when
// the BLAS in use is not OpenBLAS. OpenBLAS picks it from the CPU model at
// load time and falls back to Prescott (SSE3) for a model it does not know;
// OPENBLAS_CORETYPE overrides it.
inline std::string openblas_core() {
  using Fn = char* (*)();
  auto fn = reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* name = fn ? fn() : nullptr;
  return name ? name : "";
}

// A hint when OpenBLAS runs kernels older than the CPU supports.
inline std::string openblas_hint(const std::string& core) {
  if (core.empty()) return "";
  auto lower = core;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const bool avx2 = __builtin_cpu_supports("avx2");
  const bool old = lower == "prescott" || lower == "core2" || lower == "penryn" || lower == "dunnington" ||
                   lower == "nehalem" || lower == "atom" || lower == "barcelona" || lower == "katmai" ||
                   lower == "coppermine" || lower == "northwood";
  if (old && avx512) return "the CPU has AVX-512 but OpenBLAS chose " + core + " kernels: try OPENBLAS_CORETYPE=SkylakeX";
  if (old && avx2) return "the CPU has AVX2 but OpenBLAS chose " + core + " kernels: try OPENBLAS_CORETYPE=Haswell";
  return "";
}

// The 1-minute load average from /proc/loadavg (-1 where there is none): the
// cores are often shared, and the figures mean little under load.
inline double load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (!f) return -1;
  double load = -1;
  if (std::fscanf(f, "%lf", &load) != 1) load = -1;
  std::fclose(f);
  return load;
}

// ---- the run's setting ------------------------------------------------------------

// What a benchmark records about the machine before it measures.
struct Setting {
  int threads = 0;
  double load_before = -1;
  std::string openblas_core;  // "" when the BLAS is not OpenBLAS
};

// ---- the model -------------------------------------------------------------------

struct Shape {
  std::string arch = "llama";  // llama or qwen3 (q/k RMSNorm)
  std::int64_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab;
  // Weights of the linear layers of one decoder layer (q, k, v, o, gate, up, down).
  std::int64_t linear_params_per_layer() const {
    return hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden +
           3 * hidden * intermediate;
  }
};

// The shape the options ask for: heads 0 means hidden / 64, kv_heads 0 as
// many as heads, head_dim 0 hidden / heads, intermediate 0 hidden * 11 / 4.
inline Shape make_shape(const CommonOptions& o) {
  if (o.arch != "llama" && o.arch != "qwen3") throw openrm::Error("--arch must be llama or qwen3, got " + o.arch);
  Shape s;
  s.arch = o.arch;
  const std::int64_t hidden = o.hidden, heads = o.heads, kv_heads = o.kv_heads, intermediate = o.intermediate;
  s.hidden = hidden;
  s.layers = o.layers;
  s.heads = heads > 0 ? heads : std::max<std::int64_t>(1, hidden / 64);
  s.kv_heads = kv_heads > 0 ? kv_heads : s.heads;
  s.head_dim = o.head_dim > 0 ? o.head_dim : hidden / s.heads;
  s.intermediate = intermediate > 0 ? intermediate : hidden * 11 / 4;
  s.vocab = o.vocab;
  return s;
}

// A random-init reward model of that shape (pad_token_id < 0: none), fp32 on
// the CPU unless `load` says otherwise.
inline std::shared_ptr<openrm::RewardModel> make_model(const Shape& shape, std::int64_t max_positions,
                                                             std::uint64_t seed, std::int64_t pad_token_id = -1,
                                                             const openrm::LoadOptions& load = {}) {
  const bool qwen3 = shape.arch == "qwen3";
  Json cfg = {{"architectures", {qwen3 ? "Qwen3ForSequenceClassification" : "LlamaForSequenceClassification"}},
              {"model_type", shape.arch},
              {"head_dim", shape.head_dim},
              {"vocab_size", shape.vocab},
              {"hidden_size", shape.hidden},
              {"intermediate_size", shape.intermediate},
              {"num_hidden_layers", shape.layers},
              {"num_attention_heads", shape.heads},
              {"num_key_value_heads", shape.kv_heads},
              {"max_position_embeddings", max_positions},
              {"num_labels", 1}};
  if (pad_token_id >= 0) cfg["pad_token_id"] = pad_token_id;
  auto model = openrm::create_reward_model(openrm::parse_model_config(cfg.dump(), "bench config"), load);
  model->init_weights(seed);
  return model;
}

inline std::int64_t parameter_count(openrm::RewardModel& model) {
  std::int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

// "Llama reward model, hidden 512, 4 layers, ...: 29.23M parameters (12.85M in
// linear layers, 16.38M embedding), fp32"
inline std::string describe_model(const Shape& s, std::int64_t parameters, const std::string& dtype = "fp32") {
  char line[320];
  std::snprintf(line, sizeof line,
                "%s reward model, hidden %lld, %lld layers, %lld heads (%lld kv, head_dim %lld), intermediate %lld, "
                "vocab %lld: %.2fM parameters (%.2fM in linear layers, %.2fM embedding), %s",
                s.arch == "qwen3" ? "Qwen3" : "Llama", static_cast<long long>(s.hidden), static_cast<long long>(s.layers),
                static_cast<long long>(s.heads),
                static_cast<long long>(s.kv_heads), static_cast<long long>(s.head_dim),
                static_cast<long long>(s.intermediate), static_cast<long long>(s.vocab),
                static_cast<double>(parameters) / 1e6,
                static_cast<double>(s.linear_params_per_layer() * s.layers) / 1e6,
                static_cast<double>(s.vocab * s.hidden) / 1e6, dtype.c_str());
  return line;
}

inline Json model_json(const Shape& s, std::int64_t parameters) {
  return {{"arch", s.arch}, {"head_dim", s.head_dim}, {"hidden", s.hidden},       {"layers", s.layers}, {"heads", s.heads},          {"kv_heads", s.kv_heads},
          {"intermediate", s.intermediate}, {"vocab", s.vocab}, {"parameters", parameters}};
}

inline std::string dtype_name(c10::ScalarType t) {
  return t == at::kFloat ? "fp32" : t == at::kBFloat16 ? "bf16" : t == at::kHalf ? "fp16" : "other";
}

// A number with an SI prefix: si(1.5e11, "FLOP/s") is "150.0 GFLOP/s".
inline std::string si(double x, const char* unit) {
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  int i = 0;
  while (std::fabs(x) >= 1000.0 && i < 4) {
    x /= 1000.0;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f %s%s", x, prefixes[i], unit);
  return buf;
}

// Sets the threads and quiet logging, warns about a reference BLAS, and
// prints "<name>: N threads, BLAS ..." (with a hint when OpenBLAS runs old
// kernels).
inline Setting start_bench(const char* name, int threads) {
  Setting s;
  s.load_before = load_average();
  s.threads = openrm::set_num_threads(threads);
  openrm::set_log_level(openrm::LogLevel::kWarn);
  openrm::warn_if_reference_blas();
  s.openblas_core = openblas_core();
  std::printf("%s: %d threads, BLAS %s%s\n", name, s.threads, openrm::blas_library_path().c_str(),
              s.openblas_core.empty() ? "" : (", OpenBLAS core " + s.openblas_core).c_str());
  const std::string hint = openblas_hint(s.openblas_core);
  if (!hint.empty()) std::printf("note: %s\n", hint.c_str());
  return s;
}

}  // namespace openrm::bench
