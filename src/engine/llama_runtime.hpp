#pragma once
// Process-wide llama.cpp set-up: backend initialisation and loading the ggml backends (the
// CPU variants, or CUDA/Metal in a user's own build) from the folder the libraries live in.
//
// Thread-safety: init_llama_runtime() is idempotent and thread-safe (the first caller does the
// work); call it before loading a model. The other functions are safe after it.

#include <string>
#include <vector>

namespace troupe::engine {

struct DeviceInfo {
  std::string name;         // e.g. "CPU"
  std::string description;  // e.g. the processor name
  std::string type;         // "cpu" | "gpu" | "igpu" | "accel"
};

struct RuntimeInfo {
  std::string llama_release;          // the llama.cpp release troupe was built against
  std::string llama_build;            // which build of it: native, npm prebuilt, a package
  std::string backend_dir;            // where the backends were loaded from
  std::vector<std::string> backends;  // registered backend names, e.g. "CPU"
  std::vector<DeviceInfo> devices;
  std::string system_info;  // llama_print_system_info(): the CPU features in use
  std::string cpu_variant;  // which libggml-cpu-<variant>.so was chosen, e.g. "zen4"
  bool openmp = false;      // the CPU backend computes graphs on libgomp's threads
};

// Initialises llama.cpp once: routes its log to ours (warnings and errors only unless
// `verbose` or our log level is debug, when its info lines come at debug), loads every ggml backend
// found next to libllama (or in $TROUPE_GGML_BACKEND_DIR), and logs which CPU variant was chosen.
const RuntimeInfo& init_llama_runtime(bool verbose = false);

}  // namespace troupe::engine
