// Inline SVG plots for the HTML report (see svg_plot.h).
#include "eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "openrm/data/jsonl.h"

namespace openrm::detail {
namespace {

// Pixel coordinates with one decimal: enough for a crisp plot, small files.
std::string pixel(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", value);
  return buf;
}

bool finite(double a, double b) { return std::isfinite(a) && std::isfinite(b); }

// A tick label with as many decimals as the tick step needs, so that 0.2,
// 0.4, 0.6 do not read 0.2, 0.4, 0.6000000001; %g for very small or large
// steps (learning rates).
std::string tick_label(double value, double step) {
  if (value == 0.0) return "0";
  char buf[32];
  const double magnitude = std::max(std::fabs(value), std::fabs(step));
  if (step >= 1e-3 && magnitude < 1e6) {
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", value);
  }
  return buf;
}

double nice_step(double span, int target) {
  const double raw = span / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalised = raw / magnitude;
  const double factor = normalised < 1.5 ? 1.0 : normalised < 3.0 ? 2.0 : normalised < 7.0 ? 5.0 : 10.0;
  return factor * magnitude;
}

// Ticks at multiples of `step` in [lo, hi] (at most 50, so a degenerate
// step cannot make a huge page).
std::vector<double> ticks_between(double lo, double hi, double step) {
  std::vector<double> ticks;
  if (!(step > 0) || !std::isfinite(step) || step <= std::fabs(lo) * 1e-12) return {lo, hi};
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; i <= 50; ++i) {
    double t = (first + i) * step;
    if (t > hi + step * 1e-9) break;
    if (std::fabs(t) < step * 1e-9) t = 0.0;  // -0 and 1e-17 read "0"
    ticks.push_back(t);
  }
  return ticks;
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const std::size_t bad = find_invalid_utf8(text);
    if (bad == std::string_view::npos) {
      out.append(text);
      break;
    }
    out.append(text.substr(0, bad));
    out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
    text.remove_prefix(bad + 1);
  }
  return out;
}

std::string html_escape(std::string_view text) {
  const std::string valid = valid_utf8(text);
  std::string out;
  out.reserve(valid.size() + valid.size() / 8);
  for (const char c : valid) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      // NUL is a parse error in HTML; the browser would show U+FFFD anyway.
      case '\0': out += "\xEF\xBF\xBD"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_number(double value, int significant) {
  if (!std::isfinite(value)) return "n/a";
  if (value == 0.0) return "0";  // not "-0"
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", significant, value);
  return buf;
}

Axis nice_axis(double lo, double hi, int target) {
  if (!finite(lo, hi)) lo = 0.0, hi = 1.0;
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    // All values equal: a range around the value that keeps it visible.
    const double half = std::max(0.5, std::fabs(lo) * 0.05);
    const double below = lo - half, above = hi + half;
    lo = std::isfinite(below) ? below : lo;
    hi = std::isfinite(above) ? above : hi;
  }
  const double span = hi - lo;
  if (!std::isfinite(span)) return Axis{lo, hi, {lo, hi}};  // near the double range: no nice ticks
  const double step = nice_step(span, target);
  Axis axis;
  axis.lo = std::floor(lo / step) * step;
  axis.hi = std::ceil(hi / step) * step;
  if (!finite(axis.lo, axis.hi) || !(axis.lo < axis.hi)) return Axis{lo, hi, {lo, hi}};
  axis.ticks = ticks_between(axis.lo, axis.hi, step);
  return axis;
}

Axis fixed_axis(double lo, double hi, int target) {
  Axis axis{lo, hi, {}};
  axis.ticks = ticks_between(lo, hi, nice_step(hi - lo, target));
  return axis;
}

SvgPlot::SvgPlot(std::string id, std::string title, int width, int height)
    : id_(std::move(id)), title_(std::move(title)), width_(width), height_(height) {}

void SvgPlot::set_margins(int left, int right, int top, int bottom) {
  left_ = left, right_ = right, top_ = top, bottom_ = bottom;
}

