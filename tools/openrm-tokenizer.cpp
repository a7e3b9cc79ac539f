// openrm-tokenizer: trains sentencepiece tokenizers and encodes / decodes
// with any tokenizer openrm loads.
//
//   openrm-tokenizer train --input FILE... --output DIR|FILE.model --vocab-size N [--skip-invalid]
//                          [--overwrite-output-dir]
//                          [--model-type bpe|unigram] [--user-defined-symbols S,S...]
//                          [--control-symbols S,S...] ...
//   openrm-tokenizer encode --tokenizer PATH [--text T] [--no-bos] [--eos] [--pieces]
//   openrm-tokenizer decode --tokenizer PATH [--ids "1 2 3"] [--skip-special]
//
// Training inputs are text files (one text per line; "-" is stdin) or
// preference files (.jsonl / .jsonl.gz, any layout openrm reads), whose
// prompt, chosen and rejected message contents become the training texts.
// encode and decode read one text / one id list per line from stdin when no
// --text / --ids is given.
#include <CLI/CLI.hpp>
#include <climits>
#include <cstdint>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "openrm/data/preference.h"
#include "openrm/error.h"
#include "openrm/io/file.h"
#include "openrm/tokenizer/tokenizer.h"
#include "openrm/tokenizer/train_tokenizer.h"
#include "tool_main.h"

namespace {

constexpr const char* kTool = "openrm-tokenizer";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_preference_file(const std::string& path) {
  return ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz");
}

// Message contents of every record: the prompt once per record, each
// distinct response once per record (k-wise records expand to many pairs).
// An invalid record is an error naming file and line, unless skip_invalid,
// which skips and counts it (the library logs the count).
void add_preference_texts(const std::string& path, bool skip_invalid, std::vector<std::string>& texts) {
  openrm::ReadOptions read;
  read.skip_invalid = skip_invalid;
  openrm::PreferenceData data = openrm::read_preferences(path, read);
  std::int64_t record_line = -1;
  std::unordered_set<std::string> seen;
  auto add = [&](const openrm::Conversation& conversation) {
    for (const auto& message : conversation) {
      if (!message.content.empty() && seen.insert(message.content).second) {
        texts.push_back(message.content);
      }
    }
  };
  for (const auto& pair : data.pairs) {
    if (pair.line != record_line) {
      record_line = pair.line;
      seen.clear();
    }
    add(pair.prompt);
    add(pair.chosen);
    add(pair.rejected);
  }
}

void add_text_lines(const std::string& path, std::vector<std::string>& texts) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw openrm::Error(path + ": cannot open");
    in = &file;
  }
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) texts.push_back(line);
  }
  if (in->bad()) throw openrm::Error(path + ": read error");
}

struct TrainCommand {
  std::vector<std::string> inputs;
  std::string output;
  openrm::TokenizerTrainOptions options;
  bool no_pad = false;
  bool no_byte_fallback = false;
  bool skip_invalid = false;
  bool overwrite_output_dir = false;
};

// Before any work: the output (FILE.model, or a folder that gets
// tokenizer.model and tokenizer_config.json) must not be or hold an input,
// and a non-empty folder must be a model or tokenizer folder, unless
// --overwrite-output-dir.
void check_output(const TrainCommand& cmd) {
  for (const auto& input : cmd.inputs) {
    if (openrm::is_directory(input)) throw openrm::Error(input + ": is a directory, not a file");
  }
  if (ends_with(cmd.output, ".model")) {
    openrm::check_output_files({cmd.output}, cmd.inputs);
    return;
  }
  openrm::OutputFolderRules rules;
  rules.markers = {"tokenizer.model", "tokenizer_config.json", "tokenizer.json", "config.json", "openrm.json"};
  rules.kind = "a model or tokenizer folder";
  rules.overwrite = cmd.overwrite_output_dir;
  openrm::check_output_folder(cmd.output, cmd.inputs, rules);
}

