// openrm-export: a Hugging Face folder (config.json with a pad_token_id,
// safetensors, tokenizer files with the chat template, openrm.json, a model
// card) from an openrm model folder, trainer checkpoint, training output or
// PEFT LoRA adapter folder (merged onto its base).
//
//   openrm-export --model DIR --output DIR [--dtype keep|fp32|bf16|fp16]
//                 [--max-shard-size 5GB] [--force] [--overwrite-output-dir] [--tokenizer PATH]
//                 [--base-model-dir DIR] [--pad-token-id N] [--license ID] [--base-model ID]
//                 [--log-level LEVEL]
//
// The folder is written beside the output and renamed into place; an
// output folder that is or holds the input is refused, and so is a non-empty
// one that is not an openrm folder (unless --overwrite-output-dir).
// docs/export.md describes it.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/logging.h"
#include "openrm/train/export.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-export";

struct ExportCommand {
  std::string model;
  std::string output;
  std::string dtype = "keep";
  std::string max_shard_size = "5GB";
  bool force = false;
  bool overwrite_output_dir = false;
  std::string tokenizer;
  std::int64_t pad_token_id = -1;
  std::string license;
  std::string base_model;
  std::string base_model_dir;
  std::string log_level = "info";
};

void run_export(const ExportCommand& cmd) {
  openrm::set_log_level(openrm::parse_log_level(cmd.log_level));
  openrm::ExportOptions options;
  options.model_dir = cmd.model;
  options.output_dir = cmd.output;
  options.dtype = openrm::parse_export_dtype(cmd.dtype);
  options.max_shard_bytes =
      openrm::with_context("--max-shard-size", [&] { return openrm::parse_byte_size(cmd.max_shard_size); });
  options.overwrite = cmd.force || cmd.overwrite_output_dir;
  // Before any work: the output folder must not be or hold what the export
  // reads, and a non-empty one must be an openrm folder (an earlier export,
  // a training run), whose replacing --force allows.
  openrm::OutputFolderRules rules;
  rules.markers = {"openrm.json"};
  rules.kind = "an openrm model folder";
  rules.overwrite = cmd.overwrite_output_dir;
  openrm::check_output_folder(cmd.output, {cmd.model, cmd.tokenizer, cmd.base_model_dir}, rules);
  options.tokenizer = cmd.tokenizer;
  if (cmd.pad_token_id >= 0) options.pad_token_id = cmd.pad_token_id;
  options.license = cmd.license;
  options.base_model = cmd.base_model;
  options.base_model_dir = cmd.base_model_dir;
  const openrm::ExportResult r = openrm::export_model(options);
  std::cout << kTool << ": wrote " << r.output_dir << " from " << r.source << ": " << r.tensors << " tensors ("
            << r.dtype << ", " << r.weight_bytes << " bytes), pad_token_id " << r.pad_token_id << ", chat format "
            << r.chat_format << (r.chat_template ? " (with its chat_template)" : " (no chat_template)") << "\n";
  for (const auto& file : r.files) std::cout << "  " << file << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  ExportCommand cmd;
  CLI::App app{"Export an openrm model, checkpoint, training output or LoRA adapter as a Hugging Face folder."};
  app.add_option("--model", cmd.model,
                 "model folder, trainer checkpoint, training output folder or LoRA adapter folder")
      ->required();
  app.add_option("--output", cmd.output, "folder to write (must not exist or be empty, unless --force)")
      ->required();
  app.add_option("--dtype", cmd.dtype, "dtype of the exported weights")
      ->capture_default_str()
      ->check(CLI::IsMember({"keep", "fp32", "bf16", "fp16"}));
  app.add_option("--max-shard-size", cmd.max_shard_size,
                 "shard the weights past this size (e.g. 500MB, 2GB, 5GiB; 0: one file)")
      ->capture_default_str();
  app.add_flag("--force", cmd.force, "replace an output folder that is not empty (an openrm folder: openrm.json)");
  app.add_flag("--overwrite-output-dir", cmd.overwrite_output_dir,
               "replace an output folder that is not empty, even one that is not an openrm folder");
  app.add_option("--tokenizer", cmd.tokenizer,
                 "tokenizer folder, tokenizer.json or .model file, when the model has none (default: the model's, or its "
                 "training run's)");
  app.add_option("--base-model-dir", cmd.base_model_dir,
                 "for a LoRA adapter folder: its base model folder (default: adapter_config.json's "
                 "base_model_name_or_path)");
  app.add_option("--pad-token-id", cmd.pad_token_id,
                 "pad_token_id when config.json has none (default: the tokenizer's pad, else eos)")
      ->check(openrm::tools::integer_at_least(0));
  app.add_option("--license", cmd.license, "the model card's license (a Hub id, e.g. apache-2.0)");
  app.add_option("--base-model", cmd.base_model, "the model card's base_model (a Hub model id)");
  app.add_option("--log-level", cmd.log_level, "debug, info, warn, error or off")->capture_default_str();

  openrm::tools::group_options(app, {{"Input", {"--model", "--tokenizer", "--base-model-dir"}},
                                     {"Model", {"--dtype", "--pad-token-id", "--license", "--base-model"}},
                                     {"Output", {"--output", "--max-shard-size", "--force", "--overwrite-output-dir"}},
                                     {"Other", {"--log-level"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] { run_export(cmd); });
}
