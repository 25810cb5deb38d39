#pragma once
// JsonReader: typed, range-checked reads of the fields of one JSON object, for request
// parsing. The first failed check is kept as an Error{invalid_request, message, param}; later
// reads do nothing, so a parser reads every field and checks error() once at the end.
// A field that is absent or null leaves its output untouched.
//
// Not thread-safe; one reader per parse. The object must outlive the reader.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hpp"
#include "util/result.hpp"

namespace troupe::api {

// Parses `body` as a JSON object (valid UTF-8, depth <= 32). Error{invalid_request} otherwise.
Result<boost::json::object> parse_json_object(std::string_view body);

// An inclusive or exclusive numeric bound.
struct Bound {
  double value = 0;
  bool inclusive = true;
};

class JsonReader {
 public:
  explicit JsonReader(const boost::json::object& obj) : obj_(obj) {}

  void number(std::string_view key, std::optional<double>& out, Bound lo, Bound hi);
  void integer(std::string_view key, std::optional<std::int64_t>& out, std::int64_t lo,
               std::int64_t hi);
  void integer32(std::string_view key, std::optional<std::int32_t>& out, std::int32_t lo,
                 std::int32_t hi);
  void boolean(std::string_view key, bool& out);
  void string(std::string_view key, std::string& out);
  // A string or an array of strings.
  void string_list(std::string_view key, std::vector<std::string>& out, std::size_t max_items);
  // An array of integers in [lo, hi].
  void int_array(std::string_view key, std::vector<std::int32_t>& out, std::int64_t lo,
                 std::int64_t hi);

  // The field if present and not null.
  const boost::json::value* find(std::string_view key) const;

  void fail(std::string message, std::string param);
  bool failed() const { return error_.has_value(); }
  const std::optional<Error>& error() const { return error_; }

 private:
  const boost::json::object& obj_;
  std::optional<Error> error_;
};

// The integer value of `v` if it is an integer (or a float with an integral value).
std::optional<std::int64_t> as_integer(const boost::json::value& v);

}  // namespace troupe::api
