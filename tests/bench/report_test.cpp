// The HTML report's charts: one colour per run (and series) in every chart, curves of one run
// in the CDF charts told apart, the error-rate axis in percent.

#include "bench/report.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace troupe::bench {
namespace {

namespace json = boost::json;

json::value point(int concurrency, double error_rate) {
  json::array cdf;
  for (int i = 0; i <= 10; ++i)
    cdf.push_back(0.01 * i * concurrency);
  return json::object{
      {"label", "D(8,4) c=" + std::to_string(concurrency)},
      {"scenario", "D(8,4)"},
      {"tools", ""},
      {"mode", "concurrency"},
      {"concurrency", concurrency},
      {"output_tokens_per_s", 10.0 * concurrency},
      {"requests_per_s", 1.0 * concurrency},
      {"error_rate", error_rate},
      {"ttft_s", {{"p50", 0.01}, {"p99", 0.02}}},
      {"tpot_s", {{"p50", 0.01}, {"p99", 0.02}}},
      {"e2e_s", {{"p90", 0.1}, {"p99", 0.2}}},
      {"cdf", {{"ttft_s", cdf}, {"e2e_s", cdf}}},
  };
}

RunData run(const std::string& label, double error_rate) {
  return RunData{label,
                 json::object{{"config", json::object{{"base_url", "http://x"}}},
                              {"points", json::array{point(1, error_rate), point(2, error_rate),
                                                     point(4, error_rate)}}}};
}

struct Legend {
  std::string color, dash, name;
};

// The legend entries of each <svg> in the page, in order.
std::vector<std::vector<Legend>> legends(const std::string& page) {
  std::vector<std::vector<Legend>> out;
  static const std::regex kEntry(
      R"(<line x1='[^']*' y1='[^']*' x2='[^']*' y2='[^']*' stroke='([^']*)' stroke-width='2' ?(stroke-dasharray='[^']*')?/><text x='[^']*' y='[^']*'>([^<]*)</text>)");
  for (auto at = page.find("<svg"); at != std::string::npos; at = page.find("<svg", at + 1)) {
    const auto end = page.find("</svg>", at);
    const std::string svg = page.substr(at, end - at);
    out.emplace_back();
    for (std::sregex_iterator it(svg.begin(), svg.end(), kEntry), e; it != e; ++it)
      out.back().push_back({(*it)[1].str(), (*it)[2].str(), (*it)[3].str()});
  }
  return out;
}

TEST(Report, ARunKeepsItsColourAndItsCdfCurvesDiffer) {
  const std::string page = render_report({run("a", 0), run("b", 0)});
  const auto charts = legends(page);
  ASSERT_EQ(charts.size(), 7u);  // throughput, TTFT, TPOT, E2E, errors, two CDFs
  // Throughput: one series per run.
  ASSERT_EQ(charts[0].size(), 2u);
  const std::map<std::string, std::string> colour = {{"a", charts[0][0].color},
                                                     {"b", charts[0][1].color}};
  EXPECT_NE(colour.at("a"), colour.at("b"));
  for (std::size_t c = 5; c < 7; ++c) {
    ASSERT_EQ(charts[c].size(), 6u) << c;  // 2 runs x 3 points
    std::set<std::pair<std::string, std::string>> styles;
    for (const auto& l : charts[c]) {
      const std::string run_label = l.name.substr(0, 1);
      EXPECT_EQ(l.color, colour.at(run_label)) << l.name;  // the run's colour everywhere
      styles.insert({l.color, l.dash});
    }
    EXPECT_EQ(styles.size(), 6u) << "two curves of one chart look the same";
  }
}

TEST(Report, ErrorRateAxisIsInPercent) {
  for (double rate : {0.0, 0.25}) {
    const std::string page = render_report({run("a", rate)});
    auto title = page.find("Error rate vs load");
    ASSERT_NE(title, std::string::npos);
    const auto at = page.rfind("<svg", title);
    const std::string svg = page.substr(at, page.find("</svg>", at) - at);
    EXPECT_NE(svg.find(">100</text>"), std::string::npos) << "rate " << rate;
    EXPECT_EQ(svg.find(">0.2</text>"), std::string::npos) << "rate " << rate;
  }
}

}  // namespace
}  // namespace troupe::bench
