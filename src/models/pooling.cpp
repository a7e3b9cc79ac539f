#include "openrm/models/pooling.h"

#include <ATen/ATen.h>

#include <string>

#include "openrm/error.h"

namespace openrm {

const char* pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::kRightmostNonPad: return "rightmost_non_pad";
    case Pooling::kLastToken: return "last_token";
    case Pooling::kBeforeFirstPad: return "before_first_pad";
    case Pooling::kFirstToken: return "first_token";
    case Pooling::kEos: return "eos";
  }
  return "?";
}

Pooling parse_pooling(const std::string& name) {
  for (auto p : {Pooling::kRightmostNonPad, Pooling::kLastToken, Pooling::kBeforeFirstPad, Pooling::kFirstToken,
                 Pooling::kEos}) {
    if (name == pooling_name(p)) return p;
  }
  if (name == "cls") return Pooling::kFirstToken;
  throw Error("unknown pooling rule '" + name +
              "' (expected rightmost_non_pad, last_token, before_first_pad, first_token (or cls) or eos)");
}

at::Tensor pooled_token_indices(const PackedBatch& batch, Pooling pooling,
                                std::optional<std::int64_t> pad_token_id,
                                const std::vector<std::int64_t>& eos_ids) {
  const auto& cu = batch.cu_seqlens;
  auto starts = cu.slice(0, 0, -1);
  auto ends = cu.slice(0, 1);
  auto last = ends - 1;
  if (pooling == Pooling::kLastToken) return last;
  if (pooling == Pooling::kFirstToken) return starts.clone();
  if (pooling == Pooling::kEos) {
    if (eos_ids.empty()) {
      throw Error("pooling 'eos' needs the model's eos_token_id (config.json has none)");
    }
    // The running maximum of EOS rows (or of each sequence's start, with its
    // last row standing in when none is EOS) read at the sequence's last row.
    auto seq = batch.sequence_index();
    auto is_eos = at::zeros_like(batch.input_ids, batch.input_ids.options().dtype(at::kBool));
    for (const auto id : eos_ids) is_eos = is_eos.logical_or(batch.input_ids.eq(id));
    auto token_index = at::arange(batch.num_tokens(), cu.options());
    auto candidate = at::where(is_eos, token_index, starts.index_select(0, seq) - 1);
    auto found = std::get<0>(at::cummax(candidate, 0)).index_select(0, last);
    return at::where(found.lt(starts), last, found);
  }

  if (!pad_token_id) {
    if (pooling == Pooling::kRightmostNonPad && batch.num_sequences() > 1) {
      throw Error("cannot pool a batch of " + std::to_string(batch.num_sequences()) +
                  " sequences: the model has no pad_token_id, and transformers refuses batches "
                  "without one (set pad_token_id in config.json, or use pooling 'last_token')");
    }
    return last;
  }

  // Segment maxima and minima without scatter_reduce (a beta op that logs a
  // warning in LibTorch 1.13): every candidate lies inside its own sequence's
  // row range, and the ranges are in order, so a running maximum read at a
  // sequence's last row is that sequence's maximum, and a running minimum
  // taken from the end and read at its first row is its minimum.
  auto seq = batch.sequence_index();
  auto is_pad = batch.input_ids.eq(*pad_token_id);
  auto token_index = at::arange(batch.num_tokens(), cu.options());
  if (pooling == Pooling::kRightmostNonPad) {
    // A sequence that is all pad reads its first token, as transformers'
    // argmax over an all-zero row does.
    auto candidate = at::where(is_pad, starts.index_select(0, seq), token_index);
    return std::get<0>(at::cummax(candidate, 0)).index_select(0, last);
  }
  // kBeforeFirstPad: p = position of the first pad (length when none), and the
  // token read is (p - 1) mod length, as the older rule's modulo does.
  auto lengths = ends - starts;
  auto candidate = at::where(is_pad, token_index, ends.index_select(0, seq));
  auto suffix_min = std::get<0>(at::cummin(candidate.flip(0), 0)).flip(0);
  auto first_pad = suffix_min.index_select(0, starts) - starts;
  return starts + at::remainder(first_pad - 1 + lengths, lengths);
}

std::int64_t pooled_position(const std::int32_t* ids, std::int64_t length, Pooling pooling,
                             std::optional<std::int64_t> pad_token_id, const std::vector<std::int64_t>& eos_ids) {
  if (length <= 0) throw Error("cannot pool an empty sequence");
  if (pooling == Pooling::kFirstToken) return 0;
  if (pooling == Pooling::kEos) {
    if (eos_ids.empty()) throw Error("pooling 'eos' needs the model's eos_token_id (config.json has none)");
    for (std::int64_t i = length - 1; i >= 0; --i) {
      for (const auto id : eos_ids) {
        if (ids[i] == id) return i;
      }
    }
    return length - 1;
  }
  if (pooling == Pooling::kLastToken || !pad_token_id) return length - 1;
  const auto pad = *pad_token_id;
  if (pooling == Pooling::kRightmostNonPad) {
    for (std::int64_t i = length - 1; i >= 0; --i) {
      if (ids[i] != pad) return i;
    }
    return 0;  // all pad: the first token, as the batched rule does
  }
  std::int64_t first_pad = length;
  for (std::int64_t i = 0; i < length; ++i) {
    if (ids[i] == pad) {
      first_pad = i;
      break;
    }
  }
  return (first_pad - 1 + length) % length;
}

}  // namespace openrm
