// PyTorch checkpoints (pytorch_model.bin, as torch.save writes a state dict),
// read without running any of the pickled code.
//
// torch.save writes either a ZIP archive (the default since PyTorch 1.6:
// <prefix>/data.pkl, the pickled structure, and <prefix>/data/<key>, one
// stored entry per storage) or the legacy stream (_use_new_zipfile_
// serialization=False: a magic-number pickle, a protocol pickle, a sys-info
// pickle, the structure pickle, a pickle of the storage keys, then each
// storage as an 8-byte element count and its bytes). Both pickle the same
// structure: an OrderedDict of name -> torch._utils._rebuild_tensor_v2(
// storage, offset, size, stride, ...), storages being persistent ids.
//
// The unpickler here is an interpreter for that structure only: it knows the
// opcodes such pickles use, and a short allow-list of globals (OrderedDict,
// the tensor and parameter rebuild functions, the typed storage classes). Any
// other global, e.g. os.system or builtins.eval, is refused by name before
// anything is built, so no checkpoint can make openrm run code.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "openrm/io/file.h"
#include "openrm/io/safetensors.h"

namespace openrm {

class PytorchBinFile : public WeightFile {
 public:
  // Parses the whole structure; throws openrm::Error naming the file and the
  // place (entry, byte offset) for anything malformed or refused.
  static std::shared_ptr<PytorchBinFile> open(const std::string& path);

  const std::string& path() const override { return map_->path(); }
  const std::vector<SafetensorsEntry>& entries() const override { return entries_; }
  const SafetensorsEntry* find(const std::string& name) const override;
  // A contiguous CPU tensor of the stored values. Like SafetensorsFile, it
  // views the (copy-on-write) mapping when the stored view is contiguous and
  // aligned; a strided view, or a legacy-format storage at an odd offset,
  // becomes its own copy.
  at::Tensor tensor(const std::string& name) const override;

  // One tensor's place: bytes of its storage in the file, and its view.
  struct View {
    std::uint64_t storage_begin = 0;  // file offset of the storage's first byte
    std::int64_t storage_numel = 0;
    std::int64_t offset = 0;          // in elements
    std::vector<std::int64_t> stride;
  };

 private:
  std::shared_ptr<MappedFile> map_;
  std::vector<SafetensorsEntry> entries_;
  std::vector<View> views_;
  std::map<std::string, std::size_t> index_;

  friend class PytorchBinParser;
};

}  // namespace openrm
