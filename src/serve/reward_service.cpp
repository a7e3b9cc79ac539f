#include "serve/reward_service.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <exception>
#include <future>
#include <optional>
#include <sstream>

#include "models/hf_dtype.h"
#include "openrm/data/jsonl.h"
#include "openrm/data/preference.h"
#include "openrm/data/tokenize.h"
#include "openrm/error.h"
#include "openrm/models/pooling.h"

namespace openrm {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A request the client got wrong: its status and message.
struct ClientError {
  int status;
  std::string message;
};

HttpReply json_reply(int status, const json& body) {
  HttpReply r;
  r.status = status;
  // Invalid UTF-8 from a client (echoed in an error message, or in a text)
  // is replaced, not thrown.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return r;
}

HttpReply error_reply(int status, const std::string& message) { return json_reply(status, {{"error", message}}); }

json number_or_null(float x) { return std::isfinite(x) ? json(x) : json(nullptr); }

json parse_body(const std::string& body) {
  if (body.empty()) throw ClientError{400, "request body: empty (expected a JSON object)"};
  json value;
  try {
    value = json::parse(body);
  } catch (const json::parse_error& e) {
    throw ClientError{400, std::string("request body: not valid JSON: ") + e.what()};
  }
  if (!value.is_object()) throw ClientError{400, "request body: expected a JSON object, got " + std::string(value.type_name())};
  return value;
}

}  // namespace

struct RewardService::Item {
  std::optional<std::vector<TokenId>> ids;  // nullopt: dropped by truncation
  bool truncated = false;
  std::int64_t tokens = 0;
};

RewardService::Item RewardService::tokenized(const Conversation& conversation, std::optional<ChatFormat> text_format,
                                             const std::string& where) const {
  Item item;
  TruncationStats stats;
  try {
    item.ids = tokenize_conversation(conversation, *scorer_->tokenizer(), scorer_->tokenize_options(), &stats,
                                     text_format);
  } catch (const std::exception& e) {
    throw ClientError{400, where + ": " + e.what()};
  }
  item.truncated = stats.truncated > 0;
  if (item.ids) item.tokens = static_cast<std::int64_t>(item.ids->size());
  return item;
}

void ServeOptions::validate() const {
  auto fail = [](const std::string& field, const std::string& why) { throw Error("serve options: " + field + " " + why); };
  if (port < 0 || port > 65535) fail("port", "must be in [0, 65535], got " + std::to_string(port));
  if (max_body_bytes == 0) fail("max_body_bytes", "must be positive");
  if (max_items <= 0) fail("max_items", "must be positive, got " + std::to_string(max_items));
  if (max_request_tokens <= 0) fail("max_request_tokens", "must be positive, got " + std::to_string(max_request_tokens));
  if (request_timeout_ms <= 0) fail("request_timeout_ms", "must be positive, got " + std::to_string(request_timeout_ms));
  if (http_threads <= 0) fail("http_threads", "must be positive, got " + std::to_string(http_threads));
  queue.validate();
}

RewardService::RewardService(std::shared_ptr<Scorer> scorer, const ServeOptions& options, std::string model_dir)
    : scorer_(std::move(scorer)), options_(options), model_dir_(std::move(model_dir)) {
  if (!scorer_) throw Error("RewardService: no scorer");
  options_.validate();
  queue_ = std::make_unique<ScoreQueue>(scorer_, options_.queue);
}

RewardService::~RewardService() { shut_down(); }

void RewardService::shut_down() {
  stopping_ = true;
  queue_->shutdown();
  queue_->drain();
}

