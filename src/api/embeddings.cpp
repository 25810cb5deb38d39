#include "api/embeddings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>

#include "api/json_reader.hpp"
#include "api/request.hpp"

namespace troupe::api {

namespace json = boost::json;

namespace {

constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();

// An array of integers as token ids; false (with the reader failed) when an element is not
// an id.
bool read_tokens(const json::array& a, std::vector<std::int32_t>& out, JsonReader& r,
                 const std::string& param) {
  out.reserve(a.size());
  for (const auto& v : a) {
    const auto id = as_integer(v);
    if (!id || *id < 0 || *id > int32_max) {
      r.fail(fmt::format("'{}' must hold token ids (integers >= 0)", param), param);
      return false;
    }
    out.push_back(static_cast<std::int32_t>(*id));
  }
  return true;
}

bool all_integers(const json::array& a) {
  return std::all_of(a.begin(), a.end(), [](const json::value& v) { return v.is_number(); });
}

// One element of an `input` array: a string or an array of token ids.
void read_input_item(const json::value& v, std::size_t i, EmbeddingsRequest& req, JsonReader& r) {
  const std::string param = fmt::format("input[{}]", i);
  if (v.is_string()) {
    req.inputs.emplace_back(std::string(v.get_string()));
  } else if (v.is_array()) {
    std::vector<std::int32_t> ids;
    if (read_tokens(v.get_array(), ids, r, param))
      req.inputs.emplace_back(std::move(ids));
  } else {
    r.fail(fmt::format("'{}' must be a string or an array of token ids", param), "input");
  }
}

// `input`, or llama-server's `content` (the same shapes) when there is no `input`.
void read_inputs(JsonReader& r, EmbeddingsRequest& req) {
  const json::value* v = r.find("input");
  if (v == nullptr) {
    v = r.find("content");
    req.content = v != nullptr;
  }
  if (v == nullptr) {
    r.fail("'input' is required", "input");
    return;
  }
  if (v->is_string()) {
    req.inputs.emplace_back(std::string(v->get_string()));
  } else if (v->is_array()) {
    const auto& a = v->get_array();
    if (a.empty()) {
      r.fail("'input' must not be empty", "input");
      return;
    }
    if (all_integers(a)) {
      std::vector<std::int32_t> ids;
      if (read_tokens(a, ids, r, "input"))
        req.inputs.emplace_back(std::move(ids));
    } else {
      if (a.size() > max_embedding_inputs) {
        r.fail(fmt::format("'input' may hold at most {} items", max_embedding_inputs), "input");
        return;
      }
      for (std::size_t i = 0; i < a.size() && !r.failed(); ++i)
        read_input_item(a[i], i, req, r);
    }
  } else {
    r.fail("'input' must be a string, an array of strings or an array of token ids", "input");
    return;
  }
  for (std::size_t i = 0; i < req.inputs.size() && !r.failed(); ++i) {
    const bool empty = std::visit([](const auto& x) { return x.empty(); }, req.inputs[i]);
    if (empty)
      r.fail(req.inputs.size() == 1 ? "'input' must not be empty"
                                    : fmt::format("'input[{}]' must not be empty", i),
             "input");
  }
}

void read_encoding(JsonReader& r, EmbeddingsRequest& req) {
  std::string format = "float";
  r.string("encoding_format", format);
  if (r.failed())
    return;
  if (format == "float")
    req.encoding_format = EncodingFormat::float_array;
  else if (format == "base64")
    req.encoding_format = EncodingFormat::base64;
  else
    r.fail("'encoding_format' must be \"float\" or \"base64\"", "encoding_format");
}

void read_normalize(JsonReader& r, EmbeddingsRequest& req) {
  std::optional<std::int64_t> norm;
  r.integer("embd_normalize", norm, -1, max_embd_normalize);
  if (!r.failed() && norm)
    req.norm = static_cast<std::int32_t>(*norm);
}

void read_documents(JsonReader& r, RerankRequest& req) {
  const json::value* v = r.find("documents");
  if (v == nullptr) {
    r.fail("'documents' is required", "documents");
    return;
  }
  if (!v->is_array() || v->get_array().empty()) {
    r.fail("'documents' must be a non-empty array", "documents");
    return;
  }
  const auto& a = v->get_array();
  if (a.size() > max_embedding_inputs) {
    r.fail(fmt::format("'documents' may hold at most {} items", max_embedding_inputs), "documents");
    return;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    const json::value* text = &a[i];
    if (a[i].is_object())
      text = a[i].get_object().if_contains("text");
    if (text == nullptr || !text->is_string() || text->get_string().empty()) {
      r.fail(fmt::format("'documents[{}]' must be a non-empty string or an object with a "
                         "non-empty 'text'",
                         i),
             "documents");
      return;
    }
    req.documents.emplace_back(text->get_string());
  }
}

void append_float(std::string& out, float x) {
  if (!std::isfinite(x)) {
    out += "0";  // JSON has no NaN; a random model's overflow must still be valid JSON
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", x);
}

void append_quoted(std::string& out, std::string_view s) {
  out += json::serialize(json::string_view(s.data(), s.size()));
}

}  // namespace

Result<EmbeddingsRequest> parse_embeddings_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  EmbeddingsRequest req;
  r.string("model", req.model);
  read_inputs(r, req);
  read_encoding(r, req);
  r.integer32("dimensions", req.dimensions, 1, std::numeric_limits<std::int32_t>::max());
  r.boolean("truncate", req.truncate);
  read_normalize(r, req);
  read_lora(r, req.lora);
  std::string user;
  r.string("user", user);  // an identifier: no effect on the answer
  if (r.failed())
    return *r.error();
  return req;
}

Result<RerankRequest> parse_rerank_request(std::string_view body) {
  auto obj = parse_json_object(body);
  if (!obj)
    return obj.error();
  JsonReader r(*obj);
  RerankRequest req;
  r.string("model", req.model);
  if (!r.failed() && r.find("query") == nullptr)
    r.fail("'query' is required", "query");
  r.string("query", req.query);
  if (!r.failed() && req.query.empty())
    r.fail("'query' must not be empty", "query");
  read_documents(r, req);
  r.integer32("top_n", req.top_n, 1, std::numeric_limits<std::int32_t>::max());
  r.boolean("return_documents", req.return_documents);
  r.boolean("truncate", req.truncate);
  read_lora(r, req.lora);
  if (r.failed())
    return *r.error();
  return req;
}

void append_float_array(std::string& out, std::span<const float> v) {
  out += '[';
  for (std::size_t k = 0; k < v.size(); ++k) {
    if (k > 0)
      out += ',';
    append_float(out, v[k]);
  }
  out += ']';
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += table[n >> 18 & 63];
    out += table[n >> 12 & 63];
    out += table[n >> 6 & 63];
    out += table[n & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    const std::uint32_t n = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += table[n >> 18 & 63];
    out += table[n >> 12 & 63];
    out += rest == 2 ? table[n >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

std::string float_bytes(const std::vector<float>& v) {
  std::string bytes(v.size() * sizeof(float), '\0');
  static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

void append_usage(std::string& out, std::int64_t prompt_tokens) {
  fmt::format_to(std::back_inserter(out), R"("usage":{{"prompt_tokens":{},"total_tokens":{}}})",
                 prompt_tokens, prompt_tokens);
}

}  // namespace

std::string write_embeddings_response(const EmbeddingsAnswer& a) {
  std::string out = R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < a.vectors.size(); ++i) {
    if (i > 0)
      out += ',';
    out += R"({"object":"embedding","index":)";
    fmt::format_to(std::back_inserter(out), "{}", i);
    out += R"(,"embedding":)";
    if (a.encoding_format == EncodingFormat::base64) {
      out += '"';
      out += base64_encode(float_bytes(a.vectors[i]));
      out += '"';
    } else {
      append_float_array(out, a.vectors[i]);
    }
    out += '}';
  }
  out += R"(],"model":)";
  append_quoted(out, a.model);
  out += ',';
  append_usage(out, a.prompt_tokens);
  out += '}';
  return out;
}

std::string write_native_embeddings_response(const std::vector<std::vector<float>>& values,
                                             const std::vector<std::int32_t>& rows) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    fmt::format_to(std::back_inserter(out), R"({}{{"index":{},"embedding":[)", i > 0 ? "," : "", i);
    const auto n_rows = static_cast<std::size_t>(std::max<std::int32_t>(rows[i], 1));
    const std::size_t width = values[i].size() / n_rows;
    const std::span<const float> all(values[i]);
    for (std::size_t row = 0; row < n_rows; ++row) {
      if (row > 0)
        out += ',';
      append_float_array(out, all.subspan(row * width, width));
    }
    out += "]}";
  }
  out += ']';
  return out;
}

std::string write_rerank_response(const RerankAnswer& a) {
  std::vector<std::size_t> order(a.scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return a.scores[x] > a.scores[y]; });
  if (a.top_n && static_cast<std::size_t>(*a.top_n) < order.size())
    order.resize(static_cast<std::size_t>(*a.top_n));
  std::string out = R"({"model":)";
  append_quoted(out, a.model);
  out += R"(,"object":"list",)";
  append_usage(out, a.prompt_tokens);
  out += R"(,"results":[)";
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    if (k > 0)
      out += ',';
    fmt::format_to(std::back_inserter(out), R"({{"index":{},"relevance_score":)", i);
    append_float(out, a.scores[i]);
    if (a.documents != nullptr) {
      out += R"(,"document":{"text":)";
      append_quoted(out, (*a.documents)[i]);
      out += '}';
    }
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace troupe::api
