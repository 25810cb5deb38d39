#include "chat/conversation.hpp"

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

json::array messages_json(const std::string& system, const std::vector<Turn>& turns) {
  json::array messages;
  if (!system.empty())
    messages.push_back({{"role", "system"}, {"content", system}});
  for (const auto& t : turns)
    messages.push_back({{"role", t.role}, {"content", t.content}});
  return messages;
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

void Conversation::drop_unanswered() {
  if (!turns_.empty() && turns_.back().role == "user")
    turns_.pop_back();
}

client::ChatRequest Conversation::request() const {
  client::ChatRequest request;
  request.model = model_;
  request.sampling = sampling_;
  if (!system_.empty())
    request.messages.push_back({"system", system_});
  for (const auto& t : turns_)
    request.messages.push_back({t.role, t.content});
  return request;
}

std::string Conversation::to_json() const {
  json::object doc;
  doc["model"] = model_;
  doc["system"] = system_;
  doc["sampling"] = client::wire::sampling_json(sampling_);
  doc["messages"] = messages_json(system_, turns_);
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
