#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <thread>

#include "engine/llama_runtime.hpp"
#include "engine/placement_llama.hpp"

namespace troupe::engine {

namespace {

struct KvType {
  const char* name;
  ggml_type type;
};
constexpr KvType kKvTypes[] = {
    {"f32", GGML_TYPE_F32},       {"f16", GGML_TYPE_F16},   {"bf16", GGML_TYPE_BF16},
    {"q8_0", GGML_TYPE_Q8_0},     {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1},
    {"iq4_nl", GGML_TYPE_IQ4_NL}, {"q5_0", GGML_TYPE_Q5_0}, {"q5_1", GGML_TYPE_Q5_1}};

Error bad(std::string_view option, std::string message) {
  return Error{Errc::invalid_request, fmt::format("{}: {}", option, message)};
}

Result<ggml_type> kv_type(const std::string& name, std::string_view option) {
  for (const auto& t : kKvTypes) {
    if (name == t.name)
      return t.type;
  }
  return bad(option, fmt::format("unknown KV cache type '{}' (one of {})", name,
                                 fmt::join(kv_cache_types(), ", ")));
}

Result<llama_flash_attn_type> flash_attn_type(const std::string& v) {
  if (v == "auto")
    return LLAMA_FLASH_ATTN_TYPE_AUTO;
  if (v == "on")
    return LLAMA_FLASH_ATTN_TYPE_ENABLED;
  if (v == "off")
    return LLAMA_FLASH_ATTN_TYPE_DISABLED;
  return bad("--flash-attn", fmt::format("'{}' is not on, off or auto", v));
}

Result<llama_split_mode> split_mode(const std::string& v) {
  if (v == "none")
    return LLAMA_SPLIT_MODE_NONE;
  if (v == "layer")
    return LLAMA_SPLIT_MODE_LAYER;
  if (v == "row")
    return LLAMA_SPLIT_MODE_ROW;
  return bad("--split-mode", fmt::format("'{}' is not none, layer or row", v));
}

bool no_devices(const PlacementOptions& p) {
  return p.devices.size() == 1 && p.devices.front() == "none";
}

// The named devices (all GPU-like devices when none are named); errors for unknown names.
Result<DeviceList> devices_of(const PlacementOptions& p) {
  DeviceList out;
  if (no_devices(p))
    return out;
  init_llama_runtime();
  std::vector<std::string> known;
  for (std::size_t i = 0; i < ggml_backend_dev_count(); ++i)
    known.emplace_back(ggml_backend_dev_name(ggml_backend_dev_get(i)));
  for (const auto& name : p.devices) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
    if (dev == nullptr) {
      return bad("--device", fmt::format("no device '{}' (this build has: {}; 'none' for the "
                                         "CPU only)",
                                         name, fmt::join(known, ", ")));
    }
    out.push_back(dev);
  }
  return out;
}

bool is_gpu(ggml_backend_dev_t dev) {
  const auto t = ggml_backend_dev_type(dev);
  return t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU;
}

std::vector<ggml_backend_dev_t> gpu_devices(const PlacementOptions& p, const DeviceList& named) {
  std::vector<ggml_backend_dev_t> out;
  if (no_devices(p))
    return out;
  if (!p.devices.empty()) {
    for (auto* d : named) {
      if (is_gpu(d))
        out.push_back(d);
    }
    return out;
  }
  for (std::size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    if (is_gpu(ggml_backend_dev_get(i)))
      out.push_back(ggml_backend_dev_get(i));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& kv_cache_types() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& t : kKvTypes)
      v.emplace_back(t.name);
    return v;
  }();
  return names;
}

Result<std::int32_t> parse_gpu_layers(const std::string& text) {
  if (text == "auto")
    return PlacementOptions::kAuto;
  if (text == "all")
    return PlacementOptions::kAll;
  std::int32_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || n < 0)
    return bad("--n-gpu-layers", fmt::format("'{}' is not auto, all or a layer count", text));
  return n;
}

Result<void> check_placement(const PlacementOptions& p) {
  if (p.n_gpu_layers < PlacementOptions::kAuto)
    return bad("--n-gpu-layers", "must be auto, all or a layer count");
  if (auto r = split_mode(p.split_mode); !r)
    return r.error();
  if (auto r = flash_attn_type(p.flash_attn); !r)
    return r.error();
  if (auto r = kv_type(p.cache_type_k, "--cache-type-k"); !r)
    return r.error();
  auto v = kv_type(p.cache_type_v, "--cache-type-v");
  if (!v)
    return v.error();
  if (*v != GGML_TYPE_F16 && *v != GGML_TYPE_F32 && *v != GGML_TYPE_BF16 && p.flash_attn == "off") {
    return bad("--cache-type-v", fmt::format("a quantized V cache ({}) needs flash attention: "
                                             "drop --flash-attn off",
                                             p.cache_type_v));
  }
  if (p.main_gpu < 0)
    return bad("--main-gpu", "must be a device index >= 0");
  if (p.tensor_split.size() > llama_max_devices()) {
    return bad("--tensor-split", fmt::format("{} proportions for at most {} devices",
                                             p.tensor_split.size(), llama_max_devices()));
  }
  for (float v : p.tensor_split) {
    if (!(v >= 0))
      return bad("--tensor-split", "proportions must be numbers >= 0");
  }
  if (auto r = devices_of(p); !r)
    return r.error();
  return {};
}

