#pragma once
// The `troupe` executable's subcommands. Each lives in its own cmd_<name>.cpp in this folder
// and registers itself with a CommandRegistration at namespace scope:
//
//   const troupe::cli::CommandRegistration reg{"serve", "OpenAI-compatible HTTP server", 10,
//       [](CLI::App& app) {
//         auto opts = std::make_shared<ServeOptions>();
//         app.add_option("--port", opts->port, "...");
//         return [opts] { return run_serve(*opts); };   // runs when `troupe serve` is chosen
//       }};
//
// Registrations are collected during static initialisation (before main) into a table that is
// read-only afterwards; main() builds the CLI from it in `order`.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace troupe::cli {

// Adds the subcommand's options to `app` and returns what to run when it is chosen; the
// returned function's value is the process exit code.
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  std::string description;
  int order = 0;  // position in --help
  CommandSetup setup;
};

class CommandRegistration {
 public:
  CommandRegistration(std::string name, std::string description, int order, CommandSetup setup);
};

// Every registered command, sorted by order. Only valid after static initialisation.
std::vector<CommandInfo> registered_commands();

}  // namespace troupe::cli
