// `troupe chat`: the terminal chat client (see chat/options.hpp and docs/chat.md).

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "chat/history_file.hpp"
#include "chat/options.hpp"
#include "cli/command.hpp"
#include "client/tools.hpp"

namespace {

struct ChatFlags {
  troupe::chat::ChatOptions options;
  std::string prompt;
  std::string history_file;
  bool no_history = false;
  std::string reasoning;   // "show" | "hide" | "" (by the output)
  std::string tools_file;  // "" : no tools
};

void add_sampling_flags(CLI::App& app, troupe::chat::Sampling& s) {
  app.add_option("--temperature", s.temperature, "sampling temperature, 0..2")
      ->check(CLI::Range(0.0, 2.0));
  app.add_option("--top-p", s.top_p, "nucleus sampling, (0..1]")->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-tokens", s.max_tokens, "longest answer in tokens")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", s.seed, "sampling seed")->check(CLI::NonNegativeNumber);
}

std::function<int()> setup_chat(CLI::App& app) {
  auto flags = std::make_shared<ChatFlags>();
  auto& o = flags->options;
  app.add_option("--url", o.url, "server base URL")->capture_default_str();
  app.add_option("-m,--model", o.model, "model name (default: the server's)");
  app.add_option("--api-key", o.api_key, "API key (default: $TROUPE_API_KEY)");
  app.add_option("-s,--system", o.system, "system prompt");
  app.add_option("-p,--prompt", flags->prompt, "ask this once, print the answer and exit");
  app.add_option("--history-file", flags->history_file,
                 "input history (default: $XDG_STATE_HOME/troupe/chat_history)");
  app.add_flag("--no-history", flags->no_history, "do not read or write a history file");
  app.add_flag("--stats", o.stats, "print TTFT and tokens/s after each answer");
  app.add_option("--reasoning", flags->reasoning,
                 "show or hide the model's reasoning (default: shown on a terminal only)")
      ->check(CLI::IsMember({"show", "hide"}));
  app.add_option("--tools", flags->tools_file,
                 "JSON file with an OpenAI tools array, sent with each request; answer the "
                 "model's calls with /tool <result>");
  add_sampling_flags(app, o.sampling);
  return [flags, &app] {
    auto options = flags->options;
    if (app.count("--prompt") > 0)
      options.prompt = flags->prompt;
    if (!flags->reasoning.empty())
      options.show_reasoning = flags->reasoning == "show";
    if (!flags->tools_file.empty()) {
      auto tools = troupe::client::load_tools_file(flags->tools_file);
      if (!tools) {
        fmt::print(stderr, "troupe chat: --tools {}\n", tools.error().message);
        return 2;
      }
      options.tools = std::move(tools).value();
    }
    if (options.api_key.empty()) {
      if (const char* key = std::getenv("TROUPE_API_KEY"))
        options.api_key = key;
    }
    if (!flags->no_history) {
      options.history_path =
          flags->history_file.empty() ? troupe::chat::default_history_path() : flags->history_file;
    }
    return troupe::chat::run_chat(options);
  };
}

const troupe::cli::CommandRegistration reg{"chat", "terminal chat with an OpenAI-compatible server",
                                           30, setup_chat};

}  // namespace
