// Reward reports: the parts of the model cards that the trainer's card, the
// export's card and the appended evaluations share (hashing, lineage, the
// intended-use text, the "## Evaluations" part), and append_evaluation_to_card.
// docs/reward-reports.md.
#include "openrm/train/reward_report.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>

#include "io/json_util.h"
#include "logging.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/models/lora.h"
#include "openrm/version.h"
#include "train/model_card.h"

namespace openrm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr std::uint64_t kLogHashingFrom = 256ull << 20;  // files from this size get progress lines

std::string gib(std::uint64_t bytes) {
  return fixed(static_cast<double>(bytes) / static_cast<double>(1ull << 30), 2) + " GiB";
}

Json read_json(const std::string& path) {
  const std::string text = read_text_file(path);
  return detail::parse_json_checked<Json>(text.data(), text.data() + text.size(), path, detail::JsonParseLimits{});
}

// The shard files an index's "weight_map" names, in order, each once.
std::vector<std::string> index_shards(const std::string& index_path) {
  const Json index = read_json(index_path);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw Error(index_path + ": field 'weight_map': expected an object");
  }
  std::vector<std::string> shards;
  std::set<std::string> seen;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) throw Error(index_path + ": field 'weight_map." + tensor + "': expected a file name");
    if (seen.insert(file.get<std::string>()).second) shards.push_back(file.get<std::string>());
  }
  return shards;
}

HashedFile hashed(const std::string& folder, const std::string& name) {
  const std::string path = join_path(folder, name);
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  return {name, hash_file_logged(path), ec ? 0 : static_cast<std::uint64_t>(bytes)};
}

// The lines of a card with their offsets, marking those inside ``` blocks.
struct CardLine {
  std::size_t offset;
  std::string text;
  bool in_code;
};

std::vector<CardLine> card_lines(const std::string& card) {
  std::vector<CardLine> lines;
  bool code = false;
  std::size_t at = 0;
  while (at < card.size()) {
    std::size_t end = card.find('\n', at);
    if (end == std::string::npos) end = card.size();
    std::string text = card.substr(at, end - at);
    if (!text.empty() && text.back() == '\r') text.pop_back();
    const bool fence = text.rfind("```", 0) == 0;
    lines.push_back({at, text, code || fence});
    if (fence) code = !code;
    at = end + 1;
  }
  return lines;
}

bool is_level2_heading(const std::string& line) { return line.rfind("## ", 0) == 0; }

// A path that append_evaluation_to_card may replace: absent or a regular file.
// Not through a symlink: the Hub's cache links a folder's files to shared
// blobs, and replacing a link's target would change every folder that
// shares it.
bool check_replaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  if (S_ISLNK(st.st_mode)) {
    throw Error(path + ": is a symbolic link; openrm does not append evaluations through a link, whose target "
                "may be shared (the Hub's cache links files to shared blobs): replace it with a copy of the file");
  }
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a folder, not a file");
  if (!S_ISREG(st.st_mode)) throw Error(path + ": is not a regular file (a FIFO or device); nothing was appended");
  return true;
}

bool valid_date(const std::string& date) {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(date[i]))) return false;
  }
  return true;
}

std::string default_tool_version() { return std::string("openrm ") + OPENRM_VERSION_STRING; }

// The text of a JSON scalar in a table cell.
std::string cell(const OrderedJson& v) {
  if (v.is_null()) return "n/a";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number()) return fixed(v.get<double>());
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    for (char& c : s) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
  }
  return md_code(v.dump(-1, ' ', false, Json::error_handler_t::replace));
}

bool is_scalar(const OrderedJson& v) { return !v.is_object() && !v.is_array(); }

