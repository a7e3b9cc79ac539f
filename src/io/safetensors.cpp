#include "openrm/io/safetensors.h"

#include "io/pytorch_bin.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "io/json_util.h"
#include "openrm/error.h"

namespace openrm {

// safetensors stores little-endian data, and tensors view it in place.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "openrm reads safetensors on "
              "little-endian machines only");

namespace {

constexpr const char* kSingleFileName = "model.safetensors";
constexpr const char* kIndexFileName = "model.safetensors.index.json";
constexpr const char* kBinFileName = "pytorch_model.bin";
constexpr const char* kBinIndexFileName = "pytorch_model.bin.index.json";

at::ScalarType scalar_type_of(DType dtype) {
  switch (dtype) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  throw Error("invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

std::string file_name_of(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dir_of(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// ---- writing -----------------------------------------------------------------

struct PlannedTensor {
  const std::string* name;
  const at::Tensor* tensor;
  DType dtype;
  std::uint64_t nbytes;
};

// Checks names and dtypes of everything to be written before any file is
// touched, so a bad tensor cannot leave a half-written folder behind.
std::vector<PlannedTensor> plan_tensors(const std::string& target, const NamedTensors& tensors) {
  std::vector<PlannedTensor> plan;
  plan.reserve(tensors.size());
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty()) throw Error(target + ": cannot save a tensor with an empty name");
    if (name == "__metadata__") {
      throw Error(target + ": '__metadata__' is reserved and cannot name a tensor");
    }
    if (!seen.insert(name).second) throw Error(target + ": tensor name '" + name + "' given twice");
    if (!tensor.defined()) throw Error(target + ": tensor '" + name + "' is undefined");
    if (tensor.layout() != at::kStrided) {
      throw Error(target + ": tensor '" + name + "' is not dense (sparse tensors are not saved)");
    }
    DType dtype =
        with_context(target + ": tensor '" + name + "'", [&] { return dtype_of(tensor); });
    std::uint64_t nbytes = static_cast<std::uint64_t>(tensor.numel()) * dtype_size(dtype);
    plan.push_back({&name, &tensor, dtype, nbytes});
  }
  return plan;
}

void write_planned(const std::string& path, const std::vector<PlannedTensor>& plan,
                   const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the keys in insertion order, so the header lists the
  // tensors in the order they are laid out, as the reference writer does.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  std::uint64_t offset = 0;
  for (const PlannedTensor& item : plan) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(item.dtype);
    entry["shape"] = item.tensor->sizes().vec();
    entry["data_offsets"] = {offset, offset + item.nbytes};
    header[*item.name] = entry;
    offset += item.nbytes;
  }
  // The reference writer pads the header with spaces to a multiple of 8, so
  // the data section (and every 8-byte-aligned tensor in it) starts aligned.
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char length[8];
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(n >> (8 * i));

  AtomicFileWriter writer(path);
  writer.write(length, sizeof(length));
  writer.write(text);
  for (const PlannedTensor& item : plan) {
    if (item.nbytes == 0) continue;
    // One tensor at a time on the CPU, so saving GPU weights needs host memory
    // for the largest tensor only.
    at::Tensor cpu = with_context(path + ": tensor '" + *item.name + "'", [&] {
      return item.tensor->detach().to(at::kCPU).resolve_neg().resolve_conj().contiguous();
    });
    writer.write(cpu.data_ptr(), item.nbytes);
  }
  writer.commit();
}

bool is_shard_file_name(const std::string& name) {
  // model-00001-of-00003.safetensors, the pattern save_pretrained writes.
  const std::string prefix = "model-";
  const std::string suffix = ".safetensors";
  if (name.size() <= prefix.size() + suffix.size()) return false;
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  std::size_t of = middle.find("-of-");
  if (of == std::string::npos || of == 0 || of + 4 == middle.size()) return false;
  auto all_digits = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return all_digits(middle.substr(0, of)) && all_digits(middle.substr(of + 4));
}

void remove_file(const std::string& path) {
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    throw Error(path + ": cannot remove stale weight file: " + std::strerror(errno));
  }
}

// The index into `files` of the file holding `name`, or an error naming
// where it was looked for.
std::size_t locate(const std::map<std::string, std::size_t>& where,
                   const std::vector<std::shared_ptr<WeightFile>>& files,
                   const std::string& name) {
  auto it = where.find(name);
  if (it != where.end()) return it->second;
  std::string place = files.empty()       ? std::string("an empty weight store")
                      : files.size() == 1 ? files[0]->path()
                                          : dir_of(files[0]->path()) + " (" +
                                                std::to_string(files.size()) + " shards)";
  throw Error("no tensor named '" + name + "' in " + place);
}

}  // namespace

