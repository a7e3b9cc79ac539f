// The HTML page of the report (docs/report.md): every section draws what
// compute_report_data() computed, as inline SVG styled by one inline
// stylesheet. No script, no font, no link outside the file: the page must
// open offline and look the same in any browser. Every text from the inputs
// goes through html_escape.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <limits>

#include "eval/svg_plot.h"
#include "openrm/error.h"
#include "openrm/eval/report.h"
#include "openrm/version.h"

namespace openrm {
namespace {

using detail::Axis;
using detail::fixed_axis;
using detail::format_number;
using detail::html_escape;
using detail::nice_axis;
using detail::SvgPlot;

// Two plots side by side fit a 1280-pixel window.
constexpr int kPlotWidth = 580;
constexpr int kPlotHeight = 320;
// Groups drawn in the accuracy chart (the table lists all).
constexpr std::size_t kMaxChartGroups = 100;
constexpr std::size_t kMaxGroupLabel = 28;  // code points of a group's name in the chart

constexpr const char* kStyle = R"(
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0 auto; max-width: 1320px; padding: 12px 24px 32px; color: #1a202c; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6em; margin: 0.3em 0; }
h2 { font-size: 1.25em; border-bottom: 1px solid #cbd5e0; padding-bottom: 4px; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 0.8em 0 0.4em; }
nav { margin: 0.6em 0; font-size: 0.95em; }
nav a { margin-right: 1.1em; color: #2b6cb0; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0.4em 0; }
.meta dt { font-weight: 600; color: #4a5568; }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; }
.card { border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px 12px; background: #f7fafc; }
.card .value { font-size: 1.45em; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label { color: #4a5568; font-size: 0.85em; }
.card .detail { color: #718096; font-size: 0.8em; }
.card.alert { border-color: #e53e3e; background: #fff5f5; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
svg.plot { max-width: 100%; height: auto; background: #fff; border: 1px solid #e2e8f0; border-radius: 4px; }
svg.plot text { font-family: inherit; }
.plot-title { font-size: 14px; font-weight: 600; fill: #1a202c; }
.plot-area { fill: none; stroke: #a0aec0; }
.grid { stroke: #edf2f7; }
.tick { fill: #4a5568; font-size: 11px; }
.axis-label { fill: #2d3748; font-size: 12px; }
.legend { fill: #2d3748; font-size: 12px; }
.plot-message { fill: #718096; font-size: 14px; }
.bar-chosen { fill: #3182ce; fill-opacity: 0.55; }
.bar-rejected { fill: #dd6b20; fill-opacity: 0.55; }
.bar-right { fill: #38a169; fill-opacity: 0.75; }
.bar-wrong { fill: #e53e3e; fill-opacity: 0.75; }
.bar-observed { fill: #805ad5; fill-opacity: 0.45; }
.bar-group { fill: #3182ce; fill-opacity: 0.75; }
.ref-line { stroke: #4a5568; stroke-width: 1; stroke-dasharray: 4 3; }
.zero-line { stroke: #1a202c; stroke-width: 1.2; }
.point-chosen { fill: #3182ce; fill-opacity: 0.45; }
.point-rejected { fill: #dd6b20; fill-opacity: 0.45; }
.point-calibration { fill: #553c9a; }
.line-train { fill: none; stroke: #3182ce; stroke-width: 1.5; }
.line-train-dot, .key-train { fill: #3182ce; }
.line-eval { fill: none; stroke: #dd6b20; stroke-width: 1.5; }
.line-eval-dot, .point-eval, .key-eval { fill: #dd6b20; }
.key-ref { fill: #4a5568; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.4em 0; }
th, td { border: 1px solid #e2e8f0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f7fafc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.wrong { color: #c53030; font-weight: 600; }
.pair { border: 1px solid #e2e8f0; border-radius: 6px; padding: 6px 12px 10px; margin: 12px 0; }
.texts { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 10px; }
.texts h4 { margin: 0.3em 0; font-size: 0.9em; color: #4a5568; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 28em; overflow: auto; background: #f7fafc;
  border: 1px solid #edf2f7; padding: 6px; margin: 0; font-size: 0.82em; }
.cut-note { color: #c05621; font-size: 0.85em; margin: 2px 0; }
.note { color: #4a5568; font-size: 0.9em; }
footer { margin-top: 2.5em; color: #718096; font-size: 0.85em; }
@media (max-width: 900px) { .texts { grid-template-columns: 1fr; } }
)";

// A value with fixed decimals, "n/a" when undefined.
std::string fixed(double value, int decimals = 4) {
  if (!std::isfinite(value)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string count_text(std::int64_t n) { return std::to_string(n); }

// The first `max_chars` code points of valid UTF-8 text, with an ellipsis
// when cut (chart labels).
std::string short_label(const std::string& text, std::size_t max_chars) {
  const std::string valid = detail::valid_utf8(text);
  std::size_t chars = 0;
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if ((static_cast<unsigned char>(valid[i]) & 0xC0) == 0x80) continue;
    if (chars++ == max_chars) return valid.substr(0, i) + "\xE2\x80\xA6";  // U+2026
  }
  return valid;
}

std::string group_name(const std::string& name) { return name.empty() ? "(no group)" : name; }

// The range of the finite values of every vector; (NaN, NaN) when none.
std::pair<double, double> finite_range(std::initializer_list<const std::vector<double>*> series) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto* values : series) {
    for (const double v : *values) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (lo > hi) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  return {lo, hi};
}

std::vector<double> as_doubles(const std::vector<std::int64_t>& v) { return {v.begin(), v.end()}; }

std::string card(const std::string& label, const std::string& value, const std::string& detail = "",
                 bool alert = false) {
  std::string out = std::string("<div class=\"card") + (alert ? " alert" : "") + "\"><div class=\"label\">" +
                    html_escape(label) + "</div><div class=\"value\">" + html_escape(value) + "</div>";
  if (!detail.empty()) out += "<div class=\"detail\">" + html_escape(detail) + "</div>";
  return out + "</div>\n";
}

// A table of already-escaped cells; `numeric` columns align right.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::vector<bool>& numeric = {}) {
  std::string out = "<table>\n<thead><tr>";
  for (const auto& h : header) out += "<th>" + h + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (std::size_t c = 0; c < std::max(row.size(), header.size()); ++c) {
      const bool num = c < numeric.size() && numeric[c];
      out += std::string(num ? "<td class=\"num\">" : "<td>") + (c < row.size() ? row[c] : "") + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

// ---- sections ----------------------------------------------------------------

std::string summary_section(const ReportInputs& inputs) {
  const PreferenceMetrics& m = inputs.metrics;
  const bool any = m.pairs > 0;
  std::string out = "<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">\n";
  out += card("pairs", count_text(m.pairs));
  out += card("accuracy", any ? fixed(m.accuracy) : "n/a", "ties " + count_text(m.ties) + ", counted wrong");
  out += card("mean margin", any ? fixed(m.mean_margin) : "n/a", "mean of chosen \xE2\x88\x92 rejected");
  out += card("loss (Bradley-Terry)", any ? fixed(m.loss) : "n/a", "log 2 = 0.6931 for equal rewards");
  out += card("ECE", any ? fixed(m.ece) : "n/a", std::to_string(m.calibration.size()) + " bins, both orderings");
  out += card("reward mean", any ? fixed(m.reward_mean) : "n/a",
              "std " + (any ? fixed(m.reward_std) : "n/a") + " (population, " + count_text(2 * m.pairs) + " rewards)");
  if (m.non_finite > 0) {
    out += card("non-finite rewards", count_text(m.non_finite) + " pairs", "counted wrong, left out of the plots",
                /*alert=*/true);
  }
  if (any && m.has_length_bias) {
    const LengthBias& lb = m.length_bias;
    out += card("length bias: Pearson r", fixed(lb.pearson), "reward vs " + inputs.length_kind + " length");
    out += card("longer side wins", fixed(lb.longer_wins_rate),
                "data's chosen is longer: " + fixed(lb.chosen_longer_rate) + " (" +
                    count_text(lb.pairs_with_length_difference) + " pairs differ)");
  }
  return out + "</div>\n</section>\n";
}

std::string reward_histogram_plot(const ReportData& data) {
  SvgPlot plot("plot-reward-histogram", "Rewards of chosen and rejected", kPlotWidth, kPlotHeight);
  const ReportHistogram& c = data.reward_chosen;
  const ReportHistogram& r = data.reward_rejected;
  if (c.edges.empty()) {
    plot.set_axes(fixed_axis(0, 1), fixed_axis(0, 1), "reward", "pairs");
    plot.message(data.pairs == 0 ? "no per-pair rewards given" : "no finite reward");
    return plot.str();
  }
  std::int64_t top = 1;
  for (const auto* h : {&c, &r}) {
    for (const auto n : h->counts) top = std::max(top, n);
  }
  plot.set_axes(nice_axis(c.edges.front(), c.edges.back()), nice_axis(0, static_cast<double>(top)), "reward",
                "pairs");
  for (std::size_t b = 0; b + 1 < c.edges.size(); ++b) {
    const std::string bin = "[" + format_number(c.edges[b]) + ", " + format_number(c.edges[b + 1]) + "): ";
    const double lo = c.edges[b], hi = c.edges[b + 1];
    if (c.counts[b] > 0) plot.rect(lo, 0, hi, static_cast<double>(c.counts[b]), "bar-chosen", "chosen " + bin + count_text(c.counts[b]));
    if (r.counts[b] > 0) plot.rect(lo, 0, hi, static_cast<double>(r.counts[b]), "bar-rejected", "rejected " + bin + count_text(r.counts[b]));
  }
  plot.legend({{"bar-chosen", "chosen"}, {"bar-rejected", "rejected"}});
  return plot.str();
}

std::string margin_histogram_plot(const ReportData& data) {
  SvgPlot plot("plot-margin-histogram", "Reward margin (chosen \xE2\x88\x92 rejected)", kPlotWidth, kPlotHeight);
  const ReportHistogram& h = data.margin;
  if (h.edges.empty()) {
    plot.set_axes(fixed_axis(0, 1), fixed_axis(0, 1), "margin", "pairs");
    plot.message(data.pairs == 0 ? "no per-pair rewards given" : "no finite margin");
    return plot.str();
  }
  std::int64_t top = 1;
  for (const auto n : h.counts) top = std::max(top, n);
  const Axis x = nice_axis(h.edges.front(), h.edges.back());
  plot.set_axes(x, nice_axis(0, static_cast<double>(top)), "chosen \xE2\x88\x92 rejected", "pairs");
  for (std::size_t b = 0; b + 1 < h.edges.size(); ++b) {
    if (h.counts[b] == 0) continue;
    const double lo = h.edges[b], hi = h.edges[b + 1];
    // A bin is "right" when its centre is on the chosen side of 0.
    plot.rect(lo, 0, hi, static_cast<double>(h.counts[b]), lo * 0.5 + hi * 0.5 > 0 ? "bar-right" : "bar-wrong",
              "[" + format_number(lo) + ", " + format_number(hi) + "): " + count_text(h.counts[b]) + " pairs");
  }
  if (x.lo <= 0 && 0 <= x.hi) plot.line(0, 0, 0, nice_axis(0, static_cast<double>(top)).hi, "zero-line");
  plot.legend({{"bar-right", "chosen ahead"}, {"bar-wrong", "rejected ahead or tie"}});
  return plot.str();
}

std::string rewards_section(const ReportData& data) {
  std::string out = "<section id=\"rewards\">\n<h2>Rewards</h2>\n";
  out += "<p class=\"note\">Both histograms share bin edges (" +
         count_text(static_cast<std::int64_t>(data.reward_chosen.counts.size())) + " bins).";
  const std::int64_t left_out = data.reward_chosen.left_out + data.reward_rejected.left_out;
  if (left_out > 0) out += " " + count_text(left_out) + " non-finite rewards are not drawn.";
  out += "</p>\n<div class=\"plots\">\n" + reward_histogram_plot(data) + margin_histogram_plot(data) + "</div>\n";
  return out + "</section>\n";
}

std::string calibration_section(const ReportData& data) {
  SvgPlot plot("plot-reliability", "Reliability diagram (ECE " + fixed(data.ece) + ")", kPlotWidth, kPlotHeight + 40);
  plot.set_axes(fixed_axis(0, 1), fixed_axis(0, 1), "predicted probability \xCF\x83(chosen \xE2\x88\x92 rejected)",
                "observed frequency");
  std::int64_t total = 0;
  for (const CalibrationBin& b : data.calibration) total += b.count;
  plot.line(0, 0, 1, 1, "ref-line");
  std::vector<std::vector<std::string>> rows;
  for (const CalibrationBin& b : data.calibration) {
    const std::string range = "[" + fixed(b.lower, 2) + ", " + fixed(b.upper, 2) + (b.upper >= 1.0 ? "]" : ")");
    rows.push_back({range, count_text(b.count), fixed(b.mean_predicted), fixed(b.observed_frequency)});
    if (b.count == 0) continue;
    const std::string tip = range + ": " + count_text(b.count) + " predictions, mean predicted " +
                            fixed(b.mean_predicted) + ", observed " + fixed(b.observed_frequency);
    plot.rect(b.lower, 0, b.upper, b.observed_frequency, "bar-observed", tip);
    plot.circle(b.mean_predicted, b.observed_frequency, 3.5, "point-calibration", tip);
  }
  if (total == 0) plot.message("no prediction (no pairs, or every reward difference NaN)");
  plot.legend({{"bar-observed", "observed frequency"},
               {"point-calibration", "at the mean prediction"},
               {"key-ref", "perfect calibration"}});
  std::string out = "<section id=\"calibration\">\n<h2>Calibration</h2>\n";
  out += "<p class=\"note\">Each pair counts twice: p = \xCF\x83(chosen \xE2\x88\x92 rejected) with outcome 1 and "
         "1 \xE2\x88\x92 p with outcome 0, so the diagram is symmetric about (0.5, 0.5).</p>\n";
  out += "<div class=\"plots\">\n" + plot.str() + "<div>" +
         html_table({"bin", "count", "mean predicted", "observed"}, rows, {false, true, true, true}) + "</div>\n</div>\n";
  return out + "</section>\n";
}

std::string length_section(const ReportInputs& inputs, const ReportData& data) {
  const ReportLength& l = data.length;
  SvgPlot plot("plot-reward-length", "Reward vs length (Pearson r = " + fixed(l.pearson, 3) + ")", kPlotWidth + 200,
               kPlotHeight + 60);
  const std::string x_label = inputs.length_kind + " length (tokens)";
  const auto [x_lo, x_hi] = finite_range({&l.chosen.length, &l.rejected.length});
  const auto [y_lo, y_hi] = finite_range({&l.chosen.reward, &l.rejected.reward});
  std::string note;
  if (!std::isfinite(x_lo)) {
    plot.set_axes(fixed_axis(0, 1), fixed_axis(0, 1), x_label, "reward");
    plot.message(!l.available ? "no lengths given" : "no sequence with a finite reward drawn");
  } else {
    plot.set_axes(nice_axis(x_lo, x_hi), nice_axis(y_lo, y_hi), x_label, "reward");
    for (const auto& [side, css] : {std::pair{&l.chosen, "point-chosen"}, std::pair{&l.rejected, "point-rejected"}}) {
      for (std::size_t i = 0; i < side->length.size(); ++i) plot.circle(side->length[i], side->reward[i], 2.2, css);
    }
    plot.legend({{"point-chosen", "chosen"}, {"point-rejected", "rejected"}});
  }
  const std::int64_t drawn = static_cast<std::int64_t>(l.chosen.length.size() + l.rejected.length.size());
  note = count_text(drawn) + " of the " + count_text(l.sequences) +
         " sequences drawn (evenly spaced pairs); the correlation is over all " + count_text(l.sequences) + ".";
  if (l.pairs_without_length > 0) note += " " + count_text(l.pairs_without_length) + " pairs have no length.";
  std::string out = "<section id=\"length\">\n<h2>Reward vs length</h2>\n";
  out += "<p class=\"note\">" + html_escape(note) + "</p>\n<div class=\"plots\">\n" + plot.str() + "</div>\n";
  return out + "</section>\n";
}

std::string groups_section(const ReportInputs& inputs, const ReportData& data) {
  const std::size_t shown = std::min(data.groups.size(), kMaxChartGroups);
  const int height = 90 + 22 * static_cast<int>(shown);
  SvgPlot plot("plot-group-accuracy", "Accuracy per group", kPlotWidth + 200, height);
  plot.set_margins(230, 30, 50, 45);
  const double n = static_cast<double>(shown);
  plot.set_axes(fixed_axis(0, 1), Axis{-0.5, n - 0.5, {}}, "accuracy (a tie counts wrong)", "");
  std::vector<std::pair<double, std::string>> labels;
  for (std::size_t i = 0; i < shown; ++i) {
    const ReportGroup& g = data.groups[i];
    const double y = n - 1 - static_cast<double>(i);  // the first group on top
    labels.emplace_back(y, short_label(group_name(g.name), kMaxGroupLabel) + " (" + count_text(g.pairs) + ")");
    plot.rect(0, y - 0.35, g.accuracy, y + 0.35, "bar-group",
              group_name(g.name) + ": " + fixed(g.accuracy) + " of " + count_text(g.pairs) + " pairs");
  }
  plot.set_y_categories(std::move(labels));
  if (inputs.metrics.pairs > 0) plot.line(inputs.metrics.accuracy, -0.5, inputs.metrics.accuracy, n - 0.5, "ref-line");
  plot.legend({{"bar-group", "group"}, {"key-ref", "all pairs"}});
  std::vector<std::vector<std::string>> rows;
  for (const ReportGroup& g : data.groups) {
    rows.push_back({html_escape(group_name(g.name)), count_text(g.pairs), count_text(g.correct), count_text(g.ties),
                    fixed(g.accuracy)});
  }
  std::string out = "<section id=\"groups\">\n<h2>Accuracy per group</h2>\n";
  if (shown < data.groups.size()) {
    out += "<p class=\"note\">The chart shows the first " + count_text(static_cast<std::int64_t>(shown)) + " of " +
           count_text(static_cast<std::int64_t>(data.groups.size())) + " groups; the table lists all.</p>\n";
  }
  out += "<div class=\"plots\">\n" + plot.str() + "<div>" +
         html_table({"group", "pairs", "correct", "ties", "accuracy"}, rows, {false, true, true, true, true}) +
         "</div>\n</div>\n";
  return out + "</section>\n";
}

// One training curve plot: the step series and, when given, the evaluation
// points over the same steps.
std::string curve_plot(const std::string& id, const std::string& title, const std::string& y_label,
                       const TrainingCurves& c, const std::vector<double>& train, const std::vector<double>* eval,
                       bool probability) {
  SvgPlot plot(id, title, kPlotWidth, kPlotHeight - 20);
  const std::vector<double> steps = as_doubles(c.step), eval_steps = as_doubles(c.eval_step);
  static const std::vector<double> none;
  const auto [x_lo, x_hi] = finite_range({&steps, eval ? &eval_steps : &none});
  const auto [y_lo, y_hi] = finite_range({&train, eval ? eval : &none});
  if (!std::isfinite(x_lo) || !std::isfinite(y_lo)) {
    plot.set_axes(fixed_axis(0, 1), fixed_axis(0, 1), "step", y_label);
    plot.message("no values");
    return plot.str();
  }
  plot.set_axes(nice_axis(x_lo, x_hi), probability ? fixed_axis(0, 1) : nice_axis(y_lo, y_hi), "step", y_label);
  plot.polyline(steps, train, "line-train");
  std::vector<std::pair<std::string, std::string>> legend = {{"key-train", "training steps"}};
  if (eval && !eval->empty()) {
    plot.polyline(eval_steps, *eval, "line-eval");
    for (std::size_t i = 0; i < eval->size(); ++i) {
      plot.circle(eval_steps[i], (*eval)[i], 3.0, "point-eval",
                  "eval at step " + format_number(eval_steps[i], 12) + ": " + fixed((*eval)[i]));
    }
    legend.emplace_back("key-eval", "evaluation");
  }
  plot.legend(legend);
  return plot.str();
}

std::string training_section(const ReportCurves& curves) {
  const TrainingCurves& c = curves.shown;
  std::string out = "<section id=\"training\">\n<h2>Training</h2>\n<p class=\"note\">" +
                    count_text(curves.step_lines) + " steps and " +
                    count_text(static_cast<std::int64_t>(c.eval_step.size())) + " evaluations in metrics.jsonl.";
  if (curves.steps_per_point > 1) {
    out += " Each point of the step curves is the mean of " + count_text(curves.steps_per_point) +
           " consecutive steps, drawn at the last of them.";
  }
  out += "</p>\n<div class=\"plots\">\n";
  out += curve_plot("plot-training-loss", "Loss", "Bradley-Terry loss", c, c.loss, &c.eval_loss, false);
  out += curve_plot("plot-training-accuracy", "Accuracy", "accuracy", c, c.accuracy, &c.eval_accuracy, true);
  out += curve_plot("plot-training-lr", "Learning rate", "learning rate", c, c.lr, nullptr, false);
  out += curve_plot("plot-training-grad-norm", "Gradient norm (before clipping)", "gradient norm", c, c.grad_norm,
                    nullptr, false);
  return out + "</div>\n</section>\n";
}

// Code points of valid UTF-8 text.
std::int64_t code_points(const std::string& text) {
  return std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string text_block(const std::string& heading, const ReportText& text) {
  std::string out = "<div><h4>" + html_escape(heading) + "</h4>";
  if (text.total_chars == 0) return out + "<p class=\"note\">(no text)</p></div>\n";
  if (text.cut) {
    // Above the text as well as in it, so a reader cannot miss that the end is gone.
    out += "<p class=\"cut-note\">[text cut: the first " + count_text(code_points(text.text)) + " of " +
           count_text(text.total_chars) + " characters shown]</p>";
  }
  out += "<pre>" + html_escape(text.text) + (text.cut ? "\xE2\x80\xA6" : "") + "</pre>";
  return out + "</div>\n";
}

std::string worst_section(const ReportInputs& inputs, const ReportData& data) {
  std::string out = "<section id=\"worst\">\n<h2>Worst-ranked pairs</h2>\n<p class=\"note\">The " +
                    count_text(static_cast<std::int64_t>(data.worst_pairs.size())) +
                    " pairs with the largest rejected \xE2\x88\x92 chosen (most confidently wrong first; equal "
                    "differences in input order).";
  if (data.unranked_pairs > 0) {
    out += " " + count_text(data.unranked_pairs) + " pairs with a NaN reward difference are not ranked.";
  }
  out += "</p>\n";
  std::vector<std::vector<std::string>> rows;
  bool any_text = false;
  for (const ReportWorstPair& w : data.worst_pairs) {
    const std::string verdict = w.difference > 0 ? "<span class=\"wrong\">wrong</span>"
                                : w.difference == 0 ? "<span class=\"wrong\">tie</span>"
                                                    : "right";
    rows.push_back({"<a href=\"#pair-" + std::to_string(w.rank) + "\">" + std::to_string(w.rank) + "</a>",
                    std::to_string(w.index), html_escape(w.id), w.line > 0 ? std::to_string(w.line) : "",
                    html_escape(w.group), format_number(w.chosen, 6), format_number(w.rejected, 6),
                    format_number(w.difference, 6), verdict});
    any_text = any_text || w.prompt.total_chars > 0 || w.chosen_text.total_chars > 0 ||
               w.rejected_text.total_chars > 0;
  }
  out += html_table({"rank", "index", "id", "line", "group", "chosen", "rejected", "rejected \xE2\x88\x92 chosen", ""},
                    rows, {true, true, false, true, false, true, true, true, false});
  if (inputs.max_text_chars == 0 || !any_text) {
    return out + "<p class=\"note\">The pairs' texts were not given.</p>\n</section>\n";
  }
  for (const ReportWorstPair& w : data.worst_pairs) {
    out += "<div class=\"pair\" id=\"pair-" + std::to_string(w.rank) + "\">\n<h3>#" + std::to_string(w.rank) +
           ": pair " + std::to_string(w.index);
    if (!w.id.empty()) out += ", id " + html_escape(w.id);
    if (w.line > 0) out += ", line " + std::to_string(w.line);
    if (!w.group.empty()) out += ", " + html_escape(w.group);
    out += "</h3>\n<div class=\"texts\">\n" + text_block("prompt", w.prompt) +
           text_block("chosen (reward " + format_number(w.chosen, 6) + ")", w.chosen_text) +
           text_block("rejected (reward " + format_number(w.rejected, 6) + ")", w.rejected_text) + "</div>\n</div>\n";
  }
  return out + "</section>\n";
}

std::string data_section(const ReportData& data) {
  std::string out = "<section id=\"data\">\n<h2>Data</h2>\n";
  if (data.read) {
    const ReadStats& r = *data.read;
    out += "<h3>Reading</h3>\n" +
           html_table({"lines", "records", "invalid skipped", "ranked records", "pairs"},
                      {{count_text(r.lines), count_text(r.records), count_text(r.skipped_invalid),
                        count_text(r.ranked_records), count_text(r.pairs)}},
                      {true, true, true, true, true});
    if (!r.first_errors.empty()) {
      out += "<p class=\"note\">First skipped records:</p>\n<ul>\n";
      for (const std::string& e : r.first_errors) out += "<li><code>" + html_escape(e) + "</code></li>\n";
      out += "</ul>\n";
    }
  }
  if (data.truncation) {
    const TruncationStats& t = *data.truncation;
    out += "<h3>Truncation</h3>\n" +
           html_table({"pairs in", "kept", "truncated", "dropped", "prompt turns dropped", "prompts cut",
                       "responses cut", "longest before (tokens)"},
                      {{count_text(t.input), count_text(t.kept), count_text(t.truncated), count_text(t.dropped),
                        count_text(t.prompt_turns_dropped), count_text(t.prompts_cut), count_text(t.responses_cut),
                        count_text(t.longest_before)}},
                      std::vector<bool>(8, true));
  }
  return out + "</section>\n";
}

std::string tables_section(const std::vector<ReportTable>& tables, const std::string& heading = "More results") {
  std::string out = "<section id=\"tables\">\n<h2>" + heading + "</h2>\n";
  for (const ReportTable& t : tables) {
    if (!t.title.empty()) out += "<h3>" + html_escape(t.title) + "</h3>\n";
    std::vector<std::string> header;
    for (const auto& h : t.header) header.push_back(html_escape(h));
    std::vector<std::vector<std::string>> rows;
    for (const auto& row : t.rows) {
      std::vector<std::string> cells;
      for (const auto& cell : row) cells.push_back(html_escape(cell));
      rows.push_back(std::move(cells));
    }
    out += html_table(header, rows);
    if (!t.note.empty()) out += "<p class=\"note\">" + html_escape(t.note) + "</p>\n";
  }
  return out + "</section>\n";
}

}  // namespace

std::string render_html_report(const ReportInputs& inputs, const ReportData& data) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(inputs.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  out += "<header>\n<h1>" + html_escape(inputs.title) + "</h1>\n<dl class=\"meta\">\n";
  for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"model", &inputs.model},
                                    {"data", &inputs.data}, {"date", &inputs.date}}) {
    if (!value->empty()) out += "<dt>" + std::string(name) + "</dt><dd>" + html_escape(*value) + "</dd>\n";
  }
  out += "</dl>\n<nav>";
  // Links only to sections that are on the page.
  std::vector<std::pair<std::string, std::string>> links = {
      {"summary", "Summary"}, {"rewards", "Rewards"}, {"calibration", "Calibration"}, {"length", "Length"}};
  if (!data.groups.empty()) links.emplace_back("groups", "Groups");
  if (data.curves) links.emplace_back("training", "Training");
  if (!data.worst_pairs.empty()) links.emplace_back("worst", "Worst pairs");
  if (data.read || data.truncation) links.emplace_back("data", "Data");
  if (!inputs.tables.empty()) links.emplace_back("tables", "More results");
  for (const auto& [id, label] : links) out += "<a href=\"#" + id + "\">" + label + "</a>";
  out += "</nav>\n</header>\n<main>\n";
  out += summary_section(inputs);
  out += rewards_section(data);
  out += calibration_section(data);
  out += length_section(inputs, data);
  if (!data.groups.empty()) out += groups_section(inputs, data);
  if (data.curves) out += training_section(*data.curves);
  if (!data.worst_pairs.empty()) out += worst_section(inputs, data);
  if (data.read || data.truncation) out += data_section(data);
  if (!inputs.tables.empty()) out += tables_section(inputs.tables);
  out += "</main>\n<footer>Written by openrm " OPENRM_VERSION_STRING
         ". The definitions of every number are in openrm's docs/report.md and docs/evaluation.md.</footer>\n"
         "</body>\n</html>\n";
  return out;
}

namespace {

// Every id and in-page link of one model's sections, prefixed, so that the
// sections of several models live on one page. Texts from the data are
// escaped (a quote is &quot;), so only the page's own attributes match.
std::string prefix_ids(std::string html, const std::string& prefix) {
  for (const std::string& attribute : {std::string("id=\""), std::string("href=\"#")}) {
    for (std::size_t at = html.find(attribute); at != std::string::npos;
         at = html.find(attribute, at + attribute.size() + prefix.size())) {
      html.insert(at + attribute.size(), prefix);
    }
  }
  return html;
}

}  // namespace

std::string render_html_comparison_report(const std::string& title, const std::vector<ReportTable>& shared,
                                          const std::vector<ReportInputs>& models,
                                          const std::vector<ReportData>& data) {
  if (models.size() != data.size()) {
    throw Error("report: " + std::to_string(models.size()) + " models but " + std::to_string(data.size()) +
                " sets of report numbers");
  }
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  out += "<header>\n<h1>" + html_escape(title) + "</h1>\n<nav>";
  if (!shared.empty()) out += "<a href=\"#tables\">Comparison</a>";
  for (std::size_t m = 0; m < models.size(); ++m) {
    out += "<a href=\"#model-" + std::to_string(m + 1) + "\">" +
           html_escape(models[m].model.empty() ? "model " + std::to_string(m + 1) : models[m].model) + "</a>";
  }
  out += "</nav>\n</header>\n<main>\n";
  if (!shared.empty()) out += tables_section(shared, "Comparison");
  for (std::size_t m = 0; m < models.size(); ++m) {
    const std::string page = render_html_report(models[m], data[m]);
    const std::size_t begin = page.find("<main>\n"), end = page.rfind("</main>");
    const std::string name = models[m].model.empty() ? "model " + std::to_string(m + 1) : models[m].model;
    out += "<section class=\"model\" id=\"model-" + std::to_string(m + 1) + "\">\n<h2>" + html_escape(name) +
           "</h2>\n";
    if (!models[m].data.empty()) out += "<p class=\"note\">data: " + html_escape(models[m].data) + "</p>\n";
    out += prefix_ids(page.substr(begin + 7, end - begin - 7), "m" + std::to_string(m + 1) + "-");
    out += "</section>\n";
  }
  out += "</main>\n<footer>Written by openrm " OPENRM_VERSION_STRING
         ". The definitions of every number are in openrm's docs/report.md, docs/evaluation.md and "
         "docs/ensembles.md.</footer>\n</body>\n</html>\n";
  return out;
}

}  // namespace openrm
