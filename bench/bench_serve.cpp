// bench_serve: openrm-serve's request path under load, on loopback.
//
// One process runs the server (RewardService + HttpServer on 127.0.0.1, any
// free port) and its clients: C client threads, each posting one request at
// a time (POST /score with one sequence of token ids, 32 to 256 ids drawn at
// random, a new connection per request as requests.post makes) for a fixed
// time. For C = 1, 8 and 64 it prints requests/s, tokens/s and the p50 / p99
// latency, with cross-request batching (the default queue) and with one
// request per scoring call (ScoreQueueOptions::max_batch_requests = 1), and
// the ratio of the two in the same run. Then a soak: 64 clients for
// --soak-seconds, the errors, and the process's resident memory at the start,
// the middle and the end of it.
//
// The model is a random Llama reward model (--hidden, --layers; fp32 on CPU)
// made here; it needs nothing from ../shared.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "openrm/io/config.h"
#include "openrm/runtime.h"
#include "openrm/score/scorer.h"
#include "serve/http_server.h"
#include "serve/reward_service.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Level {
  int clients = 0;
  std::int64_t requests = 0, errors = 0, tokens = 0, batches = 0;
  double seconds = 0, p50_ms = 0, p99_ms = 0;
};

long rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::shared_ptr<openrm::RewardModel> make_model(std::int64_t hidden, std::int64_t layers) {
  openrm::ModelConfig c;
  nlohmann::json j = {{"architectures", {"LlamaForSequenceClassification"}},
                      {"model_type", "llama"},
                      {"vocab_size", 32000},
                      {"hidden_size", hidden},
                      {"intermediate_size", hidden * 11 / 4},
                      {"num_hidden_layers", layers},
                      {"num_attention_heads", hidden / 64},
                      {"num_key_value_heads", hidden / 64},
                      {"max_position_embeddings", 4096},
                      {"rms_norm_eps", 1e-5},
                      {"pad_token_id", 0},
                      {"num_labels", 1}};
  auto model = openrm::create_reward_model(openrm::parse_model_config(j.dump(), "bench config"));
  model->init_weights(/*seed=*/1, /*std=*/0.02);
  model->eval();
  return model;
}

// C clients for `seconds` against a fresh server with `queue` settings.
Level run_level(const std::shared_ptr<openrm::RewardModel>& model, int clients, double seconds,
                const openrm::ScoreQueueOptions& queue, std::vector<long>* rss = nullptr) {
  openrm::ScoreOptions score;
  score.threads = 0;
  auto scorer = std::make_shared<openrm::Scorer>(model, nullptr, openrm::ChatFormat::kPlain, score);
  openrm::ServeOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.http_threads = std::max(64, clients);
  options.queue = queue;
  openrm::RewardService service(scorer, options, "bench");
  openrm::HttpServer server(service);
  const int port = server.bind();
  std::thread listener([&] { server.listen(); });

  std::mutex mutex;
  std::vector<double> latencies;
  std::atomic<std::int64_t> ok{0}, errors{0}, tokens{0};
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(17 + c);
      std::uniform_int_distribution<int> length(32, 256), id(3, 31999);
      std::vector<double> mine;
      while (Clock::now() < until) {
        std::vector<int> ids(static_cast<std::size_t>(length(rng)));
        for (auto& x : ids) x = id(rng);
        const std::string body = nlohmann::json{{"input_ids", ids}}.dump();
        httplib::Client client("127.0.0.1", port);
        client.set_read_timeout(120, 0);
        const auto t0 = Clock::now();
        auto res = client.Post("/score", body, "application/json");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (res && res->status == 200) {
          ++ok;
          tokens += static_cast<std::int64_t>(ids.size());
          mine.push_back(ms);
        } else {
          ++errors;
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  if (rss) {
    rss->push_back(rss_kib());
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds / 2));
    rss->push_back(rss_kib());
  }
  for (auto& t : threads) t.join();
  if (rss) rss->push_back(rss_kib());
  Level level;
  level.clients = clients;
  level.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  level.requests = ok;
  level.errors = errors;
  level.tokens = tokens;
  level.batches = service.queue().stats().batches;
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    level.p50_ms = latencies[latencies.size() / 2];
    level.p99_ms = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  service.shut_down();
  server.stop();
  listener.join();
  return level;
}

