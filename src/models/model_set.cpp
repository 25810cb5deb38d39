#include "models/model_set.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <set>

#include "actor/actor_system.hpp"
#include "engine/memory_use.hpp"
#include "models/board.hpp"
#include "models/supervisor.hpp"
#include "util/thread_name.hpp"

namespace troupe::models {

namespace asio = boost::asio;

namespace {

std::vector<engine::ModelInfo> initial_infos(const ModelSetOptions& o) {
  std::vector<engine::ModelInfo> out;
  for (const auto& c : o.models) {
    engine::ModelInfo m;
    m.id = c.id();
    m.aliases = c.options.aliases;
    if (c.options.engine.n_parallel > 0)
      m.n_ctx = c.options.engine.n_ctx / c.options.engine.n_parallel;
    m.state = state_name(ModelState::unloaded);
    out.push_back(std::move(m));
  }
  return out;
}

class ModelSet final : public engine::Backend {
 public:
  ModelSet(ModelSetOptions options, ModelLoader loader)
      : board_(initial_infos(options)), system_(actor::SystemOptions{1}) {
    for (int i = 0; i < 2; ++i)  // the pool's two threads take the name in turn
      asio::post(jobs_, [] { util::set_thread_name("model-load"); });
    supervisor_ =
        system_.spawn<ModelSupervisor>(actor::SpawnOptions{.name = "models"}, std::move(options),
                                       std::move(loader), board_, jobs_.get_executor());
  }
  ~ModelSet() override {
    system_.shutdown(actor::StopMode::drop);  // the loaded backends go with the supervisor
    jobs_.join();                             // loads under way end; their tells are dropped
  }
  ModelSet(const ModelSet&) = delete;
  ModelSet& operator=(const ModelSet&) = delete;

  asio::awaitable<engine::TokenStream> generate(engine::Task task) override {
    auto lease = co_await acquire(task.model, task.keep_alive);
    if (!lease)
      co_return engine::failed_stream(std::move(lease).error());
    task.model = lease->id;
    auto stream = co_await lease->backend->generate(std::move(task));
    stream.attach(std::move(lease->token));  // the model stays loaded while the stream lives
    co_return stream;
  }

  asio::awaitable<Result<std::vector<engine::Token>>> tokenize(std::string model, std::string text,
                                                               bool add_special,
                                                               bool parse_special) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->tokenize(lease->id, std::move(text), add_special,
                                                parse_special);
  }

  asio::awaitable<Result<std::string>> detokenize(std::string model,
                                                  std::vector<engine::Token> tokens) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->detokenize(lease->id, std::move(tokens));
  }

  asio::awaitable<Result<std::vector<std::string>>> token_pieces(
      std::string model, std::vector<engine::Token> tokens) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->token_pieces(lease->id, std::move(tokens));
  }

  asio::awaitable<Result<std::string>> apply_template(engine::Task task) override {
    auto lease = co_await acquire(task.model);
    if (!lease)
      co_return lease.error();
    task.model = lease->id;
    co_return co_await lease->backend->apply_template(std::move(task));
  }

  // As every request naming a model: loads it when it is not.
  asio::awaitable<Result<engine::ModelProps>> props(std::string model) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->props(lease->id);
  }

  // As props: the model is loaded when it is not.
  asio::awaitable<Result<engine::SlotsInfo>> slots(std::string model) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->slots(lease->id);
  }

  // As slots: the model is loaded when it is not (a restore into a model just loaded).
  asio::awaitable<Result<engine::SlotActionDone>> slot_action(
      std::string model, engine::SlotActionRequest request) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->slot_action(lease->id, std::move(request));
  }

  // A model's adapters (a preset's `lora`): as props, the model is loaded when it is not.
  asio::awaitable<Result<std::vector<engine::LoraAdapterInfo>>> lora_adapters(
      std::string model) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->lora_adapters(lease->id);
  }

  asio::awaitable<Result<void>> set_lora_adapters(std::string model,
                                                  engine::LoraRequest request) override {
    auto lease = co_await acquire(model);
    if (!lease)
      co_return lease.error();
    co_return co_await lease->backend->set_lora_adapters(lease->id, std::move(request));
  }

  asio::awaitable<Result<engine::ModelInfo>> load_model(std::string model) override {
    // The message is a named local: GCC 12 mishandles a braced temporary inside co_await.
    LoadModel m{std::move(model), {}};
    co_return co_await supervisor_.ask(std::move(m));
  }

  asio::awaitable<Result<engine::ModelInfo>> unload_model(std::string model) override {
    UnloadModel m{std::move(model), {}};
    co_return co_await supervisor_.ask(std::move(m));
  }

  std::vector<engine::ModelInfo> models() const override { return board_.models(); }
  engine::Health health() const override { return {engine::HealthState::ready, {}}; }
  engine::BackendStats stats() const override { return board_.stats(); }
  std::string extra_metrics() const override { return board_.metrics(); }

 private:
  asio::awaitable<Result<Lease>> acquire(
      std::string model, std::optional<std::chrono::milliseconds> keep_alive = std::nullopt) {
    Acquire m{std::move(model), keep_alive, {}};  // named: see load_model
    co_return co_await supervisor_.ask(std::move(m));
  }

  ModelBoard board_;
  asio::thread_pool jobs_{2};
  actor::ActorSystem system_;
  actor::ActorRef<SupervisorMessage> supervisor_;
};

