// A packed batch: B sequences laid end to end with no padding.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

namespace openrm {

struct PackedBatch {
  at::Tensor input_ids;     // (T) int64, the B sequences concatenated
  at::Tensor cu_seqlens;    // (B+1) int64, sequence b is [cu[b], cu[b+1])
  at::Tensor position_ids;  // (T) int64, 0..len-1 within each sequence
  std::int64_t max_seqlen = 0;
  std::vector<std::int64_t> lengths;  // (B) host copy of the lengths
  // Shared prefixes (empty: every sequence stands alone). parents[b] >= 0
  // says that sequence b continues the tokens of sequence parents[b], an
  // earlier sequence of the batch that has no parent itself: b's positions
  // start at that sequence's length, and b's queries attend to its tokens
  // before b's own. b's hidden states are then those of the concatenation,
  // while the shared tokens are computed once for all the sequences that
  // continue them. See docs/models.md.
  std::vector<std::int64_t> parents;

  // Packs token sequences; each must be non-empty. Throws openrm::Error
  // otherwise (naming the sequence index).
  static PackedBatch from_sequences(const std::vector<std::vector<std::int64_t>>& sequences);
  // The same from tokenizer ids (openrm::TokenId), without copying them
  // first; with pin_memory the host tensors are page-locked, so copies to a
  // GPU can run asynchronously.
  static PackedBatch from_views(const std::vector<const std::vector<std::int32_t>*>& sequences,
                                bool pin_memory = false);

  // One run of tokens of a batch with shared prefixes: `size` ids at `ids`,
  // continuing segment `parent` (an earlier index, or -1).
  struct Segment {
    const std::int32_t* ids = nullptr;
    std::int64_t size = 0;
    std::int64_t parent = -1;
  };
  // Packs segments, filling `parents` and the continued positions. Throws
  // openrm::Error for an empty segment or a parent that is not an earlier
  // segment without a parent of its own.
  static PackedBatch from_segments(const std::vector<Segment>& segments, bool pin_memory = false);
  bool has_shared_prefixes() const { return !parents.empty(); }
  std::int64_t num_sequences() const { return static_cast<std::int64_t>(lengths.size()); }
  std::int64_t num_tokens() const { return input_ids.defined() ? input_ids.size(0) : 0; }
  // (T) int64 on the batch's device: the sequence each packed token belongs to.
  at::Tensor sequence_index() const;
  // The tensors moved to `device` (lengths stay on the host).
  PackedBatch to(c10::Device device, bool non_blocking = false) const;
};

}  // namespace openrm
