#include "bench/results.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>

#include "client/tools.hpp"

namespace troupe::bench {

namespace json = boost::json;

namespace {

json::object summary_json(const Summary& s) {
  return {{"count", s.count},   {"min", s.min}, {"max", s.max}, {"mean", s.mean},
          {"stddev", s.stddev}, {"p25", s.p25}, {"p50", s.p50}, {"p75", s.p75},
          {"p90", s.p90},       {"p95", s.p95}, {"p99", s.p99}};
}

json::array numbers(const std::vector<double>& v) {
  return json::array(v.begin(), v.end());
}

// The tool sets of a tools sweep: each set's name and its functions' names.
json::array tool_sets_json(const BenchConfig& c) {
  json::array sets;
  for (const auto& set : c.tool_sets) {
    json::array names;
    for (const auto& n : client::tool_names(set.tools))
      names.emplace_back(n);
    sets.push_back({{"name", set.name}, {"functions", std::move(names)}});
  }
  return sets;
}

json::object config_json(const BenchConfig& c) {
  json::array scenarios, headers;
  for (const auto& s : c.scenarios)
    scenarios.emplace_back(s.text);
  for (const auto& h : c.client.headers)
    headers.emplace_back(h.first);
  json::object o{{"base_url", c.client.base_url},
                 {"endpoint", c.messages    ? "messages"
                              : c.responses ? "responses"
                              : c.chat      ? "chat"
                                            : "completions"},
                 {"model", c.model},
                 {"scenarios", scenarios},
                 {"concurrency", json::array(c.concurrency.begin(), c.concurrency.end())},
                 {"request_rate", json::array(c.rates.begin(), c.rates.end())},
                 {"arrival", arrival_name(c.arrival)},
                 {"burstiness", c.burstiness},
                 {"max_concurrency", c.max_concurrency},
                 {"max_requests", c.max_requests},
                 {"max_duration_s", c.max_duration_s},
                 {"warmup", c.warmup},
                 {"cooldown", c.cooldown},
                 {"seed", c.seed},
                 {"slo", c.slo_text},
                 {"prefix_len", c.prefix_len},
                 {"prefix_ratio", c.prefix_ratio},
                 {"ignore_eos", c.ignore_eos},
                 {"dataset", c.dataset},
                 {"corpus", c.corpus},
                 {"tokenizer_file", c.tokenizer},
                 {"timeout_s", static_cast<double>(c.client.timeout.count()) / 1000.0},
                 {"api_key_set", !c.client.api_key.empty()},
                 {"headers", headers},
                 {"tool_sets", tool_sets_json(c)},
                 {"tool_choice", c.tool_choice}};
  if (c.temperature)
    o["temperature"] = *c.temperature;
  return o;
}

json::object point_json(const PointResult& p, std::size_t n) {
  const auto& s = p.stats;
  json::object errors;
  for (const auto& [k, v] : s.errors)
    errors[k] = v;
  json::object error_messages;
  for (const auto& [k, v] : s.error_messages)
    error_messages[k] = v;
  double good_fraction = s.requests ? static_cast<double>(s.good) / s.requests : 0;
  return {{"label", p.spec.label()},
          {"scenario", p.spec.scenario.text},
          {"tools", p.spec.tools},
          {"tool_count", p.spec.tool_count},
          {"tool_call_answers", p.tool_call_answers},
          {"mode", p.spec.open_loop ? "rate" : "concurrency"},
          {"concurrency", p.spec.concurrency},
          {"rate", p.spec.rate},
          {"requests", s.requests},
          {"completed", s.completed},
          {"failed", s.failed},
          {"duration_s", s.duration_s},
          {"wall_s", p.wall_s},
          {"requests_per_s", s.rps},
          {"input_tokens_per_s", s.input_tps},
          {"output_tokens_per_s", s.output_tps},
          {"total_tokens_per_s", s.total_tps},
          {"error_rate", s.error_rate},
          {"errors", errors},
          {"error_messages", error_messages},
          {"goodput",
           json::object{
               {"good", s.good}, {"requests_per_s", s.goodput_rps}, {"fraction", good_fraction}}},
          {"ttft_s", summary_json(s.ttft)},
          {"e2e_s", summary_json(s.e2e)},
          {"tpot_s", summary_json(s.tpot)},
          {"itl_s", summary_json(s.itl)},
          {"input_tokens", summary_json(s.input_tokens)},
          {"output_tokens", summary_json(s.output_tokens)},
          {"usage_missing", s.usage_missing},
          {"usage_mismatch", s.usage_mismatch},
          {"output_len_mismatch", p.output_len_mismatch},
          {"client_cpu", p.client_cpu},
          {"late_sends", p.late_sends},
          {"max_late_s", p.max_late_s},
          {"max_in_flight", p.max_in_flight},
          {"cdf", json::object{{"ttft_s", numbers(s.ttft_cdf)}, {"e2e_s", numbers(s.e2e_cdf)}}},
          {"csv", "requests_" + std::to_string(n) + ".csv"}};
}

}  // namespace

json::value results_json(const RunResult& run) {
  json::array points, models, warnings;
  for (std::size_t i = 0; i < run.points.size(); ++i)
    points.push_back(point_json(run.points[i], i));
  for (const auto& m : run.server_models)
    models.emplace_back(m);
  for (const auto& w : run.warnings)
    warnings.emplace_back(w);
  return json::object{{"tool", "troupe bench"},
                      {"version", TROUPE_BENCH_VERSION},
                      {"started_at", run.started_at},
                      {"model", run.model},
                      {"server_models", models},
                      {"exact_prompts", run.exact_prompts},
                      {"inexact_prompts", run.inexact_prompts},
                      {"tokenizer", run.tokenizer},
                      {"config", config_json(run.config)},
                      {"warnings", warnings},
                      {"points", points}};
}

std::string requests_csv(const PointResult& p) {
  std::string out =
      "index,measured,scheduled_s,start_s,end_s,ttft_s,e2e_s,tpot_s,itl_mean_s,target_input,"
      "target_output,input_tokens,output_tokens,deltas,usage,tool_call,error,error_message\n";
  for (const auto& r : p.records) {
    double itl = 0;
    for (double g : r.itl_s)
      itl += g;
    if (!r.itl_s.empty())
      itl /= static_cast<double>(r.itl_s.size());
    std::string msg = r.error_message;
    for (auto& ch : msg)
      ch = (ch == '"' || ch == '\n' || ch == '\r') ? '\'' : ch;
    fmt::format_to(
        std::back_inserter(out),
        "{},{},{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{},{:.6f},{},{},{},{},{},{},{},{},\"{}\"\n",
        r.index, r.measured ? 1 : 0, r.scheduled_s, r.start_s, r.end_s, r.ttft_s, r.e2e_s,
        r.tpot() ? fmt::format("{:.6f}", *r.tpot()) : "", itl, r.target_input, r.target_output,
        r.input_tokens, r.output_tokens, r.deltas, r.usage_reported ? 1 : 0, r.tool_call ? 1 : 0,
        r.error, msg);
  }
  return out;
}

Result<void> write_results(const RunResult& run, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Error{Errc::invalid_request, "cannot create " + dir + ": " + ec.message()};
  auto write = [&](const std::string& name, const std::string& text) -> Result<void> {
    std::ofstream f(std::filesystem::path(dir) / name, std::ios::binary);
    f << text;
    if (!f)
      return Error{Errc::internal, "cannot write " + dir + "/" + name};
    return {};
  };
  if (auto r = write("results.json", json::serialize(results_json(run)) + "\n"); !r)
    return r;
  for (std::size_t i = 0; i < run.points.size(); ++i) {
    if (auto r = write("requests_" + std::to_string(i) + ".csv", requests_csv(run.points[i])); !r)
      return r;
  }
  return {};
}

std::vector<std::string> failed_points(const RunResult& run) {
  std::vector<std::string> out;
  for (const auto& p : run.points) {
    const auto& s = p.stats;
    if (s.requests == 0 || s.completed > 0)
      continue;
    std::string why;
    for (const auto& [k, m] : s.error_messages)
      why += fmt::format("{}{}{}{}", why.empty() ? "" : "; ", k, m.empty() ? "" : ": ", m);
    out.push_back(fmt::format("every request of point {} failed ({})", p.spec.label(), why));
  }
  return out;
}

void print_table(const RunResult& run, std::FILE* out) {
  fmt::print(out, "\n{:<32} {:>6} {:>6} {:>8} {:>10} {:>17} {:>15} {:>9} {:>15} {:>8}\n", "point",
             "reqs", "err%", "req/s", "out tok/s", "TTFT p50/p99 ms", "TPOT p50/p99 ms", "ITL p50",
             "E2E p50/p99 s", "goodput");
  for (const auto& p : run.points) {
    const auto& s = p.stats;
    fmt::print(out,
               "{:<32} {:>6} {:>6.1f} {:>8.2f} {:>10.1f} {:>8.1f}/{:<8.1f} {:>7.2f}/{:<7.2f} "
               "{:>9.2f} {:>7.2f}/{:<7.2f} {:>8.2f}\n",
               p.spec.label(), s.requests, 100 * s.error_rate, s.rps, s.output_tps,
               1e3 * s.ttft.p50, 1e3 * s.ttft.p99, 1e3 * s.tpot.p50, 1e3 * s.tpot.p99,
               1e3 * s.itl.p50, s.e2e.p50, s.e2e.p99, s.goodput_rps);
    for (const auto& [k, v] : s.errors) {
      auto m = s.error_messages.find(k);
      const bool said = m != s.error_messages.end() && !m->second.empty();
      fmt::print(out, "    errors {}: {}{}{}\n", k, v, said ? ", e.g. " : "",
                 said ? m->second : "");
    }
    if (p.tool_call_answers > 0)
      fmt::print(out, "    answers with tool calls: {}\n", p.tool_call_answers);
  }
  for (const auto& set : run.config.tool_sets) {
    if (set.tools.empty()) {
      fmt::print(out, "tools={}: no tools\n", set.name);
      continue;
    }
    fmt::print(out, "tools={}: {}{}\n", set.name, fmt::join(client::tool_names(set.tools), ", "),
               run.config.tool_choice.empty() ? "" : "; tool_choice " + run.config.tool_choice);
  }
  if (!run.tokenizer.empty())
    fmt::print(out, "prompt lengths by tokenizer: {}\n", run.tokenizer);
  for (const auto& w : run.warnings)
    fmt::print(out, "warning: {}\n", w);
}

}  // namespace troupe::bench
