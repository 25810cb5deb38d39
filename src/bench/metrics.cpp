#include "bench/metrics.hpp"

#include <algorithm>
#include <charconv>

namespace troupe::bench {

std::optional<double> RequestRecord::tpot() const {
  if (!ok() || output_tokens < 2 || ttft_s < 0)
    return std::nullopt;
  return (e2e_s - ttft_s) / static_cast<double>(output_tokens - 1);
}

RequestTimer::RequestTimer(RequestRecord& r, double start_s) : r_(r) {
  r_.start_s = start_s;
}

void RequestTimer::on_delta(double t, bool tool_call) {
  r_.tool_call = r_.tool_call || tool_call;
  if (r_.ttft_s < 0) {
    r_.ttft_s = t - r_.start_s;
  } else {
    r_.itl_s.push_back(t - last_);
  }
  last_ = t;
  ++r_.deltas;
}

void RequestTimer::on_done(double t, std::optional<std::int32_t> prompt_tokens,
                           std::optional<std::int32_t> completion_tokens) {
  r_.end_s = t;
  r_.e2e_s = t - r_.start_s;
  r_.usage_reported = completion_tokens.has_value();
  r_.output_tokens = completion_tokens.value_or(r_.deltas);
  r_.input_tokens = prompt_tokens.value_or(-1);
  if (r_.ttft_s < 0)
    r_.ttft_s = r_.e2e_s;  // an empty answer: first "token" is the end
}

void RequestTimer::on_error(double t, std::string key, std::string message) {
  r_.end_s = t;
  r_.error = std::move(key);
  r_.error_message = std::move(message);
}

namespace {

std::optional<double> duration(std::string_view v) {
  double scale = 1;
  if (v.ends_with("ms")) {
    scale = 1e-3;
    v.remove_suffix(2);
  } else if (v.ends_with("s")) {
    v.remove_suffix(1);
  }
  double x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc{} || p != v.data() + v.size() || x <= 0)
    return std::nullopt;
  return x * scale;
}

bool meets(const RequestRecord& r, const Slo& slo) {
  if (!r.ok())
    return false;
  if (slo.ttft_s && r.ttft_s > *slo.ttft_s)
    return false;
  if (slo.e2e_s && r.e2e_s > *slo.e2e_s)
    return false;
  if (slo.tpot_s) {
    auto t = r.tpot();
    if (t && *t > *slo.tpot_s)
      return false;
  }
  return true;
}

}  // namespace

Result<Slo> parse_slo(std::string_view text) {
  Slo slo;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto eq = item.find('=');
    auto key = item.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::nullopt : duration(item.substr(eq + 1));
    std::optional<double>* slot = key == "ttft"   ? &slo.ttft_s
                                  : key == "tpot" ? &slo.tpot_s
                                  : key == "e2e"  ? &slo.e2e_s
                                                  : nullptr;
    if (!slot || !value) {
      return Error{Errc::invalid_request,
                   "invalid SLO '" + std::string(item) +
                       "': expected ttft=<d>, tpot=<d> or e2e=<d> with d like 500ms or 2s",
                   "slo"};
    }
    *slot = value;
  }
  return slo;
}

namespace {

// The samples of one point's measured requests, before summarising.
struct Samples {
  std::vector<double> ttft, e2e, tpot, itl, in, out;
  double first = 0, last = 0, in_sum = 0, out_sum = 0;

  void add_ok(const RequestRecord& r, const Slo& slo, PointStats& p) {
    ++p.completed;
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    if (auto t = r.tpot())
      tpot.push_back(*t);
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    if (r.input_tokens >= 0)
      in.push_back(r.input_tokens);
    out.push_back(r.output_tokens);
    in_sum += std::max(0, r.input_tokens);
    out_sum += r.output_tokens;
    p.usage_missing += r.usage_reported ? 0 : 1;
    p.usage_mismatch += (r.usage_reported && r.output_tokens != r.deltas) ? 1 : 0;
    p.good += meets(r, slo) ? 1 : 0;
  }
};

void rates(PointStats& p, const Samples& s) {
  p.failed = p.requests - p.completed;
  p.duration_s = s.last - s.first;
  if (p.duration_s > 0) {
    p.rps = static_cast<double>(p.completed) / p.duration_s;
    p.input_tps = s.in_sum / p.duration_s;
    p.output_tps = s.out_sum / p.duration_s;
    p.total_tps = p.input_tps + p.output_tps;
    p.goodput_rps = static_cast<double>(p.good) / p.duration_s;
  }
  p.error_rate = p.requests ? static_cast<double>(p.failed) / static_cast<double>(p.requests) : 0;
}

}  // namespace

PointStats aggregate(std::span<const RequestRecord> records, const Slo& slo) {
  PointStats p;
  Samples s;
  for (const auto& r : records) {
    if (!r.measured)
      continue;
    s.first = p.requests == 0 ? r.start_s : std::min(s.first, r.start_s);
    s.last = p.requests == 0 ? r.end_s : std::max(s.last, r.end_s);
    ++p.requests;
    if (r.ok()) {
      s.add_ok(r, slo, p);
    } else {
      ++p.errors[r.error];
      p.error_messages.try_emplace(r.error, r.error_message);
    }
  }
  rates(p, s);
  p.ttft_cdf = quantiles(s.ttft);
  p.e2e_cdf = quantiles(s.e2e);
  p.ttft = summarize(std::move(s.ttft));
  p.e2e = summarize(std::move(s.e2e));
  p.tpot = summarize(std::move(s.tpot));
  p.itl = summarize(std::move(s.itl));
  p.input_tokens = summarize(std::move(s.in));
  p.output_tokens = summarize(std::move(s.out));
  return p;
}

}  // namespace troupe::bench
