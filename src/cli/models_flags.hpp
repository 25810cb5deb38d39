#pragma once
// `troupe serve` with many models: --models-dir, several -m, --models-preset, --max-loaded,
// --idle-unload and --models-memory-budget, and the ModelSet (models/model_set.hpp) they
// build. One -m without these flags keeps the single-model server.
//
// Thread-safety: plain values and functions, used on the main thread before serving.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "cli/engine_flags.hpp"
#include "engine/backend.hpp"
#include "models/model_set.hpp"
#include "util/result.hpp"

namespace troupe::cli {

struct ModelsFlags {
  std::string dir;          // --models-dir: every *.gguf in it, id = file name without .gguf
  std::string preset_file;  // --models-preset: INI, one [model-id] per model
  std::size_t max_loaded = 0;
  std::optional<std::chrono::milliseconds> idle_unload;  // --idle-unload; unset: never
  std::string memory_budget;                             // bytes ("8GiB"); empty: none
};

// Adds --models-dir, --models-preset, --max-loaded, --idle-unload, --models-memory-budget.
void add_models_flags(CLI::App& app, ModelsFlags& m);

// True when the flags ask for a set of models: several -m, --models-dir or --models-preset.
bool wants_model_set(const EngineFlags& f, const ModelsFlags& m);

// Errors (invalid_request) for flags of a model set given without one.
Result<void> check_single_model(const ModelsFlags& m);

// The models the flags name, each with its engine options: the -m files, then the presets'
// sections, then the directory's other files (sorted by name); a preset applies to the model
// of its id wherever it comes from, and its `path` adds one. Errors: invalid_request naming
// the file and line of a bad preset, an unreadable directory, no models, --engine sim, or
// --alias (a presets file's `alias` names models of a set).
Result<models::ModelSetOptions> model_set_options(const EngineFlags& f, const ModelsFlags& m);

}  // namespace troupe::cli
