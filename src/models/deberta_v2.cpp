// Not implemented yet: DebertaV2ForSequenceClassification (loading one is an error that says so).
#include "models/registry.h"
#include "openrm/error.h"

namespace openrm {

namespace {

std::shared_ptr<RewardModel> create(const ModelConfig&, const LoadOptions&) {
  throw Error("DebertaV2ForSequenceClassification is not implemented yet");
}

}  // namespace

ArchitectureEntry deberta_v2_architecture() { return {"DebertaV2ForSequenceClassification", "deberta-v2", &create}; }

}  // namespace openrm
