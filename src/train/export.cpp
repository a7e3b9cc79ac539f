// openrm-export's library half: an openrm model folder, trainer checkpoint or
// training output folder in, a Hugging Face folder out. docs/export.md.
#include "openrm/train/export.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

#include "io/json_util.h"
#include "logging.h"
#include "models/hf_dtype.h"
#include "train/model_card.h"
#include "openrm/error.h"
#include "openrm/io/config.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors.h"
#include "openrm/models/lora.h"
#include "openrm/models/model_folder.h"
#include "openrm/tokenizer/chat_format.h"
#include "openrm/tokenizer/train_tokenizer.h"
#include "train/checkpoint.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kModelFiles[] = {"tokenizer.model", "spm.model", "sentencepiece.bpe.model"};

// Where the pieces of the export come from.
struct Source {
  std::string weights_dir;  // config.json + safetensors (+ openrm.json)
  std::string run_dir;      // the training output folder, when known
  std::string kind;         // for messages and the card
  bool checkpoint = false;
  std::int64_t step = -1;   // the checkpoint's step
  Json train_options;       // the run's options (trainer_state.json / training_config.json), or null
  // A PEFT LoRA adapter folder (weights_dir): its base model folder (config.json + weights).
  std::string base_dir;
  bool adapter() const { return !base_dir.empty(); }
  // The folder with config.json.
  const std::string& config_dir() const { return adapter() ? base_dir : weights_dir; }
};

template <typename J>
J read_json(const std::string& path) {
  const std::string text = read_text_file(path);
  return detail::parse_json_checked<J>(text.data(), text.data() + text.size(), path, detail::JsonParseLimits{});
}

std::string canonical_or_self(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return ec ? path : p.string();
}

// True when `inner` is `outer` or lies inside it (both canonical).
bool is_within(const std::string& inner, const std::string& outer) {
  if (inner == outer) return true;
  const std::string prefix = outer.back() == '/' ? outer : outer + "/";
  return inner.rfind(prefix, 0) == 0;
}

Json run_options_of(const std::string& weights_dir, const std::string& run_dir) {
  const std::string state = join_path(weights_dir, "trainer_state.json");
  if (path_exists(state)) {
    Json j = read_json<Json>(state);
    if (!j.is_object()) throw Error(state + ": expected a JSON object");
    if (j.contains("options")) {
      if (!j["options"].is_object()) throw Error(state + ": field 'options': expected an object");
      return j["options"];
    }
  }
  if (!run_dir.empty()) {
    const std::string config = join_path(run_dir, "training_config.json");
    if (path_exists(config)) {
      Json j = read_json<Json>(config);
      if (!j.is_object()) throw Error(config + ": expected a JSON object");
      return j;
    }
  }
  return nullptr;
}

std::int64_t step_of_checkpoint(const std::string& dir) {
  const std::string state = join_path(dir, "trainer_state.json");
  Json j = read_json<Json>(state);
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer()) {
    throw Error(state + ": field 'step': expected an integer");
  }
  return j["step"].get<std::int64_t>();
}

Source find_source(const std::string& dir, const std::string& base_model_dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error(dir + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": not a folder");
  Source s;
  if (is_lora_adapter_folder(dir)) {
    s.weights_dir = dir;
    s.kind = "LoRA adapter folder";
    s.base_dir = lora_base_folder(dir, base_model_dir);
    if (path_exists(join_path(dir, "training_config.json"))) s.run_dir = dir;
  } else if (!base_model_dir.empty()) {
    throw Error("a base model folder (" + base_model_dir + ") is for a LoRA adapter folder (adapter_config.json), and " +
                dir + " is none");
  } else if (path_exists(join_path(dir, "config.json"))) {
    s.weights_dir = dir;
    if (path_exists(join_path(dir, "trainer_state.json"))) {
      s.checkpoint = true;
      s.kind = "trainer checkpoint";
      const fs::path parent = fs::path(canonical_or_self(dir)).parent_path();
      if (parent.filename() == "checkpoints") s.run_dir = parent.parent_path().string();
      s.step = step_of_checkpoint(dir);
    } else if (path_exists(join_path(dir, "training_config.json"))) {
      s.kind = "training output folder";
      s.run_dir = dir;
    } else {
      s.kind = "model folder";
    }
  } else {
    const auto checkpoints = detail::list_checkpoints(join_path(dir, "checkpoints"));
    if (checkpoints.empty()) {
      throw Error(dir + ": not a model folder (no config.json) and no training run (no checkpoints/checkpoint-N)");
    }
    s.weights_dir = checkpoints.back().second;
    s.run_dir = dir;
    s.checkpoint = true;
    s.kind = "trainer checkpoint";
    s.step = step_of_checkpoint(s.weights_dir);
    log().info("{} holds no final model (the run did not finish): exporting its newest checkpoint {}", dir,
               s.weights_dir);
  }
  s.train_options = with_context(s.weights_dir, [&] { return run_options_of(s.weights_dir, s.run_dir); });
  return s;
}