HttpReply RewardService::handle(const std::string& method, const std::string& path, const std::string& body,
                                const std::string& authorization) {
  const auto start = Clock::now();
  HttpReply reply;
  std::string endpoint = path;
  try {
    if (!options_.api_key.empty() && path != "/health" && authorization != "Bearer " + options_.api_key) {
      reply = error_reply(401, authorization.empty() ? "this server needs an Authorization: Bearer <key> header"
                                                     : "the bearer token is not this server's");
      reply.headers.emplace_back("WWW-Authenticate", "Bearer");
    } else if (path == "/get_reward" || path == "/score") {
      if (method != "POST") {
        reply = error_reply(405, path + " takes POST");
      } else if (stopping_) {
        reply = error_reply(503, "the server is shutting down");
      } else {
        reply = path == "/score" ? score(body) : get_reward(body);
      }
    } else if (path == "/health" || path == "/metrics" || path == "/info") {
      if (method != "GET") {
        reply = error_reply(405, path + " takes GET");
      } else if (path == "/health") {
        reply = json_reply(stopping_ ? 503 : 200, {{"status", stopping_ ? "shutting down" : "ok"}});
      } else if (path == "/metrics") {
        reply.content_type = "text/plain; version=0.0.4";
        reply.body = metrics();
      } else {
        reply = info();
      }
    } else {
      endpoint = "other";
      reply = error_reply(404, "no such endpoint: " + method + " " + path +
                                   " (POST /get_reward, POST /score, GET /health, GET /metrics, GET /info)");
    }
  } catch (const ClientError& e) {
    reply = error_reply(e.status, e.message);
  } catch (const QueueFull& e) {
    reply = error_reply(503, e.what());
    reply.headers.emplace_back("Retry-After", "1");
  } catch (const std::exception& e) {
    reply = error_reply(500, std::string("internal error: ") + e.what());
  }
  if (reply.status == 503 && stopping_) reply.headers.emplace_back("Connection", "close");
  count(endpoint, reply.status, std::chrono::duration<double>(Clock::now() - start).count());
  return reply;
}

HttpReply RewardService::get_reward(const std::string& body) {
  const json request = parse_body(body);
  const auto it = request.find("query");
  if (it == request.end()) throw ClientError{400, "query: missing (expected a list of texts)"};
  if (!it->is_array()) throw ClientError{400, "query: expected a list of texts, got " + std::string(it->type_name())};
  const auto n = static_cast<std::int64_t>(it->size());
  if (n > options_.max_items) {
    throw ClientError{413, "query: " + std::to_string(n) + " texts, more than this server's limit of " +
                               std::to_string(options_.max_items) + " (--max-items)"};
  }
  if (const auto p = request.find("prompts"); p != request.end() && !p->is_null()) {
    if (!p->is_array() || static_cast<std::int64_t>(p->size()) != n) {
      throw ClientError{400, "prompts: expected a list of " + std::to_string(n) + " texts, one per query"};
    }
    for (std::size_t i = 0; i < p->size(); ++i) {
      if (!(*p)[i].is_string() && !(*p)[i].is_null()) {
        throw ClientError{400, "prompts[" + std::to_string(i) + "]: expected a string, got " +
                                   std::string((*p)[i].type_name())};
      }
    }
  }
  const auto& tokenizer = scorer_->tokenizer();
  if (!tokenizer) throw ClientError{400, "query: this server's model has no tokenizer; send token ids to POST /score"};
  std::vector<Item> items(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json& q = (*it)[i];
    const std::string where = "query[" + std::to_string(i) + "]";
    if (!q.is_string()) throw ClientError{400, where + ": expected a string, got " + std::string(q.type_name())};
    // The text as given: tokenizer(text), as openrm-score scores a text record.
    items[i] = tokenized({Message{"assistant", q.get<std::string>()}}, ChatFormat::kPlain, where);
  }
  return rewards_for(items, /*openrlhf=*/true);
}

