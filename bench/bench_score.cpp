// bench_score: how fast openrm's Scorer scores sequences with hh-rlhf's
// length distribution, against the way transformers pipelines batch, and how
// close it comes to the machine's GEMM speed, all measured in one run.
//
//   bench_score [--hidden 512] [--layers 4] [--heads N] [--kv-heads N] [--intermediate N]
//               [--vocab 32000] [--pairs 200] [--max-length 1024] [--max-tokens 16384]
//               [--baseline-batch 32] [--threads N] [--gemm 2048] [--gemm-repeat 5]
//               [--device cpu|cuda[:N]] [--dtype auto|fp32|bf16|fp16] [--model DIR]
//               [--sequences-out FILE] [--rewards-out FILE]
//               [--data FILE] [--tokenizer PATH] [--format hh] [--json OUT]
//
// The sequences are both sides of the first --pairs pairs of hh-rlhf (from
// ../shared/data, tokenized with the Llama-2 tokenizer in the hh format;
// synthetic log-normal lengths when the files are absent, and the output says
// so), in file order. A random-init Llama (or, with --arch qwen3, Qwen3) reward model of the given shape
// (fp32 on CPU; bf16 by default with --device cuda, where the GEMM reference
// is a bf16 GEMM on the same GPU) scores them twice on the same cores:
//   baseline: fixed batches of --baseline-batch sequences in input order, each
//             right-padded with the pad token to its longest sequence and run
//             through the model whole (what a transformers pipeline does);
//   unshared: Scorer::score_tokens with share_prefixes off: sequences sorted
//             by length and cut into token-budget batches (--max-tokens token
//             rows), packed with no padding (attention runs per sequence on
//             CPU);
//   openrm:   Scorer::score_tokens as it comes (on CPU, the two sides of a
//             pair compute their common prefix once).
// Both give the same rewards (right padding cannot reach a real token through
// causal attention); the largest difference is printed. With --model the
// model is that folder instead (bench/compare_transformers.py uses this, with
// --sequences-out and --rewards-out, to run transformers on the same ids).
// Then a large fp32 GEMM runs on the same threads, and the scoring's matmul FLOP/s (counted
// analytically, formula printed) is given as a fraction of it.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "models/blocks.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/logging.h"
#include "openrm/runtime.h"
#include "openrm/score/scorer.h"
#include "tool_main.h"

