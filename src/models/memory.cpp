#include "models/memory.hpp"

#include <fmt/format.h>
#include <ggml.h>
#include <gguf.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

namespace troupe::models {
namespace {

struct GgufFree {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufFree>;

Error bad_file(const std::string& path, const std::string& why) {
  return Error{Errc::invalid_request, fmt::format("{}: {}", path, why)};
}

// An unsigned integer value, or the largest element of an integer array (per-layer counts).
std::optional<std::uint64_t> read_uint(const gguf_context* g, const std::string& key) {
  const std::int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0)
    return std::nullopt;
  auto scalar = [&](gguf_type t, const void* data, std::size_t i) -> std::optional<std::uint64_t> {
    switch (t) {
      case GGUF_TYPE_UINT32:
        return static_cast<const std::uint32_t*>(data)[i];
      case GGUF_TYPE_INT32:
        return static_cast<std::uint64_t>(std::max(0, static_cast<const std::int32_t*>(data)[i]));
      case GGUF_TYPE_UINT64:
        return static_cast<const std::uint64_t*>(data)[i];
      default:
        return std::nullopt;
    }
  };
  const gguf_type t = gguf_get_kv_type(g, id);
  if (t != GGUF_TYPE_ARRAY)
    return scalar(t, gguf_get_val_data(g, id), 0);
  std::optional<std::uint64_t> best;
  const std::size_t n = gguf_get_arr_n(g, id);
  for (std::size_t i = 0; i < n; ++i) {
    auto v = scalar(gguf_get_arr_type(g, id), gguf_get_arr_data(g, id), i);
    if (v && (!best || *v > *best))
      best = v;
  }
  return best;
}

std::optional<ggml_type> type_by_name(const std::string& name) {
  for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
    const char* n = ggml_type_name(static_cast<ggml_type>(t));
    if (n != nullptr && name == n)
      return static_cast<ggml_type>(t);
  }
  return std::nullopt;
}

struct KvShape {
  std::uint64_t n_layer = 0;
  std::uint64_t n_ctx_train = 0;
  std::uint64_t n_embd_k_gqa = 0;
  std::uint64_t n_embd_v_gqa = 0;
};

Result<KvShape> kv_shape(const gguf_context* g, const std::string& path) {
  const std::int64_t arch_id = gguf_find_key(g, "general.architecture");
  if (arch_id < 0 || gguf_get_kv_type(g, arch_id) != GGUF_TYPE_STRING)
    return bad_file(path, "no general.architecture in the GGUF metadata");
  const std::string arch = gguf_get_val_str(g, arch_id);
  auto get = [&](const char* key) { return read_uint(g, arch + "." + key); };
  const auto n_layer = get("block_count");
  const auto n_embd = get("embedding_length");
  const auto n_head = get("attention.head_count");
  if (!n_layer || !n_embd || !n_head || *n_head == 0) {
    return bad_file(path, fmt::format("the GGUF lacks {0}.block_count, {0}.embedding_length or "
                                      "{0}.attention.head_count",
                                      arch));
  }
  const std::uint64_t n_head_kv = get("attention.head_count_kv").value_or(*n_head);
  const std::uint64_t head_k = get("attention.key_length").value_or(*n_embd / *n_head);
  const std::uint64_t head_v = get("attention.value_length").value_or(*n_embd / *n_head);
  return KvShape{*n_layer, get("context_length").value_or(0), head_k * n_head_kv,
                 head_v * n_head_kv};
}

}  // namespace

Result<MemoryEstimate> estimate_memory(const std::string& path, std::int32_t n_ctx,
                                       const std::string& cache_type_k,
                                       const std::string& cache_type_v) {
  const auto tk = type_by_name(cache_type_k);
  const auto tv = type_by_name(cache_type_v);
  if (!tk || !tv) {
    return Error{Errc::invalid_request,
                 fmt::format("unknown KV cache type '{}'", tk ? cache_type_v : cache_type_k)};
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return bad_file(path, ec.message());
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  GgufPtr g(gguf_init_from_file(path.c_str(), params));
  if (!g)
    return bad_file(path, "not a readable GGUF file");
  auto shape = kv_shape(g.get(), path);
  if (!shape)
    return shape.error();
  const std::uint64_t cells = n_ctx > 0 ? static_cast<std::uint64_t>(n_ctx) : shape->n_ctx_train;
  const std::uint64_t per_cell =
      ggml_row_size(*tk, static_cast<std::int64_t>(shape->n_embd_k_gqa)) +
      ggml_row_size(*tv, static_cast<std::int64_t>(shape->n_embd_v_gqa));
  return MemoryEstimate{size, shape->n_layer * cells * per_cell};
}

Result<std::uint64_t> parse_bytes(const std::string& text) {
  const auto bad = [&] {
    return Error{Errc::invalid_request,
                 fmt::format("'{}' is not a byte count (e.g. 8GiB, 512MB, 1000000)", text)};
  };
  double value = 0;
  const char* end = text.data() + text.size();
  auto [p, err] = std::from_chars(text.data(), end, value);
  if (err != std::errc() || !(value >= 0) || !std::isfinite(value))
    return bad();
  std::string unit(p, end);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!unit.empty() && unit.front() == ' ')
    unit.erase(unit.begin());
  static const std::pair<const char*, double> units[] = {{"", 1},
                                                         {"b", 1},
                                                         {"kb", 1e3},
                                                         {"mb", 1e6},
                                                         {"gb", 1e9},
                                                         {"tb", 1e12},
                                                         {"kib", 1024.0},
                                                         {"mib", 1048576.0},
                                                         {"gib", 1073741824.0},
                                                         {"tib", 1099511627776.0},
                                                         {"k", 1024.0},
                                                         {"m", 1048576.0},
                                                         {"g", 1073741824.0}};
  for (const auto& [name, scale] : units) {
    if (unit == name) {
      const double bytes = value * scale;
      if (bytes > 1.8e19)
        return bad();
      return static_cast<std::uint64_t>(bytes);
    }
  }
  return bad();
}

std::string format_bytes(std::uint64_t bytes) {
  static const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024.0 && i < 4) {
    v /= 1024.0;
    ++i;
  }
  return i == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, names[i]);
}

}  // namespace troupe::models