// ---- SafetensorsFile -----------------------------------------------------------

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->map_ = MappedFile::open(path);
  file->header_ = parse_safetensors_header(file->map_->data(), file->map_->size(), path);
  for (std::size_t i = 0; i < file->header_.entries.size(); ++i) {
    file->index_[file->header_.entries[i].name] = i;
  }
  return file;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.entries[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry* entry = find(name);
  if (entry == nullptr) throw Error(path() + ": no tensor named '" + name + "'");
  auto options = at::TensorOptions().dtype(scalar_type_of(entry->dtype)).device(at::kCPU);
  std::size_t nbytes = entry->end - entry->begin;
  if (nbytes == 0) return at::empty(entry->shape, options);

  // The mapping is private and writable, so handing out a mutable pointer is
  // safe: writes through it never reach the file.
  auto* data = const_cast<std::uint8_t*>(map_->data()) + header_.data_start + entry->begin;
  if (entry->dtype == DType::BOOL) {
    // A bool byte other than 0 or 1 is undefined behaviour for LibTorch's
    // kernels; masks are small, so checking them all is cheap.
    for (std::size_t i = 0; i < nbytes; ++i) {
      if (data[i] > 1) {
        throw Error(path() + ": tensor '" + name + "': BOOL data holds byte " +
                    std::to_string(data[i]) + " at element " + std::to_string(i) +
                    "; only 0 and 1 are valid");
      }
    }
  }
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(entry->dtype) == 0) {
    // The tensor owns a reference to the mapping, so the bytes stay valid
    // for as long as the tensor (or any view of it) lives.
    std::shared_ptr<MappedFile> keep_alive = map_;
    return at::from_blob(
        data, entry->shape, [keep_alive](void*) mutable { keep_alive.reset(); }, options);
  }
  // Misaligned data (a writer that did not pad its header): element loads
  // from it would be undefined behaviour, so copy into aligned memory.
  at::Tensor copy = at::empty(entry->shape, options);
  std::memcpy(copy.data_ptr(), data, nbytes);
  return copy;
}

// ---- WeightStore -----------------------------------------------------------------

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_pytorch_file(const std::string& path) {
  return ends_with(path, ".bin") || ends_with(path, ".pt") || ends_with(path, ".pth");
}

std::shared_ptr<WeightFile> open_weight_file(const std::string& path) {
  if (is_pytorch_file(path)) return PytorchBinFile::open(path);
  return SafetensorsFile::open(path);
}

}  // namespace

WeightStore WeightStore::open_file(const std::string& path) {
  WeightStore store;
  store.files_.push_back(open_weight_file(path));
  for (const SafetensorsEntry& entry : store.files_[0]->entries()) store.where_[entry.name] = 0;
  return store;
}

WeightStore WeightStore::open_folder(const std::string& dir) {
  // Like transformers, a single file wins over an index, and safetensors
  // over PyTorch's pickles.
  std::string single = join_path(dir, kSingleFileName);
  if (path_exists(single)) return open_file(single);
  std::string index_path = join_path(dir, kIndexFileName);
  if (!path_exists(index_path)) {
    if (!is_directory(dir)) throw Error(dir + ": not a folder");
    const std::string bin = join_path(dir, kBinFileName);
    if (path_exists(bin)) return open_file(bin);
    index_path = join_path(dir, kBinIndexFileName);
    if (!path_exists(index_path)) {
      throw Error(dir + ": no " + kSingleFileName + ", " + kIndexFileName + ", " + kBinFileName + " or " +
                  kBinIndexFileName + " in this folder");
    }
  }

  std::string text = read_text_file(index_path);
  detail::JsonParseLimits limits;
  limits.reject_duplicate_keys = true;
  nlohmann::json index = detail::parse_json_checked<nlohmann::json>(
      text.data(), text.data() + text.size(), index_path, limits);
  auto fail = [&](const std::string& problem) { throw Error(index_path + ": " + problem); };
  if (!index.is_object()) fail("expected a JSON object at the top level");
  auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    fail("'weight_map' must be an object mapping tensor names to shard files");
  }
  const nlohmann::json& weight_map = *map_it;
  if (weight_map.empty()) fail("'weight_map' lists no tensors");

  // Shards in order of first mention.
  WeightStore store;
  std::map<std::string, std::size_t> shard_index;
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    if (!it.value().is_string()) {
      fail("tensor '" + it.key() + "': weight_map value must be a file name, got " +
           std::string(it.value().type_name()));
    }
    const std::string& shard = it.value().get_ref<const std::string&>();
    // Shard names are plain file names beside the index; anything else could
    // point outside the model folder.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
      fail("tensor '" + it.key() + "': shard '" + shard + "' is not a file name in this folder");
    }
    if (shard_index.count(shard) != 0) continue;
    std::string shard_path = join_path(dir, shard);
    if (!path_exists(shard_path)) {
      fail("tensor '" + it.key() + "' is in shard " + shard + ", which does not exist");
    }
    shard_index[shard] = store.files_.size();
    store.files_.push_back(open_weight_file(shard_path));
  }

  for (std::size_t i = 0; i < store.files_.size(); ++i) {
    for (const SafetensorsEntry& entry : store.files_[i]->entries()) {
      auto [it, inserted] = store.where_.emplace(entry.name, i);
      if (!inserted) {
        fail("tensor '" + entry.name +
             "' appears in two shards: " + file_name_of(store.files_[it->second]->path()) +
             " and " + file_name_of(store.files_[i]->path()));
      }
      if (!weight_map.contains(entry.name)) {
        fail("shard " + file_name_of(store.files_[i]->path()) + " holds tensor '" + entry.name +
             "', which weight_map does not list");
      }
    }
  }
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    const std::string& shard = it.value().get_ref<const std::string&>();
    auto where = store.where_.find(it.key());
    if (where == store.where_.end() || where->second != shard_index[shard]) {
      fail("tensor '" + it.key() + "' is listed in shard " + shard +
           ", which has no tensor of that name");
    }
  }
  return store;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> names;
  names.reserve(where_.size());
  for (const auto& item : where_) names.push_back(item.first);
  return names;
}

