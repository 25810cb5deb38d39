#include "engine/lora.hpp"

#include <fmt/format.h>
#include <llama.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>

namespace troupe::engine {
namespace {

std::string adapter_meta(const llama_adapter_lora* a, const char* key) {
  char buf[1024];
  const std::int32_t n = llama_adapter_meta_val_str(a, key, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, std::min<std::size_t>(n, sizeof buf - 1));
}

Error bad_lora(std::string message) {
  return Error{Errc::invalid_request, std::move(message), "lora"};
}

}  // namespace

Result<LoraSpec> parse_lora_scaled(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Error{Errc::invalid_request,
                 fmt::format("--lora-scaled takes FILE:SCALE, got '{}'", text), "lora-scaled"};
  }
  const std::string_view number = text.substr(colon + 1);
  float scale = 0.0f;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), scale);
  if (ec != std::errc{} || end != number.data() + number.size() || !std::isfinite(scale)) {
    return Error{Errc::invalid_request,
                 fmt::format("--lora-scaled: '{}' is not a scale (a finite number)", number),
                 "lora-scaled"};
  }
  return LoraSpec{std::string(text.substr(0, colon)), scale};
}

Result<std::vector<LoraAdapter>> load_lora_adapters(llama_model* model,
                                                    std::span<const LoraSpec> specs) {
  std::vector<LoraAdapter> out;
  for (const LoraSpec& spec : specs) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(spec.path, ec))
      return Error{Errc::not_found, fmt::format("LoRA adapter not found: {}", spec.path)};
    llama_adapter_lora* a = llama_adapter_lora_init(model, spec.path.c_str());
    if (a == nullptr) {
      return Error{Errc::invalid_request,
                   fmt::format("llama.cpp could not load the LoRA adapter {} (not a LoRA GGUF, "
                               "or made for another base model: its log says which)",
                               spec.path)};
    }
    if (llama_adapter_get_alora_n_invocation_tokens(a) != 0) {
      llama_adapter_lora_free(a);
      return Error{Errc::invalid_request,
                   fmt::format("{} is an activated LoRA (it has invocation tokens): not supported",
                               spec.path)};
    }
    LoraAdapter loaded;
    loaded.path = spec.path;
    loaded.scale = spec.scale;
    loaded.task_name = adapter_meta(a, "adapter.lora.task_name");
    loaded.prompt_prefix = adapter_meta(a, "adapter.lora.prompt_prefix");
    loaded.handle = a;
    out.push_back(std::move(loaded));
  }
  return out;
}

void LoraTable::assign(std::vector<LoraAdapter> adapters) {
  std::lock_guard lock(mu_);
  adapters_ = std::move(adapters);
}

std::vector<llama_adapter_lora*> LoraTable::handles() const {
  std::lock_guard lock(mu_);
  std::vector<llama_adapter_lora*> out;
  for (const LoraAdapter& a : adapters_)
    out.push_back(a.handle);
  return out;
}

std::vector<LoraAdapterInfo> LoraTable::list() const {
  std::lock_guard lock(mu_);
  return {adapters_.begin(), adapters_.end()};
}

Result<std::vector<float>> LoraTable::resolve(const LoraRequest& request) const {
  std::vector<float> scales(adapters_.size(), 0.0f);
  for (const auto& [id, scale] : request) {
    if (id < 0 || static_cast<std::size_t>(id) >= adapters_.size()) {
      return bad_lora(adapters_.empty()
                          ? fmt::format("no LoRA adapter has id {}: this server loaded none "
                                        "(start it with --lora FILE)",
                                        id)
                          : fmt::format("no LoRA adapter has id {} (ids 0 to {}: GET "
                                        "/lora-adapters lists them)",
                                        id, adapters_.size() - 1));
    }
    if (!std::isfinite(scale))
      return bad_lora(fmt::format("LoRA adapter {}'s scale must be a finite number", id));
    scales[static_cast<std::size_t>(id)] = scale;
  }
  return scales;
}

Result<std::vector<float>> LoraTable::scales_for(const std::optional<LoraRequest>& request) const {
  std::lock_guard lock(mu_);
  if (request)
    return resolve(*request);
  std::vector<float> scales;
  for (const LoraAdapter& a : adapters_)
    scales.push_back(a.scale);
  return scales;
}

Result<void> LoraTable::set_scales(const LoraRequest& request) {
  std::lock_guard lock(mu_);
  auto scales = resolve(request);
  if (!scales)
    return scales.error();
  for (std::size_t i = 0; i < adapters_.size(); ++i)
    adapters_[i].scale = (*scales)[i];
  return {};
}

}  // namespace troupe::engine
