#include "bench/workload.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <sstream>

namespace troupe::bench {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

Result<DatasetEntry> parse_jsonl_entry(std::string_view line, std::size_t lineno) {
  json::error_code ec;
  auto v = json::parse(line, ec);
  auto where = "line " + std::to_string(lineno) + ": ";
  if (ec || !v.is_object()) {
    return Error{Errc::invalid_request, where + "not a JSON object", "dataset"};
  }
  DatasetEntry e;
  const auto& o = v.as_object();
  if (const auto* p = o.if_contains("prompt"); p && p->is_string()) {
    e.prompt = p->as_string();
    return e;
  }
  const auto* m = o.if_contains("messages");
  if (!m || !m->is_array()) {
    return Error{Errc::invalid_request, where + "needs \"prompt\" or \"messages\"", "dataset"};
  }
  for (const auto& msg : m->as_array()) {
    const auto* mo = msg.if_object();
    const json::value* role = mo ? mo->if_contains("role") : nullptr;
    const json::value* content = mo ? mo->if_contains("content") : nullptr;
    if (!role || !content || !role->is_string() || !content->is_string()) {
      return Error{Errc::invalid_request, where + "messages need string role and content",
                   "dataset"};
    }
    e.messages.push_back({std::string(role->as_string()), std::string(content->as_string())});
  }
  return e;
}

}  // namespace

Result<std::vector<DatasetEntry>> load_dataset(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return Error{Errc::invalid_request, "cannot read dataset " + path, "dataset"};
  bool jsonl = path.ends_with(".jsonl");
  std::vector<DatasetEntry> out;
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    if (!jsonl) {
      out.push_back({line, {}});
      continue;
    }
    auto e = parse_jsonl_entry(line, n);
    if (!e)
      return Error{e.error().code, path + " " + e.error().message, "dataset"};
    out.push_back(std::move(e.value()));
  }
  if (out.empty())
    return Error{Errc::invalid_request, "dataset " + path + " is empty", "dataset"};
  return out;
}

std::string builtin_corpus() {
  static constexpr const char* kWords[] = {
      "the",     "river",   "ran",       "past",    "old",     "mill",    "where",  "children",
      "played",  "every",   "summer",    "while",   "their",   "parents", "worked", "in",
      "fields",  "of",      "wheat",     "and",     "barley",  "a",       "quiet",  "wind",
      "carried", "songs",   "from",      "distant", "hills",   "across",  "valley", "towards",
      "sea",     "that",    "glittered", "under",   "morning", "sun",     "people", "said",
      "story",   "began",   "long",      "ago",     "when",    "small",   "boat",   "arrived",
      "with",    "strange", "maps",      "nobody",  "could",   "read",    "until",  "teacher",
      "found",   "key",     "hidden",    "inside",  "book",    "about",   "stars",  "weather",
      "bread",   "music",   "city",      "lights",  "road"};
  std::mt19937_64 rng(20240601);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(kWords) - 1);
  std::string out;
  for (int sentence = 0; sentence < 600; ++sentence) {
    int len = 6 + static_cast<int>(rng() % 10);
    for (int w = 0; w < len; ++w) {
      std::string word = kWords[pick(rng)];
      if (w == 0)
        word[0] = static_cast<char>(std::toupper(word[0]));
      out += word;
      out += w + 1 == len ? ". " : " ";
    }
  }
  return out;
}

asio::awaitable<PromptBuilder> PromptBuilder::create(Tokenizer* tokenizer, std::string corpus) {
  PromptBuilder b(tokenizer, std::move(corpus));
  std::istringstream words(b.corpus_);
  for (std::string w; words >> w;)
    b.words_.push_back(w);
  if (!tokenizer) {
    b.inexact_reason_ = "no tokenizer";
    co_return b;
  }
  auto toks = co_await tokenizer->tokenize(b.corpus_);
  if (!toks) {
    b.inexact_reason_ = toks.error().message;
    co_return b;
  }
  if (toks->size() <= 16) {
    b.inexact_reason_ = "the corpus has only " + std::to_string(toks->size()) + " tokens";
    co_return b;
  }
  b.tokens_ = std::move(toks).value();
  auto probe = co_await tokenizer->detokenize({b.tokens_.begin(), b.tokens_.begin() + 8});
  b.exact_ = probe.ok();
  if (!probe)
    b.inexact_reason_ = probe.error().message;
  co_return b;
}

