#include "bench/report.hpp"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bench/svg.hpp"

namespace troupe::bench {

namespace json = boost::json;

namespace {

double num(const json::value& v, std::string_view path) {
  const json::value* cur = &v;
  std::string_view rest = path;
  while (!rest.empty()) {
    auto dot = rest.find('.');
    auto key = rest.substr(0, dot);
    const auto* o = cur->if_object();
    cur = o ? o->if_contains(key) : nullptr;
    if (!cur)
      return std::nan("");
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
  }
  return cur->is_number() ? cur->to_number<double>() : std::nan("");
}

std::string str(const json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  const auto* s = o ? o->if_contains(key) : nullptr;
  return s && s->is_string() ? std::string(s->as_string()) : std::string();
}

const json::array& points_of(const RunData& r) {
  static const json::array empty;
  const auto* p = r.results.as_object().if_contains("points");
  return p && p->is_array() ? p->as_array() : empty;
}

double load_of(const json::value& p) {
  return str(p, "mode") == "rate" ? num(p, "rate") : num(p, "concurrency");
}

// A point's series key within its run: its scenario, and its tool set in a tools sweep.
std::string series_key(const json::value& p) {
  const std::string tools = str(p, "tools");
  return str(p, "scenario") + (tools.empty() ? "" : " tools=" + tools);
}

// The colour of run `r`'s series `key`, the same in every chart: three palette slots per run,
// one per series key in sorted order.
int series_color(const std::vector<RunData>& runs, std::size_t r, const std::string& key) {
  std::set<std::string> keys;
  for (const auto& p : points_of(runs[r]))
    keys.insert(series_key(p));
  const auto k = std::distance(keys.begin(), keys.find(key));
  return static_cast<int>(r * 3) + static_cast<int>(k);
}

// One series per (run, scenario) with (x, y) from each point; `dash` for a second metric.
void add_series(Chart& chart, const std::vector<RunData>& runs, std::string_view x_path,
                std::string_view y_path, double y_scale, const std::string& suffix, int dash) {
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::map<std::string, Series> by_scenario;
    for (const auto& p : points_of(runs[r])) {
      auto& s = by_scenario[series_key(p)];
      double x = x_path == "load" ? load_of(p) : num(p, x_path);
      s.points.emplace_back(x, num(p, y_path) * y_scale);
    }
    for (auto& [scenario, s] : by_scenario) {
      s.name = runs[r].label;
      if (by_scenario.size() > 1)
        s.name += " " + scenario;
      s.name += suffix;
      s.color = series_color(runs, r, scenario);
      s.dash = dash;
      std::sort(s.points.begin(), s.points.end());
      chart.series.push_back(std::move(s));
    }
  }
}

// One curve per point: the run's colour (as in the other charts), and the points of one run
// told apart by line pattern, in the order of their load.
Chart cdf_chart(const std::vector<RunData>& runs, const std::string& metric,
                const std::string& title) {
  Chart c{title, metric + " (ms)", "fraction of requests", {}};
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::map<std::string, int> next_dash;  // per series key
    for (const auto& p : points_of(runs[r])) {
      const auto* cdf = p.as_object().if_contains("cdf");
      const auto* q = cdf ? cdf->as_object().if_contains(metric + "_s") : nullptr;
      if (!q || !q->is_array() || q->as_array().empty())
        continue;
      const std::string key = series_key(p);
      Series s{
          runs[r].label + " " + str(p, "label"), {}, series_color(runs, r, key), next_dash[key]++};
      const auto& a = q->as_array();
      for (std::size_t k = 0; k < a.size(); ++k) {
        s.points.emplace_back(a[k].to_number<double>() * 1e3,
                              static_cast<double>(k) / static_cast<double>(a.size() - 1));
      }
      c.series.push_back(std::move(s));
    }
  }
  return c;
}

std::string load_label(const std::vector<RunData>& runs) {
  for (const auto& r : runs) {
    for (const auto& p : points_of(r)) {
      if (str(p, "mode") == "rate")
        return "request rate (req/s)";
    }
  }
  return "concurrency";
}

