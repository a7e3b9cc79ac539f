// bench_hf_tokenize: openrm's tokenizer.json backend against Hugging Face
// tokenizers (the Rust library, through its Python binding), in one run on
// the same texts and cores; then tokenizing's share of scoring a file with a
// small model, as openrm-score does it.
//
//   bench_hf_tokenize [--tokenizer TOKENIZER_JSON_OR_FOLDER] [--data FILE] [--repeat 3]
//                     [--threads N] [--python PY] [--peer bench/hf_tokenize_peer.py]
//                     [--score-hidden 128] [--score-layers 2] [--score-pairs 0] [--json OUT]
//
// The texts are the "chosen" then the "rejected" text of every record of the
// hh-rlhf file (3,600 for the shared test split), encoded whole with
// add_bos/add_eos off. openrm encodes them with `encode` on 1 thread and on
// all threads (std::threads taking chunks of texts from a shared counter);
// the peer, bench/hf_tokenize_peer.py, times tokenizers' encode_batch and
// encode_batch_fast (add_special_tokens=False) with RAYON_NUM_THREADS=1 and
// with all threads. Both sides report two figures, best of --repeat:
//   cold: a freshly loaded tokenizer's first pass (an empty word cache);
//   warm: one more pass over the same texts (every word already cached).
// Loading is timed apart. The ids of both must be identical, text by text.
//
// Then (--score-hidden > 0) a random-weight Llama reward model of that
// shape, with the vocabulary of the tokenizer, is saved into a temporary
// folder with the tokenizer beside it, and the hh-rlhf pairs are scored the
// way openrm-score does (Scorer::from_folder, then score_file, hh format):
// tokenizing's seconds (ScoreStats::tokenize_seconds) over the wall time.
//
// Without the data, the shared tokenizer or the reference environment
// (scripts/install-reference.sh, or OPENRM_REFERENCE_PYTHON), it says what
// is missing and skips that part.
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "openrm/data/jsonl.h"
#include "openrm/score/scorer.h"
#include "tool_main.h"

#ifndef OPENRM_BENCH_DIR
#define OPENRM_BENCH_DIR "bench"
#endif

namespace {

using openrm::bench::Clock;
using openrm::bench::Json;
using openrm::bench::seconds_since;
using openrm::TokenId;

struct Options {
  std::string tokenizer = "../shared/data/gpt2-tokenizer.json";
  std::string data = "../shared/data/hh-rlhf-harmless-base-test-1800.jsonl.gz";
  int repeat = 3;
  int threads = 0;
  std::string python;  // "" : the reference environment's
  std::string peer = std::string(OPENRM_BENCH_DIR) + "/hf_tokenize_peer.py";
  std::int64_t score_hidden = 128;
  std::int64_t score_layers = 2;
  std::int64_t score_pairs = 0;  // 0: all
  std::int64_t score_max_tokens = 16384;
  std::string score_format = "hh";
  std::string json_out;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The reference environment's python, as the tests find it:
// $OPENRM_REFERENCE_PYTHON, else $OPENRM_REFERENCE_VENV/bin/python, else
// ~/.cache/openrm/reference-venv/bin/python; "" when it is not there.
std::string reference_python() {
  std::string path = env("OPENRM_REFERENCE_PYTHON");
  if (path.empty() && !env("OPENRM_REFERENCE_VENV").empty()) path = env("OPENRM_REFERENCE_VENV") + "/bin/python";
  if (path.empty() && !env("HOME").empty()) path = env("HOME") + "/.cache/openrm/reference-venv/bin/python";
  return !path.empty() && ::access(path.c_str(), X_OK) == 0 ? path : "";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(' '));
        return name;
      }
    }
  }
  return "?";
}

std::string today_utc() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

// The chosen then the rejected text of every record, in file order.
std::vector<std::string> read_texts(const std::string& path, std::int64_t* records) {
  openrm::JsonlReader reader(path);
  std::vector<std::string> texts;
  std::string line;
  *records = 0;
  while (reader.next(line)) {
    const Json record = reader.parse(line);
    for (const char* key : {"chosen", "rejected"}) {
      if (!record.contains(key) || !record[key].is_string()) {
        throw openrm::Error(reader.location() + ": no string \"" + key + "\"");
      }
      texts.push_back(record[key].get<std::string>());
    }
    ++*records;
  }
  return texts;
}

