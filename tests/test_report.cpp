// The HTML report: compute_report_data against closed forms on hand-made
// pairs, metrics.jsonl reading, the JSON, a page that is self-contained,
// escaped and well formed on every degenerate input, and Chromium rendering
// it headless (skipped when /usr/bin/chromium is absent).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <openrm/data/jsonl.h>
#include <openrm/eval/metrics.h>
#include <openrm/eval/report.h>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "test_io_util.h"
#include "test_util.h"

namespace openrm {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

ReportPair pair(double chosen, double rejected, std::int64_t chosen_length = -1, std::int64_t rejected_length = -1,
                const std::string& group = "") {
  ReportPair p;
  p.chosen = chosen;
  p.rejected = rejected;
  p.chosen_length = chosen_length;
  p.rejected_length = rejected_length;
  p.group = group;
  return p;
}

// Inputs for `pairs` with their metrics, as a caller would make them.
ReportInputs inputs_for(std::vector<ReportPair> pairs) {
  ReportInputs in;
  std::vector<ScoredPair> scored;
  for (const ReportPair& p : pairs) {
    ScoredPair s;
    s.chosen = p.chosen;
    s.rejected = p.rejected;
    s.chosen_length = p.chosen_length;
    s.rejected_length = p.rejected_length;
    scored.push_back(s);
  }
  in.metrics = compute_preference_metrics(scored);
  in.pairs = std::move(pairs);
  return in;
}

std::int64_t sum(const std::vector<std::int64_t>& v) {
  std::int64_t s = 0;
  for (const auto x : v) s += x;
  return s;
}

// A realistic report: three groups, lengths that correlate with the reward,
// texts with markup, training curves, the data's counts and an extra table.
ReportInputs full_inputs(int n = 600) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  const char* groups[] = {"chat", "code & math", "safety <refusals>"};
  std::vector<ReportPair> pairs;
  for (int i = 0; i < n; ++i) {
    const std::int64_t lc = 20 + (i * 37) % 400, lr = 20 + (i * 53) % 400;
    ReportPair p = pair(0.8 + normal(rng) + 0.002 * lc, normal(rng) + 0.002 * lr, lc, lr, groups[i % 3]);
    p.id = "pair-" + std::to_string(i);
    p.line = i + 1;
    p.prompt_text = "Question " + std::to_string(i) + ": what does <b>bold</b> & \"quoted\" mean?";
    p.chosen_text = "It is <script>alert('chosen " + std::to_string(i) + "')</script> markup.";
    p.rejected_text = "No idea.\nSecond line with 'single quotes'.";
    pairs.push_back(std::move(p));
  }
  ReportInputs in = inputs_for(std::move(pairs));
  in.title = "Evaluation of tiny-rm";
  in.model = "runs/tiny-rm";
  in.data = "data/test.jsonl";
  in.date = "2024-05-01 12:00 UTC";
  TrainingCurves c;
  for (int s = 1; s <= 1500; ++s) {
    c.step.push_back(s);
    c.loss.push_back(0.69 * std::exp(-s / 600.0) + 0.1 + 0.05 * normal(rng));
    c.accuracy.push_back(std::clamp(0.5 + 0.3 * (1 - std::exp(-s / 400.0)) + 0.05 * normal(rng), 0.0, 1.0));
    c.lr.push_back(s < 100 ? 1e-5 * s / 100 : 1e-5 * (1500 - s) / 1400.0);
    c.grad_norm.push_back(s == 700 ? kNaN : 2.0 + normal(rng) * 0.3);  // a skipped step
    if (s % 250 == 0) {
      c.eval_step.push_back(s);
      c.eval_loss.push_back(0.69 * std::exp(-s / 700.0) + 0.15);
      c.eval_accuracy.push_back(0.5 + 0.25 * (1 - std::exp(-s / 500.0)));
    }
  }
  in.curves = c;
  ReadStats read;
  read.lines = n + 3;
  read.records = n;
  read.skipped_invalid = 2;
  read.pairs = n;
  read.first_errors = {"data/test.jsonl:4: missing \"chosen\" <field>"};
  in.read = read;
  TruncationStats t;
  t.input = n + 1;
  t.kept = n;
  t.truncated = 12;
  t.dropped = 1;
  t.responses_cut = 14;
  t.longest_before = 5000;
  in.truncation = t;
  in.tables.push_back(ReportTable{"RewardBench", {"subset", "accuracy"}, {{"chat", "0.91"}, {"chat-hard <x>", "0.55"}}, "subset & section scores"});
  return in;
}

// ---- histograms --------------------------------------------------------------

