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
#include "cli/models_flags.hpp"
#include "hub/cache.hpp"
#include "mkmodel/model_spec.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct ServeOptions {
  EngineFlags engine;
  ModelsFlags models;
  HttpFlags http;
};

// models/ in troupe's cache (hub::default_cache_root: $TROUPE_CACHE, $XDG_CACHE_HOME/troupe
// or ~/.cache/troupe), next to the models pulled from Hugging Face (hub/).
std::filesystem::path cache_dir() {
  return hub::default_cache_root() / "models";
}

// What /v1/models says of the default model (its owned_by) and the banner repeats.
constexpr const char* kRandomWeightsNote =
    "troupe: random weights, not a trained model (it answers gibberish); serve a real model "
    "with: troupe serve -m MODEL.gguf";

// The default model: a random-weight `tiny` model (a few MB, written in well under a second)
// on first use. Its file name becomes its model id, so clients see "random-weights" too.
Result<std::string> default_model() {
  const auto path = cache_dir() / "random-weights-tiny.gguf";
  if (std::filesystem::exists(path))
    return path.string();
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  auto shape = mkmodel::shape_by_name("tiny");
  if (!shape)
    return shape.error();
  spdlog::info("no --model given: writing a random-weight 'tiny' model to {}", path.string());
  mkmodel::ModelSpec spec{*shape, mkmodel::WeightType::f16, 42};
  if (auto ok = mkmodel::write_model(spec, path.string()); !ok)
    return ok.error();
  return path.string();
}

// The Backend as is, except that models() says the weights are random (owned_by).
class RandomWeightsBackend final : public engine::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  std::vector<engine::ModelInfo> models() const override {
    auto models = ForwardingBackend::models();
    for (auto& m : models)
      m.owned_by = kRandomWeightsNote;
    return models;
  }
};

// The banner, on stdout once the model is ready, so that a user who just typed `troupe serve`
// sees how to talk to it (and, with the default model, what it is).
void print_banner(const server::ServerConfig& config, std::uint16_t port, bool random_weights) {
  const bool with_key = !config.api_key.empty();
  fmt::print(
      "troupe is serving on http://{0}:{1} (Ctrl-C stops it). Try:\n"
      "  curl http://{0}:{1}/v1/chat/completions -H 'Content-Type: application/json'{2} \\\n"
      "    -d '{{\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}],"
      "\"max_tokens\":32,\"stream\":true}}'\n"
      "  troupe chat --url http://{0}:{1}\n{3}",
      config.host, port, with_key ? " -H \"Authorization: Bearer $TROUPE_API_KEY\"" : "",
      config.webui ? fmt::format("  or open http://{}:{}/ in a browser\n", config.host, port) : "");
  if (random_weights) {
    fmt::print(
        "Note: no --model was given, so this is a generated model with RANDOM WEIGHTS: it "
        "answers gibberish.\n"
        "  Serve a real model with: troupe serve -m MODEL.gguf (any llama.cpp GGUF chat model)\n");
  }
  std::fflush(stdout);
}

// Serves `backend` until a signal; prints the banner once listening.
int serve_backend(std::unique_ptr<engine::Backend> backend, const ServeOptions& o,
                  bool random_weights) {
  const auto config = http_config(o.http);
  auto show_usage = [&config, random_weights](std::uint16_t port) {
    print_banner(config, port, random_weights);
  };
  return server::run_until_signal(std::move(backend), config, std::max(1, o.http.io_threads),
                                  show_usage);
}

// --models-dir, --models-preset or several -m: the ModelSet, models loaded on demand.
int run_model_set(const ServeOptions& o) {
  auto options = model_set_options(o.engine, o.models);
  if (!options) {
    spdlog::error("{}", options.error().message);
    return 1;
  }
  for (const auto& m : options->models)
    spdlog::info("model {}: {} (loaded when first asked for)", m.id(), m.options.model_path);
  auto backend = models::make_model_set(std::move(options).value());
  if (!backend) {
    spdlog::error("{}", backend.error().message);
    return 1;
  }
  return serve_backend(std::move(backend).value(), o, false);
}

int run_serve(ServeOptions o) {
  if (wants_model_set(o.engine, o.models))
    return run_model_set(o);
  if (auto ok = check_single_model(o.models); !ok) {
    spdlog::error("{}", ok.error().message);
    return 1;
  }
  const bool random_weights = o.engine.engine == "llama" && o.engine.models.empty() &&
                              o.engine.hf_repo.empty() && o.engine.hf_file.empty();
  if (random_weights) {
    auto path = default_model();
    if (!path) {
      spdlog::error("cannot write the default model: {}", path.error().message);
      return 1;
    }
    o.engine.models.push_back(*path);
  }
  auto made = make_backend(o.engine);
  if (!made) {
    spdlog::error("{}", made.error().message);
    return 1;
  }
  auto backend = std::move(made).value();
  // A model that does not load stops the server here, before it listens or prints anything.
  if (const auto h = backend->wait_loaded(); h.state != engine::HealthState::ready) {
    spdlog::error("the model did not load: {}", h.message);
    return 1;
  }
  if (random_weights)
    backend = std::make_unique<RandomWeightsBackend>(std::move(backend));
  return serve_backend(std::move(backend), o, random_weights);
}

std::function<int()> setup(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  add_engine_flags(app, o->engine,
                   "GGUF model; repeat it to serve several, loaded on demand (default: a "
                   "generated random-weight 'tiny' model, for trying troupe out)");
  app.add_option("--host", o->http.config.host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->http.config.port, "port (0: any free port)")->capture_default_str();
  add_http_flags(app, o->http);
  add_models_flags(app, o->models);
  return [o] { return run_serve(*o); };
}

const CommandRegistration registration{"serve", "OpenAI-compatible HTTP server", 10, setup};

}  // namespace
}  // namespace troupe::cli
