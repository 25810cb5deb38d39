#include "cli/suggest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>

namespace troupe::cli {
namespace {

struct Hint {
  std::string_view flags;  // space-separated spellings
  std::string_view says;
};

// llama-server / llama-cli options troupe spells differently or does not need.
constexpr std::array kLlamaFlags = {
    Hint{"-np --n-parallel", "troupe's name for it is --parallel"},
    Hint{"--batch-size", "troupe's name for it is -b/--batch"},
    Hint{"-ub --ubatch-size", "troupe decodes each step as one batch: set -b/--batch"},
    Hint{"-tb --threads-batch",
         "troupe uses -t/--threads for prompt processing and generation alike"},
    Hint{"--threads-http", "troupe's name for it is --io-threads"},
    Hint{"-cb --cont-batching -nocb --no-cont-batching",
         "troupe always batches continuously: drop the option"},
    Hint{"-n", "troupe's name for it is --n-predict"},
    Hint{"-s", "troupe's name for it is --seed"},
    Hint{"--presence-penalty --frequency-penalty --repeat-last-n --typical --typical-p "
         "--top-nsigma --top-n-sigma --dynatemp-range --dynatemp-exp --dry-multiplier --dry-base "
         "--dry-allowed-length --dry-penalty-last-n --dry-sequence-breaker --xtc-probability "
         "--xtc-threshold --mirostat --mirostat-lr --mirostat-ent -l --logit-bias",
         "troupe takes this sampler per request (presence_penalty, typical_p, dry_multiplier, "
         "mirostat, logit_bias, ... in the body); server-wide defaults: --temp, --top-k, "
         "--top-p, --min-p, --repeat-penalty, --seed, --n-predict"},
    Hint{"-v --verbose --log-verbose", "use --log-level debug"},
    Hint{"--log-disable", "use --log-level off"},
    Hint{"--metrics", "troupe always serves /metrics: drop the option"},
    Hint{"-hft --hf-token",
         "troupe reads the token from HF_TOKEN or the token file `hf auth login` saves "
         "(sent to HF_ENDPOINT only)"},
    Hint{"-mu --model-url -dr --docker-repo",
         "troupe downloads models from Hugging Face only: --hf-repo OWNER/NAME[:QUANT] (or "
         "troupe pull), or give a local GGUF file with -m/--model"},
    Hint{"-to --timeout",
         "troupe's timeouts are --header-timeout, --body-timeout and --shutdown-grace (durations: "
         "10s, 500ms)"},
};

bool spelled_as(std::string_view flags, std::string_view flag) {
  while (!flags.empty()) {
    const auto space = flags.find(' ');
    if (flags.substr(0, space) == flag)
      return true;
    if (space == std::string_view::npos)
      break;
    flags.remove_prefix(space + 1);
  }
  return false;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words)
    out += (out.empty() ? "" : ", ") + w;
  return out;
}

// `--name=value` is the option `--name`.
std::string_view option_name(std::string_view arg) {
  if (arg.substr(0, 2) == "--")
    return arg.substr(0, arg.find('='));
  return arg;
}

std::string one_unknown(std::string_view arg, const std::vector<std::string>& options) {
  if (arg.empty() || arg[0] != '-' || arg == "-") {
    std::string line = fmt::format("unexpected argument '{}'", arg);
    if (arg.size() > 5 && arg.substr(arg.size() - 5) == ".gguf")
      line += fmt::format(" (a model is given with -m/--model {})", arg);
    return line;
  }
  const std::string_view name = option_name(arg);
  if (auto hint = llama_flag_hint(name))
    return fmt::format("unknown option '{}': {}", name, *hint);
  if (auto near = closest(name, options))
    return fmt::format("unknown option '{}'; did you mean '{}'?", name, *near);
  return fmt::format("unknown option '{}'", name);
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: three rows (two back, for transpositions).
  std::vector<std::size_t> before(b.size() + 1), prev(b.size() + 1), row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      row[j] =
          std::min({prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        row[j] = std::min(row[j], before[j - 2] + 1);
    }
    before.swap(prev);
    prev.swap(row);
  }
  return prev[b.size()];
}

std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  if (best)
    return best;
  // A prefix of 3+ characters past the dashes ("--thr" for "--threads", "gate" for "gateway").
  const std::size_t dashes = word.find_first_not_of('-');
  if (dashes != std::string_view::npos && word.size() - dashes >= 3) {
    for (const auto& c : candidates) {
      if (c.size() > word.size() && c.compare(0, word.size(), word) == 0)
        return c;
    }
  }
  return std::nullopt;
}

std::string unknown_command_message(std::string_view word,
                                    const std::vector<std::string>& commands) {
  std::string out = fmt::format("troupe: unknown command '{}'.", word);
  if (word == "run" || word == "start") {
    out +=
        " To talk to a model, start a server with 'troupe serve -m MODEL.gguf', then run "
        "'troupe chat' in another terminal.";
  } else if (word == "download" || word == "get") {
    out += " To download a model from Hugging Face: 'troupe pull OWNER/NAME[:QUANT]'.";
  } else if (auto near = closest(word, commands)) {
    out += fmt::format(" Did you mean 'troupe {}'?", *near);
  }
  out += fmt::format(
      "\nCommands: {}\nRun 'troupe --help' for what each does, 'troupe COMMAND "
      "--help' for its options.",
      join(commands));
  return out;
}

std::optional<std::string> llama_flag_hint(std::string_view flag) {
  for (const auto& h : kLlamaFlags) {
    if (spelled_as(h.flags, flag))
      return std::string(h.says);
  }
  return std::nullopt;
}

std::string unknown_arguments_message(std::string_view command,
                                      const std::vector<std::string>& extras,
                                      const std::vector<std::string>& options) {
  const std::string who = command.empty() ? "troupe" : fmt::format("troupe {}", command);
  std::string out;
  for (std::size_t i = 0; i < extras.size(); ++i) {
    const std::string& arg = extras[i];
    const bool is_option = arg.size() > 1 && arg[0] == '-';
    // An unknown option's value ("--n-gpu-layers 99") is not reported on its own.
    if (!is_option && i > 0 && extras[i - 1].size() > 1 && extras[i - 1][0] == '-' &&
        extras[i - 1].find('=') == std::string::npos) {
      continue;
    }
    out += fmt::format("{}: {}\n", who, one_unknown(arg, options));
  }
  out += fmt::format("Run '{} --help' for its options.", who);
  return out;
}

std::vector<std::string> expand_llama_short_flags(std::vector<std::string> args) {
  static const std::pair<std::string_view, std::string_view> kShort[] = {
      {"-ngl", "--n-gpu-layers"},     {"-fa", "--flash-attn"},
      {"-ctk", "--cache-type-k"},     {"-ctv", "--cache-type-v"},
      {"-sm", "--split-mode"},        {"-ts", "--tensor-split"},
      {"-mg", "--main-gpu"},          {"-dev", "--device"},
      {"-hf", "--hf-repo"},           {"-hfr", "--hf-repo"},
      {"-hff", "--hf-file"},          {"-kvu", "--kv-unified"},
      {"-no-kvu", "--no-kv-unified"}, {"-md", "--spec-draft-model"},
      {"-ctxcp", "--ctx-checkpoints"}};
  for (auto& a : args) {
    for (const auto& [from, to] : kShort) {
      if (a == from) {
        a = to;
      } else if (a.size() > from.size() && a.starts_with(from) && a[from.size()] == '=') {
        a = std::string(to) + a.substr(from.size());
      }
    }
  }
  return args;
}

}  // namespace troupe::cli
