#include "openrm/models/reward_model.h"

#include "models/blocks.h"
#include "models/hf_dtype.h"
#include "models/lora_folder.h"
#include "openrm/models/lora.h"
#include "openrm/models/model_folder.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <set>

#include "io/json_util.h"
#include "logging.h"
#include "models/registry.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors.h"
#include "openrm/runtime.h"

namespace openrm {

const char* hf_dtype_name(c10::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    case at::kDouble: return "float64";
    default: return "float32";
  }
}

namespace {

}  // namespace

void check_token_ids(const at::Tensor& input_ids, std::int64_t vocab_size) {
  if (input_ids.numel() == 0) return;
  auto bad = input_ids.lt(0).logical_or(input_ids.ge(vocab_size));
  if (bad.any().item<bool>()) {
    auto at_index = bad.nonzero().flatten()[0].item<std::int64_t>();
    throw Error("token id " + std::to_string(input_ids[at_index].item<std::int64_t>()) + " at packed position " +
                std::to_string(at_index) + " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
  }
}

namespace {

// The batch on `dev`, its ids checked on the host first when they go to a GPU.
// Pinned host memory lets the copy run asynchronously with the host.
PackedBatch on_device(const PackedBatch& batch, const c10::Device& dev, std::int64_t vocab_size) {
  if (dev.is_cuda() && !batch.input_ids.is_cuda()) check_token_ids(batch.input_ids, vocab_size);
  return batch.input_ids.device() == dev ? batch : batch.to(dev, /*non_blocking=*/dev.is_cuda());
}

}  // namespace

at::Tensor RewardModel::pooled_hidden_states(const PackedBatch& batch, const at::Tensor& rows) {
  return hidden_states(batch).index_select(0, rows);
}

at::Tensor RewardModel::forward(const PackedBatch& batch) {
  if (batch.has_shared_prefixes()) {
    throw Error("forward: this batch shares prefixes between sequences; read its rewards with forward_rows");
  }
  const PackedBatch moved = on_device(batch, device(), config_.vocab_size);
  auto index = pooled_token_indices(moved, pooling_, config_.pad_token_id, config_.eos_token_ids);  // (B)
  return head(pooled_hidden_states(moved, index));                            // (B, num_labels)
}

at::Tensor RewardModel::forward_rows(const PackedBatch& batch, const std::vector<std::int64_t>& rows) {
  if (batch.has_shared_prefixes() && !causal()) {
    throw Error("forward_rows: this model attends in both directions, so sequences cannot share prefixes");
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= batch.num_tokens()) {
      throw Error("forward_rows: row " + std::to_string(rows[i]) + " (entry " + std::to_string(i) +
                  ") is outside the batch's " + std::to_string(batch.num_tokens()) + " tokens");
    }
  }
  const PackedBatch moved = on_device(batch, device(), config_.vocab_size);
  auto index = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(moved.input_ids.device());
  return head(pooled_hidden_states(moved, index));
}

std::vector<float> RewardModel::score(const std::vector<std::vector<std::int64_t>>& sequences) {
  if (config_.num_labels != 1) {
    throw Error("score() needs a single-output head; this model has num_labels = " +
                std::to_string(config_.num_labels) + " (use forward())");
  }
  torch::NoGradGuard no_grad;
  auto rewards = forward(PackedBatch::from_sequences(sequences)).to(at::kCPU, at::kFloat);
  rewards = rewards.reshape({-1}).contiguous();
  const float* p = rewards.data_ptr<float>();
  return std::vector<float>(p, p + rewards.numel());
}

c10::Device RewardModel::device() const {
  for (const auto& p : parameters()) return p.device();
  return c10::Device(c10::kCPU);
}

c10::ScalarType RewardModel::dtype() const {
  for (const auto& p : parameters()) return p.scalar_type();
  return at::kFloat;
}

