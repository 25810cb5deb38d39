#pragma once
// Where exact-length prompts get their tokens: the server's own tokenizer (POST /tokenize and
// /detokenize, as troupe serve and llama.cpp's server have them) or a local GGUF vocabulary
// (`--tokenizer model.gguf`, for servers without those routes: vLLM, OpenAI, ...).
//
// Both tokenize without adding special tokens (BOS, ...) and parse special-token text the way
// the server parses a prompt, so a prompt of n tokens here is n tokens of the served model's
// vocabulary plus whatever the server adds itself.
//
// Thread-safety: a server tokenizer lives on its Client's executor; a local one is immutable
// and may be used from any thread.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"
#include "util/result.hpp"

namespace troupe::bench {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // What results.json records: "server" or "local:<path>".
  virtual std::string describe() const = 0;
  // `text` must stay alive until the returned awaitable completes.
  virtual boost::asio::awaitable<Result<std::vector<std::int32_t>>> tokenize(
      std::string_view text) = 0;
  virtual boost::asio::awaitable<Result<std::string>> detokenize(
      const std::vector<std::int32_t>& tokens) = 0;
};

// The server's /tokenize and /detokenize through `c` (which must outlive it). Errors are the
// client's: not_found when the server has no such route.
std::unique_ptr<Tokenizer> make_server_tokenizer(client::Client& c);

// A local GGUF model's vocabulary (only the vocabulary is loaded). Errors: not_found for a
// missing file, invalid_request for a file llama.cpp cannot read; both name the flag
// --tokenizer.
Result<std::unique_ptr<Tokenizer>> make_local_tokenizer(const std::string& gguf_path);

}  // namespace troupe::bench
