// Inline SVG plots for the HTML report (internal): linear axes with "nice"
// ticks, a title, axis labels, a legend, and primitives placed in data
// coordinates. Colours and strokes come from CSS classes the page's
// stylesheet defines, so the markup stays small and one place sets the look.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace openrm::detail {

// `text` with invalid UTF-8 bytes replaced by U+FFFD: the page declares
// UTF-8, and JSON writers throw on anything else.
std::string valid_utf8(std::string_view text);
// valid_utf8(text) with & < > " ' written as entities: safe in element
// content and in quoted attribute values.
std::string html_escape(std::string_view text);
// A number for people: `significant` digits, "n/a" when not finite.
std::string format_number(double value, int significant = 4);

struct Axis {
  double lo = 0.0;  // the drawn range
  double hi = 1.0;
  std::vector<double> ticks;  // inside [lo, hi]
};
// An axis covering [lo, hi] with about `target` ticks at multiples of 1, 2
// or 5 times a power of ten, the range widened to the outer ticks. A zero
// or non-finite width gets a unit range around the value.
Axis nice_axis(double lo, double hi, int target = 5);
// An axis with exactly this range and nice ticks inside it (probabilities).
Axis fixed_axis(double lo, double hi, int target = 5);

class SvgPlot {
 public:
  // `id` names the <svg> for the browser test and in-page links; every plot
  // has class "plot". Sizes in pixels (the viewBox scales with the page).
  SvgPlot(std::string id, std::string title, int width = 640, int height = 340);

  // Plot-area margins: left leaves room for tick labels (wider for long
  // category names).
  void set_margins(int left, int right, int top, int bottom);
  void set_axes(Axis x, Axis y, std::string x_label, std::string y_label);
  // Category labels on the y axis instead of numeric ticks (bar charts).
  void set_y_categories(std::vector<std::pair<double, std::string>> labels);

  double px(double x) const;  // data -> pixel
  double py(double y) const;

  // Primitives in data coordinates; `css` is the class, `tooltip` (escaped
  // here) becomes an SVG <title> the browser shows on hover.
  void rect(double x0, double y0, double x1, double y1, const std::string& css,
            const std::string& tooltip = "");
  void line(double x0, double y0, double x1, double y1, const std::string& css);
  void circle(double x, double y, double radius_px, const std::string& css, const std::string& tooltip = "");
  // A polyline through the finite points, broken where a value is NaN.
  void polyline(const std::vector<double>& x, const std::vector<double>& y, const std::string& css);
  void legend(const std::vector<std::pair<std::string, std::string>>& entries);  // (css, label)
  // A centred note in the plot area ("no finite rewards").
  void message(const std::string& text);

  std::string str() const;

 private:
  std::string id_, title_;
  int width_, height_;
  int left_ = 64, right_ = 20, top_ = 40, bottom_ = 50;
  Axis x_, y_;
  std::string x_label_, y_label_;
  bool has_axes_ = false;
  std::vector<std::pair<double, std::string>> y_categories_;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> legend_;
};

}  // namespace openrm::detail
