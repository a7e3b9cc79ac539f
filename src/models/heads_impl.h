// The head as a module (see openrm/models/heads.h for what it is).
#pragma once

#include <torch/nn/module.h>

#include <memory>

#include "models/blocks.h"
#include "openrm/models/heads.h"

namespace openrm {

class RewardHeadImpl : public torch::nn::Module {
 public:
  RewardHeadImpl(const HeadSpec& spec, std::int64_t hidden, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& pooled);  // (B, H) -> (B, labels)
  at::Tensor weight, bias;                        // kLinear
  std::shared_ptr<LinearImpl> first, second;      // kTwoLayer ("0" and "2")

 private:
  HeadKind kind_;
};

// Registers `head` under spec.name in `parent`, so its parameters carry the
// checkpoint's names ("score.weight", "v_head.summary.bias", "score.0.weight").
void register_head(torch::nn::Module& parent, const HeadSpec& spec, const std::shared_ptr<RewardHeadImpl>& head);

}  // namespace openrm
