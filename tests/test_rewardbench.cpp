// RewardBench v1 and v2 (openrm/eval/rewardbench.h): the scores against the
// rewardbench package's own functions (a committed fixture, and a live run
// of tests/rewardbench_reference.py on new random scores), hand-computed
// cases, the reader and its errors, and evaluate_rewardbench on a tiny
// random model against scoring each completion alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <openrm/eval/rewardbench.h>
#include <openrm/score/scorer.h>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_io_util.h"
#include "test_paths.h"
#include "test_util.h"

namespace openrm {
namespace {

using json = nlohmann::json;

const float kNaNf = std::numeric_limits<float>::quiet_NaN();

std::string fixture(const std::string& name) {
  return std::string(OPENRM_SOURCE_DIR) + "/tests/fixtures/rewardbench/" + name;
}

// ---- comparing with the reference ------------------------------------------------

// An example as the reference script takes it: a subset, an id and the
// scores of its chosen and rejected completions.
struct ScoredExample {
  std::string subset;
  std::string id;
  std::vector<float> chosen;
  std::vector<float> rejected;
};

struct ScoredSet {
  RewardBenchVersion version = RewardBenchVersion::kV1;
  std::vector<ScoredExample> examples;
};

// The data score_rewardbench needs: subsets, ids and how many completions
// (their conversations are not looked at).
RewardBenchData data_of(const ScoredSet& set) {
  RewardBenchData data;
  data.version = set.version;
  for (std::size_t i = 0; i < set.examples.size(); ++i) {
    RewardBenchExample e;
    e.subset = set.examples[i].subset;
    e.id = set.examples[i].id;
    e.chosen.resize(set.examples[i].chosen.size());
    e.rejected.resize(set.examples[i].rejected.size());
    e.line = static_cast<std::int64_t>(i + 1);
    data.examples.push_back(std::move(e));
  }
  return data;
}

RewardBenchScores score(const ScoredSet& set) {
  std::vector<std::vector<float>> chosen, rejected;
  for (const auto& e : set.examples) {
    chosen.push_back(e.chosen);
    rejected.push_back(e.rejected);
  }
  return score_rewardbench(data_of(set), chosen, rejected);
}

json input_json(const ScoredSet& set) {
  json examples = json::array();
  for (const auto& e : set.examples) {
    json x = {{"subset", e.subset}, {"id", e.id}, {"num_correct", e.chosen.size()}};
    // As doubles: the shortest text that gives back the same double, so
    // the script reads exactly the scores the library gets.
    x["chosen"] = std::vector<double>(e.chosen.begin(), e.chosen.end());
    x["rejected"] = std::vector<double>(e.rejected.begin(), e.rejected.end());
    examples.push_back(std::move(x));
  }
  return {{"version", rewardbench_version_name(set.version)}, {"examples", examples}};
}

ScoredSet set_of(const json& input) {
  ScoredSet set;
  set.version = rewardbench_version_from_name(input.at("version").get<std::string>());
  for (const auto& x : input.at("examples")) {
    ScoredExample e;
    e.subset = x.at("subset").get<std::string>();
    e.id = x.at("id").is_string() ? x.at("id").get<std::string>() : x.at("id").dump();
    for (double v : x.at("chosen")) e.chosen.push_back(static_cast<float>(v));
    for (double v : x.at("rejected")) e.rejected.push_back(static_cast<float>(v));
    set.examples.push_back(std::move(e));
  }
  return set;
}

// Records the largest relative difference seen, for the report.
struct Comparison {
  double worst = 0.0;
  int compared = 0;

