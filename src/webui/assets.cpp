#include "webui/assets.hpp"

namespace troupe::webui {

const Asset* find_asset(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/index.html")
    path = "/";
  for (const Asset& a : assets()) {
    if (a.path == path)
      return &a;
  }
  return nullptr;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}
}  // namespace

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view tag = trim(if_none_match.substr(0, comma));
    if_none_match =
        comma == std::string_view::npos ? std::string_view() : if_none_match.substr(comma + 1);
    if (tag.starts_with("W/"))
      tag.remove_prefix(2);  // If-None-Match compares weakly (RFC 9110 13.1.2)
    if (tag == "*" || tag == etag)
      return true;
  }
  return false;
}

}  // namespace troupe::webui
