// TrainOptions: validation and the JSON form (--config files, training_config.json).
#include <cmath>
#include <optional>
#include <type_traits>

#include "openrm/error.h"
#include "openrm/train/optim.h"
#include "openrm/train/trainer.h"

namespace openrm {
namespace {

using Json = nlohmann::json;

// One table drives both directions of the JSON form, so a new field cannot be
// printed but not read, or the other way round.
template <typename Visitor>
void visit_fields(TrainOptions& o, Visitor&& v) {
  v("data", o.data);
  v("eval_data", o.eval_data);
  v("skip_invalid", o.skip_invalid);
  v("data_format", o.data_format);
  v("chat_format", o.chat_format);
  v("max_length", o.max_length);
  v("truncation", o.truncation);
  v("data_license", o.data_license);
  v("init_model", o.init_model);
  v("init_causal_lm", o.init_causal_lm);
  v("init_config", o.init_config);
  v("tokenizer", o.tokenizer);
  v("init_std", o.init_std);
  v("seed", o.seed);
  v("shuffle", o.shuffle);
  v("lr", o.lr);
  v("weight_decay", o.weight_decay);
  v("beta1", o.beta1);
  v("beta2", o.beta2);
  v("eps", o.eps);
  v("schedule", o.schedule);
  v("warmup_steps", o.warmup_steps);
  v("min_lr_ratio", o.min_lr_ratio);
  v("epochs", o.epochs);
  v("max_steps", o.max_steps);
  v("max_tokens", o.max_tokens);
  v("grad_accum", o.grad_accum);
  v("max_grad_norm", o.max_grad_norm);
  v("center_rewards_coefficient", o.center_rewards_coefficient);
  v("use_margin", o.use_margin);
  v("gradient_checkpointing", o.gradient_checkpointing);
  v("prefix_sharing", o.prefix_sharing);
  v("lora_rank", o.lora_rank);
  v("lora_alpha", o.lora_alpha);
  v("lora_dropout", o.lora_dropout);
  v("lora_targets", o.lora_targets);
  v("lora_base_bf16", o.lora_base_bf16);
  v("dist_timeout", o.dist_timeout);
  v("bucket_mb", o.bucket_mb);
  v("output_dir", o.output_dir);
  v("eval_every", o.eval_every);
  v("save_every", o.save_every);
  v("keep_checkpoints", o.keep_checkpoints);
  v("resume", o.resume);
  v("max_bad_steps", o.max_bad_steps);
  v("log_every", o.log_every);
  v("threads", o.threads);
  v("device", o.device);
  v("dtype", o.dtype);
}

const char* type_name(const std::string&) { return "a string"; }
const char* type_name(const std::vector<std::string>&) { return "a list of strings"; }
const char* type_name(bool) { return "true or false"; }
const char* type_name(double) { return "a number"; }
const char* type_name(std::int64_t) { return "an integer"; }
const char* type_name(std::uint64_t) { return "a non-negative integer"; }
const char* type_name(int) { return "an integer"; }
const char* type_name(const std::optional<std::int64_t>&) { return "an integer or null"; }

template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

template <typename T>
bool json_has_type(const Json& j) {
  if constexpr (std::is_same_v<T, std::string>) return j.is_string();
  else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    if (!j.is_array()) return false;
    for (const auto& e : j) if (!e.is_string()) return false;
    return true;
  } else if constexpr (std::is_same_v<T, bool>) return j.is_boolean();
  else if constexpr (std::is_same_v<T, double>) return j.is_number();
  else if constexpr (std::is_same_v<T, std::uint64_t>) return j.is_number_unsigned();
  else if constexpr (is_optional<T>::value) return j.is_null() || j.is_number_integer();
  else return j.is_number_integer();
}

void check(bool ok, const std::string& field, const std::string& message) {
  if (!ok) throw Error("training option '" + field + "': " + message);
}

}  // namespace

