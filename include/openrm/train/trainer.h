// The Bradley-Terry trainer: preference pairs in, a reward-model folder out.
#pragma once

#include <openrm/data/preference.h>
#include <openrm/data/tokenize.h>
#include <openrm/eval/metrics.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

struct TrainOptions {
  // ---- data
  std::vector<std::string> data;  // training files (.jsonl / .jsonl.gz)
  std::string eval_data;          // held-out file; "" for none
  bool skip_invalid = false;      // skip and count invalid records instead of stopping
  std::string data_format = "auto";  // preference layout: auto, plain, conversational, hh, ranked
  std::string chat_format;        // "": the init folder's, else the tokenizer's template, else plain
  // Tokens per sequence. Unset: the init folder's openrm.json max_length (the
  // length it was trained with), else 2048; 0: as many as the model takes.
  // Never more than the model's max_position_embeddings: a larger request is
  // lowered, with a warning (effective_max_length, openrm/models/model_folder.h).
  std::optional<std::int64_t> max_length;
  std::string truncation = "truncate";       // or "drop"
  // The data's licence for the model card, e.g. "cc-by-4.0" (several:
  // "cc-by-4.0, mit"); "": not stated. Recorded, never checked.
  std::string data_license;

  // ---- where the model starts (exactly one)
  std::string init_model;     // an openrm / Hugging Face reward-model folder
  std::string init_causal_lm; // a base causal-LM folder (new score head)
  std::string init_config;    // a config.json: a fresh model of that shape
  std::string tokenizer;      // tokenizer folder or .model; "": the init folder's
  double init_std = 0.02;     // init_config: std of the fresh weights

  // ---- optimisation
  std::uint64_t seed = 0;      // model init, batch order: a CPU run is bit-reproducible
  bool shuffle = true;         // shuffle pairs and batches each epoch; false: file order, no length
                               // sorting, each micro-batch the next pairs that fit max_tokens
  double lr = 1e-4;            // peak learning rate
  double weight_decay = 0.0;   // AdamW decoupled decay; never on norms and biases
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  std::string schedule = "cosine";  // after warm-up: cosine, linear or constant
  std::int64_t warmup_steps = 0;    // linear warm-up from 0 to lr
  double min_lr_ratio = 0.0;        // the decay ends at lr * min_lr_ratio
  std::int64_t epochs = 1;
  std::int64_t max_steps = 0;       // optimizer steps (0: as many as `epochs` give)
  std::int64_t max_tokens = 8192;   // token budget of one micro-batch (sequences x longest)
  std::int64_t grad_accum = 1;      // micro-batches per optimizer step
  double max_grad_norm = 1.0;       // global-norm clipping (0: none)
  double center_rewards_coefficient = 0.0;  // TRL's reward centering
  bool use_margin = true;           // subtract the data's per-pair margin in the loss
  bool gradient_checkpointing = false;  // recompute layer activations in backward (saves memory)
  // Run the prompt a pair's two sides share once (docs/training.md); the
  // budget then counts real tokens, the shared ones once. Causal models only.
  bool prefix_sharing = true;

  // ---- LoRA (docs/training.md): rank 0 trains every weight
  std::int64_t lora_rank = 0;       // adapters of this rank on the target layers; the base frozen
  double lora_alpha = 16.0;         // scaling alpha / rank
  double lora_dropout = 0.0;        // dropout on the adapters' input
  std::vector<std::string> lora_targets = {"q_proj", "k_proj", "v_proj", "o_proj",
                                           "gate_proj", "up_proj", "down_proj"};
  bool lora_base_bf16 = false;      // keep the frozen base weights in bf16 (half their memory)

  // ---- data parallel (docs/distributed.md): RANK, WORLD_SIZE, ... from torchrun
  double dist_timeout = 1800.0;     // seconds a rank waits for the others before it stops
  std::int64_t bucket_mb = 25;      // gradient all-reduce bucket size in MiB

  // ---- evaluation, checkpoints, output
  std::string output_dir;           // the trained folder (created)
  std::int64_t eval_every = 0;      // evaluate on eval_data every N steps (0: only at the end)
  std::int64_t save_every = 0;      // checkpoint every N steps (0: only at the end)
  std::int64_t keep_checkpoints = 2;  // keep the last K checkpoints
  bool resume = true;               // continue from the newest checkpoint in output_dir
  std::int64_t max_bad_steps = 5;   // stop after this many non-finite steps in a row
  std::int64_t log_every = 10;      // a progress line every N steps (a terminal gets a live line)
  int threads = 0;                  // CPU threads (0: all)
  std::string device = "cpu";       // "cpu" or "cuda[:N]"
  std::string dtype = "fp32";       // fp32 or bf16 (autocast on CUDA; weights stay fp32)

  // Throws openrm::Error naming the first bad field.
  void validate() const;
};

// Every field, by its name above.
nlohmann::json train_options_json(const TrainOptions& options);
// Reads the fields present in `json` over `options` (a --config file);
// unknown or mistyped fields are errors naming `source` and the field.
void apply_train_options_json(TrainOptions& options, const nlohmann::json& json,
                              const std::string& source);

struct TrainResult {
  std::int64_t steps = 0;            // optimizer steps taken, resumed ones included
  std::int64_t skipped_steps = 0;    // steps skipped for a non-finite loss or gradient
  std::int64_t resumed_from = -1;    // the checkpoint step resumed from (-1: fresh start)
  std::int64_t train_pairs = 0;
  std::int64_t max_length = 0;       // the effective max_length (openrm.json's; 0: no limit)
  double pairs_per_second = 0.0;     // this process's training throughput
  double tokens_per_second = 0.0;
  TruncationStats train_truncation;
  TruncationStats eval_truncation;
  ReadStats train_read;
  bool has_eval = false;
  PreferenceMetrics eval;            // final evaluation (has_eval)
  std::string output_dir;
};

// Trains and writes options.output_dir: an HF folder (config.json,
// model.safetensors, openrm.json with the chat format, max_length, truncation
// policy and the eval reward mean/std, tokenizer files), README.md (the model
// card), training_config.json, metrics.jsonl, and checkpoints/ while training
// (each a complete model folder too). Throws openrm::Error on bad input,
// before the first step where it can be known, and on a degenerate run (most
// steps skipped as non-finite, or a final evaluation whose rewards are all
// equal), before the final checkpoint and the output folder are written.
TrainResult train_reward_model(const TrainOptions& options);

}  // namespace openrm
