#include "hub/select.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace troupe::hub {
namespace {

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
}

std::optional<std::string> check_name_part(std::string_view part, std::string_view what) {
  if (part.empty())
    return fmt::format("the {} is empty", what);
  if (part.size() > 96)
    return fmt::format("the {} is longer than 96 characters", what);
  if (part.front() == '.' || part.front() == '-')
    return fmt::format("the {} '{}' starts with '{}'", what, part, part.front());
  if (!std::all_of(part.begin(), part.end(), name_char))
    return fmt::format("the {} '{}' has a character other than letters, digits, '-', '_', '.'",
                       what, part);
  return std::nullopt;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view base_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// A split part's numbers: "x-00002-of-00003.gguf" -> {2, 3}; {0, 0} for any other name.
struct SplitNo {
  int index = 0;
  int count = 0;
};

SplitNo split_no(std::string_view path) {
  constexpr std::string_view kShape = "-00000-of-00000.gguf";
  if (path.size() <= kShape.size())
    return {};
  const std::string tail = lower(path.substr(path.size() - kShape.size()));
  int index = 0;
  int count = 0;
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const char want = kShape[i];
    const char got = tail[i];
    if (want == '0') {
      if (std::isdigit(static_cast<unsigned char>(got)) == 0)
        return {};
      (i < 6 ? index : count) = (i < 6 ? index : count) * 10 + (got - '0');
    } else if (want != got) {
      return {};
    }
  }
  return index >= 1 && count >= index ? SplitNo{index, count} : SplitNo{};
}

bool candidate(const RemoteFile& f) {
  if (!is_gguf(f.path) || lower(base_name(f.path)).starts_with("mmproj"))
    return false;
  const auto no = split_no(f.path);
  return no.index <= 1;
}

bool delimiter(char c) {
  return c == '-' || c == '.' || c == '/';
}

// Whether `path[at, at + n)` stands as a whole word.
bool whole_word(const std::string& path, std::size_t at, std::size_t n) {
  return (at == 0 || delimiter(path[at - 1])) && (at + n == path.size() || delimiter(path[at + n]));
}

// The candidates containing `quant`; when several, those where it is a whole word.
std::vector<RemoteFile> matching(const std::vector<RemoteFile>& candidates,
                                 std::string_view quant) {
  const std::string q = lower(quant);
  std::vector<RemoteFile> any;
  std::vector<RemoteFile> whole;
  for (const auto& f : candidates) {
    const std::string p = lower(f.path);
    bool found = false;
    bool bounded = false;
    for (auto at = p.find(q); at != std::string::npos; at = p.find(q, at + 1)) {
      found = true;
      bounded = bounded || whole_word(p, at, q.size());
    }
    if (found)
      any.push_back(f);
    if (bounded)
      whole.push_back(f);
  }
  return any.size() > 1 && !whole.empty() ? whole : any;
}

std::vector<RemoteFile> gguf_files(const std::vector<RemoteFile>& files) {
  std::vector<RemoteFile> out;
  for (const auto& f : files) {
    if (is_gguf(f.path))
      out.push_back(f);
  }
  return out;
}

Error none_found(std::string_view repo, const std::vector<RemoteFile>& files, std::string what) {
  const auto ggufs = gguf_files(files);
  if (ggufs.empty())
    return Error{Errc::not_found,
                 fmt::format("{}: {} (the repository has no .gguf file)", repo, what)};
  return Error{Errc::not_found,
               fmt::format("{}: {}; its GGUF files:\n{}", repo, what, list_paths(ggufs))};
}

}  // namespace