void run_train(const TrainCommand& cmd) {
  openrm::tools::warn_if_too_many_threads(kTool, cmd.options.num_threads);
  check_output(cmd);
  openrm::TokenizerTrainOptions options = cmd.options;
  if (cmd.no_pad) options.pad_id = -1;
  if (cmd.no_byte_fallback) options.byte_fallback = false;
  std::vector<std::string> texts;
  for (const auto& input : cmd.inputs) {
    if (is_preference_file(input)) {
      add_preference_texts(input, cmd.skip_invalid, texts);
    } else {
      add_text_lines(input, texts);
    }
  }
  auto tokenizer = openrm::train_tokenizer(texts, cmd.output, options);
  std::cout << kTool << ": wrote " << cmd.output << " (" << options.model_type << ", "
            << tokenizer->vocab_size() << " pieces, trained on " << texts.size() << " texts from "
            << cmd.inputs.size() << " file(s))\n";
}

struct CodecCommand {
  std::string tokenizer;
  std::string text;
  std::string ids;
  bool no_bos = false;
  bool eos = false;
  bool no_special = false;
  bool pieces = false;
  bool skip_special = false;
};

void print_encoded(const openrm::Tokenizer& tokenizer, const CodecCommand& cmd,
                   const std::string& text) {
  openrm::EncodeOptions options;
  if (cmd.no_bos) options.add_bos = false;
  if (cmd.eos) options.add_eos = true;
  options.parse_special = !cmd.no_special;
  std::vector<openrm::TokenId> ids = tokenizer.encode(text, options);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) std::cout << ' ';
    if (cmd.pieces) {
      std::cout << tokenizer.id_to_token(ids[i]);
    } else {
      std::cout << ids[i];
    }
  }
  std::cout << '\n';
}

void run_encode(const CodecCommand& cmd, bool text_given) {
  auto tokenizer = openrm::load_tokenizer(cmd.tokenizer);
  if (text_given) {
    print_encoded(*tokenizer, cmd, cmd.text);
    return;
  }
  std::string line;
  while (std::getline(std::cin, line)) print_encoded(*tokenizer, cmd, line);
}

std::vector<openrm::TokenId> parse_ids(std::string text, const std::string& where) {
  for (char& c : text) {
    if (c == ',' || c == '[' || c == ']') c = ' ';
  }
  std::istringstream in(text);
  std::vector<openrm::TokenId> ids;
  std::string word;
  while (in >> word) {
    std::size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || value < INT32_MIN || value > INT32_MAX) {
      throw openrm::Error(where + ": '" + word + "' is not a token id");
    }
    ids.push_back(static_cast<openrm::TokenId>(value));
  }
  return ids;
}