std::string option_string(const Json& options, const char* key) {
  if (!options.is_object() || !options.contains(key) || !options[key].is_string()) return "";
  return options[key].get<std::string>();
}

// The tokenizer: the option, the weights folder's, the run folder's, the
// run's --tokenizer, the run's init folder's.
std::shared_ptr<const Tokenizer> find_tokenizer(const ExportOptions& o, const Source& s) {
  if (!o.tokenizer.empty()) return load_tokenizer(o.tokenizer);
  if (has_tokenizer(s.weights_dir)) return load_tokenizer(s.weights_dir);
  if (!s.run_dir.empty() && has_tokenizer(s.run_dir)) return load_tokenizer(s.run_dir);
  if (s.adapter() && has_tokenizer(s.base_dir)) return load_tokenizer(s.base_dir);
  for (const char* key : {"tokenizer", "init_model", "init_causal_lm"}) {
    const std::string path = option_string(s.train_options, key);
    if (path.empty()) continue;
    std::error_code ec;
    const bool usable = fs::is_directory(path, ec) ? has_tokenizer(path) : fs::is_regular_file(path, ec);
    if (usable) return load_tokenizer(path);
    log().info("the training run's {} '{}' holds no tokenizer here", key, path);
  }
  throw Error(s.weights_dir + ": no tokenizer (tokenizer.json or tokenizer.model) in the folder" +
              (s.checkpoint ? " or its training run" : std::string()) +
              (s.adapter() ? " or its base model folder " + s.base_dir : std::string()) +
              "; give one (a folder, a tokenizer.json or a .model file) with --tokenizer");
}

// The chat format the model was trained / is scored with.
ChatFormat find_chat_format(const Source& s, const ModelMetadata& meta, const Tokenizer& tokenizer,
                            std::string& why) {
  if (meta.chat_format) {
    why = join_path(s.weights_dir, "openrm.json");
    return *meta.chat_format;
  }
  const std::string option = option_string(s.train_options, "chat_format");
  if (!option.empty()) {
    why = "the training run's chat_format";
    return with_context("the training run's option 'chat_format'", [&] { return chat_format_from_name(option); });
  }
  for (const std::string& folder : {s.run_dir, s.base_dir, option_string(s.train_options, "init_model"),
                                    option_string(s.train_options, "init_causal_lm")}) {
    if (folder.empty() || folder == s.weights_dir || !is_directory(folder)) continue;
    if (auto stored = read_model_metadata(folder).chat_format) {
      why = join_path(folder, "openrm.json");
      return *stored;
    }
  }
  why = tokenizer.chat_template().empty() ? "no chat format recorded" : "the tokenizer's chat_template";
  return default_chat_format(tokenizer);
}

std::optional<at::ScalarType> target_dtype(ExportDType d) {
  switch (d) {
    case ExportDType::kKeep: return std::nullopt;
    case ExportDType::kFloat32: return at::kFloat;
    case ExportDType::kBFloat16: return at::kBFloat16;
    case ExportDType::kFloat16: return at::kHalf;
  }
  return std::nullopt;
}

// A value of the YAML metadata header of a model card ("license: mit"), or "".
std::string card_header_value(const std::string& card, const std::string& key) {
  if (card.rfind("---\n", 0) != 0) return "";
  const std::size_t end = card.find("\n---", 3);
  if (end == std::string::npos) return "";
  std::istringstream lines(card.substr(4, end - 4));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::string value = line.substr(key.size() + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r") + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "";
}

// The card without its metadata header.
std::string card_body(const std::string& card) {
  if (card.rfind("---\n", 0) != 0) return card;
  const std::size_t end = card.find("\n---", 3);
  if (end == std::string::npos) return card;
  std::size_t start = card.find('\n', end + 4);
  return start == std::string::npos ? std::string() : card.substr(start + 1);
}

// "org/name" or "name" that is no path here: what the Hub's base_model holds.
bool looks_like_hub_id(const std::string& value) {
  if (value.empty() || value.front() == '/' || value.front() == '.' || path_exists(value)) return false;
  if (std::count(value.begin(), value.end(), '/') > 1) return false;
  return std::all_of(value.begin(), value.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/';
  });
}

