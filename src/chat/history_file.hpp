#pragma once
// HistoryFile: the prompt's input history kept across runs, one entry per line. Entries may
// span several lines (a `"""` block, pasted text): newlines are stored as "\n" and
// backslashes as "\\", so every entry is exactly one line of the file.
//
// Thread-safety: not synchronised; one owner (the chat's event-loop thread). Two chat
// processes appending at once each write whole lines (O_APPEND), so the file stays readable.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace troupe::chat {

class HistoryFile {
 public:
  // `path` empty disables persistence (load returns nothing, add only remembers in memory).
  // Keeps at most `max_entries` (>= 1) entries.
  HistoryFile(std::string path, std::size_t max_entries);

  // Reads the file: the last max_entries entries, oldest first. A missing file is an empty
  // history, not an error. When the file holds more than twice max_entries lines it is
  // rewritten with the kept entries (so it never grows without bound). Errors: unavailable
  // with the OS reason when the file exists but cannot be read.
  Result<std::vector<std::string>> load();

  // Remembers `entry` and appends it to the file, unless it is blank or equal to the previous
  // entry (then returns false and writes nothing). Creates the file's folder if needed. A write
  // error is returned; the entry is remembered anyway.
  Result<bool> add(std::string_view entry);

  const std::vector<std::string>& entries() const noexcept { return entries_; }
  const std::string& path() const noexcept { return path_; }

 private:
  Result<void> rewrite() const;

  std::string path_;
  std::size_t max_entries_;
  std::vector<std::string> entries_;
};

// One history entry as one line (without the newline) and back.
std::string escape_entry(std::string_view entry);
std::string unescape_entry(std::string_view line);

// $TROUPE_CHAT_HISTORY, else $XDG_STATE_HOME/troupe/chat_history, else
// $HOME/.local/state/troupe/chat_history; empty when none of them is set.
std::string default_history_path();

}  // namespace troupe::chat
