#pragma once
// What a GGUF file says of its model without loading it: the architecture, the parameter
// count, the weights' type and the file's size. Ollama's /api/tags and /api/show list them.
//
// Thread-safety: a pure function of the file; any thread.

#include <cstdint>
#include <string>

#include "util/result.hpp"

namespace troupe::engine {

struct ModelDetails {
  std::string architecture;      // general.architecture ("llama", "qwen2", "bert", ...)
  std::uint64_t parameters = 0;  // the elements of every tensor
  std::string quantization;      // general.file_type's name ("Q4_0", "F16", "Q4_K_M", ...)
  std::uint64_t size_bytes = 0;  // the file's size (a split model: its first part's)
  std::int64_t modified = 0;     // the file's modification time, unix seconds
  friend bool operator==(const ModelDetails&, const ModelDetails&) = default;
};

// Reads the GGUF header of `path` (metadata and tensor shapes, no weights). Errors:
// invalid_request when the file cannot be read as a GGUF.
Result<ModelDetails> read_model_details(const std::string& path);

// llama.cpp's name for a general.file_type value (llama_ftype): "F16", "Q4_K_M"...; "" when
// unknown.
std::string file_type_name(std::uint32_t file_type);

// "134.2M", "1.2B", "8.0B": a parameter count as Ollama shows it.
std::string parameter_size(std::uint64_t parameters);

}  // namespace troupe::engine
