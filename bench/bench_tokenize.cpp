// bench_tokenize: how fast preference data is read and tokenized, and how
// that compares with scoring the same tokens, measured in one run.
//
//   bench_tokenize [--data FILE] [--tokenizer PATH] [--format hh] [--max-length 2048]
//                  [--threads N] [--repeat 3] [--hidden 512] [--layers 4] [--json OUT]
//
// Defaults use ../shared/data (hh-rlhf test pairs, the Llama-2 tokenizer).
// It prints, for 1 thread and for all threads: pairs/s and tokens/s of
// read+tokenize, and the share of tokenizing in a tokenize+score pipeline
// with a random Llama reward model of the given shape on CPU.
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "openrm/data/batching.h"
#include "openrm/error.h"
#include "openrm/data/preference.h"
#include "openrm/data/tokenize.h"
#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "openrm/logging.h"
#include "openrm/models/reward_model.h"
#include "openrm/runtime.h"
#include "openrm/tokenizer/tokenizer.h"
#include "tool_main.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct BenchOptions {
  std::string data;
  std::string tokenizer;
  std::string format = "hh";
  std::int64_t max_length = 2048;
  int threads = 0;
  int repeat = 3;
  std::int64_t hidden = 512;
  std::int64_t layers = 4;
  std::int64_t score_pairs = 64;
  std::string json_out;
};

// hh-rlhf has a few pairs with an empty response; they are skipped and
// counted, as training would.
openrm::ReadOptions read_options() {
  openrm::ReadOptions r;
  r.skip_invalid = true;
  return r;
}

struct TokenizeRun {
  int threads = 1;
  double read_s = 0;      // best of `repeat`
  double tokenize_s = 0;  // best of `repeat`
  std::int64_t pairs = 0;
  std::int64_t tokens = 0;
  std::string truncation;  // TruncationStats::summary()
};

TokenizeRun run_tokenize(const BenchOptions& o, const openrm::Tokenizer& tok, int threads) {
  TokenizeRun run;
  run.threads = threads;
  run.read_s = run.tokenize_s = 1e30;
  for (int r = 0; r < o.repeat; ++r) {
    auto t0 = Clock::now();
    auto data = openrm::read_preferences(o.data, read_options());
    run.read_s = std::min(run.read_s, seconds_since(t0));
    openrm::TokenizeOptions topt;
    topt.format = openrm::chat_format_from_name(o.format);
    topt.max_length = o.max_length;
    topt.threads = threads;
    t0 = Clock::now();
    auto tokenized = openrm::tokenize_pairs(data.pairs, tok, topt);
    run.tokenize_s = std::min(run.tokenize_s, seconds_since(t0));
    run.pairs = static_cast<std::int64_t>(tokenized.pairs.size());
    run.truncation = tokenized.stats.summary();
    run.tokens = 0;
    for (const auto& p : tokenized.pairs) {
      run.tokens += static_cast<std::int64_t>(p.chosen.size() + p.rejected.size());
    }
  }
  return run;
}

