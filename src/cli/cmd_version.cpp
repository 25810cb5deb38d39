// troupe version: troupe's version, the llama.cpp release it runs on, the ggml devices found,
// the malloc in use.

#include <dlfcn.h>
#include <fmt/format.h>

#include "cli/command.hpp"
#include "engine/llama_runtime.hpp"

namespace troupe::cli {
namespace {

int run_version() {
  const auto& rt = engine::init_llama_runtime();
  fmt::print("troupe {}\n", TROUPE_VERSION);
  fmt::print("llama.cpp {} (backends from {})\n", rt.llama_release, rt.backend_dir);
  fmt::print("llama.cpp build: {}\n", rt.llama_build);
  for (const auto& d : rt.devices)
    fmt::print("device {}: {} ({})\n", d.name, d.description, d.type);
  fmt::print("cpu backend: {} ({})\n", rt.cpu_variant.empty() ? "built-in" : rt.cpu_variant,
             rt.system_info);
  // The malloc every library of this process calls: the first definition in the global scope.
  Dl_info where{};
  void* malloc_fn = dlsym(RTLD_DEFAULT, "malloc");
  fmt::print("malloc: {}\n",
             malloc_fn != nullptr && dladdr(malloc_fn, &where) != 0 && where.dli_fname != nullptr
                 ? where.dli_fname
                 : "unknown");
  return rt.devices.empty() ? 1 : 0;
}

const CommandRegistration registration{
    "version", "Print troupe's version, the llama.cpp release and the ggml devices found", 100,
    [](CLI::App&) -> std::function<int()> { return run_version; }};

}  // namespace
}  // namespace troupe::cli
