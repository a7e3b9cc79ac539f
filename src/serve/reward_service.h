// The HTTP reward server's request handling (openrm-serve), apart from the
// sockets: a request (method, path, body, Authorization header) in, a reply
// (status, body, headers) out, so tests can drive it without a network.
// http_server.h puts it behind cpp-httplib. docs/serving.md is the protocol.
#pragma once

#include <openrm/score/score_queue.h>
#include <openrm/score/scorer.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace openrm {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  // Largest request body in bytes (413 past it).
  std::size_t max_body_bytes = 32u << 20;
  // Most items (texts, records, id lists) in one request (413 past it).
  std::int64_t max_items = 1024;
  // Most tokens in one request, after tokenizing and truncation (413 past it).
  std::int64_t max_request_tokens = 1 << 20;
  // A request still waiting for its rewards after this long gets 504.
  std::int64_t request_timeout_ms = 120000;
  // When set, every request but GET /health needs "Authorization: Bearer <key>".
  std::string api_key;
  // Connections served at once (each keeps a thread while it is open).
  int http_threads = 64;
  ScoreQueueOptions queue;

  void validate() const;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class RewardService {
 public:
  // `model_dir` is what /info reports.
  RewardService(std::shared_ptr<Scorer> scorer, const ServeOptions& options, std::string model_dir);
  ~RewardService();

  HttpReply handle(const std::string& method, const std::string& path, const std::string& body,
                   const std::string& authorization);
  // Answers new scoring requests with 503 from now on; what is queued is
  // still scored. Then waits until the queue is empty.
  void shut_down();
  bool shutting_down() const { return stopping_.load(); }

  std::string metrics() const;
  ScoreQueue& queue() { return *queue_; }
  const ServeOptions& options() const { return options_; }

 private:
  struct Item;
  HttpReply get_reward(const std::string& body);
  HttpReply score(const std::string& body);
  HttpReply info() const;
  HttpReply rewards_for(std::vector<Item>& items, bool openrlhf);
  // `conversation` tokenized and truncated as the Scorer does; a failure is
  // a 400 naming `where`.
  Item tokenized(const Conversation& conversation, std::optional<ChatFormat> text_format,
                 const std::string& where) const;
  void count(const std::string& endpoint, int status, double seconds);

  std::shared_ptr<Scorer> scorer_;
  ServeOptions options_;
  std::string model_dir_;
  std::unique_ptr<ScoreQueue> queue_;
  std::atomic<bool> stopping_{false};

  // Metrics.
  static constexpr std::array<double, 12> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
  mutable std::mutex metrics_mutex_;
  std::map<std::pair<std::string, int>, std::int64_t> requests_;  // (endpoint, status) -> count
  std::array<std::int64_t, kLatencyBuckets.size() + 1> latency_counts_{};
  double latency_sum_ = 0.0;
  std::int64_t latency_count_ = 0;
  std::int64_t items_ = 0, scored_tokens_ = 0, truncated_ = 0, dropped_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace openrm
