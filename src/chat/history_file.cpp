#include "chat/history_file.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace troupe::chat {
namespace fs = std::filesystem;
namespace {

Error os_error(const std::string& what, const std::string& path) {
  return Error(Errc::unavailable, what + " " + path + ": " + std::strerror(errno));
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

}  // namespace

std::string escape_entry(std::string_view entry) {
  std::string out;
  out.reserve(entry.size());
  for (char c : entry) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string unescape_entry(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && (line[i + 1] == 'n' || line[i + 1] == '\\')) {
      out += line[i + 1] == 'n' ? '\n' : '\\';
      ++i;
    } else {
      out += line[i];
    }
  }
  return out;
}

std::string default_history_path() {
  if (const char* p = std::getenv("TROUPE_CHAT_HISTORY"))
    return p;
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    return (fs::path(state) / "troupe" / "chat_history").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return (fs::path(home) / ".local" / "state" / "troupe" / "chat_history").string();
  }
  return {};
}

HistoryFile::HistoryFile(std::string path, std::size_t max_entries)
    : path_(std::move(path)), max_entries_(max_entries < 1 ? 1 : max_entries) {}

Result<std::vector<std::string>> HistoryFile::load() {
  entries_.clear();
  if (path_.empty())
    return entries_;
  std::ifstream file(path_, std::ios::binary);
  if (!file) {
    if (errno == ENOENT)
      return entries_;
    return os_error("cannot read", path_);
  }
  std::size_t lines = 0;
  for (std::string line; std::getline(file, line);) {
    ++lines;
    if (blank(line))
      continue;
    entries_.push_back(unescape_entry(line));
  }
  if (entries_.size() > max_entries_) {
    entries_.erase(entries_.begin(), entries_.end() - static_cast<std::ptrdiff_t>(max_entries_));
  }
  if (lines > 2 * max_entries_) {
    if (auto r = rewrite(); !r)
      return r.error();
  }
  return entries_;
}

Result<bool> HistoryFile::add(std::string_view entry) {
  if (blank(entry) || (!entries_.empty() && entries_.back() == entry))
    return false;
  entries_.emplace_back(entry);
  if (path_.empty())
    return true;
  std::error_code ec;
  fs::create_directories(fs::path(path_).parent_path(), ec);
  std::ofstream file(path_, std::ios::binary | std::ios::app);
  const std::string line = escape_entry(entry) + '\n';
  if (file)
    file.write(line.data(), static_cast<std::streamsize>(line.size()));
  if (file)
    file.flush();
  if (!file)
    return os_error("cannot append to", path_);
  return true;
}

Result<void> HistoryFile::rewrite() const {
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    for (const auto& e : entries_)
      file << escape_entry(e) << '\n';
    file.flush();
    if (!file)
      return os_error("cannot write", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path_, ec);
  if (ec)
    return Error(Errc::unavailable, "cannot replace " + path_ + ": " + ec.message());
  return {};
}

}  // namespace troupe::chat
