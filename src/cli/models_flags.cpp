#include "cli/models_flags.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "cli/duration_option.hpp"
#include "hub/hub.hpp"
#include "models/memory.hpp"
#include "models/presets.hpp"
#include "util/duration.hpp"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;

struct Named {
  std::string id;
  std::string path;
  const models::Preset* preset = nullptr;
};

// The *.gguf files of `dir`, sorted by name.
Result<std::vector<Named>> scan_dir(const std::string& dir) {
  std::error_code ec;
  std::vector<Named> out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() == ".gguf" && it->is_regular_file())
      out.push_back({p.stem().string(), p.string(), nullptr});
  }
  if (ec)
    return Error{Errc::invalid_request, fmt::format("--models-dir {}: {}", dir, ec.message())};
  std::sort(out.begin(), out.end(), [](const Named& a, const Named& b) { return a.id < b.id; });
  return out;
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty())
      out.push_back(item);
  }
  return out;
}

// The flags `base` with one preset setting applied through the flag's own definition.
Result<void> apply_setting(EngineFlags& flags, const models::PresetSetting& s,
                           const std::string& file) {
  CLI::App app;
  add_engine_flags(app, flags, "");
  std::vector<std::string> args{fmt::format("--{}={}", s.key, s.value)};
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return Error{Errc::invalid_request,
                 fmt::format("{}:{}: {} = {}: {}", file, s.line, s.key, s.value, e.what())};
  }
  return {};
}

// Model `n`'s engine options: the command line's, then its preset's settings.
Result<models::ModelConfig> model_config(const EngineFlags& f, const Named& n,
                                         const std::string& file) {
  EngineFlags flags = f;
  flags.alias.clear();
  flags.hf_repo.clear();  // a preset's hf-repo / hf-file name a model from Hugging Face
  flags.hf_file.clear();
  std::vector<std::string> aliases;
  if (n.preset != nullptr) {
    for (const auto& s : n.preset->settings) {
      if (s.key == "alias") {
        aliases = split_list(s.value);
      } else if (s.key != "path") {
        if (auto ok = apply_setting(flags, s, file); !ok)
          return ok.error();
      }
    }
  }
  std::string path = n.path;
  if (!flags.hf_repo.empty() || !flags.hf_file.empty()) {
    if (!path.empty()) {
      return Error{Errc::invalid_request,
                   fmt::format("{}:{}: [{}] has both a file and hf-repo/hf-file", file,
                               n.preset->line, n.id)};
    }
    auto resolved = hub::resolve_model(flags.hf_repo, flags.hf_file);
    if (!resolved) {
      return Error{resolved.error().code, fmt::format("{}:{}: [{}]: {}", file, n.preset->line, n.id,
                                                      resolved.error().message)};
    }
    path = std::move(resolved).value();
  }
  auto eo = engine_options(flags, path);
  if (!eo) {
    return Error{
        Errc::invalid_request,
        n.preset ? fmt::format("{}:{}: [{}]: {}", file, n.preset->line, n.id, eo.error().message)
                 : fmt::format("model {}: {}", n.id, eo.error().message)};
  }
  eo->model_id = n.id;
  eo->aliases = std::move(aliases);
  return models::ModelConfig{std::move(eo).value()};
}

// The -m files and the directory's, with the presets applied or added.
Result<std::vector<Named>> named_models(const EngineFlags& f, const ModelsFlags& m,
                                        const std::vector<models::Preset>& presets) {
  std::vector<Named> list;
  for (const auto& path : f.models)
    list.push_back({fs::path(path).stem().string(), path, nullptr});
  std::vector<Named> from_dir;
  if (!m.dir.empty()) {
    auto scanned = scan_dir(m.dir);
    if (!scanned)
      return scanned.error();
    from_dir = std::move(scanned).value();
  }
  auto find = [](std::vector<Named>& v, const std::string& id) {
    return std::find_if(v.begin(), v.end(), [&](const Named& x) { return x.id == id; });
  };
  for (const auto& p : presets) {
    const auto* path = p.find("path");
    const bool from_hub = p.find("hf-repo") != nullptr || p.find("hf-file") != nullptr;
    auto it = find(list, p.id);
    if (it == list.end()) {
      auto d = find(from_dir, p.id);
      if (d == from_dir.end() && path == nullptr && !from_hub) {
        return Error{Errc::invalid_request,
                     fmt::format("{}:{}: [{}] has no path or hf-repo, and no model of that id "
                                 "is given (-m or {}.gguf in --models-dir)",
                                 m.preset_file, p.line, p.id, p.id)};
      }
      list.push_back(d != from_dir.end() ? *d : Named{p.id, {}, nullptr});
      if (d != from_dir.end())
        from_dir.erase(d);
      it = list.end() - 1;
    }
    it->preset = &p;
    if (path != nullptr)
      it->path = path->value;
  }
  for (auto& d : from_dir) {
    if (find(list, d.id) == list.end())
      list.push_back(std::move(d));
  }
  return list;
}

}  // namespace

