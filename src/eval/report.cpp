// The numbers of the HTML report (docs/report.md): histograms, reward vs
// length, accuracy per group, the worst-ranked pairs, the training curves,
// their JSON, and reading openrm-train's metrics.jsonl. The page itself is
// drawn in report_html.cpp.
#include "openrm/eval/report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "eval/svg_plot.h"
#include "openrm/data/jsonl.h"
#include "openrm/eval/evaluate.h"
#include "openrm/error.h"
#include "openrm/io/file.h"

namespace openrm {
namespace {

using Json = nlohmann::ordered_json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// NaN and infinities have no JSON form: null.
Json number(double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); }

Json numbers(const std::vector<double>& values) {
  Json out = Json::array();
  for (const double v : values) out.push_back(number(v));
  return out;
}

// ---- metrics.jsonl -----------------------------------------------------------

// A field that is a number, null or absent (NaN); anything else is an error.
double optional_number(const nlohmann::json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return kNaN;
  if (!it->is_number()) {
    throw Error(where + ": \"" + key + "\" must be a number or null, got " + std::string(it->type_name()));
  }
  return it->get<double>();
}

// ---- histograms --------------------------------------------------------------

// bins + 1 equal-width edges over [lo, hi], the last exactly hi. The halves
// keep hi - lo finite for rewards near the double range (halving is exact).
std::vector<double> histogram_edges(double lo, double hi, int bins) {
  if (lo == hi) {
    // All values equal: a range around the value (wide enough that v +- h
    // differs from v even for large v).
    const double half = std::max(0.5, std::fabs(lo) / 1000.0);
    lo = std::isfinite(lo - half) ? lo - half : lo;
    hi = std::isfinite(hi + half) ? hi + half : hi;
  }
  std::vector<double> edges(static_cast<std::size_t>(bins) + 1);
  const double half_width = hi * 0.5 - lo * 0.5;
  for (int b = 0; b < bins; ++b) edges[static_cast<std::size_t>(b)] = 2.0 * (lo * 0.5 + half_width * b / bins);
  edges.back() = hi;
  return edges;
}

// Bin of a finite x in [edges.front(), edges.back()]: from the arithmetic,
// then moved so that edges[b] <= x < edges[b + 1] holds for the stored
// edges whatever the rounding (the last bin is closed).
std::size_t bin_of(double x, const std::vector<double>& edges) {
  const std::size_t bins = edges.size() - 1;
  const double lo = edges.front(), hi = edges.back();
  const double t = (x * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5) * static_cast<double>(bins);
  std::size_t b = static_cast<std::size_t>(std::clamp(std::floor(t), 0.0, static_cast<double>(bins - 1)));
  while (b + 1 < bins && x >= edges[b + 1]) ++b;
  while (b > 0 && x < edges[b]) --b;
  return b;
}

// Counts of `values` on `edges` (empty edges: nothing counted); non-finite
// values are left out.
ReportHistogram histogram(const std::vector<double>& values, const std::vector<double>& edges) {
  ReportHistogram h;
  h.edges = edges;
  if (!edges.empty()) h.counts.assign(edges.size() - 1, 0);
  for (const double v : values) {
    if (!std::isfinite(v) || edges.empty()) {
      if (!std::isfinite(v)) ++h.left_out;
      continue;
    }
    ++h.counts[bin_of(v, edges)];
  }
  return h;
}

// Edges over the finite values of `a` and `b` together; none: empty.
std::vector<double> common_edges(const std::vector<double>& a, const std::vector<double>& b, int bins) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto* values : {&a, &b}) {
    for (const double v : *values) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (lo > hi) return {};
  return histogram_edges(lo, hi, bins);
}

// ---- the other sections ------------------------------------------------------

