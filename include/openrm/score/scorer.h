// Batched scoring: rewards for conversations, prompt + response records,
// preference pairs or token sequences, in input order, on CPU or CUDA.
//
//   openrm::ScoreOptions options;          // CPU, fp32, all cores
//   auto scorer = openrm::Scorer::from_folder("my-rm", options);
//   std::vector<float> r = scorer.score_tokens(sequences);      // no tokenizing
//   openrm::ScoreResult s = scorer.score_conversations(convs);  // tokenized here
//
// A Scorer may be called from several threads at once: tokenizing runs in
// each caller's thread, the model runs one call at a time (each call uses
// every thread it was given), and the statistics are kept under a lock. To
// batch many small concurrent requests together, put a ScoreQueue
// (openrm/score/score_queue.h) in front of it.
//
// Sequences are sorted by length and cut into token-budget batches of packed
// (padding-free) sequences. On CPU, sequences that begin with the same tokens
// (the two sides of a pair, several responses to one prompt) compute those
// tokens once. A sequence's reward does not depend on the batch it lands in
// or on what it shares (up to float rounding of a few units in the last
// place).
#pragma once

#include <openrm/data/preference.h>
#include <openrm/data/tokenize.h>
#include <openrm/models/model_folder.h>
#include <openrm/models/reward_model.h>
#include <openrm/tokenizer/chat_format.h>
#include <openrm/tokenizer/tokenizer.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

struct ScoreOptions {
  // "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";
  // "fp32", "bf16", "fp16", or "auto": fp32 on CPU, bf16 on CUDA.
  std::string dtype = "auto";
  // CPU threads for the model and for tokenizing (0: all hardware threads).
  int threads = 0;
  // Token budget of one forward pass, in real tokens (attention is
  // padding-free on CPU and CUDA). A sequence over the budget on its own is a
  // batch of one.
  std::int64_t max_tokens = 16384;
  // At most this many sequences per forward pass (0: no cap).
  std::int64_t max_batch_sequences = 0;
  // Return (reward - reward_mean) / reward_std with the mean and std stored
  // in openrm.json by openrm-train (an error when the folder has none).
  bool normalize = false;
  // Longest record in tokens (prompt + response); unset: the folder's
  // openrm.json max_length (the length the model was trained with), else
  // 2048; 0: as long as the model takes. Never more than the model's
  // max_position_embeddings: a larger request is lowered, with a warning
  // (effective_max_length, openrm/models/model_folder.h).
  std::optional<std::int64_t> max_length;
  // What to do with longer records; unset: the folder's openrm.json
  // truncation, else kTruncate.
  std::optional<TruncationPolicy> truncation;
  // The chat format to render with; unset: the folder's (openrm.json, else
  // the tokenizer's chat_template, else plain).
  std::optional<ChatFormat> chat_format;
  // A tokenizer (folder, tokenizer.json or .model file) instead of the model folder's.
  std::string tokenizer;
  // Overrides the folder's pooling rule.
  std::optional<Pooling> pooling;
  // Sequences that begin with at least min_shared_prefix identical token ids
  // are scored as one shared prefix and their own continuations
  // (PackedBatch::parents): the prefix is computed once. The rewards are
  // those of scoring each sequence alone. On CPU always; on CUDA where the
  // model runs in fp16/bf16 and LibTorch (>= 2.5) has the varlen flash
  // kernel, which takes the shared keys in the same call.
  bool share_prefixes = true;
  std::int64_t min_shared_prefix = 16;
  // A model with several outputs (num_labels > 1, e.g. a multi-objective
  // reward model) gives one reward per sequence as the weighted sum of its
  // outputs: reward_weights (one weight per output), or the single output
  // reward_label (0-based). One of them is required for such a model, and
  // neither may be given for a one-output model.
  std::optional<std::int64_t> reward_label;
  std::vector<double> reward_weights;

  // Throws openrm::Error naming the first bad field.
  void validate() const;
};

// The reward_label / reward_weights rules shared by ScoreOptions and
// EvalOptions: exclusive, a label >= 0, finite weights. Throws
// openrm::Error "<what>: <field> <why>".
void validate_reward_choice(const std::optional<std::int64_t>& label, const std::vector<double>& weights,
                            const std::string& what);

// Counts of one or more score_* calls (stats() adds them up).
struct ScoreStats {
  std::int64_t sequences = 0;  // sequences scored
  std::int64_t tokens = 0;     // their real tokens
  // Token rows the model computed: `tokens` less the shared prefixes that
  // were computed once for several sequences.
  std::int64_t computed_tokens = 0;
  // Attention work in query x key cells, as the CPU path computes them:
  // per run of tokens, queries x (shared prefix + own tokens), or for a long
  // run its blocks of queries, each over the keys up to its last row
  // (docs/models.md); sliding windows not subtracted.
  double attention_cells = 0.0;
  std::int64_t batches = 0;    // forward passes
  double seconds = 0.0;        // time in the forward passes (synchronised)
  double tokenize_seconds = 0.0;
  TruncationStats truncation;  // of the records tokenized here
  // Sequences whose reward came out NaN or infinite (a broken model, or
  // weights that overflow in the dtype): their reward stays non-finite.
  std::int64_t non_finite = 0;

