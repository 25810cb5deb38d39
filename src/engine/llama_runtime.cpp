#include "engine/llama_runtime.hpp"

#include <dlfcn.h>
#include <ggml-backend.h>
#include <link.h>
#include <llama.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#ifndef TROUPE_LLAMA_BUILD
#define TROUPE_LLAMA_BUILD "unknown"
#endif
#ifndef TROUPE_LLAMA_RELEASE
#define TROUPE_LLAMA_RELEASE "unknown"
#endif

namespace troupe::engine {
namespace {

bool g_verbose = false;  // written once under std::call_once, before any log callback runs

void log_callback(ggml_log_level level, const char* text, void*) {
  std::string_view msg(text);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r'))
    msg.remove_suffix(1);
  if (msg.empty())
    return;
  switch (level) {
    case GGML_LOG_LEVEL_ERROR:
      spdlog::error("llama: {}", msg);
      break;
    case GGML_LOG_LEVEL_WARN:
      spdlog::warn("llama: {}", msg);
      break;
    default:
      if (g_verbose)
        spdlog::debug("llama: {}", msg);
      break;
  }
}

// The folder libllama was loaded from: the ggml backend libraries sit beside it.
std::string library_dir() {
  if (const char* env = std::getenv("TROUPE_GGML_BACKEND_DIR"); env && *env)
    return env;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&llama_backend_init), &info) && info.dli_fname) {
    return std::filesystem::path(info.dli_fname).parent_path().string();
  }
  return ".";
}

// The CPU backend variants are separate libraries (libggml-cpu-haswell.so, ...); ggml loads
// the best one for this processor. Its file name tells which.
std::string loaded_cpu_variant() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        std::string_view name = info->dlpi_name ? info->dlpi_name : "";
        auto pos = name.find("libggml-cpu-");
        if (pos != std::string_view::npos) {
          auto variant = name.substr(pos + 12);
          if (auto dot = variant.find('.'); dot != std::string_view::npos)
            variant = variant.substr(0, dot);
          *static_cast<std::string*>(out) = std::string(variant);
        }
        return 0;
      },
      &found);
  return found;
}

const char* device_type_name(enum ggml_backend_dev_type t) {
  switch (t) {
    case GGML_BACKEND_DEVICE_TYPE_CPU:
      return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU:
      return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU:
      return "igpu";
    default:
      return "accel";
  }
}

RuntimeInfo load_runtime() {
  llama_log_set(log_callback, nullptr);
  RuntimeInfo info;
  info.llama_release = TROUPE_LLAMA_RELEASE;
  info.llama_build = TROUPE_LLAMA_BUILD;
  info.backend_dir = library_dir();
  if (ggml_backend_reg_count() == 0)
    ggml_backend_load_all_from_path(info.backend_dir.c_str());
  llama_backend_init();
  for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
    info.backends.emplace_back(ggml_backend_reg_name(ggml_backend_reg_get(i)));
  }
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    info.devices.push_back({ggml_backend_dev_name(dev), ggml_backend_dev_description(dev),
                            device_type_name(ggml_backend_dev_type(dev))});
  }
  info.system_info = llama_print_system_info();
  info.openmp = info.system_info.find("OPENMP = 1") != std::string::npos;
  info.cpu_variant = loaded_cpu_variant();
  if (info.devices.empty()) {
    spdlog::error("no ggml backend found in {} (set TROUPE_GGML_BACKEND_DIR)", info.backend_dir);
  }
  for (const auto& d : info.devices) {
    spdlog::info("ggml device {} ({}, {}) from {}", d.name, d.type, d.description,
                 info.backend_dir);
  }
  spdlog::info("llama.cpp {}: {}", info.llama_release, info.llama_build);
  spdlog::info("ggml CPU backend variant: {} ({})",
               info.cpu_variant.empty() ? "built-in" : info.cpu_variant, info.system_info);
  return info;
}

}  // namespace

const RuntimeInfo& init_llama_runtime(bool verbose) {
  static std::once_flag once;
  static RuntimeInfo info;
  std::call_once(once, [&] {
    // llama.cpp's own lines (what it loaded, offloaded, allocated) at --log-level debug.
    g_verbose = verbose || spdlog::should_log(spdlog::level::debug);
    info = load_runtime();
  });
  return info;
}

}  // namespace troupe::engine
