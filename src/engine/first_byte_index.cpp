#include "engine/first_byte_index.hpp"

#include <algorithm>
#include <array>

namespace troupe::engine {

FirstByteIndex::FirstByteIndex(const std::vector<std::string>& pieces, std::span<const Token> eog,
                               std::size_t split_above)
    : n_vocab_(static_cast<std::int32_t>(pieces.size())), pair_start_(257, 0) {
  std::vector<bool> is_eog(pieces.size(), false);
  for (Token t : eog) {
    if (t >= 0 && t < n_vocab_)
      is_eog[static_cast<std::size_t>(t)] = true;
  }
  const auto byte = [&](std::size_t t, std::size_t i) {
    return pieces[t].size() > i ? static_cast<unsigned char>(pieces[t][i]) : 0u;
  };
  std::array<Token, 256> probe{};
  probe.fill(-1);
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    const unsigned c = byte(t, 0);
    if (pieces[t].size() == 1 && c != 0 && !is_eog[t] && probe[c] < 0)
      probe[c] = static_cast<Token>(t);
  }
  for (unsigned c = 1; c < 256; ++c) {
    if (probe[c] >= 0) {
      probes_.push_back(probe[c]);
      probe_bytes_.push_back(static_cast<unsigned char>(c));
    }
  }
  // Each token's first-byte group; the rest goes to kAlways or kNever.
  group_.assign(pieces.size(), kNever);  // empty text or a NUL first: never allowed
  std::array<std::size_t, 256> count{};
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    const unsigned c = byte(t, 0);
    if (!is_eog[t] && c != 0 && probe[c] >= 0) {
      group_[t] = static_cast<std::uint16_t>(c);
      ++count[c];
    } else if (is_eog[t] || c != 0) {
      group_[t] = kAlways;
    }
  }
  // The large ASCII groups, split by the pairs that are tokens: first each pair's probe (the
  // first token whose text is those two bytes), then the pairs in byte order, each a group;
  // pair[c][d] is that group.
  constexpr std::size_t kAscii = 128;
  const auto split = [&](unsigned c) { return c < kAscii && count[c] > split_above; };
  const auto in_pair = [&](std::size_t t) {
    const unsigned c = byte(t, 0), d = byte(t, 1);
    return group_[t] == c && split(c) && d != 0 && d < kAscii;
  };
  std::vector<Token> pair_probe(kAscii * kAscii, -1);
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    if (pieces[t].size() != 2 || !in_pair(t))
      continue;
    auto& probe_of = pair_probe[byte(t, 0) * kAscii + byte(t, 1)];
    if (probe_of < 0)
      probe_of = static_cast<Token>(t);
  }
  std::vector<std::uint16_t> pair(kAscii * kAscii, 0);
  for (std::size_t cd = 0; cd < pair_probe.size(); ++cd) {
    if (pair_probe[cd] >= 0) {
      pair[cd] = static_cast<std::uint16_t>(kGroups + pairs_.size());
      pairs_.push_back({pair_probe[cd], pair[cd]});
      ++pair_start_[cd / kAscii + 1];
    }
  }
  for (unsigned c = 0; c < 256; ++c) {
    if (pair_start_[c + 1] > 0)
      split_bytes_.push_back(static_cast<unsigned char>(c));
    pair_start_[c + 1] += pair_start_[c];
  }
  std::stable_sort(split_bytes_.begin(), split_bytes_.end(),
                   [&](unsigned char a, unsigned char b) { return count[a] > count[b]; });
  for (std::size_t t = 0; t < pieces.size(); ++t) {
    const std::size_t cd = byte(t, 0) * kAscii + byte(t, 1);
    if (in_pair(t) && pair[cd] != 0)
      group_[t] = pair[cd];
  }
  // The members of each group, in token order: a counting sort by group.
  start_.assign(kGroups + pairs_.size() + 1, 0);
  for (std::uint16_t g : group_)
    ++start_[g + 1u];
  for (std::size_t g = 0; g + 1 < start_.size(); ++g)
    start_[g + 1] += start_[g];
  members_.resize(pieces.size());
  std::vector<std::uint32_t> next(start_.begin(), start_.end() - 1);
  for (std::size_t t = 0; t < pieces.size(); ++t)
    members_[next[group_[t]]++] = static_cast<Token>(t);
}

FirstByteIndex FirstByteIndex::of(const llama_vocab* vocab, std::size_t split_above) {
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
  return FirstByteIndex(pieces, eog, split_above);
}

}  // namespace troupe::engine
