#include "openrm/score/score_queue.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include "logging.h"

namespace openrm {

void ScoreQueueOptions::validate() const {
  if (max_tokens <= 0) throw Error("score queue options: max_tokens must be positive, got " + std::to_string(max_tokens));
  if (max_wait_us < 0) {
    throw Error("score queue options: max_wait_us must be >= 0, got " + std::to_string(max_wait_us));
  }
}

ScoreQueue::ScoreQueue(std::shared_ptr<Scorer> scorer, const ScoreQueueOptions& options)
    : scorer_(std::move(scorer)), options_(options) {
  if (!scorer_) throw Error("ScoreQueue: no scorer");
  options_.validate();
  worker_ = std::thread([this] { work(); });
}

ScoreQueue::~ScoreQueue() {
  shutdown();
  if (worker_.joinable()) worker_.join();
}

std::future<std::vector<float>> ScoreQueue::submit(std::vector<std::vector<TokenId>> sequences) {
  // Checked here, in the caller's thread: a bad request fails alone.
  const ModelConfig& config = scorer_->model().config();
  std::int64_t tokens = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const auto& s = sequences[i];
    const std::string where = "sequence " + std::to_string(i);
    if (s.empty()) throw Error(where + " is empty");
    if (config.max_position_embeddings > 0 && static_cast<std::int64_t>(s.size()) > config.max_position_embeddings) {
      throw Error(where + " has " + std::to_string(s.size()) + " tokens, more than the model's max_position_embeddings (" +
                  std::to_string(config.max_position_embeddings) + ")");
    }
    for (std::size_t j = 0; j < s.size(); ++j) {
      if (s[j] < 0 || s[j] >= config.vocab_size) {
        throw Error(where + ", token " + std::to_string(j) + ": id " + std::to_string(s[j]) +
                    " is outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
      }
    }
    tokens += static_cast<std::int64_t>(s.size());
  }
  Request request;
  request.sequences = std::move(sequences);
  request.tokens = tokens;
  request.arrived = std::chrono::steady_clock::now();
  auto future = request.promise.get_future();
  if (request.sequences.empty()) {
    request.promise.set_value({});
    return future;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      ++stats_.rejected;
      throw Error("the score queue is shutting down: no new requests");
    }
    if (options_.max_queued_requests > 0 && queue_.size() >= options_.max_queued_requests) {
      ++stats_.rejected;
      throw QueueFull("the score queue is full (" + std::to_string(queue_.size()) + " requests waiting)");
    }
    queue_.push_back(std::move(request));
  }
  wake_.notify_one();
  return future;
}

std::vector<float> ScoreQueue::score_tokens(std::vector<std::vector<TokenId>> sequences) {
  return submit(std::move(sequences)).get();
}

void ScoreQueue::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
}

void ScoreQueue::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  drained_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

ScoreQueueStats ScoreQueue::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  ScoreQueueStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void ScoreQueue::work() {
  using Clock = std::chrono::steady_clock;
  const auto max_wait = std::chrono::microseconds(options_.max_wait_us);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, nothing left
    // Wait for company: until the budget is full, the oldest request has
    // waited max_wait, or the queue is closing (then everything goes now).
    const auto deadline = queue_.front().arrived + max_wait;
    auto waiting_tokens = [&] {
      std::int64_t t = 0;
      for (const auto& r : queue_) t += r.tokens;
      return t;
    };
    while (!stopping_ && waiting_tokens() < options_.max_tokens &&
           (options_.max_batch_requests == 0 || queue_.size() < options_.max_batch_requests) &&
           Clock::now() < deadline) {
      wake_.wait_until(lock, deadline);
    }
    // Whole requests, oldest first, up to the budget (at least one).
    std::vector<Request> batch;
    std::int64_t tokens = 0;
    while (!queue_.empty() && (batch.empty() || tokens + queue_.front().tokens <= options_.max_tokens) &&
           (options_.max_batch_requests == 0 || batch.size() < options_.max_batch_requests)) {
      tokens += queue_.front().tokens;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    busy_ = true;
    lock.unlock();
    score(batch);
    lock.lock();
    busy_ = false;
    if (queue_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

void ScoreQueue::score(std::vector<Request>& requests) {
  std::vector<std::vector<TokenId>> all;
  std::size_t total = 0;
  std::int64_t tokens = 0;
  for (const auto& r : requests) {
    total += r.sequences.size();
    tokens += r.tokens;
  }
  all.reserve(total);
  for (auto& r : requests) {
    for (auto& s : r.sequences) all.push_back(std::move(s));
  }
  // Results first, then the statistics, then the promises: a caller that
  // has its rewards sees them counted.
  std::vector<std::vector<float>> results(requests.size());
  std::vector<std::exception_ptr> errors(requests.size());
  std::int64_t failed = 0, calls = 1;
  try {
    const std::vector<float> rewards = scorer_->score_tokens(all);
    std::size_t offset = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const std::size_t n = requests[i].sequences.size();
      results[i].assign(rewards.begin() + static_cast<std::ptrdiff_t>(offset),
                        rewards.begin() + static_cast<std::ptrdiff_t>(offset + n));
      offset += n;
    }
  } catch (const std::exception& e) {
    // Requests were checked on submit, so this is rare (e.g. out of memory):
    // each request is retried alone so that the error reaches only its own.
    log().warn("score queue: a batch of {} requests failed ({}); scoring them one by one", requests.size(), e.what());
    std::size_t offset = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      const std::size_t n = requests[i].sequences.size();
      std::vector<std::vector<TokenId>> own(all.begin() + static_cast<std::ptrdiff_t>(offset),
                                            all.begin() + static_cast<std::ptrdiff_t>(offset + n));
      offset += n;
      ++calls;
      try {
        results[i] = scorer_->score_tokens(own);
      } catch (...) {
        ++failed;
        errors[i] = std::current_exception();
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.requests += static_cast<std::int64_t>(requests.size());
    stats_.failed += failed;
    stats_.sequences += static_cast<std::int64_t>(total);
    stats_.tokens += tokens;
    stats_.batches += calls;
    const auto gathered = static_cast<std::int64_t>(requests.size());
    stats_.max_batch_requests = std::max(stats_.max_batch_requests, gathered);
    std::size_t bucket = 0;
    while (bucket < 7 && gathered > ScoreQueueStats::kBatchBuckets[bucket]) ++bucket;
    ++stats_.batch_requests_histogram[bucket];
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (errors[i]) {
      requests[i].promise.set_exception(errors[i]);
    } else {
      requests[i].promise.set_value(std::move(results[i]));
    }
  }
}

}  // namespace openrm
