// best_of_n: the reward side of a best-of-n (rejection sampling) loop, as
// RLHF code runs it in-process: several rollout workers, each with its own
// prompts, draw n candidate responses per prompt and ask one shared
// openrm::ScoreQueue for their rewards; the queue batches what the workers
// send at the same moment into one Scorer call. Each worker keeps the best
// candidate of each prompt.
//
//   best_of_n MODEL_DIR [WORKERS] [PROMPTS_PER_WORKER] [N]
//
// The "policy" here draws random token ids (a real loop would sample from
// its language model); the model folder needs no tokenizer. At the end the
// program scores every candidate again in one direct Scorer call and prints
// the largest difference from what the queue returned: batching must not
// change a reward.
#include <openrm/runtime.h>
#include <openrm/score/score_queue.h>
#include <openrm/score/scorer.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using Ids = std::vector<openrm::TokenId>;

struct Choice {
  Ids prompt;
  std::vector<Ids> candidates;  // prompt + response, as scored
  std::vector<float> rewards;   // from the queue
  std::size_t best = 0;
};

// n responses of 4 to 24 ids after the prompt.
std::vector<Ids> sample_candidates(const Ids& prompt, int n, std::int64_t vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int> length(4, 24);
  std::uniform_int_distribution<openrm::TokenId> id(3, static_cast<openrm::TokenId>(vocab - 1));
  std::vector<Ids> out;
  for (int i = 0; i < n; ++i) {
    Ids seq = prompt;
    for (int k = length(rng); k > 0; --k) seq.push_back(id(rng));
    out.push_back(std::move(seq));
  }
  return out;
}

int to_int(const char* text, const char* what) {
  const int value = std::atoi(text);
  if (value <= 0) throw std::runtime_error(std::string(what) + " must be a positive integer, got '" + text + "'");
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 5) {
    std::cerr << "usage: best_of_n MODEL_DIR [WORKERS] [PROMPTS_PER_WORKER] [N]\n";
    return 2;
  }
  try {
    const int workers = argc > 2 ? to_int(argv[2], "WORKERS") : 4;
    const int prompts = argc > 3 ? to_int(argv[3], "PROMPTS_PER_WORKER") : 3;
    const int n = argc > 4 ? to_int(argv[4], "N") : 8;

    openrm::ScoreOptions options;
    options.threads = 0;  // every core for the model; workers only wait on the queue
    auto scorer = std::make_shared<openrm::Scorer>(openrm::Scorer::from_folder(argv[1], options));
    openrm::ScoreQueueOptions queue_options;
    queue_options.max_wait_us = 5000;  // wait up to 5 ms for other workers' requests
    openrm::ScoreQueue queue(scorer, queue_options);
    const std::int64_t vocab = scorer->model().config().vocab_size;

    std::vector<std::vector<Choice>> results(static_cast<std::size_t>(workers));
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        std::mt19937 rng(1000 + w);
        std::uniform_int_distribution<openrm::TokenId> id(3, static_cast<openrm::TokenId>(vocab - 1));
        for (int p = 0; p < prompts; ++p) {
          Choice c;
          c.prompt.push_back(1);  // BOS
          for (int k = 0; k < 12; ++k) c.prompt.push_back(id(rng));
          c.candidates = sample_candidates(c.prompt, n, vocab, rng);
          c.rewards = queue.score_tokens(c.candidates);  // blocks until this request's rewards are back
          for (std::size_t i = 1; i < c.rewards.size(); ++i) {
            if (c.rewards[i] > c.rewards[c.best]) c.best = i;
          }
          results[static_cast<std::size_t>(w)].push_back(std::move(c));
        }
      });
    }
    for (auto& t : threads) t.join();
    queue.drain();

    std::printf("%6s %6s %5s %10s %10s\n", "worker", "prompt", "best", "reward", "mean");
    std::vector<Ids> all;
    std::vector<float> from_queue;
    for (int w = 0; w < workers; ++w) {
      for (int p = 0; p < prompts; ++p) {
        const Choice& c = results[static_cast<std::size_t>(w)][static_cast<std::size_t>(p)];
        double mean = 0;
        for (float r : c.rewards) mean += r / c.rewards.size();
        std::printf("%6d %6d %5zu %10.5f %10.5f\n", w, p, c.best, c.rewards[c.best], mean);
        all.insert(all.end(), c.candidates.begin(), c.candidates.end());
        from_queue.insert(from_queue.end(), c.rewards.begin(), c.rewards.end());
      }
    }
    const std::vector<float> direct = scorer->score_tokens(all);
    double max_diff = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
      const double d = std::fabs(double(direct[i]) - from_queue[i]);
      if (!(d <= max_diff)) max_diff = d;  // a NaN shows
    }
    const openrm::ScoreQueueStats s = queue.stats();
    std::printf("queue: %lld requests, %lld sequences in %lld Scorer calls (at most %lld requests in one)\n",
                static_cast<long long>(s.requests), static_cast<long long>(s.sequences),
                static_cast<long long>(s.batches), static_cast<long long>(s.max_batch_requests));
    std::printf("max |queue - direct| = %.3e over %zu candidates\n", max_diff, all.size());
  } catch (const std::exception& e) {
    std::cerr << "best_of_n: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
