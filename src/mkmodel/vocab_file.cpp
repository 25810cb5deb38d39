#include "mkmodel/vocab_file.hpp"

#include <fmt/format.h>
#include <gguf.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <vector>

namespace troupe::mkmodel {
namespace {

Error bad_vocab(std::string message) {
  return Error{Errc::invalid_request, std::move(message), "vocab"};
}

// Checks what gguf_init_from_file would only report through ggml's log: that the file exists,
// is readable and starts with the GGUF magic.
Result<void> check_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return bad_vocab(fmt::format("vocabulary file not found: {}", path));
  if (!std::filesystem::is_regular_file(path, ec))
    return bad_vocab(fmt::format("vocabulary {} is not a regular file", path));
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, sizeof(magic))) {
    if (!in.is_open())
      return bad_vocab(fmt::format("cannot read vocabulary file {}", path));
    return bad_vocab(fmt::format("vocabulary {} is not a GGUF file (too short)", path));
  }
  if (std::memcmp(magic, "GGUF", 4) != 0)
    return bad_vocab(fmt::format("vocabulary {} is not a GGUF file", path));
  return {};
}

void copy_scalar(gguf_context* dst, const char* key, const gguf_context* src, std::int64_t i) {
  switch (gguf_get_kv_type(src, i)) {
    case GGUF_TYPE_UINT8:
      return gguf_set_val_u8(dst, key, gguf_get_val_u8(src, i));
    case GGUF_TYPE_INT8:
      return gguf_set_val_i8(dst, key, gguf_get_val_i8(src, i));
    case GGUF_TYPE_UINT16:
      return gguf_set_val_u16(dst, key, gguf_get_val_u16(src, i));
    case GGUF_TYPE_INT16:
      return gguf_set_val_i16(dst, key, gguf_get_val_i16(src, i));
    case GGUF_TYPE_UINT32:
      return gguf_set_val_u32(dst, key, gguf_get_val_u32(src, i));
    case GGUF_TYPE_INT32:
      return gguf_set_val_i32(dst, key, gguf_get_val_i32(src, i));
    case GGUF_TYPE_FLOAT32:
      return gguf_set_val_f32(dst, key, gguf_get_val_f32(src, i));
    case GGUF_TYPE_UINT64:
      return gguf_set_val_u64(dst, key, gguf_get_val_u64(src, i));
    case GGUF_TYPE_INT64:
      return gguf_set_val_i64(dst, key, gguf_get_val_i64(src, i));
    case GGUF_TYPE_FLOAT64:
      return gguf_set_val_f64(dst, key, gguf_get_val_f64(src, i));
    case GGUF_TYPE_BOOL:
      return gguf_set_val_bool(dst, key, gguf_get_val_bool(src, i));
    case GGUF_TYPE_STRING:
      return gguf_set_val_str(dst, key, gguf_get_val_str(src, i));
    default:
      return;  // arrays are copied by copy_array; no other types exist
  }
}

Result<void> copy_array(gguf_context* dst, const char* key, const gguf_context* src,
                        std::int64_t i) {
  const gguf_type type = gguf_get_arr_type(src, i);
  const std::size_t n = gguf_get_arr_n(src, i);
  if (type == GGUF_TYPE_STRING) {
    std::vector<const char*> items(n);
    for (std::size_t k = 0; k < n; ++k)
      items[k] = gguf_get_arr_str(src, i, k);
    gguf_set_arr_str(dst, key, items.data(), n);
    return {};
  }
  if (type == GGUF_TYPE_ARRAY)
    return Error{Errc::internal, fmt::format("cannot copy {}: nested arrays", key)};
  gguf_set_arr_data(dst, key, type, gguf_get_arr_data(src, i), n);
  return {};
}

}  // namespace

void VocabFile::Deleter::operator()(gguf_context* g) const {
  gguf_free(g);
}

VocabFile::VocabFile(std::unique_ptr<gguf_context, Deleter> g, std::string path,
                     std::int32_t n_tokens, std::string model)
    : g_(std::move(g)), path_(std::move(path)), n_tokens_(n_tokens), model_(std::move(model)) {}
VocabFile::VocabFile(VocabFile&&) noexcept = default;
VocabFile& VocabFile::operator=(VocabFile&&) noexcept = default;
VocabFile::~VocabFile() = default;

Result<VocabFile> VocabFile::open(const std::string& path) {
  if (auto ok = check_gguf_file(path); !ok)
    return ok.error();
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  std::unique_ptr<gguf_context, Deleter> g(gguf_init_from_file(path.c_str(), params));
  if (!g)
    return bad_vocab(fmt::format("vocabulary {} is not a valid GGUF file", path));
  const std::int64_t model_key = gguf_find_key(g.get(), "tokenizer.ggml.model");
  const std::int64_t tokens_key = gguf_find_key(g.get(), "tokenizer.ggml.tokens");
  if (model_key < 0 || tokens_key < 0 || gguf_get_kv_type(g.get(), model_key) != GGUF_TYPE_STRING ||
      gguf_get_kv_type(g.get(), tokens_key) != GGUF_TYPE_ARRAY ||
      gguf_get_arr_type(g.get(), tokens_key) != GGUF_TYPE_STRING) {
    return bad_vocab(fmt::format(
        "{} has no tokenizer (no tokenizer.ggml.model and tokenizer.ggml.tokens)", path));
  }
  const std::size_t n = gguf_get_arr_n(g.get(), tokens_key);
  if (n == 0 || n > static_cast<std::size_t>(INT32_MAX))
    return bad_vocab(fmt::format("{} has {} tokens", path, n));
  std::string model = gguf_get_val_str(g.get(), model_key);
  return VocabFile(std::move(g), path, static_cast<std::int32_t>(n), std::move(model));
}

Result<void> VocabFile::copy_into(gguf_context* dst) const {
  constexpr std::string_view kPrefix = "tokenizer.";
  const std::int64_t n_kv = gguf_get_n_kv(g_.get());
  for (std::int64_t i = 0; i < n_kv; ++i) {
    const char* key = gguf_get_key(g_.get(), i);
    if (std::string_view(key).substr(0, kPrefix.size()) != kPrefix)
      continue;
    if (gguf_get_kv_type(g_.get(), i) == GGUF_TYPE_ARRAY) {
      if (auto ok = copy_array(dst, key, g_.get(), i); !ok)
        return ok;
    } else {
      copy_scalar(dst, key, g_.get(), i);
    }
  }
  return {};
}

}  // namespace troupe::mkmodel
