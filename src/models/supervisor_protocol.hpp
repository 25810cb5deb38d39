#pragma once
// The ModelSupervisor's messages (models/supervisor.hpp). Askers are the ModelSet's Backend
// members; the model-load threads and the leases tell.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "actor/reply.hpp"
#include "engine/backend.hpp"

namespace troupe::models {

// The right to use a loaded model's backend: the model is not unloaded while any lease on it
// lives. Dropping the last copy of `token` tells the supervisor Release.
struct Lease {
  engine::Backend* backend = nullptr;  // valid while `token` lives
  std::string id;                      // the model's id (a request may have used an alias)
  std::shared_ptr<void> token;
};

// A request needs model `model` (an id, an alias, or empty: the default model). Answered
// with a Lease once the model is loaded, now or after its load; errors: not_found (unknown
// model), overloaded (its wait queue is full), the load's failure, a load the memory budget
// can never hold (invalid_request).
struct Acquire {
  std::string model;
  std::optional<std::chrono::milliseconds> keep_alive;  // the request's, for its Release
  actor::ReplyTo<Lease> reply;
};

// A lease ended (its request finished or was cancelled).
struct Release {
  std::size_t index = 0;  // the model's place in the table
  std::optional<std::chrono::milliseconds> keep_alive;
};

// POST /models/load: answered with the model's info once it is loaded (or the error).
struct LoadModel {
  std::string model;
  actor::ReplyTo<engine::ModelInfo> reply;
};

// POST /models/unload: answered with the model's info once it is unloaded when it was idle,
// else at once (state "unloading": it unloads when its requests end).
struct UnloadModel {
  std::string model;
  actor::ReplyTo<engine::ModelInfo> reply;
};

// From a model-load thread: the load of model `index` ended (backend set, or error).
struct LoadDone {
  std::size_t index = 0;
  std::unique_ptr<engine::Backend> backend;
  std::optional<Error> error;
  double seconds = 0;
};

// From a model-load thread: model `index`'s backend is destroyed, its memory freed.
struct UnloadDone {
  std::size_t index = 0;
};

// From model `index`'s idle timer; stale unless `generation` is still the model's.
struct IdleExpired {
  std::size_t index = 0;
  std::uint64_t generation = 0;
};

using SupervisorMessage =
    std::variant<Acquire, Release, LoadModel, UnloadModel, LoadDone, UnloadDone, IdleExpired>;

}  // namespace troupe::models