// A YAML scalar: plain when it is safe, else double-quoted.
std::string yaml_scalar(const std::string& value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) plain = false;
  }
  if (plain) return value;
  return Json(value).dump();  // a JSON string is a valid YAML double-quoted scalar
}

struct CardInputs {
  const ExportOptions* options = nullptr;
  const Source* source = nullptr;
  const ModelConfig* config = nullptr;
  const ExportResult* result = nullptr;
  std::string license;
  std::string base_model;
  std::string pooling;
  std::string source_card;  // the input's README.md, when it describes these weights
  std::int64_t parameters = 0;
  std::vector<LineageFolder> lineage;        // the input (and an adapter's base), hashed
  std::vector<HashedFile> exported_files;    // this folder's weights, hashed
  std::string converted_from;                // the input's dtype, when the weights were converted
};

// The reward report's sections for an export whose input has no card of
// its own to carry: what openrm knows (a checkpoint's run options) and
// what it does not.
void unknown_origin_sections(std::ostringstream& out, const CardInputs& in) {
  const Source& s = *in.source;
  out << "\n" << intended_use_section() << "## Data and training\n\n";
  if (s.checkpoint && s.train_options.is_object()) {
    const Json& o = s.train_options;
    std::string data;
    if (o.contains("data") && o["data"].is_array()) {
      for (const auto& d : o["data"]) {
        if (d.is_string()) data += (data.empty() ? "" : ", ") + md_code(d.get<std::string>());
      }
    }
    out << "This checkpoint was written at step " << s.step << " by an `openrm-train` run"
        << (s.run_dir.empty() ? std::string() : " in " + md_code(s.run_dir)) << " on "
        << (data.empty() ? std::string("training files not recorded") : data) << ", starting from ";
    const std::string init_model = option_string(o, "init_model"), init_lm = option_string(o, "init_causal_lm");
    if (!init_model.empty()) out << "the reward model " << md_code(init_model);
    else if (!init_lm.empty()) out << "the causal LM " << md_code(init_lm);
    else out << "random weights (config " << md_code(option_string(o, "init_config")) << ")";
    out << "; its `trainer_state.json` holds every setting. The run's README.md (data hashes, final evaluation) "
           "describes the run's final model, not this checkpoint, and is not carried here.\n\n";
  } else {
    out << "The input folder has no model card openrm could carry, so this model's training data, preference "
           "collection and training settings are **not recorded**; only the lineage above (the weights' hashes) "
           "is known.\n\n";
  }
  out << "## Limitations\n\n"
      << "Without a record of its data, this model's scores can be trusted only as far as evaluations show "
         "(`openrm-eval --update-card` records them below); its biases, length included, are not measured "
         "until then.\n";
}

constexpr const char* kCardFollows = "The model card of the exported folder follows.\n\n";

