#pragma once
// FirstByteIndex: a vocabulary's tokens grouped by the first byte of their text, so that a
// grammar check can skip whole groups of tokens at once (issue 18).
//
// llama.cpp's grammar allows a token when all of its text can continue the output from the
// grammar's state, matching one character after another (a character's bytes one after
// another, an incomplete one by the range of characters it can still become). So a token whose
// text starts with the byte b is allowed only where the one-byte text "b" is: where the grammar
// rejects the one-byte token "b", it rejects every token that starts with b. Sampler::
// constrain() asks the grammar about the one-byte tokens first (up to 255), then only about the
// tokens whose first byte passed, instead of the whole vocabulary. The allowed set is the same.
//
// One exception: a lone lead byte of a multi-byte character is checked against the range of
// characters it can start, and a negated character class rejects it when any character it
// excludes lies in that range ([^é] rejects the byte 0xC3 alone, yet allows è, which starts
// with it). For a grammar with such a class (FirstByteCheck::ascii) only the ASCII bytes' groups
// are skipped; the tokens that start with any other byte are all checked.
//
// The same rule holds for a longer prefix: where the grammar rejects the token "ab", it rejects
// every token that starts with "ab". A first byte that starts a large part of the vocabulary
// (the space, in most vocabularies: about half of it) says little where it passes (after a
// JSON value, " " may pass when only " ", " ," and " }" are allowed), so its group is split by
// the second byte where the two bytes are a token of their own (both ASCII: a pair is always
// two whole characters, so the lone-lead-byte exception cannot touch it): pairs_of(c). Those
// pairs are probed only where c passed (and not always then: see Sampler::probe_first_bytes).
//
// What the rule does not cover is always checked: end-of-generation tokens (the grammar allows
// them by a rule of its own) and tokens whose first byte has no one-byte token. Tokens with
// empty text or a NUL first byte are never allowed (llama.cpp's rule too), so never checked.
//
// The rule holds only for a grammar that matches text: a GBNF with token references (`<[id]>`,
// `<|name|>`) matches token ids, and a lazy grammar allows everything until its trigger
// (first_byte_check() in sampler.hpp says which grammars qualify, and how).
//
// The text of a token is what llama.cpp's grammar reads: llama_token_to_piece with special
// tokens rendered, nothing stripped. Immutable once built; safe to share between threads.

#include <llama.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/task.hpp"

namespace troupe::engine {

// How a grammar may be checked by first byte.
enum class FirstByteCheck : std::uint8_t {
  off,        // it names tokens, or is lazy: every candidate is checked
  ascii,      // a negated class excludes a non-ASCII character: ASCII first bytes only
  all_bytes,  // every first byte
};

class FirstByteIndex {
 public:
  // `pieces[t]` is token t's text; `eog` lists the end-of-generation tokens. An ASCII first
  // byte's group of more than `split_above` tokens is split by pairs.
  static constexpr std::size_t kSplitAbove = 64;
  FirstByteIndex(const std::vector<std::string>& pieces, std::span<const Token> eog,
                 std::size_t split_above = kSplitAbove);
  static FirstByteIndex of(const llama_vocab* vocab, std::size_t split_above = kSplitAbove);

  // The one-byte tokens, one for each byte that has one, and that byte.
  std::span<const Token> probes() const { return probes_; }
  unsigned char probe_byte(std::size_t i) const { return probe_bytes_[i]; }
  // The tokens (end-of-generation ones excluded) whose text starts with byte c, when c has a
  // one-byte token, less those in one of c's pairs' groups; empty otherwise (they are in
  // always_checked()).
  std::span<const Token> starting_with(unsigned char c) const { return members(c); }
  // The tokens the first-byte rule says nothing about.
  std::span<const Token> always_checked() const { return members(kAlways); }
  // Where c's group was split: the two-byte tokens that start with c, each the probe of the
  // group of the tokens that start with its two bytes (itself among them).
  struct Pair {
    Token probe;
    std::uint16_t group;
  };
  std::span<const Pair> pairs_of(unsigned char c) const {
    return {pairs_.data() + pair_start_[c], pair_start_[c + 1] - pair_start_[c]};
  }
  // The bytes whose groups were split, the largest group (pairs included) first.
  std::span<const unsigned char> split_bytes() const { return split_bytes_; }
  // Token t's group: its first byte (0-255) when it is in starting_with() of that byte,
  // kAlways when it is always checked, kNever when the grammar never allows it, a pair's
  // group (kGroups and up) when it starts with that pair.
  static constexpr std::uint16_t kAlways = 256;
  static constexpr std::uint16_t kNever = 257;
  static constexpr std::size_t kGroups = 258;
  const std::uint16_t* groups() const { return group_.data(); }
  std::span<const Token> members(std::uint16_t group) const {
    return {members_.data() + start_[group], start_[group + 1u] - start_[group]};
  }
  // Every group id is below this; never more than n_vocab() + kGroups.
  std::size_t n_groups() const { return start_.size() - 1; }
  std::int32_t n_vocab() const { return n_vocab_; }

 private:
  std::int32_t n_vocab_ = 0;
  std::vector<Token> probes_;
  std::vector<unsigned char> probe_bytes_;
  std::vector<Pair> pairs_;  // by first byte
  std::vector<unsigned char> split_bytes_;
  std::vector<std::uint32_t> pair_start_;  // 257 offsets into pairs_
  std::vector<std::uint32_t> start_;       // n_groups() + 1 offsets into members_, by group
  std::vector<Token> members_;
  std::vector<std::uint16_t> group_;
};

}  // namespace troupe::engine
