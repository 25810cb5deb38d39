#include "engine/utf8.hpp"

#include <algorithm>

namespace troupe::engine {
namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD";

bool is_cont(unsigned char c) noexcept {
  return (c & 0xC0) == 0x80;
}

// Expected length of a character from its lead byte; 0 for a byte that cannot lead.
int char_length(unsigned char c) noexcept {
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return 2;
  if (c >= 0xE0 && c <= 0xEF)
    return 3;
  if (c >= 0xF0 && c <= 0xF4)
    return 4;
  return 0;
}

// Whether byte `i` (1-based within the character) may follow lead byte `lead`: the second
// byte is range-checked to exclude overlong forms, surrogates and code points > U+10FFFF.
bool valid_follow(unsigned char lead, std::size_t i, unsigned char c) noexcept {
  if (!is_cont(c))
    return false;
  if (i != 1)
    return true;
  if (lead == 0xE0)
    return c >= 0xA0;
  if (lead == 0xED)
    return c <= 0x9F;
  if (lead == 0xF0)
    return c >= 0x90;
  if (lead == 0xF4)
    return c <= 0x8F;
  return true;
}

enum class Scan { complete, incomplete, invalid };

// Classifies the character starting at s[pos]; sets `len` to its byte length when complete.
Scan scan_char(std::string_view s, std::size_t pos, std::size_t& len) noexcept {
  const auto lead = static_cast<unsigned char>(s[pos]);
  const int n = char_length(lead);
  if (n == 0)
    return Scan::invalid;
  for (int i = 1; i < n; ++i) {
    if (pos + i >= s.size())
      return Scan::incomplete;
    if (!valid_follow(lead, i, static_cast<unsigned char>(s[pos + i])))
      return Scan::invalid;
  }
  len = static_cast<std::size_t>(n);
  return Scan::complete;
}

}  // namespace

void Utf8Assembler::append(std::string_view bytes, std::string& out) {
  pending_.append(bytes);
  std::size_t pos = 0;
  while (pos < pending_.size()) {
    std::size_t len = 0;
    const Scan r = scan_char(pending_, pos, len);
    if (r == Scan::incomplete)
      break;
    if (r == Scan::invalid) {
      out.append(replacement);
      pos += 1;
      continue;
    }
    out.append(pending_, pos, len);
    pos += len;
  }
  pending_.erase(0, pos);
}

void Utf8Assembler::flush(std::string& out) {
  if (!pending_.empty())
    out.append(replacement);
  pending_.clear();
}

bool is_valid_utf8(std::string_view s) noexcept {
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t len = 0;
    if (scan_char(s, pos, len) != Scan::complete)
      return false;
    pos += len;
  }
  return true;
}

bool ends_mid_character(std::string_view s) noexcept {
  // The last lead byte among the final three bytes, and whether its character is cut.
  for (std::size_t back = 1; back <= std::min<std::size_t>(3, s.size()); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if (is_cont(c))
      continue;
    const int n = char_length(c);
    return n > static_cast<int>(back);
  }
  return false;
}

}  // namespace troupe::engine
