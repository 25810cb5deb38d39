#pragma once
// chatfmt: chat templates, tool calls and reasoning through llama.cpp's common library (its
// Jinja engine, its per-family tool-call and reasoning parsers, its JSON-schema grammars).
// This module is the only one that links that library; its types stay inside chat_format.cpp.
//
//   ChatTemplate  renders a conversation (messages, tools, options) into the prompt text, a
//                 grammar that forces tool calls, extra stop strings and a ParserConfig;
//   OutputParser  reads one request's generated text incrementally (re-parsing the whole text
//                 so far, as llama-server does, except while plain text extends plain content
//                 or reasoning) and yields OpenAI-style deltas: content, reasoning_content,
//                 tool calls (id and name first, then argument fragments).
//
// Errors are values: library exceptions never leave this module.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chatfmt/types.hpp"
#include "util/result.hpp"

namespace troupe::chatfmt {

// What activates a lazy grammar (llama.cpp's grammar triggers), before tokenization: the
// engine turns a `word` that is one special token into a token trigger, anything else into a
// regular expression (trigger_pattern()).
struct GrammarTrigger {
  enum class Kind : std::uint8_t { word, pattern, pattern_full };
  Kind kind = Kind::word;
  std::string value;
  friend bool operator==(const GrammarTrigger&, const GrammarTrigger&) = default;
};

// The regular expression (over the whole generated text) that fires `t`.
std::string trigger_pattern(const GrammarTrigger& t);

struct Grammar {
  std::string gbnf;  // root rule "root"
  bool lazy = false;
  std::vector<GrammarTrigger> triggers;
  // Texts that must stay single special tokens (e.g. "<tool_call>").
  std::vector<std::string> preserved_tokens;
};

// Everything an OutputParser needs; produced by ChatTemplate::render. Plain data.
struct ParserConfig {
  std::int32_t format = 0;        // llama.cpp's common_chat_format
  std::string parser;             // llama.cpp's serialized PEG parser (empty: content only)
  std::string generation_prompt;  // what the prompt ends with; the parser reads it first
  ReasoningFormat reasoning_format = ReasoningFormat::automatic;
  bool reasoning_in_content = false;
  bool parse_tool_calls = false;
  bool is_continuation = false;
};

// The template's reasoning block, when it has one: its opening tag, the tags that close it
// (the first is the one a budget forces), and whether the prompt opened it (the answer begins
// inside it).
struct Thinking {
  std::string start;
  std::vector<std::string> ends;
  bool opened = false;
};

struct Rendered {
  std::string prompt;
  std::optional<Thinking> thinking;
  // Set when a tool call is forced, tools may be called, or a response format is asked for.
  std::optional<Grammar> grammar;
  // The grammar (when not lazy) starts with the generation prompt, which the prompt already
  // ends with (parser.generation_prompt): the sampler must read that first.
  bool grammar_reads_prompt = true;
  std::vector<std::string> additional_stops;
  // The template's markup the output parser reads (tool-call and reasoning markers): where one
  // is a single special token, the answer shows its text (llama-server's preserved_tokens).
  std::vector<std::string> preserved_tokens;
  std::string format_name;  // llama.cpp's name of the output format (for logs)
  ParserConfig parser;
};

// A loaded chat template.
// Thread-safety: immutable after create(); render() may be called from several threads.
class ChatTemplate {
 public:
  // Parses the Jinja `source` and renders a one-message conversation with it, so that a
  // template that cannot render fails here rather than on the first request. `bos`/`eos`:
  // the texts of the model's BOS/EOS tokens (templates print them). The source "chatml" is
  // llama.cpp's own ChatML template.
  // Errors: invalid_request with the library's message.
  static Result<std::unique_ptr<ChatTemplate>> create(const std::string& source,
                                                      const std::string& bos,
                                                      const std::string& eos);
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate&) = delete;
  ChatTemplate& operator=(const ChatTemplate&) = delete;

  // Renders a conversation. A conversation ending with an assistant message (without tool
  // calls) continues that message. Errors: invalid_request with `param` ("tools",
  // "tool_choice", "messages", "chat_template_kwargs") for input the template or the
  // library refuses.
  Result<Rendered> render(const std::vector<Message>& messages, const ChatOptions& options) const;