namespace {

using namespace openrm::bench;

struct BenchOptions : CommonOptions {
  std::string model_dir;       // a model folder instead of a random model
  std::string sequences_out;   // JSONL of the token ids scored
  std::string rewards_out;     // JSONL of openrm's rewards
  std::string device = "cpu";
  std::string dtype = "auto";
  std::int64_t pairs = 200;
  std::int64_t max_tokens = openrm::ScoreOptions{}.max_tokens;
  std::int64_t baseline_batch = 32;
  std::vector<std::int64_t> sweep_lengths;  // --sweep-lengths: the long-sequence sweep instead
  std::int64_t sweep_tokens = 16384;
};

struct Run {
  std::vector<float> rewards;
  double seconds = 0;
  std::int64_t batches = 0;
  double tokens = 0;       // token rows the projections computed
  double cells = 0;        // attention cells computed per layer
  double pooled = 0;       // pooled rows (one per sequence)
  double pooled_keys = 0;  // keys the pooled queries see in the last layer
};

// Matmul FLOPs of a run: per layer, 2 * rows * (linear weights per layer)
// for the projections and the MLP, plus 2 * 2 * cells * heads * head_dim for
// QK^T and PV. With `last_pooled` (openrm on CPU) the last layer computes
// keys and values for every row but queries, the output projection and the
// MLP for the pooled rows only, each pooled query over the keys before it.
double forward_flops(const Shape& s, const Run& r, bool last_pooled) {
  const double per_row = static_cast<double>(s.linear_params_per_layer());
  const double kv_per_row = static_cast<double>(2 * s.hidden * s.kv_heads * s.head_dim);
  const double attn = static_cast<double>(s.heads * s.head_dim);
  const double layer = 2.0 * r.tokens * per_row + 4.0 * r.cells * attn;
  if (!last_pooled) return layer * static_cast<double>(s.layers);
  return layer * static_cast<double>(s.layers - 1) + 2.0 * r.tokens * kv_per_row +
         2.0 * r.pooled * (per_row - kv_per_row) + 4.0 * r.pooled_keys * attn;
}

// Fixed batches in input order, right-padded with `pad` to the batch's longest.
Run run_baseline(openrm::RewardModel& model, const std::vector<std::vector<openrm::TokenId>>& seqs,
                 std::int64_t batch_size, std::int64_t pad) {
  Run run;
  torch::NoGradGuard no_grad;
  const auto t0 = Clock::now();
  for (std::size_t start = 0; start < seqs.size(); start += static_cast<std::size_t>(batch_size)) {
    const std::size_t end = std::min(seqs.size(), start + static_cast<std::size_t>(batch_size));
    std::size_t longest = 0;
    for (std::size_t i = start; i < end; ++i) longest = std::max(longest, seqs[i].size());
    std::vector<std::vector<std::int64_t>> padded;
    for (std::size_t i = start; i < end; ++i) {
      std::vector<std::int64_t> row(seqs[i].begin(), seqs[i].end());
      row.resize(longest, pad);
      padded.push_back(std::move(row));
    }
    at::Tensor r = model.forward(openrm::PackedBatch::from_sequences(padded)).reshape({-1}).to(at::kCPU, at::kFloat);
    const float* p = r.data_ptr<float>();
    run.rewards.insert(run.rewards.end(), p, p + r.numel());
    ++run.batches;
    const double rows = static_cast<double>(end - start), L = static_cast<double>(longest);
    run.tokens += rows * L;
    run.cells += rows * openrm::causal_attention_cells(static_cast<std::int64_t>(longest), 0, model.config().num_attention_heads);
    run.pooled += rows;
    for (std::size_t i = start; i < end; ++i) run.pooled_keys += static_cast<double>(seqs[i].size());
  }
  run.seconds = seconds_since(t0);
  return run;
}

Run run_openrm(openrm::Scorer& scorer, const std::vector<std::vector<openrm::TokenId>>& seqs) {
  Run run;
  const openrm::ScoreStats before = scorer.stats();
  const auto t0 = Clock::now();
  run.rewards = scorer.score_tokens(seqs);
  run.seconds = seconds_since(t0);
  const openrm::ScoreStats& after = scorer.stats();
  run.batches = after.batches - before.batches;
  run.tokens = static_cast<double>(after.computed_tokens - before.computed_tokens);
  run.cells = after.attention_cells - before.attention_cells;
  run.pooled = static_cast<double>(seqs.size());
  for (const auto& q : seqs) run.pooled_keys += static_cast<double>(q.size());
  return run;
}

// Causal matmul FLOPs per token of a sequence of `len` tokens through the
// whole model: 2 * (linear weights per layer) for the projections and MLP,
// plus 2 * 2 * heads * head_dim * (len + 1) / 2 for QK^T and PV over the keys
// a query may see (its own position and those before: (len + 1) / 2 on
// average), per layer.
double causal_flops_per_token(const Shape& s, std::int64_t len) {
  const double linear = 2.0 * static_cast<double>(s.linear_params_per_layer());
  const double attention = 4.0 * static_cast<double>(s.heads * s.head_dim) * (static_cast<double>(len) + 1.0) / 2.0;
  return (linear + attention) * static_cast<double>(s.layers);
}

// --sweep-lengths: tokens/s for sequences of each length (random ids, no
// shared prefixes, about --sweep-tokens tokens per length, one Scorer call,
// best of 2 after a warm-up), against how the causal work per token grows.
Json sweep_lengths(const BenchOptions& o, openrm::RewardModel& model, const Shape& shape, int threads) {
  openrm::ScoreOptions so;
  so.threads = threads;
  so.max_tokens = std::max(o.max_tokens, *std::max_element(o.sweep_lengths.begin(), o.sweep_lengths.end()));
  so.share_prefixes = false;
  openrm::Scorer scorer(std::shared_ptr<openrm::RewardModel>(&model, [](openrm::RewardModel*) {}), nullptr,
                        openrm::ChatFormat::kPlain, so);
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<std::int64_t> id(1, o.vocab - 2);  // never the pad id (vocab - 1)
  std::printf("\nlong sequences: about %lld tokens per length, random ids, Scorer::score_tokens (no prefix "
              "sharing), best of 2 after a warm-up; budget %lld token rows\n",
              static_cast<long long>(o.sweep_tokens), static_cast<long long>(so.max_tokens));
  std::printf("%8s %6s %10s %12s %16s %18s %10s\n", "length", "seqs", "seconds", "tokens/s", "tokens/s fell",
              "causal FLOP/token", "grew");
  Json rows = Json::array();
  double first_rate = 0, first_flops = 0;
  for (const std::int64_t len : o.sweep_lengths) {
    const std::int64_t count = std::max<std::int64_t>(1, o.sweep_tokens / len);
    std::vector<std::vector<openrm::TokenId>> seqs(static_cast<std::size_t>(count));
    for (auto& q : seqs) {
      q.resize(static_cast<std::size_t>(len));
      for (auto& t : q) t = static_cast<openrm::TokenId>(id(rng));
    }
    (void)scorer.score_tokens({seqs[0]});
    double best = 1e30;
    for (int r = 0; r < 2; ++r) {
      const auto t0 = Clock::now();
      (void)scorer.score_tokens(seqs);
      best = std::min(best, seconds_since(t0));
    }
    const double rate = static_cast<double>(count * len) / best;
    const double flops = causal_flops_per_token(shape, len);
    if (first_rate == 0) {
      first_rate = rate;
      first_flops = flops;
    }
    std::printf("%8lld %6lld %10.3f %12.0f %15.2fx %18s %9.2fx\n", static_cast<long long>(len),
                static_cast<long long>(count), best, rate, first_rate / rate, si(flops, "FLOP").c_str(),
                flops / first_flops);
    rows.push_back({{"length", len}, {"sequences", count}, {"seconds", best}, {"tokens_per_s", rate},
                    {"tokens_per_s_fell", first_rate / rate}, {"causal_flops_per_token", flops},
                    {"causal_flops_grew", flops / first_flops}});
  }
  std::printf("causal FLOP/token = layers x (2 x %lld linear weights per layer + 2 x 2 x %lld (heads x head_dim) x "
              "(length + 1) / 2 keys per query); target: tokens/s falls no more than it grows\n",
              static_cast<long long>(shape.linear_params_per_layer()), static_cast<long long>(shape.heads * shape.head_dim));
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  CLI::App app{"Benchmark batched scoring on CPU against fixed padded batches and the machine's GEMM speed."};
  add_common_options(app, o);
  app.add_option("--pairs", o.pairs, "pairs scored (both sides; the first ones of the file)")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "openrm's token budget per forward (token rows computed)")
      ->capture_default_str();
  app.add_option("--baseline-batch", o.baseline_batch, "the baseline's fixed batch size")->capture_default_str();
  app.add_option("--device", o.device, "cpu, cuda or cuda:N (both paths, and the GEMM)")->capture_default_str();
  app.add_option("--model", o.model_dir, "score with this model folder (needs pad_token_id) instead of a random model");
  app.add_option("--sequences-out", o.sequences_out, "write the token ids scored, one {\"ids\": [...]} per line");
  app.add_option("--rewards-out", o.rewards_out, "write openrm's rewards, one {\"reward\": r} per line, same order");
  app.add_option("--dtype", o.dtype, "auto (CUDA: bf16; CPU: bf16 where a probe finds it faster), fp32, bf16, fp16")
      ->capture_default_str();
  app.add_option("--sweep-lengths", o.sweep_lengths,
                 "instead of the hh-rlhf comparison: tokens/s at these sequence lengths (e.g. 128,512,2048,4096)")
      ->delimiter(',');
  app.add_option("--sweep-tokens", o.sweep_tokens, "tokens scored per length in --sweep-lengths")->capture_default_str();
  return openrm::tools::run_tool("bench_score", app, argc, argv, [&] {
    if (o.hidden < 1 || o.layers < 1 || o.vocab < 3 || o.pairs < 1 || o.max_tokens < 1 || o.baseline_batch < 1 ||
        o.gemm < 1 || o.gemm_repeat < 1) {
      throw openrm::Error("--hidden, --layers, --pairs, --max-tokens, --baseline-batch, --gemm and --gemm-repeat "
                          "must be >= 1, --vocab >= 3");
    }
    const Setting setting = start_bench("bench_score", o.threads);
    const int threads = setting.threads;
    const double load_before = setting.load_before;
    const std::string& core = setting.openblas_core;

    // The model: a folder (--model; its vocabulary and pad token then apply)
    // or a random one of the asked shape, whose last id is the pad token.
    openrm::LoadOptions load;
    load.device = openrm::score_device_from_name(o.device);
    load.dtype = openrm::score_dtype_from_name(o.dtype, load.device);
    std::shared_ptr<openrm::RewardModel> model;
    Shape shape;
    std::int64_t pad = o.vocab - 1;
    if (!o.model_dir.empty()) {
      model = openrm::load_reward_model(o.model_dir, load);
      const openrm::ModelConfig& c = model->config();
      if (!c.pad_token_id) {
        throw openrm::Error(o.model_dir + ": config.json has no pad_token_id, which the padded baseline needs");
      }
      pad = *c.pad_token_id;
      o.vocab = c.vocab_size;
      o.arch = model->named_parameters().contains("model.layers.0.self_attn.q_norm.weight") ? "qwen3" : "llama";
      o.hidden = c.hidden_size;
      o.layers = c.num_hidden_layers;
      o.heads = c.num_attention_heads;
      o.kv_heads = c.num_key_value_heads;
      o.head_dim = c.head_dim;
      o.intermediate = c.intermediate_size;
      shape = make_shape(o);
    } else {
      shape = make_shape(o);
      model = make_model(shape, std::max<std::int64_t>(4096, o.max_length), o.seed, pad, load);
    }
    model->eval();
    if (!o.sweep_lengths.empty()) {
      for (const auto len : o.sweep_lengths) {
        if (len < 1) throw openrm::Error("--sweep-lengths: lengths must be >= 1");
      }
      if (o.sweep_tokens < 1) throw openrm::Error("--sweep-tokens must be >= 1");
      std::printf("model: %s on %s\n", describe_model(shape, parameter_count(*model), dtype_name(load.dtype)).c_str(),
                  load.device.str().c_str());
      const Json rows = sweep_lengths(o, *model, shape, threads);
      if (!o.json_out.empty()) {
        openrm::write_file_atomic(o.json_out, Json{{"threads", threads}, {"model", model_json(shape, parameter_count(*model))},
                                                  {"sweep", rows}}.dump(2) + "\n");
      }
      return;
    }

    o.synthetic_pairs = o.pairs;
    Pairs data = load_pairs(o);
    if (static_cast<std::int64_t>(data.pairs.size()) > o.pairs) data.pairs.resize(static_cast<std::size_t>(o.pairs));
    // A real token equal to the pad id would be read as padding by the
    // baseline's pooling, so such ids are replaced by another.
    std::vector<std::vector<openrm::TokenId>> seqs;
    for (auto& p : data.pairs) {
      for (auto* side : {&p.chosen, &p.rejected}) {
        for (auto& id : *side) {
          if (id == pad) id = static_cast<openrm::TokenId>(pad > 0 ? pad - 1 : 1);
        }
        seqs.push_back(*side);
      }
    }
    const Json lengths = length_stats(data.pairs);
    double real_tokens = 0, real_squares = 0;
    for (const auto& s : seqs) {
      real_tokens += static_cast<double>(s.size());
      real_squares += static_cast<double>(s.size()) * static_cast<double>(s.size());
    }

    const std::int64_t params_total = parameter_count(*model);
    openrm::ScoreOptions score_options;
    score_options.threads = threads;
    score_options.max_tokens = o.max_tokens;
    openrm::Scorer scorer(model, nullptr, openrm::ChatFormat::kPlain, score_options);
    score_options.share_prefixes = false;
    openrm::Scorer unshared_scorer(model, nullptr, openrm::ChatFormat::kPlain, score_options);

    std::printf("data: %s\n", data.source.c_str());
    std::printf("sequences: both sides of %zu pairs, in file order: %s\n", data.pairs.size(), lengths.dump().c_str());
    const std::string dtype = dtype_name(load.dtype);
    std::printf("model: %s on %s, pad id %lld\n", describe_model(shape, params_total, dtype).c_str(),
                load.device.str().c_str(), static_cast<long long>(pad));

    // Warm-up (allocator, OpenMP pool), then each path once.
    {
      std::vector<std::vector<openrm::TokenId>> few(seqs.begin(), seqs.begin() + std::min<std::size_t>(8, seqs.size()));
      (void)run_baseline(*model, few, o.baseline_batch, pad);
      (void)scorer.score_tokens(few);
      (void)unshared_scorer.score_tokens(few);
    }
    const Run base = run_baseline(*model, seqs, o.baseline_batch, pad);
    const Run unshared = run_openrm(unshared_scorer, seqs);
    const Run ours = run_openrm(scorer, seqs);
    double max_diff = 0, max_abs = 0, max_diff_unshared = 0;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::fabs(base.rewards[i] - ours.rewards[i])));
      max_diff_unshared =
          std::max(max_diff_unshared, static_cast<double>(std::fabs(base.rewards[i] - unshared.rewards[i])));
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(base.rewards[i])));
    }
    // On CPU the model's last layer runs on the pooled rows only, in every
    // path (the baseline goes through RewardModel::forward too).
    const bool last_pooled = !load.device.is_cuda();
    const double peak =
        matmul_flops(1, o.gemm, o.gemm, o.gemm, o.gemm_repeat, at::TensorOptions().device(load.device).dtype(load.dtype));
    const double load_after = load_average();

    auto report = [&](const char* name, const Run& r) {
      const double flops = forward_flops(shape, r, last_pooled);
      std::printf("%-9s %7lld %10.0f %9.1f%% %9.3f %11.0f %9.2f %10s %8.1f%%\n", name,
                  static_cast<long long>(r.batches), r.tokens, 100.0 * r.tokens / real_tokens, r.seconds,
                  real_tokens / r.seconds, static_cast<double>(data.pairs.size()) / r.seconds,
                  si(flops / r.seconds, "FLOP/s").c_str(), 100.0 * flops / r.seconds / peak);
      return Json{{"batches", r.batches},      {"computed_tokens", r.tokens}, {"attention_cells", r.cells},
                  {"pooled_rows", r.pooled},   {"pooled_keys", r.pooled_keys},
                  {"seconds", r.seconds},      {"tokens_per_s", real_tokens / r.seconds},
                  {"pairs_per_s", static_cast<double>(data.pairs.size()) / r.seconds},
                  {"matmul_flops", flops},     {"matmul_flops_per_s", flops / r.seconds},
                  {"fraction_of_gemm", flops / r.seconds / peak}};
    };
    std::printf("\n%-9s %7s %10s %10s %9s %11s %9s %10s %9s\n", "path", "batches", "computed", "of real", "seconds",
                "tokens/s", "pairs/s", "matmul", "of GEMM");
    const Json base_json = report("baseline", base);
    const Json unshared_json = report("unshared", unshared);
    const Json ours_json = report("openrm", ours);
    const double speedup = base.seconds / ours.seconds;
    std::printf("\nopenrm / baseline: %.2fx the tokens/s (baseline: fixed batches of %lld in input order, padded); "
                "openrm / unshared: %.2fx (the pairs' common prefixes computed once: %.0f of %.0f rows)\n",
                speedup, static_cast<long long>(o.baseline_batch), unshared.seconds / ours.seconds, ours.tokens,
                real_tokens);
    std::printf("rewards: largest |openrm - baseline| = %.3g, |unshared - baseline| = %.3g (largest |reward| %.3g)\n",
                max_diff, max_diff_unshared, max_abs);
    std::printf("%s GEMM %lld^3 on %s (best of %d): %s; openrm's scoring reaches %.1f%% of it\n", dtype.c_str(),
                static_cast<long long>(o.gemm), load.device.str().c_str(), o.gemm_repeat, si(peak, "FLOP/s").c_str(),
                100.0 * ours_json["fraction_of_gemm"].get<double>());
    Run useful;
    useful.tokens = real_tokens;
    useful.cells = real_squares;
    std::printf("matmul FLOPs = per layer, 2 * computed rows * %lld (linear weights per layer) + "
                "2 * 2 * attention cells * %lld (heads x head_dim), over %lld layers, counting what each path "
                "computes: the baseline every padded token, unshared the real tokens, openrm each common prefix "
                "once; attention cells as the CPU path computes them: a sequence's full square or rectangle when "
                "its scores fit one block, else its blocks of query rows, each over the keys up to its own last "
                "row%s. The whole model on the real tokens: "
                "%.1f GFLOP\n",
                static_cast<long long>(shape.linear_params_per_layer()),
                static_cast<long long>(shape.heads * shape.head_dim), static_cast<long long>(shape.layers),
                last_pooled ? "; on CPU the last layer computes keys and values for every row and the rest for "
                              "the pooled rows only, each pooled query over the keys before it"
                            : "",
                forward_flops(shape, useful, false) / 1e9);
    std::printf("1-minute load average: %.2f before, %.2f after (%d hardware threads)\n", load_before, load_after,
                static_cast<int>(std::thread::hardware_concurrency()));

    if (!o.sequences_out.empty()) {
      std::string text;
      for (const auto& q : seqs) text += Json{{"ids", q}}.dump() + "\n";
      openrm::write_file_atomic(o.sequences_out, text);
    }
    if (!o.rewards_out.empty()) {
      std::string text;
      for (const float r : ours.rewards) text += Json{{"reward", r}}.dump() + "\n";
      openrm::write_file_atomic(o.rewards_out, text);
    }
    if (!o.json_out.empty()) {
      const Json out = {{"threads", threads},
                        {"blas", openrm::blas_library_path()},
                        {"openblas_core", core},
                        {"data", data.describe},
                        {"lengths", lengths},
                        {"model", model_json(shape, params_total)},
                        {"max_tokens", o.max_tokens},
                        {"baseline_batch", o.baseline_batch},
                        {"real_tokens", real_tokens},
                        {"baseline", base_json},
                        {"unshared", unshared_json},
                        {"openrm", ours_json},
                        {"openrm_over_unshared", unshared.seconds / ours.seconds},
                        {"max_reward_difference_unshared", max_diff_unshared},
                        {"speedup", speedup},
                        {"max_reward_difference", max_diff},
                        {"gemm_n", o.gemm},
                        {"gemm_flops_per_s", peak},
                        {"load_average_before", load_before},
                        {"load_average_after", load_after}};
      openrm::write_file_atomic(o.json_out, out.dump(2) + "\n");
    }
  });
}
