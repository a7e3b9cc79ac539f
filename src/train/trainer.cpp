// The Bradley-Terry training loop: data -> batches -> steps -> checkpoints ->
// the output folder. docs/training.md describes the behaviour.
#include "openrm/train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "compat/torch_compat.h"
#include "io/json_util.h"
#include "logging.h"
#include "openrm/data/batching.h"
#include "openrm/error.h"
#include "openrm/eval/evaluate.h"
#include "openrm/eval/report.h"
#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/model_folder.h"
#include "openrm/runtime.h"
#include "openrm/tokenizer/train_tokenizer.h"
#include "openrm/train/losses.h"
#include "openrm/train/optim.h"
#include "openrm/models/lora.h"
#include "openrm/train/distributed.h"
#include "models/blocks.h"
#include "models/registry.h"
#include "train/checkpoint.h"
#include "train/distributed.h"
#include "train/memory_report.h"
#include "train/model_card.h"

namespace openrm {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Options that change the trajectory: a resumed run must match them.
bool affects_trajectory(const std::string& key) {
  static const char* kFree[] = {"output_dir", "resume", "log_every", "threads", "save_every",
                                "keep_checkpoints", "eval_every", "eval_data", "max_bad_steps",
                                "gradient_checkpointing", "dist_timeout", "bucket_mb", "data_license"};
  for (const char* k : kFree) {
    if (key == k) return false;
  }
  return true;
}

struct Setup {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::string tokenizer_source;  // folder or .model file it came from
  ChatFormat chat_format = ChatFormat::kPlain;
  TokenizeOptions tokenize;      // of the training and the evaluation data
  std::shared_ptr<RewardModel> model;
};

std::string init_folder(const TrainOptions& o) {
  return !o.init_model.empty() ? o.init_model : o.init_causal_lm;
}

ModelMetadata init_metadata(const TrainOptions& o) {
  const std::string folder = init_folder(o);
  return folder.empty() ? ModelMetadata{} : read_model_metadata(folder);
}

// The config of the model training starts from, read before the weights.
ModelConfig init_model_config(const TrainOptions& o) {
  return load_model_config(!o.init_config.empty() ? o.init_config : join_path(init_folder(o), "config.json"));
}

std::shared_ptr<const Tokenizer> find_tokenizer(const TrainOptions& o, std::string& source) {
  source = !o.tokenizer.empty() ? o.tokenizer : init_folder(o);
  if (o.tokenizer.empty() && (source.empty() || !has_tokenizer(source))) {
    throw Error("no tokenizer: " + (source.empty() ? std::string("a model made from a config has none")
                                                    : source + " holds none") +
                "; pass one with --tokenizer (a folder, a tokenizer.json or a .model file; openrm-tokenizer trains one)");
  }
  return load_tokenizer(source);
}

ChatFormat choose_chat_format(const TrainOptions& o, const ModelMetadata& init, const Tokenizer& tokenizer) {
  if (!o.chat_format.empty()) return chat_format_from_name(o.chat_format);
  if (init.chat_format) return *init.chat_format;
  return default_chat_format(tokenizer);
}

std::shared_ptr<RewardModel> build_model(const TrainOptions& o, const Tokenizer& tokenizer) {
  LoadOptions load;
  load.device = c10::Device(o.device);
  std::shared_ptr<RewardModel> model;
  if (!o.init_model.empty()) {
    model = load_reward_model(o.init_model, load);
  } else if (!o.init_causal_lm.empty()) {
    model = load_reward_model_from_causal_lm(o.init_causal_lm, o.seed, load);
  } else {
    ModelConfig config = load_model_config(o.init_config);
    if (!config.pad_token_id && tokenizer.special_tokens().pad.present()) {
      config.pad_token_id = tokenizer.special_tokens().pad.id;
    }
    model = with_context(o.init_config, [&] { return create_reward_model(config, load); });
    model->init_weights(o.seed, o.init_std);
  }
  const auto& config = model->config();
  if (config.num_labels != 1) {
    throw Error("the model has num_labels = " + std::to_string(config.num_labels) +
                "; Bradley-Terry training needs a single reward output");
  }
  if (tokenizer.vocab_size() > config.vocab_size) {
    throw Error("the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                " tokens but the model's vocabulary has " + std::to_string(config.vocab_size));
  }
  if (!config.pad_token_id && model->pooling() == Pooling::kRightmostNonPad) {
    // Without a pad id transformers' rule cannot batch; the last token by
    // length is the same token for unpadded sequences.
    model->set_pooling(Pooling::kLastToken);
    log().info("the model config has no pad_token_id: pooling the last token of each sequence");
  }
  return model;
}

LoraOptions lora_options(const TrainOptions& o) {
  LoraOptions l;
  l.rank = o.lora_rank;
  l.alpha = o.lora_alpha;
  l.dropout = o.lora_dropout;
  l.targets = o.lora_targets;
  return l;
}

// --lora-base-bf16: the adapted layers' frozen weights (most of a model's)
// stored in bf16; the adapters, norms, embeddings and head stay fp32.
void keep_adapted_base_in_bf16(RewardModel& model) {
  torch::NoGradGuard no_grad;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    auto* linear = dynamic_cast<LinearImpl*>(m.get());
    if (linear != nullptr && linear->has_lora()) linear->weight.set_data(linear->weight.to(at::kBFloat16));
  }
}

// The base an adapter folder names: the absolute path of the init folder.
std::string lora_base_path(const TrainOptions& o) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(init_folder(o), ec);
  return ec ? init_folder(o) : abs.lexically_normal().string();
}

