// troupe: one executable, many subcommands (see cli/command.hpp).

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.hpp"
#include "cli/suggest.hpp"
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

// The command word: the first argument that is neither an option nor a global option's value.
std::optional<std::string_view> command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--log-level" || arg == "--log-format") {
      ++i;
    } else if (arg.empty() || arg[0] != '-') {
      return arg;
    }
  }
  return std::nullopt;
}

bool asks_help_or_version(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--version")
      return true;
  }
  return false;
}

// How each option of `app` is spelled on the command line: "--port", "-m".
void add_spellings(const CLI::App& app, std::vector<std::string>& out) {
  for (const CLI::Option* opt : app.get_options()) {
    for (const auto& l : opt->get_lnames())
      out.push_back("--" + l);
    for (const auto& s : opt->get_snames())
      out.push_back("-" + s);
  }
}

// Arguments no command took (CLI11 keeps them, as every command allows extras so that troupe
// can say what it thinks was meant): 0 when there are none, else the message and 2.
int report_extras(CLI::App& app) {
  std::vector<std::string> extras = app.remaining();
  std::vector<std::string> options;
  add_spellings(app, options);
  std::string command;
  for (CLI::App* sub = &app; sub != nullptr;) {
    auto parsed = sub->get_subcommands();
    sub = parsed.empty() ? nullptr : parsed.front();
    if (sub == nullptr)
      break;
    command += (command.empty() ? "" : " ") + sub->get_name();
    add_spellings(*sub, options);
    for (auto& r : sub->remaining())
      extras.push_back(std::move(r));
  }
  if (extras.empty())
    return 0;
  fmt::print(stderr, "{}\n", troupe::cli::unknown_arguments_message(command, extras, options));
  return 2;
}

int run(int argc, char** original_argv) {
  // llama-server's -ngl, -fa, -ctk, ... as troupe's long names, before anything reads argv.
  std::vector<std::string> words = troupe::cli::expand_llama_short_flags(
      std::vector<std::string>(original_argv, original_argv + argc));
  std::vector<char*> expanded;
  expanded.reserve(words.size() + 1);
  for (auto& w : words)
    expanded.push_back(w.data());
  expanded.push_back(nullptr);
  char** argv = expanded.data();
  CLI::App app{"troupe: serve large language models with an actor architecture"};
  app.require_subcommand(1);
  // Unknown options of a command go to troupe itself (so --log-level works after the command
  // too) and are kept as extras, reported by report_extras with a suggestion.
  app.fallthrough();
  app.allow_extras();
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
  std::vector<std::string> command_names;
  for (const auto& cmd : troupe::cli::registered_commands())
    command_names.push_back(cmd.name);
  if (auto word = command_word(argc, argv)) {
    if (*word == "help") {
      fmt::print("{}", app.help());
      return 0;
    }
    if (std::find(command_names.begin(), command_names.end(), *word) == command_names.end()) {
      fmt::print(stderr, "{}\n", troupe::cli::unknown_command_message(*word, command_names));
      return 2;
    }
  } else if (!asks_help_or_version(argc, argv)) {
    fmt::print(stderr, "troupe: a command is required.\n{}\n", app.help());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (int rc = report_extras(app); rc != 0)
    return rc;
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