// Rows "a.b.c | value" for the scalars of an object (arrays of scalars
// joined); arrays of objects become tables of their own, after.
void flatten(const OrderedJson& v, const std::string& prefix, int depth,
             std::vector<std::pair<std::string, std::string>>& rows,
             std::vector<std::pair<std::string, const OrderedJson*>>& tables) {
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    const OrderedJson& x = it.value();
    if (is_scalar(x)) {
      rows.emplace_back(key, cell(x));
    } else if (x.is_object()) {
      if (depth < 3) flatten(x, key, depth + 1, rows, tables);
      else rows.emplace_back(key, "(nested)");
    } else if (std::all_of(x.begin(), x.end(), [](const OrderedJson& e) { return e.is_object(); }) && !x.empty()) {
      tables.emplace_back(key, &x);
    } else {
      std::string joined;
      std::size_t n = 0;
      for (const auto& e : x) {
        if (n++ == 20) {
          joined += ", ...";
          break;
        }
        joined += (joined.empty() ? "" : ", ") + (is_scalar(e) ? cell(e) : std::string("(nested)"));
      }
      rows.emplace_back(key, joined);
    }
  }
}

// An array of objects as a table: the union of their scalar fields.
void array_table(std::ostringstream& out, const std::string& name, const OrderedJson& rows) {
  std::vector<std::string> columns;
  for (const auto& r : rows) {
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (is_scalar(it.value()) && std::find(columns.begin(), columns.end(), it.key()) == columns.end() &&
          columns.size() < 12) {
        columns.push_back(it.key());
      }
    }
  }
  if (columns.empty()) return;
  out << "\n" << cell(OrderedJson(name)) << ":\n\n|";
  for (const auto& c : columns) out << " " << cell(OrderedJson(c)) << " |";
  out << "\n|";
  for (std::size_t i = 0; i < columns.size(); ++i) out << "---|";
  out << "\n";
  std::size_t n = 0;
  for (const auto& r : rows) {
    if (n++ == 100) {
      out << "\n(" << rows.size() - 100 << " more rows in evaluations.jsonl)\n";
      break;
    }
    out << "|";
    for (const auto& c : columns) out << " " << (r.contains(c) ? cell(r[c]) : std::string()) << " |";
    out << "\n";
  }
}

// An object of results (RewardBench's, a comparison's) as tables of its numbers.
void object_tables(std::ostringstream& out, const std::string& title, const OrderedJson& object) {
  if (!object.is_object()) {
    out << "\n" << title << ": " << cell(object) << "\n";
    return;
  }
  std::vector<std::pair<std::string, std::string>> rows;
  std::vector<std::pair<std::string, const OrderedJson*>> tables;
  flatten(object, "", 0, rows, tables);
  out << "\n" << title << ":\n";
  if (!rows.empty()) {
    out << "\n| | |\n|---|---|\n";
    for (const auto& [k, v] : rows) out << "| " << cell(OrderedJson(k)) << " | " << v << " |\n";
  }
  for (const auto& [name, table] : tables) array_table(out, name, *table);
}

const OrderedJson* field(const OrderedJson& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string utc_stamp() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  return buf;
}

// The first lines of a card for a folder whose README.md is missing.
std::string minimal_report(const std::string& model_dir, const std::string& date) {
  std::ostringstream out;
  out << "# Reward report\n\n"
      << "This folder had no model card (README.md) when openrm recorded its first evaluation below, on " << date
      << ", so the model's origin is unknown to openrm: its base model, training data, preference collection "
         "and training settings are **not recorded** here.";
  if (path_exists(join_path(model_dir, "trainer_state.json"))) {
    out << " The folder holds `trainer_state.json`, so it is a checkpoint written by `openrm-train`: its run's "
           "`training_config.json` holds the settings, and the run's README.md describes the run's final model, "
           "not this checkpoint.";
  }
  if (is_lora_adapter_folder(model_dir)) {
    std::string base;
    try {
      const Json config = read_json(join_path(model_dir, "adapter_config.json"));
      if (config.is_object() && config.value("base_model_name_or_path", Json()).is_string()) {
        base = config["base_model_name_or_path"].get<std::string>();
      }
    } catch (const std::exception&) {
    }
    out << " It is a PEFT LoRA adapter folder" << (base.empty() ? "" : " over the base model " + md_code(base))
        << ".";
  }
  out << " Only what follows was recorded; docs/reward-reports.md in openrm says what a full report holds.\n\n"
      << intended_use_section();
  return out.str();
}

}  // namespace

// ---- hashing and lineage -----------------------------------------------------

