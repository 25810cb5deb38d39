#pragma once
// CpuThreadpool: a persistent ggml CPU threadpool to attach to a llama_context.
//
// Without one, llama.cpp (ggml's own threads, no OpenMP) creates and joins its n_threads - 1
// workers inside every llama_decode. With one attached (llama_attach_threadpool) the workers
// live as long as the pool and wait for the next graph: they poll for `poll` rounds
// (ggml's scale: 0 = sleep on a condition variable at once, 50 = ggml's default, 100 =
// aggressive) and then sleep. pause() puts them to sleep at once, so an idle engine costs no
// CPU; ggml resumes a paused pool itself when the next graph is computed.
// In an OpenMP build of ggml (bench/peer/build.sh --openmp, or a user's own) the pool starts no
// workers: graphs run on libgomp's threads, which spin briefly after each graph and then sleep.
//
// The functions live in the CPU backend library that ggml loaded at run time
// (libggml-cpu-<variant>.so): they are found through the backend registry
// (ggml_backend_reg_get_proc_address) and, for pause/resume, in the same library.
//
// Thread-safety: create() from any thread after init_llama_runtime(); pause() and resume()
// from the thread that runs the context's decodes.

#include <cstdint>
#include <memory>

struct ggml_threadpool;

namespace troupe::engine {

class CpuThreadpool {
 public:
  // nullptr when the loaded ggml has no CPU backend or does not export the functions (the
  // context then keeps llama.cpp's per-decode threads).
  static std::unique_ptr<CpuThreadpool> create(std::int32_t n_threads, std::uint32_t poll);
  CpuThreadpool(const CpuThreadpool&) = delete;
  CpuThreadpool& operator=(const CpuThreadpool&) = delete;
  // Detach it from every context first (or free the context).
  ~CpuThreadpool();

  ggml_threadpool* get() const noexcept { return pool_; }
  std::int32_t n_threads() const noexcept { return n_threads_; }
  // Workers sleep until resume() or the next graph. Cheap when already paused.
  void pause() noexcept;
  void resume() noexcept;
  bool paused() const noexcept { return paused_; }

 private:
  CpuThreadpool() = default;
  ggml_threadpool* pool_ = nullptr;
  std::int32_t n_threads_ = 0;
  bool paused_ = false;
};

}  // namespace troupe::engine
