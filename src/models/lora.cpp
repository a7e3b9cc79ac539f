#include "openrm/models/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <utility>

#include "io/json_util.h"
#include "logging.h"
#include "models/blocks.h"
#include "models/lora_folder.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/io/config.h"
#include "openrm/io/dtype.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/model_folder.h"

namespace openrm {

namespace {

std::string last_component(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

bool is_adapter_tensor(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A module name matched as PEFT matches a target_modules list entry: the
// name itself, or its last dot-separated components.
bool names_module(const std::string& name, const std::string& target) {
  return name == target || ends_with(name, "." + target);
}

// The linear layers apply_lora adapts, in module order, and the names of
// all the linear layers it could (for the error when none matches).
struct LoraMatch {
  std::vector<std::pair<std::string, LinearImpl*>> adapted;
  std::vector<std::string> linear;
};

LoraMatch match_layers(RewardModel& model, const LoraOptions& options) {
  const auto head_names = model.head_spec().tensor_names();
  const std::set<std::string> head(head_names.begin(), head_names.end());
  std::optional<std::regex> pattern;
  if (!options.target_regex.empty()) pattern.emplace(options.target_regex, std::regex::ECMAScript);
  LoraMatch match;
  for (const auto& item : model.named_modules()) {
    auto* layer = item.value()->as<LinearImpl>();
    if (layer == nullptr) continue;
    const std::string& name = item.key();
    if (head.count(name + ".weight") != 0 || name.find(".lora_") != std::string::npos) continue;
    match.linear.push_back(name);
    const bool wanted = pattern ? std::regex_match(name, *pattern)
                                : std::any_of(options.targets.begin(), options.targets.end(),
                                              [&](const std::string& t) { return names_module(name, t); });
    if (wanted) match.adapted.emplace_back(name, layer);
  }
  if (match.adapted.empty()) {
    std::set<std::string> kinds;
    for (const auto& n : match.linear) kinds.insert(last_component(n));
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    throw Error("no linear layer is named like the targets; this model's are " +
                (list.empty() ? std::string("none (its layers are not LinearImpl, e.g. GPT-2's Conv1D)") : list));
  }
  return match;
}

constexpr const char* kAdapterConfig = "adapter_config.json";
const std::string kPrefix = "base_model.model.";

// adapter_config.json as far as openrm reads it.
struct AdapterConfig {
  std::string path;
  LoraOptions options;
  // modules_to_save, with PEFT's "classifier" and "score" for SEQ_CLS.
  std::vector<std::string> modules_to_save;
  std::string base_model;  // base_model_name_or_path, "" when absent or null
};

AdapterConfig read_adapter_config(const std::string& dir) {
  AdapterConfig out;
  out.path = join_path(dir, kAdapterConfig);
  if (!is_directory(dir)) throw Error(dir + ": no such adapter folder");
  if (!path_exists(out.path)) throw Error(out.path + ": no such file (not a PEFT adapter folder)");
  const std::string text = read_text_file(out.path);
  const auto j = detail::parse_json_checked<nlohmann::json>(text.data(), text.data() + text.size(), out.path,
                                                            detail::JsonParseLimits{});
  with_context(out.path, [&] {
    if (!j.is_object()) throw Error("expected a JSON object");
    const auto field = [](const std::string& key) { return "field '" + key + "'"; };
    const auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
    if (!has("peft_type") || !j["peft_type"].is_string() || j["peft_type"].get<std::string>() != "LORA") {
      throw Error(field("peft_type") + ": expected \"LORA\", got " +
                  (j.contains("peft_type") ? j["peft_type"].dump() : "none") + " (openrm loads LoRA adapters only)");
    }
    std::string task;
    if (has("task_type")) {
      if (!j["task_type"].is_string() || j["task_type"].get<std::string>() != "SEQ_CLS") {
        throw Error(field("task_type") + ": expected \"SEQ_CLS\" (a sequence-classification adapter, as a reward "
                    "model's is), got " + j["task_type"].dump());
      }
      task = "SEQ_CLS";
    }
    if (!has("r") || !j["r"].is_number_integer() || j["r"].get<std::int64_t>() <= 0) {
      throw Error(field("r") + ": expected a positive integer, got " + (j.contains("r") ? j["r"].dump() : "none"));
    }
    out.options.rank = j["r"].get<std::int64_t>();
    if (!has("lora_alpha") || !j["lora_alpha"].is_number() || !(j["lora_alpha"].get<double>() > 0)) {
      throw Error(field("lora_alpha") + ": expected a positive number, got " +
                  (j.contains("lora_alpha") ? j["lora_alpha"].dump() : "none"));
    }
    out.options.alpha = j["lora_alpha"].get<double>();
    out.options.dropout = 0.0;
    if (has("lora_dropout")) {
      const auto& d = j["lora_dropout"];
      if (!d.is_number() || !(d.get<double>() >= 0 && d.get<double>() < 1)) {
        throw Error(field("lora_dropout") + ": expected a number in [0, 1), got " + d.dump());
      }
      out.options.dropout = d.get<double>();
    }
    if (!has("target_modules")) throw Error(field("target_modules") + ": missing (the layers the adapter is on)");
    const auto& targets = j["target_modules"];
    if (targets.is_string()) {
      const std::string pattern = targets.get<std::string>();
      if (pattern == "all-linear") {
        throw Error(field("target_modules") + ": \"all-linear\" is not supported; list the layers (e.g. "
                    "[\"q_proj\", \"v_proj\"]) or give a regular expression");
      }
      if (pattern.empty()) throw Error(field("target_modules") + ": empty");
      try {
        std::regex check(pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw Error(field("target_modules") + ": the regular expression " + targets.dump() +
                    " is not one std::regex (ECMAScript) reads: " + e.what() + "; list the layers instead");
      }
      out.options.target_regex = pattern;
      out.options.targets.clear();
    } else if (targets.is_array() && !targets.empty()) {
      out.options.targets.clear();
      for (const auto& t : targets) {
        if (!t.is_string() || t.get<std::string>().empty()) {
          throw Error(field("target_modules") + ": expected module names, got " + t.dump());
        }
        out.options.targets.push_back(t.get<std::string>());
      }
    } else {
      throw Error(field("target_modules") + ": expected a non-empty list of module names or a regex string, got " +
                  targets.dump());
    }
    std::set<std::string> save;
    if (task == "SEQ_CLS") save = {"classifier", "score"};  // PEFT adds them for SEQ_CLS
    if (has("modules_to_save")) {
      const auto& m = j["modules_to_save"];
      if (!m.is_array()) throw Error(field("modules_to_save") + ": expected a list of module names, got " + m.dump());
      for (const auto& t : m) {
        if (!t.is_string() || t.get<std::string>().empty()) {
          throw Error(field("modules_to_save") + ": expected module names, got " + t.dump());
        }
        save.insert(t.get<std::string>());
      }
    }
    out.modules_to_save.assign(save.begin(), save.end());
    // What openrm's plain LoRA does not compute.
    if (has("bias") && !(j["bias"].is_string() && j["bias"].get<std::string>() == "none")) {
      throw Error(field("bias") + ": " + j["bias"].dump() + " is not supported (only \"none\": no trained biases)");
    }
    for (const char* key : {"use_dora", "use_rslora", "lora_bias", "fan_in_fan_out", "use_qalora", "use_bdlora"}) {
      if (!has(key)) continue;
      if (!j[key].is_boolean()) throw Error(field(key) + ": expected true or false, got " + j[key].dump());
      if (j[key].get<bool>()) {
        throw Error(field(key) + ": true is not supported (openrm computes plain LoRA: x W^T + alpha / r * x A^T B^T)");
      }
    }
    for (const char* key : {"rank_pattern", "alpha_pattern"}) {
      if (has(key) && !(j[key].is_object() && j[key].empty())) {
        throw Error(field(key) + ": per-layer ranks and alphas are not supported, got " + j[key].dump());
      }
    }
    for (const char* key : {"layers_to_transform", "exclude_modules", "target_parameters", "layer_replication",
                            "trainable_token_indices", "alora_invocation_tokens", "arrow_config", "megatron_config"}) {
      if (has(key) && !(j[key].is_array() && j[key].empty())) {
        throw Error(field(key) + ": " + j[key].dump() + " is not supported (expected null)");
      }
    }
    if (has("base_model_name_or_path")) {
      if (!j["base_model_name_or_path"].is_string()) {
        throw Error(field("base_model_name_or_path") + ": expected a string, got " +
                    j["base_model_name_or_path"].dump());
      }
      out.base_model = j["base_model_name_or_path"].get<std::string>();
    }
  });
  return out;
}

// The model's name for a tensor of an adapter file: without
// "base_model.model." and the adapter name PEFT may leave in
// (".lora_A.default.weight", ".score.modules_to_save.default.weight").
std::optional<std::string> model_name_of(const std::string& stored) {
  if (stored.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::string name = stored.substr(kPrefix.size());
  for (const std::string part : {".lora_A.", ".lora_B.", ".modules_to_save."}) {
    const std::string with_adapter = part + "default.";
    const auto at = name.find(with_adapter);
    if (at != std::string::npos) name.replace(at, with_adapter.size(), part == ".modules_to_save." ? "." : part);
  }
  return name;
}

}  // namespace

void LoraOptions::validate() const {
  if (rank <= 0) throw Error("lora options: rank must be positive, got " + std::to_string(rank));
  if (!(alpha > 0)) throw Error("lora options: alpha must be positive, got " + std::to_string(alpha));
  if (!(dropout >= 0 && dropout < 1)) throw Error("lora options: dropout must be in [0, 1), got " + std::to_string(dropout));
  if (targets.empty() && target_regex.empty()) throw Error("lora options: targets is empty");
  if (!target_regex.empty()) {
    try {
      std::regex check(target_regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw Error("lora options: target_regex '" + target_regex + "' is not a regular expression: " + e.what());
    }
  }
}

std::vector<std::string> apply_lora(RewardModel& model, const LoraOptions& options, std::uint64_t seed) {
  options.validate();
  const auto head_names = model.head_spec().tensor_names();
  const std::set<std::string> head(head_names.begin(), head_names.end());
  const LoraMatch match = with_context("apply_lora", [&] { return match_layers(model, options); });
  for (const auto& [name, layer] : match.adapted) {
    if (layer->has_lora()) throw Error("apply_lora: " + name + " already has an adapter");
  }
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::string> adapted;
  for (const auto& [name, layer] : match.adapted) {
    layer->enable_lora(options.rank, options.alpha, options.dropout, generator);
    adapted.push_back(name);
  }
  for (auto& item : model.named_parameters()) {
    item.value().set_requires_grad(is_adapter_tensor(item.key()) || head.count(item.key()) != 0);
  }
  return adapted;
}

std::int64_t merge_lora(RewardModel& model) {
  std::int64_t merged = 0;
  for (const auto& item : model.named_modules()) {
    auto* layer = item.value()->as<LinearImpl>();
    if (layer == nullptr || !layer->has_lora()) continue;
    layer->merge_lora();
    ++merged;
  }
  for (auto& item : model.named_parameters()) item.value().set_requires_grad(true);
  return merged;
}

void save_lora_adapter(const RewardModel& model, const LoraOptions& options, const std::string& dir,
                       const std::string& base_model) {
  const auto head_names = model.head_spec().tensor_names();
  const std::set<std::string> head(head_names.begin(), head_names.end());
  NamedTensors tensors;
  for (const auto& item : model.named_parameters()) {
    if (is_adapter_tensor(item.key()) || head.count(item.key()) != 0) {
      tensors.emplace_back("base_model.model." + item.key(), item.value().detach());
    }
  }
  if (std::none_of(tensors.begin(), tensors.end(), [](const auto& t) { return is_adapter_tensor(t.first); })) {
    throw Error("save_lora_adapter: the model has no LoRA adapters (apply_lora first)");
  }
  std::filesystem::create_directories(dir);
  save_safetensors(join_path(dir, "adapter_model.safetensors"), tensors);
  std::set<std::string> head_modules;
  for (const auto& n : head_names) head_modules.insert(n.substr(0, n.find('.')));
  nlohmann::ordered_json config = {
      {"peft_type", "LORA"},
      {"task_type", "SEQ_CLS"},
      {"base_model_name_or_path", base_model},
      {"r", options.rank},
      {"lora_alpha", options.alpha},
      {"lora_dropout", options.dropout},
      {"target_modules", options.target_regex.empty() ? nlohmann::ordered_json(options.targets)
                                                       : nlohmann::ordered_json(options.target_regex)},
      {"modules_to_save", std::vector<std::string>(head_modules.begin(), head_modules.end())},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"use_rslora", false},
      {"use_dora", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
  };
  write_file_atomic(join_path(dir, "adapter_config.json"), config.dump(2) + "\n");
}

bool is_lora_adapter_folder(const std::string& dir) {
  return is_directory(dir) && path_exists(join_path(dir, kAdapterConfig)) &&
         !path_exists(join_path(dir, "config.json"));
}

LoraOptions read_lora_config(const std::string& adapter_dir) { return read_adapter_config(adapter_dir).options; }

std::string lora_base_folder(const std::string& adapter_dir, const std::string& base_dir) {
  const char* how = "give the base model's folder (LoadOptions::base_model; openrm-export --base-model-dir)";
  if (!base_dir.empty()) {
    if (!is_directory(base_dir)) {
      throw Error("the base model folder " + base_dir + " of the adapter " + adapter_dir + " does not exist");
    }
    return base_dir;
  }
  const AdapterConfig config = read_adapter_config(adapter_dir);
  const std::string field = config.path + ": field 'base_model_name_or_path'";
  if (config.base_model.empty()) throw Error(field + ": none given; " + how);
  const std::filesystem::path given(config.base_model);
  const std::string path = given.is_absolute()
                               ? config.base_model
                               : (std::filesystem::path(adapter_dir) / given).lexically_normal().string();
  if (is_directory(path)) return path;
  std::string message = field + ": '" + config.base_model + "' is not a folder here";
  if (!given.is_absolute()) message += " (a relative path is read from the adapter folder: " + path + ")";
  message += "; a Hub model id cannot be fetched (openrm downloads nothing): " + std::string(how);
  throw Error(message);
}

namespace {

// Checks the adapter against `model`, then applies it and copies its
// tensors. Returns the model names of the full tensors loaded
// (modules_to_save).
std::set<std::string> load_adapter_into(RewardModel& model, const std::string& adapter_dir) {
  const AdapterConfig config = read_adapter_config(adapter_dir);
  std::string file = join_path(adapter_dir, "adapter_model.safetensors");
  if (!path_exists(file)) {
    const std::string bin = join_path(adapter_dir, "adapter_model.bin");
    if (!path_exists(bin)) {
      throw Error(file + ": no such file (the adapter's weights; " + config.path + " is there)");
    }
    file = bin;
  }
  const WeightStore store = WeightStore::open_file(file);
  // The file's tensors under the model's names.
  std::map<std::string, std::string> stored;
  for (const auto& name : store.names()) {
    const auto model_name = model_name_of(name);
    if (!model_name) throw Error(file + ": tensor " + name + ": expected a name under " + kPrefix + " (PEFT's)");
    if (!stored.emplace(*model_name, name).second) {
      throw Error(file + ": tensors " + stored[*model_name] + " and " + name + " are the same tensor " + *model_name);
    }
  }
  const LoraMatch match = with_context(config.path + ": field 'target_modules'", [&] {
    return match_layers(model, config.options);
  });
  // What must be in the file, with the shape it must have.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected;
  for (const auto& [name, layer] : match.adapted) {
    if (layer->has_lora()) throw Error("load_lora_adapter: " + name + " already has an adapter");
    const auto out = layer->weight.size(0), in = layer->weight.size(1);
    expected.push_back({name + ".lora_A.weight", {config.options.rank, in}});
    expected.push_back({name + ".lora_B.weight", {out, config.options.rank}});
  }
  std::set<std::string> full;
  for (const auto& item : model.named_modules()) {
    if (item.key().empty()) continue;
    const bool saved = std::any_of(config.modules_to_save.begin(), config.modules_to_save.end(),
                                   [&](const std::string& m) { return names_module(item.key(), m); });
    if (!saved) continue;
    for (const auto& p : item.value()->named_parameters()) {
      const std::string name = item.key() + "." + p.key();
      if (is_adapter_tensor(name) || !full.insert(name).second) continue;
      expected.push_back({name, p.value().sizes().vec()});
    }
  }
  std::vector<std::string> problems;
  std::set<std::string> used;
  bool rank_mismatch = false;
  for (const auto& [name, shape] : expected) {
    const auto it = stored.find(name);
    if (it == stored.end()) {
      problems.push_back("missing tensor " + kPrefix + name + " (expected shape " + shape_string(shape) + ")");
      continue;
    }
    used.insert(name);
    const auto& entry = store.entry(it->second);
    if (entry.shape != shape) {
      rank_mismatch = rank_mismatch || is_adapter_tensor(name);
      problems.push_back("tensor " + it->second + ": expected " + shape_string(shape) + ", got " +
                         shape_string(entry.shape));
    } else if (entry.dtype != DType::F32 && entry.dtype != DType::F16 && entry.dtype != DType::BF16 &&
               entry.dtype != DType::F64) {
      problems.push_back("tensor " + it->second + ": dtype " + dtype_name(entry.dtype) + " is not a floating type");
    }
  }
  std::vector<std::string> unused;
  for (const auto& [name, original] : stored) {
    if (!used.count(name)) unused.push_back(original);
  }
  if (!unused.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unused.size() && i < 6; ++i) list += (i ? ", " : "") + unused[i];
    if (unused.size() > 6) list += ", ... (" + std::to_string(unused.size()) + " in all)";
    problems.push_back("tensor(s) that " + config.path + " does not account for (target_modules " +
                       (config.options.target_regex.empty() ? nlohmann::json(config.options.targets).dump()
                                                             : nlohmann::json(config.options.target_regex).dump()) +
                       ", modules_to_save " + nlohmann::json(config.modules_to_save).dump() + "): " + list);
  }
  if (!problems.empty()) {
    std::string message = file + ": ";
    for (std::size_t i = 0; i < problems.size() && i < 4; ++i) message += (i ? "; " : "") + problems[i];
    if (problems.size() > 4) message += "; and " + std::to_string(problems.size() - 4) + " more";
    if (rank_mismatch) message += " (" + config.path + " gives r = " + std::to_string(config.options.rank) + ")";
    throw Error(message);
  }

  apply_lora(model, config.options);
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const auto it = stored.find(item.key());
    if (it == stored.end()) continue;
    item.value().copy_(store.tensor(it->second));
    if (full.count(item.key())) item.value().set_requires_grad(true);
  }
  return full;
}

}  // namespace

void load_lora_adapter(RewardModel& model, const std::string& adapter_dir) { load_adapter_into(model, adapter_dir); }

namespace detail {

std::shared_ptr<RewardModel> load_lora_reward_model(const std::string& adapter_dir, const LoadOptions& options) {
  const std::string base = lora_base_folder(adapter_dir, options.base_model);
  if (is_lora_adapter_folder(base)) {
    throw Error("the base model folder " + base + " of the adapter " + adapter_dir +
                " is itself an adapter folder; merge that one first (openrm-export)");
  }
  LoadOptions base_options = options;
  base_options.base_model.clear();
  // PEFT adapters for sequence classification are often made on a causal
  // LM, whose reward head transformers draws fresh: the adapter then
  // carries the head.
  const ModelConfig base_config = load_model_config(join_path(base, "config.json"));
  const bool causal_lm = ends_with(base_config.architecture, "ForCausalLM");
  auto model = causal_lm ? load_reward_model_from_causal_lm(base, /*seed=*/0, base_options)
                         : load_reward_model(base, base_options);
  const auto loaded = with_context("loading the adapter " + adapter_dir + " onto the base " + base,
                                   [&] { return load_adapter_into(*model, adapter_dir); });
  if (causal_lm) {
    for (const auto& name : model->head_spec().tensor_names()) {
      if (!loaded.count(name)) {
        throw Error("loading the adapter " + adapter_dir + ": the base " + base +
                    " is a causal LM (no reward head), and the adapter holds no " + kPrefix + name +
                    " (modules_to_save)");
      }
    }
  }
  const std::int64_t merged = merge_lora(*model);
  if (!options.pooling) {
    if (const auto pooling = read_model_metadata(adapter_dir).pooling) model->set_pooling(*pooling);
  }
  model->eval();
  log().info("loaded the LoRA adapter {} onto the base {} ({} layers merged)", adapter_dir, base, merged);
  return model;
}

}  // namespace detail

}  // namespace openrm
