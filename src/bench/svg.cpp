#include "bench/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace troupe::bench {

namespace {

constexpr double kW = 640, kH = 400, kLeft = 70, kRight = 170, kTop = 36, kBottom = 52;
constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

struct Range {
  double lo = 0, hi = 1;
};

// A "nice" step (1, 2 or 5 x 10^k) giving about `ticks` intervals over the range.
double nice_step(double span, int ticks) {
  double raw = span / ticks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

Range axis_range(const Chart& c, bool x) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : c.series) {
    for (auto [px, py] : s.points) {
      double v = x ? px : py;
      if (!std::isfinite(v))
        continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!x && c.y_at_least > 0) {
    lo = std::isfinite(lo) ? lo : 0;
    hi = std::max(std::isfinite(hi) ? hi : 0, c.y_at_least);
  }
  if (!std::isfinite(lo))
    return {};
  lo = std::min(lo, 0.0);  // throughput and latency axes start at zero
  if (hi <= lo)
    hi = lo + 1;
  double step = nice_step(hi - lo, 5);
  return {std::floor(lo / step) * step, std::ceil(hi / step) * step};
}

std::string fmt_tick(double v) {
  if (v == 0)
    return "0";
  double a = std::abs(v);
  if (a >= 1e5 || a < 1e-3)
    return fmt::format("{:.1e}", v);
  return fmt::format("{:.4g}", v);
}

void draw_axes(std::string& o, const Chart& c, Range xr, Range yr) {
  double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  fmt::format_to(std::back_inserter(o),
                 "<rect x='{}' y='{}' width='{}' height='{}' fill='#fff' stroke='#999'/>\n", kLeft,
                 kTop, pw, ph);
  for (int axis = 0; axis < 2; ++axis) {
    Range r = axis == 0 ? xr : yr;
    double step = nice_step(r.hi - r.lo, 5);
    for (double v = r.lo; v <= r.hi + step * 1e-9; v += step) {
      double f = (v - r.lo) / (r.hi - r.lo);
      if (axis == 0) {
        double x = kLeft + f * pw;
        fmt::format_to(std::back_inserter(o),
                       "<line x1='{0:.1f}' y1='{1}' x2='{0:.1f}' y2='{2}' stroke='#eee'/>"
                       "<text x='{0:.1f}' y='{3}' text-anchor='middle'>{4}</text>\n",
                       x, kTop, kTop + ph, kTop + ph + 16, fmt_tick(v));
      } else {
        double y = kTop + ph - f * ph;
        fmt::format_to(std::back_inserter(o),
                       "<line x1='{0}' y1='{1:.1f}' x2='{2}' y2='{1:.1f}' stroke='#eee'/>"
                       "<text x='{3}' y='{4:.1f}' text-anchor='end'>{5}</text>\n",
                       kLeft, y, kLeft + pw, kLeft - 6, y + 4, fmt_tick(v));
      }
    }
  }
  fmt::format_to(std::back_inserter(o),
                 "<text x='{}' y='20' text-anchor='middle' font-weight='bold'>{}</text>\n"
                 "<text x='{}' y='{}' text-anchor='middle'>{}</text>\n"
                 "<text transform='translate(16,{}) rotate(-90)' text-anchor='middle'>{}</text>\n",
                 kLeft + pw / 2, html_escape(c.title), kLeft + pw / 2, kH - 12,
                 html_escape(c.x_label), kTop + ph / 2, html_escape(c.y_label));
}

void draw_series(std::string& o, const Series& s, std::size_t i, Range xr, Range yr) {
  double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  const char* color = kPalette[static_cast<std::size_t>(s.color) % std::size(kPalette)];
  std::string pts;
  for (auto [x, y] : s.points) {
    if (!std::isfinite(x) || !std::isfinite(y))
      continue;
    double px = kLeft + (x - xr.lo) / (xr.hi - xr.lo) * pw;
    double py = kTop + ph - (y - yr.lo) / (yr.hi - yr.lo) * ph;
    fmt::format_to(std::back_inserter(pts), "{:.1f},{:.1f} ", px, py);
    if (s.points.size() <= 40) {
      fmt::format_to(std::back_inserter(o), "<circle cx='{:.1f}' cy='{:.1f}' r='3' fill='{}'/>", px,
                     py, color);
    }
  }
  const std::string dash =
      s.dash == 0 ? "" : fmt::format("stroke-dasharray='{}'", dash_pattern(s.dash));
  fmt::format_to(std::back_inserter(o),
                 "<polyline fill='none' stroke='{}' stroke-width='2' {} points='{}'/>\n", color,
                 dash, pts);
  double ly = kTop + 8 + static_cast<double>(i) * 16;
  fmt::format_to(std::back_inserter(o),
                 "<line x1='{0}' y1='{1}' x2='{2}' y2='{1}' stroke='{3}' stroke-width='2' {4}/>"
                 "<text x='{5}' y='{6}'>{7}</text>\n",
                 kW - kRight + 10, ly, kW - kRight + 30, color, dash, kW - kRight + 34, ly + 4,
                 html_escape(s.name));
}

}  // namespace

std::string dash_pattern(int dash) {
  constexpr const char* kPatterns[] = {"", "6,4", "2,3", "10,3,2,3", "12,6", "2,3,2,3,8,3"};
  return kPatterns[static_cast<std::size_t>(dash) % std::size(kPatterns)];
}

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string render_svg(const Chart& c) {
  std::string o = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' viewBox='0 0 {} {}' "
      "font-family='sans-serif' font-size='11'>\n",
      kW, kH, kW, kH);
  Range xr = axis_range(c, true), yr = axis_range(c, false);
  draw_axes(o, c, xr, yr);
  for (std::size_t i = 0; i < c.series.size(); ++i)
    draw_series(o, c.series[i], i, xr, yr);
  o += "</svg>\n";
  return o;
}

}  // namespace troupe::bench