TEST(ReportData, HistogramsOnKnownBins) {
  // chosen i and rejected 9 - i: the range is [0, 9], 10 bins of width 0.9,
  // and value i falls in bin i (9 in the last, closed bin).
  std::vector<ReportPair> pairs;
  for (int i = 0; i < 10; ++i) pairs.push_back(pair(i, 9 - i));
  ReportInputs in = inputs_for(pairs);
  in.histogram_bins = 10;
  const ReportData d = compute_report_data(in);
  ASSERT_EQ(d.reward_chosen.edges.size(), 11u);
  EXPECT_EQ(d.reward_chosen.edges, d.reward_rejected.edges);  // common edges
  EXPECT_DOUBLE_EQ(d.reward_chosen.edges.front(), 0.0);
  EXPECT_DOUBLE_EQ(d.reward_chosen.edges[5], 4.5);
  EXPECT_DOUBLE_EQ(d.reward_chosen.edges.back(), 9.0);
  EXPECT_EQ(d.reward_chosen.counts, std::vector<std::int64_t>(10, 1));
  EXPECT_EQ(d.reward_rejected.counts, std::vector<std::int64_t>(10, 1));
  // Margins 2i - 9 = -9, -7, ..., 9 over [-9, 9]: width 1.8, one per bin.
  EXPECT_DOUBLE_EQ(d.margin.edges.front(), -9.0);
  EXPECT_DOUBLE_EQ(d.margin.edges.back(), 9.0);
  EXPECT_EQ(d.margin.counts, std::vector<std::int64_t>(10, 1));
  EXPECT_EQ(d.margin.left_out, 0);

  // Values on inner edges go to the bin above; the maximum to the last bin.
  ReportInputs edges = inputs_for({pair(0, 4), pair(1, 4), pair(2, 4), pair(3, 4)});
  edges.histogram_bins = 4;
  const ReportData e = compute_report_data(edges);
  EXPECT_EQ(e.reward_chosen.edges, (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(e.reward_chosen.counts, (std::vector<std::int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(e.reward_rejected.counts, (std::vector<std::int64_t>{0, 0, 0, 4}));
}

TEST(ReportData, HistogramCountsSumToTheFiniteValues) {
  std::mt19937 rng(3);
  std::normal_distribution<double> normal(0.0, 2.0);
  std::vector<ReportPair> pairs;
  for (int i = 0; i < 1000; ++i) pairs.push_back(pair(normal(rng), normal(rng)));
  pairs[10].chosen = kNaN;
  pairs[20].rejected = kInf;
  pairs[30].chosen = -kInf;
  ReportInputs in = inputs_for(pairs);
  in.histogram_bins = 17;
  const ReportData d = compute_report_data(in);
  EXPECT_EQ(d.pairs, 1000);
  ASSERT_EQ(d.reward_chosen.counts.size(), 17u);
  EXPECT_EQ(d.reward_chosen.left_out, 2);
  EXPECT_EQ(d.reward_rejected.left_out, 1);
  EXPECT_EQ(sum(d.reward_chosen.counts), 998);
  EXPECT_EQ(sum(d.reward_rejected.counts), 999);
  EXPECT_EQ(d.margin.left_out, 3);  // NaN, -inf and inf margins
  EXPECT_EQ(sum(d.margin.counts), 997);
  // Each count is the number of values in [edge_b, edge_b+1) (last closed).
  for (std::size_t b = 0; b < 17; ++b) {
    std::int64_t n = 0;
    for (const ReportPair& p : pairs) {
      const double v = p.chosen;
      if (!std::isfinite(v)) continue;
      const double lo = d.reward_chosen.edges[b], hi = d.reward_chosen.edges[b + 1];
      if (v >= lo && (v < hi || (b == 16 && v <= hi))) ++n;
    }
    EXPECT_EQ(d.reward_chosen.counts[b], n) << "bin " << b;
  }
}

TEST(ReportData, EqualRewardsGetAUnitRange) {
  std::vector<ReportPair> pairs(7, pair(5.0, 5.0));
  const ReportData d = compute_report_data(inputs_for(pairs));
  // [5 - 0.5, 5 + 0.5] in 30 bins: 5 is at t = 15, bin 15; margins 0 likewise.
  EXPECT_DOUBLE_EQ(d.reward_chosen.edges.front(), 4.5);
  EXPECT_DOUBLE_EQ(d.reward_chosen.edges.back(), 5.5);
  EXPECT_EQ(d.reward_chosen.counts[15], 7);
  EXPECT_EQ(sum(d.reward_rejected.counts), 7);
  EXPECT_DOUBLE_EQ(d.margin.edges.front(), -0.5);
  EXPECT_EQ(d.margin.counts[15], 7);
  // Large equal rewards: a range wide enough to differ from the value.
  const ReportData big = compute_report_data(inputs_for({pair(1e300, 1e300)}));
  EXPECT_LT(big.reward_chosen.edges.front(), 1e300);
  EXPECT_GT(big.reward_chosen.edges.back(), 1e300);
  EXPECT_EQ(sum(big.reward_chosen.counts), 1);
  // Rewards near the double range: no overflow in the bin arithmetic.
  const ReportData wide = compute_report_data(inputs_for({pair(1.7e308, -1.7e308), pair(0, 0)}));
  EXPECT_EQ(sum(wide.reward_chosen.counts) + sum(wide.reward_rejected.counts), 4);
  EXPECT_EQ(wide.margin.left_out, 1);  // 1.7e308 - -1.7e308 overflows
}

// ---- length, groups, worst pairs --------------------------------------------

TEST(ReportData, SubsampleKeepsThePearsonOfAllPoints) {
  std::vector<ReportPair> pairs;
  for (int i = 0; i < 10000; ++i) {
    const std::int64_t lc = 10 + (i * 7919) % 1000, lr = 10 + (i * 104729) % 1000;
    pairs.push_back(pair(0.001 * lc + std::sin(i), 0.001 * lr + std::cos(i), lc, lr));
  }
  const ReportInputs in = inputs_for(pairs);  // max_scatter_points 2000
  const ReportData d = compute_report_data(in);
  ASSERT_TRUE(d.length.available);
  EXPECT_EQ(d.length.sequences, 20000);
  // Bit for bit the metrics' number, computed on all 20000 sequences.
  ASSERT_TRUE(in.metrics.has_length_bias);
  EXPECT_DOUBLE_EQ(d.length.pearson, in.metrics.length_bias.pearson);
  // 1000 evenly spaced pairs, both sides: pair j * 10.
  ASSERT_EQ(d.length.chosen.length.size(), 1000u);
  ASSERT_EQ(d.length.rejected.length.size(), 1000u);
  for (std::size_t j : {0u, 1u, 500u, 999u}) {
    EXPECT_EQ(d.length.chosen.length[j], static_cast<double>(pairs[j * 10].chosen_length));
    EXPECT_EQ(d.length.rejected.reward[j], pairs[j * 10].rejected);
  }
  // The drawn points alone give another correlation: the report does not use it.
  std::vector<double> r, l;
  for (std::size_t j = 0; j < 1000; ++j) {
    r.push_back(d.length.chosen.reward[j]);
    l.push_back(d.length.chosen.length[j]);
    r.push_back(d.length.rejected.reward[j]);
    l.push_back(d.length.rejected.length[j]);
  }
  EXPECT_NE(pearson_correlation(r, l), d.length.pearson);

  // Small inputs are drawn whole; pairs without lengths are left out and counted.
  std::vector<ReportPair> few = {pair(1, 0, 10, 20), pair(2, 1, 30, 5), pair(0, 1)};
  const ReportData f = compute_report_data(inputs_for(few));
  EXPECT_EQ(f.length.pairs_without_length, 1);
  EXPECT_EQ(f.length.sequences, 4);
  EXPECT_EQ(f.length.chosen.length, (std::vector<double>{10, 30}));
  EXPECT_DOUBLE_EQ(f.length.pearson, pearson_correlation({1, 0, 2, 1}, {10, 20, 30, 5}));
  // No lengths at all.
  const ReportData none = compute_report_data(inputs_for({pair(1, 0), pair(0, 1)}));
  EXPECT_FALSE(none.length.available);
  EXPECT_TRUE(std::isnan(none.length.pearson));
}

TEST(ReportData, AccuracyPerGroupCountsTiesAndNaNWrong) {
  std::vector<ReportPair> pairs = {
      pair(1, 0, -1, -1, "a"), pair(0, 1, -1, -1, "b"), pair(2, 2, -1, -1, "a"),   // a: right, tie
      pair(3, 1, -1, -1, "b"), pair(kNaN, 0, -1, -1, "a"), pair(1, 0, -1, -1, ""),  // a: NaN
      pair(5, 4, -1, -1, "a")};
  const ReportData d = compute_report_data(inputs_for(pairs));
  ASSERT_EQ(d.groups.size(), 3u);  // first-appearance order
  EXPECT_EQ(d.groups[0].name, "a");
  EXPECT_EQ(d.groups[0].pairs, 4);
  EXPECT_EQ(d.groups[0].correct, 2);
  EXPECT_EQ(d.groups[0].ties, 1);
  EXPECT_DOUBLE_EQ(d.groups[0].accuracy, 0.5);
  EXPECT_EQ(d.groups[1].name, "b");
  EXPECT_DOUBLE_EQ(d.groups[1].accuracy, 0.5);
  EXPECT_EQ(d.groups[2].name, "");
  EXPECT_DOUBLE_EQ(d.groups[2].accuracy, 1.0);
  // The groups' correct counts add up to the overall accuracy.
  std::int64_t correct = 0;
  for (const auto& g : d.groups) correct += g.correct;
  EXPECT_DOUBLE_EQ(static_cast<double>(correct) / 7, inputs_for(pairs).metrics.accuracy);
  // No group anywhere: no group section.
  EXPECT_TRUE(compute_report_data(inputs_for({pair(1, 0), pair(0, 1)})).groups.empty());
}

TEST(ReportData, WorstPairsMostConfidentlyWrongFirstTiesInInputOrder) {
  // rejected - chosen: 0: -1, 1: 3, 2: 0 (tie), 3: 3, 4: NaN, 5: 5, 6: -2, 7: inf.
  std::vector<ReportPair> pairs = {pair(1, 0), pair(0, 3), pair(2, 2), pair(1, 4),
                                   pair(kNaN, 1), pair(-5, 0), pair(2, 0), pair(0, kInf)};
  for (std::size_t i = 0; i < pairs.size(); ++i) pairs[i].id = "id" + std::to_string(i);
  ReportInputs in = inputs_for(pairs);
  in.worst_pairs = 5;
  const ReportData d = compute_report_data(in);
  ASSERT_EQ(d.worst_pairs.size(), 5u);
  const std::vector<std::int64_t> order = {7, 5, 1, 3, 2};
  for (std::size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(d.worst_pairs[r].index, order[r]) << "rank " << r + 1;
    EXPECT_EQ(d.worst_pairs[r].rank, static_cast<std::int64_t>(r + 1));
    EXPECT_EQ(d.worst_pairs[r].id, "id" + std::to_string(order[r]));
  }
  EXPECT_DOUBLE_EQ(d.worst_pairs[1].difference, 5.0);
  EXPECT_EQ(d.unranked_pairs, 1);  // the NaN one
  // More requested than there are: every rankable pair, the right ones last.
  in.worst_pairs = 100;
  const ReportData all = compute_report_data(in);
  ASSERT_EQ(all.worst_pairs.size(), 7u);
  EXPECT_EQ(all.worst_pairs.back().index, 6);  // -2: the most right
  in.worst_pairs = 0;
  EXPECT_TRUE(compute_report_data(in).worst_pairs.empty());
}

TEST(ReportData, LongTextsAreCutOnCodePoints) {
  ReportPair p = pair(0, 1);
  // 3000 two-byte "é" and 3000 "a": 6000 code points, 9000 bytes.
  for (int i = 0; i < 3000; ++i) p.chosen_text += "\xC3\xA9";
  p.chosen_text += std::string(3000, 'a');
  p.rejected_text = "short";
  p.prompt_text = "bad \xFF byte";
  ReportInputs in = inputs_for({p});
  const ReportData d = compute_report_data(in);  // max_text_chars 4000
  ASSERT_EQ(d.worst_pairs.size(), 1u);
  const ReportText& t = d.worst_pairs[0].chosen_text;
  EXPECT_TRUE(t.cut);
  EXPECT_EQ(t.total_chars, 6000);
  EXPECT_EQ(t.text.size(), 3000u * 2 + 1000);  // 3000 "é" and 1000 "a"
  EXPECT_EQ(find_invalid_utf8(t.text), std::string_view::npos);
  EXPECT_FALSE(d.worst_pairs[0].rejected_text.cut);
  EXPECT_EQ(d.worst_pairs[0].rejected_text.text, "short");
  EXPECT_EQ(d.worst_pairs[0].prompt.text, "bad \xEF\xBF\xBD byte");  // U+FFFD for the bad byte

  const std::string html = render_html_report(in, d);
  EXPECT_TRUE(test::contains(html, "[text cut: the first 4000 of 6000 characters shown]"));
}

TEST(ReportData, CurvesAreAveragedInBucketsOfSteps) {
  ReportInputs in = inputs_for({pair(1, 0)});
  TrainingCurves c;
  for (int s = 1; s <= 2500; ++s) {
    c.step.push_back(s);
    c.loss.push_back(s);
    c.accuracy.push_back(s == 2 ? kNaN : 1.0);  // NaN left out of its bucket's mean
    c.lr.push_back(0.1);
    c.grad_norm.push_back(kNaN);
  }
  c.eval_step = {1000, 2500};
  c.eval_loss = {0.5, 0.4};
  c.eval_accuracy = {0.7, kNaN};
  in.curves = c;
  const ReportData d = compute_report_data(in);  // max_curve_points 1000
  ASSERT_TRUE(d.curves.has_value());
  EXPECT_EQ(d.curves->step_lines, 2500);
  EXPECT_EQ(d.curves->steps_per_point, 3);  // ceil(2500 / 1000)
  const TrainingCurves& shown = d.curves->shown;
  ASSERT_EQ(shown.step.size(), 834u);  // ceil(2500 / 3)
  EXPECT_EQ(shown.step[0], 3);
  EXPECT_DOUBLE_EQ(shown.loss[0], 2.0);  // mean of 1, 2, 3
  EXPECT_DOUBLE_EQ(shown.accuracy[0], 1.0);
  EXPECT_EQ(shown.step.back(), 2500);     // the last bucket is the lone step 2500
  EXPECT_DOUBLE_EQ(shown.loss.back(), 2500.0);
  EXPECT_TRUE(std::isnan(shown.grad_norm[5]));
  EXPECT_EQ(shown.eval_step, c.eval_step);  // evaluations: all of them
  // A short run is drawn as it is.
  in.max_curve_points = 5000;
  EXPECT_EQ(compute_report_data(in).curves->shown.loss, c.loss);
}

TEST(ReportData, BadOptionsAndMismatchedMetricsAreErrors) {
  ReportInputs in = inputs_for({pair(1, 0), pair(0, 1)});
  in.histogram_bins = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { compute_report_data(in); }),
                             "report: histogram_bins must be in [1, 1000], got 0"));
  in.histogram_bins = 30;
  in.worst_pairs = -1;
  EXPECT_TRUE(test::contains(test::error_of([&] { compute_report_data(in); }), "report: worst_pairs"));
  in.worst_pairs = 10;
  in.max_curve_points = 1;
  EXPECT_TRUE(test::contains(test::error_of([&] { compute_report_data(in); }), "report: max_curve_points"));
  in.max_curve_points = 1000;
  in.pairs.push_back(pair(3, 2));
  EXPECT_TRUE(test::contains(test::error_of([&] { compute_report_data(in); }),
                             "report: the metrics are of 2 pairs but 3 pairs were given"));
  // Metrics without per-pair rewards are a report of the metrics alone.
  in.pairs.clear();
  const ReportData d = compute_report_data(in);
  EXPECT_EQ(d.pairs, 0);
  EXPECT_TRUE(d.reward_chosen.edges.empty());
  EXPECT_EQ(d.calibration.size(), 10u);
}

// ---- metrics.jsonl -----------------------------------------------------------

TEST(ReportCurves, ReadsTheTrainersLines) {
  test::TempDir tmp;
  const std::string path = tmp.file("metrics.jsonl");
  // As src/train/trainer.cpp writes them: a skipped step has null loss,
  // accuracy and grad_norm; evaluations are {"step", "eval": {...}}.
  test::write_bytes(path,
                    "{\"step\":1,\"epoch\":0.1,\"loss\":0.7,\"accuracy\":0.5,\"lr\":1e-05,\"grad_norm\":3.5,"
                    "\"pairs\":8,\"tokens_per_s\":100.0,\"skipped\":false,\"peak_memory_bytes\":0}\n"
                    "{\"step\":2,\"epoch\":0.2,\"loss\":null,\"accuracy\":null,\"lr\":2e-05,\"grad_norm\":null,"
                    "\"pairs\":8,\"tokens_per_s\":100.0,\"skipped\":true,\"peak_memory_bytes\":0}\n"
                    "\n"
                    "{\"step\":2,\"eval\":{\"pairs\":4,\"accuracy\":0.75,\"mean_margin\":0.1,\"reward_mean\":0,"
                    "\"reward_std\":1,\"loss\":0.6,\"ece\":null}}\n"
                    "{\"step\":3,\"loss\":0.5,\"accuracy\":1,\"lr\":3e-05}\n");
  const TrainingCurves c = read_training_curves(path);
  EXPECT_EQ(c.step, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(c.loss[0], 0.7);
  EXPECT_TRUE(std::isnan(c.loss[1]));
  EXPECT_TRUE(std::isnan(c.accuracy[1]));
  EXPECT_DOUBLE_EQ(c.lr[1], 2e-05);
  EXPECT_TRUE(std::isnan(c.grad_norm[1]));
  EXPECT_TRUE(std::isnan(c.grad_norm[2]));  // absent
  EXPECT_DOUBLE_EQ(c.accuracy[2], 1.0);
  EXPECT_EQ(c.eval_step, (std::vector<std::int64_t>{2}));
  EXPECT_DOUBLE_EQ(c.eval_loss[0], 0.6);
  EXPECT_DOUBLE_EQ(c.eval_accuracy[0], 0.75);
}

TEST(ReportCurves, MalformedLinesNameFileAndLine) {
  test::TempDir tmp;
  const std::string path = tmp.file("metrics.jsonl");
  const std::string good = "{\"step\":1,\"loss\":0.7}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"step\":2,\"loss\":", ":2: malformed JSON"},
      {"[1, 2]", ":2: expected a JSON object, got array"},
      {"{\"loss\":0.5}", ":2: expected an integer \"step\""},
      {"{\"step\":1.5}", ":2: expected an integer \"step\""},
      {"{\"step\":2,\"loss\":\"low\"}", ":2: \"loss\" must be a number or null, got string"},
      {"{\"step\":2,\"eval\":3}", ":2: \"eval\" must be an object, got number"},
      {"{\"step\":2,\"eval\":{\"accuracy\":true}}", ":2: eval: \"accuracy\" must be a number or null, got boolean"},
      {"{\"step\":2,\"loss\":0.1,\"loss\":0.2}", ":2: duplicate key 'loss'"},
      {"{\"step\":2,\"note\":\"\xFF\"}", ":2: invalid UTF-8"},
  };
  for (const auto& [line, message] : cases) {
    test::write_bytes(path, good + line + "\n");
    EXPECT_TRUE(test::contains(test::error_of([&] { read_training_curves(path); }), path + message)) << line;
  }
  // A missing file is an error unless the caller says the curves are optional.
  const std::string missing = tmp.file("no-such.jsonl");
  EXPECT_TRUE(test::contains(test::error_of([&] { read_training_curves(missing); }), missing + ": cannot open"));
  EXPECT_TRUE(read_training_curves(missing, /*missing_ok=*/true).empty());
  EXPECT_TRUE(test::contains(test::error_of([&] { read_training_curves(tmp.path()); }), "is a folder"));
  // An empty file: no curves, no error.
  test::write_bytes(path, "");
  EXPECT_TRUE(read_training_curves(path).empty());
}

