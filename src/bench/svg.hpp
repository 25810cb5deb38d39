#pragma once
// Line charts as inline SVG, for the self-contained HTML report (no JavaScript, no CDN).
//
// Thread-safety: pure functions.

#include <string>
#include <vector>

namespace troupe::bench {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in the given order
  int color = 0;                                  // index into a fixed palette
  bool dashed = false;
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
};

// An <svg> element with axes, ticks, a legend and one polyline (plus markers) per series.
std::string render_svg(const Chart& chart);

// Escapes &, <, >, " for HTML/SVG text.
std::string html_escape(const std::string& s);

}  // namespace troupe::bench