struct Dataset {
  std::vector<TokenizedPair> pairs;
  TruncationStats truncation;
  ReadStats read;
  std::vector<DataFileSummary> files;
};

Dataset load_dataset(const std::vector<std::string>& paths, const TrainOptions& o, const Tokenizer& tokenizer,
                     const TokenizeOptions& tokenize, bool hash) {
  ReadOptions read;
  read.format = preference_format_from_name(o.data_format);
  read.skip_invalid = o.skip_invalid;
  std::vector<PreferencePair> all;
  Dataset data;
  for (const auto& path : paths) {
    PreferenceData d = read_preferences(path, read);
    DataFileSummary summary{path, hash ? hash_file_logged(path) : "", d.stats.records,
                            static_cast<std::int64_t>(d.pairs.size()), d.stats.skipped_invalid};
    data.files.push_back(summary);
    data.read.lines += d.stats.lines;
    data.read.records += d.stats.records;
    data.read.skipped_invalid += d.stats.skipped_invalid;
    data.read.ranked_records += d.stats.ranked_records;
    data.read.pairs += d.stats.pairs;
    std::move(d.pairs.begin(), d.pairs.end(), std::back_inserter(all));
  }
  TokenizedPairs tokenized = tokenize_pairs(all, tokenizer, tokenize);
  data.pairs = std::move(tokenized.pairs);
  data.truncation = tokenized.stats;
  return data;
}

// A progress line: live on a terminal, a log line every `every` steps otherwise.
class Progress {
 public:
  Progress(std::int64_t total, std::int64_t every, bool shown = true)
      : total_(total), every_(every), tty_(shown && ::isatty(2) == 1), shown_(shown) {}
  void update(std::int64_t step, double loss, double accuracy, double pairs_per_s, double eta_s) {
    char line[256];
    std::snprintf(line, sizeof(line), "step %lld/%lld  loss %.4f  acc %.3f  %.1f pairs/s  ETA %s",
                  static_cast<long long>(step), static_cast<long long>(total_), loss, accuracy, pairs_per_s,
                  format_duration(eta_s).c_str());
    if (tty_) {
      std::fprintf(stderr, "\r%s\x1b[K", line);
      std::fflush(stderr);
      if (step == total_) std::fprintf(stderr, "\n");
    } else if (shown_ && (step % every_ == 0 || step == total_)) {
      log().info("{}", line);
    }
  }
  void interrupt_line() {
    if (tty_) std::fprintf(stderr, "\n");
  }
  static std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    const auto total = static_cast<long long>(s + 0.5);
    char out[32];
    if (total >= 3600) std::snprintf(out, sizeof(out), "%lldh%02lldm", total / 3600, total / 60 % 60);
    else std::snprintf(out, sizeof(out), "%lldm%02llds", total / 60, total % 60);
    return out;
  }

 private:
  std::int64_t total_, every_;
  bool tty_, shown_;
};

// metrics.jsonl: one line per step (and per evaluation). On resume, lines
// past the checkpoint are dropped first so the file matches the trajectory,
// and so is the final evaluation's (an eval line at total_steps: periodic
// ones come before), which the resumed run writes again.
class MetricsLog {
 public:
  MetricsLog(const std::string& path, std::int64_t keep_up_to_step, std::int64_t total_steps) : path_(path) {
    std::string kept;
    if (keep_up_to_step > 0 && path_exists(path)) {
      std::istringstream in(read_text_file(path));
      for (std::string line; std::getline(in, line);) {
        auto j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object()) continue;
        const auto step = j.value("step", std::int64_t{-1});
        if (step <= keep_up_to_step && !(j.contains("eval") && step >= total_steps)) kept += line + "\n";
      }
    }
    write_file_atomic(path, kept);
    out_.open(path, std::ios::app);
    if (!out_) throw Error(path + ": cannot open for appending");
  }
  void write(const Json& j) {
    out_ << j.dump() << "\n";
    out_.flush();
  }

 private:
  std::string path_;
  std::ofstream out_;
};

Json metrics_json(const PreferenceMetrics& m) {
  return {{"pairs", m.pairs},           {"accuracy", m.accuracy},       {"mean_margin", m.mean_margin},
          {"reward_mean", m.reward_mean}, {"reward_std", m.reward_std}, {"loss", m.loss},
          {"ece", m.ece}};
}

// Everything a resumed run needs besides weights and optimizer state.
struct TrainerState {
  std::int64_t step = 0;
  std::int64_t skipped_steps = 0;
  std::int64_t bad_in_a_row = 0;
  Json options;
};

void save_rng(const std::string& path) {
  auto gen = at::detail::getDefaultCPUGenerator();
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state();
  }
  save_safetensors(path, {{"cpu_generator", state}});
}

void load_rng(const std::string& path) {
  auto file = SafetensorsFile::open(path);
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(file->tensor("cpu_generator").clone());
}

void copy_tokenizer_files(const Setup& setup, const std::string& dir) {
  const std::string& src = setup.tokenizer_source;
  if (is_directory(src)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model", "spm.model", "sentencepiece.bpe.model",
                             "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                             "chat_template.jinja"}) {
      const std::string from = join_path(src, name);
      if (path_exists(from)) detail::copy_file_atomic(from, join_path(dir, name));
    }
  } else {
    const bool json_file = setup.tokenizer->backend() == TokenizerBackend::kTokenizerJson;
    detail::copy_file_atomic(src, join_path(dir, json_file ? "tokenizer.json" : "tokenizer.model"));
    write_tokenizer_config(dir, *setup.tokenizer);
  }
}

