// The model cards openrm writes: the reward report (README.md) of a trained
// folder, and the pieces the export's card and the appended evaluations
// share with it (src/train/reward_report.cpp). docs/reward-reports.md.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "openrm/data/tokenize.h"
#include "openrm/models/reward_model.h"
#include "openrm/train/trainer.h"

namespace openrm {

struct DataFileSummary {
  std::string path;
  std::string sha256;  // "": not hashed (not a regular file, e.g. a pipe)
  std::int64_t records = 0;
  std::int64_t pairs = 0;
  std::int64_t skipped_invalid = 0;
};

// A file of a model folder and its SHA-256. For a file the Hugging Face Hub
// stores with Git LFS (the weights), the SHA-256 is its LFS oid, which the
// file's page on the Hub shows: a user can check a copy against the card.
struct HashedFile {
  std::string name;  // within its folder
  std::string sha256;
  std::uint64_t bytes = 0;
};

// A folder a model came from, with the files it was loaded from.
struct LineageFolder {
  std::string role;          // "reward model", "causal LM", "LoRA base model", ...
  std::string path;
  std::string name_or_path;  // config.json's "_name_or_path" (often a Hub id), when present
  bool has_card = false;     // it holds a README.md of its own
  std::vector<HashedFile> files;
};

// What the card says about the training pairs beyond the file table.
struct TrainingPairStats {
  std::int64_t pairs = 0;
  std::int64_t with_margin = 0;  // pairs whose record gave a margin
  // Pairs whose two sides differ in length (sequence tokens, after
  // truncation), and the share of them whose chosen side is the longer:
  // the data's own length preference, which a model learns from.
  std::int64_t pairs_with_length_difference = 0;
  double chosen_longer_rate = std::numeric_limits<double>::quiet_NaN();
};
TrainingPairStats training_pair_stats(const std::vector<TokenizedPair>& pairs);

struct ModelCardInputs {
  TrainOptions options;
  TrainResult result;
  std::vector<DataFileSummary> train_files;
  std::vector<DataFileSummary> eval_files;
  TrainingPairStats train_stats;
  const RewardModel* model = nullptr;
  std::string chat_format;
  std::string tokenizer;
  double wall_seconds = 0.0;
  int world_size = 1;
  // The init folder(s) (--init-model / --init-causal-lm; an adapter folder
  // and its base) or, for --init-config, the config file alone.
  std::vector<LineageFolder> lineage;
  HashedFile init_config;  // --init-config: the config file, hashed
};

// The init folders / config of the run in `in.options`, hashed (lead rank only:
// it reads every weight file).
void add_card_lineage(ModelCardInputs& in);

std::string make_model_card(const ModelCardInputs& in);

// Writes a trained folder's card to dir/README.md without losing the
// evaluations appended to the folder's earlier card. `same_model`: the run
// wrote the weights those evaluations measured (it resumed from its final
// checkpoint and took no step), so the earlier card's "## Evaluations" part
// replaces the new card's, and evaluations.jsonl stays. Otherwise they
// describe a model this run replaced: the old README.md is kept as
// README.replaced-<UTC time>.md, evaluations.jsonl is renamed to
// evaluations.replaced-<UTC time>.jsonl, and the new card names both.
void write_training_card(const std::string& dir, const std::string& card, bool same_model);

// Today's date in UTC, "2026-12-01": the date a model card states.
std::string today_utc();

// ---- shared by the cards (src/train/reward_report.cpp) ----------------------

// The heading under which evaluations are appended.
inline constexpr const char* kEvaluationsHeading = "## Evaluations";

// SHA-256 of a file, with a progress line every few seconds for a large one;
// "" (and a warning) when path is not a regular file (a pipe cannot be read twice).
std::string hash_file_logged(const std::string& path);

// The files a model folder is loaded from, hashed: config.json, the weights
// as WeightStore::open_folder finds them (model.safetensors, or the shards
// an index lists, or pytorch_model.bin and its shards, with the index), and
// a PEFT adapter's adapter_config.json and adapter_model.*.
std::vector<HashedFile> hash_model_files(const std::string& folder);

// `folder` in the role given, hashed; for a PEFT adapter folder, its base
// folder (base_dir, else adapter_config.json's) follows as "LoRA base model".
std::vector<LineageFolder> describe_lineage(const std::string& folder, const std::string& role,
                                            const std::string& base_dir = "");

// Markdown: each folder, its files' sizes and hashes (a table), and what the
// hashes are for.
std::string lineage_markdown(const std::vector<LineageFolder>& lineage);
// A table of hashed files.
std::string hashed_files_table(const std::vector<HashedFile>& files);

// "## Intended use" with its text (the same for every reward model openrm writes).
std::string intended_use_section();
// kEvaluationsHeading with the paragraph that says what follows.
std::string evaluations_heading_section();
// The part of a card from its last kEvaluationsHeading line (outside code
// blocks) to the end, when that is the card's last level-2 section; "" otherwise.
std::string card_evaluations_part(const std::string& card);

// Markdown-safe text: a code span (`...`) with control characters replaced,
// and '|' escaped so that it may sit in a table cell.
std::string md_code(const std::string& text);
// A number with `digits` decimals, "n/a" when it is not finite.
std::string fixed(double value, int digits = 4);

}  // namespace openrm
