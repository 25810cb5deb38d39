#pragma once
// Per-request measurements and their aggregation into one load point, with genai-bench's
// definitions:
//   TTFT  first content delta's arrival - request start (start = before connecting/sending)
//   E2E   arrival of the end of the stream - request start
//   TPOT  (E2E - TTFT) / (output_tokens - 1), for requests with at least 2 output tokens
//   ITL   every gap between consecutive content deltas
//   tokens: from the server's usage when it reports it, cross-checked against counted deltas
//
// Thread-safety: values and pure functions; a RequestTimer has one owner.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bench/stats.hpp"
#include "util/result.hpp"

namespace troupe::bench {

struct RequestRecord {
  std::int64_t index = 0;     // send order within the point
  bool measured = true;       // false for warm-up and cool-down requests
  double scheduled_s = 0;     // intended send time, seconds from the point's start
  double start_s = 0;         // actual send time
  double end_s = 0;           // end of stream or failure
  double ttft_s = -1;         // -1 when no content arrived
  double e2e_s = -1;          // -1 when failed
  std::vector<double> itl_s;  // gaps between deltas
  std::int32_t target_input = 0, target_output = 0;
  std::int32_t input_tokens = -1;  // usage.prompt_tokens, -1 when not reported
  std::int32_t output_tokens = 0;  // usage.completion_tokens, or counted deltas without usage
  std::int32_t deltas = 0;         // content deltas counted
  bool usage_reported = false;
  bool tool_call = false;  // the answer carried tool-call pieces
  std::string error;       // ClientError::key() ("http_429", "timeout"); empty if ok
  std::string error_message;

  bool ok() const { return error.empty(); }
  // (E2E - TTFT) / (output_tokens - 1); nullopt for failures or fewer than 2 output tokens.
  std::optional<double> tpot() const;
};

// Builds a RequestRecord from event times (seconds from the point's start).
class RequestTimer {
 public:
  explicit RequestTimer(RequestRecord& r, double start_s);
  // A delta arrived at `t`; `tool_call`: it carried tool-call pieces.
  void on_delta(double t, bool tool_call = false);
  void on_done(double t, std::optional<std::int32_t> prompt_tokens,
               std::optional<std::int32_t> completion_tokens);
  void on_error(double t, std::string key, std::string message);

 private:
  RequestRecord& r_;
  double last_ = -1;
};

// Service-level objectives for goodput: a request is good when it succeeded and meets each set
// bound.
struct Slo {
  std::optional<double> ttft_s, tpot_s, e2e_s;
  bool empty() const { return !ttft_s && !tpot_s && !e2e_s; }
};

// "ttft=500ms,tpot=50ms,e2e=10s" (units ms, s; a bare number is seconds).
Result<Slo> parse_slo(std::string_view text);

struct PointStats {
  std::size_t requests = 0;   // measured requests
  std::size_t completed = 0;  // of which succeeded
  std::size_t failed = 0;
  double duration_s = 0;  // first measured start to last measured end
  double rps = 0;         // completed / duration
  double input_tps = 0, output_tps = 0, total_tps = 0;
  Summary ttft, e2e, tpot, itl, input_tokens, output_tokens;
  double error_rate = 0;
  std::map<std::string, std::size_t> errors;  // by ClientError key
  // The first message seen for each key (the server's error text, e.g. "model 'x' not found").
  std::map<std::string, std::string> error_messages;
  std::size_t good = 0;  // meeting every SLO (all completed when no SLO)
  double goodput_rps = 0;
  std::size_t usage_missing = 0;          // completed requests without usage
  std::size_t usage_mismatch = 0;         // usage completion_tokens != counted deltas
  std::vector<double> ttft_cdf, e2e_cdf;  // 101 quantiles each
};

PointStats aggregate(std::span<const RequestRecord> records, const Slo& slo);

}  // namespace troupe::bench
