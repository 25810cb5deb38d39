#include "engine/memory_use.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <vector>

#include "engine/llama_runtime.hpp"
#include "engine/model.hpp"
#include "engine/placement_llama.hpp"

#ifdef TROUPE_MEMORY_BREAKDOWN
#include <llama-ext.h>
#endif

namespace troupe::engine {

bool memory_use_known() {
#ifdef TROUPE_MEMORY_BREAKDOWN
  return true;
#else
  return false;
#endif
}

std::optional<MemoryUse> memory_use_of(const llama_context* ctx) {
#ifdef TROUPE_MEMORY_BREAKDOWN
  MemoryUse use;
  for (const auto& [buft, mb] : llama_get_memory_breakdown(ctx)) {
    use.weights += mb.model;
    use.context += mb.context;
    use.compute += mb.compute;
  }
  return use;
#else
  (void)ctx;
  return std::nullopt;
#endif
}

Result<std::optional<MemoryUse>> planned_memory_use(const std::string& path,
                                                    const BatchEngineConfig& engine) {
  if (!memory_use_known())
    return std::optional<MemoryUse>();
  init_llama_runtime();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return Error{Errc::not_found, fmt::format("model file not found: {}", path)};
  auto params = llama_model_default_params();
  DeviceList devices;  // what params point into, alive until the load returns
  std::vector<float> split;
  if (auto r = apply_model_placement(engine.placement, params, devices, split); !r)
    return r.error();
  params.no_alloc = true;  // metadata only, allocations counted, none made
  params.load_mode = LLAMA_LOAD_MODE_NONE;
  const ModelPtr model(llama_model_load_from_file(path.c_str(), params));
  if (!model)
    return Error{Errc::engine_failed, fmt::format("llama.cpp could not read {}", path)};
  BatchEngineConfig config = engine;
  if (config.n_ctx == 0)  // -c 0: the trained context, as the coordinator resolves it
    config.n_ctx = llama_model_n_ctx_train(model.get());
  auto cparams = resolve_engine_context(LlamaModel::embedding_only(model.get()), config,
                                        /*log=*/false);
  if (!cparams)
    return cparams.error();
  const ContextPtr ctx(llama_init_from_model(model.get(), *cparams));
  if (!ctx)
    return Error{Errc::engine_failed,
                 fmt::format("llama.cpp could not plan a context for {}", path)};
  return memory_use_of(ctx.get());
}

}  // namespace troupe::engine
