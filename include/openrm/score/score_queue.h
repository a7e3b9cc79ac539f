// Cross-request batching for RLHF loops: many threads (or server requests)
// each submit a few token sequences; one worker thread gathers what is
// waiting into one Scorer call, up to a token budget or a maximum wait, and
// hands each caller its own rewards in its own order.
//
//   auto scorer = std::make_shared<openrm::Scorer>(openrm::Scorer::from_folder("my-rm"));
//   openrm::ScoreQueue queue(scorer, {});             // max_tokens 16384, max_wait_us 2000
//   // from any thread:
//   std::vector<float> r = queue.score_tokens({prompt_and_response_ids, ...});
//   std::future<std::vector<float>> f = queue.submit({ids_a, ids_b});
//
// A request is checked when it is submitted (ids in the vocabulary, lengths
// the model takes), so one caller's bad input is that caller's error alone.
// Rewards equal the Scorer's for the same sequences, up to float rounding.
#pragma once

#include <openrm/error.h>
#include <openrm/score/scorer.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace openrm {

struct ScoreQueueOptions {
  // Gather requests until their tokens reach this many (a request larger
  // than that is scored on its own), ...
  std::int64_t max_tokens = 16384;
  // ... or until the oldest waiting request has waited this long.
  std::int64_t max_wait_us = 2000;
  // Requests waiting at most (0: no bound); submit() past it throws
  // QueueFull, so a server can answer 503 instead of growing without end.
  std::size_t max_queued_requests = 4096;
  // At most this many requests in one Scorer call (0: no cap); 1 scores one
  // request at a time, the baseline that cross-request batching is measured
  // against.
  std::size_t max_batch_requests = 0;

  // Throws openrm::Error naming the first bad field.
  void validate() const;
};

// submit() on a full queue.
class QueueFull : public Error {
 public:
  using Error::Error;
};

// Counts since the queue started.
struct ScoreQueueStats {
  std::int64_t requests = 0;   // requests scored (failed ones included)
  std::int64_t failed = 0;     // requests answered with an error
  std::int64_t sequences = 0;  // sequences scored
  std::int64_t tokens = 0;     // their tokens
  std::int64_t batches = 0;    // Scorer calls the worker made
  std::int64_t rejected = 0;   // submit() calls refused (full, or shut down)
  std::size_t queued = 0;      // requests waiting now
  std::int64_t max_batch_requests = 0;  // most requests gathered into one call
  // Scorer calls by the requests they gathered: 1, 2, 3-4, 5-8, 9-16,
  // 17-32, 33-64, more (kBatchBuckets upper bounds, the last unbounded).
  static constexpr std::int64_t kBatchBuckets[7] = {1, 2, 4, 8, 16, 32, 64};
  std::int64_t batch_requests_histogram[8] = {0, 0, 0, 0, 0, 0, 0, 0};
};

class ScoreQueue {
 public:
  ScoreQueue(std::shared_ptr<Scorer> scorer, const ScoreQueueOptions& options = {});
  // Finishes what is queued, then stops the worker.
  ~ScoreQueue();
  ScoreQueue(const ScoreQueue&) = delete;
  ScoreQueue& operator=(const ScoreQueue&) = delete;

  // Queues the sequences; the future holds their rewards in order, or the
  // error that scoring them raised. Throws openrm::Error at once for a bad
  // request (an empty sequence, an id outside the vocabulary, a sequence
  // longer than the model's max_position_embeddings: the message names the
  // sequence), QueueFull when max_queued_requests are waiting, and
  // openrm::Error after shutdown().
  std::future<std::vector<float>> submit(std::vector<std::vector<TokenId>> sequences);
  // submit(...).get().
  std::vector<float> score_tokens(std::vector<std::vector<TokenId>> sequences);

  // Refuses new requests; the worker finishes the queued ones. Idempotent.
  void shutdown();
  // Blocks until every queued request is answered (after shutdown(), or
  // while no new ones come).
  void drain();

  ScoreQueueStats stats() const;
  const ScoreQueueOptions& options() const { return options_; }
  Scorer& scorer() { return *scorer_; }

 private:
  struct Request {
    std::vector<std::vector<TokenId>> sequences;
    std::int64_t tokens = 0;
    std::promise<std::vector<float>> promise;
    std::chrono::steady_clock::time_point arrived;
  };
  void work();
  void score(std::vector<Request>& requests);

  std::shared_ptr<Scorer> scorer_;
  ScoreQueueOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the worker: a request came, or shutdown
  std::condition_variable drained_;  // drain(): the queue emptied
  std::deque<Request> queue_;
  bool stopping_ = false;
  bool busy_ = false;  // the worker is scoring a gathered batch
  ScoreQueueStats stats_;
  std::thread worker_;
};

}  // namespace openrm