const SafetensorsEntry& WeightStore::entry(const std::string& name) const {
  return *files_[locate(where_, files_, name)]->find(name);
}

const std::string& WeightStore::file_of(const std::string& name) const {
  return files_[locate(where_, files_, name)]->path();
}

at::Tensor WeightStore::tensor(const std::string& name) const {
  return files_[locate(where_, files_, name)]->tensor(name);
}

// ---- saving ----------------------------------------------------------------------

DType dtype_of(const at::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case at::kDouble: return DType::F64;
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kShort: return DType::I16;
    case at::kChar: return DType::I8;
    case at::kByte: return DType::U8;
    case at::kBool: return DType::BOOL;
    default:
      throw Error(std::string("dtype ") + at::toString(tensor.scalar_type()) +
                  " cannot be stored; supported: " + supported_dtype_names());
  }
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_planned(path, plan_tensors(path, tensors), metadata);
}

void save_safetensors_folder(const std::string& dir, const NamedTensors& tensors,
                             std::uint64_t max_shard_bytes) {
  if (max_shard_bytes == 0) throw Error(dir + ": max_shard_bytes must be positive");
  std::vector<PlannedTensor> plan = plan_tensors(dir, tensors);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create folder: " + ec.message());

  // Shards are filled in order; a tensor that would tip the current shard
  // over the limit starts a new one, and a tensor larger than the limit gets
  // a shard of its own (as huggingface_hub's split_torch_state_dict_into_shards
  // does).
  std::vector<std::vector<PlannedTensor>> shards;
  std::vector<PlannedTensor> current;
  std::uint64_t current_bytes = 0;
  std::uint64_t total_bytes = 0;
  for (const PlannedTensor& item : plan) {
    total_bytes += item.nbytes;
    if (item.nbytes > max_shard_bytes) {
      shards.push_back({item});
      continue;
    }
    if (!current.empty() && current_bytes + item.nbytes > max_shard_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(item);
    current_bytes += item.nbytes;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));

  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  std::set<std::string> written;
  if (shards.size() == 1) {
    write_planned(join_path(dir, kSingleFileName), shards[0], metadata);
    written.insert(kSingleFileName);
  } else {
    nlohmann::json weight_map = nlohmann::json::object();
    for (std::size_t i = 0; i < shards.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
      write_planned(join_path(dir, name), shards[i], metadata);
      written.insert(name);
      for (const PlannedTensor& item : shards[i]) weight_map[*item.name] = name;
    }
    // Written last, so the index never names a shard that is not complete.
    nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}},
                            {"weight_map", weight_map}};
    write_file_atomic(join_path(dir, kIndexFileName), index.dump(2) + "\n");
    written.insert(kIndexFileName);
  }

  // Weight files of an earlier save would otherwise be picked up by loaders
  // (model.safetensors wins over an index) or sit beside the new ones.
  std::vector<std::string> stale;
  std::filesystem::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    bool weight_file =
        name == kSingleFileName || name == kIndexFileName || is_shard_file_name(name);
    if (weight_file && written.count(name) == 0) stale.push_back(join_path(dir, name));
  }
  if (ec) throw Error(dir + ": cannot list folder to remove stale weight files: " + ec.message());
  for (const std::string& path : stale) remove_file(path);
}

}  // namespace openrm