// What makes a saved model (save_reward_model) a folder that openrm-eval and
// openrm-score use as the trainer did: the tokenizer files and openrm.json
// with the chat format, the effective max_length, the truncation policy and,
// after an evaluation, the reward mean and std.
void write_model_folder_files(const Setup& setup, const PreferenceMetrics* eval, const std::string& dir) {
  ModelMetadata meta = read_model_metadata(dir);  // the pooling save_reward_model wrote
  meta.chat_format = setup.chat_format;
  meta.max_length = setup.tokenize.max_length;
  meta.truncation = setup.tokenize.policy;
  if (eval) {
    meta.other["reward_mean"] = eval->reward_mean;
    meta.other["reward_std"] = eval->reward_std;
  } else {  // an earlier run's would not describe this model
    meta.other.erase("reward_mean");
    meta.other.erase("reward_std");
  }
  write_model_metadata(dir, meta);
  copy_tokenizer_files(setup, dir);
}

// The output folder's report.html (docs/report.md): the final evaluation's
// plots and the training curves of metrics.jsonl. The worst-ranked pairs are
// shown as the model saw them (their tokens decoded, template markup
// included); only those are decoded. The model folder is complete before
// this runs, so a failure here is a warning, not a lost run.
void write_training_report(const TrainOptions& o, const TrainResult& r, const Setup& setup, const Dataset& eval,
                           const std::vector<float>& chosen, const std::vector<float>& rejected) {
  const std::string path = join_path(o.output_dir, "report.html");
  try {
    ReportInputs in;
    in.title = "Reward model training";
    in.model = o.output_dir;
    in.data = o.eval_data;
    in.date = today_utc();
    if (r.has_eval && chosen.size() == eval.pairs.size()) {
      in.metrics = r.eval;
      in.truncation = r.eval_truncation;
      std::vector<std::size_t> order(chosen.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      const std::size_t shown = std::min<std::size_t>(order.size(), static_cast<std::size_t>(in.worst_pairs));
      // The report's own order: largest rejected - chosen first, ties by
      // input order, NaN last.
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                        [&](std::size_t a, std::size_t b) {
                          const double da = rejected[a] - chosen[a], db = rejected[b] - chosen[b];
                          if (std::isnan(da) || std::isnan(db)) return !std::isnan(da) && std::isnan(db);
                          return da != db ? da > db : a < b;
                        });
      in.pairs.resize(chosen.size());
      for (std::size_t i = 0; i < chosen.size(); ++i) {
        ReportPair& p = in.pairs[i];
        p.chosen = chosen[i];
        p.rejected = rejected[i];
        p.chosen_length = static_cast<std::int64_t>(eval.pairs[i].chosen.size());
        p.rejected_length = static_cast<std::int64_t>(eval.pairs[i].rejected.size());
        p.line = eval.pairs[i].line;
      }
      for (std::size_t k = 0; k < shown; ++k) {
        ReportPair& p = in.pairs[order[k]];
        p.chosen_text = setup.tokenizer->decode(eval.pairs[order[k]].chosen);
        p.rejected_text = setup.tokenizer->decode(eval.pairs[order[k]].rejected);
      }
    }
    in.curves = read_training_curves(join_path(o.output_dir, "metrics.jsonl"), /*missing_ok=*/true);
    write_html_report(path, in);
  } catch (const std::exception& e) {
    log().warn("could not write {}: {}", path, e.what());
  }
}

TrainResult train_with(const TrainOptions& options, const Json& options_json, detail::Communicator* comm,
                       Clock::time_point t_start);

}  // namespace

TrainResult train_reward_model(const TrainOptions& given) {
  given.validate();
  const auto t_start = Clock::now();
  const DistributedEnv env = read_distributed_env();
  TrainOptions options = given;
  std::unique_ptr<detail::Communicator> comm;
  if (env.distributed()) {
    // torchrun's conventions: each rank on its own GPU, the machine's cores
    // shared by its ranks.
    if (options.device == "cuda") options.device = "cuda:" + std::to_string(env.local_rank);
    if (options.threads == 0 && env.local_world_size > 1) {
      options.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / env.local_world_size);
    }
    if (env.rank != 0 && log().level() <= spdlog::level::info) log().set_level(spdlog::level::warn);
    comm = std::make_unique<detail::Communicator>(
        env, c10::Device(options.device),
        std::chrono::milliseconds(static_cast<std::int64_t>(options.dist_timeout * 1000.0)));
  }
  try {
    // The options as given: under torchrun the device and threads filled in
    // differ by rank, and a run may resume with another number of ranks.
    return train_with(options, train_options_json(given), comm.get(), t_start);
  } catch (const std::exception& e) {
    if (comm) comm->report_failure(e.what());
    throw;
  }
}