void TrainOptions::validate() const {
  check(!data.empty(), "data", "at least one training file is required");
  const int inits = !init_model.empty() + !init_causal_lm.empty() + !init_config.empty();
  check(inits == 1, "init_model", "give exactly one of init_model, init_causal_lm, init_config (got " +
                                      std::to_string(inits) + ")");
  check(!output_dir.empty(), "output_dir", "an output folder is required");
  with_context("training option 'data_format'", [&] { return preference_format_from_name(data_format); });
  if (!chat_format.empty()) {
    with_context("training option 'chat_format'", [&] { return chat_format_from_name(chat_format); });
  }
  with_context("training option 'truncation'", [&] { return truncation_policy_from_name(truncation); });
  // One line of the model card and of training_config.json (UTF-8 JSON).
  bool printable = data_license.size() <= 200;
  for (char c : data_license) printable = printable && (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  check(printable, "data_license", "expected a licence id such as cc-by-4.0: one line of at most 200 printable "
                                   "characters");
  try {
    (void)Json(data_license).dump();
  } catch (const nlohmann::json::exception&) {
    check(false, "data_license", "is not valid UTF-8");
  }
  with_context("training option 'schedule'", [&] { return parse_lr_schedule_kind(schedule); });
  check(!max_length || *max_length >= 0, "max_length", "must be >= 0 (0: as many tokens as the model takes)");
  check(std::isfinite(lr) && lr > 0, "lr", "must be a finite number > 0 (a zero learning rate trains nothing)");
  check(std::isfinite(weight_decay) && weight_decay >= 0, "weight_decay", "must be >= 0");
  check(beta1 >= 0 && beta1 < 1, "beta1", "must be in [0, 1)");
  check(beta2 >= 0 && beta2 < 1, "beta2", "must be in [0, 1)");
  check(eps > 0, "eps", "must be > 0");
  check(warmup_steps >= 0, "warmup_steps", "must be >= 0");
  check(min_lr_ratio >= 0 && min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]");
  check(epochs >= 1, "epochs", "must be >= 1");
  check(max_steps >= 0, "max_steps", "must be >= 0");
  // The learning rate would never reach lr, and with one step be 0 throughout.
  check(max_steps == 0 || warmup_steps < max_steps, "warmup_steps",
        std::to_string(warmup_steps) + " warm-up steps do not fit in a run of max_steps = " +
            std::to_string(max_steps) + " (the learning rate would never reach lr); use fewer");
  check(max_tokens >= 1, "max_tokens", "must be >= 1");
  check(grad_accum >= 1, "grad_accum", "must be >= 1");
  check(max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0: no clipping)");
  check(center_rewards_coefficient >= 0, "center_rewards_coefficient", "must be >= 0");
  check(eval_every >= 0, "eval_every", "must be >= 0");
  check(save_every >= 0, "save_every", "must be >= 0");
  check(keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1");
  check(max_bad_steps >= 1, "max_bad_steps", "must be >= 1");
  check(log_every >= 1, "log_every", "must be >= 1");
  check(init_std > 0, "init_std", "must be > 0");
  check(lora_rank >= 0, "lora_rank", "must be >= 0 (0: no LoRA, every weight trained)");
  if (lora_rank > 0) {
    check(std::isfinite(lora_alpha) && lora_alpha > 0, "lora_alpha", "must be a finite number > 0");
    check(lora_dropout >= 0 && lora_dropout < 1, "lora_dropout", "must be in [0, 1)");
    check(!lora_targets.empty(), "lora_targets", "name at least one layer kind (e.g. q_proj)");
  }
  check(!lora_base_bf16 || lora_rank > 0, "lora_base_bf16", "applies to LoRA training only (set lora_rank)");
  check(std::isfinite(dist_timeout) && dist_timeout >= 1, "dist_timeout", "must be >= 1 second");
  check(bucket_mb >= 1, "bucket_mb", "must be >= 1 (MiB)");
  check(dtype == "fp32" || dtype == "bf16", "dtype", "must be fp32 or bf16, got '" + dtype + "'");
  check(dtype == "fp32" || device.rfind("cuda", 0) == 0, "dtype",
        "bf16 training runs under CUDA autocast; on CPU use fp32");
}

Json train_options_json(const TrainOptions& options) {
  Json j = Json::object();
  TrainOptions copy = options;
  visit_fields(copy, [&](const char* name, auto& value) {
    using T = std::decay_t<decltype(value)>;
    if constexpr (is_optional<T>::value) {
      j[name] = value ? Json(*value) : Json();
    } else {
      j[name] = value;
    }
  });
  return j;
}

void apply_train_options_json(TrainOptions& options, const Json& json, const std::string& source) {
  if (!json.is_object()) throw Error(source + ": expected a JSON object of training options");
  std::size_t known = 0;
  visit_fields(options, [&](const char* name, auto& value) {
    using T = std::decay_t<decltype(value)>;
    auto it = json.find(name);
    if (it == json.end()) return;
    ++known;
    if (!json_has_type<T>(*it)) {
      throw Error(source + ": field '" + name + "': expected " + type_name(T{}) + ", got " + it->dump());
    }
    if constexpr (is_optional<T>::value) {
      value = it->is_null() ? T() : T(it->template get<typename T::value_type>());
    } else {
      value = it->template get<T>();
    }
  });
  if (known != json.size()) {
    TrainOptions probe;
    std::string unknown;
    for (auto it = json.begin(); it != json.end(); ++it) {
      bool found = false;
      visit_fields(probe, [&](const char* name, auto&) { found = found || it.key() == name; });
      if (!found) unknown += (unknown.empty() ? "" : ", ") + it.key();
    }
    throw Error(source + ": unknown field(s): " + unknown + " (see openrm-train --help for the names)");
  }
}

}  // namespace openrm
