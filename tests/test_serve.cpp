// openrm-serve: the HTTP reward server on loopback (127.0.0.1) only, bounded
// in count and time. Concurrent clients get the rewards the Scorer (what
// openrm-score runs) gives for the same inputs; malformed and oversized
// requests get 4xx with a message naming the field and never bring the
// server down; limits, auth, the full queue, timeouts and shutdown; the tool
// itself under SIGTERM; and a Python client that calls /get_reward as
// OpenRLHF's remote reward function does.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "openrm/data/preference.h"
#include "openrm/io/file.h"
#include "openrm/score/scorer.h"
#include "serve/http_server.h"
#include "serve/reward_service.h"
#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using json = nlohmann::json;

const std::vector<std::string> kTexts = {
    "The quick brown fox jumps over the lazy dog.",
    "A reward model scores a response.",
    "Paris is the capital of France.",
    "Hello world",
    "Short",
    "The lazy dog sleeps; the quick brown fox runs on and on through the field.",
};

// A tiny Llama reward model folder with a tokenizer, made once.
const std::string& model_dir() {
  static test::TempDir* dir = new test::TempDir();
  static const std::string path = [] {
    const std::string p = dir->file("rm");
    test::make_tiny_model_folder(p, /*with_tokenizer=*/true);
    return p;
  }();
  return path;
}

std::shared_ptr<Scorer> make_scorer() {
  ScoreOptions options;
  options.threads = 1;
  return std::make_shared<Scorer>(Scorer::from_folder(model_dir(), options));
}

// The reference: the Scorer on text records, each scored as the text given
// (what openrm-score does for a record of text).
std::vector<float> reference_text_rewards(Scorer& scorer, const std::vector<std::string>& texts) {
  std::vector<ScoreRecord> records;
  for (const auto& t : texts) {
    ScoreRecord r;
    r.conversation = {Message{"assistant", t}};
    r.text_format = ChatFormat::kPlain;
    records.push_back(r);
  }
  return scorer.score_records(records).rewards;
}

// A RewardService behind an HttpServer on 127.0.0.1, any free port.
struct LiveServer {
  std::shared_ptr<Scorer> scorer;
  std::unique_ptr<RewardService> service;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;

  explicit LiveServer(ServeOptions options = {}) : scorer(make_scorer()) {
    options.host = "127.0.0.1";
    options.port = 0;
    service = std::make_unique<RewardService>(scorer, options, model_dir());
    server = std::make_unique<HttpServer>(*service);
    port = server->bind();
    thread = std::thread([this] { server->listen(); });
  }
  ~LiveServer() {
    service->shut_down();
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }
};

json post(httplib::Client& c, const std::string& path, const std::string& body, int* status = nullptr) {
  auto res = c.Post(path.c_str(), body, "application/json");
  if (!res) throw std::runtime_error("no response from " + path + ": " + httplib::to_string(res.error()));
  if (status) *status = res->status;
  return json::parse(res->body);
}

