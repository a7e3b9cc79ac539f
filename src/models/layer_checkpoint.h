// Gradient checkpointing of one layer given as a function x -> layer(x), for
// families that do not use decoder.cpp (GPT-NeoX, GPT-2). The same scheme as
// decoder.cpp's: forward runs without keeping activations; backward reruns
// the layer under the autocast settings the forward ran under and
// backpropagates through the recomputation (torch.utils.checkpoint,
// reentrant form). Header-only.
#pragma once

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <ATen/core/ivalue.h>

#include <functional>
#include <utility>

#include "compat/torch_compat.h"

namespace openrm {

struct CheckpointedCall : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> layer;  // keeps what it needs alive until backward
  compat::AutocastState autocast;
};

class CheckpointedFunction : public torch::autograd::Function<CheckpointedFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            c10::intrusive_ptr<CheckpointedCall> call) {
    ctx->save_for_backward({x});
    auto out = call->layer(x);
    ctx->saved_data["call"] = c10::IValue::make_capsule(std::move(call));
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto call = c10::static_intrusive_pointer_cast<CheckpointedCall>(ctx->saved_data["call"].toCapsule());
    at::Tensor y;
    {
      torch::AutoGradMode enable(true);
      compat::AutocastScope autocast(call->autocast);
      y = call->layer(x);
    }
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), at::Tensor()};
  }
};

// layer(x), checkpointed.
inline at::Tensor checkpointed_layer(const at::Tensor& x, std::function<at::Tensor(const at::Tensor&)> layer) {
  auto call = c10::make_intrusive<CheckpointedCall>();
  call->layer = std::move(layer);
  call->autocast = compat::current_autocast();
  // An input that needs no gradient (the embeddings of a frozen LoRA base)
  // would leave the output out of the graph, and the adapters inside the
  // layer without gradients (transformers' enable_input_require_grads).
  if (torch::GradMode::is_enabled() && !x.requires_grad()) {
    return CheckpointedFunction::apply(x.detach().requires_grad_(true), std::move(call));
  }
  return CheckpointedFunction::apply(x, std::move(call));
}

}  // namespace openrm
