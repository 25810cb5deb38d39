#pragma once
// Runs the built `troupe` to completion for command-line tests: exit code and merged output.

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace troupe::cli::invoke {

struct Run {
  int exit_code = -1;
  std::string output;
};

// Runs troupe with `args` (a shell word list), bounded by 120 s, stdout and stderr merged,
// stdin empty; in the directory `cwd` when given.
inline Run run_troupe(const std::string& args, const std::string& cwd = {}) {
  const std::string cmd = (cwd.empty() ? "" : "cd '" + cwd + "' && ") + "timeout 120 " +
                          std::string(TROUPE_BINARY_DIR) + "/troupe " + args + " 2>&1 </dev/null";
  Run r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p)
    return r;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p))
    r.output.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

}  // namespace troupe::cli::invoke
