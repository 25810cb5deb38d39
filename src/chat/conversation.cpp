#include "chat/conversation.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "client/wire.hpp"

namespace troupe::chat {
namespace json = boost::json;
namespace {

template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end)
    return std::nullopt;
  return value;
}

Error bad_value(std::string_view name, std::string_view expected) {
  return Error(Errc::invalid_request, std::string(name) + " must be " + std::string(expected),
               std::string(name));
}

client::Message to_message(const Turn& t) {
  return {t.role, t.content, t.tool_calls, t.tool_call_id};
}

void pretty_print(std::string& out, const json::value& v, int indent);

void pretty_print_object(std::string& out, const json::object& o, int indent) {
  if (o.empty()) {
    out += "{}";
    return;
  }
  out += "{\n";
  bool first = true;
  for (const auto& [key, value] : o) {
    if (!first)
      out += ",\n";
    first = false;
    out.append(indent + 2, ' ') += json::serialize(json::string(key)) + ": ";
    pretty_print(out, value, indent + 2);
  }
  out += '\n';
  out.append(indent, ' ') += '}';
}

void pretty_print(std::string& out, const json::value& v, int indent) {
  if (v.is_object())
    return pretty_print_object(out, v.get_object(), indent);
  if (!v.is_array() || v.get_array().empty()) {
    out += json::serialize(v);
    return;
  }
  out += "[\n";
  bool first = true;
  for (const auto& item : v.get_array()) {
    if (!first)
      out += ",\n";
    first = false;
    out.append(indent + 2, ' ');
    pretty_print(out, item, indent + 2);
  }
  out += '\n';
  out.append(indent, ' ') += ']';
}

}  // namespace

Result<void> Conversation::set_parameter(std::string_view name, std::string_view value) {
  if (name == "temperature") {
    auto v = parse_number<double>(value);
    if (!v || *v < 0.0 || *v > 2.0)
      return bad_value(name, "a number in [0, 2]");
    sampling_.temperature = v;
  } else if (name == "top_p") {
    auto v = parse_number<double>(value);
    if (!v || *v <= 0.0 || *v > 1.0)
      return bad_value(name, "a number in (0, 1]");
    sampling_.top_p = v;
  } else if (name == "max_tokens") {
    auto v = parse_number<std::int32_t>(value);
    if (!v || *v < 1)
      return bad_value(name, "an integer >= 1");
    sampling_.max_tokens = v;
  } else if (name == "seed") {
    auto v = parse_number<std::int64_t>(value);
    if (!v || *v < 0)
      return bad_value(name, "an integer >= 0");
    sampling_.seed = v;
  } else {
    return Error(Errc::invalid_request, "unknown parameter " + std::string(name),
                 std::string(name));
  }
  return {};
}

void Conversation::add_assistant(std::string text, std::vector<client::ToolCall> calls) {
  for (std::size_t k = 0; k < calls.size(); ++k) {
    if (calls[k].id.empty())
      calls[k].id = fmt::format("call_{}_{}", turns_.size(), k);
  }
  turns_.push_back({"assistant", std::move(text), std::move(calls)});
}

std::vector<client::ToolCall> Conversation::pending_tool_calls() const {
  std::vector<client::ToolCall> pending;
  auto last = turns_.rbegin();
  while (last != turns_.rend() && last->role == "tool")
    ++last;
  if (last == turns_.rend() || last->role != "assistant")
    return pending;
  for (const auto& call : last->tool_calls) {
    bool answered = false;
    for (auto t = turns_.rbegin(); t != last; ++t)
      answered = answered || t->tool_call_id == call.id;
    if (!answered)
      pending.push_back(call);
  }
  return pending;
}

Result<client::ToolCall> Conversation::add_tool_result(std::string result) {
  auto pending = pending_tool_calls();
  if (pending.empty())
    return Error(Errc::invalid_request, "no tool call is waiting for a result");
  turns_.push_back({"tool", std::move(result), {}, pending.front().id});
  return pending.front();
}

void Conversation::drop_unanswered() {
  if (!turns_.empty() && (turns_.back().role == "user" || turns_.back().role == "tool"))
    turns_.pop_back();
}

std::size_t Conversation::drop_oldest_exchange() {
  auto is_user = [](const Turn& t) { return t.role == "user"; };
  auto first = std::find_if(turns_.begin(), turns_.end(), is_user);
  if (first == turns_.end())
    return 0;
  auto next = std::find_if(first + 1, turns_.end(), is_user);
  if (next == turns_.end())
    return 0;
  const auto n = static_cast<std::size_t>(next - turns_.begin());
  turns_.erase(turns_.begin(), next);
  return n;
}

client::ChatRequest Conversation::request() const {
  client::ChatRequest request;
  request.model = model_;
  request.sampling = sampling_;
  request.tools = tools_;
  if (!system_.empty())
    request.messages.push_back({"system", system_});
  for (const auto& t : turns_)
    request.messages.push_back(to_message(t));
  return request;
}

std::string Conversation::to_json() const {
  json::object doc;
  doc["model"] = model_;
  doc["system"] = system_;
  doc["sampling"] = client::wire::sampling_json(sampling_);
  json::array messages;
  for (const auto& m : request().messages)
    messages.push_back(client::wire::message_json(m));
  doc["messages"] = std::move(messages);
  if (!tools_.empty())
    doc["tools"] = tools_;
  std::string out;
  pretty_print(out, doc, 0);
  out += '\n';
  return out;
}

Result<void> write_file(const std::string& path, std::string_view text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (file)
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (file)
    file.flush();
  if (!file) {
    return Error(Errc::invalid_request, "cannot write " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace troupe::chat
