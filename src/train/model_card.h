// The model card (README.md) written next to a trained model: what it was
// trained on (files and hashes), how, and how well it did, honestly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "openrm/models/reward_model.h"
#include "openrm/train/trainer.h"

namespace openrm {

struct DataFileSummary {
  std::string path;
  std::string sha256;
  std::int64_t records = 0;
  std::int64_t pairs = 0;
  std::int64_t skipped_invalid = 0;
};

struct ModelCardInputs {
  TrainOptions options;
  TrainResult result;
  std::vector<DataFileSummary> train_files;
  std::vector<DataFileSummary> eval_files;
  const RewardModel* model = nullptr;
  std::string chat_format;
  std::string tokenizer;
  double wall_seconds = 0.0;
};

std::string make_model_card(const ModelCardInputs& in);

// Today's date in UTC, "2026-12-01": the date a model card states.
std::string today_utc();

}  // namespace openrm
