// Fuzzes the structured-output path a request's schema takes before anything is queued:
// troupe's check of what llama.cpp's converter honours, then the converter itself
// (json_schema_to_grammar). Every input must end as a grammar or an error value: no crash,
// no sanitizer report, no exception, and a grammar only when the check passed.

#include <cstddef>
#include <cstdint>
#include <string>

#include "chatfmt/chat_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string schema(reinterpret_cast<const char*>(data), size);
  auto grammar = troupe::chatfmt::schema_to_grammar(schema, "response_format");
  if (grammar && grammar->find("root ::=") == std::string::npos)
    __builtin_trap();  // a grammar without its root rule would fail later, on a worker
  if (!grammar && grammar.error().param != "response_format")
    __builtin_trap();
  return 0;
}