void RewardModel::init_weights(std::uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  // Draw on the CPU with a private generator so the weights depend only on the
  // seed and the parameter order, not on the device or on global RNG state.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : named_parameters()) {
    auto& param = item.value();
    at::Tensor values;
    if (param.dim() == 1) {
      values = at::zeros(param.sizes(), at::kFloat);  // biases; norm weights are set below
    } else {
      values = at::empty(param.sizes(), at::kFloat).normal_(0.0, std, generator);
    }
    param.copy_(values);
  }
  // A fresh norm leaves its input as it is: weight ones, or zeros for the
  // (1+w) RMSNorm, whose weight is an offset from one. Decided by the
  // module, whatever its checkpoint name ("norm", "ln_1", "LayerNorm").
  for (const auto& item : named_modules()) {
    if (auto* rms = item.value()->as<RMSNormImpl>()) {
      rms->weight.fill_(rms->style == RMSNormStyle::kUnitOffset ? 0.0 : 1.0);
    } else if (auto* layer_norm = item.value()->as<LayerNormImpl>()) {
      layer_norm->weight.fill_(1.0);
    }
  }
}

std::shared_ptr<RewardModel> create_reward_model(const ModelConfig& config,
                                                 const LoadOptions& options) {
  if (!at::isFloatingType(options.dtype)) throw Error("model dtype must be a floating type");
  if (options.device.is_cpu()) warn_if_reference_blas();
  const ArchitectureEntry& entry = find_architecture(config);
  LoadOptions effective = options;
  if (!effective.pooling) effective.pooling = entry.default_pooling;
  if (!effective.head) {
    effective.head = entry.default_head;
    effective.head->labels = config.num_labels;
  } else if (effective.head->labels != config.num_labels) {
    throw Error("the head " + effective.head->describe() + " does not match num_labels " +
                std::to_string(config.num_labels));
  }
  return entry.create(config, effective);
}