std::vector<Chart> charts(const std::vector<RunData>& runs) {
  std::vector<Chart> out;
  std::string load = load_label(runs);
  Chart tput{"Output throughput vs load", load, "output tokens/s", {}};
  add_series(tput, runs, "load", "output_tokens_per_s", 1, "", 0);
  Chart ttft{"TTFT vs throughput", "output tokens/s", "TTFT (ms)", {}};
  add_series(ttft, runs, "output_tokens_per_s", "ttft_s.p50", 1e3, " p50", 0);
  add_series(ttft, runs, "output_tokens_per_s", "ttft_s.p99", 1e3, " p99", 1);
  Chart tpot{"TPOT vs throughput", "output tokens/s", "TPOT (ms)", {}};
  add_series(tpot, runs, "output_tokens_per_s", "tpot_s.p50", 1e3, " p50", 0);
  add_series(tpot, runs, "output_tokens_per_s", "tpot_s.p99", 1e3, " p99", 1);
  Chart e2e{"End-to-end latency vs requests/s", "requests/s", "E2E (s)", {}};
  add_series(e2e, runs, "requests_per_s", "e2e_s.p90", 1, " p90", 0);
  add_series(e2e, runs, "requests_per_s", "e2e_s.p99", 1, " p99", 1);
  Chart err{"Error rate vs load", load, "error rate (%)", {}};
  err.y_at_least = 100;  // a percentage, shown as one even when nothing failed
  add_series(err, runs, "load", "error_rate", 100, "", 0);
  out = {tput,
         ttft,
         tpot,
         e2e,
         err,
         cdf_chart(runs, "ttft", "TTFT distribution (CDF)"),
         cdf_chart(runs, "e2e", "End-to-end latency distribution (CDF)")};
  return out;
}

std::string run_table(const RunData& r) {
  std::string o = fmt::format(
      "<h2>{}</h2>\n<p>model <code>{}</code>, {} at <code>{}</code>, started {}</p>\n"
      "<table><tr><th>point</th><th>requests</th><th>errors</th><th>req/s</th><th>out tok/s</th>"
      "<th>TTFT p50/p99 ms</th><th>TPOT p50/p99 ms</th><th>E2E p50/p99 s</th><th>goodput "
      "req/s</th></tr>\n",
      html_escape(r.label), html_escape(str(r.results, "model")),
      html_escape(str(r.results, "tool")),
      html_escape(str(r.results.as_object().at("config"), "base_url")),
      html_escape(str(r.results, "started_at")));
  for (const auto& p : points_of(r)) {
    fmt::format_to(std::back_inserter(o),
                   "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.1f}</td>"
                   "<td>{:.1f} / {:.1f}</td><td>{:.2f} / {:.2f}</td><td>{:.2f} / {:.2f}</td>"
                   "<td>{:.2f}</td></tr>\n",
                   html_escape(str(p, "label")), num(p, "requests"), num(p, "failed"),
                   num(p, "requests_per_s"), num(p, "output_tokens_per_s"),
                   1e3 * num(p, "ttft_s.p50"), 1e3 * num(p, "ttft_s.p99"),
                   1e3 * num(p, "tpot_s.p50"), 1e3 * num(p, "tpot_s.p99"), num(p, "e2e_s.p50"),
                   num(p, "e2e_s.p99"), num(p, "goodput.requests_per_s"));
  }
  return o + "</table>\n";
}

}  // namespace

Result<RunData> load_run(const std::string& dir) {
  auto path = std::filesystem::path(dir) / "results.json";
  std::ifstream in(path);
  if (!in)
    return Error{Errc::invalid_request, "no results.json in " + dir};
  std::stringstream ss;
  ss << in.rdbuf();
  json::error_code ec;
  auto v = json::parse(ss.str(), ec);
  if (ec || !v.is_object() || !v.as_object().contains("points") ||
      !v.as_object().contains("config")) {
    return Error{Errc::invalid_request, path.string() + " is not a troupe bench results file"};
  }
  auto name = std::filesystem::path(dir).lexically_normal().filename().string();
  if (name.empty())
    name = std::filesystem::path(dir).lexically_normal().parent_path().filename();
  return RunData{name, std::move(v)};
}

std::string render_report(const std::vector<RunData>& runs) {
  std::string o =
      "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>troupe bench report</title>\n"
      "<style>body{font-family:sans-serif;margin:2em;color:#222}"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
      "text-align:right}th{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:12px}"
      "</style></head><body>\n<h1>troupe bench report</h1>\n<div class='plots'>\n";
  for (const auto& c : charts(runs))
    o += "<div class='plot'>" + render_svg(c) + "</div>\n";
  o += "</div>\n";
  for (const auto& r : runs)
    o += run_table(r);
  o += "</body></html>\n";
  return o;
}

Result<void> write_report(const std::vector<std::string>& dirs, const std::string& out_path) {
  std::vector<RunData> runs;
  for (const auto& d : dirs) {
    auto r = load_run(d);
    if (!r)
      return r.error();
    runs.push_back(std::move(r.value()));
  }
  std::ofstream out(out_path, std::ios::binary);
  out << render_report(runs);
  if (!out)
    return Error{Errc::internal, "cannot write " + out_path};
  return {};
}

}  // namespace troupe::bench