ReportLength length_points(const std::vector<ReportPair>& pairs, int max_points) {
  ReportLength out;
  std::vector<std::size_t> eligible;  // pairs with both lengths
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].chosen_length >= 0 && pairs[i].rejected_length >= 0) eligible.push_back(i);
  }
  out.pairs_without_length = static_cast<std::int64_t>(pairs.size() - eligible.size());
  out.available = !eligible.empty();
  // The correlation over every sequence, in the order metrics.h takes them
  // (chosen, rejected, pair by pair), so it is bit for bit the same number.
  std::vector<double> rewards, lengths;
  for (const std::size_t i : eligible) {
    const ReportPair& p = pairs[i];
    const std::pair<double, std::int64_t> sides[] = {{p.chosen, p.chosen_length}, {p.rejected, p.rejected_length}};
    for (const auto& [reward, length] : sides) {
      if (!std::isfinite(reward)) continue;
      rewards.push_back(reward);
      lengths.push_back(static_cast<double>(length));
    }
  }
  out.sequences = static_cast<std::int64_t>(rewards.size());
  out.pearson = pearson_correlation(rewards, lengths);
  // The drawn subsample: evenly spaced pairs, both sides of each, so it is
  // deterministic and keeps the data's mix (a file sorted by subset keeps
  // every subset in proportion).
  const std::size_t m = eligible.size();
  const std::size_t k = std::min(m, static_cast<std::size_t>(max_points / 2));
  for (std::size_t j = 0; j < k; ++j) {
    const ReportPair& p = pairs[eligible[j * m / k]];
    if (std::isfinite(p.chosen)) {
      out.chosen.length.push_back(static_cast<double>(p.chosen_length));
      out.chosen.reward.push_back(p.chosen);
    }
    if (std::isfinite(p.rejected)) {
      out.rejected.length.push_back(static_cast<double>(p.rejected_length));
      out.rejected.reward.push_back(p.rejected);
    }
  }
  return out;
}

std::vector<ReportGroup> group_accuracy(const std::vector<ReportPair>& pairs) {
  const bool any = std::any_of(pairs.begin(), pairs.end(), [](const ReportPair& p) { return !p.group.empty(); });
  if (!any) return {};
  std::vector<ReportGroup> groups;
  std::map<std::string, std::size_t> index;
  for (const ReportPair& p : pairs) {
    const auto [it, added] = index.emplace(p.group, groups.size());
    if (added) groups.push_back(ReportGroup{p.group});
    ReportGroup& g = groups[it->second];
    ++g.pairs;
    if (p.chosen > p.rejected) ++g.correct;  // false for NaN: wrong, as metrics.h counts it
    if (p.chosen == p.rejected) ++g.ties;
  }
  for (ReportGroup& g : groups) g.accuracy = static_cast<double>(g.correct) / static_cast<double>(g.pairs);
  return groups;
}

