#include "hub/hub.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "hub/download.hpp"
#include "hub/http.hpp"
#include "hub/progress.hpp"

namespace troupe::hub {
namespace fs = std::filesystem;

namespace {

// Percent-encodes all but unreserved characters (and '/' when `keep_slash`).
std::string encode(std::string_view s, bool keep_slash) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

bool retryable(const Error& e) {
  return e.code == Errc::unavailable || e.code == Errc::timeout;
}

std::vector<RemoteFile> as_remote(const std::vector<CachedFile>& cached) {
  std::vector<RemoteFile> out;
  out.reserve(cached.size());
  for (const auto& c : cached)
    out.push_back({c.record.file, c.record.size, c.record.sha256, c.record.git_oid});
  return out;
}

// The cached files of `ref.repo` that `ref.quant` picks (with split parts).
Result<std::vector<CachedFile>> picked(const std::vector<CachedFile>& of_repo, const RepoRef& ref) {
  const auto files = as_remote(of_repo);
  auto chosen = pick_gguf(files, ref);
  if (!chosen)
    return chosen.error();
  auto parts = split_parts(files, *chosen);
  std::vector<CachedFile> out;
  for (const auto& c : of_repo) {
    for (const auto& p : parts ? *parts : std::vector<RemoteFile>{*chosen}) {
      if (c.record.file == p.path)
        out.push_back(c);
    }
  }
  return out;
}

// The cached files `spec` names: by repository path, file name or path on disk.
std::vector<CachedFile> named(std::vector<CachedFile> all, std::string_view spec) {
  std::erase_if(all, [spec](const CachedFile& c) {
    std::error_code ec;
    return c.record.file != spec && c.path.filename() != spec &&
           !(fs::equivalent(c.path, fs::path(spec), ec) && !ec);
  });
  return all;
}

}  // namespace

fs::path token_file() {
  if (auto path = env("HF_TOKEN_PATH"); !path.empty())
    return path;
  if (auto home = env("HF_HOME"); !home.empty())
    return fs::path(home) / "token";
  if (auto xdg = env("XDG_CACHE_HOME"); !xdg.empty())
    return fs::path(xdg) / "huggingface" / "token";
  const std::string home = env("HOME");
  return fs::path(home.empty() ? "." : home) / ".cache" / "huggingface" / "token";
}

std::string token_from_env() {
  if (auto token = env("HF_TOKEN"); !token.empty())
    return token;
  std::ifstream in(token_file());
  std::string token;
  std::getline(in, token);  // the file holds the token, maybe followed by a newline
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())) != 0)
    token.pop_back();
  return token;
}

HubOptions options_from_env() {
  HubOptions o;
  if (auto endpoint = env("HF_ENDPOINT"); !endpoint.empty())
    o.endpoint = std::move(endpoint);
  while (o.endpoint.ends_with('/'))
    o.endpoint.pop_back();
  o.token = token_from_env();
  const std::string offline = env("HF_HUB_OFFLINE");
  o.offline = offline == "1" || offline == "true" || offline == "yes" || offline == "on";
  o.cache_root = default_cache_root();
  o.progress = stderr;
  o.terminal = Progress::stderr_is_terminal();
  return o;
}

Hub::Hub(HubOptions options) : o_(std::move(options)), cache_(o_.cache_root) {
  while (o_.endpoint.ends_with('/'))
    o_.endpoint.pop_back();
}

void Hub::note(std::string_view text) const {
  if (o_.progress != nullptr) {
    fmt::print(o_.progress, "{}\n", text);
    std::fflush(o_.progress);
  }
}

Result<std::vector<RemoteFile>> Hub::remote_files(const std::string& repo) const {
  if (o_.offline)
    return Error{Errc::unavailable,
                 fmt::format("{}: not in the cache for revision {}, and HF_HUB_OFFLINE forbids "
                             "the network ('troupe list' shows the cache)",
                             repo, o_.revision)};
  auto url = parse_url(fmt::format("{}/api/models/{}/tree/{}?recursive=true", o_.endpoint, repo,
                                   encode(o_.revision, false)));
  if (!url)
    return Error{Errc::invalid_request,
                 fmt::format("HF_ENDPOINT '{}' is not an http(s) URL", o_.endpoint)};
  const std::string origin = url->origin();
  std::vector<RemoteFile> files;
  for (int page = 0; page < 1000; ++page) {
    // A next page elsewhere gets no token, as a redirect would not.
    const HttpOptions http{.token = url->origin() == origin ? o_.token : std::string(),
                           .timeout = o_.timeout};
    auto head = http_get_text(*url, http);
    if (!head)
      return head.error();
    if (head->status != 200)
      return status_error(*head, fmt::format("{} (revision {})", repo, o_.revision),
                          !o_.token.empty());
    auto some = parse_tree(head->body);
    if (!some)
      return Error{some.error().code, fmt::format("{}: {}", repo, some.error().message)};
    files.insert(files.end(), some->begin(), some->end());
    const std::string next = next_link(head->link);
    if (next.empty())
      return files;
    auto next_url = resolve_location(*url, next);
    if (!next_url)
      return next_url.error();
    url = std::move(next_url);
  }
  return Error{Errc::unavailable, fmt::format("{}: the file list has too many pages", repo)};
}

Result<std::vector<CachedFile>> Hub::pull(const RepoRef& ref, const std::string& file) const {
  auto files = remote_files(ref.repo);
  if (!files)
    return files.error();
  auto chosen = file.empty() ? pick_gguf(*files, ref) : find_file(*files, ref.repo, file);
  if (!chosen)
    return chosen.error();
  auto parts = split_parts(*files, *chosen);
  if (!parts)
    return parts.error();
  std::vector<CachedFile> out;
  for (const auto& part : *parts) {
    auto got = fetch(ref.repo, part);
    if (!got)
      return got.error();
    out.push_back(std::move(got).value());
  }
  return out;
}

