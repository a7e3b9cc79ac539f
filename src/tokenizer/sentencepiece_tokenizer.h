// The sentencepiece backend (internal): the run-time loaded bridge, an owned
// sentencepiece model, and the Tokenizer built from a model plus what a
// model folder's JSON files say.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "openrm/tokenizer/tokenizer.h"
#include "tokenizer/folder_config.h"
#include "tokenizer/spm_bridge_api.h"

namespace openrm::detail {

// The functions of libopenrm_spm_bridge.so, resolved with dlsym.
struct SpmBridge {
  std::string path;  // the file that was loaded
  decltype(&openrm_spm_abi_version) abi_version = nullptr;
  decltype(&openrm_spm_free_buffer) free_buffer = nullptr;
  decltype(&openrm_spm_load_file) load_file = nullptr;
  decltype(&openrm_spm_load_bytes) load_bytes = nullptr;
  decltype(&openrm_spm_free) free_model = nullptr;
  decltype(&openrm_spm_encode) encode = nullptr;
  decltype(&openrm_spm_decode) decode = nullptr;
  decltype(&openrm_spm_piece_size) piece_size = nullptr;
  decltype(&openrm_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&openrm_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&openrm_spm_bos_id) bos_id = nullptr;
  decltype(&openrm_spm_eos_id) eos_id = nullptr;
  decltype(&openrm_spm_pad_id) pad_id = nullptr;
  decltype(&openrm_spm_unk_id) unk_id = nullptr;
  decltype(&openrm_spm_is_control) is_control = nullptr;
  decltype(&openrm_spm_is_unknown) is_unknown = nullptr;
  decltype(&openrm_spm_is_byte) is_byte = nullptr;
  decltype(&openrm_spm_is_unused) is_unused = nullptr;
  decltype(&openrm_spm_train) train = nullptr;
};

// Loads the bridge on first use (once per process, thread-safe) and returns
// it. Search order: $OPENRM_SPM_BRIDGE (alone, when set); the folder of
// libopenrm.so; the configured install lib folder; the bare file name (the
// dynamic loader's search path). Throws openrm::Error listing every path
// tried and why each failed.
const SpmBridge& spm_bridge();

// Takes ownership of a malloc'd error string from the bridge.
std::string take_bridge_error(const SpmBridge& bridge, char* error);

// A loaded sentencepiece model. Immutable, so safe to share between threads.
class SpmModel {
 public:
  // `name` is what error messages call the model (usually its path).
  static std::shared_ptr<const SpmModel> load_file(const std::string& path);
  static std::shared_ptr<const SpmModel> load_bytes(const std::string& bytes,
                                                    const std::string& name);
  // The same model with its normalizer's add_dummy_prefix turned off, as
  // transformers loads it when legacy is false.
  static std::shared_ptr<const SpmModel> load_bytes_without_dummy_prefix(const std::string& bytes,
                                                                         const std::string& name);
  ~SpmModel();
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  const std::string& name() const { return name_; }
  std::vector<TokenId> encode(std::string_view text) const;
  std::string decode(const TokenId* ids, std::size_t count) const;
  TokenId piece_size() const { return piece_size_; }
  std::optional<TokenId> piece_to_id(std::string_view piece) const;
  // Throws for ids out of range.
  std::string_view id_to_piece(TokenId id) const;
  TokenId bos_id() const;
  TokenId eos_id() const;
  TokenId pad_id() const;
  TokenId unk_id() const;
  bool is_control(TokenId id) const;
  bool is_unknown(TokenId id) const;
  bool is_byte(TokenId id) const;

 private:
  SpmModel(const SpmBridge& bridge, openrm_spm_model* handle, std::string name);
  const SpmBridge& bridge_;
  openrm_spm_model* handle_;
  std::string name_;
  TokenId piece_size_ = 0;
};

// Trains through the bridge; returns the serialized model. Options are
// sentencepiece trainer flags (name without dashes, value).
std::string spm_train(const std::vector<std::pair<std::string, std::string>>& options,
                      const std::vector<std::string>& texts, std::uint32_t seed);

// Builds the tokenizer; throws openrm::Error (naming the file and field)
// when the JSON files contradict the model. `no_dummy_prefix` (the model
// from load_bytes_without_dummy_prefix) is needed when config.legacy is false.
std::shared_ptr<const Tokenizer> make_sentencepiece_tokenizer(
    std::shared_ptr<const SpmModel> model, std::shared_ptr<const SpmModel> no_dummy_prefix,
    const TokenizerFolderConfig& config, std::string source);

}  // namespace openrm::detail