void print(const char* mode, const Level& l) {
  std::printf("%-9s %7d %9lld %9.1f %10.0f %9.1f %9.1f %8lld %7lld\n", mode, l.clients,
              static_cast<long long>(l.requests), l.requests / l.seconds, l.tokens / l.seconds, l.p50_ms, l.p99_ms,
              static_cast<long long>(l.batches), static_cast<long long>(l.errors));
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 8, soak_seconds = 60;
  std::int64_t hidden = 256, layers = 4;
  int threads = 0;
  std::string json_path;
  CLI::App app{"openrm-serve under load on loopback: batching on and off, 1/8/64 clients, and a soak."};
  app.add_option("--seconds", seconds, "duration of each client level")->capture_default_str();
  app.add_option("--soak-seconds", soak_seconds, "duration of the 64-client soak (0: none)")->capture_default_str();
  app.add_option("--hidden", hidden, "model hidden size (a multiple of 64)")->capture_default_str();
  app.add_option("--layers", layers, "model layers")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads for the model (0: all)")->capture_default_str();
  app.add_option("--json", json_path, "write the figures as JSON here");
  CLI11_PARSE(app, argc, argv);
  openrm::set_num_threads(threads);
  auto model = make_model(hidden, layers);
  std::printf("bench_serve: Llama reward model, hidden %lld, %lld layers, fp32 on cpu, %d threads; "
              "requests of 32-256 random ids, one connection per request\n\n",
              static_cast<long long>(hidden), static_cast<long long>(layers), at::get_num_threads());
  std::printf("%-9s %7s %9s %9s %10s %9s %9s %8s %7s\n", "mode", "clients", "requests", "req/s", "tokens/s",
              "p50 ms", "p99 ms", "batches", "errors");
  nlohmann::json out = {{"levels", nlohmann::json::array()}};
  openrm::ScoreQueueOptions batched, single;
  single.max_batch_requests = 1;
  for (int clients : {1, 8, 64}) {
    const Level a = run_level(model, clients, seconds, batched);
    print("batched", a);
    const Level b = run_level(model, clients, seconds, single);
    print("one-by-one", b);
    const double gain = b.requests > 0 ? (a.requests / a.seconds) / (b.requests / b.seconds) : 0.0;
    std::printf("          %7d   batching gain: %.2fx the requests/s; p99 latency %.2fx lower\n", clients, gain,
                a.p99_ms > 0 ? b.p99_ms / a.p99_ms : 0.0);
    for (const auto* l : {&a, &b}) {
      out["levels"].push_back({{"mode", l == &a ? "batched" : "one_by_one"}, {"clients", l->clients},
                               {"requests", l->requests}, {"seconds", l->seconds}, {"tokens", l->tokens},
                               {"p50_ms", l->p50_ms}, {"p99_ms", l->p99_ms}, {"batches", l->batches},
                               {"errors", l->errors}});
    }
  }
  if (soak_seconds > 0) {
    std::vector<long> rss;
    const Level s = run_level(model, 64, soak_seconds, batched, &rss);
    std::printf("\nsoak: 64 clients for %.0f s: %lld requests (%.1f/s), %lld errors, p50 %.1f ms, p99 %.1f ms; "
                "resident memory %ld MiB at the start, %ld MiB halfway, %ld MiB at the end\n",
                s.seconds, static_cast<long long>(s.requests), s.requests / s.seconds,
                static_cast<long long>(s.errors), s.p50_ms, s.p99_ms, rss[0] / 1024, rss[1] / 1024, rss[2] / 1024);
    out["soak"] = {{"seconds", s.seconds}, {"requests", s.requests}, {"errors", s.errors}, {"p50_ms", s.p50_ms},
                   {"p99_ms", s.p99_ms}, {"rss_kib", rss}};
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
