#pragma once
// Prometheus text exposition format (version 0.0.4): the one writer of metric families for
// GET /metrics, the server's (server/metrics.cpp) and the gateway's (cluster/gateway.cpp).
//
// Thread-safety: pure functions appending to the caller's string.

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::util::prometheus {

// "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram).
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help);

// One sample line: `name{labels} value` (`labels` without braces, empty for none).
void sample(std::string& out, std::string_view name, std::string_view labels, double value);
void sample(std::string& out, std::string_view name, std::string_view labels, std::int64_t value);

// A family with one unlabelled sample.
void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double value);
void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::int64_t value);

// A label value with the format's escapes (backslash, double quote, newline).
std::string label_value(std::string_view v);

}  // namespace troupe::util::prometheus