void add_models_flags(CLI::App& app, ModelsFlags& m) {
  const auto* group = "Many models (loaded on demand)";
  app.add_option("--models-dir", m.dir,
                 "serve every *.gguf in this folder, each named by its file name without .gguf; "
                 "loaded when first asked for")
      ->group(group);
  app.add_option("--models-preset", m.preset_file,
                 "INI file of per-model settings: one [model-id] section per model with path (or "
                 "hf-repo, hf-file), alias and serve's engine flags by their long names "
                 "(ctx-size, parallel, temp, cache-type-k, ...)")
      ->group(group);
  app.add_option("--max-loaded", m.max_loaded,
                 "models loaded at once (0: no limit); the least recently used idle one "
                 "unloads to make room")
      ->group(group);
  add_duration_option(
      app, "--idle-unload",
      [&m](std::chrono::nanoseconds d) {
        m.idle_unload = std::chrono::duration_cast<std::chrono::milliseconds>(d);
      },
      {}, util::DurationUnit::seconds,
      "unload a model idle this long, e.g. 5m (a bare number: seconds; default: never); a "
      "request's keep_alive overrides it")
      ->default_str("")
      ->group(group);
  app.add_option("--models-memory-budget", m.memory_budget,
                 "memory the loaded models may take by estimate (weights + KV cache), e.g. "
                 "8GiB; a model that cannot fit is refused")
      ->type_name("BYTES")
      ->group(group);
}

bool wants_model_set(const EngineFlags& f, const ModelsFlags& m) {
  return f.models.size() > 1 || !m.dir.empty() || !m.preset_file.empty();
}

Result<void> check_single_model(const ModelsFlags& m) {
  if (m.max_loaded != 0 || m.idle_unload || !m.memory_budget.empty()) {
    return Error{Errc::invalid_request,
                 "--max-loaded, --idle-unload and --models-memory-budget apply to a set of "
                 "models: add --models-dir, --models-preset or more -m"};
  }
  return {};
}

Result<models::ModelSetOptions> model_set_options(const EngineFlags& f, const ModelsFlags& m) {
  if (f.engine != "llama")
    return Error{Errc::invalid_request, "several models need --engine llama"};
  if (!f.alias.empty()) {
    return Error{Errc::invalid_request,
                 "--alias names the one model of a single-model server; name the models of a "
                 "set with a presets file's `alias`"};
  }
  if (!f.hf_repo.empty() || !f.hf_file.empty()) {
    return Error{Errc::invalid_request,
                 "--hf-repo and --hf-file name the one model of a single-model server; in a set, "
                 "give a presets section `hf-repo = OWNER/NAME[:QUANT]`"};
  }
  if (!f.lora.empty()) {
    return Error{Errc::invalid_request,
                 "--lora and --lora-scaled apply to the one model of a single-model server (an "
                 "adapter is made for one base model): in a set, give a --models-preset section "
                 "`lora = FILE`"};
  }
  std::vector<models::Preset> presets;
  if (!m.preset_file.empty()) {
    auto loaded = models::load_presets(m.preset_file);
    if (!loaded)
      return loaded.error();
    presets = std::move(loaded).value();
  }
  auto named = named_models(f, m, presets);
  if (!named)
    return named.error();
  models::ModelSetOptions o;
  for (const auto& n : *named) {
    auto c = model_config(f, n, m.preset_file);
    if (!c)
      return c.error();
    o.models.push_back(std::move(c).value());
  }
  if (o.models.empty())
    return Error{Errc::invalid_request, fmt::format("no *.gguf models in --models-dir {}", m.dir)};
  o.max_loaded = m.max_loaded;
  o.idle_unload = m.idle_unload.value_or(std::chrono::milliseconds(-1));
  if (!m.memory_budget.empty()) {
    auto b = models::parse_bytes(m.memory_budget);
    if (!b)
      return Error{Errc::invalid_request, "--models-memory-budget: " + b.error().message};
    o.memory_budget = *b;
  }
  return o;
}

}  // namespace troupe::cli
