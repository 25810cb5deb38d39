#include "hub/metadata.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace troupe::hub {
namespace json = boost::json;

namespace {

const json::string* string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

bool size_field(const json::object& o, std::string_view key, std::uint64_t& out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr)
    return false;
  if (const auto* u = v->if_uint64()) {
    out = *u;
    return true;
  }
  if (const auto* i = v->if_int64(); i != nullptr && *i >= 0) {
    out = static_cast<std::uint64_t>(*i);
    return true;
  }
  return false;
}

bool hex_digest(std::string_view s, std::size_t length) {
  return s.size() == length && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// One entry of the tree; returns false when it is malformed.
bool parse_entry(const json::object& o, RemoteFile& f) {
  const auto* path = string_field(o, "path");
  const auto* oid = string_field(o, "oid");
  if (path == nullptr || !safe_relative_path(*path) || oid == nullptr ||
      !size_field(o, "size", f.size))
    return false;
  f.path = std::string(*path);
  f.git_oid = std::string(*oid);
  if (const auto* lfs = o.if_contains("lfs"); lfs != nullptr && !lfs->is_null()) {
    const auto* lo = lfs->if_object();
    const auto* sha = lo != nullptr ? string_field(*lo, "oid") : nullptr;
    if (sha == nullptr || !hex_digest(*sha, 64) || !size_field(*lo, "size", f.size))
      return false;
    f.sha256 = std::string(*sha);
  }
  return true;
}

}  // namespace

Result<std::vector<RemoteFile>> parse_tree(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_array()) {
    return Error{Errc::invalid_request,
                 "the repository's file list is not a JSON array (is the endpoint a Hugging Face "
                 "hub?)"};
  }
  std::vector<RemoteFile> files;
  std::size_t index = 0;
  for (const auto& item : v.get_array()) {
    const auto* o = item.if_object();
    const auto* type = o != nullptr ? string_field(*o, "type") : nullptr;
    if (type != nullptr && *type == "directory") {
      ++index;
      continue;
    }
    RemoteFile f;
    if (type == nullptr || *type != "file" || !parse_entry(*o, f)) {
      return Error{Errc::invalid_request,
                   fmt::format("the repository's file list has a malformed entry (#{})", index)};
    }
    files.push_back(std::move(f));
    ++index;
  }
  return files;
}

std::string next_link(std::string_view header) {
  // Link: <url>; rel="next", <url2>; rel="prev"
  while (!header.empty()) {
    const auto open = header.find('<');
    const auto close = header.find('>', open);
    if (open == std::string_view::npos || close == std::string_view::npos)
      return {};
    const std::string_view url = header.substr(open + 1, close - open - 1);
    const auto comma = header.find(',', close);
    const std::string_view params = header.substr(close + 1, comma - close - 1);
    if (params.find("rel=\"next\"") != std::string_view::npos ||
        params.find("rel=next") != std::string_view::npos)
      return std::string(url);
    if (comma == std::string_view::npos)
      return {};
    header.remove_prefix(comma + 1);
  }
  return {};
}

std::string error_message_of(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  const auto* o = ec ? nullptr : v.if_object();
  const auto* e = o != nullptr ? string_field(*o, "error") : nullptr;
  return e != nullptr ? std::string(*e) : std::string();
}

std::string record_json(const FileRecord& r) {
  json::object o;
  o["repo"] = r.repo;
  o["file"] = r.file;
  o["revision"] = r.revision;
  o["commit"] = r.commit;
  o["size"] = r.size;
  o["sha256"] = r.sha256;
  o["git_oid"] = r.git_oid;
  return json::serialize(o) + "\n";
}

Result<FileRecord> parse_record(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  const auto* o = ec ? nullptr : v.if_object();
  if (o == nullptr)
    return Error{Errc::invalid_request, "not a JSON object"};
  FileRecord r;
  for (auto [key, out] : {std::pair{"repo", &r.repo}, std::pair{"file", &r.file},
                          std::pair{"revision", &r.revision}, std::pair{"commit", &r.commit},
                          std::pair{"sha256", &r.sha256}, std::pair{"git_oid", &r.git_oid}}) {
    const auto* s = string_field(*o, key);
    if (s == nullptr)
      return Error{Errc::invalid_request, fmt::format("'{}' is missing", key)};
    *out = std::string(*s);
  }
  if (!size_field(*o, "size", r.size))
    return Error{Errc::invalid_request, "'size' is missing"};
  if (r.repo.empty() || !safe_relative_path(r.file))
    return Error{Errc::invalid_request, "'repo' is empty or 'file' is not a relative path"};
  return r;
}

}  // namespace troupe::hub