std::string make_export_card(const CardInputs& in) {
  const ExportResult& r = *in.result;
  const ModelConfig& c = *in.config;
  std::ostringstream out;
  out << "---\n"
      << "library_name: transformers\n"
      << "pipeline_tag: text-classification\n"
      << "tags:\n- reward-model\n- openrm\n";
  if (!c.model_type.empty()) out << "- " << yaml_scalar(c.model_type) << "\n";
  if (!in.license.empty()) out << "license: " << yaml_scalar(in.license) << "\n";
  if (!in.base_model.empty()) out << "base_model: " << yaml_scalar(in.base_model) << "\n";
  out << "---\n\n";

  out << "# Reward model\n\n"
      << "A `" << c.architecture << "` reward model (" << c.num_labels << " output" << (c.num_labels == 1 ? "" : "s")
      << ", " << in.parameters << " parameters), exported by `openrm-export` on " << today_utc() << " from the "
      << in.source->kind << " `" << in.source->weights_dir << "`";
  if (in.source->checkpoint && in.source->step >= 0) out << " (step " << in.source->step << ")";
  if (in.source->adapter()) out << ", merged onto its base model `" << in.source->base_dir << "`";
  out << ".\n\n"
      << "| | |\n|---|---|\n"
      << "| weights | " << r.dtype << ", " << r.tensors << " tensors, " << r.weight_bytes << " bytes |\n"
      << "| pad_token_id | " << r.pad_token_id << " (" << r.pad_token_source << ") |\n"
      << "| chat format | `" << r.chat_format << "`"
      << (r.chat_template ? " (its template is tokenizer_config.json's `chat_template`)" : " (no chat template)")
      << " |\n"
      << "| openrm pooling | `" << in.pooling << "` |\n\n";

  out << "## Lineage\n\n" << lineage_markdown(in.lineage);
  if (!in.converted_from.empty()) {
    out << "The weights were converted from " << in.converted_from << " to " << r.dtype
        << ": evaluations recorded for the input folder (carried below) measured its weights, not these; "
           "`openrm-eval --update-card` on this folder measures these.\n\n";
  }
  if (in.source->adapter()) {
    out << "The adapter was merged onto the base (as PEFT's `merge_and_unload` does): this folder scores as "
           "the adapter over its base did, up to rounding.\n\n";
  }
  out << "This folder's own weights (written anew, so their hashes need not equal the input's even where the "
         "tensors are the same):\n\n"
      << hashed_files_table(in.exported_files) << "\n";

  out << "## Loading with transformers\n\n"
      << "```python\n"
      << "import torch\n"
      << "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
      << "tokenizer = AutoTokenizer.from_pretrained(\"path/to/this/folder\")\n"
      << "model = AutoModelForSequenceClassification.from_pretrained(\"path/to/this/folder\", "
         "dtype=torch.float32).eval()\n";
  if (r.chat_template) {
    out << "conversation = [{\"role\": \"user\", \"content\": \"...\"}, {\"role\": \"assistant\", \"content\": "
           "\"...\"}]\n"
        << "inputs = tokenizer.apply_chat_template([conversation], tokenize=True, padding=True,\n"
        << "                                       return_dict=True, return_tensors=\"pt\")\n";
  } else {
    out << "inputs = tokenizer([\"a text to score\"], padding=True, return_tensors=\"pt\")\n";
  }
  out << "with torch.no_grad():\n"
      << "    rewards = model(**inputs).logits[:, 0]\n"
      << "```\n\n"
      << "transformers reads each reward from the rightmost token that is not `pad_token_id`. "
      << "openrm's test suite (`tests/test_export.cpp`) trains a small Llama reward model with openrm, "
         "exports it this way, loads the folder with `AutoModelForSequenceClassification` and `AutoTokenizer` "
         "and checks that transformers gives the same token ids and rewards (in float32, within 1e-4) as "
         "openrm, for plain texts and for conversations through `apply_chat_template`. This folder itself "
         "has not been checked that way; docs/export.md in openrm says what differs when the tokenizers "
         "disagree.\n\n"
      << "## Loading with openrm\n\n"
      << "```cpp\n"
      << "auto folder = openrm::load_reward_model_folder(\"path/to/this/folder\");\n"
      << "```\n\n"
      << "`openrm.json` holds what config.json has no field for (pooling rule, chat format, reward "
         "statistics).\n";
  // The input's own card; from an earlier export, only the card that one carried.
  std::string body = card_body(in.source_card);
  std::string evaluations;  // an earlier export's appended evaluations, when it carried no card
  if (body.find("exported by `openrm-export`") != std::string::npos) {
    const std::size_t at = body.find(kCardFollows);
    evaluations = at == std::string::npos ? card_evaluations_part(body) : std::string();
    body = at == std::string::npos ? std::string() : body.substr(at + std::string(kCardFollows).size());
  }
  if (!body.empty()) {
    out << "\n---\n\n" << kCardFollows << body;
  } else {
    unknown_origin_sections(out, in);
    if (!evaluations.empty()) out << "\n" << evaluations;
  }
  return out.str();
}

// Reads the special tokens of a tokenizer_config.json field: a string or an
// AddedToken object ({"content": ...}).
std::string token_text(const OrderedJson& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return "";
}

