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
  // `pieces[t]` is token t's text; `eog` lists the end-of-generation tokens.
  FirstByteIndex(const std::vector<std::string>& pieces, std::span<const Token> eog);
  static FirstByteIndex of(const llama_vocab* vocab);

  // The one-byte tokens, one for each byte that has one, and that byte.
  std::span<const Token> probes() const { return probes_; }
  unsigned char probe_byte(std::size_t i) const { return probe_bytes_[i]; }
  // The tokens (end-of-generation ones excluded) whose text starts with byte c, when c has a
  // one-byte token; empty otherwise (they are in always_checked()).
  std::span<const Token> starting_with(unsigned char c) const;
  // The tokens the first-byte rule says nothing about.
  std::span<const Token> always_checked() const { return always_; }
  // Token t's group: its first byte (0-255) when it is in starting_with() of that byte,
  // kAlways when it is always checked, kNever when the grammar never allows it.
  static constexpr std::uint16_t kAlways = 256;
  static constexpr std::uint16_t kNever = 257;
  static constexpr std::size_t kGroups = 258;
  const std::uint16_t* groups() const { return group_.data(); }
  std::int32_t n_vocab() const { return n_vocab_; }

 private:
  std::int32_t n_vocab_ = 0;
  std::vector<Token> probes_;
  std::vector<unsigned char> probe_bytes_;
  std::vector<std::uint32_t> start_;  // 257 offsets into by_byte_, by first byte
  std::vector<Token> by_byte_;
  std::vector<Token> always_;
  std::vector<std::uint16_t> group_;
};

}  // namespace troupe::engine
