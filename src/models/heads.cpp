#include "openrm/models/heads.h"

#include <algorithm>

#include "models/heads_impl.h"
#include "openrm/error.h"

namespace openrm {

std::string HeadSpec::describe() const {
  std::string text = name + " (";
  text += kind == HeadKind::kTwoLayer ? "linear-relu-linear, inner " + std::to_string(inner) + ", " : "linear, ";
  text += bias ? "with bias, " : "no bias, ";
  text += std::to_string(labels) + (labels == 1 ? " output)" : " outputs)");
  return text;
}

std::vector<std::string> HeadSpec::tensor_names() const {
  std::vector<std::string> names;
  auto layer = [&](const std::string& prefix) {
    names.push_back(prefix + ".weight");
    if (bias) names.push_back(prefix + ".bias");
  };
  if (kind == HeadKind::kTwoLayer) {
    layer(name + ".0");
    layer(name + ".2");
  } else {
    layer(name);
  }
  return names;
}

std::optional<HeadSpec> detect_head(const std::vector<std::string>& names,
                                    const std::function<std::vector<std::int64_t>(const std::string&)>& shape_of,
                                    const std::vector<std::string>& candidates) {
  auto has = [&](const std::string& n) { return std::binary_search(names.begin(), names.end(), n); };
  auto matrix = [&](const std::string& n) {
    auto shape = shape_of(n);
    if (shape.size() != 2) {
      throw Error("head tensor " + n + " has shape of " + std::to_string(shape.size()) +
                  " dimensions (expected a matrix)");
    }
    return shape;
  };
  for (const auto& candidate : candidates) {
    HeadSpec spec;
    spec.name = candidate;
    if (has(candidate + ".weight")) {
      spec.kind = HeadKind::kLinear;
      spec.bias = has(candidate + ".bias");
      spec.labels = matrix(candidate + ".weight")[0];
      return spec;
    }
    if (has(candidate + ".0.weight") && has(candidate + ".2.weight")) {
      spec.kind = HeadKind::kTwoLayer;
      const auto first = matrix(candidate + ".0.weight"), second = matrix(candidate + ".2.weight");
      spec.inner = first[0];
      spec.labels = second[0];
      spec.bias = has(candidate + ".0.bias");
      if (spec.bias != has(candidate + ".2.bias")) {
        throw Error("two-layer head " + candidate + ": one layer has a bias and the other has none");
      }
      if (second[1] != spec.inner) {
        throw Error("two-layer head " + candidate + ": " + candidate + ".2.weight takes " +
                    std::to_string(second[1]) + " inputs but " + candidate + ".0.weight gives " +
                    std::to_string(spec.inner));
      }
      return spec;
    }
  }
  return std::nullopt;
}

// ---- the module --------------------------------------------------------------------

RewardHeadImpl::RewardHeadImpl(const HeadSpec& spec, std::int64_t hidden, const at::TensorOptions& options)
    : kind_(spec.kind) {
  if (spec.kind == HeadKind::kTwoLayer) {
    first = register_module("0", std::make_shared<LinearImpl>(hidden, spec.inner, spec.bias, options));
    second = register_module("2", std::make_shared<LinearImpl>(spec.inner, spec.labels, spec.bias, options));
  } else {
    weight = register_parameter("weight", at::empty({spec.labels, hidden}, options));
    if (spec.bias) bias = register_parameter("bias", at::empty({spec.labels}, options));
  }
}

at::Tensor RewardHeadImpl::forward(const at::Tensor& pooled) {
  if (kind_ == HeadKind::kTwoLayer) return second->forward(at::relu(first->forward(pooled)));
  return at::linear(pooled, weight, bias);
}

void register_head(torch::nn::Module& parent, const HeadSpec& spec, const std::shared_ptr<RewardHeadImpl>& head) {
  // "v_head.summary": the head is `summary` inside a `v_head` holder module.
  const auto dot = spec.name.find('.');
  if (dot == std::string::npos) {
    parent.register_module(spec.name, head);
    return;
  }
  if (spec.name.find('.', dot + 1) != std::string::npos) {
    throw Error("head name " + spec.name + ": at most one level of nesting is supported");
  }
  auto holder = std::make_shared<torch::nn::Module>();
  holder->register_module(spec.name.substr(dot + 1), head);
  parent.register_module(spec.name.substr(0, dot), holder);
}

}  // namespace openrm
