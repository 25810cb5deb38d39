#pragma once
// The token list of a slot's state file (POST /slots/ID?action=save|restore: llama.cpp's
// llama_state_seq_save_file stores it before the KV cells). troupe writes a slot's cached
// tokens as they are, which llama-server reads as its older plain list. llama-server itself
// (since its prompts may hold images) writes them packed, in token-sized words: LLAMA_TOKEN_NULL,
// the layout's version (1), the token count, the tokens, then the count of media chunks and
// their data. Pure; any thread.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/task.hpp"

namespace troupe::engine {

// The words a packed list adds to its tokens when it holds no media.
inline constexpr std::size_t kPackedSlotWords = 4;

// The tokens of a state file's list, plain or packed. nullopt for a packed list of another
// version, with media chunks (a prompt with images: troupe has no projector to restore them
// with), or whose counts disagree with its length.
std::optional<std::vector<Token>> unpack_slot_tokens(std::span<const Token> words);

}  // namespace troupe::engine
