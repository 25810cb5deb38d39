#include "bench/tool_sets.hpp"

#include <boost/json/parse.hpp>
#include <charconv>
#include <filesystem>

#include "client/tools.hpp"

namespace troupe::bench {

namespace json = boost::json;

namespace {

// The functions, as an application would declare them.
constexpr std::string_view kBuiltin = R"([
{"type": "function", "function": {"name": "get_current_weather",
  "description": "Get the current weather and the forecast for the next hours at a location.",
  "parameters": {"type": "object", "properties": {
    "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
    "hours": {"type": "integer", "minimum": 0, "maximum": 48, "description": "Forecast hours"}},
   "required": ["location"]}}},
{"type": "function", "function": {"name": "search_web",
  "description": "Search the web and return the most relevant pages with a short snippet each.",
  "parameters": {"type": "object", "properties": {
    "query": {"type": "string", "description": "What to search for"},
    "max_results": {"type": "integer", "minimum": 1, "maximum": 20},
    "recency_days": {"type": "integer", "minimum": 1, "description": "Only pages this recent"},
    "safe_search": {"type": "boolean"}},
   "required": ["query"]}}},
{"type": "function", "function": {"name": "get_stock_quote",
  "description": "Get the latest price of a listed stock, optionally with its daily history.",
  "parameters": {"type": "object", "properties": {
    "symbol": {"type": "string", "pattern": "^[A-Z]{1,5}$", "description": "Ticker symbol"},
    "exchange": {"type": "string", "enum": ["NASDAQ", "NYSE", "LSE", "XETRA", "TSE"]},
    "include_history": {"type": "boolean"},
    "days": {"type": "integer", "minimum": 1, "maximum": 365}},
   "required": ["symbol"]}}},
{"type": "function", "function": {"name": "send_email",
  "description": "Send an e-mail on behalf of the user.",
  "parameters": {"type": "object", "properties": {
    "to": {"type": "array", "items": {"type": "string"}, "minItems": 1,
           "description": "Recipients' addresses"},
    "cc": {"type": "array", "items": {"type": "string"}},
    "subject": {"type": "string"},
    "body": {"type": "string", "description": "Plain-text body"},
    "priority": {"type": "string", "enum": ["low", "normal", "high"]}},
   "required": ["to", "subject", "body"]}}},
{"type": "function", "function": {"name": "create_calendar_event",
  "description": "Create an event in the user's calendar and invite attendees.",
  "parameters": {"type": "object", "properties": {
    "title": {"type": "string"},
    "start": {"type": "string", "format": "date-time", "description": "ISO 8601 start time"},
    "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 1440},
    "attendees": {"type": "array", "items": {"type": "string"}},
    "location": {"type": "string"},
    "reminder": {"type": "boolean"}},
   "required": ["title", "start"]}}},
{"type": "function", "function": {"name": "convert_currency",
  "description": "Convert an amount between currencies at today's exchange rate.",
  "parameters": {"type": "object", "properties": {
    "amount": {"type": "number", "description": "Not negative"},
    "from": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"},
    "to": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"}},
   "required": ["amount", "from", "to"]}}},
{"type": "function", "function": {"name": "book_restaurant",
  "description": "Book a table at a restaurant.",
  "parameters": {"type": "object", "properties": {
    "restaurant": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "description": "HH:MM"},
    "party_size": {"type": "integer", "minimum": 1, "maximum": 20},
    "notes": {"type": "string"}},
   "required": ["restaurant", "date", "time", "party_size"]}}},
{"type": "function", "function": {"name": "get_directions",
  "description": "Get a route between two places with its duration and distance.",
  "parameters": {"type": "object", "properties": {
    "origin": {"type": "string"},
    "destination": {"type": "string"},
    "mode": {"type": "string", "enum": ["driving", "walking", "transit", "cycling"]},
    "avoid": {"type": "array", "items": {"type": "string", "enum": ["tolls", "highways", "ferries"]}}},
   "required": ["origin", "destination"]}}}
])";

Error bad(const std::string& what) {
  return Error{Errc::invalid_request, "--tools: " + what, "--tools"};
}

}  // namespace

json::array builtin_tools(std::size_t n) {
  json::array all = json::parse(kBuiltin).as_array();
  all.resize(std::min(n, all.size()));
  return all;
}

Result<std::vector<ToolSet>> parse_tool_sets(const std::string& list) {
  std::vector<ToolSet> out;
  std::string_view rest = list;
  for (;;) {
    const auto comma = rest.find(',');
    const std::string item(rest.substr(0, comma));
    if (item.empty())
      return bad("expected a comma-separated list of counts 0.." + std::to_string(kBuiltinTools) +
                 " or tools files");
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (ec == std::errc{} && end == item.data() + item.size()) {
      if (n > kBuiltinTools)
        return bad(item + " built-in tools: there are " + std::to_string(kBuiltinTools));
      out.push_back({item, builtin_tools(n)});
    } else {
      auto tools = client::load_tools_file(item);
      if (!tools)
        return bad(tools.error().message);
      out.push_back({std::filesystem::path(item).filename().string(), std::move(tools).value()});
    }
    if (comma == std::string_view::npos)
      break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace troupe::bench
