#include "hub/cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace troupe::hub {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kRecordSuffix = ".troupe.json";

std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

fs::path default_cache_root() {
  if (const char* own = std::getenv("TROUPE_CACHE"); own != nullptr && *own != '\0')
    return own;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path(xdg) / "troupe";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : ".") / ".cache" / "troupe";
}

fs::path Cache::repo_dir(const std::string& repo) const {
  return root_ / "hub" / repo;
}

fs::path Cache::file_path(const std::string& repo, const std::string& file) const {
  return repo_dir(repo) / file;
}

fs::path Cache::part_path(const std::string& repo, const std::string& file) const {
  return repo_dir(repo) / (file + ".part");
}

fs::path Cache::record_path(const std::string& repo, const std::string& file) const {
  return repo_dir(repo) / (file + std::string(kRecordSuffix));
}

std::optional<CachedFile> Cache::find(const std::string& repo, const std::string& file) const {
  const auto text = read_text(record_path(repo, file));
  if (!text)
    return std::nullopt;
  auto record = parse_record(*text);
  if (!record || record->repo != repo || record->file != file)
    return std::nullopt;
  CachedFile c{std::move(record).value(), file_path(repo, file)};
  std::error_code ec;
  const auto size = fs::file_size(c.path, ec);
  if (ec || size != c.record.size)
    return std::nullopt;
  return c;
}

std::vector<CachedFile> Cache::list(const std::string& repo) const {
  std::vector<CachedFile> out;
  const fs::path top = root_ / "hub";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(top, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file() || !name.ends_with(kRecordSuffix))
      continue;
    const auto text = read_text(it->path());
    auto record = text ? parse_record(*text) : Result<FileRecord>{};
    if (!record || (!repo.empty() && record->repo != repo) ||
        record_path(record->repo, record->file) != it->path())
      continue;
    if (auto c = find(record->repo, record->file))
      out.push_back(std::move(*c));
  }
  std::sort(out.begin(), out.end(), [](const CachedFile& a, const CachedFile& b) {
    return std::tie(a.record.repo, a.record.file) < std::tie(b.record.repo, b.record.file);
  });
  return out;
}

Result<void> Cache::store(const FileRecord& record) const {
  const fs::path path = record_path(record.repo, record.file);
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << record_json(record);
    if (!out.flush())
      return Error{Errc::internal, fmt::format("cannot write {}", tmp.string())};
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return Error{Errc::internal, fmt::format("cannot write {}: {}", path.string(), ec.message())};
  return {};
}

Result<void> Cache::remove(const FileRecord& record) const {
  for (const auto& path :
       {record_path(record.repo, record.file), file_path(record.repo, record.file),
        part_path(record.repo, record.file)}) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec)
      return Error{Errc::internal,
                   fmt::format("cannot remove {}: {}", path.string(), ec.message())};
  }
  prune(file_path(record.repo, record.file).parent_path());
  return {};
}

bool Cache::has_repo(const std::string& repo) const {
  std::error_code ec;
  return fs::is_directory(repo_dir(repo), ec);
}

Result<void> Cache::remove_repo(const std::string& repo) const {
  const fs::path dir = repo_dir(repo);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    return Error{Errc::internal, fmt::format("cannot remove {}: {}", dir.string(), ec.message())};
  prune(dir.parent_path());
  return {};
}

void Cache::prune(fs::path dir) const {
  const fs::path top = root_ / "hub";
  for (; dir != top && dir.string().starts_with(top.string()); dir = dir.parent_path()) {
    std::error_code ec;
    if (!fs::is_empty(dir, ec) || ec || !fs::remove(dir, ec))
      break;
  }
}

}  // namespace troupe::hub