Result<void> apply_model_placement(const PlacementOptions& p, llama_model_params& params,
                                   DeviceList& devices, std::vector<float>& split) {
  if (auto r = check_placement(p); !r)
    return r;
  auto named = devices_of(p);
  if (!named)
    return named.error();
  if (no_devices(p) || !p.devices.empty()) {
    devices = std::move(named).value();
    devices.push_back(nullptr);  // NULL-terminated; just {nullptr} for 'none': the CPU only
    params.devices = devices.data();
  }
  if (p.n_gpu_layers == PlacementOptions::kAuto) {
    params.n_gpu_layers = gpu_devices(p, devices).empty() ? 0 : -1;
  } else {
    params.n_gpu_layers = p.n_gpu_layers;  // -1: all
  }
  params.split_mode = split_mode(p.split_mode).value();
  params.main_gpu = p.main_gpu;
  if (!p.tensor_split.empty()) {
    split.assign(llama_max_devices(), 0.0f);
    std::copy(p.tensor_split.begin(), p.tensor_split.end(), split.begin());
    params.tensor_split = split.data();
  }
  params.load_mode = p.mmap ? (p.mlock ? LLAMA_LOAD_MODE_MMAP_MLOCK : LLAMA_LOAD_MODE_AUTO)
                            : (p.mlock ? LLAMA_LOAD_MODE_MLOCK : LLAMA_LOAD_MODE_NONE);
  return {};
}

