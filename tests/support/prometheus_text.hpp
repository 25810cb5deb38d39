#pragma once
// A strict parser of Prometheus text exposition for tests of /metrics (server, gateway): every
// line must be a # HELP, a # TYPE or a sample of the family last typed; anything else fails the
// calling test. promtool.hpp runs Prometheus's own linter on top.

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace troupe::test {

struct PromFamily {
  std::string type;
  std::vector<std::pair<std::string, double>> samples;  // (labels without braces, value)

  // The value of the sample whose labels contain `fragment` (e.g. `node="00ab..."`).
  std::optional<double> find(const std::string& fragment) const {
    for (const auto& [labels, value] : samples) {
      if (labels.find(fragment) != std::string::npos)
        return value;
    }
    return std::nullopt;
  }
};

inline std::map<std::string, PromFamily> parse_prometheus(const std::string& text) {
  static const std::regex type_re(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*$)");
  static const std::regex sample_re(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*)?\})? ([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf)|NaN)$)");
  std::map<std::string, PromFamily> out;
  std::istringstream in(text);
  std::string line, current;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, type_re)) {
      current = m[1];
      EXPECT_EQ(out.count(current), 0u) << "duplicate family " << current;
      out[current].type = m[2];
    } else if (std::regex_match(line, help_re)) {
      continue;
    } else if (std::regex_match(line, m, sample_re)) {
      const std::string name = m[1];
      EXPECT_TRUE(name == current || name == current + "_bucket" || name == current + "_sum" ||
                  name == current + "_count")
          << "sample " << name << " outside its family " << current;
      out[current].samples.emplace_back(m[3], std::stod(m[7]));
    } else {
      ADD_FAILURE() << "malformed line: '" << line << "'";
    }
  }
  return out;
}

}  // namespace troupe::test