TEST(Serve, ConcurrentClientsGetTheScorersRewards) {
  LiveServer live;
  const std::vector<float> want = reference_text_rewards(*live.scorer, kTexts);
  constexpr int kClients = 16, kRequests = 6;
  std::atomic<int> errors{0};
  std::atomic<double> worst{0.0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = live.client();
      for (int r = 0; r < kRequests; ++r) {
        // Each request a different slice of the texts, in a different order.
        std::vector<std::size_t> picks;
        for (std::size_t i = 0; i < kTexts.size(); ++i) {
          if ((i + c + r) % 3 != 0) picks.push_back((i * 5 + c) % kTexts.size());
        }
        json query = json::array(), prompts = json::array();
        for (auto i : picks) {
          query.push_back(kTexts[i]);
          prompts.push_back("");
        }
        int status = 0;
        json reply;
        try {
          reply = post(client, "/get_reward", json{{"query", query}, {"prompts", prompts}, {"labels", nullptr}}.dump(),
                       &status);
        } catch (const std::exception&) {
          ++errors;
          continue;
        }
        if (status != 200 || reply.at("rewards").size() != picks.size() || reply.at("scores") != reply.at("rewards")) {
          ++errors;
          continue;
        }
        for (std::size_t k = 0; k < picks.size(); ++k) {
          const double d = std::fabs(reply["rewards"][k].get<double>() - want[picks[k]]);
          double w = worst.load();
          while (d > w && !worst.compare_exchange_weak(w, d)) {
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LT(worst.load(), 1e-5) << "each text's reward is the Scorer's for that text";
  const auto stats = live.service->queue().stats();
  std::printf("[ serve    ] %d clients x %d requests: %lld Scorer calls, at most %lld requests in one\n", kClients,
              kRequests, static_cast<long long>(stats.batches), static_cast<long long>(stats.max_batch_requests));
}

TEST(Serve, NativeEndpointTakesMessagesPromptResponseAndIds) {
  LiveServer live;
  auto client = live.client();
  const Conversation chat = {{"user", "Where is Paris?"}, {"assistant", "In France."}};
  ScoreRecord as_messages;
  as_messages.conversation = chat;
  ScoreRecord as_text;
  as_text.conversation = {{"user", "Where is Paris? "}, {"assistant", "In France."}};
  as_text.text_format = ChatFormat::kPlain;
  const std::vector<TokenId> ids = {1, 7, 9, 11, 4};
  const auto want = live.scorer->score_records({as_messages, as_text}).rewards;
  const float want_ids = live.scorer->score_tokens({ids})[0];
  int status = 0;
  const json reply = post(client, "/score",
                          json{{"items",
                                {{{"messages", {{{"role", "user"}, {"content", "Where is Paris?"}},
                                                {{"role", "assistant"}, {"content", "In France."}}}}},
                                 {{"prompt", "Where is Paris? "}, {"response", "In France."}},
                                 {{"input_ids", ids}}}}}
                              .dump(),
                          &status);
  ASSERT_EQ(status, 200) << reply.dump();
  ASSERT_EQ(reply.at("rewards").size(), 3u);
  EXPECT_NEAR(reply["rewards"][0].get<double>(), want[0], 1e-5);
  EXPECT_NEAR(reply["rewards"][1].get<double>(), want[1], 1e-5);
  EXPECT_NEAR(reply["rewards"][2].get<double>(), want_ids, 1e-5);
  EXPECT_EQ(reply["tokens"][2], 5);
  EXPECT_EQ(reply["truncated"], json::array({false, false, false}));
  // One item without "items".
  const json single = post(client, "/score", json{{"input_ids", ids}}.dump(), &status);
  EXPECT_EQ(status, 200);
  EXPECT_NEAR(single["rewards"][0].get<double>(), want_ids, 1e-5);
  // GET endpoints.
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto info = client.Get("/info");
  ASSERT_TRUE(info);
  const json i = json::parse(info->body);
  EXPECT_EQ(i.at("architecture"), "LlamaForSequenceClassification");
  EXPECT_TRUE(i.contains("chat_format"));
  EXPECT_TRUE(i.contains("max_length"));
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(test::contains(metrics->get_header_value("Content-Type"), "text/plain"));
  for (const char* name : {"openrm_requests_total{endpoint=\"/score\",code=\"200\"} 2",
                           "openrm_request_duration_seconds_bucket{le=\"+Inf\"}", "openrm_queue_depth 0",
                           "openrm_sequences_total 4", "openrm_batch_requests_bucket"}) {
    EXPECT_TRUE(test::contains(metrics->body, name)) << name;
  }
}

TEST(Serve, TruncationIsReportedPerItem) {
  ServeOptions options;
  LiveServer live(options);
  auto client = live.client();
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "the quick brown fox ";
  int status = 0;
  const json reply = post(client, "/score", json{{"items", {{{"prompt", "Q "}, {"response", long_text}},
                                                            {{"prompt", "Q "}, {"response", "short"}}}}}
                                                .dump(),
                          &status);
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["truncated"], json::array({true, false}));
  EXPECT_LE(reply["tokens"][0].get<std::int64_t>(), live.scorer->tokenize_options().max_length);
}

// Bodies a client may send by mistake: each gets its status and a message
// naming the place; the server stays up.
TEST(Serve, MalformedRequestsGet4xxNamingTheField) {
  ServeOptions options;
  options.max_items = 4;
  options.max_request_tokens = 20;
  options.max_body_bytes = 4096;
  LiveServer live(options);
  auto client = live.client();
  const struct {
    const char* path;
    std::string body;
    int status;
    const char* names;
  } cases[] = {
      {"/get_reward", "", 400, "empty"},
      {"/get_reward", "{not json", 400, "not valid JSON"},
      {"/get_reward", "[1, 2]", 400, "expected a JSON object"},
      {"/get_reward", R"({"prompts": ["a"]})", 400, "query: missing"},
      {"/get_reward", R"({"query": "text"})", 400, "query: expected a list"},
      {"/get_reward", R"({"query": ["a", 7]})", 400, "query[1]: expected a string"},
      {"/get_reward", R"({"query": ["a"], "prompts": ["a", "b"]})", 400, "prompts: expected a list of 1"},
      {"/get_reward", R"({"query": ["a", "b", "c", "d", "e"]})", 413, "query: 5 texts"},
      {"/get_reward", R"({"query": ["The quick brown fox jumps over the lazy dog.", "A reward model scores it."]})", 413,
       "tokens, more than"},
      {"/score", R"({"items": 3})", 400, "items: expected a list"},
      {"/score", R"({"items": [1]})", 400, "items[0]: expected an object"},
      {"/score", R"({"items": [{"input_ids": []}]})", 400, "items[0].input_ids"},
      {"/score", R"({"items": [{"input_ids": [1, -3]}]})", 400, "items[0].input_ids[1]"},
      {"/score", R"({"items": [{"input_ids": [1, 2.5]}]})", 400, "items[0].input_ids[1]"},
      {"/score", R"({"items": [{"input_ids": [1, 99999]}]})", 400, "items[0].input_ids[1]"},
      {"/score", R"({"items": [{"prompt": 5, "response": "x"}]})", 400, "items[0]"},
      {"/score", R"({"items": [{"messages": "hi"}]})", 400, "items[0]"},
      {"/score", R"({"text": "no such layout"})", 400, "request"},
      {"/score", std::string(5000, ' '), 413, "larger than this server's limit"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.path) + " " + c.body.substr(0, 80));
    auto res = client.Post(c.path, c.body, "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, c.status) << res->body;
    json reply;
    ASSERT_NO_THROW(reply = json::parse(res->body)) << res->body;
    EXPECT_TRUE(test::contains(reply.value("error", ""), c.names)) << res->body;
  }
  auto res = client.Get("/get_reward");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  res = client.Get("/nothing-here");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);

  // Random corruptions of a good body: never a crash, never a 5xx.
  std::mt19937 rng(7);
  const std::string good = R"({"items": [{"prompt": "Q", "response": "A"}, {"input_ids": [1, 2, 3]}]})";
  for (int k = 0; k < 150; ++k) {
    std::string body = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[at] = static_cast<char>(rng() % 256); break;
        case 1: body.erase(at, 1 + rng() % 5); break;
        default: body.insert(at, std::string(1 + rng() % 3, "{}[]\",:0x-"[rng() % 10])); break;
      }
      if (body.empty()) body = "{";
    }
    auto r = client.Post("/score", body, "application/json");
    ASSERT_TRUE(r) << "the server stopped answering after: " << body;
    EXPECT_TRUE(r->status == 200 || r->status == 400 || r->status == 413)
        << "status " << r->status << ": " << r->body.substr(0, 200) << " (corruption " << k << ")";
  }
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(Serve, FormEncodedBodiesAndDeepNesting) {
  LiveServer live;
  auto client = live.client();
  // A form-encoded body (curl -d's type) over 8 KiB: the 413 says what to send.
  auto res = client.Post("/score", std::string(10000, ' '), "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_TRUE(test::contains(res->body, "Content-Type: application/json")) << res->body;
  // Half a million nested brackets: an error, not a crash.
  const std::string deep = std::string(500000, '[') + std::string(500000, ']');
  res = client.Post("/score", deep, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body.substr(0, 200);
  res = client.Post("/get_reward", "{\"query\": " + deep + "}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body.substr(0, 200);
  res = client.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(Serve, BearerTokenIsCheckedButHealthIsOpen) {
  ServeOptions options;
  options.api_key = "s3cret";
  LiveServer live(options);
  auto client = live.client();
  const std::string body = R"({"query": ["Hello world"]})";
  auto res = client.Post("/get_reward", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  res = client.Post("/get_reward", wrong, body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  httplib::Headers right = {{"Authorization", "Bearer s3cret"}};
  res = client.Post("/get_reward", right, body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  res = client.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
}

// Through RewardService::handle, no sockets: a full queue is 503 with
// Retry-After, a request that waits too long is 504, and after shut_down()
// new work is 503 while queued work is still answered.
TEST(Serve, FullQueueTimeoutAndShutdown) {
  ServeOptions options;
  options.queue.max_queued_requests = 1;
  options.queue.max_wait_us = 400'000;  // the worker waits for company
  options.queue.max_tokens = 1 << 20;
  options.request_timeout_ms = 100;
  RewardService service(make_scorer(), options, model_dir());
  const std::string body = R"({"input_ids": [1, 5, 7]})";
  HttpReply first;
  std::thread waiting([&] { first = service.handle("POST", "/score", body, ""); });
  // Wait until the first request sits in the queue.
  for (int i = 0; i < 200 && service.queue().stats().queued == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(service.queue().stats().queued, 1u);
  const HttpReply full = service.handle("POST", "/score", body, "");
  EXPECT_EQ(full.status, 503) << full.body;
  bool retry_after = false;
  for (const auto& [k, v] : full.headers) retry_after |= k == "Retry-After";
  EXPECT_TRUE(retry_after);
  waiting.join();
  EXPECT_EQ(first.status, 504) << first.body;  // waited 400 ms for company, the limit is 100
  EXPECT_TRUE(test::contains(first.body, "request-timeout-ms"));

  service.shut_down();
  EXPECT_EQ(service.handle("POST", "/score", body, "").status, 503);
  EXPECT_EQ(service.handle("GET", "/health", "", "").status, 503);
  EXPECT_EQ(service.handle("GET", "/metrics", "", "").status, 200);
}

// 64 clients at once for about two seconds: no errors. (The long soak with
// figures and memory is bench/bench_serve.)
TEST(Serve, SixtyFourClientsForTwoSecondsWithoutErrors) {
  ServeOptions options;
  options.http_threads = 64;
  LiveServer live(options);
  std::atomic<int> errors{0}, ok{0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c) {
    clients.emplace_back([&, c] {
      auto client = live.client();
      while (std::chrono::steady_clock::now() < until) {
        auto res = client.Post("/get_reward", json{{"query", {kTexts[c % kTexts.size()]}}}.dump(), "application/json");
        if (res && res->status == 200) {
          ++ok;
        } else {
          if (++errors <= 3) {
            std::printf("[ serve    ] error: %s\n", res ? (std::to_string(res->status) + " " + res->body).c_str()
                                                        : httplib::to_string(res.error()).c_str());
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(ok.load(), 64);
  std::printf("[ serve    ] 64 clients, 2 s: %d requests answered, %d errors\n", ok.load(), errors.load());
}

// The tool: --port 0 prints the port; SIGTERM finishes and exits 0. And a
// Python client posting to /get_reward exactly as OpenRLHF's
// request_api_wrapper does (requests.post(url, json=..., headers=...,
// timeout=180), {"query", "prompts", "labels"}, reading "rewards").
TEST(ServeTool, PortZeroSigtermAndTheOpenRlhfClient) {
  if (!test::tool_built("openrm-serve")) GTEST_SKIP() << "openrm-serve was not built";
  test::TempDir tmp;
  const std::string log = tmp.file("serve.log");
  const pid_t pid = test::spawn_tool("openrm-serve", {"--model", model_dir(), "--port", "0", "--threads", "1"}, log);
  int port = 0;
  for (int i = 0; i < 300 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::smatch m;
    const std::string text = test::read_bytes(log);
    if (std::regex_search(text, m, std::regex("listening on http://127\\.0\\.0\\.1:([0-9]+)"))) port = std::stoi(m[1]);
  }
  ASSERT_GT(port, 0) << test::read_bytes(log);

  const std::string python = test::reference_python();
  if (python.empty()) {
    std::printf("[ serve    ] %s: the Python client part is skipped\n", test::kNoReferenceMessage);
  } else {
    const std::string script = tmp.file("client.py");
    test::write_bytes(script,
                      "import json, sys\n"
                      "try:\n"
                      "    import requests\n"
                      "except ImportError:\n"
                      "    sys.exit(77)\n"
                      "url, queries = sys.argv[1], json.loads(sys.argv[2])\n"
                      "data = {'query': queries, 'prompts': ['' for _ in queries], 'labels': [None for _ in queries]}\n"
                      "response = requests.post(url=url, json=data, headers={'Content-Type': 'application/json'}, "
                      "timeout=180)\n"
                      "response.raise_for_status()\n"
                      "response = response.json()\n"
                      "assert 'rewards' in response, response\n"
                      "print(json.dumps(response.get('rewards')))\n");
    const std::string out = tmp.file("client.out");
    const std::string cmd = "'" + python + "' '" + script + "' 'http://127.0.0.1:" + std::to_string(port) +
                            "/get_reward' '" + json(kTexts).dump() + "' > '" + out + "' 2>&1";
    const int status = std::system(cmd.c_str());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 77) {
      std::printf("[ serve    ] the reference environment has no requests: the Python client part is skipped\n");
    } else {
      ASSERT_EQ(code, 0) << test::read_bytes(out);
      const json rewards = json::parse(test::read_bytes(out));
      auto scorer = make_scorer();
      const auto want = reference_text_rewards(*scorer, kTexts);
      ASSERT_EQ(rewards.size(), want.size());
      for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(rewards[i].get<double>(), want[i], 1e-5) << i;
    }
  }
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(test::decode_status(status), 0) << test::read_bytes(log);
  EXPECT_TRUE(test::contains(test::read_bytes(log), "SIGTERM: refusing new requests"));
  EXPECT_TRUE(test::contains(test::read_bytes(log), "stopped after"));
}

}  // namespace
}  // namespace openrm
