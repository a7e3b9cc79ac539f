// openrm-init-model: writes a freshly initialised reward model folder from a
// config.json. Used to make the tiny bundled models and as a starting point
// for training from scratch.
//
//   openrm-init-model --config config.json --output DIR [--seed N] [--std 0.02]
//                     [--dtype fp32|bf16|fp16]
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <cstdint>
#include <exception>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "openrm/error.h"
#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "openrm/models/reward_model.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-init-model";

const std::map<std::string, c10::ScalarType> kDtypes = {
    {"fp32", c10::kFloat}, {"bf16", c10::kBFloat16}, {"fp16", c10::kHalf}};

struct InitModelOptions {
  std::string config_path;
  std::string output_dir;
  std::uint64_t seed = 0;
  double std = 0.02;
  std::string dtype = "fp32";
};

std::int64_t count_parameters(openrm::RewardModel& model) {
  std::int64_t total = 0;
  for (const auto& p : model.parameters()) total += p.numel();
  return total;
}

// The card of an untrained folder: where its weights came from, and that
// nothing has been learnt or measured yet. openrm-eval --update-card appends
// under its last heading.
std::string init_card(const InitModelOptions& opts, openrm::RewardModel& model) {
  std::ostringstream out;
  out << "# Reward report: untrained `" << model.config().architecture << "` reward model\n\n"
      << "Random weights written by `openrm-init-model`: this model has **not been trained** on any "
         "preference data, so its rewards carry no information yet. It is a starting point for "
         "`openrm-train --init-model`, or a baseline of what an uninformed model scores.\n\n"
      << "## Lineage\n\n"
      << "| | |\n|---|---|\n"
      << "| config | `" << opts.config_path << "` (sha256 `" << openrm::sha256_file(opts.config_path) << "`) |\n"
      << "| initialisation | normal, std " << opts.std << ", seed " << opts.seed << " for matrices and embeddings, "
      << "ones for norm weights (zeros for Gemma's offset norms), zeros for biases |\n"
      << "| stored as | " << opts.dtype << ", " << count_parameters(model) << " parameters |\n"
      << "| weights | `model.safetensors` (sha256 `"
      << openrm::sha256_file(openrm::join_path(opts.output_dir, "model.safetensors")) << "`) |\n\n"
      << "## Training data\n\nNone.\n\n"
      << "## Known biases\n\nNot measured: evaluate it with `openrm-eval --update-card`.\n\n"
      << "## Evaluations\n\n";
  return out.str();
}

void init_model(const InitModelOptions& opts) {
  openrm::ModelConfig config = openrm::load_model_config(opts.config_path);
  openrm::LoadOptions load;
  load.dtype = kDtypes.at(opts.dtype);
  auto model = openrm::with_context(
      opts.config_path, [&] { return openrm::create_reward_model(config, load); });
  model->init_weights(opts.seed, opts.std);
  openrm::save_reward_model(*model, opts.output_dir);
  // Its reward report (docs/reward-reports.md), unless the folder has a card.
  const std::string card = openrm::join_path(opts.output_dir, "README.md");
  if (!openrm::path_exists(card)) {
    openrm::write_file_atomic(card, init_card(opts, *model));
  } else {
    std::cerr << kTool << ": kept the existing " << card << "\n";
  }
  std::cout << kTool << ": wrote " << opts.output_dir << " ("
            << model->config().architecture << ", " << count_parameters(*model)
            << " parameters, " << opts.dtype << ", seed " << opts.seed << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  InitModelOptions opts;
  CLI::App app{"Write a randomly initialised reward model folder from a config.json."};
  app.add_option("--config", opts.config_path, "config.json to build the model from")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--output", opts.output_dir, "folder to write (created if missing)")
      ->required();
  app.add_option("--seed", opts.seed, "seed of the initialisation")->capture_default_str();
  app.add_option("--std", opts.std, "standard deviation of the normal init")
      ->capture_default_str()
      ->check(openrm::tools::positive_number());
  app.add_option("--dtype", opts.dtype, "dtype the weights are stored in")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}));

  openrm::tools::group_options(app, {{"Input", {"--config"}},
                                     {"Model", {"--seed", "--std", "--dtype"}},
                                     {"Output", {"--output"}}});
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] { init_model(opts); });
}
