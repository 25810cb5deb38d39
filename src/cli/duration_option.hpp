#pragma once
// Time options, one scheme for every command: the value is a duration with a unit ("500ms",
// "1.5s", "5m"), shown in --help as DURATION with its default in the same spelling. A bare
// number keeps the unit the option used before (seconds for the HTTP timeouts and bench,
// milliseconds for the membership timings, microseconds for --reader-spin), so old command
// lines mean what they meant.
//
// Thread-safety: used on the main thread while the command line is parsed.

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "util/duration.hpp"

namespace troupe::cli {

// Adds `name` ("--header-timeout") calling `set` with the parsed value; a value that is not a
// duration is a CLI11 validation error naming the option. `fallback` is what the option is
// when not given (shown as the default; `set` is not called for it).
CLI::Option* add_duration_option(CLI::App& app, const std::string& name,
                                 std::function<void(std::chrono::nanoseconds)> set,
                                 std::chrono::nanoseconds fallback, util::DurationUnit bare,
                                 const std::string& help);

// A hidden second spelling of an option whose value is the same variable, for names kept
// from earlier versions (`--http-port` for `--port`): it parses like `T` and is left out of
// --help.
template <class T>
CLI::Option* add_hidden_alias(CLI::App& app, const std::string& name, T& target) {
  return app.add_option(name, target)->group("");
}

}  // namespace troupe::cli
