// openrm-train: trains a reward model on preference pairs (Bradley-Terry).
//
//   openrm-train --data FILE [--data FILE...] [--eval-data FILE] --output DIR
//                (--init-model DIR | --init-causal-lm DIR | --init-config config.json)
//                [--tokenizer PATH] [--config FILE.json] [options]
//
// --config reads the same options from a JSON object whose keys are the
// option names with '_' for '-' (training_config.json in a trained folder is
// such a file); flags given on the command line override it. An --output
// folder that exists and is not empty must be an openrm run (resumed), unless
// --overwrite-output-dir; one that is or holds an input is refused.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/logging.h"
#include "openrm/runtime.h"
#include "openrm/train/distributed.h"
#include "openrm/train/trainer.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-train";

// The --config value, found before the real parse so that its values become
// the defaults the flags override.
std::string find_config_path(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) return argv[i + 1];
    if (arg.rfind("--config=", 0) == 0) return arg.substr(9);
  }
  return "";
}

void add_options(CLI::App& app, openrm::TrainOptions& o, std::string& config_path, bool& no_resume,
                 bool& no_prefix_sharing, std::string& log_level) {
  app.add_option("--config", config_path, "JSON file of options (flags override it)");
  app.add_option("--data", o.data, "training preference file(s), .jsonl or .jsonl.gz");
  app.add_option("--eval-data", o.eval_data, "held-out preference file");
  app.add_option("--output", o.output_dir, "folder to write the model into");
  app.add_option("--init-model", o.init_model, "start from this reward-model folder");
  app.add_option("--init-causal-lm", o.init_causal_lm, "start from this causal-LM folder (new score head)");
  app.add_option("--init-config", o.init_config, "start from random weights of this config.json");
  app.add_option("--tokenizer", o.tokenizer, "tokenizer folder, tokenizer.json or .model file (default: the init folder's)");
  app.add_option("--init-std", o.init_std, "std of fresh weights (--init-config)")->capture_default_str();
  app.add_flag("--skip-invalid", o.skip_invalid, "skip and count invalid records instead of stopping");
  app.add_option("--data-format", o.data_format, "auto, plain, conversational, hh or ranked")->capture_default_str();
  app.add_option("--data-license", o.data_license,
                 "the data's licence for the model card, e.g. cc-by-4.0 (recorded, not checked; default: not stated)");
  app.add_option("--chat-format", o.chat_format, "chat format (default: the model folder's or tokenizer's)");
  app.add_option("--max-length", o.max_length,
                 "tokens per sequence (default: the --init-model folder's, openrm.json, else 2048; 0: as many as "
                 "the model takes; never above max_position_embeddings)");
  app.add_option("--truncation", o.truncation, "truncate or drop over-long pairs")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of initialisation and batch order")->capture_default_str();
  app.add_option("--shuffle", o.shuffle, "shuffle pairs each epoch (true/false; false: file order)")
      ->capture_default_str();
  app.add_option("--lr", o.lr, "peak learning rate")->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay")->capture_default_str();
  app.add_option("--beta1", o.beta1, "AdamW beta1")->capture_default_str();
  app.add_option("--beta2", o.beta2, "AdamW beta2")->capture_default_str();
  app.add_option("--eps", o.eps, "AdamW epsilon")->capture_default_str();
  app.add_option("--schedule", o.schedule, "cosine, linear or constant after warm-up")->capture_default_str();
  app.add_option("--warmup-steps", o.warmup_steps, "linear warm-up steps")->capture_default_str();
  app.add_option("--min-lr-ratio", o.min_lr_ratio, "final lr as a fraction of --lr")->capture_default_str();
  app.add_option("--epochs", o.epochs, "passes over the data")->capture_default_str();
  app.add_option("--max-steps", o.max_steps, "optimizer steps (0: from --epochs)")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "token budget of a micro-batch")->capture_default_str();
  app.add_option("--grad-accum", o.grad_accum, "micro-batches per optimizer step")->capture_default_str();
  app.add_option("--max-grad-norm", o.max_grad_norm, "gradient clipping (0: none)")->capture_default_str();
  app.add_option("--center-rewards-coefficient", o.center_rewards_coefficient, "reward centering weight")
      ->capture_default_str();
  app.add_option("--use-margin", o.use_margin, "use the data's per-pair margin (true/false)")->capture_default_str();
  app.add_flag("--gradient-checkpointing", o.gradient_checkpointing,
               "recompute layer activations in backward (less memory, ~1 extra forward)");
  app.add_flag("--no-prefix-sharing", no_prefix_sharing,
               "run each side of a pair whole (default: the prompt both sides share runs once)");
  app.add_option("--lora-rank", o.lora_rank, "train LoRA adapters of this rank, the base frozen (0: every weight)")
      ->capture_default_str();
  app.add_option("--lora-alpha", o.lora_alpha, "LoRA scaling alpha (the adapters are scaled by alpha / rank)")
      ->capture_default_str();
  app.add_option("--lora-dropout", o.lora_dropout, "dropout on the LoRA adapters' input")->capture_default_str();
  app.add_option("--lora-targets", o.lora_targets, "layers to adapt, by name (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_flag("--lora-base-bf16", o.lora_base_bf16, "keep the frozen base weights in bf16 (LoRA only)");
  app.add_option("--dist-timeout", o.dist_timeout,
                 "data parallel: seconds a rank waits for the others before it stops")
      ->capture_default_str();
  app.add_option("--bucket-mb", o.bucket_mb, "data parallel: gradient all-reduce bucket size in MiB")
      ->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "evaluate every N steps (0: at the end)")->capture_default_str();
  app.add_option("--save-every", o.save_every, "checkpoint every N steps (0: at the end)")->capture_default_str();
  app.add_option("--keep-checkpoints", o.keep_checkpoints, "checkpoints kept")->capture_default_str();
  app.add_flag("--no-resume", no_resume, "start over even if the output folder has checkpoints");
  app.add_option("--max-bad-steps", o.max_bad_steps, "non-finite steps in a row before stopping")
      ->capture_default_str();
  app.add_option("--log-every", o.log_every, "progress line every N steps")->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: all)")->capture_default_str();
  app.add_option("--device", o.device, "cpu or cuda[:N]")->capture_default_str();
  app.add_option("--dtype", o.dtype, "fp32, or bf16 (CUDA autocast)")->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn, error or off")->capture_default_str();
}

