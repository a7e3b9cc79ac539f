// The bundled demo dataset (data/demo-prefs-*.jsonl.gz, written by
// demo/make_demo_data): every pair separates chosen from rejected by its
// instruction, and no property of the response alone gives the label away.
#include <gtest/gtest.h>

#include <openrm/data/jsonl.h>
#include <openrm/data/preference.h>

#include <map>

#include "../demo/demo_constraints.h"
#include "test_paths.h"

namespace openrm {
namespace {

std::string data_file(const std::string& split) {
  return std::string(OPENRM_SOURCE_DIR) + "/data/demo-prefs-" + split + ".jsonl.gz";
}

demo::Constraint constraint_of(const nlohmann::json& record) {
  const std::string name = record.at("constraint").get<std::string>();
  for (int k = 0; k < demo::Constraint::kKinds; ++k) {
    const auto kind = static_cast<demo::Constraint::Kind>(k);
    if (name != demo::constraint_name(kind)) continue;
    demo::Constraint c{kind, ""};
    if (kind == demo::Constraint::kMentionWord) {
      const std::string prompt = record.at("prompt").get<std::string>();
      const auto open = prompt.find("Mention the word \"");
      const auto start = open + 18;
      c.word = prompt.substr(start, prompt.find('"', start) - start);
    }
    return c;
  }
  throw Error("unknown constraint " + name);
}

TEST(DemoData, EveryPairFollowsItsInstructionOnlyOnTheChosenSide) {
  for (const std::string split : {"train", "test"}) {
    JsonlReader reader(data_file(split));
    std::map<std::string, int> per_kind;
    int pairs = 0, chosen_longer = 0, chosen_upper = 0;
    for (std::string line; reader.next(line);) {
      const auto record = reader.parse(line);
      const demo::Constraint c = constraint_of(record);
      const std::string chosen = record.at("chosen"), rejected = record.at("rejected");
      EXPECT_TRUE(demo::satisfies(c, chosen)) << reader.location();
      EXPECT_FALSE(demo::satisfies(c, rejected)) << reader.location();
      ++per_kind[record.at("constraint").get<std::string>()];
      ++pairs;
      chosen_longer += chosen.size() > rejected.size();
      chosen_upper += demo::satisfies({demo::Constraint::kUppercase, ""}, chosen);
    }
    EXPECT_EQ(pairs, split == "train" ? 2400 : 400);
    EXPECT_EQ(per_kind.size(), static_cast<std::size_t>(demo::Constraint::kKinds)) << split;
    // Length and case alone do not predict the label.
    EXPECT_GT(chosen_longer, pairs * 3 / 10) << split;
    EXPECT_LT(chosen_longer, pairs * 7 / 10) << split;
    EXPECT_LT(chosen_upper, pairs / 5) << split;
  }
}

TEST(DemoData, ReadsAsPlainPreferencePairs) {
  ReadOptions options;
  options.format = PreferenceFormat::kPlain;
  auto data = read_preferences(data_file("test"), options);
  EXPECT_EQ(data.pairs.size(), 400u);
  EXPECT_EQ(data.stats.skipped_invalid, 0);
}

}  // namespace
}  // namespace openrm