void SvgPlot::set_axes(Axis x, Axis y, std::string x_label, std::string y_label) {
  x_ = std::move(x);
  y_ = std::move(y);
  x_label_ = std::move(x_label);
  y_label_ = std::move(y_label);
  has_axes_ = true;
}

void SvgPlot::set_y_categories(std::vector<std::pair<double, std::string>> labels) {
  y_categories_ = std::move(labels);
}

double SvgPlot::px(double x) const {
  const double w = width_ - left_ - right_;
  if (!(x_.hi > x_.lo)) return left_ + w / 2;
  // Halves keep the differences finite for data near the double range.
  return left_ + (x * 0.5 - x_.lo * 0.5) / (x_.hi * 0.5 - x_.lo * 0.5) * w;
}

double SvgPlot::py(double y) const {
  const double h = height_ - top_ - bottom_;
  if (!(y_.hi > y_.lo)) return top_ + h / 2;
  return top_ + h - (y * 0.5 - y_.lo * 0.5) / (y_.hi * 0.5 - y_.lo * 0.5) * h;
}

void SvgPlot::rect(double x0, double y0, double x1, double y1, const std::string& css, const std::string& tooltip) {
  const double a = px(x0), b = px(x1), c = py(y0), d = py(y1);
  if (!finite(a, b) || !finite(c, d)) return;
  body_ += "<rect class=\"" + css + "\" x=\"" + pixel(std::min(a, b)) + "\" y=\"" + pixel(std::min(c, d)) +
           "\" width=\"" + pixel(std::fabs(b - a)) + "\" height=\"" + pixel(std::fabs(d - c)) + "\">";
  if (!tooltip.empty()) body_ += "<title>" + html_escape(tooltip) + "</title>";
  body_ += "</rect>\n";
}

void SvgPlot::line(double x0, double y0, double x1, double y1, const std::string& css) {
  const double a = px(x0), b = px(x1), c = py(y0), d = py(y1);
  if (!finite(a, b) || !finite(c, d)) return;
  body_ += "<line class=\"" + css + "\" x1=\"" + pixel(a) + "\" y1=\"" + pixel(c) + "\" x2=\"" + pixel(b) +
           "\" y2=\"" + pixel(d) + "\"/>\n";
}

void SvgPlot::circle(double x, double y, double radius_px, const std::string& css, const std::string& tooltip) {
  const double a = px(x), b = py(y);
  if (!finite(a, b)) return;
  body_ += "<circle class=\"" + css + "\" cx=\"" + pixel(a) + "\" cy=\"" + pixel(b) + "\" r=\"" +
           pixel(radius_px) + "\">";
  if (!tooltip.empty()) body_ += "<title>" + html_escape(tooltip) + "</title>";
  body_ += "</circle>\n";
}

void SvgPlot::polyline(const std::vector<double>& x, const std::vector<double>& y, const std::string& css) {
  std::vector<std::pair<double, double>> segment;  // pixels
  const auto flush = [&] {
    if (segment.size() == 1) {
      // A lone point between NaNs would be invisible as a line: a dot.
      body_ += "<circle class=\"" + css + "-dot\" cx=\"" + pixel(segment[0].first) + "\" cy=\"" +
               pixel(segment[0].second) + "\" r=\"2\"/>\n";
    } else if (segment.size() > 1) {
      body_ += "<polyline class=\"" + css + "\" points=\"";
      for (const auto& [a, b] : segment) body_ += pixel(a) + "," + pixel(b) + " ";
      body_ += "\"/>\n";
    }
    segment.clear();
  };
  for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    const double a = px(x[i]), b = py(y[i]);
    if (finite(a, b)) {
      segment.emplace_back(a, b);
    } else {
      flush();
    }
  }
  flush();
}

void SvgPlot::legend(const std::vector<std::pair<std::string, std::string>>& entries) { legend_ = entries; }