Result<llama_context_params> resolve_engine_context(bool embedding_only, BatchEngineConfig& config,
                                                    bool log) {
  if (config.n_parallel < 1 || config.n_parallel > 64) {
    return Error{Errc::invalid_request, "n_parallel must be 1..64", "n_parallel"};
  }
  if (config.n_ctx < config.n_parallel * 8) {
    return Error{Errc::invalid_request, "n_ctx is too small for n_parallel sequences", "n_ctx"};
  }
  if (config.spec != SpecType::none && (config.spec_ngram_n < 1 || config.spec_ngram_m < 1)) {
    return Error{Errc::invalid_request, "the n-gram draft's sizes must be at least 1",
                 "spec_ngram"};
  }
  if (config.spec_draft_max < 0 || config.spec_draft_min < 0 ||
      !(config.spec_draft_p_min >= 0.0f && config.spec_draft_p_min <= 1.0f)) {
    return Error{Errc::invalid_request,
                 "the draft model's sizes must be at least 0 and its p_min in [0, 1]",
                 "spec_draft"};
  }
  if (config.prefill_stretch < 0.0 ||
      (config.prefill_stretch > 0.0 && config.prefill_stretch < 1.0)) {
    return Error{Errc::invalid_request, "prefill_stretch must be 0 (off) or at least 1",
                 "prefill_stretch"};
  }
  config.n_batch = std::max(config.n_batch, config.n_parallel + 1);
  config.n_seq_chunk = std::max(config.n_seq_chunk, 1);
  // Each sequence's share, padded as llama.cpp pads KV caches (to 256 cells): asking for that
  // total keeps llama.cpp from rounding it down (or up) behind our back.
  constexpr std::int32_t kPad = 256;
  const auto pad = [](std::int32_t cells) { return (cells + kPad - 1) / kPad * kPad; };
  if (config.kv_unified) {
    const std::int32_t padded = pad(config.n_ctx);
    if (log && padded != config.n_ctx) {
      spdlog::info(
          "context: {} cells shared by {} sequences become {} (llama.cpp allocates "
          "KV cells in multiples of {})",
          config.n_ctx, config.n_parallel, padded, kPad);
    }
    config.n_ctx = padded;
  } else {
    const std::int32_t asked = config.n_ctx / config.n_parallel;
    const std::int32_t per_seq = pad(asked);
    if (log && per_seq != asked) {
      spdlog::info(
          "context: {} cells for {} sequences is {} each; each gets {} (llama.cpp "
          "allocates KV cells in multiples of {})",
          config.n_ctx, config.n_parallel, asked, per_seq, kPad);
    }
    config.n_ctx = per_seq * config.n_parallel;
  }
  if (config.n_threads <= 0) {
    config.n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  auto made_params = engine_context_params(config);
  if (!made_params)
    return made_params.error();
  llama_context_params params = *made_params;
  if (embedding_only)
    config.embeddings = true;
  if (config.embeddings) {
    params.embeddings = true;
    params.pooling_type = static_cast<enum llama_pooling_type>(config.pooling);
    params.kv_unified = true;  // see BatchEngineConfig::embeddings
  }
  return params;
}

Result<llama_context_params> engine_context_params(const BatchEngineConfig& config) {
  auto params = llama_context_default_params();
  params.n_ctx = static_cast<uint32_t>(config.n_ctx);
  params.n_seq_max = static_cast<uint32_t>(config.n_parallel);
  // One decode per step. A step within the budget fits one ubatch (which llama.cpp may still
  // cut by sequence: step_pacer.hpp); one past it (a short prompt taken whole while nothing
  // generates, step_capacity) is computed in two.
  params.n_batch = static_cast<uint32_t>(step_capacity(config));
  params.n_ubatch = static_cast<uint32_t>(config.n_batch + config.n_parallel);
  params.n_threads = config.n_threads;
  params.n_threads_batch = config.n_threads;
  params.kv_unified = config.kv_unified;
  params.swa_full = config.swa_full;  // llama.cpp's default is true, llama-server's false
  params.no_perf = true;
  if (auto r = apply_context_placement(config.placement, params); !r)
    return r.error();
  return params;
}

Result<void> apply_context_placement(const PlacementOptions& p, llama_context_params& params) {
  if (auto r = check_placement(p); !r)
    return r;
  auto fa = flash_attn_type(p.flash_attn);
  if (!fa)
    return fa.error();
  auto k = kv_type(p.cache_type_k, "--cache-type-k");
  if (!k)
    return k.error();
  auto v = kv_type(p.cache_type_v, "--cache-type-v");
  if (!v)
    return v.error();
  params.flash_attn_type = *fa;
  params.type_k = *k;
  params.type_v = *v;
  return {};
}

PlacementReport placement_report(const PlacementOptions& p, const llama_model* model,
                                 std::int32_t n_ctx) {
  PlacementReport r;
  const std::int32_t n_layer = llama_model_n_layer(model);
  r.layers_total = n_layer + 1;
  DeviceList named;
  if (auto d = devices_of(p))
    named = std::move(d).value();
  for (auto* dev : gpu_devices(p, named))
    r.devices.emplace_back(ggml_backend_dev_name(dev));
  if (!r.devices.empty() && llama_supports_gpu_offload()) {
    const std::int32_t asked = p.n_gpu_layers < 0 ? r.layers_total : p.n_gpu_layers;
    r.layers_offloaded = std::min(asked, r.layers_total);
  }
  r.flash_attn = p.flash_attn;
  r.cache_type_k = p.cache_type_k;
  r.cache_type_v = p.cache_type_v;
  const std::int32_t n_head = std::max(1, llama_model_n_head(model));
  const std::int64_t head_dim = llama_model_n_embd(model) / n_head;
  const std::int64_t kv_width = head_dim * llama_model_n_head_kv(model);
  auto type_or_f16 = [](const std::string& name) {
    auto t = kv_type(name, "");
    return t ? t.value() : GGML_TYPE_F16;
  };
  const ggml_type k = type_or_f16(p.cache_type_k), v = type_or_f16(p.cache_type_v);
  const double bytes = static_cast<double>(n_ctx) * n_layer *
                       static_cast<double>(ggml_row_size(k, kv_width) + ggml_row_size(v, kv_width));
  // llama.cpp tells the heads of the first layer only, which a hybrid's may lack.
  const bool layers_differ = llama_model_is_recurrent(model) || llama_model_is_hybrid(model);
  r.kv_mib = layers_differ ? -1.0 : bytes / (1024.0 * 1024.0);
  return r;
}

std::string PlacementReport::summary() const {
  const std::string where = layers_offloaded > 0
                                ? fmt::format("{}/{} layers on {}", layers_offloaded, layers_total,
                                              fmt::join(devices, ", "))
                                : fmt::format("all {} layers on the CPU", layers_total);
  const std::string size =
      measured     ? fmt::format(": {:.1f} MiB, compute buffers {:.1f} MiB", kv_mib, compute_mib)
      : kv_mib < 0 ? std::string(" (a recurrent state besides)")
                   : fmt::format(", about {:.1f} MiB", kv_mib);
  return fmt::format("{}; flash attention {}; KV cache K {} V {}{}", where, flash_attn,
                     cache_type_k, cache_type_v, size);
}

}  // namespace troupe::engine