void run_decode(const CodecCommand& cmd, bool ids_given) {
  auto tokenizer = openrm::load_tokenizer(cmd.tokenizer);
  if (ids_given) {
    std::cout << tokenizer->decode(parse_ids(cmd.ids, "--ids"), cmd.skip_special) << '\n';
    return;
  }
  std::string line;
  for (std::int64_t number = 1; std::getline(std::cin, line); ++number) {
    auto ids = parse_ids(line, "stdin line " + std::to_string(number));
    std::cout << tokenizer->decode(ids, cmd.skip_special) << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train sentencepiece tokenizers; encode and decode text."};
  app.require_subcommand(1);

  TrainCommand train;
  auto& o = train.options;
  CLI::App* train_app = app.add_subcommand("train", "train a sentencepiece tokenizer");
  train_app
      ->add_option("--input", train.inputs,
                   "text files (one text per line, - for stdin) or .jsonl/.jsonl.gz "
                   "preference files")
      ->required();
  train_app
      ->add_option("--output", train.output,
                   "FILE.model, or a folder that gets tokenizer.model and "
                   "tokenizer_config.json")
      ->required();
  train_app->add_flag("--skip-invalid", train.skip_invalid,
                      "skip and count invalid records of preference files instead of stopping");
  train_app->add_flag("--overwrite-output-dir", train.overwrite_output_dir,
                      "write into an --output folder that is not empty and not a model or tokenizer folder");
  train_app->add_option("--vocab-size", o.vocab_size, "pieces in the model")->required();
  train_app->add_option("--model-type", o.model_type, "bpe or unigram")
      ->capture_default_str()
      ->check(CLI::IsMember({"bpe", "unigram"}));
  train_app
      ->add_option("--character-coverage", o.character_coverage,
                   "share of characters that get their own piece")
      ->capture_default_str();
  train_app->add_flag("--no-byte-fallback", train.no_byte_fallback,
                      "rare characters become <unk> instead of byte pieces");
  // One value per flag, split on commas: CLI11 would otherwise read "[INST]"
  // as a bracketed list holding "INST".
  train_app
      ->add_option("--user-defined-symbols", o.user_defined_symbols,
                   "strings that are always one piece (comma-separated; the flag may repeat)")
      ->allow_extra_args(false)
      ->delimiter(',');
  train_app
      ->add_option("--control-symbols", o.control_symbols,
                   "special tokens that never come out of plain text, e.g. [INST],[/INST] "
                   "(comma-separated; the flag may repeat)")
      ->allow_extra_args(false)
      ->delimiter(',');
  train_app->add_flag("--no-pad", train.no_pad, "no <pad> piece");
  train_app
      ->add_option("--normalization", o.normalization,
                   "identity, nmt_nfkc, nfkc, nmt_nfkc_cf or nfkc_cf")
      ->capture_default_str();
  train_app->add_flag("--split-digits", o.split_digits, "every digit is its own piece");
  train_app
      ->add_option("--max-sentence-length", o.max_sentence_length,
                   "longer texts (bytes) are skipped")
      ->capture_default_str();
  train_app->add_option("--threads", o.num_threads, "trainer threads")->capture_default_str();
  train_app->add_option("--seed", o.seed, "seed of sampling and shuffling")->capture_default_str();
  train_app
      ->add_option("--input-sentence-size", o.input_sentence_size,
                   "train on a sample of at most this many texts (0: all)")
      ->capture_default_str();
  train_app->add_flag("--verbose", o.verbose, "show sentencepiece's progress");

  CodecCommand encode;
  CLI::App* encode_app = app.add_subcommand("encode", "print the token ids of text");
  encode_app->add_option("--tokenizer", encode.tokenizer, "model folder, tokenizer.json or .model file")
      ->required();
  CLI::Option* text_option =
      encode_app->add_option("--text", encode.text, "text to encode (else stdin, per line)");
  encode_app->add_flag("--no-bos", encode.no_bos, "do not add BOS");
  encode_app->add_flag("--eos", encode.eos, "add EOS");
  encode_app->add_flag("--no-special", encode.no_special,
                       "treat special-token strings in the text as plain text");
  encode_app->add_flag("--pieces", encode.pieces, "print pieces instead of ids");

  CodecCommand decode;
  CLI::App* decode_app = app.add_subcommand("decode", "print the text of token ids");
  decode_app->add_option("--tokenizer", decode.tokenizer, "model folder, tokenizer.json or .model file")
      ->required();
  CLI::Option* ids_option = decode_app->add_option(
      "--ids", decode.ids, "ids separated by spaces or commas (else stdin, one list per line)");
  decode_app->add_flag("--skip-special", decode.skip_special, "drop special tokens");

  openrm::tools::group_options(*train_app,
                               {{"Input", {"--input", "--skip-invalid"}},
                                {"Output", {"--output", "--overwrite-output-dir"}},
                                {"Training", {"--vocab-size", "--model-type", "--character-coverage",
                                              "--no-byte-fallback", "--user-defined-symbols", "--control-symbols",
                                              "--no-pad", "--normalization", "--split-digits",
                                              "--max-sentence-length", "--seed", "--input-sentence-size"}},
                                {"Performance", {"--threads"}},
                                {"Other", {"--verbose"}}});
  for (CLI::App* codec : {encode_app, decode_app}) {
    openrm::tools::group_options(*codec, {{"Model", {"--tokenizer"}},
                                          {"Input", {"--text", "--ids"}},
                                          {"Output", {"--no-bos", "--eos", "--no-special", "--pieces",
                                                      "--skip-special"}}});
  }
  return openrm::tools::run_tool(kTool, app, argc, argv, [&] {
    if (train_app->parsed()) run_train(train);
    if (encode_app->parsed()) run_encode(encode, text_option->count() > 0);
    if (decode_app->parsed()) run_decode(decode, ids_option->count() > 0);
  });
}