namespace {

TrainResult train_with(const TrainOptions& options, const Json& options_json, detail::Communicator* comm,
                       Clock::time_point t_start) {
  const bool lead = comm == nullptr || comm->rank() == 0;
  const int rank = comm ? comm->rank() : 0;
  const int world = comm ? comm->world_size() : 1;
  set_num_threads(options.threads);
  const std::string ckpt_root = join_path(options.output_dir, "checkpoints");
  {
    std::error_code ec;
    std::filesystem::create_directories(options.output_dir, ec);
    if (ec || !is_directory(options.output_dir)) {
      throw Error(options.output_dir + ": cannot create the output folder" + (ec ? ": " + ec.message() : ""));
    }
  }
  log().info("training options: {}", options_json.dump());
  if (options.lora_rank > 0 && options.init_model.empty() && options.init_causal_lm.empty()) {
    throw Error("training option 'lora_rank': LoRA adapts a trained base model; give --init-model or "
                "--init-causal-lm (a model from --init-config has random weights to adapt)");
  }

  Setup setup;
  setup.tokenizer = find_tokenizer(options, setup.tokenizer_source);
  const ModelMetadata init = init_metadata(options);
  setup.chat_format = choose_chat_format(options, init, *setup.tokenizer);
  // The length rule of train, eval and score; openrm.json records the result,
  // so openrm-eval and openrm-score on the folder cut sequences the same way.
  setup.tokenize.format = setup.chat_format;
  setup.tokenize.max_length = effective_max_length(init_model_config(options), init, options.max_length);
  setup.tokenize.policy = truncation_policy_from_name(options.truncation);
  setup.tokenize.threads = options.threads;
  log().info("tokenizer {} ({} tokens), chat format {}, max_length {}", setup.tokenizer_source,
             setup.tokenizer->vocab_size(), chat_format_name(setup.chat_format), setup.tokenize.max_length);
  // A tokenizer that does not fit the model, found before any data is read.
  const std::string& model_source = !options.init_model.empty()       ? options.init_model
                                    : !options.init_causal_lm.empty() ? options.init_causal_lm
                                                                      : options.init_config;
  check_tokenizer_fits_model(*setup.tokenizer, init_model_config(options), model_source);
  warn_if_chat_format_does_not_fit(setup.chat_format, *setup.tokenizer);

  Dataset train = with_context("training data", [&] {
    return load_dataset(options.data, options, *setup.tokenizer, setup.tokenize, /*hash=*/lead);
  });
  if (train.pairs.empty()) throw Error("no training pairs left after truncation (" + train.truncation.summary() + ")");
  Dataset eval;
  if (!options.eval_data.empty()) {
    eval = with_context("evaluation data", [&] {
      return load_dataset({options.eval_data}, options, *setup.tokenizer, setup.tokenize, /*hash=*/lead);
    });
    // Found now, not when the last step is done.
    if (eval.pairs.empty()) {
      throw Error(options.eval_data + ": no pair left to evaluate (" + eval.truncation.summary() + ")");
    }
  }

  // The micro-batch stream: epoch e's batches come from seed + e, epochs laid
  // end to end. With more pairs than one length bucket holds (batching's
  // bucket_items), the number of batches depends on the seed, so each epoch
  // is placed by its own count.
  // Prefix sharing (causal models): each pair's common prompt runs once.
  // Its batches attend per sequence on every device, so the budget counts
  // the tokens computed, the shared ones once, and no padding.
  // Data where no pair shares a prompt of 16 tokens (shared_prefix_lengths'
  // minimum) keeps the unshared batching (sequences x longest) exactly.
  bool share = options.prefix_sharing && find_architecture(init_model_config(options)).causal;
  std::vector<std::int64_t> shared;
  if (share) {
    shared = shared_prefix_lengths(train.pairs);
    std::int64_t sharing = 0, saved = 0, total = 0;
    for (std::size_t i = 0; i < shared.size(); ++i) {
      sharing += shared[i] > 0 ? 1 : 0;
      saved += shared[i];
      total += static_cast<std::int64_t>(train.pairs[i].chosen.size() + train.pairs[i].rejected.size());
    }
    share = sharing > 0;
    if (share) {
      log().info("prefix sharing: {} of {} pairs share a prompt of >= 16 tokens; {} of {} tokens ({:.1f}%) are "
                 "computed once instead of twice; --max-tokens counts token rows computed "
                 "(--no-prefix-sharing: off)",
                 sharing, train.pairs.size(), saved, total,
                 100.0 * static_cast<double>(saved) / std::max<double>(static_cast<double>(total), 1.0));
    } else {
      shared.clear();
    }
  }
  const auto pair_cost = [&](std::int64_t i) {
    const auto& pair = train.pairs[static_cast<std::size_t>(i)];
    return static_cast<std::int64_t>(pair.chosen.size() + pair.rejected.size()) -
           (share ? shared[static_cast<std::size_t>(i)] : 0);
  };
  BatchingOptions batching;
  batching.max_tokens = options.max_tokens;
  batching.count_padding = !share;
  batching.shuffle = options.shuffle;
  batching.sort_by_length = options.shuffle;  // no shuffle: file order (docs/training.md)
  const auto batches_of_epoch = [&](std::int64_t epoch) {
    BatchingOptions b = batching;
    b.seed = options.seed + static_cast<std::uint64_t>(epoch);
    return make_pair_batches(train.pairs, b, shared);
  };
  std::vector<std::int64_t> epoch_start{0};  // epoch e's micro-batches: [epoch_start[e], epoch_start[e + 1])
  const auto add_epoch = [&] {
    const auto e = static_cast<std::int64_t>(epoch_start.size()) - 1;
    epoch_start.push_back(epoch_start.back() + static_cast<std::int64_t>(batches_of_epoch(e).size()));
  };
  const std::int64_t epochs_placed = options.max_steps > 0 ? 1 : options.epochs;  // max_steps: more as reached
  while (static_cast<std::int64_t>(epoch_start.size()) <= epochs_placed) add_epoch();
  const std::int64_t total_micro =
      options.max_steps > 0 ? options.max_steps * options.grad_accum : epoch_start.back();
  const std::int64_t total_steps = (total_micro + options.grad_accum - 1) / options.grad_accum;
  // Refused before any work (and before --no-resume removes anything): the
  // learning rate would never reach lr, and in a one-step run be 0 throughout.
  if (options.warmup_steps > 0 && options.warmup_steps >= total_steps) {
    throw Error("training option 'warmup_steps': " + std::to_string(options.warmup_steps) +
                " warm-up steps do not fit in this run of " + std::to_string(total_steps) +
                " steps (the learning rate would never reach lr); use fewer, or train longer");
  }
  const auto epoch_of = [&](std::int64_t m) {
    while (epoch_start.back() <= m) add_epoch();
    return static_cast<std::int64_t>(std::upper_bound(epoch_start.begin(), epoch_start.end(), m) -
                                     epoch_start.begin()) - 1;
  };
  // Epochs done after the first m_end micro-batches (m_end >= 1), fractional.
  const auto epochs_done = [&](std::int64_t m_end) {
    const std::int64_t e = epoch_of(m_end - 1);
    const auto start = epoch_start[static_cast<std::size_t>(e)];
    const auto count = epoch_start[static_cast<std::size_t>(e) + 1] - start;
    return static_cast<double>(e) + static_cast<double>(m_end - start) / static_cast<double>(count);
  };
  std::int64_t cached_epoch = -1;
  std::vector<std::vector<std::int64_t>> epoch_batches;
  auto micro_batch = [&](std::int64_t m) -> const std::vector<std::int64_t>& {
    const std::int64_t epoch = epoch_of(m);
    if (epoch != cached_epoch) {
      epoch_batches = batches_of_epoch(epoch);
      cached_epoch = epoch;
    }
    return epoch_batches[static_cast<std::size_t>(m - epoch_start[static_cast<std::size_t>(epoch)])];
  };

  LrSchedule schedule;
  schedule.kind = parse_lr_schedule_kind(options.schedule);
  schedule.warmup_steps = options.warmup_steps;
  schedule.total_steps = total_steps;
  schedule.peak_lr = options.lr;
  schedule.min_lr_ratio = options.min_lr_ratio;
  validate(schedule);

  // Resume, or start fresh. Rank 0 tidies and chooses; the other ranks
  // read the same checkpoint (a shared filesystem, docs/distributed.md).
  if (lead) detail::remove_stale_checkpoint_temps(ckpt_root);
  const auto checkpoints = detail::list_checkpoints(ckpt_root);
  TrainerState state;
  std::string resumed_dir =
      options.resume && !checkpoints.empty() ? checkpoints.back().second : std::string();
  if (comm) resumed_dir = comm->share_from_rank0("resume_from", resumed_dir);
  if (!resumed_dir.empty()) {
    const std::string state_path = join_path(resumed_dir, "trainer_state.json");
    const std::string text = read_text_file(state_path);
    const Json j = detail::parse_json_checked<Json>(text.data(), text.data() + text.size(), state_path,
                                                    detail::JsonParseLimits{});
    state.step = j.at("step").get<std::int64_t>();
    state.skipped_steps = j.at("skipped_steps").get<std::int64_t>();
    state.bad_in_a_row = j.at("bad_in_a_row").get<std::int64_t>();
    const Json& saved = j.at("options");
    // An option newer than the checkpoint counts as having had its default.
    const Json defaults = train_options_json(TrainOptions{});
    for (auto it = options_json.begin(); it != options_json.end(); ++it) {
      const Json was = saved.contains(it.key()) ? saved.at(it.key()) : defaults.value(it.key(), Json());
      if (affects_trajectory(it.key()) && was != it.value()) {
        throw Error("cannot resume from " + resumed_dir + ": option '" + it.key() + "' was " +
                    was.dump() + " and is now " + it.value().dump() +
                    " (use a new --output folder, or --no-resume to start over)");
      }
    }
  } else if (!checkpoints.empty() && lead) {
    // Left in place, the old run's checkpoints would outrank the new run's
    // (pruning keeps the highest steps) and a later resume would pick them.
    log().warn("--no-resume: starting over; removing the {} checkpoint(s) in {}", checkpoints.size(), ckpt_root);
    for (const auto& entry : checkpoints) detail::discard_checkpoint(ckpt_root, entry.second);
  }

  LoadOptions load;
  load.device = c10::Device(options.device);
  const bool lora = options.lora_rank > 0;
  // LoRA: the base from the init folder, the adapters (and head) from the
  // checkpoint on resume.
  setup.model = resumed_dir.empty() || lora ? build_model(options, *setup.tokenizer)
                                            : load_reward_model(resumed_dir, load);
  RewardModel& model = *setup.model;
  if (lora) {
    if (resumed_dir.empty()) {
      const auto adapted = apply_lora(model, lora_options(options), options.seed);
      log().info("LoRA: rank {}, alpha {}, dropout {} on {} layers; the base frozen, the head trained",
                 options.lora_rank, options.lora_alpha, options.lora_dropout, adapted.size());
    } else {
      load_lora_adapter(model, resumed_dir);
    }
    if (options.lora_base_bf16) keep_adapted_base_in_bf16(model);
  }
  set_pair_token_types(model, *setup.tokenizer, setup.chat_format);
  model.set_gradient_checkpointing(options.gradient_checkpointing);
  if (share && !model.causal()) throw Error("internal: prefix sharing planned for a model that is not causal");
  const PoolingRule pooling_rule{model.pooling(), model.config().pad_token_id, model.config().eos_token_ids};
  model.train();
  ParamGroups groups = split_decay_groups(model, options.weight_decay);
  log().info("parameters: {}", groups.summary());
  // Every rank starts from rank 0's weights (as DDP does): a fresh head
  // drawn from the seed is the same anyway, this makes sure.
  std::vector<at::Tensor> trainable;  // in the model's order (the reducer's buckets)
  for (const auto& p : model.parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  if (comm) comm->broadcast_from_rank0(trainable, "sharing rank 0's starting weights");
  const MemoryReport memory = estimate_training_memory(model, options.max_tokens, options.gradient_checkpointing,
                                                         setup.tokenize.max_length);
  log().info("memory: {}", memory.summary());
  AdamWOptions adam;
  adam.lr = options.lr;
  adam.betas = {options.beta1, options.beta2};
  adam.eps = options.eps;
  adam.weight_decay = options.weight_decay;
  auto optimizer = make_adamw(groups, adam);
  std::vector<at::Tensor> params = groups.decay;
  params.insert(params.end(), groups.no_decay.begin(), groups.no_decay.end());
  if (!resumed_dir.empty()) {
    load_optimizer_state(*optimizer, join_path(resumed_dir, "optimizer.pt"));
    load_rng(join_path(resumed_dir, "rng_state.safetensors"));
    log().info("resumed from {} (step {})", resumed_dir, state.step);
  } else {
    torch::manual_seed(options.seed);
  }

  PairLossOptions loss_options;
  loss_options.center_rewards_coefficient = options.center_rewards_coefficient;
  loss_options.use_margin = options.use_margin;
  const bool cuda = model.device().is_cuda();
  std::unique_ptr<detail::GradientReducer> reducer;
  if (comm) reducer = std::make_unique<detail::GradientReducer>(*comm, trainable, options.bucket_mb << 20);
  // LoRA: the model folder is a PEFT adapter folder over the init folder.
  const auto save_model = [&](const std::string& dir) {
    if (lora) save_lora_adapter(model, lora_options(options), dir, lora_base_path(options));
    else save_reward_model(model, dir);
  };
  // A checkpoint is a complete model folder, as the output folder is:
  // openrm-eval and openrm-score on it cut and render as the trainer does.
  // `eval`: the evaluation at its step, if one ran (reward mean and std).
  const auto save_checkpoint = [&](std::int64_t step, const PreferenceMetrics* eval) {
    if (!lead) return;
    detail::write_checkpoint(ckpt_root, step, options.keep_checkpoints, [&](const std::string& dir) {
      save_model(dir);
      write_model_folder_files(setup, eval, dir);
      save_optimizer_state(*optimizer, join_path(dir, "optimizer.pt"));
      save_rng(join_path(dir, "rng_state.safetensors"));
      const Json j = {{"step", step}, {"skipped_steps", state.skipped_steps},
                      {"bad_in_a_row", state.bad_in_a_row}, {"total_steps", total_steps},
                      {"world_size", world}, {"options", options_json}};
      write_file_atomic(join_path(dir, "trainer_state.json"), j.dump(2) + "\n");
    });
    log().info("checkpoint {} written", detail::checkpoint_path(ckpt_root, step));
  };
  // openrm-eval's own batching (EvalOptions' default max_tokens, not the
  // training budget): a sequence's reward depends on its batch in the last
  // bits, so openrm-eval on the folder gives exactly these numbers.
  EvalOptions eval_options;
  eval_options.keep_rewards = false;
  eval_options.share_prefixes = options.prefix_sharing;
  // Data parallel: each rank scores every world-th pair; the rewards are
  // summed into one table, from which every rank computes the metrics.
  // `rewards`: the final evaluation also gives each pair's rewards (for the
  // report), in eval.pairs order.
  const auto run_eval = [&](std::vector<float>* chosen_out = nullptr, std::vector<float>* rejected_out = nullptr) {
    model.eval();
    PreferenceMetrics metrics;
    if (!comm) {
      EvalOptions o = eval_options;
      o.keep_rewards = chosen_out != nullptr;
      const EvalResult r = evaluate(model, eval.pairs, o);
      metrics = r.metrics;
      if (chosen_out) {
        for (const auto& p : r.rewards) {
          chosen_out->push_back(p.chosen);
          rejected_out->push_back(p.rejected);
        }
      }
    } else {
      std::vector<TokenizedPair> mine;
      for (std::size_t i = static_cast<std::size_t>(rank); i < eval.pairs.size(); i += static_cast<std::size_t>(world)) {
        mine.push_back(eval.pairs[i]);
      }
      EvalOptions o = eval_options;
      o.keep_rewards = true;
      const EvalResult r = evaluate(model, mine, o);
      at::Tensor all = at::zeros({2 * static_cast<std::int64_t>(eval.pairs.size())}, at::kDouble);
      auto a = all.accessor<double, 1>();
      for (std::size_t j = 0; j < r.rewards.size(); ++j) {
        const std::size_t i = static_cast<std::size_t>(rank) + j * static_cast<std::size_t>(world);
        a[static_cast<std::int64_t>(2 * i)] = r.rewards[j].chosen;
        a[static_cast<std::int64_t>(2 * i + 1)] = r.rewards[j].rejected;
      }
      comm->all_reduce_sum(all, "the evaluation at step " + std::to_string(state.step));
      std::vector<float> chosen(eval.pairs.size()), rejected(eval.pairs.size());
      for (std::size_t i = 0; i < eval.pairs.size(); ++i) {
        chosen[i] = static_cast<float>(a[static_cast<std::int64_t>(2 * i)]);
        rejected[i] = static_cast<float>(a[static_cast<std::int64_t>(2 * i + 1)]);
      }
      metrics = pair_metrics(eval.pairs, chosen, rejected, eval_options.calibration_bins);
      if (chosen_out) {
        *chosen_out = std::move(chosen);
        *rejected_out = std::move(rejected);
      }
    }
    model.train();
    return metrics;
  };

  std::optional<MetricsLog> metrics_log;
  if (lead) {
    metrics_log.emplace(join_path(options.output_dir, "metrics.jsonl"), resumed_dir.empty() ? 0 : state.step,
                        total_steps);
  }
  const auto write_metrics = [&](const Json& j) {
    if (metrics_log) metrics_log->write(j);
  };
  Progress progress(total_steps, options.log_every, lead);
  const std::int64_t first_step = state.step;
  log().info("training: {} pairs, {} micro-batches in the first epoch, {} steps (grad_accum {}), from step {}",
             train.pairs.size(), epoch_start[1] - epoch_start[0], total_steps, options.grad_accum, first_step);
  const auto t_loop = Clock::now();
  std::int64_t pairs_seen = 0, tokens_seen = 0;
  for (std::int64_t step = first_step; step < total_steps; ++step) {
    const auto t_step = Clock::now();
    const double lr = lr_at(schedule, step);
    set_lr(*optimizer, lr);
    optimizer->zero_grad();
    const std::int64_t m_begin = step * options.grad_accum;
    const std::int64_t m_end = std::min(total_micro, m_begin + options.grad_accum);
    std::int64_t step_pairs = 0;
    for (std::int64_t m = m_begin; m < m_end; ++m) step_pairs += static_cast<std::int64_t>(micro_batch(m).size());
    if (comm) comm->mark("step " + std::to_string(step + 1));

    bool finite = true;
    double loss = 0.0, accuracy = 0.0;
    std::int64_t step_tokens = 0;
    for (std::int64_t m = m_begin; m < m_end && finite; ++m) {
      // Data parallel: this rank's share of the micro-batch (whole pairs,
      // balanced by tokens); the loss keeps the whole step's weights, so
      // the summed gradients are one process's.
      std::vector<std::int64_t> mine;
      if (comm) {
        const auto& all = micro_batch(m);
        std::vector<std::int64_t> tokens;
        for (auto i : all) tokens.push_back(pair_cost(i));
        mine = detail::rank_share(all, tokens, rank, world);
        if (mine.empty()) continue;
        if (m == m_end - 1) reducer->arm();
      }
      const auto& indices = comm ? mine : micro_batch(m);
      std::vector<float> margins;
      for (auto i : indices) margins.push_back(static_cast<float>(train.pairs[static_cast<std::size_t>(i)].margin));
      at::Tensor rewards;  // (2P, 1): chosen_0, rejected_0, ...
      std::int64_t batch_tokens = 0;
      {
        compat::CudaAutocastGuard autocast(cuda && options.dtype == "bf16", at::kBFloat16);
        if (share) {
          const SharedPairBatch b = pack_shared_pairs(train.pairs, indices, shared, pooling_rule);
          rewards = model.forward_rows(b.packed, b.rows);
          batch_tokens = b.tokens;
        } else {
          const PackedBatch packed = pack_pairs(train.pairs, indices).to(model.device());
          rewards = model.forward(packed);
          batch_tokens = packed.num_tokens();
        }
      }
      const PairLoss pl = compute_pair_loss(rewards.reshape({-1}).to(at::kFloat),
                                            torch::tensor(margins).to(model.device()), loss_options);
      const double weight = static_cast<double>(indices.size()) / static_cast<double>(step_pairs);
      const double value = pl.loss.item<double>();
      if (!std::isfinite(value)) {
        finite = false;
        break;
      }
      (pl.loss * weight).backward();
      loss += value * weight;
      accuracy += pl.accuracy.item<double>() * weight;
      step_tokens += batch_tokens;
    }
    if (comm) {
      at::Tensor stats = torch::tensor({loss, accuracy, static_cast<double>(step_tokens), finite ? 0.0 : 1.0},
                                       at::kDouble);
      reducer->finish(stats, "the gradient all-reduce of step " + std::to_string(step + 1));
      loss = stats[0].item<double>();
      accuracy = stats[1].item<double>();
      step_tokens = static_cast<std::int64_t>(stats[2].item<double>());
      finite = stats[3].item<double>() == 0.0;
    }
    double grad_norm = std::numeric_limits<double>::quiet_NaN();
    if (finite) finite = grads_finite(params);
    if (finite) {
      grad_norm = clip_grad_norm(params, options.max_grad_norm);
      optimizer->step();
      state.bad_in_a_row = 0;
    } else {
      optimizer->zero_grad();
      ++state.skipped_steps;
      ++state.bad_in_a_row;
      progress.interrupt_line();
      log().warn("step {}: non-finite loss or gradient; step skipped ({} in a row)", step + 1, state.bad_in_a_row);
    }
    state.step = step + 1;
    pairs_seen += step_pairs;
    tokens_seen += step_tokens;
    const double step_seconds = seconds_since(t_step);
    const double elapsed = seconds_since(t_loop);
    write_metrics({{"step", state.step}, {"epoch", epochs_done(m_end)},
                   {"loss", finite ? Json(loss) : Json()}, {"accuracy", finite ? Json(accuracy) : Json()},
                   {"lr", lr}, {"grad_norm", std::isfinite(grad_norm) ? Json(grad_norm) : Json()},
                   {"pairs", step_pairs}, {"tokens_per_s", static_cast<double>(step_tokens) / step_seconds},
                   {"skipped", !finite}, {"peak_memory_bytes", peak_memory_bytes(model.device())}});
    if (state.bad_in_a_row >= options.max_bad_steps) {  // after the metrics line: it records the step too
      const auto kept = detail::list_checkpoints(ckpt_root);
      throw Error("stopping at step " + std::to_string(state.step) + ": " + std::to_string(state.bad_in_a_row) +
                  " steps in a row had a non-finite loss or gradient (is the learning rate too high?); " +
                  (kept.empty() ? std::string("no checkpoint was written")
                                : "the last good checkpoint is " + kept.back().second));
    }
    const double steps_per_s = static_cast<double>(state.step - first_step) / elapsed;
    progress.update(state.step, loss, accuracy, static_cast<double>(pairs_seen) / elapsed,
                    static_cast<double>(total_steps - state.step) / steps_per_s);
    std::optional<PreferenceMetrics> eval_now;
    if (options.eval_every > 0 && state.step % options.eval_every == 0 && !eval.pairs.empty() &&
        state.step < total_steps) {
      eval_now = run_eval();
      const PreferenceMetrics& m = *eval_now;
      write_metrics({{"step", state.step}, {"eval", metrics_json(m)}});
      progress.interrupt_line();
      log().info("eval at step {}: accuracy {:.4f}, loss {:.4f}, mean margin {:.4f}", state.step, m.accuracy,
                 m.loss, m.mean_margin);
    }
    if (options.save_every > 0 && state.step % options.save_every == 0 && state.step < total_steps) {
      save_checkpoint(state.step, eval_now ? &*eval_now : nullptr);
    }
  }
  const double loop_seconds = seconds_since(t_loop);

  // A degenerate run fails before its final checkpoint, which would prune
  // an older one, and before the output folder.
  const auto kept_checkpoint = [&] {
    const auto kept = detail::list_checkpoints(ckpt_root);
    return kept.empty() ? std::string("no checkpoint was written")
                        : "the last good checkpoint is " + kept.back().second;
  };
  if (2 * state.skipped_steps > state.step) {
    throw Error(std::to_string(state.skipped_steps) + " of the " + std::to_string(state.step) +
                " steps were skipped for a non-finite loss or gradient, so the model learned from few of its "
                "pairs (is the learning rate too high?); no final model was written; " + kept_checkpoint());
  }

  TrainResult result;
  result.steps = state.step;
  result.skipped_steps = state.skipped_steps;
  result.resumed_from = resumed_dir.empty() ? -1 : first_step;
  result.train_pairs = static_cast<std::int64_t>(train.pairs.size());
  result.pairs_per_second = loop_seconds > 0 ? static_cast<double>(pairs_seen) / loop_seconds : 0.0;
  result.tokens_per_second = loop_seconds > 0 ? static_cast<double>(tokens_seen) / loop_seconds : 0.0;
  result.train_truncation = train.truncation;
  result.eval_truncation = eval.truncation;
  result.train_read = train.read;
  result.output_dir = options.output_dir;
  result.max_length = setup.tokenize.max_length;
  std::vector<float> final_chosen, final_rejected;  // the final evaluation's rewards
  if (!eval.pairs.empty()) {
    result.has_eval = true;
    result.eval = run_eval(&final_chosen, &final_rejected);
    write_metrics({{"step", state.step}, {"eval", metrics_json(result.eval)}});
    const PreferenceMetrics& m = result.eval;
    if (m.non_finite > 0 || !(m.reward_std > 0)) {
      throw Error("the final evaluation on " + options.eval_data + " gives " +
                  (m.non_finite > 0 ? std::to_string(m.non_finite) + " of its " + std::to_string(m.pairs) +
                                          " pairs a non-finite reward"
                                    : "all " + std::to_string(2 * m.pairs) + " sequences the same reward, " +
                                          std::to_string(m.reward_mean)) +
                  ": the model does not tell responses apart; no final model was written; " + kept_checkpoint());
    }
  }
  if (first_step < total_steps || checkpoints.empty() || !options.resume) {
    save_checkpoint(total_steps, result.has_eval ? &result.eval : nullptr);
  }

  // The output folder: the model, its tokenizer, openrm.json, the card;
  // rank 0 writes it while the others wait (their exit says the job is done).
  if (!lead) {
    comm->barrier("waiting for rank 0 to write " + options.output_dir);
    return result;
  }
  model.eval();
  save_model(options.output_dir);
  write_model_folder_files(setup, result.has_eval ? &result.eval : nullptr, options.output_dir);
  write_file_atomic(join_path(options.output_dir, "training_config.json"), options_json.dump(2) + "\n");
  ModelCardInputs card;
  card.options = options;
  card.result = result;
  card.train_files = train.files;
  card.eval_files = eval.files;
  card.train_stats = training_pair_stats(train.pairs);
  card.model = &model;
  card.chat_format = chat_format_name(setup.chat_format);
  card.tokenizer = setup.tokenizer_source;
  card.world_size = world;
  add_card_lineage(card);  // hashes the init folder's weights
  card.wall_seconds = seconds_since(t_start);
  // A resumed run that took no step wrote the weights an earlier card's
  // appended evaluations measured; they stay. Otherwise they are kept aside.
  write_training_card(options.output_dir, make_model_card(card),
                      /*same_model=*/result.resumed_from >= 0 && result.resumed_from == result.steps);
  write_training_report(options, result, setup, eval, final_chosen, final_rejected);
  log().info("wrote {} ({} steps, {:.1f} pairs/s)", options.output_dir, result.steps, result.pairs_per_second);
  if (comm) comm->barrier("the end of the run");
  return result;
}

}  // namespace
}  // namespace openrm