Result<RepoRef> parse_repo_ref(std::string_view text) {
  RepoRef ref;
  std::string_view repo = text;
  if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    repo = text.substr(0, colon);
    ref.quant = std::string(text.substr(colon + 1));
    if (ref.quant.empty() || !std::all_of(ref.quant.begin(), ref.quant.end(), name_char)) {
      return Error{Errc::invalid_request,
                   fmt::format("'{}': the quantization after ':' must be letters, digits, '-', "
                               "'_' or '.' (e.g. owner/name:Q4_K_M)",
                               text)};
    }
  }
  const auto slash = repo.find('/');
  if (slash == std::string_view::npos) {
    return Error{
        Errc::invalid_request,
        fmt::format("'{}' is not a Hugging Face repository: write owner/name[:QUANT]", text)};
  }
  for (auto [part, what] : {std::pair{repo.substr(0, slash), "owner"},
                            std::pair{repo.substr(slash + 1), "repository name"}}) {
    if (auto bad = check_name_part(part, what))
      return Error{Errc::invalid_request, fmt::format("'{}': {}", text, *bad)};
  }
  ref.repo = std::string(repo);
  return ref;
}

bool safe_relative_path(std::string_view path) {
  if (path.empty() || path.size() > 1024)
    return false;
  for (const char c : path) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return false;
  }
  while (true) {
    const auto slash = path.find('/');
    const auto segment = path.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..")
      return false;
    if (slash == std::string_view::npos)
      return true;
    path.remove_prefix(slash + 1);
  }
}

bool is_gguf(std::string_view path) {
  return path.size() > 5 && lower(path.substr(path.size() - 5)) == ".gguf";
}

std::string list_paths(const std::vector<RemoteFile>& files) {
  std::string out;
  for (const auto& f : files)
    out += fmt::format("{}  {}", out.empty() ? "" : "\n", f.path);
  return out;
}

Result<RemoteFile> pick_gguf(const std::vector<RemoteFile>& files, const RepoRef& ref) {
  std::vector<RemoteFile> candidates;
  std::copy_if(files.begin(), files.end(), std::back_inserter(candidates), candidate);
  std::sort(candidates.begin(), candidates.end(),
            [](const RemoteFile& a, const RemoteFile& b) { return a.path < b.path; });
  if (ref.quant.empty()) {
    if (candidates.empty())
      return none_found(ref.repo, files, "no GGUF model file");
    if (candidates.size() == 1)
      return candidates.front();
    auto preferred = matching(candidates, kDefaultQuant);
    return preferred.size() == 1 ? preferred.front() : candidates.front();
  }
  auto found = matching(candidates, ref.quant);
  if (found.empty())
    return none_found(ref.repo, files, fmt::format("no GGUF file matches '{}'", ref.quant));
  if (found.size() > 1) {
    return Error{Errc::invalid_request,
                 fmt::format("{}: '{}' matches several files; name one with a longer "
                             "quantization or --file:\n{}",
                             ref.repo, ref.quant, list_paths(found))};
  }
  return found.front();
}

Result<RemoteFile> find_file(const std::vector<RemoteFile>& files, std::string_view repo,
                             std::string_view path) {
  for (const auto& f : files) {
    if (f.path == path)
      return f;
  }
  return none_found(repo, files, fmt::format("no file '{}'", path));
}

Result<std::vector<RemoteFile>> split_parts(const std::vector<RemoteFile>& files,
                                            const RemoteFile& first) {
  const auto no = split_no(first.path);
  if (no.index != 1)
    return std::vector<RemoteFile>{first};
  const std::string stem = first.path.substr(0, first.path.size() - 20);
  std::vector<RemoteFile> parts{first};
  for (int i = 2; i <= no.count; ++i) {
    const std::string want = fmt::format("{}-{:05d}-of-{:05d}.gguf", stem, i, no.count);
    auto part = std::find_if(files.begin(), files.end(),
                             [&](const RemoteFile& f) { return lower(f.path) == lower(want); });
    if (part == files.end())
      return Error{Errc::not_found, fmt::format("split model part '{}' is missing", want)};
    parts.push_back(*part);
  }
  return parts;
}

}  // namespace troupe::hub