std::string hash_file_logged(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::is_regular_file(status)) {
    log().warn("{}: not a regular file (a pipe or device), so its SHA-256 is not recorded in the model card", path);
    return "";
  }
  const auto size = static_cast<std::uint64_t>(fs::file_size(path, ec));
  if (ec || size < kLogHashingFrom) return sha256_file(path);
  log().info("hashing {} ({}) for the model card", path, gib(size));
  using Clock = std::chrono::steady_clock;
  auto last = Clock::now();
  const std::string sha = sha256_file(path, [&](std::uint64_t done) {
    if (Clock::now() - last < std::chrono::seconds(10)) return;
    last = Clock::now();
    log().info("hashing {}: {:.0f}% of {}", path, 100.0 * static_cast<double>(done) / static_cast<double>(size),
               gib(size));
  });
  log().info("hashed {}: {}", path, sha);
  return sha;
}

std::vector<HashedFile> hash_model_files(const std::string& folder) {
  std::vector<std::string> names;
  const auto has = [&](const char* name) { return path_exists(join_path(folder, name)); };
  if (has("config.json")) names.push_back("config.json");
  if (has("model.safetensors.index.json")) {
    names.push_back("model.safetensors.index.json");
    for (auto& s : index_shards(join_path(folder, "model.safetensors.index.json"))) names.push_back(s);
  } else if (has("model.safetensors")) {
    names.push_back("model.safetensors");
  } else if (has("pytorch_model.bin.index.json")) {
    names.push_back("pytorch_model.bin.index.json");
    for (auto& s : index_shards(join_path(folder, "pytorch_model.bin.index.json"))) names.push_back(s);
  } else if (has("pytorch_model.bin")) {
    names.push_back("pytorch_model.bin");
  }
  for (const char* name : {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"}) {
    if (has(name)) names.push_back(name);
  }
  std::vector<HashedFile> files;
  for (const auto& name : names) files.push_back(hashed(folder, name));
  return files;
}

std::vector<LineageFolder> describe_lineage(const std::string& folder, const std::string& role,
                                            const std::string& base_dir) {
  std::vector<LineageFolder> out;
  LineageFolder f;
  f.role = role;
  f.path = folder;
  f.has_card = path_exists(join_path(folder, "README.md"));
  f.files = with_context(folder, [&] { return hash_model_files(folder); });
  const std::string config = join_path(folder, "config.json");
  if (path_exists(config)) {
    try {
      const Json j = read_json(config);
      if (j.is_object() && j.value("_name_or_path", Json()).is_string()) f.name_or_path = j["_name_or_path"];
    } catch (const std::exception&) {
      // The model loaded from this folder: its config was read; a name is extra.
    }
  }
  out.push_back(std::move(f));
  if (is_lora_adapter_folder(folder)) {
    const std::string base = lora_base_folder(folder, base_dir);
    for (auto& b : describe_lineage(base, "LoRA base model")) out.push_back(std::move(b));
  }
  return out;
}

std::string hashed_files_table(const std::vector<HashedFile>& files) {
  std::ostringstream out;
  out << "| file | bytes | sha256 |\n|---|---|---|\n";
  for (const auto& f : files) {
    out << "| " << md_code(f.name) << " | " << f.bytes << " | "
        << (f.sha256.empty() ? std::string("not hashed") : md_code(f.sha256)) << " |\n";
  }
  return out.str();
}

std::string lineage_markdown(const std::vector<LineageFolder>& lineage) {
  std::ostringstream out;
  for (const auto& f : lineage) {
    out << "The " << f.role << " " << md_code(f.path);
    if (!f.name_or_path.empty() && f.name_or_path != f.path) {
      out << " (its config.json's `_name_or_path`: " << md_code(f.name_or_path) << ")";
    }
    out << ":\n\n" << hashed_files_table(f.files) << "\n";
    if (f.has_card) out << "That folder has a model card of its own (README.md), which tells where it came from.\n\n";
  }
  if (!lineage.empty()) {
    out << "The SHA-256 of a weight file is the Git LFS oid the Hugging Face Hub shows for it (\"SHA256\" on the "
           "file's page; the `lfs.sha256` of `huggingface_hub`'s `get_paths_info`): a copy of the model on the Hub "
           "can be checked against this table; `sha256sum FILE` checks a local copy.\n\n";
  }
  return out.str();
}

TrainingPairStats training_pair_stats(const std::vector<TokenizedPair>& pairs) {
  TrainingPairStats s;
  s.pairs = static_cast<std::int64_t>(pairs.size());
  std::int64_t chosen_longer = 0;
  for (const auto& p : pairs) {
    if (p.has_margin) ++s.with_margin;
    if (p.chosen.size() == p.rejected.size()) continue;
    ++s.pairs_with_length_difference;
    if (p.chosen.size() > p.rejected.size()) ++chosen_longer;
  }
  if (s.pairs_with_length_difference > 0) {
    s.chosen_longer_rate = static_cast<double>(chosen_longer) / static_cast<double>(s.pairs_with_length_difference);
  }
  return s;
}

// ---- shared card text ---------------------------------------------------------

std::string md_code(const std::string& text) {
  std::string s;
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) s += ' ';
    else if (c == '|') s += "\\|";
    else s += c;
  }
  // A span that holds backticks is fenced by more of them than it has in a row.
  std::size_t run = 0, longest = 0;
  for (char c : s) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  if (longest == 0) return "`" + s + "`";
  const std::string fence(longest + 1, '`');
  return fence + " " + s + " " + fence;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

