#pragma once
// The model cache on disk. Layout under the root (default_cache_root()):
//
//   hub/<owner>/<name>/<file>              a downloaded file (its repository path kept)
//   hub/<owner>/<name>/<file>.troupe.json  its FileRecord: repo, file, revision, commit, size,
//                                          digest; written after the file is checked, so a
//                                          file without one is not in the cache
//   hub/<owner>/<name>/<file>.part         a download in progress (resumed by the next pull)
//
// Thread-safety: a Cache holds only its root; concurrent processes writing the same file are
// not coordinated (the last complete download wins; each is checked before it is renamed in).

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hub/metadata.hpp"
#include "util/result.hpp"

namespace troupe::hub {

// $TROUPE_CACHE, else $XDG_CACHE_HOME/troupe, else ~/.cache/troupe.
std::filesystem::path default_cache_root();

struct CachedFile {
  FileRecord record;
  std::filesystem::path path;  // the file itself
};

class Cache {
 public:
  explicit Cache(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const noexcept { return root_; }
  // Preconditions: `repo` is "owner/name" and `file` a safe relative path (select.hpp).
  std::filesystem::path file_path(const std::string& repo, const std::string& file) const;
  std::filesystem::path part_path(const std::string& repo, const std::string& file) const;
  std::filesystem::path record_path(const std::string& repo, const std::string& file) const;

  // The cached file when its record is readable and the file has the recorded size.
  std::optional<CachedFile> find(const std::string& repo, const std::string& file) const;
  // Every cached file (of `repo` when not empty), sorted by repository and file.
  std::vector<CachedFile> list(const std::string& repo = {}) const;
  // Writes `record` for a file already in place (through a temporary file and a rename).
  // Errors: internal with the path when it cannot be written.
  Result<void> store(const FileRecord& record) const;
  // Deletes the file, its record and any partial download, then the folders left empty.
  // Errors: internal with the path when a file cannot be removed.
  Result<void> remove(const FileRecord& record) const;
  // Whether the cache has a folder for `repo` (complete or partial downloads).
  bool has_repo(const std::string& repo) const;
  // Deletes everything of `repo`, partial downloads included, and its owner's folder when that
  // is left empty. Errors: internal with the path.
  Result<void> remove_repo(const std::string& repo) const;

 private:
  std::filesystem::path repo_dir(const std::string& repo) const;
  // Removes `dir` and its parents while they are empty, up to hub/.
  void prune(std::filesystem::path dir) const;
  std::filesystem::path root_;
};

}  // namespace troupe::hub