// ---- JSON ----------------------------------------------------------------------

TEST(ReportJson, SchemaAndNullForNaN) {
  std::vector<ReportPair> pairs = {pair(1, 0, 10, 12, "g\xFF"), pair(kNaN, 1, 5, 6, "h"), pair(2, 3, 7, 7, "g\xFF")};
  ReportInputs in = inputs_for(pairs);
  in.histogram_bins = 4;
  in.curves = TrainingCurves{{1, 2}, {0.7, kNaN}, {0.5, 0.5}, {1e-5, 1e-5}, {1, 2}, {2}, {0.6}, {kNaN}};
  TruncationStats t;
  t.input = 3;
  t.kept = 3;
  in.truncation = t;
  const ReportData d = compute_report_data(in);
  const nlohmann::ordered_json j = report_data_json(d);
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"pairs", "reward_histogram", "margin_histogram", "calibration",
                                            "reward_vs_length", "groups", "training", "worst_pairs",
                                            "unranked_pairs", "truncation", "read"}));
  EXPECT_EQ(j["pairs"], 3);
  EXPECT_EQ(j["reward_histogram"]["edges"].size(), 5u);
  EXPECT_EQ(j["reward_histogram"]["chosen_left_out"], 1);
  EXPECT_EQ(j["margin_histogram"]["left_out"], 1);
  EXPECT_EQ(j["calibration"]["bins"].size(), 10u);
  EXPECT_TRUE(j["calibration"]["bins"][5]["mean_predicted"].is_null());  // an empty bin
  EXPECT_EQ(j["reward_vs_length"]["sequences"], 5);  // the NaN reward left out
  EXPECT_EQ(j["groups"][0]["group"], "g\xEF\xBF\xBD");  // valid UTF-8 for JSON writers
  EXPECT_EQ(j["groups"][0]["pairs"], 2);
  EXPECT_TRUE(j["training"]["loss"][1].is_null());
  EXPECT_TRUE(j["training"]["eval"]["accuracy"][0].is_null());
  EXPECT_EQ(j["worst_pairs"][0]["index"], 2);
  EXPECT_EQ(j["unranked_pairs"], 1);
  EXPECT_EQ(j["truncation"]["kept"], 3);
  EXPECT_TRUE(j["read"].is_null());
  EXPECT_NO_THROW(j.dump());  // no invalid UTF-8, no NaN left
  EXPECT_EQ(j.dump().find("NaN"), std::string::npos);

  const nlohmann::ordered_json empty = report_data_json(compute_report_data(ReportInputs{}));
  EXPECT_TRUE(empty["reward_vs_length"].is_null());
  EXPECT_TRUE(empty["training"].is_null());
  EXPECT_TRUE(empty["reward_histogram"]["edges"].empty());
}