void SvgPlot::message(const std::string& text) {
  body_ += "<text class=\"plot-message\" x=\"" + pixel((left_ + width_ - right_) / 2.0) + "\" y=\"" +
           pixel((top_ + height_ - bottom_) / 2.0) + "\" text-anchor=\"middle\">" + html_escape(text) +
           "</text>\n";
}

std::string SvgPlot::str() const {
  const std::string w = std::to_string(width_), h = std::to_string(height_);
  const double plot_w = width_ - left_ - right_, plot_h = height_ - top_ - bottom_;
  std::string out = "<svg id=\"" + id_ + "\" class=\"plot\" width=\"" + w + "\" height=\"" + h +
                    "\" viewBox=\"0 0 " + w + " " + h + "\" role=\"img\" aria-label=\"" + html_escape(title_) +
                    "\">\n";
  out += "<title>" + html_escape(title_) + "</title>\n";
  out += "<text class=\"plot-title\" x=\"" + pixel(width_ / 2.0) + "\" y=\"20\" text-anchor=\"middle\">" +
         html_escape(title_) + "</text>\n";
  out += "<rect class=\"plot-area\" x=\"" + std::to_string(left_) + "\" y=\"" + std::to_string(top_) +
         "\" width=\"" + pixel(plot_w) + "\" height=\"" + pixel(plot_h) + "\"/>\n";
  if (has_axes_) {
    const double y_step = y_.ticks.size() > 1 ? y_.ticks[1] - y_.ticks[0] : 1.0;
    const double x_step = x_.ticks.size() > 1 ? x_.ticks[1] - x_.ticks[0] : 1.0;
    if (y_categories_.empty()) {
      for (const double t : y_.ticks) {
        const std::string y = pixel(py(t));
        out += "<line class=\"grid\" x1=\"" + std::to_string(left_) + "\" x2=\"" + pixel(left_ + plot_w) +
               "\" y1=\"" + y + "\" y2=\"" + y + "\"/>\n";
        out += "<text class=\"tick\" x=\"" + std::to_string(left_ - 6) + "\" y=\"" + y +
               "\" dy=\"0.32em\" text-anchor=\"end\">" + tick_label(t, y_step) + "</text>\n";
      }
    }
    for (const auto& [value, label] : y_categories_) {
      out += "<text class=\"tick\" x=\"" + std::to_string(left_ - 6) + "\" y=\"" + pixel(py(value)) +
             "\" dy=\"0.32em\" text-anchor=\"end\">" + html_escape(label) + "</text>\n";
    }
    for (const double t : x_.ticks) {
      const std::string x = pixel(px(t));
      out += "<line class=\"grid\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + std::to_string(top_) + "\" y2=\"" +
             pixel(top_ + plot_h) + "\"/>\n";
      out += "<text class=\"tick\" x=\"" + x + "\" y=\"" + pixel(top_ + plot_h + 16) +
             "\" text-anchor=\"middle\">" + tick_label(t, x_step) + "</text>\n";
    }
    out += "<text class=\"axis-label\" x=\"" + pixel(left_ + plot_w / 2) + "\" y=\"" +
           std::to_string(height_ - 10) + "\" text-anchor=\"middle\">" + html_escape(x_label_) + "</text>\n";
    out += "<text class=\"axis-label\" transform=\"rotate(-90)\" x=\"" + pixel(-(top_ + plot_h / 2)) +
           "\" y=\"14\" text-anchor=\"middle\">" + html_escape(y_label_) + "</text>\n";
  }
  out += body_;
  // The legend sits in the top margin under the title, one row, so it never
  // hides data.
  double x = left_;
  for (const auto& [css, label] : legend_) {
    out += "<rect class=\"" + css + " legend-key\" x=\"" + pixel(x) + "\" y=\"29\" width=\"12\" height=\"10\"/>";
    out += "<text class=\"legend\" x=\"" + pixel(x + 16) + "\" y=\"38\">" + html_escape(label) + "</text>\n";
    x += 28 + 7.0 * static_cast<double>(label.size());
  }
  out += "</svg>\n";
  return out;
}

}  // namespace openrm::detail
