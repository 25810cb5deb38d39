#pragma once
// Models from Hugging Face (or a mirror that speaks its URLs): which GGUF a reference names,
// downloading it into the Cache (resumed, checked, with progress), and finding it again without
// the network.
//
// The endpoint's URLs (huggingface_hub's):
//   GET {endpoint}/api/models/{owner}/{name}/tree/{revision}?recursive=true
//       the file list with sizes and digests (parse_tree), paginated by Link rel="next"
//   GET {endpoint}/{owner}/{name}/resolve/{revision}/{file}
//       the file (usually a redirect to a CDN); X-Repo-Commit names the commit
//
// A download writes <file>.part. A broken transfer keeps it, and the next attempt (the
// automatic retries, or the next pull) asks for the rest with "Range: bytes=N-"; a server that
// answers 200 instead sends the whole file again and the part starts over. The size and digest
// (sha256 of LFS files, else the git blob id) are checked before the file is renamed into
// place; a mismatch deletes the part and fails.
//
// Thread-safety: a Hub is used by one thread at a time; its calls block while they download.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "hub/cache.hpp"
#include "hub/select.hpp"
#include "util/result.hpp"

namespace troupe::hub {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // no trailing '/'; a path prefix is kept
  std::string token;                                // sent to the endpoint's origin only
  std::string revision = "main";                    // a branch, tag or commit
  std::filesystem::path cache_root;
  std::FILE* progress = nullptr;  // where progress and notes go (not owned); nullptr: nowhere
  bool terminal = false;          // progress as a redrawn bar (else plain lines)
  bool offline = false;           // never use the network (HF_HUB_OFFLINE): the cache only
  int retries = 3;                // automatic resumptions of a broken download
  std::chrono::milliseconds retry_delay{std::chrono::seconds(1)};  // times the attempt number
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};     // per network operation
};

// Where huggingface_hub keeps the access token it logged in with (`hf auth login`): the file
// HF_TOKEN_PATH names, else $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token, else
// ~/.cache/huggingface/token.
std::filesystem::path token_file();

// The access token: HF_TOKEN, else the first line of token_file() (none when it is missing).
std::string token_from_env();

// The defaults with the environment applied: HF_ENDPOINT, the token (token_from_env()),
// HF_HUB_OFFLINE (1, true, yes, on), the cache root (default_cache_root()), progress on stderr
// (a bar when it is a terminal).
HubOptions options_from_env();

class Hub {
 public:
  explicit Hub(HubOptions options);

  const HubOptions& options() const noexcept { return o_; }
  const Cache& cache() const noexcept { return cache_; }

  // Every file of `repo` at the revision. Errors: unauthorized (401/403, with what to do about
  // HF_TOKEN), not_found (404), unavailable/timeout (network), invalid_request (not a hub),
  // unavailable when offline.
  Result<std::vector<RemoteFile>> remote_files(const std::string& repo) const;

  // Downloads the file `file` names (when not empty) or `ref`'s rule picks (select.hpp), and
  // a split model's other parts; a file already cached with the same digest is kept as is.
  // Returns the files, the model (its first part) first. Errors: remote_files', pick_gguf's,
  // a download's (unavailable with the bytes kept for a resume; invalid_request for a
  // checksum or size mismatch), internal for the disk.
  Result<std::vector<CachedFile>> pull(const RepoRef& ref, const std::string& file = {}) const;

  // The model file to load: from the cache without the network when it holds one for the
  // revision (the file named, or the one the rule picks among the repository's cached files),
  // else pull()'s.
  Result<std::filesystem::path> resolve(const RepoRef& ref, const std::string& file = {}) const;

  // Removes the cached files `spec` names: "owner/name" (all of them), "owner/name:QUANT" (the
  // one the rule picks, with its split parts), or a file ("x.gguf", "dir/x.gguf" or the cached
  // path). Errors: not_found when nothing matches; pick_gguf's when QUANT is ambiguous.
  Result<std::vector<CachedFile>> remove(std::string_view spec) const;

 private:
  Result<CachedFile> fetch(const std::string& repo, const RemoteFile& file) const;
  Result<CachedFile> download(const std::string& repo, const RemoteFile& file) const;
  Result<std::string> download_once(const std::string& repo, const RemoteFile& file) const;
  std::vector<CachedFile> cached_for(const std::string& repo) const;
  void note(std::string_view text) const;

  HubOptions o_;
  Cache cache_;
};

// What `--hf-repo REPO[:QUANT]` and `--hf-file FILE` name, as a local model path:
// Hub(options_from_env()).resolve(). Errors: invalid_request for a malformed REPO, for
// --hf-file without --hf-repo, or a QUANT together with --hf-file; resolve()'s.
Result<std::string> resolve_model(std::string_view repo_ref, const std::string& file);

}  // namespace troupe::hub