  const std::string& source() const noexcept;
  bool supports_tool_calls() const;
  bool supports_thinking() const;

 private:
  struct Impl;
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks one tool's parameter schema (its JSON text; empty: no parameters). Returns the
// problem (naming the keyword and its JSON pointer), or nullopt. `forced` (tool_choice
// `required`, or naming this tool): the grammar is all that makes the arguments valid, so the
// schema gets schema_to_grammar's strict check. Otherwise (the model may call it or not) it
// must be a JSON object llama.cpp can turn into a grammar within SchemaLimits; keywords the
// converter cannot enforce (`format: email`, `not`, bounds on a `number`, ...) are accepted
// and left unconstrained, as llama-server does: the model still reads them in the prompt.
// Results are cached per schema text. Thread-safe.
std::optional<std::string> check_tool_schema(const std::string& parameters, bool forced);

// What a structured-output schema may hold: beyond these a grammar gets too large to build
// in milliseconds (every repetition bound is unrolled into rules). docs/API.md lists them.
struct SchemaLimits {
  std::size_t max_schema_bytes = std::size_t{64} * 1024;
  int max_depth = 32;                   // nested subschemas
  std::int64_t max_nodes = 2048;        // subschemas in all
  std::int64_t max_enum_values = 4096;  // enum values in all
  std::int64_t max_repeat = 1000;       // minItems, maxItems, minLength, maxLength
  std::size_t max_grammar_bytes = std::size_t{1024} * 1024;
};

// Converts a JSON schema (its JSON text) into a GBNF grammar (root rule "root") with
// llama.cpp's converter, and refuses what that converter would not honour exactly: keywords
// it ignores (not, if/then/else, patternProperties, uniqueItems, multipleOf, ...), bounds on a
// `number`, string formats other than date, time, date-time and uuid, patterns it cannot
// translate (unanchored ones among them), keywords beside $ref/anyOf/oneOf/allOf, and schemas
// beyond SchemaLimits. Results are cached per schema text. Errors: invalid_request with
// `param`, the message naming the keyword and its JSON pointer. Thread-safe.
Result<std::string> schema_to_grammar(const std::string& schema, const std::string& param);

// Parses one request's output incrementally.
// Thread-safety: none; one sequence's actor owns it.
class OutputParser {
 public:
  // Errors: invalid_request when `config.parser` is not a serialized parser.
  // `incremental` false: re-parse the whole output on every feed (the reference the
  // incremental path must match byte for byte; tests and benchmarks).
  static Result<std::unique_ptr<OutputParser>> create(const ParserConfig& config,
                                                      bool incremental = true);
  ~OutputParser();
  OutputParser(const OutputParser&) = delete;
  OutputParser& operator=(const OutputParser&) = delete;

  // Appends `text` to the output so far, re-parses it (`final`: the output is complete) and
  // returns what changed since the previous call. Never throws: output the parser cannot read
  // at the end is kept as content. The re-parse is skipped when the previous one took the
  // previous piece whole as content (or reasoning) and `text` is plain (letters, digits,
  // spaces, sentence punctuation, no trailing space): then `text` extends that field, which is
  // what the re-parse gives (checked against it per family by the tests). The final feed
  // always re-parses.
  MessageDelta feed(std::string_view text, bool final);

  // The message parsed so far (tool calls with their ids).
  const Message& message() const noexcept { return message_; }

  // How many feeds re-parsed the whole output (tests and benchmarks).
  std::size_t reparses() const noexcept { return reparses_; }

 private:
  struct Impl;
  explicit OutputParser(std::unique_ptr<Impl> impl);
  MessageDelta diff(const Message& next, bool final);

  std::unique_ptr<Impl> impl_;
  Message message_;
  std::string text_;
  bool incremental_ = true;
  // Where the last piece went, when the last re-parse took it whole into one field.
  enum class Tail : std::uint8_t { unknown, content, reasoning };
  Tail tail_ = Tail::unknown;
  std::size_t reparses_ = 0;
  // What was handed out so far: a re-parse that rewrites it cannot take it back.
  std::string content_sent_;
  std::string reasoning_sent_;
  struct CallState {
    bool announced = false;
    std::string args_sent;
  };
  std::vector<CallState> calls_;
};

}  // namespace troupe::chatfmt
