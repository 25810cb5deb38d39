#include "engine/slot_tokens.hpp"

#include <gtest/gtest.h>

namespace troupe::engine {
namespace {

using Words = std::vector<Token>;

TEST(UnpackSlotTokens, APlainListIsItsTokens) {
  EXPECT_EQ(unpack_slot_tokens(Words{5, 6, 7}), (Words{5, 6, 7}));
  EXPECT_EQ(unpack_slot_tokens(Words{}), Words{});
}

// llama-server's layout: LLAMA_TOKEN_NULL, version 1, the count, the tokens, 0 media chunks.
TEST(UnpackSlotTokens, LlamaServersPackedListIsItsTokens) {
  EXPECT_EQ(unpack_slot_tokens(Words{-1, 1, 3, 5, 6, 7, 0}), (Words{5, 6, 7}));
  EXPECT_EQ(unpack_slot_tokens(Words{-1, 1, 0, 0}), Words{});
}

TEST(UnpackSlotTokens, APackedListThatDisagreesWithItselfIsRefused) {
  EXPECT_FALSE(unpack_slot_tokens(Words{-1}));
  EXPECT_FALSE(unpack_slot_tokens(Words{-1, 1, 3}));
  EXPECT_FALSE(unpack_slot_tokens(Words{-1, 2, 3, 5, 6, 7, 0}));  // another version
  EXPECT_FALSE(unpack_slot_tokens(Words{-1, 1, 4, 5, 6, 7, 0}));  // count past the end
  EXPECT_FALSE(unpack_slot_tokens(Words{-1, 1, 2, 5, 6, 7, 0}));  // words left over
  EXPECT_FALSE(unpack_slot_tokens(Words{-1, 1, -3, 5, 6, 7, 0}));
  EXPECT_FALSE(unpack_slot_tokens(Words{-1, 1, 3, 5, 6, 7, 1}));  // a media chunk (an image)
}

}  // namespace
}  // namespace troupe::engine