  ScoreStats& operator+=(const ScoreStats& other);
};

struct ScoreResult {
  // One reward per input, in input order; NaN for a record that truncation
  // dropped (TruncationPolicy::kDrop, or no way to fit it). A reward the
  // model computed may be non-finite too (stats.non_finite counts those):
  // `dropped` tells the two apart.
  std::vector<float> rewards;
  std::vector<bool> dropped;
  ScoreStats stats;
};

struct PairScores {
  // One entry per input pair, in input order; NaN where the pair was dropped
  // (dropped[i]) or where the model's reward was non-finite.
  std::vector<float> chosen;
  std::vector<float> rejected;
  std::vector<bool> dropped;
  ScoreStats stats;
};

class Scorer {
 public:
  // Loads a reward-model folder (model, tokenizer, chat format, openrm.json)
  // onto options.device in options.dtype. Errors name the folder.
  static Scorer from_folder(const std::string& dir, const ScoreOptions& options = {});

  // Wraps a model already loaded (its device and dtype are kept; the options'
  // device and dtype are ignored). `tokenizer` may be null when only
  // score_tokens is used. `metadata` gives reward_mean / reward_std for
  // normalize.
  Scorer(std::shared_ptr<RewardModel> model, std::shared_ptr<const Tokenizer> tokenizer, ChatFormat format,
         const ScoreOptions& options = {}, ModelMetadata metadata = {});

  // Rewards of token sequences (each non-empty; ids in the vocabulary), in
  // input order. No tokenizing, no truncation: a sequence longer than the
  // model's max_position_embeddings is an error naming its index.
  std::vector<float> score_tokens(const std::vector<std::vector<TokenId>>& sequences);
  // Rewards of a padded batch as a PPO loop holds it: input_ids (B, L) of
  // any integer type and attention_mask (B, L) (bool or integers 0/1), on
  // any device; each row's tokens are those its mask marks, one run of them
  // (left or right padding), at least one. The reward of row b is that of
  // score_tokens on row b's marked tokens. On a CUDA model the batch is
  // packed where it lies and copied to the model at most once; on a CPU
  // model it goes through score_tokens' batching (and prefix sharing).
  // Returns (B) float32 on input_ids' device. Errors name the row.
  at::Tensor score_padded(const at::Tensor& input_ids, const at::Tensor& attention_mask);
  // Rewards of conversations (message lists, rendered in the chat format):
  // the last message is the response.
  ScoreResult score_conversations(const std::vector<Conversation>& conversations);
  // Rewards of records read by ScoreRecordReader; records of rendered text
  // (text_format) are tokenized as that text.
  ScoreResult score_records(const std::vector<ScoreRecord>& records);
  // Rewards of both sides of preference pairs.
  PairScores score_pairs(const std::vector<PreferencePair>& pairs);

  RewardModel& model() { return *model_; }
  // The tokenizer (null when the scorer scores token ids only).
  const std::shared_ptr<const Tokenizer>& tokenizer() const { return tokenizer_; }
  const ScoreOptions& options() const { return options_; }
  ChatFormat chat_format() const { return format_; }
  // How records become token ids: the chat format, the effective max_length
  // and truncation policy, the threads.
  const TokenizeOptions& tokenize_options() const { return tokenize_; }
  // The pooling rule in effect (a model without a pad token pools the last
  // token: transformers could only score it one sequence at a time).
  Pooling pooling() const { return model_->pooling(); }
  // Stored normalisation, when openrm.json has it.
  std::optional<double> reward_mean() const { return reward_mean_; }
  std::optional<double> reward_std() const { return reward_std_; }
  // Everything scored so far (a copy, taken under the lock).
  ScoreStats stats() const;

