#include "models/presets.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace troupe::models {
namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos)
    return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

// The line without a trailing comment (" #" or " ;" after the value, or a whole-line one).
std::string_view strip_comment(std::string_view line) {
  const auto t = trim(line);
  if (!t.empty() && (t.front() == '#' || t.front() == ';'))
    return {};
  for (std::size_t i = 1; i < line.size(); ++i) {
    if ((line[i] == '#' || line[i] == ';') && (line[i - 1] == ' ' || line[i - 1] == '\t'))
      return line.substr(0, i);
  }
  return line;
}

Error at(const std::string& file, int line, const std::string& what) {
  return Error{Errc::invalid_request, fmt::format("{}:{}: {}", file, line, what)};
}

bool known_key(std::string_view key) {
  const auto& keys = preset_keys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// Adds `key = value` on `line_no` to the last preset.
Result<void> add_setting(std::vector<Preset>& presets, std::string_view line, int line_no,
                         const std::string& file) {
  const auto eq = line.find('=');
  if (eq == std::string_view::npos)
    return at(file, line_no, fmt::format("expected [model-id] or key = value, got '{}'", line));
  const std::string key(trim(line.substr(0, eq)));
  const std::string value(trim(line.substr(eq + 1)));
  if (presets.empty())
    return at(file, line_no, fmt::format("'{}' comes before any [model-id] section", key));
  if (!known_key(key)) {
    return at(file, line_no,
              fmt::format("unknown key '{}' (known: {})", key, fmt::join(preset_keys(), ", ")));
  }
  if (value.empty())
    return at(file, line_no, fmt::format("'{}' has no value", key));
  Preset& p = presets.back();
  if (const auto* old = p.find(key)) {
    return at(file, line_no,
              fmt::format("'{}' is set twice in [{}] (first on line {})", key, p.id, old->line));
  }
  p.settings.push_back({key, value, line_no});
  return {};
}

Result<void> add_section(std::vector<Preset>& presets, std::string_view line, int line_no,
                         const std::string& file) {
  if (line.back() != ']')
    return at(file, line_no, fmt::format("a section header must end with ']': '{}'", line));
  const std::string id(trim(line.substr(1, line.size() - 2)));
  if (id.empty())
    return at(file, line_no, "empty section name: write [model-id]");
  for (const auto& p : presets) {
    if (p.id == id)
      return at(file, line_no, fmt::format("[{}] is given twice (first on line {})", id, p.line));
  }
  presets.push_back(Preset{id, line_no, {}});
  return {};
}

}  // namespace

const PresetSetting* Preset::find(std::string_view key) const {
  for (const auto& s : settings) {
    if (s.key == key)
      return &s;
  }
  return nullptr;
}

const std::vector<std::string>& preset_keys() {
  static const std::vector<std::string> keys = {"path",
                                                "hf-repo",
                                                "hf-file",
                                                "alias",
                                                "ctx-size",
                                                "parallel",
                                                "kv-unified",
                                                "no-kv-unified",
                                                "swa-full",
                                                "ctx-checkpoints",
                                                "batch",
                                                "threads",
                                                "max-queue",
                                                "cache-ram",
                                                "spec-type",
                                                "spec-ngram-simple-size-n",
                                                "spec-ngram-simple-size-m",
                                                "spec-draft-policy",
                                                "spec-draft-model",
                                                "model-draft",
                                                "spec-draft-n-max",
                                                "spec-draft-n-min",
                                                "spec-draft-p-min",
                                                "lora",
                                                "lora-scaled",
                                                "lora-init-without-apply",
                                                "chat-template",
                                                "chat-template-file",
                                                "n-gpu-layers",
                                                "gpu-layers",
                                                "device",
                                                "split-mode",
                                                "tensor-split",
                                                "main-gpu",
                                                "flash-attn",
                                                "cache-type-k",
                                                "cache-type-v",
                                                "no-mmap",
                                                "mlock",
                                                "embeddings",
                                                "pooling",
                                                "temp",
                                                "temperature",
                                                "top-k",
                                                "top-p",
                                                "min-p",
                                                "repeat-penalty",
                                                "seed",
                                                "n-predict"};
  return keys;
}

Result<std::vector<Preset>> parse_presets(std::string_view text, const std::string& file) {
  std::vector<Preset> presets;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos)
      end = text.size();
    const auto line = trim(strip_comment(text.substr(pos, end - pos)));
    pos = end + 1;
    ++line_no;
    if (line.empty())
      continue;
    auto ok = line.front() == '[' ? add_section(presets, line, line_no, file)
                                  : add_setting(presets, line, line_no, file);
    if (!ok)
      return ok.error();
  }
  return presets;
}

Result<std::vector<Preset>> load_presets(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return Error{Errc::invalid_request, fmt::format("--models-preset {}: cannot read it", file)};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_presets(text.str(), file);
}

}  // namespace troupe::models
