#pragma once
// The presets file of `troupe serve --models-preset FILE`: per-model settings in INI form.
//
//   # comments start with # or ;
//   [qwen]                      # the model id clients send in "model"
//   path = /models/qwen2.5-0.5b-instruct-q4_k_m.gguf
//   alias = qwen-small, q       # more names for it
//   ctx-size = 8192
//   temp = 0.7
//
// A section names one model; its keys are the long names of `troupe serve`'s engine flags
// (see preset_keys()) plus `path` (or `hf-repo`/`hf-file`: a model from Hugging Face) and `alias`.
// This unit only reads the file's shape (sections, keys, values, line numbers) and checks that
// every key is known; the CLI applies the values through the same flag definitions as the command
// line, so a value is checked exactly as the flag's.
//
// Thread-safety: pure functions.

#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace troupe::models {

struct PresetSetting {
  std::string key;
  std::string value;
  int line = 0;  // 1-based, for errors
};

struct Preset {
  std::string id;  // the section's name
  int line = 0;    // of the [section] header
  std::vector<PresetSetting> settings;
  // The value of `key`, or nullptr.
  const PresetSetting* find(std::string_view key) const;
};

// The keys a section may hold.
const std::vector<std::string>& preset_keys();

// Parses the text of a presets file named `file` (for messages). Errors: invalid_request
// "FILE:LINE: ..." for a key outside a section, a line that is neither a section, a
// key = value pair, a comment nor blank, an unknown key (naming it), a key set twice in a
// section, a section given twice, an empty section name or value.
Result<std::vector<Preset>> parse_presets(std::string_view text, const std::string& file);

// Reads and parses the file. Errors: as parse_presets, or the file cannot be read.
Result<std::vector<Preset>> load_presets(const std::string& file);

}  // namespace troupe::models
