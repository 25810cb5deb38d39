#include "engine/model_details.hpp"

#include <fmt/format.h>
#include <ggml.h>
#include <gguf.h>
#include <llama.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

namespace troupe::engine {
namespace {

struct GgufClose {
  void operator()(gguf_context* g) const { gguf_free(g); }
};
struct GgmlClose {
  void operator()(ggml_context* c) const { ggml_free(c); }
};

// The name of the type most of the weights' bytes have ("F16", "Q8_0"): the file type of a file
// that does not say it.
std::string dominant_type(const ggml_context* meta) {
  std::map<ggml_type, std::uint64_t> bytes;
  for (ggml_tensor* t = ggml_get_first_tensor(meta); t != nullptr;
       t = ggml_get_next_tensor(meta, t)) {
    if (ggml_n_dims(t) >= 2)
      bytes[t->type] += ggml_nbytes(t);
  }
  const auto most = std::max_element(
      bytes.begin(), bytes.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  if (most == bytes.end())
    return {};
  std::string name = ggml_type_name(most->first);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return name;
}

}  // namespace

std::string file_type_name(std::uint32_t file_type) {
  static constexpr std::pair<llama_ftype, const char*> names[] = {
      {LLAMA_FTYPE_ALL_F32, "F32"},
      {LLAMA_FTYPE_MOSTLY_F16, "F16"},
      {LLAMA_FTYPE_MOSTLY_BF16, "BF16"},
      {LLAMA_FTYPE_MOSTLY_Q4_0, "Q4_0"},
      {LLAMA_FTYPE_MOSTLY_Q4_1, "Q4_1"},
      {LLAMA_FTYPE_MOSTLY_Q5_0, "Q5_0"},
      {LLAMA_FTYPE_MOSTLY_Q5_1, "Q5_1"},
      {LLAMA_FTYPE_MOSTLY_Q8_0, "Q8_0"},
      {LLAMA_FTYPE_MOSTLY_Q2_K, "Q2_K"},
      {LLAMA_FTYPE_MOSTLY_Q2_K_S, "Q2_K_S"},
      {LLAMA_FTYPE_MOSTLY_Q3_K_S, "Q3_K_S"},
      {LLAMA_FTYPE_MOSTLY_Q3_K_M, "Q3_K_M"},
      {LLAMA_FTYPE_MOSTLY_Q3_K_L, "Q3_K_L"},
      {LLAMA_FTYPE_MOSTLY_Q4_K_S, "Q4_K_S"},
      {LLAMA_FTYPE_MOSTLY_Q4_K_M, "Q4_K_M"},
      {LLAMA_FTYPE_MOSTLY_Q5_K_S, "Q5_K_S"},
      {LLAMA_FTYPE_MOSTLY_Q5_K_M, "Q5_K_M"},
      {LLAMA_FTYPE_MOSTLY_Q6_K, "Q6_K"},
      {LLAMA_FTYPE_MOSTLY_IQ1_S, "IQ1_S"},
      {LLAMA_FTYPE_MOSTLY_IQ1_M, "IQ1_M"},
      {LLAMA_FTYPE_MOSTLY_IQ2_XXS, "IQ2_XXS"},
      {LLAMA_FTYPE_MOSTLY_IQ2_XS, "IQ2_XS"},
      {LLAMA_FTYPE_MOSTLY_IQ2_S, "IQ2_S"},
      {LLAMA_FTYPE_MOSTLY_IQ2_M, "IQ2_M"},
      {LLAMA_FTYPE_MOSTLY_IQ3_XXS, "IQ3_XXS"},
      {LLAMA_FTYPE_MOSTLY_IQ3_XS, "IQ3_XS"},
      {LLAMA_FTYPE_MOSTLY_IQ3_S, "IQ3_S"},
      {LLAMA_FTYPE_MOSTLY_IQ3_M, "IQ3_M"},
      {LLAMA_FTYPE_MOSTLY_IQ4_NL, "IQ4_NL"},
      {LLAMA_FTYPE_MOSTLY_IQ4_XS, "IQ4_XS"},
      {LLAMA_FTYPE_MOSTLY_TQ1_0, "TQ1_0"},
      {LLAMA_FTYPE_MOSTLY_TQ2_0, "TQ2_0"},
      {LLAMA_FTYPE_MOSTLY_MXFP4_MOE, "MXFP4_MOE"},
  };
  for (const auto& [type, name] : names) {
    if (static_cast<std::uint32_t>(type) == file_type)
      return name;
  }
  return {};
}

std::string parameter_size(std::uint64_t parameters) {
  const auto p = static_cast<double>(parameters);
  if (p >= 1e9)
    return fmt::format("{:.1f}B", p / 1e9);
  if (p >= 1e6)
    return fmt::format("{:.1f}M", p / 1e6);
  if (p >= 1e3)
    return fmt::format("{:.1f}K", p / 1e3);
  return fmt::format("{}", parameters);
}

Result<ModelDetails> read_model_details(const std::string& path) {
  ggml_context* meta_raw = nullptr;
  gguf_init_params params{/*no_alloc=*/true, &meta_raw};
  std::unique_ptr<gguf_context, GgufClose> g(gguf_init_from_file(path.c_str(), params));
  std::unique_ptr<ggml_context, GgmlClose> meta(meta_raw);
  if (!g || !meta)
    return Error{Errc::invalid_request, fmt::format("{}: not a readable GGUF file", path)};
  ModelDetails d;
  if (const std::int64_t id = gguf_find_key(g.get(), "general.architecture");
      id >= 0 && gguf_get_kv_type(g.get(), id) == GGUF_TYPE_STRING)
    d.architecture = gguf_get_val_str(g.get(), id);
  for (ggml_tensor* t = ggml_get_first_tensor(meta.get()); t != nullptr;
       t = ggml_get_next_tensor(meta.get(), t))
    d.parameters += static_cast<std::uint64_t>(ggml_nelements(t));
  if (const std::int64_t id = gguf_find_key(g.get(), "general.file_type");
      id >= 0 && gguf_get_kv_type(g.get(), id) == GGUF_TYPE_UINT32)
    d.quantization = file_type_name(gguf_get_val_u32(g.get(), id));
  if (d.quantization.empty())
    d.quantization = dominant_type(meta.get());
  std::error_code ec;
  d.size_bytes = std::filesystem::file_size(path, ec);
  if (ec)
    d.size_bytes = 0;
  const auto mtime = std::filesystem::last_write_time(path, ec);
  if (!ec) {
    d.modified = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                     .count();
  }
  return d;
}

}  // namespace troupe::engine
