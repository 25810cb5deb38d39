// troupe worker: a local engine (llama.cpp or simulated) published on a troupe cluster.

#include <spdlog/spdlog.h>

#include <future>
#include <memory>
#include <optional>

#include "cli/command.hpp"
#include "cli/duration_option.hpp"
#include "cli/engine_flags.hpp"
#include "cli/models_flags.hpp"
#include "cli/node_flags.hpp"
#include "cluster/worker.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct WorkerFlags {
  cluster::NodeFlags node;
  EngineFlags engine;
  ModelsFlags models;
  int io_threads = 2;
  int http_port = -1;  // -1: no HTTP server of its own
  std::string host = "127.0.0.1";
};

// Waits until the worker published its models (or failed to load). Returns false on failure.
bool start_worker(cluster::Worker& worker) {
  auto ready = std::make_shared<std::promise<Result<std::vector<std::string>>>>();
  auto fut = ready->get_future();
  worker.start([ready](Result<std::vector<std::string>> r) { ready->set_value(std::move(r)); });
  auto r = fut.get();
  if (!r) {
    spdlog::error("worker: the engine failed to load: {}", r.error().message);
    return false;
  }
  for (const auto& m : *r)
    spdlog::info("worker: serving model {}", m);
  return true;
}

// One model (make_backend), or a set loaded on demand (--models-dir, several -m, presets).
Result<std::unique_ptr<engine::Backend>> worker_backend(const WorkerFlags& f) {
  if (!wants_model_set(f.engine, f.models)) {
    if (auto ok = check_single_model(f.models); !ok)
      return ok.error();
    return make_backend(f.engine);
  }
  auto options = model_set_options(f.engine, f.models);
  if (!options)
    return options.error();
  return models::make_model_set(std::move(options).value());
}

int run_worker(const WorkerFlags& f) {
  auto backend = worker_backend(f);
  if (!backend) {
    spdlog::error("{}", backend.error().message);
    return 2;
  }
  // A model that does not load stops the worker before it joins the cluster.
  if (const auto h = (*backend)->wait_loaded(); h.state != engine::HealthState::ready) {
    spdlog::error("worker: the model did not load: {}", h.message);
    return 1;
  }
  auto p = NodeProcess::start(f.node, f.io_threads, "worker");
  if (!p)
    return p.error_code;
  cluster::Worker worker(p->node(), **backend, p->io().get_executor(),
                         {.capacity = f.engine.options.engine.n_parallel});
  std::optional<server::Server> http;
  if (f.http_port >= 0) {
    server::ServerConfig cfg;
    cfg.host = f.host;
    cfg.port = static_cast<std::uint16_t>(f.http_port);
    http.emplace(p->io().get_executor(), **backend, cfg);
    auto port = http->listen();
    if (!port) {
      spdlog::error("{}", port.error().message);
      return 1;
    }
    spdlog::info("worker: direct HTTP on http://{}:{}", f.host, *port);
  }
  p->run_threads();
  if (!start_worker(worker))
    return 1;
  spdlog::info("worker: ready, cluster node {:016x} at {}", p->node().id(), p->node().address());
  p->wait_for_signal();
  worker.stop();
  if (http) {
    auto done = std::make_shared<std::promise<void>>();
    http->shutdown([done] { done->set_value(); });
    done->get_future().wait_for(std::chrono::seconds(15));
  }
  p->leave_and_join();
  spdlog::info("worker: stopped");
  return 0;
}

std::function<int()> setup(CLI::App& app) {
  auto f = std::make_shared<WorkerFlags>();
  add_node_flags(app, f->node);
  add_engine_flags(app, f->engine,
                   "GGUF model (with --engine llama: this or --hf-repo); repeat it to serve "
                   "several, loaded on demand");
  add_models_flags(app, f->models);
  app.add_option("--io-threads", f->io_threads, "I/O threads")->capture_default_str();
  app.add_option("--port", f->http_port,
                 "also serve this worker's engine over HTTP on this port (-1: off, 0: any free "
                 "port)")
      ->capture_default_str();
  add_hidden_alias(app, "--http-port", f->http_port);
  app.add_option("--host", f->host, "address of the direct HTTP server")->capture_default_str();
  return [f] { return run_worker(*f); };
}

const CommandRegistration registration{"worker", "serve a model to a cluster of gateways", 41,
                                       setup};

}  // namespace
}  // namespace troupe::cli