HttpReply RewardService::score(const std::string& body) {
  const json request = parse_body(body);
  std::vector<const json*> values;
  std::string prefix;
  if (const auto it = request.find("items"); it != request.end()) {
    if (!it->is_array()) throw ClientError{400, "items: expected a list, got " + std::string(it->type_name())};
    if (static_cast<std::int64_t>(it->size()) > options_.max_items) {
      throw ClientError{413, "items: " + std::to_string(it->size()) + " items, more than this server's limit of " +
                                 std::to_string(options_.max_items) + " (--max-items)"};
    }
    for (const auto& v : *it) values.push_back(&v);
    prefix = "items";
  } else {
    values.push_back(&request);  // one item
  }
  const ModelConfig& config = scorer_->model().config();
  std::vector<Item> items(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const json& v = *values[i];
    const std::string where = prefix.empty() ? std::string("request") : prefix + "[" + std::to_string(i) + "]";
    if (!v.is_object()) throw ClientError{400, where + ": expected an object, got " + std::string(v.type_name())};
    if (const auto ids = v.find("input_ids"); ids != v.end()) {
      if (!ids->is_array() || ids->empty()) throw ClientError{400, where + ".input_ids: expected a non-empty list of token ids"};
      std::vector<TokenId> out;
      out.reserve(ids->size());
      for (std::size_t j = 0; j < ids->size(); ++j) {
        const json& x = (*ids)[j];
        if (!x.is_number_integer() || x.get<std::int64_t>() < 0 || x.get<std::int64_t>() >= config.vocab_size) {
          throw ClientError{400, where + ".input_ids[" + std::to_string(j) + "]: expected a token id in [0, " +
                                     std::to_string(config.vocab_size) + "), got " + x.dump()};
        }
        out.push_back(static_cast<TokenId>(x.get<std::int64_t>()));
      }
      if (config.max_position_embeddings > 0 && static_cast<std::int64_t>(out.size()) > config.max_position_embeddings) {
        throw ClientError{400, where + ".input_ids: " + std::to_string(out.size()) +
                                   " tokens, more than the model's max_position_embeddings (" +
                                   std::to_string(config.max_position_embeddings) + "); token ids are not truncated"};
      }
      items[i].tokens = static_cast<std::int64_t>(out.size());
      items[i].ids = std::move(out);
      continue;
    }
    const auto& tokenizer = scorer_->tokenizer();
    if (!tokenizer) throw ClientError{400, where + ": this server's model has no tokenizer; send input_ids"};
    ScoreRecord record;
    try {
      record = parse_score_record(v, where, 0);
    } catch (const std::exception& e) {
      throw ClientError{400, e.what()};
    }
    items[i] = tokenized(record.conversation, record.text_format, where);
  }
  return rewards_for(items, /*openrlhf=*/false);
}

HttpReply RewardService::rewards_for(std::vector<Item>& items, bool openrlhf) {
  std::int64_t tokens = 0, truncated = 0, dropped = 0;
  std::vector<std::vector<TokenId>> sequences;
  for (auto& item : items) {
    tokens += item.tokens;
    truncated += item.truncated ? 1 : 0;
    if (!item.ids) {
      ++dropped;
      continue;
    }
    sequences.push_back(std::move(*item.ids));  // item.ids stays engaged: only its presence is read below
  }
  if (tokens > options_.max_request_tokens) {
    throw ClientError{413, std::string(openrlhf ? "query" : "items") + ": " + std::to_string(tokens) +
                               " tokens, more than this server's limit of " +
                               std::to_string(options_.max_request_tokens) + " per request (--max-request-tokens)"};
  }
  auto future = queue_->submit(std::move(sequences));
  if (future.wait_for(std::chrono::milliseconds(options_.request_timeout_ms)) != std::future_status::ready) {
    return error_reply(504, "the rewards were not ready within " + std::to_string(options_.request_timeout_ms) +
                                " ms (--request-timeout-ms)");
  }
  const std::vector<float> rewards = future.get();
  json out_rewards = json::array(), out_tokens = json::array(), out_truncated = json::array(),
       out_dropped = json::array();
  std::size_t k = 0;
  for (const auto& item : items) {
    out_rewards.push_back(item.ids ? number_or_null(rewards[k++]) : json(nullptr));
    out_tokens.push_back(item.tokens);
    out_truncated.push_back(item.truncated);
    out_dropped.push_back(!item.ids);
  }
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    items_ += static_cast<std::int64_t>(items.size());
    scored_tokens_ += tokens;
    truncated_ += truncated;
    dropped_ += dropped;
  }
  if (openrlhf) return json_reply(200, {{"rewards", out_rewards}, {"scores", out_rewards}});
  return json_reply(200, {{"rewards", out_rewards},
                          {"tokens", out_tokens},
                          {"truncated", out_truncated},
                          {"dropped", out_dropped}});
}

