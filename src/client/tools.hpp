#pragma once
// Tool calling on the client side: reading a `tools` definition (an OpenAI tools array) from
// JSON text or a file, and joining the streamed pieces of tool calls into whole calls.
//
// Thread-safety: the free functions are reentrant; a ToolCallAssembler has one owner.

#include <boost/json/array.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/types.hpp"
#include "util/result.hpp"

namespace troupe::client {

// Parses and checks an OpenAI `tools` array: `[{"type": "function", "function": {"name": ...,
// "description": ..., "parameters": {JSON schema}}}, ...]`; a document `{"tools": [...]}` (a
// saved request) is accepted too. Errors (invalid_request, param "tools") say what is wrong
// and where: not JSON, not an array, an entry that is not a function, a function without a
// name, parameters that are not an object, a name given twice. The schemas themselves are
// left to the server.
Result<boost::json::array> parse_tools(std::string_view json_text);

// Reads `path` and parse_tools() it; errors name the file (unreadable file included).
Result<boost::json::array> load_tools_file(const std::string& path);

// The function names of a parsed tools array, in order.
std::vector<std::string> tool_names(const boost::json::array& tools);

// Joins the ToolCallDelta pieces of one streamed answer into complete calls, by index. A
// piece's id and name are taken when the call has none yet; argument fragments are appended.
class ToolCallAssembler {
 public:
  // Adds the pieces of one event (Delta::tool_calls). Indexes are < kMaxToolCalls (the
  // client rejects streams with higher ones); a call whose first piece is missing keeps an
  // empty id and name.
  void add(std::span<const ToolCallDelta> pieces);

  // The calls so far, index order.
  const std::vector<ToolCall>& calls() const noexcept { return calls_; }
  bool empty() const noexcept { return calls_.empty(); }
  // Moves the calls out and starts over.
  std::vector<ToolCall> take() noexcept { return std::exchange(calls_, {}); }

 private:
  std::vector<ToolCall> calls_;
};

}  // namespace troupe::client
