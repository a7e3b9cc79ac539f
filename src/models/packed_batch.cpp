#include "openrm/models/packed_batch.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "openrm/error.h"

namespace openrm {

PackedBatch PackedBatch::from_sequences(const std::vector<std::vector<std::int64_t>>& sequences) {
  if (sequences.empty()) throw Error("cannot pack an empty list of sequences");
  PackedBatch batch;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].empty()) throw Error("sequence " + std::to_string(i) + " is empty");
    total += static_cast<std::int64_t>(sequences[i].size());
  }
  auto ids = at::empty({total}, at::kLong);
  auto positions = at::empty({total}, at::kLong);
  auto cu = at::empty({static_cast<std::int64_t>(sequences.size()) + 1}, at::kLong);
  auto* ids_ptr = ids.data_ptr<std::int64_t>();
  auto* pos_ptr = positions.data_ptr<std::int64_t>();
  auto* cu_ptr = cu.data_ptr<std::int64_t>();
  std::int64_t offset = 0;
  cu_ptr[0] = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const auto& seq = sequences[i];
    const auto len = static_cast<std::int64_t>(seq.size());
    std::copy(seq.begin(), seq.end(), ids_ptr + offset);
    for (std::int64_t p = 0; p < len; ++p) pos_ptr[offset + p] = p;
    offset += len;
    cu_ptr[i + 1] = offset;
    batch.lengths.push_back(len);
    batch.max_seqlen = std::max(batch.max_seqlen, len);
  }
  batch.input_ids = ids;
  batch.position_ids = positions;
  batch.cu_seqlens = cu;
  return batch;
}

at::Tensor PackedBatch::sequence_index() const {
  return at::repeat_interleave(at::arange(num_sequences(), cu_seqlens.options()),
                               at::diff(cu_seqlens), /*dim=*/0, /*output_size=*/num_tokens());
}

PackedBatch PackedBatch::to(c10::Device device, bool non_blocking) const {
  PackedBatch out = *this;
  out.input_ids = input_ids.to(device, non_blocking);
  out.cu_seqlens = cu_seqlens.to(device, non_blocking);
  out.position_ids = position_ids.to(device, non_blocking);
  return out;
}

}  // namespace openrm
