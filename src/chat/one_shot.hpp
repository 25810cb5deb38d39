#pragma once
// Non-interactive chat: one question, the streamed answer on stdout, the process exit code.
//
// Thread-safety: runs its own event loop on the calling thread.

#include <string>
#include <string_view>

#include "chat/options.hpp"
#include "chat/terminal.hpp"
#include "client/types.hpp"

namespace troupe::chat {

// Asks `question` and writes the answer to `out` as it streams (a spinner and styles only when
// `terminal`; reasoning as options.show_reasoning says, by default only on a terminal; tool
// calls the model makes are shown, not answered), then a final newline when the answer did
// not end with one. Errors are one line on stderr. SIGINT/SIGTERM stop the answer (the connection
// is closed). Returns 0, 1 (request failed) or 130 (interrupted).
int ask_once(const ChatOptions& options, const std::string& question, Output& out, bool terminal);

// One line for people about a failed request ("cannot reach http://...: connection refused",
// "unauthorized (HTTP 401): ... (set --api-key or TROUPE_API_KEY)", ...), without newline.
// `connection_lost`: the answer had begun streaming when the connection failed.
std::string describe_error(const client::ClientError& error, std::string_view url,
                           bool connection_lost = false);

}  // namespace troupe::chat
