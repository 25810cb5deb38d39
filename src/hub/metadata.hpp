#pragma once
// The JSON the hub speaks: a repository's file list as Hugging Face's API gives it, and the
// small record the cache keeps next to each downloaded file. Pure functions, no I/O.
//
// Thread-safety: plain functions and values.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hub/select.hpp"
#include "util/result.hpp"

namespace troupe::hub {

// Parses the answer of GET {endpoint}/api/models/{repo}/tree/{revision}?recursive=true: an
// array of {"type": "file"|"directory", "path", "size", "oid", "lfs": {"oid", "size"}} (lfs
// only for files stored in LFS; its oid is the sha256 of the content). Directories are
// skipped. Errors: invalid_request saying which entry is malformed.
Result<std::vector<RemoteFile>> parse_tree(std::string_view json);

// The target of rel="next" in an HTTP Link header (the API's pagination), or empty.
std::string next_link(std::string_view link_header);

// The message in an error answer's JSON body ({"error": "..."}), or empty.
std::string error_message_of(std::string_view body);

// What the cache records of one downloaded file (`<file>.json`... see cache.hpp).
struct FileRecord {
  std::string repo;      // "owner/name"
  std::string file;      // path in the repository
  std::string revision;  // what was asked for ("main", a tag, a commit)
  std::string commit;    // the commit it came from, when the server said (X-Repo-Commit)
  std::uint64_t size = 0;
  std::string sha256;   // LFS files
  std::string git_oid;  // files kept in git
  friend bool operator==(const FileRecord&, const FileRecord&) = default;
};

std::string record_json(const FileRecord& r);

// Errors: invalid_request when the JSON or a field is missing or malformed.
Result<FileRecord> parse_record(std::string_view json);

}  // namespace troupe::hub
