#include "openrm/models/packed_batch.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "openrm/error.h"

namespace openrm {

namespace {

// Packs sequences given through `at(i)` (a range of sequence i's ids of any
// integer type, with begin(), end(), size() and empty()); `parent(i)` is the
// segment sequence i continues, or -1. Pinned host memory when asked (for
// asynchronous copies to a GPU).
template <typename At, typename Parent>
PackedBatch pack(std::size_t count, At&& at, Parent&& parent, bool pin_memory) {
  if (count == 0) throw Error("cannot pack an empty list of sequences");
  PackedBatch batch;
  std::int64_t total = 0;
  bool shared = false;
  for (std::size_t i = 0; i < count; ++i) {
    if (at(i).empty()) throw Error("sequence " + std::to_string(i) + " is empty");
    total += static_cast<std::int64_t>(at(i).size());
    const std::int64_t p = parent(i);
    if (p == -1) continue;
    if (p < 0 || p >= static_cast<std::int64_t>(i) || parent(static_cast<std::size_t>(p)) != -1) {
      throw Error("segment " + std::to_string(i) + " continues segment " + std::to_string(p) +
                  ", which is not an earlier segment without a parent of its own");
    }
    shared = true;
  }
  const auto options = at::TensorOptions().dtype(at::kLong).pinned_memory(pin_memory);
  auto ids = at::empty({total}, options);
  auto positions = at::empty({total}, options);
  auto cu = at::empty({static_cast<std::int64_t>(count) + 1}, options);
  auto* ids_ptr = ids.data_ptr<std::int64_t>();
  auto* pos_ptr = positions.data_ptr<std::int64_t>();
  auto* cu_ptr = cu.data_ptr<std::int64_t>();
  std::int64_t offset = 0;
  cu_ptr[0] = 0;
  batch.lengths.reserve(count);
  if (shared) batch.parents.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto& seq = at(i);
    const auto len = static_cast<std::int64_t>(seq.size());
    std::copy(seq.begin(), seq.end(), ids_ptr + offset);
    const std::int64_t p = parent(i);
    const std::int64_t first = p >= 0 ? batch.lengths[static_cast<std::size_t>(p)] : 0;
    for (std::int64_t t = 0; t < len; ++t) pos_ptr[offset + t] = first + t;
    if (shared) batch.parents.push_back(p);
    offset += len;
    cu_ptr[i + 1] = offset;
    batch.lengths.push_back(len);
    batch.max_seqlen = std::max(batch.max_seqlen, len);  // of the segments, not the continued lengths
  }
  batch.input_ids = ids;
  batch.position_ids = positions;
  batch.cu_seqlens = cu;
  return batch;
}

}  // namespace

PackedBatch PackedBatch::from_sequences(const std::vector<std::vector<std::int64_t>>& sequences) {
  return pack(
      sequences.size(), [&](std::size_t i) -> const auto& { return sequences[i]; },
      [](std::size_t) -> std::int64_t { return -1; }, /*pin_memory=*/false);
}

PackedBatch PackedBatch::from_views(const std::vector<const std::vector<std::int32_t>*>& sequences,
                                    bool pin_memory) {
  return pack(
      sequences.size(), [&](std::size_t i) -> const auto& { return *sequences[i]; },
      [](std::size_t) -> std::int64_t { return -1; }, pin_memory);
}

namespace {

// A segment's ids as the range pack() reads.
struct SegmentRange {
  const std::int32_t* first;
  std::int64_t count;
  const std::int32_t* begin() const { return first; }
  const std::int32_t* end() const { return first + count; }
  std::size_t size() const { return static_cast<std::size_t>(count); }
  bool empty() const { return count <= 0; }
};

}  // namespace

PackedBatch PackedBatch::from_segments(const std::vector<Segment>& segments, bool pin_memory) {
  return pack(
      segments.size(), [&](std::size_t i) { return SegmentRange{segments[i].ids, segments[i].size}; },
      [&](std::size_t i) { return segments[i].parent; }, pin_memory);
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