std::optional<std::string> piece_of(const Tokenizer& tokenizer, std::int64_t id) {
  if (id < 0 || id >= tokenizer.vocab_size()) return std::nullopt;
  try {
    std::string text = tokenizer.id_to_token(static_cast<TokenId>(id));
    if (text.empty()) return std::nullopt;
    return text;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Writes the tokenizer files into `dir`; returns whether a chat template was written.
bool write_tokenizer_files(const std::string& dir, const Tokenizer& tokenizer, ChatFormat format,
                           std::int64_t pad_token_id) {
  const std::string& src = tokenizer.source();
  const bool folder = is_directory(src);
  const bool json_backend = tokenizer.backend() == TokenizerBackend::kTokenizerJson;
  std::string model_file = src;
  if (folder) {
    model_file.clear();
    for (const char* name : kModelFiles) {
      if (path_exists(join_path(src, name))) {
        model_file = join_path(src, name);
        break;
      }
    }
    if (model_file.empty() && !json_backend) throw Error(src + ": no tokenizer.model");
  }
  // A folder's sentencepiece model goes along even when tokenizer.json is
  // the one read (transformers' slow classes use it).
  if (!model_file.empty()) {
    detail::copy_file_atomic(model_file,
                             join_path(dir, json_backend && !folder ? "tokenizer.json" : "tokenizer.model"));
  }
  if (folder) {
    for (const char* name : {"tokenizer.json", "added_tokens.json"}) {
      if (path_exists(join_path(src, name))) detail::copy_file_atomic(join_path(src, name), join_path(dir, name));
    }
  }

  // tokenizer_config.json: the input's, fields kept, else one written from
  // the tokenizer; then the chat template and the pad token.
  const std::string config_path = join_path(dir, "tokenizer_config.json");
  const std::string src_config = folder ? join_path(src, "tokenizer_config.json") : std::string();
  OrderedJson tc;
  if (!src_config.empty() && path_exists(src_config)) {
    tc = read_json<OrderedJson>(src_config);
    if (!tc.is_object()) throw Error(src_config + ": expected a JSON object");
  } else {
    write_tokenizer_config(dir, tokenizer);
    tc = read_json<OrderedJson>(config_path);
  }
  // Template families only: apply_chat_template encodes without special
  // tokens, while openrm's plain and hh encodings add BOS as tokenizer(text)
  // does, so a template for those would give other ids than openrm's.
  std::string chat_template;
  if (format != ChatFormat::kPlain && format != ChatFormat::kHH && format != ChatFormat::kPair) {
    chat_template = chat_template_for(format);
  }
  if (!chat_template.empty()) {
    if (tc.contains("chat_template") && !(tc["chat_template"].is_string() &&
                                          tc["chat_template"].get<std::string>() == chat_template)) {
      log().info("tokenizer_config.json: replacing the tokenizer's chat_template with the {} template",
                 chat_format_name(format));
    }
    tc["chat_template"] = chat_template;
  } else if (tc.contains("chat_template")) {
    log().warn("tokenizer_config.json: dropping the tokenizer's chat_template: the model's chat format is {}, "
               "which is scored as tokenizer(text) scores it, not through a template",
               chat_format_name(format));
    tc.erase("chat_template");
  }
  // The tokenizer pads with the id the model skips.
  const auto pad_piece = piece_of(tokenizer, pad_token_id);
  const SpecialToken& pad = tokenizer.special_tokens().pad;
  if (pad_piece && (!pad.present() || pad.id != pad_token_id)) {
    log().info("tokenizer_config.json: pad_token set to '{}' (id {}), config.json's pad_token_id", *pad_piece,
               pad_token_id);
    tc["pad_token"] = *pad_piece;
  } else if (!pad_piece && !pad.present()) {
    log().warn("pad_token_id {} is not a token of the tokenizer: transformers' tokenizer cannot pad batches",
               pad_token_id);
  }
  write_file_atomic(config_path, tc.dump(2) + "\n");

  // special_tokens_map.json: the input's with the pad token updated, else
  // made from tokenizer_config.json's.
  const std::string src_map = folder ? join_path(src, "special_tokens_map.json") : std::string();
  OrderedJson map = OrderedJson::object();
  if (!src_map.empty() && path_exists(src_map)) {
    map = read_json<OrderedJson>(src_map);
    if (!map.is_object()) throw Error(src_map + ": expected a JSON object");
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    if (!tc.contains(key)) continue;
    const std::string text = token_text(tc[key]);
    if (text.empty()) continue;
    if (!map.contains(key) || token_text(map[key]) != text) map[key] = text;
  }
  write_file_atomic(join_path(dir, "special_tokens_map.json"), map.dump(2) + "\n");
  return !chat_template.empty();
}

// Moves the finished temporary folder into place.
void move_into_place(const std::string& tmp, const std::string& output, bool overwrite) {
  std::error_code ec;
  const bool exists = fs::exists(output, ec);
  if (exists && !fs::is_empty(output, ec)) {
    if (!overwrite) throw Error(output + ": exists and is not empty (use --force to replace it)");
    const std::string old = tmp + ".old";
    fs::remove_all(old, ec);
    fs::rename(output, old, ec);
    if (ec) throw Error(output + ": cannot move the old folder aside: " + ec.message());
    fs::rename(tmp, output, ec);
    if (ec) {
      std::error_code ignored;
      fs::rename(old, output, ignored);
      throw Error(output + ": cannot rename the new folder into place: " + ec.message());
    }
    fs::remove_all(old, ec);
  } else {
    if (exists) fs::remove(output, ec);  // an empty folder
    fs::rename(tmp, output, ec);
    if (ec) throw Error(output + ": cannot rename the new folder into place: " + ec.message());
  }
  detail::sync_path(fs::path(output).parent_path().string());
}

}  // namespace

const char* export_dtype_name(ExportDType dtype) {
  switch (dtype) {
    case ExportDType::kKeep: return "keep";
    case ExportDType::kFloat32: return "fp32";
    case ExportDType::kBFloat16: return "bf16";
    case ExportDType::kFloat16: return "fp16";
  }
  return "keep";
}

ExportDType parse_export_dtype(const std::string& name) {
  if (name == "keep") return ExportDType::kKeep;
  if (name == "fp32" || name == "float32") return ExportDType::kFloat32;
  if (name == "bf16" || name == "bfloat16") return ExportDType::kBFloat16;
  if (name == "fp16" || name == "float16") return ExportDType::kFloat16;
  throw Error("unknown dtype '" + name + "' (expected keep, fp32, bf16 or fp16)");
}

std::uint64_t parse_byte_size(const std::string& text) {
  const auto fail = [&]() -> std::uint64_t {
    throw Error("invalid size '" + text + "' (expected a number of bytes or e.g. 500MB, 2GB, 5GiB)");
  };
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return fail();
  double number = 0;
  try {
    std::size_t used = 0;
    number = std::stod(text.substr(0, i), &used);
    if (used != i) return fail();
  } catch (const std::exception&) {
    return fail();
  }
  std::string unit = text.substr(i);
  unit.erase(0, unit.find_first_not_of(' '));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, double> kUnits = {
      {"", 1},      {"B", 1},          {"KB", 1e3},          {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12}, {"KIB", 1024.0},   {"MIB", 1048576.0},   {"GIB", 1073741824.0}, {"TIB", 1099511627776.0}};
  const auto it = kUnits.find(unit);
  if (it == kUnits.end()) return fail();
  const double bytes = number * it->second;
  if (!std::isfinite(bytes) || bytes >= 1.8e19) return fail();
  return static_cast<std::uint64_t>(std::llround(bytes));
}

ExportResult export_model(const ExportOptions& options) {
  if (options.model_dir.empty()) throw Error("no model folder given");
  if (options.output_dir.empty()) throw Error("no output folder given");
  const Source source = find_source(options.model_dir, options.base_model_dir);

  // The output must not be, or hold, anything the export reads.
  std::string output = options.output_dir;
  while (output.size() > 1 && output.back() == '/') output.pop_back();
  std::error_code ec;
  if (fs::is_symlink(output, ec) && fs::is_directory(output, ec)) output = canonical_or_self(output);
  const std::string out_canon = canonical_or_self(output);
  for (const std::string& in : {options.model_dir, source.weights_dir, source.config_dir()}) {
    const std::string in_canon = canonical_or_self(in);
    if (in_canon == out_canon) throw Error(output + ": the output folder is the input folder " + in);
    if (is_within(in_canon, out_canon)) throw Error(output + ": the output folder holds the input " + in);
  }
  if (fs::exists(output, ec)) {
    if (!fs::is_directory(output, ec)) throw Error(output + ": exists and is not a folder");
    if (!fs::is_empty(output, ec) && !options.overwrite) {
      throw Error(output + ": exists and is not empty (use --force to replace it)");
    }
  }

  // Read and check everything first: the model loads as openrm loads it.
  std::shared_ptr<const Tokenizer> tokenizer = find_tokenizer(options, source);
  if (is_within(canonical_or_self(tokenizer->source()), out_canon)) {
    throw Error(output + ": the output folder holds the tokenizer " + tokenizer->source());
  }
  // An adapter folder's openrm.json, else its base's.
  ModelMetadata meta = read_model_metadata(
      source.adapter() && !path_exists(join_path(source.weights_dir, "openrm.json")) ? source.base_dir
                                                                                     : source.weights_dir);
  const WeightStore store = WeightStore::open_folder(source.config_dir());
  std::map<at::ScalarType, std::int64_t> numel_by_dtype;
  for (const auto& name : store.names()) {
    const at::Tensor t = store.tensor(name);
    if (at::isFloatingType(t.scalar_type())) numel_by_dtype[t.scalar_type()] += t.numel();
  }
  at::ScalarType stored = at::kFloat;
  std::int64_t most = -1;
  for (const auto& [dtype, n] : numel_by_dtype) {
    if (n > most) stored = dtype, most = n;
  }
  ModelConfig config;
  Pooling pooling = Pooling::kRightmostNonPad;
  std::int64_t parameters = 0;
  // An adapter folder's weights are its base's with the adapter merged, in
  // the base's dtype (merge_lora adds in float32 and rounds once).
  std::shared_ptr<RewardModel> merged;
  {
    LoadOptions load;
    load.dtype = stored;
    load.base_model = source.base_dir;
    auto model = load_reward_model(source.weights_dir, load);
    config = model->config();
    pooling = model->pooling();
    for (const auto& p : model->parameters()) parameters += p.numel();
    if (source.adapter()) merged = model;
  }
  if (tokenizer->vocab_size() > config.vocab_size) {
    throw Error(tokenizer->source() + ": the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                " tokens but " + join_path(source.config_dir(), "config.json") + " field 'vocab_size' is " +
                std::to_string(config.vocab_size));
  }
  std::string format_why;
  const ChatFormat format = find_chat_format(source, meta, *tokenizer, format_why);
  log().info("exporting the {} {} (tokenizer {}, chat format {} from {})", source.kind, source.weights_dir,
             tokenizer->source(), chat_format_name(format), format_why);

  // pad_token_id: config.json's, else the option's, else the tokenizer's pad, else eos.
  ExportResult result;
  const SpecialTokens& special = tokenizer->special_tokens();
  const std::string config_path = join_path(source.config_dir(), "config.json");
  if (config.pad_token_id) {
    if (options.pad_token_id && *options.pad_token_id != *config.pad_token_id) {
      throw Error(config_path + ": field 'pad_token_id' is " + std::to_string(*config.pad_token_id) +
                  "; the pad_token_id option (" + std::to_string(*options.pad_token_id) +
                  ") would change which token the reward is read from");
    }
    result.pad_token_source = "config.json";
  } else if (options.pad_token_id) {
    config.pad_token_id = *options.pad_token_id;
    result.pad_token_source = "given to openrm-export";
  } else if (special.pad.present()) {
    config.pad_token_id = special.pad.id;
    result.pad_token_source = "the tokenizer's pad token " + special.pad.text;
  } else if (special.eos.present()) {
    config.pad_token_id = special.eos.id;
    result.pad_token_source = "the tokenizer's eos token " + special.eos.text + ", as it has no pad token";
  } else {
    throw Error(config_path + ": no field 'pad_token_id', and the tokenizer has neither a pad nor an eos token; "
                "give one with --pad-token-id");
  }
  result.pad_token_id = *config.pad_token_id;
  if (result.pad_token_id < 0 || result.pad_token_id >= config.vocab_size) {
    throw Error("pad_token_id " + std::to_string(result.pad_token_id) + " (" + result.pad_token_source +
                ") is outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
  }
  log().info("pad_token_id {} ({})", result.pad_token_id, result.pad_token_source);
  if (pooling == Pooling::kBeforeFirstPad) {
    log().warn("openrm pools this model with before_first_pad; transformers reads the rightmost token that is not "
               "pad_token_id, so sequences that contain token {} score differently there",
               result.pad_token_id);
  } else if (pooling == Pooling::kLastToken && special.eos.present() && result.pad_token_id == special.eos.id) {
    log().warn("pad_token_id is the eos token and openrm pools the last token: sequences that end with {} score "
               "differently in transformers, which skips it",
               special.eos.text);
  }

  // Write everything into a temporary folder beside the output.
  const fs::path out_path(out_canon);
  fs::create_directories(out_path.parent_path(), ec);
  if (ec) throw Error(out_path.parent_path().string() + ": cannot create folder: " + ec.message());
  const std::string tmp = join_path(out_path.parent_path().string(),
                                    ".tmp-export-" + out_path.filename().string() + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::remove_all(tmp + ".old", ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error(tmp + ": cannot create: " + ec.message());
  const TemporaryFolder interrupt_cleanup(tmp);  // removed by the tools' SIGINT/SIGTERM handler
  try {
    const auto target = target_dtype(options.dtype);
    const at::ScalarType written = target.value_or(stored);
    NamedTensors tensors;
    const auto add = [&](const std::string& name, at::Tensor t) {
      if (target && at::isFloatingType(t.scalar_type()) && t.scalar_type() != *target) t = t.to(*target);
      result.weight_bytes += static_cast<std::uint64_t>(t.numel()) * t.element_size();
      tensors.emplace_back(name, std::move(t));
    };
    if (merged) {
      for (const auto& item : merged->named_parameters()) add(item.key(), item.value().detach());
    } else {
      for (const auto& name : store.names()) add(name, store.tensor(name));
    }
    result.tensors = static_cast<std::int64_t>(tensors.size());
    save_safetensors_folder(tmp, tensors,
                            options.max_shard_bytes == 0 ? std::numeric_limits<std::uint64_t>::max()
                                                         : options.max_shard_bytes);
    tensors.clear();
    std::vector<HashedFile> exported_files;  // for the card: what a copy on the Hub must match
    for (auto& f : hash_model_files(tmp)) exported_files.push_back(std::move(f));

    Json cj = config.to_json();
    if (!cj.contains("architectures") || !cj["architectures"].is_array() || cj["architectures"].empty()) {
      cj["architectures"] = Json::array({config.architecture});
    }
    if (config.model_type.empty()) throw Error(config_path + ": no field 'model_type' (transformers needs it)");
    result.dtype = hf_dtype_name(written);
    cj["dtype"] = result.dtype;
    cj["torch_dtype"] = result.dtype;
    write_file_atomic(join_path(tmp, "config.json"), cj.dump(2) + "\n");

    result.chat_format = chat_format_name(format);
    result.chat_template = write_tokenizer_files(tmp, *tokenizer, format, result.pad_token_id);

    meta.pooling = pooling;
    meta.chat_format = format;
    write_model_metadata(tmp, meta);

    // The input's card and run records describe these weights only when
    // they are the input folder's own (not a checkpoint of its run).
    std::string source_card;
    if (!source.checkpoint) {
      const std::string readme = join_path(source.weights_dir, "README.md");
      if (path_exists(readme)) source_card = read_text_file(readme);
      for (const char* name : {"training_config.json", "metrics.jsonl", "evaluations.jsonl"}) {
        const std::string from = join_path(source.weights_dir, name);
        if (path_exists(from)) detail::copy_file_atomic(from, join_path(tmp, name));
      }
    }
    // A checkpoint's run card lends only its metadata header (license, base_model).
    std::string header_card = source_card;
    // So does the template card PEFT's save_pretrained writes beside an adapter.
    if (source.adapter() && card_header_value(source_card, "library_name") == "peft") source_card.clear();
    if (source.checkpoint && !source.run_dir.empty() && path_exists(join_path(source.run_dir, "README.md"))) {
      header_card = read_text_file(join_path(source.run_dir, "README.md"));
    }
    CardInputs card;
    card.options = &options;
    card.source = &source;
    card.config = &config;
    card.result = &result;
    card.pooling = pooling_name(pooling);
    card.source_card = source_card;
    card.parameters = parameters;
    card.lineage = describe_lineage(source.weights_dir, source.kind, source.base_dir);
    card.exported_files = std::move(exported_files);
    if (target && *target != stored) card.converted_from = hf_dtype_name(stored);
    card.license = !options.license.empty() ? options.license : card_header_value(header_card, "license");
    card.base_model = !options.base_model.empty() ? options.base_model : card_header_value(header_card, "base_model");
    if (source.adapter() && options.base_model.empty()) {
      // PEFT's card names the base as it was given, often a local path,
      // which the Hub's base_model cannot be; a Hub id in
      // base_model_name_or_path (the base given with --base-model-dir) is.
      if (!looks_like_hub_id(card.base_model)) card.base_model.clear();
      const Json adapter_config = read_json<Json>(join_path(source.weights_dir, "adapter_config.json"));
      const std::string named = option_string(adapter_config, "base_model_name_or_path");
      if (card.base_model.empty() && looks_like_hub_id(named)) card.base_model = named;
    }
    write_file_atomic(join_path(tmp, "README.md"), make_export_card(card));

    // The folder reads back: weights index, tokenizer.
    WeightStore::open_folder(tmp);
    const auto reread = load_tokenizer(tmp);
    if (reread->vocab_size() != tokenizer->vocab_size()) {
      throw Error("the exported tokenizer has " + std::to_string(reread->vocab_size()) + " tokens, the input's " +
                  std::to_string(tokenizer->vocab_size()));
    }
    for (const auto& entry : fs::directory_iterator(tmp)) result.files.push_back(entry.path().filename().string());
    std::sort(result.files.begin(), result.files.end());
    detail::sync_path(tmp);
    move_into_place(tmp, out_canon, options.overwrite);
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw Error("exporting to " + output + ": " + e.what());
  }
  result.output_dir = output;
  result.source = source.weights_dir;
  log().info("wrote {} ({} files)", output, result.files.size());
  return result;
}

}  // namespace openrm
