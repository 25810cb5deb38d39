#include "chat/multiline.hpp"

namespace troupe::chat {
namespace {

constexpr std::string_view kQuotes = R"(""")";

std::string_view trim_right(std::string_view s) {
  const auto last = s.find_last_not_of(" \t\r");
  return last == std::string_view::npos ? std::string_view{} : s.substr(0, last + 1);
}

std::string_view trim_left(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  return first == std::string_view::npos ? std::string_view{} : s.substr(first);
}

}  // namespace

std::optional<std::string> MultilineInput::feed(std::string_view line) {
  if (in_block_) {
    const auto body = trim_right(line);
    if (body.ends_with(kQuotes))
      return close_with(body.substr(0, body.size() - kQuotes.size()));
    if (!buffer_.empty())
      buffer_ += '\n';
    buffer_ += line;
    return std::nullopt;
  }
  const auto start = trim_left(line);
  if (!start.starts_with(kQuotes))
    return std::string(line);
  const auto rest = trim_right(start.substr(kQuotes.size()));
  if (rest.ends_with(kQuotes))
    return std::string(rest.substr(0, rest.size() - kQuotes.size()));
  in_block_ = true;
  buffer_ = std::string(rest);
  return std::nullopt;
}

std::optional<std::string> MultilineInput::close_with(std::string_view last) {
  if (!last.empty()) {
    if (!buffer_.empty())
      buffer_ += '\n';
    buffer_ += last;
  }
  std::string out = std::move(buffer_);
  reset();
  return out;
}

}  // namespace troupe::chat