namespace {

// Which stored tensors a load may leave unused, and which model tensors may
// be absent, from the family's entry: its ignorable buffers, and the LM head
// of a causal-LM checkpoint (dropped when a reward model starts from one;
// ignored beside a value head, which is added to a causal LM). A reward
// model started from a causal LM has no head yet (created fresh).
struct WeightRules {
  const ArchitectureEntry* entry = nullptr;
  bool causal_lm = false;     // starting from a causal LM: the head is new
  bool drop_lm_head = false;  // lm_head.* may be left unused
  std::set<std::string> head_tensors;
  // DeepSpeed-Chat's layout: the backbone's tensors under this prefix
  // ("rwtranrsformer.") instead of entry->backbone + ".".
  std::string backbone_alias;
  bool may_be_missing(const std::string& name) const { return causal_lm && head_tensors.count(name) != 0; }
  // The name a model tensor has in the store.
  std::string stored(const std::string& name) const {
    if (backbone_alias.empty() || entry == nullptr) return name;
    const std::string prefix = entry->backbone + ".";
    if (name.rfind(prefix, 0) != 0) return name;
    return backbone_alias + name.substr(prefix.size());
  }
  bool ignorable(const std::string& name) const {
    if (entry != nullptr) {
      for (const auto& pattern : entry->ignorable) {
        if (name.find(pattern) != std::string::npos) return true;
      }
      if (drop_lm_head && name.rfind(entry->lm_head + ".", 0) == 0) return true;
    }
    return false;
  }
};

// "rwtranrsformer." when the store holds DeepSpeed-Chat's layout (its
// RewardModel keeps the base model in an attribute of that spelling) and
// none of the family's own backbone tensors; else "".
std::string deepspeed_chat_prefix(const WeightStore& store, const ArchitectureEntry& entry) {
  const std::string alias = "rwtranrsformer.", own = entry.backbone + ".";
  bool has_alias = false;
  for (const auto& name : store.names()) {
    if (name.rfind(own, 0) == 0) return "";
    has_alias |= name.rfind(alias, 0) == 0;
  }
  return has_alias ? alias : "";
}

// The head a checkpoint holds, with num_labels made to agree with it: a
// config without num_labels or id2label takes the head's output count (as a
// value-head checkpoint's causal-LM config has none); one that gives a
// different count is an error.
HeadSpec head_of_checkpoint(const ArchitectureEntry& entry, const WeightStore& store, ModelConfig& config,
                            const std::string& dir) {
  const auto names = store.names();
  auto head = detect_head(
      names, [&](const std::string& n) { return store.entry(n).shape; }, entry.head_candidates);
  if (!head) {
    std::string list;
    for (const auto& c : entry.head_candidates) list += (list.empty() ? "" : ", ") + c + ".weight";
    const bool causal = std::binary_search(names.begin(), names.end(), entry.lm_head + ".weight");
    throw Error("loading " + dir + ": no reward head in the checkpoint (looked for " + list + ")" +
                (causal ? "; it has " + entry.lm_head +
                              ".weight, so it is a causal LM: start a reward model from it with "
                              "openrm-train --init-causal-lm (load_reward_model_from_causal_lm)"
                        : ""));
  }
  if (head->labels != config.num_labels) {
    const bool given = config.raw.is_object() && (config.raw.contains("num_labels") || config.raw.contains("id2label"));
    if (given) {
      throw Error("loading " + dir + ": the checkpoint's head " + head->describe() + " has " +
                  std::to_string(head->labels) + " outputs, but config.json says num_labels " +
                  std::to_string(config.num_labels));
    }
    config.num_labels = head->labels;
  }
  return *head;
}

// Copies every parameter from the store after checking presence, shape and
// dtype; collects all problems so one error lists them.
void load_weights(RewardModel& model, const WeightStore& store, const std::string& dir,
                  const WeightRules& rules = {}) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (auto& item : model.named_parameters()) {
    const std::string name = rules.stored(item.key());
    auto& param = item.value();
    if (!store.contains(name)) {
      if (rules.may_be_missing(name)) continue;
      problems.push_back("missing tensor " + name + " (expected shape " +
                         shape_string(param.sizes().vec()) + ")");
      continue;
    }
    used.insert(name);
    const auto& entry = store.entry(name);
    if (entry.shape != param.sizes().vec()) {
      problems.push_back(store.file_of(name) + ": tensor " + name + ": expected " +
                         shape_string(param.sizes().vec()) + ", got " + shape_string(entry.shape));
      continue;
    }
    if (entry.dtype != DType::F32 && entry.dtype != DType::F16 && entry.dtype != DType::BF16 &&
        entry.dtype != DType::F64) {
      problems.push_back(store.file_of(name) + ": tensor " + name + ": dtype " +
                         dtype_name(entry.dtype) + " is not a floating type");
      continue;
    }
    param.copy_(store.tensor(name));
  }
  std::vector<std::string> unused;
  for (const auto& name : store.names()) {
    if (!used.count(name) && !rules.ignorable(name)) unused.push_back(name);
  }
  if (!unused.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unused.size() && i < 8; ++i) list += (i ? ", " : "") + unused[i];
    if (unused.size() > 8) list += ", ... (" + std::to_string(unused.size()) + " in all)";
    problems.push_back("unexpected tensor(s) the model does not use: " + list);
  }
  if (!problems.empty()) {
    std::string message = "loading " + dir + ": ";
    for (std::size_t i = 0; i < problems.size() && i < 10; ++i) {
      message += (i ? "; " : "") + problems[i];
    }
    if (problems.size() > 10) message += "; and " + std::to_string(problems.size() - 10) + " more";
    throw Error(message);
  }
}

}  // namespace