// ---- openrm's side ------------------------------------------------------------

// User + system seconds of this process, all threads.
double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Seconds {
  double wall = 1e30, cpu = 0;
  bool operator<(const Seconds& o) const { return wall < o.wall; }
};

// Encodes every text into ids[i] on `threads` threads; returns the wall and
// CPU seconds.
Seconds encode_all(const openrm::Tokenizer& tok, const std::vector<std::string>& texts, int threads,
                  std::vector<std::vector<TokenId>>& ids) {
  openrm::EncodeOptions options;
  options.add_bos = false;
  options.add_eos = false;
  ids.assign(texts.size(), {});
  constexpr std::size_t kChunk = 8;  // texts taken at a time: a balance without a long tail
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (;;) {
      const std::size_t begin = next.fetch_add(kChunk);
      if (begin >= texts.size()) return;
      const std::size_t end = std::min(texts.size(), begin + kChunk);
      for (std::size_t i = begin; i < end; ++i) ids[i] = tok.encode(texts[i], options);
    }
  };
  const double cpu0 = process_cpu_seconds();
  auto t0 = Clock::now();
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  return {seconds_since(t0), process_cpu_seconds() - cpu0};
}

struct Figures {
  double load_s = 1e30;
  Seconds cold, warm;  // the fastest run of each
  std::int64_t tokens = 0;
};

std::int64_t count_tokens(const std::vector<std::vector<TokenId>>& ids) {
  std::int64_t n = 0;
  for (const auto& v : ids) n += static_cast<std::int64_t>(v.size());
  return n;
}

// As the peer does it: `repeat` fresh loads, each timed on its first pass
// (cold); after the first of them, `repeat` more passes (warm).
Figures measure_openrm(const std::string& path, const std::vector<std::string>& texts, int threads, int repeat,
                       std::vector<std::vector<TokenId>>* first_ids) {
  Figures f;
  std::vector<std::vector<TokenId>> ids;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    auto tok = openrm::load_tokenizer(path);
    f.load_s = std::min(f.load_s, seconds_since(t0));
    f.cold = std::min(f.cold, encode_all(*tok, texts, threads, ids));
    if (r == 0) {
      f.tokens = count_tokens(ids);
      if (first_ids) *first_ids = ids;
      for (int w = 0; w < repeat; ++w) f.warm = std::min(f.warm, encode_all(*tok, texts, threads, ids));
    }
  }
  return f;
}

// ---- the peer -------------------------------------------------------------------

struct Peer {
  bool ran = false;
  std::string why_not;  // when it did not run
  Json result;
};

// Runs the peer with `threads` rayon threads (1: parallelism off too);
// writes its encode_batch ids to ids_out when that is not empty.
Peer run_peer(const Options& o, const std::string& python, int threads, const std::string& ids_out) {
  Peer p;
  std::string cmd = "RAYON_NUM_THREADS=" + std::to_string(threads) +
                    " TOKENIZERS_PARALLELISM=" + (threads > 1 ? "true" : "false") + " " + shell_quote(python) +
                    " " + shell_quote(o.peer) + " --tokenizer " + shell_quote(o.tokenizer) + " --data " +
                    shell_quote(o.data) + " --repeat " + std::to_string(o.repeat);
  if (!ids_out.empty()) cmd += " --ids-out " + shell_quote(ids_out);
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) {
    p.why_not = "could not start " + python;
    return p;
  }
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77) {
    p.why_not = python + " has no tokenizers (scripts/install-reference.sh installs it)";
    return p;
  }
  if (code != 0) throw openrm::Error("the peer failed (exit status " + std::to_string(code) + "): " + cmd);
  const auto last = out.find_last_of('{');
  const auto start = out.rfind('\n', last == std::string::npos ? 0 : last);
  try {
    p.result = Json::parse(out.substr(start == std::string::npos ? 0 : start + 1));
  } catch (const std::exception& e) {
    throw openrm::Error("the peer printed no JSON result (" + std::string(e.what()) + "): " + out);
  }
  p.ran = true;
  return p;
}