std::string intended_use_section() {
  return "## Intended use\n\n"
         "A reward model maps a prompt and one response to a scalar reward; only the difference between the "
         "rewards of two responses to the same prompt means anything (the Bradley-Terry probability that the "
         "first is preferred is sigmoid(r1 - r2)). It is meant for:\n\n"
         "- the reward signal of RLHF policy optimisation (PPO, GRPO, ...), after checking the length-bias "
         "figures: a policy optimised against a reward model exploits whatever the model over-rewards;\n"
         "- best-of-n sampling: choosing among candidate responses to one prompt;\n"
         "- evaluation and filtering: comparing responses, or systems, on prompts like those it was trained on, "
         "as one signal among others.\n\n"
         "Out of scope: an absolute measure of quality, truthfulness or safety; the only safety filter of a "
         "system; decisions about people; comparing rewards across different prompts or different reward models "
         "without calibration; prompts, languages, domains or chat formats unlike its training data; texts longer "
         "than its max_length (they are cut, see the truncation policy).\n\n";
}

std::string evaluations_heading_section() {
  return std::string(kEvaluationsHeading) +
         "\n\nEvaluations recorded after the model was written (`openrm-eval --update-card`) follow, oldest "
         "first; `evaluations.jsonl` in the folder holds the same records, one JSON object a line.\n\n";
}

std::string card_evaluations_part(const std::string& card) {
  const auto lines = card_lines(card);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->in_code || !is_level2_heading(it->text)) continue;
    return it->text == kEvaluationsHeading ? card.substr(it->offset) : std::string();
  }
  return "";
}

void write_training_card(const std::string& dir, const std::string& card, bool same_model) {
  const std::string readme = join_path(dir, "README.md");
  const std::string jsonl = join_path(dir, "evaluations.jsonl");
  std::error_code ec;
  const bool old_readme = fs::is_regular_file(readme, ec);
  const std::string old = old_readme ? read_text_file(readme) : std::string();
  const std::string old_evaluations = card_evaluations_part(old);
  const bool recorded = path_exists(jsonl) || old_evaluations.find("\n### Evaluation on ") != std::string::npos;
  if (!recorded) {
    write_file_atomic(readme, card);
    return;
  }
  const std::string own = card_evaluations_part(card);
  if (same_model) {
    write_file_atomic(readme, card.substr(0, card.size() - own.size()) +
                                  (old_evaluations.empty() ? own : old_evaluations));
    return;
  }
  const std::string stamp = utc_stamp();
  std::string note = "The evaluations recorded for the model this run replaced";
  std::vector<std::string> kept;
  if (old_readme) {
    const std::string name = "README.replaced-" + stamp + ".md";
    write_file_atomic(join_path(dir, name), old);
    kept.push_back(name);
  }
  if (path_exists(jsonl)) {
    const std::string name = "evaluations.replaced-" + stamp + ".jsonl";
    fs::rename(jsonl, join_path(dir, name), ec);
    if (ec) throw Error(jsonl + ": cannot rename it to " + name + ": " + ec.message());
    kept.push_back(name);
  }
  note += " are kept in ";
  for (std::size_t i = 0; i < kept.size(); ++i) note += (i ? " and " : "") + md_code(kept[i]);
  note += "; they do not describe this model.\n\n";
  log().warn("{}: the evaluations recorded for the model this run replaced are kept in {}", dir,
             kept.empty() ? std::string("(none)") : kept.back());
  write_file_atomic(readme, card + note);
}

