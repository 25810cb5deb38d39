#pragma once
// One file's transfer into its partial file `<file>.part`, resumed from what the part already
// holds, and checked (size and digest) at the end. Used by Hub; see hub.hpp for the rules.
//
// Thread-safety: a plain function; one call per part file at a time.

#include <filesystem>
#include <string>

#include "hub/http.hpp"
#include "hub/progress.hpp"
#include "hub/select.hpp"
#include "util/result.hpp"

namespace troupe::hub {

struct DownloadJob {
  Url url;                     // where the file is (redirects are followed)
  std::filesystem::path part;  // the partial file, created or continued
  RemoteFile file;             // its size and digest
  std::string what;            // "owner/name/file", for messages
};

// Brings `job.part` to the whole file and checks it. Returns the commit the server named
// (X-Repo-Commit; may be empty). Errors: unavailable/timeout when the transfer broke (the part
// keeps what arrived: call again to resume), invalid_request when the server sent more than the
// size or the digest does not match (the part is deleted), the HTTP status's error
// (status_error) for a non-2xx answer, internal when the part cannot be written.
Result<std::string> download_part(const DownloadJob& job, const HttpOptions& http,
                                  Progress& progress);

// The error for a final answer that is not a success: 401/403 unauthorized (with what to do
// about the access token: `token_sent` says whether one went), 404 not_found, 429 overloaded, else
// unavailable; the server's own message (X-Error-Message or {"error": ...}) appended.
Error status_error(const ResponseHead& head, std::string_view what, bool token_sent);

}  // namespace troupe::hub