Result<CachedFile> Hub::fetch(const std::string& repo, const RemoteFile& file) const {
  if (auto have = cache_.find(repo, file.path);
      have && have->record.sha256 == file.sha256 && have->record.git_oid == file.git_oid) {
    note(fmt::format("{}/{}: up to date ({})", repo, file.path, human_bytes(file.size)));
    return *have;
  }
  return download(repo, file);
}

Result<CachedFile> Hub::download(const std::string& repo, const RemoteFile& file) const {
  note(fmt::format("pulling {}/{} ({}) from {}", repo, file.path, human_bytes(file.size),
                   o_.endpoint));
  for (int attempt = 0;; ++attempt) {
    auto commit = download_once(repo, file);
    if (commit) {
      FileRecord r{repo, file.path, o_.revision, *commit, file.size, file.sha256, file.git_oid};
      std::error_code ec;
      fs::rename(cache_.part_path(repo, file.path), cache_.file_path(repo, file.path), ec);
      if (ec)
        return Error{Errc::internal,
                     fmt::format("cannot move {} into place: {}",
                                 cache_.part_path(repo, file.path).string(), ec.message())};
      if (auto stored = cache_.store(r); !stored)
        return stored.error();
      return CachedFile{std::move(r), cache_.file_path(repo, file.path)};
    }
    if (!retryable(commit.error()) || attempt >= o_.retries) {
      if (!retryable(commit.error()) || !fs::exists(cache_.part_path(repo, file.path)))
        return commit.error();
      return Error{commit.error().code, commit.error().message +
                                            "; what arrived is kept: run the command again to "
                                            "resume"};
    }
    note(fmt::format("{}; resuming (attempt {} of {})", commit.error().message, attempt + 2,
                     o_.retries + 1));
    std::this_thread::sleep_for(o_.retry_delay * (attempt + 1));
  }
}

Result<std::string> Hub::download_once(const std::string& repo, const RemoteFile& file) const {
  auto url = parse_url(fmt::format("{}/{}/resolve/{}/{}", o_.endpoint, repo,
                                   encode(o_.revision, false), encode(file.path, true)));
  if (!url)
    return Error{Errc::invalid_request,
                 fmt::format("HF_ENDPOINT '{}' is not an http(s) URL", o_.endpoint)};
  const auto part = cache_.part_path(repo, file.path);
  std::error_code ec;
  fs::create_directories(part.parent_path(), ec);
  if (ec)
    return Error{Errc::internal,
                 fmt::format("cannot create {}: {}", part.parent_path().string(), ec.message())};
  const HttpOptions http{.token = o_.token, .timeout = o_.timeout};
  const std::string name = fs::path(file.path).filename().string();
  Progress progress(o_.progress, o_.terminal, name, file.size);
  return download_part({*url, part, file, repo + "/" + file.path}, http, progress);
}

std::vector<CachedFile> Hub::cached_for(const std::string& repo) const {
  std::vector<CachedFile> out;
  for (auto& c : cache_.list(repo)) {
    if (c.record.revision == o_.revision)
      out.push_back(std::move(c));
  }
  return out;
}

Result<fs::path> Hub::resolve(const RepoRef& ref, const std::string& file) const {
  const auto cached = as_remote(cached_for(ref.repo));
  auto chosen = file.empty() ? pick_gguf(cached, ref) : find_file(cached, ref.repo, file);
  if (chosen && split_parts(cached, *chosen)) {
    note(fmt::format("using the cached {}/{} (revision {})", ref.repo, chosen->path, o_.revision));
    return cache_.file_path(ref.repo, chosen->path);
  }
  auto pulled = pull(ref, file);
  if (!pulled)
    return pulled.error();
  return pulled->front().path;
}

Result<std::vector<CachedFile>> Hub::remove(std::string_view spec) const {
  const auto ref = parse_repo_ref(spec);
  if (ref && ref->quant.empty() && cache_.has_repo(ref->repo)) {
    auto all = cache_.list(ref->repo);
    if (auto r = cache_.remove_repo(ref->repo); !r)
      return r.error();
    return all;
  }
  auto of_repo = ref ? cache_.list(ref->repo) : std::vector<CachedFile>{};
  Result<std::vector<CachedFile>> targets = std::vector<CachedFile>{};
  if (!of_repo.empty())
    targets = picked(of_repo, *ref);
  else
    targets = named(cache_.list(), spec);
  if (!targets)
    return targets.error();
  if (targets->empty())
    return Error{Errc::not_found,
                 fmt::format("nothing in the cache ({}) matches '{}'; 'troupe list' shows what "
                             "is there",
                             (cache_.root() / "hub").string(), spec)};
  for (const auto& c : *targets) {
    if (auto r = cache_.remove(c.record); !r)
      return r.error();
  }
  return targets;
}

Result<std::string> resolve_model(std::string_view repo_ref, const std::string& file) {
  if (repo_ref.empty())
    return Error{Errc::invalid_request, "--hf-file needs --hf-repo OWNER/NAME"};
  auto ref = parse_repo_ref(repo_ref);
  if (!ref)
    return Error{Errc::invalid_request, "--hf-repo " + ref.error().message};
  if (!ref->quant.empty() && !file.empty())
    return Error{Errc::invalid_request,
                 "give either --hf-repo OWNER/NAME:QUANT or --hf-file FILE, not both"};
  auto path = Hub(options_from_env()).resolve(*ref, file);
  if (!path)
    return path.error();
  return path->string();
}

}  // namespace troupe::hub
