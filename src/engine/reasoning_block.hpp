#pragma once
// ReasoningBlock: where a sequence's answer stands relative to its chat template's reasoning
// block (`<think>` ... `</think>`), read from the answer's text as the output parser reads it
// (control tokens written out), and the reasoning budget that closes the block for the model
// (llama-server's --reasoning-budget, a request's reasoning_budget_tokens).
//
// llama.cpp's reasoning-budget sampler, which llama-server uses, matches each tag's tokens as
// the tag tokenizes alone. In context a vocabulary often cuts the tag otherwise (`>\n\n` is one
// token of the Llama 3 and Qwen vocabularies, `.</` another), and a close it misses leaves its
// budget to force a second tag into the answer, or a tool grammar waiting for a block that has
// ended. Text sees the tag however it was tokenized. The rest is that sampler's rule: the
// budget counts the tokens inside the block, waits for a UTF-8 character to finish, then
// writes the message and a closing tag one token a draw; a new opening tag opens it again.
//
// Thread-safety: none; one sequence's Sampler owns it.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/task.hpp"
#include "engine/token_text.hpp"

namespace troupe::engine {

class ReasoningBlock {
 public:
  struct Spec {
    std::string start;              // the opening tag
    std::vector<std::string> ends;  // the closing tags
    // Written for the model once the budget is spent: the message, then a closing tag.
    std::vector<Token> forced;
    std::int32_t budget = -1;  // tokens inside the block before `forced`; < 0: no limit
    bool opened = false;       // the prompt opened the block: the answer begins inside it
  };

  // `text` (the model's vocabulary) must outlive the block.
  ReasoningBlock(Spec spec, const TokenText& text);

  // Whether the block is open now (counting, finishing a character, or forcing).
  bool inside() const noexcept { return state_ != State::outside; }
  // The token the budget writes now; -1 when it writes none.
  Token forced() const noexcept;
  // Takes the token the sequence wrote (drawn or forced).
  void accept(Token token);
  // Right after the accept() that closed the block: the tokens that wrote its closing tag,
  // from the one where the tag begins; empty otherwise.
  std::span<const Token> closing() const noexcept { return closing_; }

 private:
  enum class State : std::uint8_t { outside, counting, finishing, forcing };
  struct Written {
    Token token;
    std::uint64_t end;  // the text's length once it was written
  };
  struct Found {
    std::size_t end = 0;  // where in tail_ the tag ends; 0: none found
    std::size_t length = 0;
  };
  void open();
  void after_count();
  Found find(std::span<const std::string> tags) const;
  void close(Found tag);
  void trim();

  Spec spec_;
  const TokenText& text_;
  State state_ = State::outside;
  std::int32_t remaining_ = 0;
  std::size_t force_at_ = 0;
  std::size_t keep_ = 0;         // bytes of tail_ kept between tokens: the longest tag's, less 1
  std::string tail_;             // the text's last bytes, then the newest token's
  std::uint64_t written_ = 0;    // the text's length
  std::vector<Written> recent_;  // the tokens whose text is in tail_
  std::vector<Token> closing_;
};

}  // namespace troupe::engine