// `text` cut to max_chars code points of valid UTF-8, never inside one.
ReportText shown_text(const std::string& text, int max_chars) {
  ReportText out;
  const std::string valid = detail::valid_utf8(text);
  std::size_t cut_at = valid.size();
  for (std::size_t i = 0; i < valid.size(); ++i) {
    if ((static_cast<unsigned char>(valid[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (out.total_chars == max_chars) cut_at = i;
    ++out.total_chars;
  }
  out.cut = out.total_chars > max_chars;
  out.text = out.cut ? valid.substr(0, cut_at) : valid;
  return out;
}

std::vector<ReportWorstPair> worst_pairs(const std::vector<ReportPair>& pairs, int count, int max_chars,
                                         std::int64_t& unranked) {
  std::vector<std::pair<double, std::size_t>> ranked;  // (rejected - chosen, index)
  unranked = 0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const double d = pairs[i].rejected - pairs[i].chosen;
    if (std::isnan(d)) {
      ++unranked;  // no order to place it in; the summary counts it as non-finite
    } else {
      ranked.emplace_back(d, i);
    }
  }
  const std::size_t k = std::min(ranked.size(), static_cast<std::size_t>(count));
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<ReportWorstPair> out;
  for (std::size_t r = 0; r < k; ++r) {
    const ReportPair& p = pairs[ranked[r].second];
    ReportWorstPair w;
    w.rank = static_cast<std::int64_t>(r + 1);
    w.index = static_cast<std::int64_t>(ranked[r].second);
    w.id = detail::valid_utf8(p.id);
    w.line = p.line;
    w.group = detail::valid_utf8(p.group);
    w.chosen = p.chosen;
    w.rejected = p.rejected;
    w.difference = ranked[r].first;
    w.prompt = shown_text(p.prompt_text, max_chars);
    w.chosen_text = shown_text(p.chosen_text, max_chars);
    w.rejected_text = shown_text(p.rejected_text, max_chars);
    out.push_back(std::move(w));
  }
  return out;
}

// Mean of the finite values in [begin, end); NaN when there are none.
double finite_mean(const std::vector<double>& v, std::size_t begin, std::size_t end) {
  double sum = 0.0;
  std::size_t n = 0;
  for (std::size_t i = begin; i < end && i < v.size(); ++i) {
    if (!std::isfinite(v[i])) continue;
    sum += v[i];
    ++n;
  }
  return n > 0 ? sum / static_cast<double>(n) : kNaN;
}

ReportCurves shown_curves(const TrainingCurves& curves, int max_points) {
  ReportCurves out;
  const std::size_t n = curves.step.size();
  out.step_lines = static_cast<std::int64_t>(n);
  out.shown.eval_step = curves.eval_step;
  out.shown.eval_loss = curves.eval_loss;
  out.shown.eval_accuracy = curves.eval_accuracy;
  const std::size_t bucket = n <= static_cast<std::size_t>(max_points)
                                 ? 1
                                 : (n + static_cast<std::size_t>(max_points) - 1) / static_cast<std::size_t>(max_points);
  out.steps_per_point = static_cast<std::int64_t>(bucket);
  for (std::size_t begin = 0; begin < n; begin += bucket) {
    const std::size_t end = std::min(n, begin + bucket);
    out.shown.step.push_back(curves.step[end - 1]);
    out.shown.loss.push_back(finite_mean(curves.loss, begin, end));
    out.shown.accuracy.push_back(finite_mean(curves.accuracy, begin, end));
    out.shown.lr.push_back(finite_mean(curves.lr, begin, end));
    out.shown.grad_norm.push_back(finite_mean(curves.grad_norm, begin, end));
  }
  return out;
}

Json histogram_json(const ReportHistogram& h) {
  return {{"edges", numbers(h.edges)}, {"counts", h.counts}, {"left_out", h.left_out}};
}

Json scatter_json(const ReportScatter& s) { return {{"length", numbers(s.length)}, {"reward", numbers(s.reward)}}; }

}  // namespace

void ReportInputs::validate() const {
  const auto in_range = [](const char* name, int value, int lo, int hi) {
    if (value < lo || value > hi) {
      throw Error(std::string("report: ") + name + " must be in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "], got " + std::to_string(value));
    }
  };
  in_range("worst_pairs", worst_pairs, 0, 1000);
  in_range("histogram_bins", histogram_bins, 1, 1000);
  in_range("max_scatter_points", max_scatter_points, 0, 1000000);
  in_range("max_curve_points", max_curve_points, 2, 1000000);
  in_range("max_text_chars", max_text_chars, 0, 100000000);
}

TrainingCurves read_training_curves(const std::string& path, bool missing_ok) {
  TrainingCurves curves;
  if (missing_ok && !path_exists(path)) return curves;
  JsonlReader reader(path);
  for (std::string line; reader.next(line);) {
    const nlohmann::json j = reader.parse(line);
    const std::string where = reader.location();
    if (!j.is_object()) throw Error(where + ": expected a JSON object, got " + std::string(j.type_name()));
    const auto step = j.find("step");
    if (step == j.end() || !step->is_number_integer()) {
      throw Error(where + ": expected an integer \"step\" (is this openrm-train's metrics.jsonl?)");
    }
    const auto eval = j.find("eval");
    if (eval != j.end()) {
      if (!eval->is_object()) throw Error(where + ": \"eval\" must be an object, got " + std::string(eval->type_name()));
      curves.eval_step.push_back(step->get<std::int64_t>());
      curves.eval_loss.push_back(optional_number(*eval, "loss", where + ": eval"));
      curves.eval_accuracy.push_back(optional_number(*eval, "accuracy", where + ": eval"));
      continue;
    }
    curves.step.push_back(step->get<std::int64_t>());
    curves.loss.push_back(optional_number(j, "loss", where));
    curves.accuracy.push_back(optional_number(j, "accuracy", where));
    curves.lr.push_back(optional_number(j, "lr", where));
    curves.grad_norm.push_back(optional_number(j, "grad_norm", where));
  }
  return curves;
}

ReportData compute_report_data(const ReportInputs& inputs) {
  inputs.validate();
  const std::vector<ReportPair>& pairs = inputs.pairs;
  if (!pairs.empty() && static_cast<std::int64_t>(pairs.size()) != inputs.metrics.pairs) {
    throw Error("report: the metrics are of " + std::to_string(inputs.metrics.pairs) + " pairs but " +
                std::to_string(pairs.size()) + " pairs were given");
  }
  ReportData data;
  data.pairs = static_cast<std::int64_t>(pairs.size());
  std::vector<double> chosen, rejected, margins;
  chosen.reserve(pairs.size());
  rejected.reserve(pairs.size());
  margins.reserve(pairs.size());
  for (const ReportPair& p : pairs) {
    chosen.push_back(p.chosen);
    rejected.push_back(p.rejected);
    margins.push_back(p.chosen - p.rejected);
  }
  const std::vector<double> reward_edges = common_edges(chosen, rejected, inputs.histogram_bins);
  data.reward_chosen = histogram(chosen, reward_edges);
  data.reward_rejected = histogram(rejected, reward_edges);
  data.margin = histogram(margins, common_edges(margins, {}, inputs.histogram_bins));
  data.calibration = inputs.metrics.calibration;
  data.ece = inputs.metrics.ece;
  data.length = length_points(pairs, inputs.max_scatter_points);
  data.groups = group_accuracy(pairs);
  if (inputs.curves) data.curves = shown_curves(*inputs.curves, inputs.max_curve_points);
  data.worst_pairs = worst_pairs(pairs, inputs.worst_pairs, inputs.max_text_chars, data.unranked_pairs);
  data.read = inputs.read;
  data.truncation = inputs.truncation;
  return data;
}

Json report_data_json(const ReportData& data) {
  Json j;
  j["pairs"] = data.pairs;
  j["reward_histogram"] = {{"edges", numbers(data.reward_chosen.edges)},
                           {"chosen", data.reward_chosen.counts},
                           {"rejected", data.reward_rejected.counts},
                           {"chosen_left_out", data.reward_chosen.left_out},
                           {"rejected_left_out", data.reward_rejected.left_out}};
  j["margin_histogram"] = histogram_json(data.margin);
  Json bins = Json::array();
  for (const CalibrationBin& b : data.calibration) {
    bins.push_back({{"lower", number(b.lower)},
                    {"upper", number(b.upper)},
                    {"count", b.count},
                    {"mean_predicted", number(b.mean_predicted)},
                    {"observed_frequency", number(b.observed_frequency)}});
  }
  j["calibration"] = {{"ece", number(data.ece)}, {"bins", std::move(bins)}};
  if (data.length.available) {
    const ReportLength& l = data.length;
    j["reward_vs_length"] = {{"pearson", number(l.pearson)},
                             {"sequences", l.sequences},
                             {"pairs_without_length", l.pairs_without_length},
                             {"chosen", scatter_json(l.chosen)},
                             {"rejected", scatter_json(l.rejected)}};
  } else {
    j["reward_vs_length"] = nullptr;
  }
  Json groups = Json::array();
  for (const ReportGroup& g : data.groups) {
    groups.push_back({{"group", detail::valid_utf8(g.name)},
                      {"pairs", g.pairs},
                      {"correct", g.correct},
                      {"ties", g.ties},
                      {"accuracy", number(g.accuracy)}});
  }
  j["groups"] = std::move(groups);
  if (data.curves) {
    const TrainingCurves& c = data.curves->shown;
    j["training"] = {{"step_lines", data.curves->step_lines},
                     {"steps_per_point", data.curves->steps_per_point},
                     {"step", c.step},
                     {"loss", numbers(c.loss)},
                     {"accuracy", numbers(c.accuracy)},
                     {"lr", numbers(c.lr)},
                     {"grad_norm", numbers(c.grad_norm)},
                     {"eval", {{"step", c.eval_step},
                               {"loss", numbers(c.eval_loss)},
                               {"accuracy", numbers(c.eval_accuracy)}}}};
  } else {
    j["training"] = nullptr;
  }
  Json worst = Json::array();
  for (const ReportWorstPair& w : data.worst_pairs) {
    worst.push_back({{"rank", w.rank},
                     {"index", w.index},
                     {"id", w.id},
                     {"line", w.line},
                     {"group", w.group},
                     {"chosen", number(w.chosen)},
                     {"rejected", number(w.rejected)},
                     {"difference", number(w.difference)}});
  }
  j["worst_pairs"] = std::move(worst);
  j["unranked_pairs"] = data.unranked_pairs;
  j["truncation"] = data.truncation ? truncation_stats_json(*data.truncation) : Json(nullptr);
  j["read"] = data.read ? read_stats_json(*data.read) : Json(nullptr);
  return j;
}

void write_html_report(const std::string& path, const ReportInputs& inputs) {
  const ReportData data = compute_report_data(inputs);
  const std::string page = render_html_report(inputs, data);
  OutputFile out(path);
  out.write(page);
  out.commit();
}

void write_html_report(const std::string& path, const std::vector<ReportInputs>& models,
                       const std::vector<ReportTable>& shared, const std::string& title) {
  if (models.empty()) throw Error("report: no model to report on");
  if (models.size() == 1) {
    ReportInputs one = models[0];
    one.tables.insert(one.tables.end(), shared.begin(), shared.end());
    write_html_report(path, one);
    return;
  }
  std::vector<ReportData> data;
  for (const auto& m : models) data.push_back(compute_report_data(m));
  const std::string page = render_html_comparison_report(title, shared, models, data);
  OutputFile out(path);
  out.write(page);
  out.commit();
}

}  // namespace openrm
