#include "util/prometheus.hpp"

#include <fmt/format.h>

#include <iterator>

namespace troupe::util::prometheus {
namespace {

template <class V>
void sample_line(std::string& out, std::string_view name, std::string_view labels, V value) {
  if (labels.empty())
    fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
  else
    fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels, value);
}

}  // namespace

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type);
}

void sample(std::string& out, std::string_view name, std::string_view labels, double value) {
  sample_line(out, name, labels, value);
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::int64_t value) {
  sample_line(out, name, labels, value);
}

void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double value) {
  family(out, name, type, help);
  sample(out, name, {}, value);
}

void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::int64_t value) {
  family(out, name, type, help);
  sample(out, name, {}, value);
}

std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace troupe::util::prometheus
