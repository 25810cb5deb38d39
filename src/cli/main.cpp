// troupe: one executable, many subcommands (see cli/command.hpp).

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <string_view>

#include "cli/command.hpp"
#include "util/log.hpp"

namespace {

struct GlobalOptions {
  std::string log_level;  // empty: "info" for the long-running services, "warn" for the tools
  std::string log_format = "text";
};

// The services log their life at info; the interactive tools (chat, bench, mkmodel, ...) keep
// their terminal for their own output unless asked.
bool is_service(std::string_view command) {
  return command == "serve" || command == "worker" || command == "gateway";
}

int run(int argc, char** argv) {
  CLI::App app{"troupe: serve large language models with an actor architecture"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("troupe ") + TROUPE_VERSION);
  GlobalOptions global;
  app.add_option("--log-level", global.log_level,
                 "trace|debug|info|warn|error|off (default: info for serve, worker and gateway; "
                 "warn for the others)");
  app.add_option("--log-format", global.log_format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  std::function<int()> chosen;
  std::string chosen_name;
  for (const auto& cmd : troupe::cli::registered_commands()) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    auto runner = cmd.setup(*sub);
    sub->callback([&chosen, &chosen_name, runner, name = cmd.name] {
      chosen = runner;
      chosen_name = name;
    });
  }
  CLI11_PARSE(app, argc, argv);
  if (global.log_level.empty())
    global.log_level = is_service(chosen_name) ? "info" : "warn";
  auto format = global.log_format == "json" ? troupe::LogFormat::json : troupe::LogFormat::text;
  if (!troupe::configure_logging(global.log_level, format)) {
    fmt::print(stderr, "troupe: unknown log level '{}'\n", global.log_level);
    return 2;
  }
  return chosen ? chosen() : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