// Before any work: the output folder must not be or hold an input, and one
// that exists and is not empty must be an openrm run (what openrm-train
// writes there), unless --overwrite-output-dir. The run's own
// training_config.json given as --config (how a run is resumed) is read
// whole before the run, which rewrites it.
void check_output_dir(const openrm::TrainOptions& o, const std::string& config, bool overwrite) {
  std::vector<std::string> inputs = o.data;
  for (const auto& data : o.data) {
    if (openrm::is_directory(data)) throw openrm::Error(data + ": is a directory, not a file");
  }
  inputs.insert(inputs.end(), {o.eval_data, o.init_model, o.init_causal_lm, o.init_config, o.tokenizer});
  if (!openrm::same_file(config, openrm::join_path(o.output_dir, "training_config.json"))) inputs.push_back(config);
  openrm::OutputFolderRules rules;
  rules.markers = {"checkpoints", "training_config.json", "openrm.json", "metrics.jsonl"};
  rules.kind = "an openrm run";
  rules.overwrite = overwrite;
  openrm::check_output_folder(o.output_dir, inputs, rules);
}

}  // namespace

int main(int argc, char** argv) {
  openrm::TrainOptions options;
  const std::string config_from_argv = find_config_path(argc, argv);
  try {
    if (!config_from_argv.empty()) {
      const std::string text = openrm::read_text_file(config_from_argv);
      nlohmann::json json;
      try {
        json = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        throw openrm::Error(config_from_argv + ": malformed JSON: " + e.what());
      }
      openrm::apply_train_options_json(options, json, config_from_argv);
    }
  } catch (const std::exception& e) {
    std::cerr << kTool << ": error: " << e.what() << "\n";
    return 1;
  }
  CLI::App app{"Train a reward model on preference pairs (Bradley-Terry)."};
  std::string config_path;
  bool no_resume = false;
  bool no_prefix_sharing = false;
  bool overwrite_output_dir = false;
  std::string log_level = "info";
  add_options(app, options, config_path, no_resume, no_prefix_sharing, log_level);
  app.add_flag("--overwrite-output-dir", overwrite_output_dir,
               "write into an --output folder that is not empty and not an openrm run");
  openrm::tools::group_options(
      app, {{"Input", {"--config", "--data", "--eval-data", "--data-format", "--skip-invalid", "--data-license"}},
            {"Model", {"--init-model", "--init-causal-lm", "--init-config", "--init-std", "--tokenizer",
                       "--chat-format", "--max-length", "--truncation"}},
            {"Output", {"--output", "--overwrite-output-dir", "--save-every", "--keep-checkpoints", "--no-resume",
                        "--log-every"}},
            {"Training", {"--seed", "--shuffle", "--lr", "--weight-decay", "--beta1", "--beta2", "--eps",
                          "--schedule", "--warmup-steps", "--min-lr-ratio", "--epochs", "--max-steps",
                          "--grad-accum", "--max-grad-norm", "--center-rewards-coefficient", "--use-margin",
                          "--eval-every", "--max-bad-steps", "--lora-rank", "--lora-alpha", "--lora-dropout",
                          "--lora-targets", "--lora-base-bf16"}},
            {"Performance", {"--max-tokens", "--no-prefix-sharing", "--gradient-checkpointing", "--threads", "--device", "--dtype",
                             "--dist-timeout", "--bucket-mb"}},
            {"Other", {"--log-level"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] {
    openrm::set_log_level(openrm::parse_log_level(log_level));
    if (no_resume) options.resume = false;
    if (no_prefix_sharing) options.prefix_sharing = false;
    options.validate();
    openrm::tools::warn_if_too_many_threads(kTool, options.threads);
    openrm::check_device(options.device);
    check_output_dir(options, config_from_argv, overwrite_output_dir);
    // Under torchrun every rank runs this; rank 0 speaks for the job.
    const bool rank0 = openrm::read_distributed_env().rank == 0;
    if (rank0) {
      std::cout << kTool << ": effective configuration:\n"
                << openrm::train_options_json(options).dump(2) << std::endl;
    }
    const openrm::TrainResult r = openrm::train_reward_model(options);
    if (!rank0) return;
    std::cout << kTool << ": wrote " << r.output_dir << " after " << r.steps << " steps ("
              << r.skipped_steps << " skipped), " << r.train_pairs << " training pairs";
    if (r.has_eval) {
      std::cout << "; held-out accuracy " << r.eval.accuracy << " on " << r.eval.pairs << " pairs";
    }
    std::cout << "\n";
  });
}