// ---- the page ------------------------------------------------------------------

// Checks that `html` is well formed: every element closed in order (void
// elements and "/>" excepted), no stray '<', '>' only ending tags or inside
// the stylesheet. Returns "" or what is wrong.
std::string check_well_formed(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link", "col", "area",
                                               "base", "embed", "source", "track", "wbr"};
  std::vector<std::string> open;
  std::size_t i = 0;
  while (i < html.size()) {
    const std::size_t lt = html.find('<', i);
    const std::string text = html.substr(i, lt == std::string::npos ? std::string::npos : lt - i);
    if (text.find('>') != std::string::npos) return "a '>' in text near: " + text.substr(0, 80);
    if (lt == std::string::npos) break;
    if (html.compare(lt, 4, "<!--") == 0) {
      i = html.find("-->", lt) + 3;
      continue;
    }
    const std::size_t gt = html.find('>', lt);
    if (gt == std::string::npos) return "an unclosed tag at " + std::to_string(lt);
    std::string tag = html.substr(lt + 1, gt - lt - 1);
    i = gt + 1;
    if (tag.rfind("!DOCTYPE", 0) == 0) continue;
    if (tag.find('<') != std::string::npos) return "a '<' inside a tag: " + tag.substr(0, 80);
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closing = !tag.empty() && tag.back() == '/';
    const std::string name = tag.substr(closing ? 1 : 0, tag.find_first_of(" \n/", closing ? 1 : 0) - (closing ? 1 : 0));
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); })) {
      return "a bad tag name: <" + tag.substr(0, 80) + ">";
    }
    if (closing) {
      if (open.empty() || open.back() != name) {
        return "</" + name + "> closes <" + (open.empty() ? std::string("nothing") : open.back()) + ">";
      }
      open.pop_back();
    } else if (!self_closing && !kVoid.count(name)) {
      open.push_back(name);
      if (name == "style") {  // raw text up to </style>
        const std::size_t end = html.find("</style>", i);
        if (end == std::string::npos) return "an unclosed <style>";
        if (html.substr(i, end - i).find('<') != std::string::npos) return "a '<' in the stylesheet";
        i = end;
      }
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return "";
}

