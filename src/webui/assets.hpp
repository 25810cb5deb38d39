#pragma once
// The web chat page's files, embedded in the binary at build time (src/webui/CMakeLists.txt):
// index.html at "/", the others at "/webui/<name>". Nothing is read from disk or the network
// at run time.
//
// Thread-safety: immutable static data; any thread.

#include <span>
#include <string_view>

namespace troupe::webui {

struct Asset {
  std::string_view path;          // the URL path: "/", "/webui/app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;          // the file's bytes, exactly
  std::string_view etag;          // a strong ETag, quoted: "\"<20 hex digits of SHA-256>\""
};

// Every embedded file; the views live for the whole program.
std::span<const Asset> assets();

// The asset served at `path` (the query is ignored, "/index.html" is "/"); null when none.
const Asset* find_asset(std::string_view target);

// True when an If-None-Match header value names `etag` ("*", or one of a comma-separated
// list, weak or strong): the client's copy is current and a 304 answers.
bool etag_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace troupe::webui
