// Loads libopenrm_spm_bridge.so at run time and wraps its C interface:
// libopenrm itself never links sentencepiece (DESIGN.md, "sentencepiece and
// LibTorch clash"). See docs/tokenizers.md for the search order.
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "openrm/error.h"
#include "tokenizer/sentencepiece_tokenizer.h"

// Set by CMake for this file only: the bridge's file name and the lib folder
// it is installed to.
#ifndef OPENRM_SPM_BRIDGE_FILE
#define OPENRM_SPM_BRIDGE_FILE "libopenrm_spm_bridge.so"
#endif
#ifndef OPENRM_INSTALL_FULL_LIBDIR
#define OPENRM_INSTALL_FULL_LIBDIR ""
#endif

namespace openrm::detail {
namespace {

std::string dlerror_text() {
  const char* text = dlerror();
  return text != nullptr ? text : "unknown dlopen error";
}

// The folder of the file this function was loaded from (libopenrm.so), or "".
std::string own_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_folder), &info) == 0 || info.dli_fname == nullptr) {
    return {};
  }
  std::string file = info.dli_fname;
  std::size_t slash = file.rfind('/');
  return slash == std::string::npos ? std::string() : file.substr(0, slash);
}

std::vector<std::string> candidate_paths() {
  const char* env = std::getenv("OPENRM_SPM_BRIDGE");
  if (env != nullptr && *env != '\0') return {env};  // an explicit choice, alone
  std::vector<std::string> paths;
  auto add = [&](const std::string& path) {
    for (const auto& p : paths) {
      if (p == path) return;
    }
    paths.push_back(path);
  };
  std::string folder = own_folder();
  if (!folder.empty()) add(folder + "/" + OPENRM_SPM_BRIDGE_FILE);
  std::string libdir = OPENRM_INSTALL_FULL_LIBDIR;
  if (!libdir.empty()) add(libdir + "/" + OPENRM_SPM_BRIDGE_FILE);
  add(OPENRM_SPM_BRIDGE_FILE);  // the dynamic loader's search path
  return paths;
}

template <typename Fn>
bool resolve(void* handle, const char* name, Fn& fn, std::string& why) {
  dlerror();
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) {
    why = std::string("missing symbol ") + name + ": " + dlerror_text();
    return false;
  }
  fn = reinterpret_cast<Fn>(symbol);
  return true;
}

// Opens one candidate; fills `bridge` or explains in `why`.
bool try_open(const std::string& path, SpmBridge& bridge, std::string& why) {
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) {
    why = dlerror_text();
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);  // said once is enough
    return false;
  }
  SpmBridge b;
  b.path = path;
  bool ok = resolve(handle, "openrm_spm_abi_version", b.abi_version, why);
  if (ok && b.abi_version() != OPENRM_SPM_BRIDGE_ABI_VERSION) {
    why = "stale bridge: ABI version " + std::to_string(b.abi_version()) +
          ", this libopenrm needs " + std::to_string(OPENRM_SPM_BRIDGE_ABI_VERSION);
    ok = false;
  }
  ok = ok && resolve(handle, "openrm_spm_free_buffer", b.free_buffer, why) &&
       resolve(handle, "openrm_spm_load_file", b.load_file, why) &&
       resolve(handle, "openrm_spm_load_bytes", b.load_bytes, why) &&
       resolve(handle, "openrm_spm_free", b.free_model, why) &&
       resolve(handle, "openrm_spm_encode", b.encode, why) &&
       resolve(handle, "openrm_spm_decode", b.decode, why) &&
       resolve(handle, "openrm_spm_piece_size", b.piece_size, why) &&
       resolve(handle, "openrm_spm_piece_to_id", b.piece_to_id, why) &&
       resolve(handle, "openrm_spm_id_to_piece", b.id_to_piece, why) &&
       resolve(handle, "openrm_spm_bos_id", b.bos_id, why) &&
       resolve(handle, "openrm_spm_eos_id", b.eos_id, why) &&
       resolve(handle, "openrm_spm_pad_id", b.pad_id, why) &&
       resolve(handle, "openrm_spm_unk_id", b.unk_id, why) &&
       resolve(handle, "openrm_spm_is_control", b.is_control, why) &&
       resolve(handle, "openrm_spm_is_unknown", b.is_unknown, why) &&
       resolve(handle, "openrm_spm_is_byte", b.is_byte, why) &&
       resolve(handle, "openrm_spm_is_unused", b.is_unused, why) &&
       resolve(handle, "openrm_spm_train", b.train, why);
  if (!ok) {
    dlclose(handle);
    return false;
  }
  bridge = std::move(b);  // the handle stays open for the life of the process
  return true;
}

}  // namespace

const SpmBridge& spm_bridge() {
  // Never destroyed: models held by other static objects may outlive any
  // destructor order we could pick.
  static SpmBridge& bridge = *new SpmBridge;
  static std::string& failure = *new std::string;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    for (const std::string& path : candidate_paths()) {
      std::string why;
      if (try_open(path, bridge, why)) return;
      tried += (tried.empty() ? " " : "; ") + path + " (" + why + ")";
    }
    failure = std::string("cannot load the sentencepiece bridge ") + OPENRM_SPM_BRIDGE_FILE +
              " (set OPENRM_SPM_BRIDGE to its path); tried" + tried;
  });
  if (!failure.empty()) throw Error(failure);
  return bridge;
}