// ---- appended evaluations -------------------------------------------------------

std::string evaluation_card_section(const CardEvaluation& e) {
  const OrderedJson& m = e.metrics;
  const std::string sha = e.data_sha256.empty() ? std::string("sha256 not recorded") : "sha256 " + md_code(e.data_sha256);
  std::ostringstream out;
  const std::string data = e.data_path.empty() ? std::string("unnamed data")
                           : e.data_path == "-"  ? std::string("standard input")
                                                 : md_code(e.data_path);
  out << "### Evaluation on " << e.date << ": " << data << " (" << sha << ")\n\n";
  out << "Recorded by " << (e.tool_version.empty() ? default_tool_version() : e.tool_version) << "; " << e.pairs
      << " pairs";
  if (const auto* f = field(m, "chat_format"); f && f->is_string()) out << ", chat format " << md_code(f->get<std::string>());
  if (const auto* f = field(m, "max_length"); f && f->is_number()) out << ", max_length " << cell(*f);
  if (const auto* f = field(m, "truncation_policy"); f && f->is_string()) {
    out << ", truncation policy " << md_code(f->get<std::string>());
  }
  if (const auto* f = field(m, "reward_label"); f && !f->is_null()) out << ", reward label " << cell(*f);
  out << ".\n\n| metric | value |\n|---|---|\n";
  const auto row = [&](const char* label, const char* key) {
    if (const auto* f = field(m, key)) out << "| " << label << " | " << cell(*f) << " |\n";
  };
  row("pairs", "pairs");
  row("accuracy (a tie counts as wrong)", "accuracy");
  row("ties", "ties");
  row("mean margin r_chosen - r_rejected", "mean_margin");
  row("Bradley-Terry loss", "loss");
  row("expected calibration error", "ece");
  if (field(m, "reward_mean") || field(m, "reward_std")) {
    const OrderedJson none;
    const auto* mean = field(m, "reward_mean");
    const auto* std = field(m, "reward_std");
    out << "| reward mean / std | " << cell(mean ? *mean : none) << " / " << cell(std ? *std : none) << " |\n";
  }
  row("pairs with a non-finite reward", "non_finite");
  if (const auto* lb = field(m, "length_bias"); lb && lb->is_object()) {
    const OrderedJson none;
    const auto get = [&](const char* k) { return lb->contains(k) ? (*lb)[k] : none; };
    const std::string kind = lb->contains("length") && (*lb)["length"].is_string() ? (*lb)["length"].get<std::string>()
                                                                                   : std::string("length");
    out << "| Pearson(reward, " << cell(OrderedJson(kind == "sequence" ? std::string("sequence tokens") : kind))
        << ") | " << cell(get("pearson")) << " |\n"
        << "| longer response wins (model / data's chosen side) | " << cell(get("longer_wins_rate")) << " / "
        << cell(get("chosen_longer_rate")) << " (of " << cell(get("pairs_with_length_difference"))
        << " pairs whose sides differ in length) |\n";
  } else if (field(m, "length_bias")) {
    out << "| length bias | not measured (some lengths unknown) |\n";
  }
  if (const auto* t = field(m, "truncation"); t && t->is_object()) {
    const OrderedJson none;
    const auto get = [&](const char* k) { return t->contains(k) ? (*t)[k] : none; };
    out << "| pairs kept / truncated / dropped | " << cell(get("kept")) << " / " << cell(get("truncated")) << " / "
        << cell(get("dropped")) << " |\n";
  }
  if (const auto* bins = field(m, "calibration"); bins && bins->is_array() && !bins->empty()) {
    out << "\nCalibration of P(chosen preferred) = sigmoid(r_chosen - r_rejected), over both orderings of each "
           "pair:\n\n| bin | predictions | mean predicted | observed frequency |\n|---|---|---|---|\n";
    for (std::size_t i = 0; i < bins->size(); ++i) {
      const OrderedJson& b = (*bins)[i];
      if (!b.is_object()) continue;
      const OrderedJson none;
      const auto get = [&](const char* k) { return b.contains(k) ? b[k] : none; };
      const auto bound = [&](const char* k) {
        const OrderedJson v = get(k);
        return v.is_number() ? fixed(v.get<double>(), 2) : cell(v);
      };
      out << "| [" << bound("lower") << ", " << bound("upper") << (i + 1 == bins->size() ? "]" : ")")
          << " | " << cell(get("count")) << " | "
          << cell(get("mean_predicted")) << " | " << cell(get("observed_frequency")) << " |\n";
    }
  }
  if (const auto* rb = field(m, "rewardbench")) object_tables(out, "RewardBench", *rb);
  if (const auto* cmp = field(m, "comparison")) object_tables(out, "Comparison", *cmp);
  out << "\n";
  return out.str();
}