  // |got - want| <= 1e-9 relative (both undefined counts as equal).
  void expect(double got, const json& want, const std::string& what) {
    ++compared;
    if (want.is_null()) {
      EXPECT_TRUE(std::isnan(got)) << what << ": got " << got << ", the reference has none";
      return;
    }
    const double w = want.get<double>();
    const double diff = std::fabs(got - w);
    const double scale = std::max(std::fabs(w), std::fabs(got));
    const double relative = scale > 0 ? diff / scale : 0.0;
    worst = std::max(worst, relative);
    EXPECT_LE(diff, 1e-9 * scale + 1e-15) << what << ": got " << got << ", the package gives " << w;
  }
};

const RewardBenchSubsetScore* find_subset(const RewardBenchScores& s, const std::string& name) {
  for (const auto& subset : s.subsets) {
    if (subset.name == name) return &subset;
  }
  return nullptr;
}

const RewardBenchSection* find_section(const RewardBenchScores& s, const std::string& name) {
  for (const auto& section : s.sections) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

// Every number the reference gives, against the library's.
Comparison compare(const RewardBenchScores& got, const json& reference, const ScoredSet& set) {
  Comparison c;
  for (const auto& [name, value] : reference.at("subsets").items()) {
    const RewardBenchSubsetScore* subset = find_subset(got, name);
    if (subset == nullptr) {
      ADD_FAILURE() << "no subset " << name;
      continue;
    }
    c.expect(subset->score, value, "subset " + name);
  }
  EXPECT_EQ(got.subsets.size(), reference.at("subsets").size());
  c.expect(got.overall, reference.at("overall"), "overall");
  if (set.version == RewardBenchVersion::kV1) {
    for (const auto& [name, value] : reference.at("sections").items()) {
      const RewardBenchSection* section = find_section(got, name);
      if (section == nullptr) {
        ADD_FAILURE() << "no section " << name;
        continue;
      }
      c.expect(section->score, value, "section " + name);
      c.expect(section->score, reference.at("sections_calculate_scores_per_section").at(name),
               "section " + name + " (calculate_scores_per_section)");
    }
    c.expect(find_section(got, "Prior Sets")->score, reference.at("prior_sets"), "prior sets");
  } else {
    const auto& results = reference.at("per_example_results");
    EXPECT_EQ(results.size(), set.examples.size());
    for (std::size_t i = 0; i < set.examples.size() && i < results.size(); ++i) {
      if (set.examples[i].subset == "Ties") continue;  // scored as a whole
      c.expect(got.credit[i], results[i], "example " + std::to_string(i) + " credit");
    }
  }
  return c;
}

TEST(RewardBenchReference, CommittedFixturesMatchThePackage) {
  for (const char* name : {"v1_scores.json", "v2_scores.json"}) {
    SCOPED_TRACE(name);
    const json fixture_json = json::parse(test::read_bytes(fixture(name)));
    const json& reference = fixture_json.at("reference");
    EXPECT_EQ(reference.at("versions").at("rewardbench"), "0.1.4");
    const ScoredSet set = set_of(fixture_json.at("input"));
    const RewardBenchScores got = score(set);
    const Comparison c = compare(got, reference, set);
    EXPECT_GT(c.compared, 10);
    std::printf("%s: %d numbers, largest relative difference from rewardbench %.3g\n", name, c.compared, c.worst);
    if (set.version == RewardBenchVersion::kV1) {
      EXPECT_TRUE(got.complete);
      // The fixture has every subset of SUBSET_MAPPING, and the prior sets.
      for (const auto& section : got.sections) EXPECT_TRUE(section.complete()) << section.name;
      ASSERT_TRUE(find_subset(got, "mtbench_gpt4"));
      EXPECT_EQ(find_subset(got, "mtbench_gpt4")->section, "");  // not one of the leaderboard's prior sets
    } else {
      ASSERT_TRUE(got.ties.has_value());
      EXPECT_GT(got.ties->paired_prompts, 0);
      EXPECT_LT(got.ties->margin_prompts, got.ties->paired_prompts);  // tied:9 has one correct answer
      EXPECT_LT(got.ties->ratio_prompts, got.ties->margin_prompts);   // tied:8's correct answers all tie
    }
  }
}

TEST(RewardBenchReference, TablesMatchThePackagesConstants) {
  const json reference = json::parse(test::read_bytes(fixture("v1_scores.json"))).at("reference");
  const json& constants = reference.at("constants");
  std::map<std::string, std::string> section_of;
  for (const auto& [section, subsets] : constants.at("subset_mapping").items()) {
    for (const auto& s : subsets) section_of[s.get<std::string>()] = section;
  }
  std::size_t core = 0;
  for (const auto& info : rewardbench_subsets(RewardBenchVersion::kV1)) {
    if (info.section == "Prior Sets") {
      EXPECT_NE(std::find(constants.at("prior_sets").begin(), constants.at("prior_sets").end(), info.name),
                constants.at("prior_sets").end())
          << info.name;
      continue;
    }
    ++core;
    EXPECT_EQ(section_of[info.name], info.section) << info.name;
    EXPECT_EQ(constants.at("example_counts").at(info.name).get<double>(), info.weight) << info.name;
  }
  EXPECT_EQ(core, section_of.size());
  EXPECT_EQ(rewardbench_subsets(RewardBenchVersion::kV1).size(), core + constants.at("prior_sets").size());
}

// Random scores with many ties: multiples of 1/8 often, of 1/1024 else
// (exact in float and in double, so the script computes on the same values).
float random_score(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng) < 0.6) return static_cast<float>(std::uniform_int_distribution<int>(-16, 16)(rng)) / 8.0f;
  return static_cast<float>(std::uniform_int_distribution<int>(-4096, 4096)(rng)) / 1024.0f;
}

ScoredSet random_v1(std::mt19937_64& rng) {
  ScoredSet set;
  set.version = RewardBenchVersion::kV1;
  std::uniform_real_distribution<double> u(0, 1);
  std::map<std::string, bool> section_has;
  const bool prior_sets = u(rng) < 0.7;
  std::vector<std::string> subsets;
  for (const auto& info : rewardbench_subsets(RewardBenchVersion::kV1)) {
    if (info.section == "Prior Sets" && !prior_sets) continue;
    // Some subsets absent, but never a whole section (the leaderboard's
    // table code divides by a section's weights).
    const bool last_chance = &info == &rewardbench_subsets(RewardBenchVersion::kV1).back() ||
                             (&info + 1)->section != info.section;
    if (u(rng) < 0.25 && !(last_chance && !section_has[info.section])) continue;
    section_has[info.section] = true;
    subsets.push_back(info.name);
  }
  subsets.insert(subsets.end(), {"anthropic_harmless", "mtbench_human"});
  for (const auto& subset : subsets) {
    for (int n = std::uniform_int_distribution<int>(1, 15)(rng); n > 0; --n) {
      set.examples.push_back({subset, std::to_string(set.examples.size()), {random_score(rng)}, {random_score(rng)}});
    }
  }
  std::shuffle(set.examples.begin(), set.examples.end(), rng);
  return set;
}

ScoredSet random_v2(std::mt19937_64& rng) {
  ScoredSet set;
  set.version = RewardBenchVersion::kV2;
  std::uniform_real_distribution<double> u(0, 1);
  auto scores = [&](int n) {
    std::vector<float> out;
    for (int i = 0; i < n; ++i) out.push_back(random_score(rng));
    return out;
  };
  for (const char* subset : {"Factuality", "Precise IF", "Math", "Safety", "Focus"}) {
    if (u(rng) < 0.15) continue;
    for (int n = std::uniform_int_distribution<int>(1, 20)(rng); n > 0; --n) {
      ScoredExample e{subset, std::to_string(set.examples.size()), scores(u(rng) < 0.1 ? 2 : 1), scores(3)};
      if (u(rng) < 0.2) e.rejected[1] = e.chosen[0];  // a tie for the top, often
      set.examples.push_back(std::move(e));
    }
  }
  const int prompts = std::uniform_int_distribution<int>(1, 25)(rng);
  for (int pid = 0; pid < prompts; ++pid) {
    const double r = u(rng);
    if (r < 0.9) {
      set.examples.push_back({"Ties", "ref:" + std::to_string(pid), scores(1),
                              scores(std::uniform_int_distribution<int>(1, 5)(rng))});
    }
    if (r > 0.05) {
      ScoredExample e{"Ties", "tied:" + std::to_string(pid), scores(std::uniform_int_distribution<int>(1, 6)(rng)),
                      scores(std::uniform_int_distribution<int>(1, 6)(rng))};
      if (u(rng) < 0.4) {
        for (auto& c : e.chosen) c += 3.0f;  // mostly accurate, positive margins
      }
      if (u(rng) < 0.1) std::fill(e.chosen.begin(), e.chosen.end(), e.chosen[0]);  // no spread
      set.examples.push_back(std::move(e));
    }
  }
  // The Ties records stay together, as in the published file (the order of
  // their first appearance is all process_single_model keeps).
  return set;
}

TEST(RewardBenchReference, LiveRandomScoresMatchThePackage) {
  const std::string python = test::reference_python();
  if (python.empty()) GTEST_SKIP() << test::kNoReferenceMessage;
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  test::TempDir dir;
  const std::string script = std::string(OPENRM_SOURCE_DIR) + "/tests/rewardbench_reference.py";
  // Several sets in one run of the script (its imports take seconds).
  std::vector<ScoredSet> sets;
  std::string command = python + " '" + script + "'";
  for (int round = 0; round < 6; ++round) {
    sets.push_back(round % 2 == 0 ? random_v1(rng) : random_v2(rng));
    const std::string in = dir.file("in" + std::to_string(round) + ".json");
    test::write_bytes(in, input_json(sets.back()).dump());
    command += " '" + in + "'";
  }
  const std::string out = dir.file("out.jsonl"), err = dir.file("err.txt");
  ASSERT_EQ(std::system((command + " > '" + out + "' 2> '" + err + "'").c_str()), 0) << test::read_bytes(err);
  std::istringstream lines(test::read_bytes(out));
  std::string line;
  std::size_t round = 0;
  for (; std::getline(lines, line) && round < sets.size(); ++round) {
    const ScoredSet& set = sets[round];
    SCOPED_TRACE(rewardbench_version_name(set.version) + " round " + std::to_string(round));
    const json reference = json::parse(line);
    EXPECT_EQ(reference.at("version"), rewardbench_version_name(set.version));
    const Comparison c = compare(score(set), reference, set);
    std::printf("live %s (seed %llu, %zu examples): %d numbers, largest relative difference from rewardbench %.3g\n",
                rewardbench_version_name(set.version).c_str(), static_cast<unsigned long long>(seed),
                set.examples.size(), c.compared, c.worst);
  }
  EXPECT_EQ(round, sets.size());
}

// ---- by hand ----------------------------------------------------------------------

TEST(RewardBenchScore, V1AccuracySectionsAndOverallByHand) {
  ScoredSet set;
  // alpacaeval-easy: right, a tie (wrong), NaN (wrong) -> 1/3.
  set.examples.push_back({"alpacaeval-easy", "1", {1.0f}, {0.0f}});
  set.examples.push_back({"alpacaeval-easy", "2", {0.5f}, {0.5f}});
  set.examples.push_back({"alpacaeval-easy", "3", {kNaNf}, {0.0f}});
  // mt-bench-easy: 1/2.
  set.examples.push_back({"mt-bench-easy", "4", {2.0f}, {1.0f}});
  set.examples.push_back({"mt-bench-easy", "5", {0.0f}, {1.0f}});
  // math-prm 1, hep-go 0: Reasoning = (984 * 1 + 164 * 0) / (984 + 164).
  set.examples.push_back({"math-prm", "6", {1.0f}, {0.0f}});
  set.examples.push_back({"hep-go", "7", {0.0f}, {1.0f}});
  // Prior sets: shp 1, summarize 0 -> 1/2 (unweighted).
  set.examples.push_back({"shp", "8", {1.0f}, {0.0f}});
  set.examples.push_back({"summarize", "9", {0.0f}, {1.0f}});
  set.examples.push_back({"my-own-subset", "10", {1.0f}, {0.0f}});
  const RewardBenchScores s = score(set);
  EXPECT_DOUBLE_EQ(find_subset(s, "alpacaeval-easy")->score, 1.0 / 3);
  EXPECT_EQ(find_subset(s, "alpacaeval-easy")->ties, 1);
  EXPECT_EQ(find_subset(s, "alpacaeval-easy")->nan_examples, 1);
  const double chat = (100.0 / 3 + 28 * 0.5) / (100 + 28);
  const double reasoning = 984.0 / (984 + 164);
  EXPECT_DOUBLE_EQ(find_section(s, "Chat")->score, chat);
  EXPECT_DOUBLE_EQ(find_section(s, "Reasoning")->score, reasoning);
  EXPECT_DOUBLE_EQ(find_section(s, "Prior Sets")->score, 0.5);
  EXPECT_TRUE(std::isnan(find_section(s, "Safety")->score));
  EXPECT_TRUE(std::isnan(find_section(s, "Chat Hard")->score));
  // Absent sections are left out of the weighted mean (2, 2, 1).
  EXPECT_DOUBLE_EQ(s.overall, (2 * chat + 2 * reasoning + 1 * 0.5) / 5);
  EXPECT_FALSE(s.complete);
  EXPECT_EQ(find_section(s, "Chat")->missing.size(), 3u);
  EXPECT_EQ(find_subset(s, "my-own-subset")->section, "");
  EXPECT_EQ(s.nan_completions, 1);
  EXPECT_EQ(s.completions, 20);
  ASSERT_EQ(s.credit.size(), set.examples.size());
  EXPECT_EQ(s.credit[0], 1.0);
  EXPECT_EQ(s.credit[1], 0.0);
  // Official subsets first, in section order, then the rest by name.
  EXPECT_EQ(s.subsets.front().name, "alpacaeval-easy");
  EXPECT_EQ(s.subsets.back().name, "my-own-subset");
  std::string notes;
  for (const auto& n : s.notes) notes += n + "\n";
  for (const char* part : {"Chat is incomplete: computed over 2 of its 5 subsets", "Safety: none of its subsets",
                           "no section counts (reported, not in the overall score): my-own-subset",
                           "1 of 20 completions have a NaN score", "examples found / in the published filtered split: alpacaeval-easy 3/100, mt-bench-easy 2/28"}) {
    EXPECT_TRUE(test::contains(notes, part));
  }

  // No prior sets: the mean of the sections, with a note saying so.
  ScoredSet core;
  core.examples = {set.examples[0], set.examples[5]};
  const RewardBenchScores c = score(core);
  EXPECT_DOUBLE_EQ(c.overall, 1.0);
  EXPECT_FALSE(c.complete);  // Chat and Reasoning lack subsets
  EXPECT_TRUE(find_section(c, "Prior Sets")->present.empty());
  std::string core_notes;
  for (const auto& n : c.notes) core_notes += n + "\n";
  EXPECT_TRUE(test::contains(core_notes, "no prior-set subset"));
}

TEST(RewardBenchScore, V2BestOfNCreditByHand) {
  ScoredSet set;
  set.version = RewardBenchVersion::kV2;
  set.examples.push_back({"Math", "0", {3.0f}, {1.0f, 2.0f, 0.0f}});   // 1
  set.examples.push_back({"Math", "1", {2.0f}, {2.0f, 2.0f, 0.0f}});   // three share the top: 1/3
  set.examples.push_back({"Math", "2", {1.0f}, {2.0f, 0.0f, 0.0f}});   // 0
  set.examples.push_back({"Math", "3", {5.0f}, {kNaNf, 0.0f, 0.0f}});  // NaN: 0
  // Only the first chosen completion is checked outside Ties.
  set.examples.push_back({"Focus", "4", {0.0f, 9.0f}, {1.0f}});  // 0
  set.examples.push_back({"Focus", "5", {9.0f, 0.0f}, {1.0f}});  // 1
  const RewardBenchScores s = score(set);
  EXPECT_DOUBLE_EQ(s.credit[1], 1.0 / 3);
  EXPECT_EQ(s.credit[3], 0.0);
  EXPECT_DOUBLE_EQ(find_subset(s, "Math")->score, (1 + 1.0 / 3) / 4);
  EXPECT_EQ(find_subset(s, "Math")->ties, 1);
  EXPECT_DOUBLE_EQ(find_subset(s, "Focus")->score, 0.5);
  EXPECT_DOUBLE_EQ(s.overall, ((1 + 1.0 / 3) / 4 + 0.5) / 2);
  EXPECT_FALSE(s.complete);
  EXPECT_FALSE(s.ties.has_value());
  EXPECT_EQ(s.sections.size(), 6u);
  EXPECT_TRUE(test::contains(s.notes[0], "Factuality is not in the data; the overall score is the mean of the others"));
}

TEST(RewardBenchScore, TiesScoreByHand) {
  ScoredSet set;
  set.version = RewardBenchVersion::kV2;
  // Prompt 1: ref accurate (margin 4 - 1 = 3); tied correct 5, 4.5 (spread
  // 0.5), incorrect 1 (margin 3.5): accurate; 3.5 > 0.5; min(3, 3.5) = 3 >
  // 0.5; ratio 3 / 0.5 = 6.
  set.examples.push_back({"Ties", "ref:1", {4.0f}, {1.0f, 0.0f}});
  set.examples.push_back({"Ties", "tied:1", {5.0f, 4.5f}, {1.0f}});
  // Prompt 2: ref wrong (margin -1); tied correct 2, 0 (spread 2),
  // incorrect 1 (margin -1): wrong; -1 > 2 no; min(-1, -1) > 2 no;
  // ratio -1 / 2 = -0.5.
  set.examples.push_back({"Ties", "ref:2", {0.0f}, {1.0f}});
  set.examples.push_back({"Ties", "tied:02", {2.0f, 0.0f}, {1.0f}});  // int("02") is 2
  // Prompt 3: tied only (accurate); counts in the tied accuracy only.
  set.examples.push_back({"Ties", "tied:3", {3.0f, 3.0f}, {1.0f}});
  const RewardBenchScores s = score(set);
  ASSERT_TRUE(s.ties.has_value());
  const RewardBenchTies& t = *s.ties;
  EXPECT_DOUBLE_EQ(t.ref_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(t.tied_accuracy, 2.0 / 3);
  EXPECT_EQ(t.paired_prompts, 2);
  EXPECT_DOUBLE_EQ(t.correctness_preferred, 0.5);
  EXPECT_DOUBLE_EQ(t.correctness_preferred_hard, 0.5);
  EXPECT_DOUBLE_EQ(t.correctness_margin_score, (std::tanh(6.0 - 1) + std::tanh(-0.5 - 1)) / 2);
  const double expect = 0.3 * (2.0 / 3) + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 +
                        0.01 * (std::tanh(5.0) + std::tanh(-1.5)) / 2;
  EXPECT_DOUBLE_EQ(t.score, expect);
  EXPECT_DOUBLE_EQ(find_subset(s, "Ties")->score, expect);
  EXPECT_TRUE(std::isnan(s.credit[0]));  // Ties examples have no credit of their own
  EXPECT_TRUE(test::contains(s.notes.back(), "Ties: 1 prompts lack their ref/tied partner"));

  // A NaN in a tied prompt fails every comparison it enters.
  ScoredSet nan = set;
  nan.examples[1].chosen[1] = kNaNf;
  const RewardBenchTies n = *score(nan).ties;
  EXPECT_DOUBLE_EQ(n.tied_accuracy, 1.0 / 3);
  EXPECT_DOUBLE_EQ(n.correctness_preferred, 0.0);
  EXPECT_EQ(n.ratio_prompts, 1);

  // Bad ids and repeats are errors naming the example.
  ScoredSet bad = set;
  bad.examples[0].id = "reference:1";
  EXPECT_TRUE(test::contains(test::error_of([&] { score(bad); }), "example 0 (line 1): Ties id \"reference:1\""));
  bad = set;
  bad.examples[3].id = "tied:1";
  EXPECT_TRUE(test::contains(test::error_of([&] { score(bad); }), "repeats the id \"tied:1\" (first on line 2)"));
}

TEST(RewardBenchScore, ShapeErrorsJsonAndTable) {
  ScoredSet set;
  set.examples.push_back({"hep-go", "1", {1.0f}, {0.0f}});
  const RewardBenchData data = data_of(set);
  EXPECT_TRUE(test::contains(test::error_of([&] { score_rewardbench(data, {}, {}); }), "1 examples but scores for 0"));
  EXPECT_TRUE(test::contains(test::error_of([&] { score_rewardbench(data, {{1.0f, 2.0f}}, {{0.0f}}); }),
                             "example 0 (line 1): 1 chosen and 1 rejected completions but 2 and 1 scores"));
  const RewardBenchScores s = score(set);
  const auto j = rewardbench_json(s);
  EXPECT_EQ(j["version"], "v1");
  EXPECT_DOUBLE_EQ(j["overall"].get<double>(), 1.0);
  EXPECT_TRUE(j["sections"]["Chat"]["score"].is_null());
  EXPECT_EQ(j["sections"]["Reasoning"]["missing"].size(), 6u);
  EXPECT_EQ(j["subsets"]["hep-go"]["examples"], 1);
  EXPECT_EQ(j["subsets"]["hep-go"]["section"], "Reasoning");
  EXPECT_TRUE(j["ties"].is_null());
  EXPECT_FALSE(j["complete"].get<bool>());
  const std::string table = format_rewardbench(s);
  for (const char* part : {"RewardBench v1", "overall", "100.00", "Reasoning", "hep-go", "INCOMPLETE", "notes:"}) {
    EXPECT_TRUE(test::contains(table, part)) << table;
  }
}

// ---- the reader -----------------------------------------------------------------

TEST(RewardBenchRead, V1RecordsAsPlainPairsBuildThem) {
  const RewardBenchData data = read_rewardbench(fixture("v1_tiny.jsonl"));
  EXPECT_EQ(data.version, RewardBenchVersion::kV1);
  ASSERT_EQ(data.examples.size(), 11u);
  const RewardBenchExample& e = data.examples[0];
  EXPECT_EQ(e.subset, "alpacaeval-easy");
  EXPECT_EQ(e.id, "30");
  EXPECT_TRUE(e.id_is_number);
  EXPECT_EQ(e.line, 1);
  ASSERT_EQ(e.chosen.size(), 1u);
  ASSERT_EQ(e.chosen[0].size(), 2u);
  EXPECT_EQ(e.chosen[0][0].role, "user");
  EXPECT_EQ(e.chosen[0][0].content, "The quick brown fox 0 asks a question.");
  EXPECT_EQ(e.chosen[0][1].role, "assistant");
  EXPECT_EQ(e.chosen[0][1].content, "The quick brown fox jumps over the lazy dog.");
  EXPECT_EQ(e.rejected[0][1].content, "A reward model scores answer number 7 for you. 0");
  // A list prompt (allenai/pref-test-sets): its turns, then the response.
  const RewardBenchExample& hhh = data.examples.back();
  EXPECT_EQ(hhh.subset, "anthropic_hhh");
  ASSERT_EQ(hhh.chosen[0].size(), 4u);
  EXPECT_EQ(hhh.chosen[0][1].role, "assistant");
  EXPECT_EQ(hhh.chosen[0][3].content, "The lazy dog jumps.");
  EXPECT_EQ(hhh.prompt.size(), 3u);
  EXPECT_TRUE(is_rewardbench_file(fixture("v1_tiny.jsonl")));

  // The same from .jsonl.gz, and v1 asked for.
  test::TempDir dir;
  const std::string gz = dir.file("rb.jsonl.gz");
  test::write_bytes(dir.file("rb.jsonl"), test::read_bytes(fixture("v1_tiny.jsonl")));
  ASSERT_EQ(std::system(("gzip -c -n '" + dir.file("rb.jsonl") + "' > '" + gz + "'").c_str()), 0);
  const RewardBenchData zipped = read_rewardbench(gz, RewardBenchVersion::kV1);
  ASSERT_EQ(zipped.examples.size(), 11u);
  EXPECT_EQ(zipped.examples[4].chosen[0][1].content, data.examples[4].chosen[0][1].content);
  EXPECT_TRUE(is_rewardbench_file(gz));
}

TEST(RewardBenchRead, V2RecordsKeepChosenFirst) {
  const RewardBenchData data = read_rewardbench(fixture("v2_tiny.jsonl"));
  EXPECT_EQ(data.version, RewardBenchVersion::kV2);
  ASSERT_EQ(data.examples.size(), 11u);
  const RewardBenchExample& e = data.examples[0];
  EXPECT_EQ(e.id, "0");
  EXPECT_FALSE(e.id_is_number);
  EXPECT_EQ(e.chosen.size(), 1u);
  EXPECT_EQ(e.rejected.size(), 3u);
  EXPECT_EQ(e.rejected[2][1].content, "A quick answer for you. 2");
  const RewardBenchExample& tied = data.examples[8];
  EXPECT_EQ(tied.id, "tied:0");
  EXPECT_EQ(tied.chosen.size(), 3u);
  EXPECT_EQ(tied.chosen[2][0].content, "Name a colour of the rainbow 0, once more.");
  EXPECT_TRUE(is_rewardbench_file(fixture("v2_tiny.jsonl")));
}

class RewardBenchBadFiles : public ::testing::Test {
 protected:
  // The error reading `text` (as a file) gives.
  std::string error(const std::string& text, RewardBenchVersion version = RewardBenchVersion::kAuto) {
    test::write_bytes(path(), text);
    return test::error_of([&] { read_rewardbench(path(), version); });
  }
  std::string path() const { return tmp.file("rb.jsonl"); }
  test::TempDir tmp;
};

std::string v1_line(const std::string& subset = "hep-go") {
  return json{{"prompt", "Q"}, {"chosen", "a"}, {"rejected", "b"}, {"subset", subset}, {"id", 1}}.dump() + "\n";
}

json v2_record(const std::string& id = "0", const std::string& subset = "Math") {
  return {{"prompt", "Q"}, {"chosen", {"a"}}, {"rejected", {"b", "c"}}, {"subset", subset}, {"id", id},
          {"num_correct", 1}, {"num_incorrect", 2}, {"total_completions", 3}};
}

TEST_F(RewardBenchBadFiles, ErrorsNameTheFileLineAndField) {
  const std::string f = path();
  auto with = [](json record, const std::string& key, const json& value) {
    if (value.is_null()) {
      record.erase(key);
    } else {
      record[key] = value;
    }
    return record.dump() + "\n";
  };
  const json v1 = json::parse(v1_line());
  const std::string ok1 = v1_line(), ok2 = v2_record().dump() + "\n";

  EXPECT_TRUE(test::contains(error(""), f + ": no records"));
  EXPECT_TRUE(test::contains(error("\n  \n"), f + ": no records"));
  EXPECT_TRUE(test::contains(test::error_of([&] { read_rewardbench(tmp.file("none.jsonl")); }), tmp.file("none.jsonl")));
  EXPECT_TRUE(test::contains(error(ok1 + "{\"prompt\": \n"), f + ":2: malformed JSON"));
  EXPECT_TRUE(test::contains(error(ok1 + "[1, 2]\n"), f + ":2: expected a JSON object"));
  EXPECT_TRUE(test::contains(error(ok1 + with(v1, "subset", nullptr)), f + ":2: missing field 'subset'"));
  EXPECT_TRUE(test::contains(error(with(v1, "subset", 3)), f + ":1: field 'subset': expected a string"));
  EXPECT_TRUE(test::contains(error(with(v1, "subset", "")), f + ":1: field 'subset': empty"));
  EXPECT_TRUE(test::contains(error(with(v1, "prompt", nullptr)), f + ":1: missing field 'prompt'"));
  EXPECT_TRUE(test::contains(error(with(v1, "id", 1.5)), f + ":1: field 'id': expected a string or an integer"));
  EXPECT_TRUE(test::contains(error(with(v1, "chosen", 7)),
                             f + ":1: field 'chosen': expected a string (RewardBench v1) or a list of strings (v2)"));
  EXPECT_TRUE(test::contains(error(ok1 + with(v1, "chosen", json::array({"a"}))),
                             f + ":2: field 'chosen': expected a string (the file is RewardBench v1, as its first "
                                 "record, line 1, says)"));
  EXPECT_TRUE(test::contains(error(ok1 + with(v1, "rejected", nullptr)), f + ":2: missing field 'rejected'"));
  EXPECT_TRUE(test::contains(error(ok2, RewardBenchVersion::kV1),
                             f + ":1: field 'chosen': expected a string (the version asked for is v1)"));

  // List prompts: roles by position, ending with the user's.
  const json turns = json::array({{{"role", "user"}, {"content", "q"}}, {{"role", "user"}, {"content", "q2"}}});
  EXPECT_TRUE(test::contains(error(with(v1, "prompt", turns)), f + ":1: field 'prompt[1].role': expected 'assistant'"));
  const json two = json::array({{{"role", "user"}, {"content", "q"}}, {{"role", "assistant"}, {"content", "a"}}});
  EXPECT_TRUE(test::contains(error(with(v1, "prompt", two)), f + ":1: field 'prompt': ends with an assistant message"));
  EXPECT_TRUE(test::contains(error(with(v1, "prompt", json::array())), f + ":1: field 'prompt': an empty list"));
  EXPECT_TRUE(test::contains(error(with(v1, "prompt", json::array({{{"role", "user"}}}))),
                             f + ":1: field 'prompt[0]': missing 'content'"));

  // v2 lists and counts.
  const json v2 = v2_record();
  EXPECT_TRUE(test::contains(error(ok2 + with(v2, "chosen", "a")),
                             f + ":2: field 'chosen': expected a list of strings (the file is RewardBench v2"));
  EXPECT_TRUE(test::contains(error(with(v2, "rejected", json::array({"b", 3}))),
                             f + ":1: field 'rejected[1]': expected a string, got 3"));
  EXPECT_TRUE(test::contains(error(with(v2, "chosen", json::array())), f + ":1: field 'chosen': an empty list"));
  EXPECT_TRUE(test::contains(error(with(v2, "num_correct", 2)),
                             f + ":1: field 'num_correct': 2 but there are 1 chosen completions"));
  EXPECT_TRUE(test::contains(error(with(v2, "num_incorrect", -1)),
                             f + ":1: field 'num_incorrect': expected a non-negative integer"));
  EXPECT_TRUE(test::contains(error(with(v2, "total_completions", 4)), f + ":1: field 'total_completions': 4 but"));
  json bare = v2;
  for (const char* key : {"num_correct", "num_incorrect", "total_completions"}) bare.erase(key);
  test::write_bytes(path(), bare.dump() + "\n" + ok2);
  EXPECT_EQ(read_rewardbench(path()).examples.size(), 2u);  // the counts are optional
  // Ties ids.
  EXPECT_TRUE(test::contains(error(ok2 + v2_record("ref-3", "Ties").dump() + "\n"),
                             f + ":2: field 'id': expected \"ref:N\" or \"tied:N\""));
  EXPECT_TRUE(test::contains(error(v2_record("tied:x", "ties").dump() + "\n"), f + ":1: field 'id': expected"));
  EXPECT_TRUE(test::contains(error(with(v2_record("", "Ties"), "id", nullptr)), f + ":1: missing field 'id'"));
  EXPECT_TRUE(test::contains(error(v2_record("tied:1", "Ties").dump() + "\n" + v2_record("ref:1", "Ties").dump() +
                                   "\n" + v2_record("tied:01", "Ties").dump() + "\n"),
                             f + ":3: field 'id': \"tied:01\" again (first on line 1)"));
  // Outside Ties an id is any string or integer, or none.
  test::write_bytes(path(), with(v2, "id", 7) + with(v2, "id", nullptr) + with(v2, "id", "ref-3"));
  const RewardBenchData ids = read_rewardbench(path(), RewardBenchVersion::kV2);
  ASSERT_EQ(ids.examples.size(), 3u);
  EXPECT_TRUE(ids.examples[0].id_is_number);
  EXPECT_EQ(ids.examples[1].id, "");
}

TEST_F(RewardBenchBadFiles, DetectionIsCheapAndNeverThrows) {
  test::write_bytes(path(), v1_line());
  EXPECT_TRUE(is_rewardbench_file(path()));
  test::write_bytes(path(), "\n" + v2_record().dump() + "\n");
  EXPECT_TRUE(is_rewardbench_file(path()));
  test::write_bytes(path(), json{{"prompt", "Q"}, {"chosen", "a"}, {"rejected", "b"}}.dump() + "\n");
  EXPECT_FALSE(is_rewardbench_file(path()));  // a plain pair: no subset
  test::write_bytes(path(), json{{"chosen", "a"}, {"rejected", {"b"}}, {"subset", "x"}}.dump() + "\n");
  EXPECT_FALSE(is_rewardbench_file(path()));
  test::write_bytes(path(), json{{"chosen", {1}}, {"rejected", {"b"}}, {"subset", "x"}}.dump() + "\n");
  EXPECT_FALSE(is_rewardbench_file(path()));
  test::write_bytes(path(), "{not json\n");
  EXPECT_FALSE(is_rewardbench_file(path()));
  test::write_bytes(path(), "");
  EXPECT_FALSE(is_rewardbench_file(path()));
  EXPECT_FALSE(is_rewardbench_file(tmp.file("missing.jsonl")));
  EXPECT_FALSE(is_rewardbench_file(tmp.path()));
  EXPECT_FALSE(is_rewardbench_file("-"));
}

// ---- evaluate_rewardbench on a tiny model --------------------------------------------

class RewardBenchEvaluate : public ::testing::Test {
 protected:
  void SetUp() override { test::make_tiny_model_folder(dir(), /*with_tokenizer=*/true); }
  std::string dir() const { return tmp.file("rm"); }
  test::TempDir tmp;
};

// Each completion scored alone by a Scorer, then score_rewardbench.
RewardBenchScores scored_alone(Scorer& scorer, const RewardBenchData& data) {
  std::vector<std::vector<float>> chosen, rejected;
  for (const auto& e : data.examples) {
    chosen.emplace_back();
    rejected.emplace_back();
    for (const auto& c : e.chosen) chosen.back().push_back(scorer.score_conversations({c}).rewards[0]);
    for (const auto& r : e.rejected) rejected.back().push_back(scorer.score_conversations({r}).rewards[0]);
  }
  return score_rewardbench(data, chosen, rejected);
}

TEST_F(RewardBenchEvaluate, EqualsScoringEachCompletionAlone) {
  ScoreOptions options;
  options.threads = 1;
  options.max_tokens = 256;  // several batches
  Scorer scorer = Scorer::from_folder(dir(), options);
  for (const char* name : {"v1_tiny.jsonl", "v2_tiny.jsonl"}) {
    SCOPED_TRACE(name);
    const RewardBenchData data = read_rewardbench(fixture(name));
    const RewardBenchScores got = evaluate_rewardbench(scorer, data);
    const RewardBenchScores want = scored_alone(scorer, data);
    EXPECT_EQ(got.data_path, fixture(name));
    EXPECT_EQ(got.chat_format, "plain");
    EXPECT_EQ(got.dropped_completions, 0);
    EXPECT_EQ(got.nan_completions, 0);
    ASSERT_EQ(got.chosen_rewards.size(), data.examples.size());
    double worst = 0.0;
    for (std::size_t i = 0; i < data.examples.size(); ++i) {
      for (std::size_t k = 0; k < data.examples[i].chosen.size(); ++k) {
        const float alone = scorer.score_conversations({data.examples[i].chosen[k]}).rewards[0];
        worst = std::max(worst, std::fabs(double(got.chosen_rewards[i][k]) - alone));
      }
    }
    EXPECT_LT(worst, 1e-5) << "batched vs alone";
    ASSERT_EQ(got.subsets.size(), want.subsets.size());
    for (std::size_t k = 0; k < got.subsets.size(); ++k) {
      EXPECT_EQ(got.subsets[k].name, want.subsets[k].name);
      EXPECT_NEAR(got.subsets[k].score, want.subsets[k].score, 1e-6) << got.subsets[k].name;
    }
    EXPECT_NEAR(got.overall, want.overall, 1e-6);
    EXPECT_GT(got.stats.batches, 0);
    const auto j = rewardbench_json(got);
    EXPECT_EQ(j["data"], fixture(name));
    EXPECT_EQ(j["completions"], got.completions);
    EXPECT_TRUE(test::contains(format_rewardbench(got), "chat format"));
  }
  const RewardBenchScores v2 = evaluate_rewardbench(scorer, read_rewardbench(fixture("v2_tiny.jsonl")));
  ASSERT_TRUE(v2.ties.has_value());
  EXPECT_EQ(v2.ties->paired_prompts, 2);
}

TEST_F(RewardBenchEvaluate, DroppedCompletionsCountAsWrong) {
  const RewardBenchData data = read_rewardbench(fixture("v2_tiny.jsonl"));
  ScoreOptions options;
  options.threads = 1;
  options.truncation = TruncationPolicy::kDrop;
  // A length that drops some completions but not all.
  std::int64_t length = 0;
  for (length = 4; length < 128; ++length) {
    options.max_length = length;
    Scorer probe = Scorer::from_folder(dir(), options);
    const RewardBenchScores s = evaluate_rewardbench(probe, data);
    if (s.dropped_completions > 0 && s.dropped_completions < s.completions / 2) break;
  }
  ASSERT_LT(length, 128);
  Scorer scorer = Scorer::from_folder(dir(), options);
  const RewardBenchScores s = evaluate_rewardbench(scorer, data);
  EXPECT_EQ(s.nan_completions, s.dropped_completions);
  EXPECT_EQ(s.max_length, length);
  EXPECT_EQ(s.truncation, TruncationPolicy::kDrop);
  std::string notes;
  for (const auto& n : s.notes) notes += n + "\n";
  EXPECT_TRUE(test::contains(notes, "of them dropped by truncation, max_length " + std::to_string(length))) << notes;
  // Exactly what NaN scores in their places give.
  const RewardBenchScores with_nan = score_rewardbench(data, s.chosen_rewards, s.rejected_rewards);
  EXPECT_DOUBLE_EQ(with_nan.overall, s.overall);
  for (std::size_t i = 0; i < data.examples.size(); ++i) {
    const bool any_nan = std::any_of(s.rejected_rewards[i].begin(), s.rejected_rewards[i].end(),
                                     [](float x) { return std::isnan(x); }) ||
                         std::any_of(s.chosen_rewards[i].begin(), s.chosen_rewards[i].end(),
                                     [](float x) { return std::isnan(x); });
    if (any_nan && !std::isnan(s.credit[i])) EXPECT_EQ(s.credit[i], 0.0) << i;
  }
  EXPECT_EQ(rewardbench_json(s)["dropped_completions"], s.dropped_completions);
}

TEST_F(RewardBenchEvaluate, ATokenizingErrorNamesTheRecord) {
  ScoreOptions options;
  options.threads = 1;
  Scorer scorer = Scorer::from_folder(dir(), options);
  RewardBenchData data = read_rewardbench(fixture("v1_tiny.jsonl"));
  data.examples[2].rejected[0][0].role = "narrator";  // no format renders it
  const std::string err = test::error_of([&] { evaluate_rewardbench(scorer, data); });
  EXPECT_TRUE(test::contains(err, fixture("v1_tiny.jsonl") + ":3: rejected[0]: ")) << err;
}

}  // namespace
}  // namespace openrm