std::string take_bridge_error(const SpmBridge& bridge, char* error) {
  if (error == nullptr) return "unknown sentencepiece error";
  std::string text = error;
  bridge.free_buffer(error);
  return text;
}

// ---- SpmModel ----------------------------------------------------------------

SpmModel::SpmModel(const SpmBridge& bridge, openrm_spm_model* handle, std::string name)
    : bridge_(bridge), handle_(handle), name_(std::move(name)) {
  piece_size_ = bridge_.piece_size(handle_);
}

SpmModel::~SpmModel() { bridge_.free_model(handle_); }

std::shared_ptr<const SpmModel> SpmModel::load_file(const std::string& path) {
  const SpmBridge& bridge = spm_bridge();
  char* error = nullptr;
  openrm_spm_model* handle = bridge.load_file(path.c_str(), &error);
  if (handle == nullptr) {
    throw Error(path +
                ": cannot load the sentencepiece model: " + take_bridge_error(bridge, error));
  }
  return std::shared_ptr<const SpmModel>(new SpmModel(bridge, handle, path));
}

std::shared_ptr<const SpmModel> SpmModel::load_bytes(const std::string& bytes,
                                                     const std::string& name) {
  const SpmBridge& bridge = spm_bridge();
  char* error = nullptr;
  openrm_spm_model* handle = bridge.load_bytes(bytes.data(), bytes.size(), &error);
  if (handle == nullptr) {
    throw Error(name +
                ": cannot load the sentencepiece model: " + take_bridge_error(bridge, error));
  }
  return std::shared_ptr<const SpmModel>(new SpmModel(bridge, handle, name));
}

std::shared_ptr<const SpmModel> SpmModel::load_bytes_without_dummy_prefix(const std::string& bytes,
                                                                          const std::string& name) {
  // A .model file is a serialized ModelProto. Protobuf parsers merge a
  // singular message field that occurs twice, so appending
  //   field 3 (normalizer_spec), 2 bytes: { field 3 (add_dummy_prefix) = false }
  // gives the model with that one setting changed, as transformers' MergeFrom
  // does (0x1A = field 3, length-delimited; 0x18 = field 3, varint).
  static const char kNoDummyPrefix[] = {0x1A, 0x02, 0x18, 0x00};
  return load_bytes(bytes + std::string(kNoDummyPrefix, sizeof(kNoDummyPrefix)), name);
}

std::vector<TokenId> SpmModel::encode(std::string_view text) const {
  std::int32_t* ids = nullptr;
  std::size_t count = 0;
  char* error = nullptr;
  if (bridge_.encode(handle_, text.data(), text.size(), &ids, &count, &error) != 0) {
    throw Error(name_ +
                ": sentencepiece cannot encode the text: " + take_bridge_error(bridge_, error));
  }
  std::vector<TokenId> out(ids, ids + count);
  bridge_.free_buffer(ids);
  return out;
}

std::string SpmModel::decode(const TokenId* ids, std::size_t count) const {
  char* text = nullptr;
  std::size_t size = 0;
  char* error = nullptr;
  if (bridge_.decode(handle_, ids, count, &text, &size, &error) != 0) {
    throw Error(name_ +
                ": sentencepiece cannot decode the ids: " + take_bridge_error(bridge_, error));
  }
  std::string out(text, size);
  bridge_.free_buffer(text);
  return out;
}

std::optional<TokenId> SpmModel::piece_to_id(std::string_view piece) const {
  TokenId id = bridge_.piece_to_id(handle_, piece.data(), piece.size());
  if (id < 0) return std::nullopt;
  return id;
}

std::string_view SpmModel::id_to_piece(TokenId id) const {
  std::size_t size = 0;
  const char* piece = bridge_.id_to_piece(handle_, id, &size);
  if (piece == nullptr) {
    throw Error(name_ + ": token id " + std::to_string(id) + " is out of range [0, " +
                std::to_string(piece_size_) + ")");
  }
  return std::string_view(piece, size);
}

TokenId SpmModel::bos_id() const { return bridge_.bos_id(handle_); }
TokenId SpmModel::eos_id() const { return bridge_.eos_id(handle_); }
TokenId SpmModel::pad_id() const { return bridge_.pad_id(handle_); }
TokenId SpmModel::unk_id() const { return bridge_.unk_id(handle_); }
bool SpmModel::is_control(TokenId id) const { return bridge_.is_control(handle_, id) != 0; }
bool SpmModel::is_unknown(TokenId id) const { return bridge_.is_unknown(handle_, id) != 0; }
bool SpmModel::is_byte(TokenId id) const { return bridge_.is_byte(handle_, id) != 0; }

std::string spm_train(const std::vector<std::pair<std::string, std::string>>& options,
                      const std::vector<std::string>& texts, std::uint32_t seed) {
  const SpmBridge& bridge = spm_bridge();
  std::vector<const char*> keys, values, sentences;
  std::vector<std::size_t> sizes;
  for (const auto& [key, value] : options) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  for (const auto& text : texts) {
    sentences.push_back(text.data());
    sizes.push_back(text.size());
  }
  char* model = nullptr;
  std::size_t model_size = 0;
  char* error = nullptr;
  if (bridge.train(keys.data(), values.data(), keys.size(), sentences.data(), sizes.data(),
                   sentences.size(), seed, &model, &model_size, &error) != 0) {
    throw Error("sentencepiece training failed: " + take_bridge_error(bridge, error));
  }
  std::string out(model, model_size);
  bridge.free_buffer(model);
  return out;
}

}  // namespace openrm::detail