// The peer's ids file: count, lengths, ids (int32, little-endian).
std::vector<std::vector<TokenId>> read_peer_ids(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  auto read = [&](std::int32_t& v) {
    if (!f.read(reinterpret_cast<char*>(&v), sizeof v)) throw openrm::Error(path + ": truncated");
  };
  std::int32_t count = 0;
  read(count);
  std::vector<std::vector<TokenId>> ids(static_cast<std::size_t>(count));
  for (auto& v : ids) {
    std::int32_t len = 0;
    read(len);
    v.resize(static_cast<std::size_t>(len));
  }
  for (auto& v : ids) {
    for (auto& id : v) read(id);
  }
  return ids;
}

Figures peer_figures(const Peer& p, const char* method) {
  Figures f;
  const Json& m = p.result["methods"][method];
  f.load_s = m["load_s"].get<double>();
  f.cold = {m["cold_s"].get<double>(), m["cold_cpu_s"].get<double>()};
  f.warm = {m["warm_s"].get<double>(), m["warm_cpu_s"].get<double>()};
  f.tokens = m["tokens"].get<std::int64_t>();
  return f;
}

// ---- tokenizing's share of scoring ------------------------------------------

struct Share {
  double load_s = 0, score_file_s = 0, tokenize_s = 0, forward_s = 0;
  std::int64_t records = 0, sequences = 0, tokens = 0, computed = 0, batches = 0, truncated = 0;
  std::int64_t vocab = 0, parameters = 0;
  std::string model;
};

Share score_share(const Options& o, const openrm::Tokenizer& tok, int threads) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/bench_hf_tokenize.XXXXXX";
  if (!::mkdtemp(tmpl)) throw openrm::Error("cannot make a temporary folder under /tmp");
  const std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};

  Share s;
  const std::string folder = dir + "/model";
  openrm::bench::CommonOptions shape_options;
  shape_options.hidden = o.score_hidden;
  shape_options.layers = o.score_layers;
  shape_options.vocab = tok.vocab_size();
  const auto shape = openrm::bench::make_shape(shape_options);
  {
    auto model = openrm::bench::make_model(shape, /*max_positions=*/2048, /*seed=*/0);
    s.parameters = openrm::bench::parameter_count(*model);
    openrm::save_reward_model(*model, folder);
  }
  s.vocab = shape.vocab;
  s.model = openrm::bench::describe_model(shape, s.parameters);
  if (openrm::is_directory(o.tokenizer)) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"}) {
      const std::string from = openrm::join_path(o.tokenizer, name);
      if (openrm::path_exists(from)) fs::copy_file(from, openrm::join_path(folder, name));
    }
  } else {
    fs::copy_file(o.tokenizer, openrm::join_path(folder, "tokenizer.json"));
  }
  std::string input = o.data;
  if (o.score_pairs > 0) {  // the first N records
    input = dir + "/pairs.jsonl";
    openrm::JsonlReader reader(o.data);
    std::string line, text;
    for (std::int64_t i = 0; i < o.score_pairs && reader.next(line); ++i) text += line + "\n";
    openrm::write_file_atomic(input, text);
  }

  // What openrm-score does (tools/openrm-score.cpp), with no output file.
  openrm::ScoreOptions options;
  options.threads = threads;
  options.max_tokens = o.score_max_tokens;
  options.chat_format = openrm::chat_format_from_name(o.score_format);
  auto t0 = Clock::now();
  openrm::Scorer scorer = openrm::Scorer::from_folder(folder, options);
  s.load_s = seconds_since(t0);
  openrm::ScoreFileOptions file_options;
  file_options.progress_seconds = 0;
  std::size_t written = 0;
  const auto result =
      openrm::score_file(scorer, input, [&](const std::string& line) { written += line.size(); }, file_options);
  s.score_file_s = result.seconds;
  s.tokenize_s = result.stats.tokenize_seconds;
  s.forward_s = result.stats.seconds;
  s.records = result.records;
  s.sequences = result.stats.sequences;
  s.tokens = result.stats.tokens;
  s.computed = result.stats.computed_tokens;
  s.batches = result.stats.batches;
  s.truncated = result.stats.truncation.truncated;
  return s;
}