// The ids of the page's plots, each checked to carry a size and a viewBox.
std::vector<std::string> plot_ids(const std::string& html) {
  std::vector<std::string> ids;
  static const std::regex svg(
      R"re(<svg id="([a-z0-9-]+)" class="plot" width="(\d+)" height="(\d+)" viewBox="0 0 (\d+) (\d+)")re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), svg); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    EXPECT_GT(std::stoi(m[2]), 0);
    EXPECT_GT(std::stoi(m[3]), 0);
    EXPECT_EQ(m[2], m[4]);
    EXPECT_EQ(m[3], m[5]);
    ids.push_back(m[1]);
  }
  // Every <svg> is one of these.
  std::size_t count = 0;
  for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++count;
  EXPECT_EQ(count, ids.size());
  return ids;
}

// The checks every page passes: well formed, valid UTF-8, nothing that
// would load from outside, the plots sized, no NaN drawn.
void expect_valid_page(const std::string& html, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_EQ(check_well_formed(html), "");
  EXPECT_EQ(find_invalid_utf8(html), std::string_view::npos);
  EXPECT_TRUE(test::starts_with(html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"));
  for (const char* banned : {"http://", "https://", "<link", "src=", "url(", "@import", "<script", "<iframe",
                             "<img", "<object", "<embed", "javascript:", "xlink:href", "//cdn", "@font-face"}) {
    EXPECT_EQ(html.find(banned), std::string::npos) << "the page contains " << banned;
  }
  // Links are in-page anchors only.
  static const std::regex href(R"re(href="([^"]*)")re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), href); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ((*it)[1].str().rfind('#', 0), 0u) << (*it)[1];
  }
  for (const char* bad : {"=\"nan\"", "=\"-nan\"", "=\"inf\"", "=\"-inf\"", "nan,", ",nan", "inf,"}) {
    EXPECT_EQ(html.find(bad), std::string::npos) << "a non-finite coordinate: " << bad;
  }
  plot_ids(html);
}

TEST(ReportHtml, FullReportIsSelfContainedWithEveryPlot) {
  const ReportInputs in = full_inputs();
  const std::string html = render_html_report(in, compute_report_data(in));
  expect_valid_page(html, "full report");
  EXPECT_EQ(plot_ids(html),
            (std::vector<std::string>{"plot-reward-histogram", "plot-margin-histogram", "plot-reliability",
                                      "plot-reward-length", "plot-group-accuracy", "plot-training-loss",
                                      "plot-training-accuracy", "plot-training-lr", "plot-training-grad-norm"}));
  for (const char* part : {"<section id=\"summary\">", "<section id=\"worst\">", "<section id=\"data\">",
                           "<section id=\"tables\">", "<h3>RewardBench</h3>", "ECE", "Pearson r",
                           "Each point of the step curves is the mean of 2 consecutive steps"}) {
    EXPECT_TRUE(test::contains(html, part));
  }
  // Axes with ticks and labels, a legend, titles.
  for (const char* part : {"class=\"tick\"", "class=\"axis-label\"", "class=\"legend\"", "class=\"plot-title\""}) {
    EXPECT_TRUE(test::contains(html, part));
  }
  // The page depends on its inputs only.
  EXPECT_EQ(html, render_html_report(in, compute_report_data(in)));
}

TEST(ReportHtml, EveryTextFromTheDataIsEscaped) {
  const std::string evil = "<script>alert(\"x&y\")</script>'q'";
  const std::string escaped = "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;q&#39;";
  ReportPair p = pair(0, 1, 3, 4, evil);
  p.id = evil;
  p.prompt_text = p.chosen_text = p.rejected_text = evil;
  ReportInputs in = inputs_for({p});
  in.title = in.model = in.data = in.date = evil;
  in.length_kind = evil;
  ReadStats read;
  read.first_errors = {evil};
  in.read = read;
  in.tables.push_back(ReportTable{evil, {evil}, {{evil, evil}}, evil});
  const std::string html = render_html_report(in, compute_report_data(in));
  expect_valid_page(html, "escaping");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("alert(\""), std::string::npos);
  // Title (twice), model, data, date, group (chart, table, worst pair x2),
  // id (x2), texts (3), axis label, read error, table title, header, cells, note.
  std::size_t count = 0;
  for (std::size_t at = html.find(escaped); at != std::string::npos; at = html.find(escaped, at + 1)) ++count;
  EXPECT_GE(count, 18u);
}

