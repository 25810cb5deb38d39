#pragma once
// Naming and choosing files of a Hugging Face repository: "owner/name[:QUANT]" references and
// the rule that picks one GGUF from a repository's file list. Pure functions, no I/O.
//
// The rule (pick_gguf), as llama-server's -hf applies it:
//   - Candidates are the `*.gguf` files except multimodal projectors (a name starting with
//     "mmproj") and the later parts of a split model (only "-00001-of-000NN" stands for it).
//   - With QUANT: the candidates whose path contains QUANT, case-insensitively. Several: those
//     where QUANT stands as a whole word (bounded by the path's start or end, '-', '.', '/');
//     still not exactly one: an error listing them.
//   - Without QUANT: the only candidate; else the one Q4_K_M picks by the rule above; else the
//     first candidate in path order.
//   - No candidate: an error listing the repository's GGUF files (or saying it has none).
// A split model's first part brings its siblings (split_parts).
//
// Thread-safety: plain functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace troupe::hub {

// The quantization picked when a reference names none.
inline constexpr std::string_view kDefaultQuant = "Q4_K_M";

// "owner/name" plus what picks the file: a QUANT ("owner/name:Q8_0") or nothing.
struct RepoRef {
  std::string repo;   // "owner/name"
  std::string quant;  // empty: the default rule
};

// Parses "owner/name[:QUANT]". Owner and name: letters, digits, '-', '_', '.', not starting
// with '.' or '-', at most 96 characters each. Errors: invalid_request saying what is wrong.
Result<RepoRef> parse_repo_ref(std::string_view text);

// One file of a repository with what checks it: its size and a digest (the LFS sha256, or the
// git blob id for a file kept in git itself).
struct RemoteFile {
  std::string path;  // relative to the repository root, '/'-separated
  std::uint64_t size = 0;
  std::string sha256;   // lowercase hex; empty for a non-LFS file
  std::string git_oid;  // the git blob sha1 (lowercase hex)
};

// True when `path` is a plain relative path: '/'-separated segments, none empty, "." or "..",
// no '\\' and no control character. Paths from a server are checked before they name a file.
bool safe_relative_path(std::string_view path);

// True when `path` names a GGUF file (".gguf", any case).
bool is_gguf(std::string_view path);

// The file `ref.quant` (or the default rule) picks among `files` (see the rule above). Errors:
// not_found listing the candidates when none matches, invalid_request listing them when
// several do.
Result<RemoteFile> pick_gguf(const std::vector<RemoteFile>& files, const RepoRef& ref);

// The exact file `path` among `files`. Errors: not_found listing the repository's GGUF files.
Result<RemoteFile> find_file(const std::vector<RemoteFile>& files, std::string_view repo,
                             std::string_view path);

// For the first part of a split model ("x-00001-of-00003.gguf"): every part, in order, from
// `files`; for any other file: just `first`. Errors: not_found naming a missing part.
Result<std::vector<RemoteFile>> split_parts(const std::vector<RemoteFile>& files,
                                            const RemoteFile& first);

// The file paths of `files`, one per line with two spaces before each (for error messages).
std::string list_paths(const std::vector<RemoteFile>& files);

}  // namespace troupe::hub
