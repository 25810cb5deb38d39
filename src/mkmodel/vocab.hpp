#pragma once
// A generated SentencePiece-style ("llama") vocabulary: the fixed special tokens, the 256
// byte-fallback tokens, ChatML control tokens, then word pieces until the requested size.
// Every prefix of a word piece is itself a piece, so SentencePiece merges can build it, and
// anything else falls back to bytes: any UTF-8 text round-trips.

#include <cstdint>
#include <string>
#include <vector>

namespace troupe::mkmodel {

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<std::int32_t> types;  // llama_token_type values
  std::int32_t unk_id = 0;
  std::int32_t bos_id = 1;
  std::int32_t eos_id = 2;
  std::int32_t im_start_id = 0;
  std::int32_t im_end_id = 0;
};

// The fixed part: unk, bos, eos, 256 bytes, <|im_start|>, <|im_end|>.
inline constexpr std::int32_t kFixedTokens = 3 + 256 + 2;
// Smallest vocabulary build_vocab accepts: the fixed part plus single characters.
inline constexpr std::int32_t kMinVocab = 512;

// Builds a vocabulary of exactly n_vocab tokens. Precondition: n_vocab >= kMinVocab and not
// larger than the generator can fill (about 40,000).
Vocab build_vocab(std::int32_t n_vocab);

// Largest vocabulary build_vocab can fill.
std::int32_t max_vocab();

// The ChatML template written into tokenizer.chat_template.
const char* chatml_template();

}  // namespace troupe::mkmodel
