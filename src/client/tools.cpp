#include "client/tools.hpp"

#include <boost/json/parse.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace troupe::client {

namespace json = boost::json;

namespace {

Error bad(std::string message) {
  return Error(Errc::invalid_request, std::move(message), "tools");
}

// The checks of one entry; returns its function's name or the problem.
Result<std::string> check_tool(const json::value& entry, std::size_t i) {
  const std::string where = "tools[" + std::to_string(i) + "]";
  const auto* o = entry.if_object();
  if (!o)
    return bad(where + " is not an object");
  const auto* type = o->if_contains("type");
  if (!type || !type->is_string() || type->get_string() != "function")
    return bad(where + ": \"type\" must be \"function\"");
  const auto* fn = o->if_contains("function");
  if (!fn || !fn->is_object())
    return bad(where + ": needs a \"function\" object");
  const auto* name = fn->get_object().if_contains("name");
  if (!name || !name->is_string() || name->get_string().empty())
    return bad(where + ": needs \"function.name\", a non-empty string");
  if (const auto* d = fn->get_object().if_contains("description"); d && !d->is_string())
    return bad(where + ": \"function.description\" must be a string");
  if (const auto* p = fn->get_object().if_contains("parameters"); p && !p->is_object())
    return bad(where + ": \"function.parameters\" must be a JSON schema object");
  return std::string(name->get_string());
}

}  // namespace

Result<json::array> parse_tools(std::string_view json_text) {
  json::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec)
    return bad("tools: not JSON: " + ec.message());
  if (auto* o = v.if_object()) {
    auto* inner = o->if_contains("tools");
    if (!inner)
      return bad("tools: expected an array of tools (or an object with \"tools\")");
    v = std::move(*inner);
  }
  auto* tools = v.if_array();
  if (!tools)
    return bad("tools: expected an array of tools");
  if (tools->empty())
    return bad("tools: the array is empty");
  std::set<std::string> names;
  for (std::size_t i = 0; i < tools->size(); ++i) {
    auto name = check_tool((*tools)[i], i);
    if (!name)
      return name.error();
    if (!names.insert(name.value()).second)
      return bad("tools[" + std::to_string(i) + "]: the name " + name.value() + " is used twice");
  }
  return std::move(*tools);
}

Result<json::array> load_tools_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return bad("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  auto tools = parse_tools(text.str());
  if (!tools)
    return bad(path + ": " + tools.error().message);
  return tools;
}

std::vector<std::string> tool_names(const json::array& tools) {
  std::vector<std::string> out;
  for (const auto& t : tools) {
    const auto* fn = t.is_object() ? t.get_object().if_contains("function") : nullptr;
    const auto* name = fn && fn->is_object() ? fn->get_object().if_contains("name") : nullptr;
    if (name && name->is_string())
      out.emplace_back(name->get_string());
  }
  return out;
}

void ToolCallAssembler::add(std::span<const ToolCallDelta> pieces) {
  for (const auto& p : pieces) {
    if (p.index >= kMaxToolCalls)
      continue;
    if (calls_.size() <= p.index)
      calls_.resize(p.index + 1);
    auto& call = calls_[p.index];
    if (call.id.empty())
      call.id = p.id;
    if (call.name.empty())
      call.name = p.name;
    call.arguments += p.arguments;
  }
}

}  // namespace troupe::client