std::string per_s(std::int64_t tokens, double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(tokens) / seconds);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Benchmark openrm's tokenizer.json encoding against Hugging Face tokenizers, in one run."};
  app.add_option("--tokenizer", o.tokenizer, "tokenizer.json, or a folder holding one")->capture_default_str();
  app.add_option("--data", o.data, "hh-rlhf .jsonl(.gz): its chosen and rejected texts are encoded")
      ->capture_default_str();
  app.add_option("--repeat", o.repeat, "runs per figure; the best is reported")
      ->capture_default_str()
      ->check(openrm::tools::integer_at_least(1));
  app.add_option("--threads", o.threads, "threads of the parallel runs (0: all)")->capture_default_str();
  app.add_option("--python", o.python, "python with tokenizers (default: the reference environment's)");
  app.add_option("--peer", o.peer, "the tokenizers side (hf_tokenize_peer.py)")->capture_default_str();
  app.add_option("--score-hidden", o.score_hidden, "hidden size of the scoring model (0: skip the share)")
      ->capture_default_str();
  app.add_option("--score-layers", o.score_layers, "layers of the scoring model")->capture_default_str();
  app.add_option("--score-pairs", o.score_pairs, "records scored (0: all)")->capture_default_str();
  app.add_option("--score-max-tokens", o.score_max_tokens, "token budget of one forward pass")
      ->capture_default_str();
  app.add_option("--score-format", o.score_format, "chat format the pairs are scored in")->capture_default_str();
  app.add_option("--json", o.json_out, "also write the results as JSON here");
  return openrm::tools::run_tool("bench_hf_tokenize", app, argc, argv, [&] {
    for (const auto& path : {o.data, o.tokenizer}) {
      if (!openrm::path_exists(path)) {
        std::printf("bench_hf_tokenize: skipped: %s does not exist (the defaults need ../shared/data; pass --data "
                    "and --tokenizer)\n",
                    path.c_str());
        return;
      }
    }
    const int all = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    openrm::set_log_level(openrm::LogLevel::kWarn);
    const double load_before = openrm::bench::load_average();
    std::int64_t records = 0;
    const auto texts = read_texts(o.data, &records);
    std::int64_t bytes = 0;
    for (const auto& t : texts) bytes += static_cast<std::int64_t>(t.size());

    std::printf("bench_hf_tokenize: %s on %lld texts (chosen and rejected of the %lld records of %s, %.1f MB), "
                "add_bos/add_eos off, best of %d\n",
                o.tokenizer.c_str(), static_cast<long long>(texts.size()), static_cast<long long>(records),
                o.data.c_str(), static_cast<double>(bytes) / 1e6, o.repeat);
    std::printf("machine: %s, %u hardware threads; 1-minute load average before: %.2f; %s\n", cpu_model().c_str(),
                std::thread::hardware_concurrency(), load_before, today_utc().c_str());
    std::printf("cold = a freshly loaded tokenizer's first pass over all the texts (empty word cache); warm = a "
                "further pass over the same texts (every word cached); loading is timed apart\n");
    std::fflush(stdout);

    std::vector<int> thread_counts = {1};
    if (all > 1) thread_counts.push_back(all);

    std::string python = o.python.empty() ? reference_python() : o.python;
    std::string no_peer;
    if (python.empty()) {
      no_peer = "the reference environment (python with tokenizers) is not installed; run "
                "scripts/install-reference.sh (or set OPENRM_REFERENCE_PYTHON)";
    } else if (::access(python.c_str(), X_OK) != 0) {
      no_peer = python + " is not an executable (--python)";
    } else if (!openrm::path_exists(o.peer)) {
      no_peer = o.peer + " not found (--peer)";
    }
    char tmpl[] = "/tmp/bench_hf_tokenize_ids.XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw openrm::Error("cannot make a temporary file under /tmp");
    ::close(fd);
    const std::string ids_path = tmpl;
    struct RemoveFile {
      std::string path;
      ~RemoveFile() { std::remove(path.c_str()); }
    } remove_ids{ids_path};

    // Interleaved, so that both sides see the same state of the machine.
    struct Row {
      std::string library;
      int threads;
      Figures f;
    };
    std::vector<Row> rows;
    std::vector<std::vector<TokenId>> ours;
    Json peer_info;
    for (int threads : thread_counts) {
      rows.push_back({"openrm", threads, measure_openrm(o.tokenizer, texts, threads, o.repeat, threads == 1 ? &ours : nullptr)});
      if (!no_peer.empty()) continue;
      Peer p = run_peer(o, python, threads, threads == 1 ? ids_path : "");
      if (!p.ran) {
        no_peer = p.why_not;
        continue;
      }
      peer_info = p.result;
      for (const char* method : {"encode_batch", "encode_batch_fast"}) {
        if (p.result["methods"].contains(method)) {
          rows.push_back({std::string("tokenizers ") + method, threads, peer_figures(p, method)});
        }
      }
    }

    Json out = {{"tokenizer", o.tokenizer}, {"data", o.data}, {"texts", texts.size()}, {"bytes", bytes},
                {"repeat", o.repeat}, {"machine", cpu_model()}, {"hardware_threads", std::thread::hardware_concurrency()},
                {"load_average_before", load_before}, {"date", today_utc()}, {"rows", Json::array()}};

    // Same ids, text by text.
    std::string ids_line;
    bool ids_differ = false;
    if (no_peer.empty()) {
      const auto theirs = read_peer_ids(ids_path);
      std::size_t differ = 0, first = texts.size();
      if (theirs.size() != ours.size()) throw openrm::Error("the peer encoded a different number of texts");
      for (std::size_t i = 0; i < ours.size(); ++i) {
        if (ours[i] != theirs[i]) {
          ++differ;
          first = std::min(first, i);
        }
      }
      if (differ == 0) {
        ids_line = "ids: identical to tokenizers' for all " + std::to_string(texts.size()) + " texts (" +
                   std::to_string(count_tokens(ours)) + " tokens)";
      } else {
        ids_line = "ids: DIFFER from tokenizers' for " + std::to_string(differ) + " of " +
                   std::to_string(texts.size()) + " texts (the first: text " + std::to_string(first) +
                   "); the speeds below compare different work";
      }
      // Only the first encode_batch run's ids are written out; every other
      // run of the peer must give the same total.
      bool totals_agree = true;
      for (const auto& r : rows) {
        if (r.library != "openrm" && r.f.tokens != count_tokens(ours)) {
          totals_agree = false;
          ids_line += "; but " + r.library + " on " + std::to_string(r.threads) + " thread(s) gave " +
                      std::to_string(r.f.tokens) + " tokens in all";
        }
      }
      ids_differ = differ > 0 || !totals_agree;
      out["ids_identical"] = !ids_differ;
      out["texts_differing"] = differ;
      out["tokenizers_version"] = peer_info["tokenizers"];
      out["python"] = peer_info["python"];
    } else {
      ids_line = "tokenizers: skipped: " + no_peer;
    }
    std::printf("%s\n", ids_line.c_str());
    if (!peer_info.is_null()) {
      std::printf("tokenizers %s (python %s), as bench/hf_tokenize_peer.py calls it: RAYON_NUM_THREADS=1 "
                  "TOKENIZERS_PARALLELISM=false for 1 thread, RAYON_NUM_THREADS=%d for %d\n",
                  peer_info["tokenizers"].get<std::string>().c_str(), peer_info["python"].get<std::string>().c_str(),
                  all, all);
    }

    std::printf("(cpu s: the process's CPU seconds in that run, all threads; wall s x threads above it means "
                "the threads waited for cores)\n");
    std::printf("\n%-30s %7s %7s %7s %7s %14s %7s %7s %14s\n", "library", "threads", "load s", "cold s", "cpu s",
                "cold tokens/s", "warm s", "cpu s", "warm tokens/s");
    for (const auto& r : rows) {
      std::printf("%-30s %7d %7.3f %7.3f %7.3f %14s %7.3f %7.3f %14s\n", r.library.c_str(), r.threads, r.f.load_s,
                  r.f.cold.wall, r.f.cold.cpu, per_s(r.f.tokens, r.f.cold.wall).c_str(), r.f.warm.wall, r.f.warm.cpu,
                  per_s(r.f.tokens, r.f.warm.wall).c_str());
      out["rows"].push_back({{"library", r.library}, {"threads", r.threads}, {"tokens", r.f.tokens},
                             {"load_s", r.f.load_s}, {"cold_s", r.f.cold.wall}, {"cold_cpu_s", r.f.cold.cpu},
                             {"warm_s", r.f.warm.wall}, {"warm_cpu_s", r.f.warm.cpu},
                             {"cold_tokens_per_s", static_cast<double>(r.f.tokens) / r.f.cold.wall},
                             {"warm_tokens_per_s", static_cast<double>(r.f.tokens) / r.f.warm.wall}});
    }
    // Ratios of tokens/s: openrm over each tokenizers method, at each thread count.
    out["ratios"] = Json::array();
    bool printed_header = false;
    for (const auto& mine : rows) {
      if (mine.library != "openrm") continue;
      for (const auto& theirs : rows) {
        if (theirs.library == "openrm" || theirs.threads != mine.threads) continue;
        if (!printed_header) {
          std::printf("\nopenrm / tokenizers, tokens/s (above 1: openrm faster):\n");
          printed_header = true;
        }
        const double cold = theirs.f.cold.wall / mine.f.cold.wall, warm = theirs.f.warm.wall / mine.f.warm.wall;
        const std::string label = std::to_string(mine.threads) + (mine.threads == 1 ? " thread," : " threads,");
        std::printf("  %-11s vs %-30s cold %.2fx, warm %.2fx\n", label.c_str(), (theirs.library + ":").c_str(), cold,
                    warm);
        out["ratios"].push_back({{"threads", mine.threads}, {"versus", theirs.library}, {"cold", cold}, {"warm", warm}});
      }
    }
    for (std::size_t i = 1; i < rows.size(); ++i) {
      if (rows[i].library == "openrm") {
        std::printf("openrm's speed-up on %d threads: cold %.2fx, warm %.2fx\n", rows[i].threads,
                    rows[0].f.cold.wall / rows[i].f.cold.wall, rows[0].f.warm.wall / rows[i].f.warm.wall);
      }
    }
    std::fflush(stdout);

    if (o.score_hidden > 0) {
      auto tok = openrm::load_tokenizer(o.tokenizer);
      const Share s = score_share(o, *tok, all);
      const double wall = s.load_s + s.score_file_s;
      std::printf("\nscoring as openrm-score does (Scorer::from_folder + score_file, %s format, %d threads, "
                  "%lld-token batches):\n  %s\n",
                  o.score_format.c_str(), all, static_cast<long long>(o.score_max_tokens), s.model.c_str());
      std::printf("  %lld records, %lld sequences, %lld tokens (%lld computed, %lld batches, %lld pairs truncated)\n",
                  static_cast<long long>(s.records), static_cast<long long>(s.sequences),
                  static_cast<long long>(s.tokens), static_cast<long long>(s.computed),
                  static_cast<long long>(s.batches), static_cast<long long>(s.truncated));
      std::printf("  load %.2f s, score_file %.2f s (forward passes %.2f s, tokenizing %.2f s)\n", s.load_s,
                  s.score_file_s, s.forward_s, s.tokenize_s);
      std::printf("  tokenizing: %.1f%% of score_file's wall time, %.1f%% with loading (target: at most 10%%)\n",
                  100.0 * s.tokenize_s / s.score_file_s, 100.0 * s.tokenize_s / wall);
      out["score"] = {{"model", s.model},           {"hidden", o.score_hidden},   {"layers", o.score_layers},
                      {"vocab", s.vocab},           {"parameters", s.parameters}, {"threads", all},
                      {"format", o.score_format},   {"records", s.records},       {"sequences", s.sequences},
                      {"tokens", s.tokens},         {"computed_tokens", s.computed}, {"batches", s.batches},
                      {"truncated", s.truncated},   {"load_s", s.load_s},          {"score_file_s", s.score_file_s},
                      {"forward_s", s.forward_s},   {"tokenize_s", s.tokenize_s},
                      {"tokenize_share", s.tokenize_s / s.score_file_s},
                      {"tokenize_share_with_load", s.tokenize_s / wall}};
    }
    if (!o.json_out.empty()) openrm::write_file_atomic(o.json_out, out.dump(2) + "\n");
    if (ids_differ) throw openrm::Error("openrm's ids differ from tokenizers' (see above)");
  });
}
