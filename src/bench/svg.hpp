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
  int dash = 0;                                   // line pattern: 0 solid, then 5 distinct ones
};

struct Chart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  // The value axis' least upper end, e.g. 100 for a percentage, so that all-zero series still
  // show the axis in its unit (0 when the data alone decide).
  double y_at_least = 0;
};

// The stroke-dasharray of line pattern `dash` ("" for solid); patterns repeat after 6.
std::string dash_pattern(int dash);

// An <svg> element with axes, ticks, a legend and one polyline (plus markers) per series.
std::string render_svg(const Chart& chart);

// Escapes &, <, >, " for HTML/SVG text.
std::string html_escape(const std::string& s);

}  // namespace troupe::bench
