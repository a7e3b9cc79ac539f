// Export: a complete Hugging Face folder, written from an openrm model folder,
// a trainer checkpoint, a training output folder or a LoRA adapter folder
// (merged onto its base), that transformers loads
// with AutoModelForSequenceClassification and AutoTokenizer from the folder
// alone. docs/export.md describes the folder and what has been tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

// The dtype the exported weights are stored in.
enum class ExportDType {
  kKeep,      // each tensor as stored in the input
  kFloat32,
  kBFloat16,
  kFloat16,
};
// "keep", "fp32", "bf16", "fp16".
const char* export_dtype_name(ExportDType dtype);
// Also accepts "float32", "bfloat16", "float16"; throws openrm::Error listing
// the accepted names.
ExportDType parse_export_dtype(const std::string& name);

// "2GB" (10^9), "500MB", "5GiB" (2^30), "100KB", "123" (bytes), "0" (no
// sharding); throws openrm::Error naming the text. Units as huggingface_hub
// reads them.
std::uint64_t parse_byte_size(const std::string& text);

struct ExportOptions {
  // An openrm model folder (config.json, weights, tokenizer, openrm.json), a
  // trainer checkpoint (<output>/checkpoints/checkpoint-N), a training
  // output folder (its final model, or its newest checkpoint when the run did
  // not finish) or a PEFT LoRA adapter folder (adapter_config.json +
  // adapter_model.safetensors: exported merged onto its base, as PEFT's
  // merge_and_unload + save_pretrained gives it).
  std::string model_dir;
  // The folder to write; it must not exist, or be empty (see overwrite).
  std::string output_dir;
  // The dtype of the exported weights.
  ExportDType dtype = ExportDType::kKeep;
  // Shard the weights past this many bytes (model-0000i-of-0000N.safetensors
  // + model.safetensors.index.json); 0: always one model.safetensors.
  std::uint64_t max_shard_bytes = 5'000'000'000ULL;
  // Replace an output folder that exists and is not empty.
  bool overwrite = false;
  // The tokenizer (folder, tokenizer.json or .model file) when the input has none of its own;
  // "": the input's (for a checkpoint: its training run's).
  std::string tokenizer;
  // config.json's pad_token_id when the input's config has none; unset: the
  // tokenizer's pad token, else its eos token.
  std::optional<std::int64_t> pad_token_id;
  // The model card's `license:` (a Hub license id such as "apache-2.0"); "":
  // the input's model card's, else none.
  std::string license;
  // The model card's `base_model:` (a Hub model id); "": the input's model
  // card's, else none.
  std::string base_model;
  // For a PEFT LoRA adapter folder: the base model's folder; "":
  // adapter_config.json's base_model_name_or_path. An error for other inputs.
  std::string base_model_dir;
};

struct ExportResult {
  std::string output_dir;
  std::string source;            // the folder the weights were read from
  std::vector<std::string> files;  // the files written, sorted
  std::int64_t tensors = 0;
  std::uint64_t weight_bytes = 0;
  std::string dtype;             // config.json's dtype, e.g. "float32"
  std::int64_t pad_token_id = -1;
  std::string pad_token_source;  // "config.json", "the tokenizer's pad token", ...
  std::string chat_format;       // e.g. "llama2"
  bool chat_template = false;    // tokenizer_config.json has a chat_template
};

// Writes the folder: config.json (with a pad_token_id), the weights,
// tokenizer files (tokenizer.model, tokenizer_config.json with the special
// tokens and the chat format's template, special_tokens_map.json,
// added_tokens.json when the input has one), openrm.json and a README.md
// model card with the Hub's metadata header. Everything is written into a
// temporary folder beside the output and renamed into place, so the output
// is either absent or complete. Throws openrm::Error naming the file and
// field on bad input; refuses an output that is the input, or holds it.
ExportResult export_model(const ExportOptions& options);

}  // namespace openrm
