// troupe: one executable, many subcommands (see cli/command.hpp).

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>

#include "cli/command.hpp"
#include "util/log.hpp"

namespace {

struct GlobalOptions {
  std::string log_level = "info";
  std::string log_format = "text";
};

int run(int argc, char** argv) {
  CLI::App app{"troupe: serve large language models with an actor architecture"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("troupe ") + TROUPE_VERSION);
  GlobalOptions global;
  app.add_option("--log-level", global.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  app.add_option("--log-format", global.log_format, "text|json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  std::function<int()> chosen;
  for (const auto& cmd : troupe::cli::registered_commands()) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    auto runner = cmd.setup(*sub);
    sub->callback([&chosen, runner] { chosen = runner; });
  }
  CLI11_PARSE(app, argc, argv);
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
