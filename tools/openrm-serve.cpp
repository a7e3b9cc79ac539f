// openrm-serve: an HTTP reward server for RLHF trainers (OpenRLHF's remote
// reward model, verl, custom PPO/GRPO loops) over a batching queue.
//
//   openrm-serve --model DIR [--host 127.0.0.1] [--port 8000] [--api-key KEY]
//
// POST /get_reward (OpenRLHF), POST /score (messages, prompt + response or
// token ids), GET /health, /metrics (Prometheus), /info. SIGTERM or SIGINT:
// new scoring requests get 503, queued ones are finished, then it exits.
// docs/serving.md has the protocol.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "openrm/error.h"
#include "openrm/runtime.h"
#include "openrm/score/scorer.h"
#include "serve/http_server.h"
#include "serve/reward_service.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-serve";

struct ServeCommand {
  std::string model;
  std::string truncation;
  std::string chat_format;
  openrm::ScoreOptions score;
  openrm::ServeOptions serve;
};

void run_serve(ServeCommand& cmd) {
  // Signals go to one thread that waits for them; every thread started
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  openrm::ScoreOptions& options = cmd.score;
  if (!cmd.truncation.empty()) options.truncation = openrm::truncation_policy_from_name(cmd.truncation);
  if (!cmd.chat_format.empty()) options.chat_format = openrm::chat_format_from_name(cmd.chat_format);
  options.validate();
  if (cmd.serve.api_key.empty()) {
    if (const char* key = std::getenv("OPENRM_API_KEY")) cmd.serve.api_key = key;
  }
  cmd.serve.validate();
  openrm::tools::warn_if_too_many_threads(kTool, options.threads);
  openrm::check_device(options.device);

  auto scorer = std::make_shared<openrm::Scorer>(openrm::Scorer::from_folder(cmd.model, options));
  openrm::RewardService service(scorer, cmd.serve, cmd.model);
  openrm::HttpServer server(service);
  const int port = server.bind();
  std::fprintf(stderr, "%s: %s (%s, chat format %s, max_length %lld) listening on http://%s:%d%s\n", kTool,
               cmd.model.c_str(), scorer->model().config().architecture.c_str(),
               openrm::chat_format_name(scorer->chat_format()).c_str(),
               static_cast<long long>(scorer->tokenize_options().max_length), cmd.serve.host.c_str(), port,
               cmd.serve.api_key.empty() ? "" : " (bearer token required)");
  std::fflush(stderr);

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    const auto queued = service.queue().stats().queued;
    std::fprintf(stderr, "%s: %s: refusing new requests, finishing %zu queued\n", kTool,
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", queued);
    std::fflush(stderr);
    service.shut_down();  // 503 for new work; returns once the queue is empty
    server.stop();
  });
  server.listen();
  // listen() ended without a signal (it failed): wake the waiter.
  if (!service.shutting_down()) ::kill(::getpid(), SIGTERM);
  waiter.join();
  const auto s = service.queue().stats();
  std::fprintf(stderr, "%s: stopped after %lld requests (%lld sequences, %lld tokens, %lld scoring calls)\n", kTool,
               static_cast<long long>(s.requests), static_cast<long long>(s.sequences),
               static_cast<long long>(s.tokens), static_cast<long long>(s.batches));
}

}  // namespace

int main(int argc, char** argv) {
  ServeCommand cmd;
  openrm::ScoreOptions& o = cmd.score;
  openrm::ServeOptions& s = cmd.serve;
  CLI::App app{"Serve a reward model over HTTP (OpenRLHF's /get_reward and openrm's /score)."};
  app.add_option("--model", cmd.model, "reward model folder (config.json, weights, tokenizer)")->required();
  app.add_option("--host", s.host, "address to listen on")->capture_default_str();
  app.add_option("--port", s.port, "port to listen on (0: any free port, printed at start)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--api-key", s.api_key,
                 "require 'Authorization: Bearer KEY' on every request but /health (default: $OPENRM_API_KEY)");
  app.add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", o.dtype, "auto (fp32 on CPU, bf16 on CUDA), fp32, bf16 or fp16")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads for the model (0: all)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--tokenizer", o.tokenizer, "tokenizer folder, tokenizer.json or .model file (default: the model's)");
  app.add_option("--chat-format", cmd.chat_format, "chat format for message lists (default: the folder's)")
      ->check(CLI::IsMember(openrm::chat_format_names()));
  app.add_option("--max-length", o.max_length,
                 "longest item in tokens after truncation (default: the folder's openrm.json, else 2048)")
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--truncation", cmd.truncation, "truncate or drop items over --max-length (default: the folder's)")
      ->check(CLI::IsMember({"truncate", "drop"}));
  app.add_option("--reward-label", o.reward_label, "for a model with several outputs: the output that is the reward")
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--reward-weights", o.reward_weights, "for a model with several outputs: weights of their sum")
      ->delimiter(',')
      ->excludes("--reward-label");
  app.add_flag("--normalize", o.normalize, "(reward - mean) / std with openrm.json's mean and std");
  app.add_option("--max-tokens", s.queue.max_tokens, "token budget of one scoring call across requests")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--max-wait-us", s.queue.max_wait_us,
                 "longest a request waits for others to share its scoring call, in microseconds")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--max-queued", s.queue.max_queued_requests,
                 "requests waiting at most; past it, 503 with Retry-After (0: no bound)")
      ->capture_default_str();
  app.add_option("--max-body-bytes", s.max_body_bytes, "largest request body (413 past it)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--max-items", s.max_items, "most texts or records in one request (413 past it)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--max-request-tokens", s.max_request_tokens, "most tokens in one request (413 past it)")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--request-timeout-ms", s.request_timeout_ms, "a request not answered by then gets 504")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--http-threads", s.http_threads, "connections served at once")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  openrm::tools::group_options(
      app, {{"Model", {"--model", "--tokenizer", "--chat-format", "--max-length", "--truncation", "--reward-label",
                       "--reward-weights", "--normalize"}},
            {"Server", {"--host", "--port", "--api-key", "--http-threads"}},
            {"Limits", {"--max-body-bytes", "--max-items", "--max-request-tokens", "--request-timeout-ms",
                        "--max-queued"}},
            {"Performance", {"--device", "--dtype", "--threads", "--max-tokens", "--max-wait-us"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] { run_serve(cmd); });
}