HttpReply RewardService::info() const {
  RewardModel& model = scorer_->model();
  const ModelConfig& c = model.config();
  const TokenizeOptions& t = scorer_->tokenize_options();
  return json_reply(200, {{"model", model_dir_},
                          {"architecture", c.architecture},
                          {"model_type", c.model_type},
                          {"num_labels", c.num_labels},
                          {"vocab_size", c.vocab_size},
                          {"max_position_embeddings", c.max_position_embeddings},
                          {"chat_format", chat_format_name(scorer_->chat_format())},
                          {"max_length", t.max_length},
                          {"truncation", truncation_policy_name(t.policy)},
                          {"pooling", pooling_name(model.pooling())},
                          {"dtype", hf_dtype_name(model.dtype())},
                          {"device", model.device().str()},
                          {"tokenizer", static_cast<bool>(scorer_->tokenizer())},
                          {"limits",
                           {{"max_body_bytes", options_.max_body_bytes},
                            {"max_items", options_.max_items},
                            {"max_request_tokens", options_.max_request_tokens},
                            {"request_timeout_ms", options_.request_timeout_ms}}},
                          {"queue",
                           {{"max_tokens", options_.queue.max_tokens},
                            {"max_wait_us", options_.queue.max_wait_us},
                            {"max_queued_requests", options_.queue.max_queued_requests}}}});
}

void RewardService::count(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  ++requests_[{endpoint, status}];
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
  ++latency_counts_[b];
  latency_sum_ += seconds;
  ++latency_count_;
}

std::string RewardService::metrics() const {
  const ScoreQueueStats q = queue_->stats();
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  metric("openrm_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
  for (const auto& [key, n] : requests_) {
    out << "openrm_requests_total{endpoint=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << "\n";
  }
  // A histogram from per-bucket counts (the last one past every bound).
  auto histogram = [&](const char* name, const char* help, const auto& bounds, const std::int64_t* counts,
                       std::size_t n, double sum) {
    metric(name, "histogram", help);
    std::int64_t cumulative = 0;
    for (std::size_t b = 0; b < n; ++b) {
      cumulative += counts[b];
      out << name << "_bucket{le=\"" << bounds[b] << "\"} " << cumulative << "\n";
    }
    cumulative += counts[n];
    out << name << "_bucket{le=\"+Inf\"} " << cumulative << "\n" << name << "_sum " << sum << "\n"
        << name << "_count " << cumulative << "\n";
  };
  histogram("openrm_request_duration_seconds", "Time from a request's arrival to its reply.", kLatencyBuckets,
            latency_counts_.data(), kLatencyBuckets.size(), latency_sum_);
  metric("openrm_items_total", "counter", "Texts, records and id lists received in scoring requests.");
  out << "openrm_items_total " << items_ << "\n";
  metric("openrm_request_tokens_total", "counter", "Tokens of the items received, after truncation.");
  out << "openrm_request_tokens_total " << scored_tokens_ << "\n";
  metric("openrm_truncated_total", "counter", "Items cut to the model's max_length.");
  out << "openrm_truncated_total " << truncated_ << "\n";
  metric("openrm_dropped_total", "counter", "Items dropped by the drop truncation policy (null rewards).");
  out << "openrm_dropped_total " << dropped_ << "\n";
  metric("openrm_sequences_total", "counter", "Sequences the model scored.");
  out << "openrm_sequences_total " << q.sequences << "\n";
  metric("openrm_tokens_total", "counter", "Tokens the model scored.");
  out << "openrm_tokens_total " << q.tokens << "\n";
  histogram("openrm_batch_requests", "Requests gathered into one scoring call.", ScoreQueueStats::kBatchBuckets,
            q.batch_requests_histogram, 7, static_cast<double>(q.requests));
  metric("openrm_queue_depth", "gauge", "Requests waiting to be scored.");
  out << "openrm_queue_depth " << q.queued << "\n";
  metric("openrm_queue_rejected_total", "counter", "Requests refused because the queue was full or closing.");
  out << "openrm_queue_rejected_total " << q.rejected << "\n";
  metric("openrm_uptime_seconds", "gauge", "Seconds since the server started.");
  out << "openrm_uptime_seconds " << std::chrono::duration<double>(Clock::now() - started_).count() << "\n";
  return out.str();
}

}  // namespace openrm
