#include "cli/command.hpp"

#include <algorithm>

namespace troupe::cli {
namespace {

// Filled during static initialisation only; read-only once main() runs.
std::vector<CommandInfo>& table() {
  static std::vector<CommandInfo> commands;
  return commands;
}

}  // namespace

CommandRegistration::CommandRegistration(std::string name, std::string description, int order,
                                         CommandSetup setup) {
  table().push_back({std::move(name), std::move(description), order, std::move(setup)});
}

std::vector<CommandInfo> registered_commands() {
  auto commands = table();
  std::sort(commands.begin(), commands.end(),
            [](const CommandInfo& a, const CommandInfo& b) { return a.order < b.order; });
  return commands;
}

}  // namespace troupe::cli