std::vector<std::int32_t> PromptBuilder::slice(std::int32_t tokens, std::int32_t prefix,
                                               std::mt19937_64& rng) {
  std::vector<std::int32_t> out;
  out.reserve(static_cast<std::size_t>(tokens));
  auto n = tokens_.size();
  for (std::int32_t i = 0; i < prefix; ++i)
    out.push_back(tokens_[static_cast<std::size_t>(i) % n]);
  std::size_t offset = rng() % n;
  for (std::int32_t i = prefix; i < tokens; ++i)
    out.push_back(tokens_[(offset++) % n]);
  return out;
}

std::string PromptBuilder::approximate(std::int32_t tokens, std::int32_t prefix,
                                       std::mt19937_64& rng) {
  std::string out;
  auto n = words_.empty() ? 1 : words_.size();
  std::size_t offset = rng() % n;
  for (std::int32_t i = 0; i < tokens; ++i) {
    std::size_t at = i < prefix ? static_cast<std::size_t>(i) % n : (offset++) % n;
    if (i > 0)
      out += ' ';
    out += words_.empty() ? "word" : words_[at];
  }
  return out;
}

asio::awaitable<std::string> PromptBuilder::build(std::int32_t tokens, std::int32_t prefix,
                                                  std::mt19937_64& rng) {
  if (!exact_)
    co_return approximate(tokens, prefix, rng);
  auto ids = slice(tokens, prefix, rng);
  std::string best;
  for (int attempt = 0; attempt < 6; ++attempt) {
    auto text = co_await tokenizer_->detokenize(ids);
    if (!text)
      break;
    auto again = co_await tokenizer_->tokenize(*text);
    if (!again)
      break;
    best = std::move(text).value();
    auto diff = static_cast<std::int64_t>(again->size()) - tokens;
    if (diff == 0)
      co_return best;
    if (diff > 0) {
      ids.resize(ids.size() -
                 std::min<std::size_t>(ids.size() - 1, static_cast<std::size_t>(diff)));
    } else {
      for (std::int64_t i = 0; i < -diff; ++i)
        ids.push_back(tokens_[(ids.size() * 7) % tokens_.size()]);
    }
  }
  ++inexact_;
  co_return best.empty() ? approximate(tokens, prefix, rng) : best;
}

asio::awaitable<std::vector<BenchRequest>> build_workload(PromptBuilder& builder,
                                                          const WorkloadSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::vector<BenchRequest> out;
  out.reserve(static_cast<std::size_t>(spec.count));
  for (std::int64_t i = 0; i < spec.count; ++i) {
    BenchRequest r;
    r.index = i;
    r.target = spec.scenario.sample(rng);
    if (spec.dataset) {
      const auto& e = (*spec.dataset)[rng() % spec.dataset->size()];
      r.prompt = e.prompt;
      r.messages = e.messages;
      r.target.input = 0;
    } else if (i >= spec.distinct_prompts) {
      const auto& again = out[static_cast<std::size_t>(i % spec.distinct_prompts)];
      r.target.input = again.target.input;
      r.prompt = again.prompt;
    } else {
      auto prefix = spec.prefix_ratio > 0
                        ? static_cast<std::int32_t>(std::lround(spec.prefix_ratio * r.target.input))
                        : spec.prefix_len;
      r.prompt = co_await builder.build(r.target.input, std::min(prefix, r.target.input), rng);
    }
    out.push_back(std::move(r));
  }
  co_return out;
}

}  // namespace troupe::bench
