// Reading and writing the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON describing each tensor's dtype, shape and
// byte range, then the raw little-endian tensor data.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "openrm/io/dtype.h"
#include "openrm/io/file.h"
#include "openrm/io/safetensors_header.h"

namespace openrm {

// One file of named tensors: a safetensors file, or a pytorch_model.bin
// (src/io/pytorch_bin.h). Entries give each tensor's dtype and shape.
class WeightFile {
 public:
  virtual ~WeightFile() = default;
  virtual const std::string& path() const = 0;
  virtual const std::vector<SafetensorsEntry>& entries() const = 0;
  // nullptr when the file has no tensor of that name.
  virtual const SafetensorsEntry* find(const std::string& name) const = 0;
  // A CPU tensor with the stored dtype and shape; throws if the name is absent.
  virtual at::Tensor tensor(const std::string& name) const = 0;
};

// One safetensors file, memory-mapped.
class SafetensorsFile : public WeightFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);

  const std::string& path() const override { return map_->path(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<SafetensorsEntry>& entries() const override { return header_.entries; }
  // nullptr when the file has no tensor of that name.
  const SafetensorsEntry* find(const std::string& name) const override;
  // A CPU tensor with the stored dtype and shape. It views the mapping
  // (copy-on-write, so writing to it never changes the file) when the data is
  // suitably aligned, and is a copy otherwise. Throws if the name is absent.
  at::Tensor tensor(const std::string& name) const override;

 private:
  std::shared_ptr<MappedFile> map_;
  SafetensorsHeader header_;
  std::map<std::string, std::size_t> index_;
};

// The weights of a model folder: model.safetensors, or the shards listed by
// model.safetensors.index.json ("weight_map": name -> file); failing both,
// as transformers falls back, pytorch_model.bin or the shards listed by
// pytorch_model.bin.index.json, read without running any pickled code
// (src/io/pytorch_bin.h). Every name in an index must exist in the shard it
// points to, and no tensor may appear in two shards.
class WeightStore {
 public:
  static WeightStore open_folder(const std::string& dir);
  // A single file, for tests and tools: safetensors, or a PyTorch
  // checkpoint when the name ends in ".bin" (or ".pt", ".pth").
  static WeightStore open_file(const std::string& path);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  // The file that holds `name`, for error messages.
  const std::string& file_of(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const;

 private:
  std::vector<std::shared_ptr<WeightFile>> files_;
  std::map<std::string, std::size_t> where_;  // name -> index into files_
};

// The dtype of a tensor as stored, or throws for dtypes safetensors lacks.
DType dtype_of(const at::Tensor& tensor);

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes tensors (any device; converted to contiguous CPU) to one file,
// atomically (see AtomicFileWriter). Names must be unique and non-empty.
// metadata is stored as "__metadata__"; Hugging Face writes {"format": "pt"}.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes a folder's weights the way save_pretrained does: model.safetensors
// when the total fits in max_shard_bytes, otherwise
// model-00001-of-0000N.safetensors shards plus model.safetensors.index.json.
// Stale weight files from an earlier save into the same folder are removed.
void save_safetensors_folder(const std::string& dir, const NamedTensors& tensors,
                             std::uint64_t max_shard_bytes = 5'000'000'000ULL);

}  // namespace openrm
