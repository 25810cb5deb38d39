#pragma once
// RAII owners for llama.cpp handles. Only src/engine includes this (and llama.h).
//
// Thread-safety: as for unique_ptr; what each handle allows is llama.cpp's contract (a model
// and its vocabulary are read-only after loading; a context and a sampler belong to one thread).

#include <llama.h>

#include <cstdint>
#include <memory>

namespace troupe::engine {

struct ModelDeleter {
  void operator()(llama_model* m) const noexcept { llama_model_free(m); }
};
struct ContextDeleter {
  void operator()(llama_context* c) const noexcept { llama_free(c); }
};
struct SamplerDeleter {
  void operator()(llama_sampler* s) const noexcept { llama_sampler_free(s); }
};

using ModelPtr = std::unique_ptr<llama_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<llama_context, ContextDeleter>;
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerDeleter>;

// A llama_batch allocated once with room for `capacity` tokens of one sequence id each.
class Batch {
 public:
  explicit Batch(std::int32_t capacity)
      : batch_(llama_batch_init(capacity, 0, 1)), capacity_(capacity) {}
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  ~Batch() { llama_batch_free(batch_); }

  void clear() noexcept { batch_.n_tokens = 0; }

  // Precondition: size() < capacity(). Returns the token's index in the batch.
  std::int32_t add(llama_token token, llama_pos pos, llama_seq_id seq, bool logits) noexcept {
    const std::int32_t i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = pos;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = seq;
    batch_.logits[i] = logits ? 1 : 0;
    return i;
  }

  std::int32_t size() const noexcept { return batch_.n_tokens; }
  std::int32_t capacity() const noexcept { return capacity_; }
  const llama_batch& get() const noexcept { return batch_; }

 private:
  llama_batch batch_;
  std::int32_t capacity_;
};

}  // namespace troupe::engine
