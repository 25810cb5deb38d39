// troupe pull / list / rm: models from Hugging Face (or HF_ENDPOINT) in the local cache.

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "hub/hub.hpp"
#include "hub/progress.hpp"

namespace troupe::cli {
namespace {

constexpr const char* kEnvHelp =
    "Environment: HF_ENDPOINT (default https://huggingface.co; a mirror), HF_TOKEN (sent to that "
    "endpoint only, for private and gated models; without it the token `hf auth login` saved: "
    "HF_TOKEN_PATH, $HF_HOME/token or ~/.cache/huggingface/token), HF_HUB_OFFLINE=1 (the cache "
    "only), TROUPE_CACHE "
    "(default $XDG_CACHE_HOME/troupe "
    "or ~/.cache/troupe).";

struct PullFlags {
  std::string ref;
  std::string file;
  std::string revision = "main";
};

int run_pull(const PullFlags& f) {
  auto ref = hub::parse_repo_ref(f.ref);
  if (!ref) {
    fmt::print(stderr, "troupe pull: {}\n", ref.error().message);
    return 2;
  }
  if (!ref->quant.empty() && !f.file.empty()) {
    fmt::print(stderr, "troupe pull: give either OWNER/NAME:QUANT or --file FILE, not both\n");
    return 2;
  }
  auto o = hub::options_from_env();
  o.revision = f.revision;
  auto got = hub::Hub(o).pull(*ref, f.file);
  if (!got) {
    fmt::print(stderr, "troupe pull: {}\n", got.error().message);
    return 1;
  }
  for (const auto& c : *got)
    fmt::print("{}\n", c.path.string());
  const auto& model = got->front().record;
  fmt::print(stderr, "serve it with: troupe serve --hf-repo {} --hf-file {}\n", model.repo,
             model.file);
  return 0;
}

int run_list() {
  const hub::Cache cache(hub::default_cache_root());
  const auto files = cache.list();
  if (files.empty()) {
    fmt::print("No models in the cache ({}). Get one with: troupe pull OWNER/NAME[:QUANT]\n",
               (cache.root() / "hub").string());
    return 0;
  }
  std::size_t repo_w = 10;
  std::size_t file_w = 4;
  for (const auto& c : files) {
    repo_w = std::max(repo_w, c.record.repo.size());
    file_w = std::max(file_w, c.record.file.size());
  }
  fmt::print("{:<{}}  {:<{}}  {:>10}  {}\n", "REPOSITORY", repo_w, "FILE", file_w, "SIZE",
             "REVISION");
  for (const auto& c : files) {
    fmt::print("{:<{}}  {:<{}}  {:>10}  {}\n", c.record.repo, repo_w, c.record.file, file_w,
               hub::human_bytes(c.record.size), c.record.revision);
  }
  return 0;
}

int run_rm(const std::vector<std::string>& specs) {
  const hub::Hub h(hub::options_from_env());
  int status = 0;
  for (const auto& spec : specs) {
    auto gone = h.remove(spec);
    if (!gone) {
      fmt::print(stderr, "troupe rm: {}\n", gone.error().message);
      status = 1;
      continue;
    }
    for (const auto& c : *gone)
      fmt::print("removed {}/{} ({})\n", c.record.repo, c.record.file,
                 hub::human_bytes(c.record.size));
    if (gone->empty())
      fmt::print("removed the partial downloads of {}\n", spec);
  }
  return status;
}

const CommandRegistration pull_registration{
    "pull", "download a GGUF model from Hugging Face into the cache", 50,
    [](CLI::App& app) -> std::function<int()> {
      auto f = std::make_shared<PullFlags>();
      app.add_option("repo", f->ref,
                     "OWNER/NAME[:QUANT]: QUANT picks the .gguf whose name contains it (any "
                     "case); without it Q4_K_M, else the only or first .gguf")
          ->required();
      app.add_option("--file", f->file, "an exact file of the repository instead of QUANT");
      app.add_option("--revision", f->revision, "branch, tag or commit")->capture_default_str();
      app.footer(std::string("A broken download resumes on the next pull; the file is checked "
                             "against the repository's sha256. ") +
                 kEnvHelp);
      return [f] { return run_pull(*f); };
    }};

const CommandRegistration list_registration{"list",
                                            "list the models in the cache (repository, file, size)",
                                            51, [](CLI::App& app) -> std::function<int()> {
                                              app.footer(kEnvHelp);
                                              return run_list;
                                            }};

const CommandRegistration rm_registration{
    "rm", "remove models from the cache", 52, [](CLI::App& app) -> std::function<int()> {
      auto specs = std::make_shared<std::vector<std::string>>();
      app.add_option("model", *specs,
                     "OWNER/NAME (all its files), OWNER/NAME:QUANT, or a file name or path as "
                     "troupe list shows it")
          ->required();
      app.footer(kEnvHelp);
      return [specs] { return run_rm(*specs); };
    }};

}  // namespace
}  // namespace troupe::cli