TEST(ReportHtml, DegenerateInputsGiveValidPages) {
  std::map<std::string, ReportInputs> cases;
  cases["no pairs, default metrics"] = ReportInputs{};
  cases["no pairs, metrics of nothing"] = inputs_for({});
  {
    ReportInputs metrics_only = inputs_for({pair(1, 0), pair(0, 1)});
    metrics_only.pairs.clear();
    cases["metrics without pairs"] = metrics_only;
  }
  cases["NaN rewards"] = inputs_for({pair(kNaN, kNaN, 3, 4), pair(kNaN, 1, 3, 4)});
  cases["infinite rewards"] = inputs_for({pair(kInf, -kInf, 3, 4), pair(kInf, kInf), pair(1, 2)});
  cases["all equal"] = inputs_for(std::vector<ReportPair>(50, pair(0.25, 0.25, 10, 10, "only")));
  cases["one pair"] = inputs_for({pair(1, 0)});
  cases["huge rewards"] = inputs_for({pair(1.7e308, -1.7e308, 1, 2), pair(-1e-300, 1e-300, 1, 2)});
  {
    ReportInputs empty_curves = inputs_for({pair(1, 0)});
    empty_curves.curves = TrainingCurves{};
    empty_curves.tables.push_back(ReportTable{"", {}, {{"a", "b", "c"}, {}}, ""});  // ragged, headerless
    cases["empty curves, ragged table"] = empty_curves;
    ReportInputs nan_curves = inputs_for({pair(1, 0)});
    nan_curves.curves = TrainingCurves{{1, 2}, {kNaN, kNaN}, {kNaN, kNaN}, {0, 0}, {kNaN, kNaN}, {}, {}, {}};
    cases["NaN curves"] = nan_curves;
  }
  {
    ReportPair big = pair(0, 1, 5, 5);
    big.prompt_text = std::string(2000000, 'x') + "<end>";
    big.chosen_text = "\xC3";  // a lone lead byte
    ReportInputs huge = inputs_for({big});
    cases["huge and invalid texts"] = huge;
  }
  {
    std::vector<ReportPair> many;
    for (int i = 0; i < 300; ++i) many.push_back(pair(i % 7, i % 5, -1, -1, "group " + std::to_string(i)));
    cases["300 groups"] = inputs_for(many);
  }
  for (const auto& [what, in] : cases) {
    std::string html;
    ASSERT_NO_THROW(html = render_html_report(in, compute_report_data(in))) << what;
    expect_valid_page(html, what);
    EXPECT_LT(html.size(), 2000000u) << what << ": texts must be cut";
  }
  // The huge text is shown cut, with its note.
  const ReportInputs& huge = cases["huge and invalid texts"];
  const std::string html = render_html_report(huge, compute_report_data(huge));
  EXPECT_TRUE(test::contains(html, "[text cut: the first 4000 of 2000005 characters shown]"));
  const ReportInputs& none = cases["no pairs, default metrics"];
  EXPECT_TRUE(test::contains(render_html_report(none, compute_report_data(none)), "no per-pair rewards given"));
}

