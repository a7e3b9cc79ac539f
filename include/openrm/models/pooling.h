// Which token of a sequence the reward is read from.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "openrm/models/packed_batch.h"

namespace openrm {

enum class Pooling {
  // transformers' rule for *ForSequenceClassification: the rightmost token
  // that is not pad_token_id (the first token if all are pad). Without a pad
  // token it takes the last token and, as transformers does, refuses batches
  // of more than one sequence.
  kRightmostNonPad,
  // The last token of each sequence, by length.
  kLastToken,
  // Older transformers (< 4.45): the token before the first pad_token_id, or
  // the last token when there is none (the index wraps around).
  kBeforeFirstPad,
  // The first token of each sequence: [CLS] for encoders (DeBERTa, BERT).
  kFirstToken,
  // The last token that is one of the model's eos_token_id(s), as reward
  // models trained to read the reward at the end-of-sequence token expect;
  // a sequence without one reads its last token.
  kEos,
};

// Names used in openrm.json and on the command line:
// "rightmost_non_pad", "last_token", "before_first_pad", "first_token", "eos".
const char* pooling_name(Pooling pooling);
// Throws openrm::Error listing the accepted names.
Pooling parse_pooling(const std::string& name);

// Row index into the packed (T, H) hidden states for each sequence: (B) int64
// on the batch's device.
// `eos_ids` are read by kEos only.
at::Tensor pooled_token_indices(const PackedBatch& batch, Pooling pooling,
                                std::optional<std::int64_t> pad_token_id,
                                const std::vector<std::int64_t>& eos_ids = {});

// The same rule for one sequence of `length` ids on the host: the index of
// the pooled token within the sequence (without a pad token, the last one).
std::int64_t pooled_position(const std::int32_t* ids, std::int64_t length, Pooling pooling,
                             std::optional<std::int64_t> pad_token_id,
                             const std::vector<std::int64_t>& eos_ids = {});

}  // namespace openrm
