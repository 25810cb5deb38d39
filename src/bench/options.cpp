#include "bench/options.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "bench/tool_sets.hpp"
#include "util/duration.hpp"

namespace troupe::bench {

namespace {

Error bad(const std::string& flag, const std::string& what) {
  return Error{Errc::invalid_request, flag + ": " + what, flag};
}

std::optional<double> to_double(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

Result<void> traffic(const BenchFlags& f, BenchConfig& c) {
  if (!f.request_rate.empty()) {
    auto rates = parse_list(f.request_rate, "--request-rate");
    if (!rates)
      return rates.error();
    c.rates = rates.value();
  } else {
    auto conc = parse_list(f.concurrency.empty() ? "1" : f.concurrency, "--concurrency");
    if (!conc)
      return conc.error();
    for (double v : conc.value()) {
      if (v != std::floor(v))
        return bad("--concurrency", "expected whole numbers");
      c.concurrency.push_back(static_cast<int>(v));
    }
  }
  auto arrival = parse_arrival(f.arrival);
  if (!arrival)
    return arrival.error();
  c.arrival = arrival.value();
  if (f.burstiness <= 0)
    return bad("--burstiness", "must be > 0");
  c.burstiness = f.burstiness;
  c.max_concurrency = f.max_concurrency;
  if (!f.max_duration.empty()) {
    auto d = parse_duration(f.max_duration, "--max-duration");
    if (!d)
      return d.error();
    c.max_duration_s = d.value();
  }
  c.max_requests = f.max_requests;
  if (c.max_requests <= 0 && c.max_duration_s <= 0)
    c.max_requests = 100;
  if (f.warmup < 0 || f.cooldown < 0)
    return bad("--warmup/--cooldown", "must be >= 0");
  c.warmup = f.warmup;
  c.cooldown = f.cooldown;
  return {};
}

Result<void> tools(const BenchFlags& f, BenchConfig& c) {
  if (!f.tool_choice.empty() && f.tool_choice != "auto" && f.tool_choice != "required" &&
      f.tool_choice != "none") {
    return bad("--tool-choice", "expected auto, required or none, not '" + f.tool_choice + "'");
  }
  if (f.tools.empty()) {
    if (!f.tool_choice.empty())
      return bad("--tool-choice", "needs --tools");
    return {};
  }
  if (!c.chat)
    return bad("--tools", "tools need --endpoint chat, messages or responses");
  auto sets = parse_tool_sets(f.tools);
  if (!sets)
    return sets.error();
  c.tool_sets = std::move(sets).value();
  c.tool_choice = f.tool_choice;
  return {};
}

Result<void> workload(const BenchFlags& f, BenchConfig& c) {
  for (const auto& s : f.scenarios) {
    auto sc = parse_scenario(s);
    if (!sc)
      return sc.error();
    c.scenarios.push_back(sc.value());
  }
  if (c.scenarios.empty())
    c.scenarios.push_back(parse_scenario("D(128,128)").value());
  if (f.endpoint != "chat" && f.endpoint != "completions" && f.endpoint != "messages" &&
      f.endpoint != "responses") {
    return bad("--endpoint",
               "expected chat, completions, messages or responses, not '" + f.endpoint + "'");
  }
  c.chat = f.endpoint != "completions";
  c.messages = f.endpoint == "messages";
  c.responses = f.endpoint == "responses";
  if (f.prefix_ratio < 0 || f.prefix_ratio > 1)
    return bad("--prefix-ratio", "expected 0..1");
  if (f.prefix_len < 0)
    return bad("--prefix-len", "must be >= 0");
  c.prefix_len = f.prefix_len;
  c.prefix_ratio = f.prefix_ratio;
  c.dataset = f.dataset;
  c.corpus = f.corpus;
  if (!f.tokenizer.empty() && !f.dataset.empty())
    return bad("--tokenizer", "not used with --dataset (dataset prompts are sent as given)");
  c.tokenizer = f.tokenizer;
  c.ignore_eos = !f.no_ignore_eos;
  if (f.temperature >= 0)
    c.temperature = f.temperature;
  if (!f.extra_body.empty()) {
    std::ifstream in(f.extra_body, std::ios::binary);
    if (!in)
      return bad("--extra-body", "cannot read " + f.extra_body);
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto v = boost::json::parse(text.str(), ec);
    if (ec || !v.is_object())
      return bad("--extra-body", f.extra_body + " must hold one JSON object");
    c.extra_body = std::move(v.as_object());
  }
  return tools(f, c);
}

Result<void> target(const BenchFlags& f, BenchConfig& c) {
  auto ep = client::parse_base_url(f.url);
  if (!ep)
    return bad("--url", ep.error().message);
  c.client.base_url = f.url;
  c.client.api_key = f.api_key;
  for (const auto& h : f.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0)
      return bad("--header", "expected 'Name: value'");
    auto value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.erase(0, 1);
    c.client.headers.emplace_back(h.substr(0, colon), value);
  }
  auto t = parse_duration(f.timeout, "--timeout");
  if (!t)
    return t.error();
  c.client.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(t.value() * 1000));
  c.model = f.model;
  return {};
}

}  // namespace

Result<std::vector<double>> parse_list(const std::string& text, const std::string& flag) {
  std::vector<double> out;
  std::string_view rest = text;
  while (true) {
    auto comma = rest.find(',');
    auto v = to_double(rest.substr(0, comma));
    if (!v || *v <= 0)
      return bad(flag, "expected a comma-separated list of positive numbers");
    out.push_back(*v);
    if (comma == std::string_view::npos)
      break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

Result<double> parse_duration(const std::string& text, const std::string& flag) {
  auto d = util::parse_duration(text, util::DurationUnit::seconds);
  if (!d)
    return bad(flag, "expected a duration like 500ms, 30s or 5m");
  return std::chrono::duration<double>(d.value()).count();
}

Result<BenchConfig> make_config(const BenchFlags& f) {
  BenchConfig c;
  if (auto r = target(f, c); !r)
    return r.error();
  if (auto r = workload(f, c); !r)
    return r.error();
  if (auto r = traffic(f, c); !r)
    return r.error();
  if (!f.slo.empty()) {
    auto slo = parse_slo(f.slo);
    if (!slo)
      return slo.error();
    c.slo = slo.value();
    c.slo_text = f.slo;
  }
  c.seed = f.seed;
  if (f.progress == "auto") {
    c.progress = ProgressMode::automatic;
  } else if (f.progress == "bar") {
    c.progress = ProgressMode::bar;
  } else if (f.progress == "lines") {
    c.progress = ProgressMode::lines;
  } else if (f.progress == "off") {
    c.progress = ProgressMode::off;
  } else {
    return bad("--progress", "expected auto, bar, lines or off");
  }
  return c;
}

}  // namespace troupe::bench