std::string evaluation_json_line(const CardEvaluation& e) {
  OrderedJson j;
  j["date"] = e.date;
  j["data"] = e.data_path;
  j["data_sha256"] = e.data_sha256.empty() ? OrderedJson() : OrderedJson(e.data_sha256);
  j["pairs"] = e.pairs;
  j["tool_version"] = e.tool_version.empty() ? default_tool_version() : e.tool_version;
  j["metrics"] = e.metrics;
  // A path need not be UTF-8; the line must still be written.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

void append_evaluation_to_card(const std::string& model_dir, const CardEvaluation& given) {
  std::error_code ec;
  if (!fs::exists(model_dir, ec)) throw Error(model_dir + ": no such folder");
  if (!fs::is_directory(model_dir, ec)) throw Error(model_dir + ": not a folder");
  if (!given.metrics.is_object()) {
    throw Error("the evaluation of " + given.data_path + " for " + model_dir + "'s card: metrics: expected a JSON object");
  }
  CardEvaluation e = given;
  if (e.date.empty()) e.date = today_utc();
  if (!valid_date(e.date)) throw Error("the evaluation date '" + e.date + "': expected YYYY-MM-DD");
  if (e.tool_version.empty()) e.tool_version = default_tool_version();
  if (e.data_sha256.empty() && !e.data_path.empty() && e.data_path != "-") e.data_sha256 = hash_file_logged(e.data_path);

  // Both files are checked before either is written.
  const std::string readme = join_path(model_dir, "README.md");
  const std::string jsonl = join_path(model_dir, "evaluations.jsonl");
  const bool has_readme = check_replaceable(readme);
  const bool has_jsonl = check_replaceable(jsonl);

  const std::string old_card = has_readme ? read_text_file(readme) : std::string();
  std::string card = old_card;
  if (card.empty()) {
    card = minimal_report(model_dir, e.date) + evaluations_heading_section();
  } else {
    if (card.back() != '\n') card += "\n";
    if (card_evaluations_part(card).empty()) card += "\n" + evaluations_heading_section();
  }
  if (card.size() < 2 || card.compare(card.size() - 2, 2, "\n\n") != 0) card += "\n";
  card += evaluation_card_section(e);

  std::string lines = has_jsonl ? read_text_file(jsonl) : std::string();
  if (!lines.empty() && lines.back() != '\n') lines += "\n";  // a cut last line stays a line of its own
  lines += evaluation_json_line(e);

  write_file_atomic(jsonl, lines);
  try {
    write_file_atomic(readme, card);
  } catch (const std::exception& x) {
    throw Error(std::string(x.what()) + " (" + jsonl + " already has the evaluation; README.md is as it was)");
  }
  log().info("{}: appended the evaluation of {} to README.md and evaluations.jsonl", model_dir, e.data_path);
}

}  // namespace openrm
