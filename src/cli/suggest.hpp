#pragma once
// What `troupe` says when a command line has a word it does not know: the closest command or
// option ("did you mean"), and for options llama.cpp's tools take, what troupe calls them (or
// why troupe needs none). Pure functions, no I/O.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::cli {

// Edit distance (insertions, deletions, substitutions, swaps of neighbours), bytewise.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if close enough to be a likely typo: within a third of the
// word's length (at least 1), or a candidate that starts with the word (of 3+ characters).
std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates);

// The error for an unknown command word (`troupe serv`): names the word, suggests the closest
// command or what to run instead (`run`, `pull`), and lists the commands. Several lines, no
// trailing newline.
std::string unknown_command_message(std::string_view word,
                                    const std::vector<std::string>& commands);

// For an option troupe does not have but llama.cpp's tools (llama-server, llama-cli) do: what
// troupe calls it, or why troupe needs none. nullopt for any other option.
std::optional<std::string> llama_flag_hint(std::string_view flag);

// The error for unexpected arguments `extras` given to `command` ("serve", "bench report", or
// empty for troupe itself) whose options are `options` (spelled as on the command line, e.g.
// "--port", "-m"): one line per unknown option or argument with a "did you mean" or llama.cpp
// hint, then where to find the options. No trailing newline.
std::string unknown_arguments_message(std::string_view command,
                                      const std::vector<std::string>& extras,
                                      const std::vector<std::string>& options);

// llama-server's multi-letter short spellings troupe takes (-ngl, -fa, -ctk, -ctv, -sm, -ts,
// -mg, -dev, -hf, -hfr, -hff, -md, also as -ngl=N) rewritten to troupe's long names, which CLI11
// can parse (it would read "-ngl" as -n -g -l).
std::vector<std::string> expand_llama_short_flags(std::vector<std::string> args);

}  // namespace troupe::cli
