// Training sentencepiece tokenizers (through the same bridge library that
// loads them; see docs/tokenizers.md).
#pragma once

#include <openrm/tokenizer/tokenizer.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace openrm {

struct TokenizerTrainOptions {
  // Pieces in the model, special pieces and byte pieces included.
  int vocab_size = 8000;
  // "bpe" or "unigram".
  std::string model_type = "bpe";
  // Share of the training characters that get their own piece; the rarest
  // rest become byte pieces (byte_fallback) or <unk>.
  double character_coverage = 0.9995;
  // Characters without a piece are encoded as <0xNN> byte pieces instead of
  // <unk>, so every text round-trips (needs vocab_size >= 256 + specials).
  bool byte_fallback = true;
  // Strings that are always one piece, even inside words ("<|im_start|>").
  // sentencepiece matches them in text by itself. No commas.
  std::vector<std::string> user_defined_symbols;
  // Control symbols: pieces that never come out of plain text; openrm's
  // encoder matches them as special tokens. No commas.
  std::vector<std::string> control_symbols;
  // Ids of the special pieces; -1 leaves one out (unk cannot be left out).
  // pad is on by default, so trained tokenizers have a pad token.
  int unk_id = 0;
  int bos_id = 1;
  int eos_id = 2;
  int pad_id = 3;
  std::string unk_piece = "<unk>";
  std::string bos_piece = "<s>";
  std::string eos_piece = "</s>";
  std::string pad_piece = "<pad>";
  // sentencepiece's normalization rule: "identity" (none, lossless, as
  // Llama's tokenizer), "nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf".
  std::string normalization = "identity";
  // Prepend "▁" to every text, so a word is the same piece at the start of
  // a text as after a space.
  bool add_dummy_prefix = true;
  // Collapse runs of spaces and strip leading/trailing ones (lossy).
  bool remove_extra_whitespaces = false;
  // Every digit is its own piece (as Llama).
  bool split_digits = false;
  // Texts longer than this many bytes are skipped by the trainer.
  int max_sentence_length = 16384;
  // Trainer threads; the result depends only on the input, the options and
  // this number.
  int num_threads = 1;
  // Seeds sentencepiece's sampling and shuffling: the same texts and options
  // give the same model, byte for byte.
  std::uint32_t seed = 0;
  // Train on a random sample of at most this many texts (0: all of them).
  std::int64_t input_sentence_size = 0;
  // Shuffle before sampling (with input_sentence_size).
  bool shuffle_input_sentence = true;
  // Let sentencepiece log its progress to stderr.
  bool verbose = false;
};

// Checks the options; throws openrm::Error naming the bad field.
void validate(const TokenizerTrainOptions& options);

// Trains a sentencepiece model on `texts` (one training sentence each) and
// writes it to output_model_path (atomically). sentencepiece's own errors
// (vocabulary too large for the data, ...) come back as openrm::Error.
void train_sentencepiece(const std::vector<std::string>& texts,
                         const std::string& output_model_path,
                         const TokenizerTrainOptions& options);

// Writes <folder>/tokenizer_config.json for `tokenizer` (its special and
// added tokens, add_bos_token / add_eos_token, chat_template, and legacy:
// true, the behaviour of a bare .model file), so that
// load_tokenizer(folder) and transformers' LlamaTokenizer read the folder
// with the same special tokens.
void write_tokenizer_config(const std::string& folder, const Tokenizer& tokenizer);

// train_sentencepiece into `output`, then loads the result. `output` ending
// in ".model" is the model file itself; anything else is a folder (created
// if missing) that receives tokenizer.model and tokenizer_config.json.
std::shared_ptr<const Tokenizer> train_tokenizer(const std::vector<std::string>& texts,
                                                 const std::string& output,
                                                 const TokenizerTrainOptions& options);

}  // namespace openrm