 private:
  // Scores sequences (nullptr entries are dropped ones: NaN) in length-sorted
  // batches; adds to `stats`.
  std::vector<float> run(const std::vector<const std::vector<TokenId>*>& sequences, ScoreStats& stats);
  // Tokenizes conversation(0..n-1) in parallel; nullopt where dropped. An
  // error starts with where(i).
  // `text_format(i)` is record i's own format (rendered text) or nullopt.
  std::vector<std::optional<std::vector<TokenId>>> tokenize(
      std::size_t n, const std::function<const Conversation&(std::size_t)>& conversation,
      const std::function<std::optional<ChatFormat>(std::size_t)>& text_format,
      const std::function<std::string(std::size_t)>& where, ScoreStats& stats) const;
  ScoreResult score_tokenized(std::size_t n, const std::function<const Conversation&(std::size_t)>& conversation,
                              const std::function<std::optional<ChatFormat>(std::size_t)>& text_format,
                              const std::function<std::string(std::size_t)>& where);
  const Tokenizer& require_tokenizer() const;
  void add_stats(const ScoreStats& stats);
  // (B) model outputs -> rewards: the label weights, then normalisation.
  at::Tensor finish(at::Tensor out) const;

  std::shared_ptr<RewardModel> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  ChatFormat format_;
  ScoreOptions options_;
  TokenizeOptions tokenize_;
  std::optional<double> reward_mean_, reward_std_;
  at::Tensor label_weights_;  // (num_labels) fp32 when the model has several outputs
  ScoreStats total_;
  // Held by pointer so that a Scorer stays movable.
  std::unique_ptr<std::mutex> stats_mutex_ = std::make_unique<std::mutex>();
  std::unique_ptr<std::mutex> model_mutex_ = std::make_unique<std::mutex>();
};

// Scoring a JSONL / .jsonl.gz file record by record (openrm-score).
struct ScoreFileOptions {
  // "auto": a record with a `responses` field is a group of responses to
  // score, one with a `chosen` or `rejected` field a pair, any other a record
  // to score; "records": no pairs; "pairs": every record is a pair.
  std::string kind = "auto";
  // Pair layouts and field names (a k-wise ranking is an error here).
  ReadOptions pairs;
  // Field names of records to score.
  ScoreFields records;
  // Skip and count invalid records (no output line) instead of stopping.
  bool skip_invalid = false;
  // Records read, scored and written at a time: memory is bounded by this,
  // not by the file. Larger chunks sort more sequences by length together.
  std::int64_t chunk_records = 4096;
  // Seconds between progress reports (a live line on a terminal, log lines
  // otherwise); 0: none.
  double progress_seconds = 10.0;
  // Scale-out: this process scores only the records whose index (0-based,
  // blank lines not counted) is shard_rank modulo shard_count, and writes
  // only their lines (openrm-score under torchrun; merge_shard_outputs).
  std::int64_t shard_rank = 0;
  std::int64_t shard_count = 1;
};

// The output lines of shard_count openrm-score processes (each file's lines
// in input order, each starting {"line": N), written to `write` in input
// order. Throws openrm::Error naming a part that is not such a file.
void merge_shard_outputs(const std::vector<std::string>& parts, const std::function<void(const std::string&)>& write);

struct ScoreFileResult {
  std::int64_t lines = 0;            // input lines, blank ones included
  std::int64_t records = 0;          // output lines written
  std::int64_t pairs = 0;            // of which pairs
  std::int64_t groups = 0;           // and groups of responses
  std::int64_t dropped = 0;          // records written with a null reward (truncation dropped them)
  std::int64_t non_finite = 0;       // records with a non-finite reward (written as null, "non_finite": true)
  std::int64_t skipped_invalid = 0;  // invalid records skipped (skip_invalid)
  std::vector<std::string> first_errors;  // the first few skip messages
  ScoreStats stats;
  double seconds = 0.0;              // wall time of the whole call
};

// Reads `input` ("-" is stdin) in chunks, scores each chunk and hands each
// output line (JSON, ending in "\n") to `write`, in input order:
//   {"line": N, "id": ..., "reward": R}                          a record
//   {"line": N, "id": ..., "reward_chosen": C, "reward_rejected": R}  a pair
//   {"line": N, "id": ..., "rewards": [R0, R1, ...]}             a group
// ("id" only when the input has one, echoed with its JSON type; a reward is
// null, and "dropped": true, where truncation dropped it; null with
// "non_finite": true where the model's reward was NaN or infinite). Errors
// name the file and line.
ScoreFileResult score_file(Scorer& scorer, const std::string& input,
                           const std::function<void(const std::string&)>& write,
                           const ScoreFileOptions& options = {});

// Parses ScoreOptions::dtype for a device: "fp32"/"float32", "bf16"/"bfloat16",
// "fp16"/"float16", "auto" (CUDA: bf16; CPU: bf16 where cpu_matmul_probe()
// finds it faster than fp32 on the current threads, else fp32, logged).
// Throws openrm::Error listing the names.
c10::ScalarType score_dtype_from_name(const std::string& name, const c10::Device& device);
// Parses "cpu", "cuda", "cuda:N"; throws openrm::Error when CUDA is asked for
// and none is available, or the device index does not exist.
c10::Device score_device_from_name(const std::string& name);

}  // namespace openrm
