#include "engine/reasoning_block.hpp"

#include <algorithm>
#include <utility>

#include "engine/utf8.hpp"

namespace troupe::engine {

ReasoningBlock::ReasoningBlock(Spec spec, const TokenText& text)
    : spec_(std::move(spec)), text_(text) {
  std::size_t longest = spec_.start.size();
  for (const auto& e : spec_.ends)
    longest = std::max(longest, e.size());
  keep_ = std::max<std::size_t>(longest, 4) - 1;  // 3 at least: a character's lead bytes
  tail_.reserve(keep_ + 256);
  recent_.reserve(keep_ + 8);
  closing_.reserve(keep_ + 8);
  if (spec_.opened)
    open();
}

Token ReasoningBlock::forced() const noexcept {
  return state_ == State::forcing && force_at_ < spec_.forced.size() ? spec_.forced[force_at_]
                                                                     : Token{-1};
}

void ReasoningBlock::open() {
  remaining_ = spec_.budget;
  force_at_ = 0;
  state_ = spec_.budget == 0 ? State::forcing : State::counting;
}

void ReasoningBlock::accept(Token token) {
  closing_.clear();
  const std::size_t before = tail_.size();
  text_.append_special(token, tail_);
  written_ += tail_.size() - before;
  recent_.push_back({token, written_});
  if (state_ == State::outside) {
    if (const Found tag = find(std::span(&spec_.start, 1)); tag.end) {
      tail_.erase(0, tag.end);
      open();
    }
  } else if (const Found tag = find(spec_.ends); tag.end) {
    close(tag);
  } else {
    after_count();
  }
  trim();
}

// A token inside the block that did not close it.
void ReasoningBlock::after_count() {
  switch (state_) {
    case State::counting:
      if (spec_.budget >= 0 && --remaining_ <= 0)
        state_ = ends_mid_character(tail_) ? State::finishing : State::forcing;
      break;
    case State::finishing:
      if (!ends_mid_character(tail_))
        state_ = State::forcing;
      break;
    case State::forcing:
      // The forced tokens end with a closing tag, which find() sees; a tag whose text is not
      // its tokens' (none known) still ends the forcing.
      if (++force_at_ >= spec_.forced.size())
        state_ = State::outside;
      break;
    case State::outside:
      break;
  }
}

// The first of `tags` found in tail_ (which holds no whole tag but for the newest token's).
ReasoningBlock::Found ReasoningBlock::find(std::span<const std::string> tags) const {
  for (const auto& tag : tags) {
    if (tag.empty())
      continue;
    if (const auto at = tail_.find(tag); at != std::string::npos)
      return {at + tag.size(), tag.size()};
  }
  return {};
}

// The block is closed by `tag`; closing_ holds the tokens that wrote it (those whose text ends
// past its first byte).
void ReasoningBlock::close(Found tag) {
  const std::uint64_t tag_start = written_ - (tail_.size() - (tag.end - tag.length));
  for (const auto& w : recent_) {
    if (w.end > tag_start)
      closing_.push_back(w.token);
  }
  recent_.clear();
  tail_.erase(0, tag.end);
  state_ = State::outside;
}

// Keeps the bytes a tag could still begin in, and the tokens that wrote them.
void ReasoningBlock::trim() {
  if (tail_.size() > keep_)
    tail_.erase(0, tail_.size() - keep_);
  const std::uint64_t kept_from = written_ - tail_.size();
  auto first = std::find_if(recent_.begin(), recent_.end(),
                            [&](const Written& w) { return w.end > kept_from; });
  recent_.erase(recent_.begin(), first);
  if (recent_.size() > keep_ + 8)  // tokens of no text: a tag cannot span that many
    recent_.erase(recent_.begin(), recent_.end() - static_cast<std::ptrdiff_t>(keep_ + 8));
}

}  // namespace troupe::engine