std::shared_ptr<RewardModel> load_reward_model(const std::string& dir, const LoadOptions& options) {
  if (!is_directory(dir)) throw Error("model folder " + dir + " does not exist");
  if (is_lora_adapter_folder(dir)) return detail::load_lora_reward_model(dir, options);
  const auto config_path = join_path(dir, "config.json");
  ModelConfig config = load_model_config(config_path);
  LoadOptions effective = options;
  if (!effective.pooling) effective.pooling = read_model_metadata(dir).pooling;
  const ArchitectureEntry& entry = *with_context(config_path, [&] { return &find_architecture(config); });
  auto store = WeightStore::open_folder(dir);
  if (!effective.head) effective.head = head_of_checkpoint(entry, store, config, dir);
  auto model = with_context(config_path, [&] { return create_reward_model(config, effective); });
  WeightRules rules;
  rules.entry = &entry;
  rules.drop_lm_head = effective.head->name.rfind("v_head", 0) == 0;
  rules.backbone_alias = deepspeed_chat_prefix(store, entry);
  if (!rules.backbone_alias.empty()) {
    log().info("{}: a DeepSpeed-Chat reward model (backbone under {}): read as {}.*", dir, rules.backbone_alias,
               entry.backbone);
  }
  load_weights(*model, store, dir, rules);
  model->eval();
  log().debug("loaded {} ({}, {} layers) from {}", config.architecture, hf_dtype_name(options.dtype),
              config.num_hidden_layers, dir);
  return model;
}

std::shared_ptr<RewardModel> load_reward_model_from_causal_lm(const std::string& dir,
                                                              std::uint64_t seed,
                                                              const LoadOptions& options) {
  if (!is_directory(dir)) throw Error("model folder " + dir + " does not exist");
  const auto config_path = join_path(dir, "config.json");
  ModelConfig config = load_model_config(config_path);
  const std::string suffix = "ForCausalLM";
  const auto& arch = config.architecture;
  if (arch.size() > suffix.size() && arch.compare(arch.size() - suffix.size(), suffix.size(), suffix) == 0) {
    config.architecture = arch.substr(0, arch.size() - suffix.size()) + "ForSequenceClassification";
  }
  config.num_labels = 1;
  auto model = with_context(config_path, [&] { return create_reward_model(config, options); });
  auto store = WeightStore::open_folder(dir);
  WeightRules rules;
  rules.entry = &find_architecture(config);
  rules.causal_lm = true;
  rules.drop_lm_head = true;
  const auto head_names = model->head_spec().tensor_names();
  rules.head_tensors.insert(head_names.begin(), head_names.end());
  load_weights(*model, store, dir, rules);
  // A new head, drawn as OpenRLHF draws its value head: N(0, std 1/(H+1))
  // for the weight, zeros for a bias.
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    if (!rules.head_tensors.count(item.key()) || store.contains(item.key())) continue;
    if (item.value().dim() == 1) {
      item.value().zero_();
      continue;
    }
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    const double std = 1.0 / static_cast<double>(config.hidden_size + 1);
    item.value().copy_(at::empty(item.value().sizes(), at::kFloat).normal_(0.0, std, generator));
  }
  model->eval();
  log().info("initialised a reward model from the causal LM in {} ({} -> {}, new score head)", dir, arch,
             config.architecture);
  return model;
}

void save_reward_model(RewardModel& model, const std::string& dir, std::uint64_t max_shard_bytes) {
  NamedTensors tensors;
  for (const auto& item : model.named_parameters()) {
    tensors.emplace_back(item.key(), item.value().detach());
  }
  save_safetensors_folder(dir, tensors, max_shard_bytes);  // creates dir

  auto config = model.config().to_json();
  config["torch_dtype"] = hf_dtype_name(model.dtype());
  if (config.contains("dtype")) config["dtype"] = hf_dtype_name(model.dtype());
  write_file_atomic(join_path(dir, "config.json"), config.dump(2) + "\n");

  // Keep what an existing openrm.json says besides the pooling rule (chat
  // format, training provenance); a corrupt one is replaced.
  ModelMetadata metadata;
  try {
    metadata = read_model_metadata(dir);
  } catch (const std::exception& e) {
    log().warn("replacing unreadable {}: {}", join_path(dir, "openrm.json"), e.what());
  }
  metadata.pooling = model.pooling();
  write_model_metadata(dir, metadata);
}

}  // namespace openrm
