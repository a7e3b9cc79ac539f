// Reward heads: what turns the pooled hidden state into the reward(s). A
// checkpoint says which head it has by its tensor names; detect_head reads
// them (docs/models.md, "Heads").
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace openrm {

enum class HeadKind {
  // One linear layer, `name`.weight (labels, H), `name`.bias when `bias`:
  // transformers' *ForSequenceClassification `score` (no bias), and heads
  // with a bias such as `score` trained by some tools or GPT-NeoX's
  // `out_proj` (OpenAssistant).
  kLinear,
  // Two linear layers with a ReLU between, stored as `name`.0 and `name`.2
  // (an nn.Sequential(Linear, ReLU, Linear), as INF-ORM's score head):
  // (H -> inner) and (inner -> labels), each with a bias when `bias`.
  kTwoLayer,
};

struct HeadSpec {
  HeadKind kind = HeadKind::kLinear;
  // The module path of the head in the checkpoint: "score", "v_head",
  // "v_head.summary" (TRL's and LlamaFactory's value head), "out_proj".
  std::string name = "score";
  bool bias = false;
  std::int64_t inner = 0;   // kTwoLayer: the hidden width of the first layer
  std::int64_t labels = 1;  // outputs

  // "score (linear, no bias, 1 output)", for logs and model cards.
  std::string describe() const;
  // The tensor names this head owns, e.g. {"score.weight"}.
  std::vector<std::string> tensor_names() const;
};

// The head a checkpoint holds, from its tensor names and shapes: the first
// of `candidates` (module paths, in order) with a weight, or with `.0.weight`
// and `.2.weight` for a two-layer head. `shape_of` gives a tensor's shape.
// std::nullopt when no candidate is present.
std::optional<HeadSpec> detect_head(const std::vector<std::string>& names,
                                    const std::function<std::vector<std::int64_t>(const std::string&)>& shape_of,
                                    const std::vector<std::string>& candidates);

}  // namespace openrm
