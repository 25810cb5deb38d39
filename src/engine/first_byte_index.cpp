#include "engine/first_byte_index.hpp"

#include <algorithm>
#include <array>

namespace troupe::engine {

FirstByteIndex::FirstByteIndex(const std::vector<std::string>& pieces, std::span<const Token> eog)
    : n_vocab_(static_cast<std::int32_t>(pieces.size())), start_(257, 0) {
  std::vector<bool> is_eog(pieces.size(), false);
  for (Token t : eog) {
    if (t >= 0 && t < n_vocab_)
      is_eog[static_cast<std::size_t>(t)] = true;
  }
  const auto first = [&](std::size_t t) {
    return pieces[t].empty() ? 0u : static_cast<unsigned char>(pieces[t][0]);
  };
  std::array<Token, 256> probe{};
  probe.fill(-1);
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    const unsigned c = first(t);
    if (pieces[t].size() == 1 && c != 0 && !is_eog[t] && probe[c] < 0)
      probe[c] = static_cast<Token>(t);
  }
  for (unsigned c = 1; c < 256; ++c) {
    if (probe[c] >= 0) {
      probes_.push_back(probe[c]);
      probe_bytes_.push_back(static_cast<unsigned char>(c));
    }
  }
  // A counting sort by first byte; the rest goes to always_ or nowhere.
  const auto sorted = [&](std::size_t t) {
    return !is_eog[t] && first(t) != 0 && probe[first(t)] >= 0;
  };
  std::array<std::uint32_t, 256> count{};
  group_.assign(pieces.size(), kNever);  // empty text or a NUL first: never allowed
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    if (sorted(t)) {
      ++count[first(t)];
      group_[t] = static_cast<std::uint16_t>(first(t));
    } else if (is_eog[t] || first(t) != 0) {
      always_.push_back(static_cast<Token>(t));
      group_[t] = kAlways;
    }
  }
  for (unsigned c = 0; c < 256; ++c)
    start_[c + 1] = start_[c] + count[c];
  by_byte_.resize(start_[256]);
  std::array<std::uint32_t, 256> next{};
  std::copy(start_.begin(), start_.begin() + 256, next.begin());
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    if (sorted(t))
      by_byte_[next[first(t)]++] = static_cast<Token>(t);
  }
}

FirstByteIndex FirstByteIndex::of(const llama_vocab* vocab) {
  const std::int32_t n = llama_vocab_n_tokens(vocab);
  std::vector<std::string> pieces(static_cast<std::size_t>(n));
  std::vector<Token> eog;
  std::vector<char> buf(256);
  for (Token t = 0; t < n; ++t) {
    // As llama.cpp's grammar reads it: special tokens rendered, nothing stripped.
    std::int32_t len =
        llama_token_to_piece(vocab, t, buf.data(), static_cast<std::int32_t>(buf.size()), 0, true);
    if (len < 0) {
      buf.resize(static_cast<std::size_t>(-len));
      len = llama_token_to_piece(vocab, t, buf.data(), static_cast<std::int32_t>(buf.size()), 0,
                                 true);
    }
    pieces[static_cast<std::size_t>(t)].assign(buf.data(),
                                               static_cast<std::size_t>(std::max(len, 0)));
    if (llama_vocab_is_eog(vocab, t))
      eog.push_back(t);
  }
  return FirstByteIndex(pieces, eog);
}

std::span<const Token> FirstByteIndex::starting_with(unsigned char c) const {
  return {by_byte_.data() + start_[c], start_[c + 1] - start_[c]};
}

}  // namespace troupe::engine