TEST(ReportHtml, WritesThroughOutputFile) {
  test::TempDir tmp;
  const ReportInputs in = full_inputs(50);
  const std::string expected = render_html_report(in, compute_report_data(in));
  write_html_report(tmp.file("report.html"), in);
  EXPECT_EQ(test::read_bytes(tmp.file("report.html")), expected);
  // A symlink: its target is replaced, the link stays.
  test::write_bytes(tmp.file("target.html"), "old");
  ASSERT_EQ(symlink("target.html", tmp.file("link.html").c_str()), 0);
  write_html_report(tmp.file("link.html"), in);
  EXPECT_EQ(test::read_bytes(tmp.file("target.html")), expected);
  struct stat st {};
  ASSERT_EQ(lstat(tmp.file("link.html").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_NO_THROW(write_html_report("/dev/null", in));
  const std::string missing = tmp.file("no-folder/report.html");
  EXPECT_TRUE(test::contains(test::error_of([&] { write_html_report(missing, in); }), missing));
  EXPECT_TRUE(test::contains(test::error_of([&] { write_html_report(tmp.path(), in); }), tmp.path()));
  // Bad options fail before the file is touched.
  ReportInputs bad = in;
  bad.histogram_bins = 0;
  EXPECT_TRUE(test::contains(test::error_of([&] { write_html_report(tmp.file("report.html"), bad); }),
                             "histogram_bins"));
  EXPECT_EQ(test::read_bytes(tmp.file("report.html")), expected);
}

// ---- Chromium ------------------------------------------------------------------

std::string chromium_path() {
  const char* env = std::getenv("OPENRM_CHROMIUM");
  return env && *env ? env : "/usr/bin/chromium";
}

struct BrowserRun {
  int status = -1;  // exit status; -1 when killed after the timeout
  std::string out;  // stdout (--dump-dom writes the DOM there)
  std::string log;  // stderr (--enable-logging=stderr)
};

// Runs chromium headless with a fresh profile under tmp, no network (every
// host name fails to resolve, background fetches off), stdout and stderr in
// files; kills its whole process group after timeout_s.
BrowserRun run_chromium(const test::TempDir& tmp, const std::string& name, std::vector<std::string> args,
                        double timeout_s = 120) {
  const std::string out = tmp.file(name + ".out"), err = tmp.file(name + ".err"), home = tmp.file(name + "-home");
  mkdir(home.c_str(), 0700);
  std::vector<std::string> argv = {chromium_path(), "--headless", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                                   "--disable-background-networking", "--disable-component-update",
                                   "--disable-sync", "--no-pings", "--disable-default-apps", "--mute-audio",
                                   "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
                                   "--user-data-dir=" + tmp.file(name + "-profile")};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid < 0) return {};
  if (pid == 0) {
    setpgid(0, 0);  // its own group: the browser's helpers die with it
    if (!freopen(out.c_str(), "w", stdout) || !freopen(err.c_str(), "w", stderr)) _exit(126);
    setenv("HOME", home.c_str(), 1);
    setenv("XDG_CONFIG_HOME", home.c_str(), 1);
    setenv("XDG_CACHE_HOME", home.c_str(), 1);
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  BrowserRun run;
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      break;
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "chromium (" << name << ") did not finish in " << timeout_s << " s; killed";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (kill(-pid, 0) == 0) kill(-pid, SIGKILL);  // helpers left behind by the browser
  run.out = test::read_bytes(out);
  run.log = test::read_bytes(err);
  return run;
}

// Width and height from a PNG's IHDR chunk; (0, 0) when it is not a PNG.
std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& bytes) {
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || bytes.compare(12, 4, "IHDR") != 0) {
    return {0, 0};
  }
  const auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(bytes[at + k]);
    return v;
  };
  return {be32(16), be32(20)};
}

// The console lines of a chromium log (messages, uncaught errors).
std::vector<std::string> console_lines(const std::string& log) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(":CONSOLE") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

