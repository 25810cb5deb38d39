#include "bench/scenario.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <vector>

namespace troupe::bench {

namespace {

constexpr std::string_view kExpected =
    "expected D(input,output), N(mean_in,std_in)/(mean_out,std_out), "
    "U(min_in,max_in)/(min_out,max_out) or U(max_in,max_out), with positive integers";

std::optional<double> number(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < 0 || v != std::floor(v)) {
    return std::nullopt;
  }
  return v;
}

// "(a,b)" -> {a, b}; nullopt when malformed.
std::optional<std::pair<double, double>> pair_of(std::string_view s) {
  if (s.size() < 5 || s.front() != '(' || s.back() != ')')
    return std::nullopt;
  s = s.substr(1, s.size() - 2);
  auto comma = s.find(',');
  if (comma == std::string_view::npos)
    return std::nullopt;
  auto a = number(s.substr(0, comma));
  auto b = number(s.substr(comma + 1));
  if (!a || !b)
    return std::nullopt;
  return std::pair{*a, *b};
}

std::int32_t draw(Scenario::Kind kind, double a, double b, std::mt19937_64& rng) {
  double v = a;
  if (kind == Scenario::Kind::normal) {
    v = std::round(std::normal_distribution<double>(a, b)(rng));
  } else if (kind == Scenario::Kind::uniform) {
    v = static_cast<double>(std::uniform_int_distribution<std::int64_t>(
        static_cast<std::int64_t>(a), static_cast<std::int64_t>(b))(rng));
  }
  return static_cast<std::int32_t>(std::max(1.0, v));
}

Result<Scenario> invalid(std::string_view text, std::string_view why = {}) {
  std::string msg = "invalid scenario '" + std::string(text) + "': ";
  msg += why.empty() ? kExpected : why;
  return Error{Errc::invalid_request, msg, "scenario"};
}

}  // namespace

TokenCounts Scenario::sample(std::mt19937_64& rng) const {
  TokenCounts t;
  t.input = draw(kind, in_a, in_b, rng);
  t.output = draw(kind, out_a, out_b, rng);
  return t;
}

std::int32_t Scenario::max_input() const {
  double m = kind == Kind::normal ? in_a + 4 * in_b : (kind == Kind::uniform ? in_b : in_a);
  return static_cast<std::int32_t>(std::max(1.0, m));
}

namespace {

// "(in)/(out)" pairs of N and U scenarios, after the kind letter.
Result<Scenario> parse_pairs(Scenario sc, std::string_view rest, std::string_view text) {
  auto slash = rest.find(")/(");
  if (slash == std::string_view::npos) {  // U(max_in,max_out)
    auto p = pair_of(rest);
    if (sc.kind != Scenario::Kind::uniform || !p || p->first < 1 || p->second < 1) {
      return invalid(text);
    }
    sc.in_a = sc.out_a = 1;
    sc.in_b = p->first;
    sc.out_b = p->second;
    return sc;
  }
  auto in = pair_of(rest.substr(0, slash + 1));
  auto out = pair_of(rest.substr(slash + 2));
  if (!in || !out)
    return invalid(text);
  sc.in_a = in->first;
  sc.in_b = in->second;
  sc.out_a = out->first;
  sc.out_b = out->second;
  if (sc.kind == Scenario::Kind::normal && (sc.in_a < 1 || sc.out_a < 1)) {
    return invalid(text, "N(...) needs a mean of at least 1");
  }
  if (sc.kind == Scenario::Kind::uniform &&
      (sc.in_a < 1 || sc.out_a < 1 || sc.in_a > sc.in_b || sc.out_a > sc.out_b)) {
    return invalid(text, "U(min,max) needs 1 <= min <= max");
  }
  return sc;
}

}  // namespace

Result<Scenario> parse_scenario(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c != ' ' && c != '\t')
      s.push_back(c);
  }
  if (s.size() < 2)
    return invalid(text);
  Scenario sc;
  sc.text = s;
  std::string_view rest = std::string_view(s).substr(1);
  if (s[0] == 'D') {
    auto p = pair_of(rest);
    if (!p || p->first < 1 || p->second < 1)
      return invalid(text);
    sc.kind = Scenario::Kind::deterministic;
    sc.in_a = p->first;
    sc.out_a = p->second;
    return sc;
  }
  if (s[0] != 'N' && s[0] != 'U')
    return invalid(text);
  sc.kind = s[0] == 'N' ? Scenario::Kind::normal : Scenario::Kind::uniform;
  return parse_pairs(std::move(sc), rest, text);
}

}  // namespace troupe::bench