// Scores the first `n` pairs with a random model and returns tokens/s.
double scoring_tokens_per_second(const BenchOptions& o, const openrm::Tokenizer& tok,
                                 std::int64_t* scored_tokens) {
  auto data = openrm::read_preferences(o.data, read_options());
  openrm::TokenizeOptions topt;
  topt.format = openrm::chat_format_from_name(o.format);
  topt.max_length = o.max_length;
  auto tokenized = openrm::tokenize_pairs(data.pairs, tok, topt);
  tokenized.pairs.resize(std::min<std::size_t>(tokenized.pairs.size(), static_cast<std::size_t>(o.score_pairs)));

  nlohmann::json cfg = {{"architectures", {"LlamaForSequenceClassification"}},
                        {"model_type", "llama"},
                        {"vocab_size", tok.vocab_size()},
                        {"hidden_size", o.hidden},
                        {"intermediate_size", o.hidden * 11 / 4},
                        {"num_hidden_layers", o.layers},
                        {"num_attention_heads", std::max<std::int64_t>(1, o.hidden / 64)},
                        {"num_key_value_heads", std::max<std::int64_t>(1, o.hidden / 64)},
                        {"max_position_embeddings", std::max<std::int64_t>(4096, o.max_length)},
                        {"pad_token_id", 0},
                        {"num_labels", 1}};
  auto model = openrm::create_reward_model(openrm::parse_model_config(cfg.dump(), "bench config"));
  model->init_weights(/*seed=*/0);
  model->eval();
  openrm::BatchingOptions bopt;
  bopt.max_tokens = 8192;
  bopt.shuffle = false;
  auto batches = openrm::make_pair_batches(tokenized.pairs, bopt);
  torch::NoGradGuard no_grad;
  auto t0 = Clock::now();
  std::int64_t tokens = 0;
  for (const auto& b : batches) {
    auto packed = openrm::pack_pairs(tokenized.pairs, b);
    tokens += packed.num_tokens();
    model->forward(packed);
  }
  *scored_tokens = tokens;
  return static_cast<double>(tokens) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  o.data = "../shared/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
  o.tokenizer = "../shared/data/llama2-tokenizer.model";
  CLI::App app{"Benchmark reading + tokenizing preference pairs."};
  app.add_option("--data", o.data, "preference file (.jsonl or .jsonl.gz)")->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "tokenizer .model file or model folder")->capture_default_str();
  app.add_option("--format", o.format, "chat format")->capture_default_str();
  app.add_option("--max-length", o.max_length, "truncation length in tokens")->capture_default_str();
  app.add_option("--threads", o.threads, "threads for the parallel run (0: all)")->capture_default_str();
  app.add_option("--repeat", o.repeat, "runs per setting; the best is reported")->capture_default_str();
  app.add_option("--hidden", o.hidden, "hidden size of the scoring model (0: skip scoring)")->capture_default_str();
  app.add_option("--layers", o.layers, "layers of the scoring model")->capture_default_str();
  app.add_option("--score-pairs", o.score_pairs, "pairs scored for the comparison")->capture_default_str();
  app.add_option("--json", o.json_out, "also write the results as JSON here");
  return openrm::tools::run_tool("bench_tokenize", app, argc, argv, [&] {
    for (const auto& path : {o.data, o.tokenizer}) {
      if (!openrm::path_exists(path)) {
        throw openrm::Error(path + " does not exist (the defaults need ../shared/data; pass --data and --tokenizer)");
      }
    }
    const int all = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    openrm::set_num_threads(all);
    // Each repeat would log the same skip and truncation lines; the table says it once.
    openrm::set_log_level(openrm::LogLevel::kError);
    openrm::warn_if_reference_blas();
    auto tok = openrm::load_tokenizer(o.tokenizer);

    std::vector<TokenizeRun> runs = {run_tokenize(o, *tok, 1)};
    if (all > 1) runs.push_back(run_tokenize(o, *tok, all));

    std::printf("bench_tokenize: %s, %s, format %s, max_length %lld, best of %d\n", o.data.c_str(),
                o.tokenizer.c_str(), o.format.c_str(), static_cast<long long>(o.max_length), o.repeat);
    std::printf("truncation: %s\n", runs[0].truncation.c_str());
    std::printf("%-8s %10s %12s %12s %14s %12s\n", "threads", "pairs", "read s", "tokenize s", "tokens/s", "pairs/s");
    nlohmann::json out = {{"data", o.data}, {"tokenizer", o.tokenizer}, {"format", o.format},
                          {"max_length", o.max_length}, {"runs", nlohmann::json::array()}};
    for (const auto& r : runs) {
      const double total = r.read_s + r.tokenize_s;
      std::printf("%-8d %10lld %12.3f %12.3f %14.0f %12.0f\n", r.threads, static_cast<long long>(r.pairs),
                  r.read_s, r.tokenize_s, static_cast<double>(r.tokens) / total,
                  static_cast<double>(r.pairs) / total);
      out["runs"].push_back({{"threads", r.threads}, {"pairs", r.pairs}, {"tokens", r.tokens},
                             {"read_s", r.read_s}, {"tokenize_s", r.tokenize_s},
                             {"tokens_per_s", static_cast<double>(r.tokens) / total}});
    }
    if (runs.size() > 1) {
      std::printf("parallel speed-up of read+tokenize: %.2fx on %d threads\n",
                  (runs[0].read_s + runs[0].tokenize_s) / (runs[1].read_s + runs[1].tokenize_s), all);
    }
    if (o.hidden > 0) {
      std::int64_t scored = 0;
      const double score_tps = scoring_tokens_per_second(o, *tok, &scored);
      const TokenizeRun& best = runs.back();
      const double tok_tps = static_cast<double>(best.tokens) / (best.read_s + best.tokenize_s);
      // For each token: 1/tok_tps seconds to read+tokenize, 1/score_tps to score.
      const double share = (1.0 / tok_tps) / (1.0 / tok_tps + 1.0 / score_tps);
      std::printf("scoring (hidden %lld, %lld layers, %d threads): %.0f tokens/s over %lld tokens\n",
                  static_cast<long long>(o.hidden), static_cast<long long>(o.layers), all, score_tps,
                  static_cast<long long>(scored));
      std::printf("read+tokenize is %.1f%% of a serial tokenize-then-score pipeline (%.0fx faster than scoring)\n",
                  100.0 * share, tok_tps / score_tps);
      out["scoring"] = {{"hidden", o.hidden}, {"layers", o.layers}, {"tokens_per_s", score_tps},
                        {"tokenize_share", share}};
    }
    if (!o.json_out.empty()) openrm::write_file_atomic(o.json_out, out.dump(2) + "\n");
  });
}
