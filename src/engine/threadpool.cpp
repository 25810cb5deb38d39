#include "engine/threadpool.hpp"

#include <dlfcn.h>
#include <ggml-backend.h>
#include <ggml.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "util/thread_name.hpp"

namespace troupe::engine {
namespace {

using NewFn = ggml_threadpool* (*)(ggml_threadpool_params*);
using PoolFn = void (*)(ggml_threadpool*);

struct Api {
  NewFn make = nullptr;
  PoolFn free = nullptr;
  PoolFn pause = nullptr;
  PoolFn resume = nullptr;
};

Api find_api() {
  Api api;
  ggml_backend_reg_t reg = ggml_backend_reg_by_name("CPU");
  if (!reg)
    return api;
  api.make = reinterpret_cast<NewFn>(ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new"));
  api.free =
      reinterpret_cast<PoolFn>(ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free"));
  if (!api.make || !api.free)
    return Api{};
  // pause/resume are not in the registry's table: take them from the library that holds
  // ggml_threadpool_new (already loaded; RTLD_NOLOAD only finds it).
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(api.make), &info) && info.dli_fname) {
    if (void* lib = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD)) {
      api.pause = reinterpret_cast<PoolFn>(dlsym(lib, "ggml_threadpool_pause"));
      api.resume = reinterpret_cast<PoolFn>(dlsym(lib, "ggml_threadpool_resume"));
      dlclose(lib);  // drops the reference RTLD_NOLOAD took; ggml keeps its own
    }
  }
  if (!api.pause || !api.resume)
    spdlog::warn("ggml CPU backend: no ggml_threadpool_pause/resume; idle workers poll out");
  return api;
}

const Api& api() {
  static std::once_flag once;
  static Api a;
  std::call_once(once, [] { a = find_api(); });
  return a;
}

}  // namespace

std::unique_ptr<CpuThreadpool> CpuThreadpool::create(std::int32_t n_threads, std::uint32_t poll) {
  const Api& a = api();
  if (!a.make || n_threads < 1)
    return nullptr;
  ggml_threadpool_params params = ggml_threadpool_params_default(n_threads);
  params.poll = poll;
  // Start paused when we can: no worker runs before the first graph.
  params.paused = a.pause != nullptr;
  // The workers ggml starts here take this thread's name: "ggml-worker" in `top -H`.
  ggml_threadpool* pool = [&] {
    util::ScopedThreadName name("ggml-worker");
    return a.make(&params);
  }();
  if (!pool)
    return nullptr;
  std::unique_ptr<CpuThreadpool> tp(new CpuThreadpool);
  tp->pool_ = pool;
  tp->n_threads_ = n_threads;
  tp->paused_ = params.paused;
  return tp;
}

CpuThreadpool::~CpuThreadpool() {
  if (pool_)
    api().free(pool_);
}

void CpuThreadpool::pause() noexcept {
  if (paused_ || !api().pause)
    return;
  api().pause(pool_);
  paused_ = true;
}

void CpuThreadpool::resume() noexcept {
  if (!paused_)
    return;
  api().resume(pool_);
  paused_ = false;
}

}  // namespace troupe::engine