// Appended to a test copy of the page: once loaded, writes each plot's
// rendered size, how many of its texts have a non-zero box, every resource
// the page loaded, and whether the page overflows the window sideways, into
// <pre id="openrm-check">, which --dump-dom gives back.
constexpr const char* kCheckScript = R"(<script>
window.addEventListener('load', function () {
  var lines = [];
  document.querySelectorAll('svg').forEach(function (svg) {
    var r = svg.getBoundingClientRect(), texts = 0;
    svg.querySelectorAll('text').forEach(function (t) { if (t.getBBox().width > 0) texts++; });
    lines.push('plot ' + svg.id + ' ' + Math.round(r.width) + ' ' + Math.round(r.height) + ' ' + texts);
  });
  performance.getEntriesByType('resource').forEach(function (e) { lines.push('resource ' + e.name); });
  lines.push('overflow ' + (document.documentElement.scrollWidth > window.innerWidth ? 1 : 0));
  lines.push('height ' + document.documentElement.scrollHeight);
  var pre = document.createElement('pre');
  pre.id = 'openrm-check';
  pre.textContent = lines.join('\n');
  document.body.appendChild(pre);
});
</script>
)";

// The check lines from a dumped DOM.
std::vector<std::string> check_lines(const std::string& dom) {
  const std::size_t begin = dom.find("<pre id=\"openrm-check\">");
  if (begin == std::string::npos) return {};
  const std::size_t start = begin + std::string("<pre id=\"openrm-check\">").size();
  const std::string body = dom.substr(start, dom.find("</pre>", start) - start);
  std::vector<std::string> lines;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ReportBrowser, ChromiumRendersEveryPlot) {
  if (access(chromium_path().c_str(), X_OK) != 0) {
    GTEST_SKIP() << chromium_path() << " not found: the browser check is skipped "
                 << "(Debian: apt-get install chromium; or set OPENRM_CHROMIUM)";
  }
  test::TempDir tmp;
  const ReportInputs in = full_inputs();
  const std::string page = render_html_report(in, compute_report_data(in));
  const std::vector<std::string> ids = plot_ids(page);
  ASSERT_EQ(ids.size(), 9u);
  test::write_bytes(tmp.file("report.html"), page);
  std::string checked = page;
  checked.insert(checked.rfind("</body>"), kCheckScript);
  test::write_bytes(tmp.file("check.html"), checked);
  test::write_bytes(tmp.file("blank.html"), "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body></body></html>\n");
  // The control: a page that loads something from outside, to show the
  // resource check sees it (the host resolver fails every name).
  std::string outside = checked;
  outside.insert(outside.find("<main>"), "<img src=\"http://example.invalid/x.png\" alt=\"\">");
  test::write_bytes(tmp.file("outside.html"), outside);

  // 1. The plots as laid out in a 1280-pixel window.
  const BrowserRun dom = run_chromium(tmp, "dom", {"--window-size=1280,4000", "--dump-dom", "file://" + tmp.file("check.html")});
  ASSERT_EQ(dom.status, 0) << dom.log;
  const std::vector<std::string> lines = check_lines(dom.out);
  ASSERT_FALSE(lines.empty()) << "the check script wrote nothing; DOM:\n" << dom.out.substr(0, 2000) << "\nlog:\n" << dom.log;
  std::map<std::string, std::vector<int>> plots;
  for (const std::string& line : lines) {
    std::istringstream fields(line);
    std::string kind, id;
    fields >> kind;
    if (kind == "plot") {
      int w = 0, h = 0, texts = 0;
      fields >> id >> w >> h >> texts;
      plots[id] = {w, h, texts};
    } else if (kind == "resource") {
      ADD_FAILURE() << "the page loaded " << line;
    } else if (kind == "overflow") {
      int overflow = 1;
      fields >> overflow;
      EXPECT_EQ(overflow, 0) << "the page is wider than the window";
    }
  }
  for (const std::string& id : ids) {
    ASSERT_TRUE(plots.count(id)) << id << " is not in the rendered page";
    EXPECT_GT(plots[id][0], 100) << id << " width";
    EXPECT_GT(plots[id][1], 100) << id << " height";
    EXPECT_GE(plots[id][2], 5) << id << ": its title, ticks and labels should render with a width";
  }
  EXPECT_EQ(console_lines(dom.log), std::vector<std::string>{}) << "console messages or script errors";

  // 2. The control page: its outside image is seen.
  const BrowserRun control = run_chromium(tmp, "outside", {"--dump-dom", "file://" + tmp.file("outside.html")});
  bool seen = false;
  for (const std::string& line : check_lines(control.out)) seen = seen || line == "resource http://example.invalid/x.png";
  EXPECT_TRUE(seen) << "the resource check did not see the control page's outside image";

  // 3. Screenshots of the real page (no script at all) and of a blank one.
  const std::string shot = tmp.file("report.png"), blank = tmp.file("blank.png");
  const BrowserRun s1 = run_chromium(tmp, "shot", {"--window-size=1280,4000", "--screenshot=" + shot, "file://" + tmp.file("report.html")});
  const BrowserRun s2 = run_chromium(tmp, "blank", {"--window-size=1280,4000", "--screenshot=" + blank, "file://" + tmp.file("blank.html")});
  ASSERT_EQ(s1.status, 0) << s1.log;
  ASSERT_EQ(s2.status, 0) << s2.log;
  EXPECT_EQ(console_lines(s1.log), std::vector<std::string>{});
  const std::string png = test::read_bytes(shot), blank_png = test::read_bytes(blank);
  EXPECT_EQ(png_size(png), (std::pair<std::uint32_t, std::uint32_t>{1280, 4000}));
  EXPECT_EQ(png_size(blank_png), (std::pair<std::uint32_t, std::uint32_t>{1280, 4000}));
  // A blank 1280 x 4000 page compresses to a few tens of kB; text, plots and
  // colours to many times that.
  EXPECT_GT(png.size(), 5 * blank_png.size()) << "report " << png.size() << " bytes, blank " << blank_png.size();
  std::printf("chromium: %zu plots rendered; screenshot %zu bytes (blank page %zu)\n", plots.size(), png.size(),
              blank_png.size());
  // To look at the page and its rendering: OPENRM_REPORT_KEEP=DIR keeps both there.
  if (const char* keep = std::getenv("OPENRM_REPORT_KEEP"); keep && *keep) {
    test::write_bytes(std::string(keep) + "/report.html", page);
    test::write_bytes(std::string(keep) + "/report.png", png);
  }
}

}  // namespace
}  // namespace openrm
