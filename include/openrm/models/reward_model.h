// A transformer with a scalar (or num_labels-wide) head: the reward model.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "openrm/io/config.h"
#include "openrm/models/heads.h"
#include "openrm/models/packed_batch.h"
#include "openrm/models/pooling.h"

namespace openrm {

// Base class of every architecture. named_parameters() yields the tensor
// names of the Hugging Face checkpoint ("model.layers.0.self_attn.q_proj.weight",
// "score.weight"), so loading and saving need no name mapping.
class RewardModel : public torch::nn::Module {
 public:
  RewardModel(ModelConfig config, Pooling pooling, HeadSpec head = {})
      : config_(std::move(config)), pooling_(pooling), head_spec_(std::move(head)) {}

  // Final hidden states of the backbone, (T, H), for a packed batch on the
  // model's device.
  virtual at::Tensor hidden_states(const PackedBatch& batch) = 0;
  // The head applied to pooled hidden states: (B, H) -> (B, num_labels).
  virtual at::Tensor head(const at::Tensor& pooled) = 0;

  // Final hidden states (R, H) at packed rows `rows` ((R) int64 on the
  // batch's device) only. The default takes them from hidden_states(); an
  // architecture may skip work that no pooled row reads.
  virtual at::Tensor pooled_hidden_states(const PackedBatch& batch, const at::Tensor& rows);
  // Rewards (B, num_labels) for a packed batch, pooled by pooling(); the
  // batch is moved to the model's device if needed. A batch with shared
  // prefixes is refused: its pooled rows are the caller's to say
  // (forward_rows).
  at::Tensor forward(const PackedBatch& batch);
  // Rewards (R, num_labels) read at the given packed rows of a batch (any
  // batch, shared prefixes included); throws openrm::Error for a row outside
  // the batch.
  at::Tensor forward_rows(const PackedBatch& batch, const std::vector<std::int64_t>& rows);
  // Convenience: one reward per token sequence (requires num_labels == 1).
  std::vector<float> score(const std::vector<std::vector<std::int64_t>>& sequences);

  const ModelConfig& config() const { return config_; }
  // The reward head the model was built with (from the checkpoint's tensor
  // names when loaded).
  const HeadSpec& head_spec() const { return head_spec_; }
  Pooling pooling() const { return pooling_; }
  void set_pooling(Pooling pooling) { pooling_ = pooling; }
  c10::Device device() const;
  c10::ScalarType dtype() const;

  // Whether each token attends to earlier tokens only (decoders). Shared
  // prefixes (PackedBatch::parents) are only meaningful for such a model;
  // an encoder (DeBERTa) overrides this with false, and forward_rows then
  // refuses batches with shared prefixes.
  virtual bool causal() const { return true; }

  // Token types (token_type_ids) for models that embed them (DeBERTa with
  // type_vocab_size > 0): with a separator id set, the tokens after the
  // first separator of each sequence get type 1 (the second text of
  // [CLS] A [SEP] B [SEP], as tokenizer(A, B) gives them); unset, type 0
  // everywhere, as for tokenizer(text). Other models ignore it.
  virtual void set_token_type_separator(std::optional<std::int64_t> id) { (void)id; }

  // Gradient checkpointing (off by default): in training mode, each layer's
  // activations are recomputed during backward instead of kept, trading about
  // one extra forward pass for memory that no longer grows with the depth.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  // Fills the weights with a fresh initialisation (normal(0, std) for
  // matrices and embeddings, ones for norm weights (zeros for Gemma's (1+w)
  // norms, which store an offset from one), zeros for biases), reproducibly
  // for a given seed.
  virtual void init_weights(std::uint64_t seed, double std = 0.02);

 private:
  ModelConfig config_;
  Pooling pooling_;
  HeadSpec head_spec_;
  bool gradient_checkpointing_ = false;
};

struct LoadOptions {
  // Where the weights live, e.g. "cpu" or "cuda:0".
  c10::Device device = c10::Device(c10::kCPU);
  // The dtype the model computes in; stored tensors are converted.
  c10::ScalarType dtype = c10::kFloat;
  // Overrides the pooling rule stored in openrm.json (the family's default,
  // transformers' rule, when neither is set).
  std::optional<Pooling> pooling;
  // The reward head. Loading reads it from the checkpoint's tensor names;
  // unset for a new model, the family's default head (for the Llama-like
  // families a bias-free `score` of config.num_labels outputs).
  std::optional<HeadSpec> head;
  // For a PEFT adapter folder (openrm/models/lora.h): the base model's
  // folder; "": adapter_config.json's base_model_name_or_path. Not used for
  // other folders.
  std::string base_model;
};

// Builds a model with uninitialised weights from a config (the registry picks
// the architecture from config.architecture, falling back to model_type).
std::shared_ptr<RewardModel> create_reward_model(const ModelConfig& config,
                                                 const LoadOptions& options = {});

// Loads a Hugging Face folder (config.json + model.safetensors or shards,
// optional openrm.json). Loading is strict: every expected tensor must be
// present with the right shape and a floating dtype, and any tensor the model
// does not use is an error unless it is a known ignorable buffer.
// A PEFT LoRA adapter folder (adapter_config.json, no config.json) loads as
// its base model (LoadOptions::base_model, else base_model_name_or_path)
// with the adapter applied and merged (load_lora_adapter + merge_lora).
std::shared_ptr<RewardModel> load_reward_model(const std::string& dir,
                                               const LoadOptions& options = {});

// Starts a reward model from a base causal LM folder (LlamaForCausalLM,
// Qwen2ForCausalLM, ...): the backbone's weights are loaded as strictly as
// above, lm_head is dropped, and a new one-output score head is drawn from
// N(0, std = 1/(hidden_size+1)) with `seed`. The architecture becomes the
// family's *ForSequenceClassification, so saving gives a folder that openrm
// and transformers load as a reward model.
std::shared_ptr<RewardModel> load_reward_model_from_causal_lm(const std::string& dir,
                                                              std::uint64_t seed,
                                                              const LoadOptions& options = {});

// Writes config.json, model.safetensors (sharded past max_shard_bytes) and
// openrm.json into dir (created if missing), each file atomically. Weights
// are written in the model's dtype, so a load into the same dtype gives back
// identical bits.
void save_reward_model(RewardModel& model, const std::string& dir,
                       std::uint64_t max_shard_bytes = 5'000'000'000ULL);

// Throws openrm::Error naming the first id of `input_ids` outside
// [0, vocab_size) and its packed position.
void check_token_ids(const at::Tensor& input_ids, std::int64_t vocab_size);

// Architecture names the registry knows, e.g. "LlamaForSequenceClassification".
std::vector<std::string> supported_architectures();

}  // namespace openrm
