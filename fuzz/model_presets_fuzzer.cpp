// Fuzzes the --models-preset INI reader: every input ends as presets or an error that names
// the file and a line; no crash, no sanitizer report, no exception; every key it accepts is
// one it knows, and every section has an id.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/presets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace troupe::models;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto presets = parse_presets(text, "p.ini");
  if (!presets) {
    if (presets.error().message.rfind("p.ini:", 0) != 0)
      __builtin_trap();  // an error that does not say where
    return 0;
  }
  const auto& keys = preset_keys();
  for (const auto& p : *presets) {
    if (p.id.empty())
      __builtin_trap();
    for (const auto& s : p.settings) {
      if (std::find(keys.begin(), keys.end(), s.key) == keys.end())
        __builtin_trap();
    }
  }
  return 0;
}
