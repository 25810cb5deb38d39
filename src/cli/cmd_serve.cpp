// troupe serve: the OpenAI-compatible HTTP server over the local llama.cpp engine.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/command.hpp"
#include "cli/engine_flags.hpp"
#include "cli/http_flags.hpp"
#include "mkmodel/model_spec.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct ServeOptions {
  EngineFlags engine;
  HttpFlags http;
};

// $XDG_CACHE_HOME/troupe/models, or ~/.cache/troupe/models.
std::filesystem::path cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "troupe" / "models";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".cache" / "troupe" / "models";
}

// The default model: a random-weight `small` model, written on first use.
Result<std::string> default_model() {
  const auto path = cache_dir() / "small-f16.gguf";
  if (std::filesystem::exists(path))
    return path.string();
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  auto shape = mkmodel::shape_by_name("small");
  if (!shape)
    return shape.error();
  spdlog::info("no --model given: writing a random-weight 'small' model to {}", path.string());
  mkmodel::ModelSpec spec{*shape, mkmodel::WeightType::f16, 42};
  if (auto ok = mkmodel::write_model(spec, path.string()); !ok)
    return ok.error();
  return path.string();
}

int run_serve(ServeOptions o) {
  if (o.engine.engine == "llama" && o.engine.model.empty()) {
    auto path = default_model();
    if (!path) {
      spdlog::error("cannot write the default model: {}", path.error().message);
      return 1;
    }
    o.engine.model = *path;
  }
  auto made = make_backend(o.engine);
  if (!made) {
    spdlog::error("{}", made.error().message);
    return 1;
  }
  auto backend = std::move(made).value();
  const auto config = http_config(o.http);
  const bool with_key = !config.api_key.empty();
  auto show_usage = [&config, with_key](std::uint16_t port) {
    // stdout, so that a user who just typed `troupe serve` sees how to talk to it.
    fmt::print(
        "troupe is serving on http://{0}:{1} (Ctrl-C stops it). Try:\n"
        "  curl http://{0}:{1}/v1/chat/completions -H 'Content-Type: application/json'{2} \\\n"
        "    -d '{{\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}],"
        "\"max_tokens\":32,\"stream\":true}}'\n"
        "  troupe chat --url http://{0}:{1}\n",
        config.host, port, with_key ? " -H \"Authorization: Bearer $TROUPE_API_KEY\"" : "");
    std::fflush(stdout);
  };
  return server::run_until_signal(*backend, config, std::max(1, o.http.io_threads), show_usage);
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  add_engine_flags(app, o->engine, "GGUF model (default: a generated 'small' model)");
  app.add_option("--host", o->http.config.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->http.config.port, "port (0: any free port)")->capture_default_str();
  add_http_flags(app, o->http);
  return [o] { return run_serve(*o); };
}

const CommandRegistration registration{"serve", "OpenAI-compatible HTTP server", 10, setup};

}  // namespace
}  // namespace troupe::cli
