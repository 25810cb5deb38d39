// troupe worker: a local engine (llama.cpp or simulated) published on a troupe cluster.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>

#include "cli/command.hpp"
#include "cluster/process.hpp"
#include "cluster/worker.hpp"
#include "engine/local_backend.hpp"
#include "engine/sim_backend.hpp"
#include "server/server.hpp"

namespace troupe::cli {
namespace {

struct WorkerFlags {
  cluster::NodeFlags node;
  std::string model;
  std::string alias;
  std::string engine = "llama";
  int parallel = 4;
  int ctx_size = 4096;
  int threads = 0;
  int batch = 512;
  int max_queue = 64;
  double sim_decode_tps = 50.0;
  double sim_prefill_tps = 5000.0;
  int io_threads = 2;
  int http_port = -1;  // -1: no HTTP server of its own
  std::string host = "127.0.0.1";
};

Result<std::unique_ptr<engine::Backend>> make_backend(const WorkerFlags& f) {
  if (f.engine == "sim") {
    engine::SimOptions so;
    so.model_id = f.alias.empty() ? "sim" : f.alias;
    so.n_parallel = f.parallel;
    so.max_queue = f.max_queue;
    so.decode_tokens_per_s = f.sim_decode_tps;
    so.prefill_tokens_per_s = f.sim_prefill_tps;
    return engine::make_sim_backend(so);
  }
  if (f.model.empty())
    return Error{Errc::invalid_request, "--model is required with --engine llama"};
  engine::EngineOptions eo;
  eo.model_path = f.model;
  eo.model_id = f.alias;
  eo.n_ctx = f.ctx_size;
  eo.n_parallel = f.parallel;
  eo.n_batch = f.batch;
  eo.n_threads = f.threads;
  eo.max_queue = f.max_queue;
  return engine::make_local_backend(eo);
}

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

int serve_worker(const WorkerFlags& f, boost::asio::io_context& io, remote::Node& node,
                 engine::Backend& backend) {
  cluster::Worker worker(node, backend, io.get_executor(), {.capacity = f.parallel});
  std::optional<server::Server> http;
  if (f.http_port >= 0) {
    server::ServerConfig cfg;
    cfg.host = f.host;
    cfg.port = static_cast<std::uint16_t>(f.http_port);
    http.emplace(io.get_executor(), backend, cfg);
    auto port = http->listen();
    if (!port) {
      spdlog::error("{}", port.error().message);
      return 1;
    }
    spdlog::info("worker: direct HTTP on http://{}:{}", f.host, *port);
  }
  cluster::IoThreads threads(io, f.io_threads);
  if (!start_worker(worker))
    return 1;
  spdlog::info("worker: ready, cluster node {:016x} at {}", node.id(), node.address());
  const int sig = cluster::wait_for_signal(io);
  spdlog::info("worker: signal {}: leaving the cluster", sig);
  worker.stop();
  if (http) {
    auto done = std::make_shared<std::promise<void>>();
    http->shutdown([done] { done->set_value(); });
    done->get_future().wait_for(std::chrono::seconds(15));
  }
  node.leave();
  threads.join(true);
  return 0;
}

int run_worker(const WorkerFlags& f) {
  auto options = cluster::node_options(f.node);
  if (!options) {
    spdlog::error("{}", options.error().message);
    return 2;
  }
  auto backend = make_backend(f);
  if (!backend) {
    spdlog::error("{}", backend.error().message);
    return 2;
  }
  boost::asio::io_context io(f.io_threads);
  auto node = remote::Node::start(io, std::move(*options));
  if (!node) {
    spdlog::error("worker: cannot start the cluster node: {}", node.error().message);
    return 1;
  }
  const int rc = serve_worker(f, io, **node, **backend);
  spdlog::info("worker: stopped");
  return rc;
}

void add_cluster_flags(CLI::App& app, cluster::NodeFlags& n) {
  app.add_option("--listen", n.listen, "cluster address to listen on (ip:port)")
      ->capture_default_str();
  app.add_option("--advertise", n.advertise, "cluster address peers dial (default: --listen)");
  app.add_option("--join", n.join, "seed nodes host:port (repeat or comma-separate)");
  app.add_option("--cluster-secret", n.cluster_secret,
                 "shared secret of the cluster (or env TROUPE_CLUSTER_SECRET)");
}

std::function<int()> setup(CLI::App& app) {
  auto f = std::make_shared<WorkerFlags>();
  add_cluster_flags(app, f->node);
  app.add_option("-m,--model", f->model, "GGUF model (required with --engine llama)");
  app.add_option("-a,--alias", f->alias, "model name clients use (default: the file name)");
  app.add_option("--engine", f->engine, "llama|sim")
      ->check(CLI::IsMember({"llama", "sim"}))
      ->capture_default_str();
  app.add_option("--parallel", f->parallel, "sequences decoded together")->capture_default_str();
  app.add_option("-c,--ctx-size", f->ctx_size, "KV cells in all")->capture_default_str();
  app.add_option("-t,--threads", f->threads, "llama.cpp threads (0: all cores)")
      ->capture_default_str();
  app.add_option("-b,--batch", f->batch, "token budget of one decode step")->capture_default_str();
  app.add_option("--max-queue", f->max_queue, "waiting requests before refusing")
      ->capture_default_str();
  app.add_option("--sim-decode-tps", f->sim_decode_tps, "sim engine: tokens/s per sequence")
      ->capture_default_str();
  app.add_option("--sim-prefill-tps", f->sim_prefill_tps, "sim engine: prompt tokens/s")
      ->capture_default_str();
  app.add_option("--io-threads", f->io_threads, "I/O threads")->capture_default_str();
  app.add_option("--http-port", f->http_port,
                 "also serve this worker's engine over HTTP (-1: off, 0: any free port)")
      ->capture_default_str();
  app.add_option("--host", f->host, "address of the direct HTTP server")->capture_default_str();
  return [f] { return run_worker(*f); };
}

const CommandRegistration registration{"worker", "serve a model to a cluster of gateways", 41,
                                       setup};

}  // namespace
}  // namespace troupe::cli
