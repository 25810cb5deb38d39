#pragma once
// Process-wide logging set-up. spdlog's default logger is the one global we keep: it is
// configured once by main() before any thread starts and only read afterwards.

#include <string_view>

namespace troupe {

enum class LogFormat { text, json };

// Configures the default logger: level ("trace".."off") and format. Call once, from main,
// before other threads start. Returns false (and leaves the logger as it was) for an unknown
// level name.
bool configure_logging(std::string_view level, LogFormat format);

}  // namespace troupe