// Every id and alias names one model.
std::optional<Error> check_names(const ModelSetOptions& o) {
  std::set<std::string> seen;
  for (const auto& c : o.models) {
    if (c.id().empty())
      return Error{Errc::invalid_request, "a model has no id"};
    std::vector<std::string> names = c.options.aliases;
    names.push_back(c.id());
    for (const auto& n : names) {
      if (!seen.insert(n).second) {
        return Error{Errc::invalid_request,
                     fmt::format("two models are named '{}': give each its own id or alias", n)};
      }
    }
  }
  return std::nullopt;
}

// The model at `path` served as `config`: its file, and the context llama.cpp would make for it
// by its own count (a dry run), or as estimated from the file's shape where this build lacks
// that count.
Result<MemoryEstimate> estimate_served(const std::string& path,
                                       const engine::BatchEngineConfig& config) {
  auto planned = engine::planned_memory_use(path, config);
  if (!planned)
    return planned.error();
  if (!*planned) {
    return estimate_memory(path, config.n_ctx, config.placement.cache_type_k,
                           config.placement.cache_type_v);
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return Error{Errc::invalid_request, fmt::format("{}: {}", path, ec.message())};
  return MemoryEstimate{size, (*planned)->context, (*planned)->compute};
}

}  // namespace

ModelLoader local_loader() {
  ModelLoader l;
  l.load = [](const ModelConfig& c) -> Result<std::unique_ptr<engine::Backend>> {
    auto b = engine::make_local_backend(c.options);
    const auto h = b->wait_loaded();
    if (h.state != engine::HealthState::ready)
      return Error{Errc::engine_failed, h.message};
    return b;
  };
  l.estimate = [](const ModelConfig& c) -> Result<MemoryEstimate> {
    auto e = estimate_served(c.options.model_path, c.options.engine);
    if (!e || c.options.draft_model_path.empty())
      return e;
    // A draft model's weights and its context of the same cells count too.
    auto d = estimate_served(c.options.draft_model_path, c.options.engine);
    if (!d)
      return d.error();
    return MemoryEstimate{e->weights + d->weights, e->kv_cache + d->kv_cache,
                          e->compute + d->compute};
  };
  return l;
}

Result<std::unique_ptr<engine::Backend>> make_model_set(ModelSetOptions options,
                                                        ModelLoader loader) {
  if (options.models.empty())
    return Error{Errc::invalid_request, "no models to serve"};
  if (auto e = check_names(options))
    return *e;
  return std::unique_ptr<engine::Backend>(
      std::make_unique<ModelSet>(std::move(options), std::move(loader)));
}

}  // namespace troupe::models
