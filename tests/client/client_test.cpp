#include "client/client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "fake_server.hpp"

namespace troupe::client {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using test::FakeRequest;
using test::FakeServer;

// Runs `body` on a fresh single-threaded io_context with a FakeServer until it finishes.
template <class Body>
void run(test::FakeHandler handler, Body body) {
  EXPECT_TRUE(test::run_with_server(std::move(handler), std::move(body)));
}

ChatRequest hello(int max_tokens = 3) {
  ChatRequest r;
  r.model = "m";
  r.messages = {{"user", "hello"}};
  r.sampling.max_tokens = max_tokens;
  return r;
}

// Collects a whole stream: the concatenated content, the number of deltas and the final event.
struct Collected {
  std::string text;
  int deltas = 0;
  StreamEvent last;
};

asio::awaitable<Collected> collect(Stream& s) {
  Collected c;
  for (;;) {
    auto ev = co_await s.next();
    if (auto* d = std::get_if<Delta>(&ev)) {
      c.text += d->content;
      ++c.deltas;
      continue;
    }
    c.last = std::move(ev);
    co_return c;
  }
}

TEST(Client, StreamsChatDeltasThenDoneWithUsage) {
  run(test::openai_handler(), [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(),
             {.base_url = srv.url() + "/v1", .api_key = "sk-1", .headers = {{"X-Trace", "abc"}}});
    auto s = co_await c.stream_chat(hello(3));
    EXPECT_TRUE(s.ok());
    if (!s)
      co_return;
    auto got = co_await collect(s.value());
    EXPECT_EQ(got.text, "t0 t1 t2 ");
    EXPECT_EQ(got.deltas, 3);
    auto* done = std::get_if<Done>(&got.last);
    EXPECT_TRUE(done);
    if (!done)
      co_return;
    EXPECT_EQ(done->finish_reason, "length");
    EXPECT_TRUE(done->usage);
    EXPECT_EQ(done->usage->completion_tokens, 3);
    EXPECT_EQ(done->usage->prompt_tokens, 5);
    EXPECT_TRUE(s->finished());
    const FakeRequest& req = srv.requests().at(0);
    EXPECT_EQ(req.target, "/v1/chat/completions");
    EXPECT_EQ(req.headers.at("authorization"), "Bearer sk-1");
    EXPECT_EQ(req.headers.at("x-trace"), "abc");
    auto body = boost::json::parse(req.body).as_object();
    EXPECT_TRUE(body.at("stream").as_bool());
    EXPECT_TRUE(body.at("stream_options").at("include_usage").as_bool());
    EXPECT_EQ(body.at("max_tokens").as_int64(), 3);
  });
}

TEST(Client, ReusesTheConnectionAfterACleanStream) {
  run(test::openai_handler(), [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    for (int i = 0; i < 3; ++i) {
      auto s = co_await c.stream_chat(hello(2));
      EXPECT_TRUE(s.ok());
      if (s) {
        EXPECT_EQ((co_await collect(s.value())).text, "t0 t1 ");
      }
    }
    auto toks = co_await c.tokenize("abc", false);
    EXPECT_TRUE(toks.ok());
    if (toks) {
      EXPECT_EQ(toks.value(), (std::vector<std::int32_t>{'a', 'b', 'c'}));
    }
    EXPECT_EQ(srv.connections(), 1);
    EXPECT_EQ(srv.requests().size(), 4u);
  });
}

TEST(Client, DeliversEachDeltaBeforeTheNextIsSent) {
  auto io_gate = std::make_shared<test::Gate*>(nullptr);
  auto handler = [io_gate](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close() + test::chat_chunk("first"));
    co_await (*io_gate)->wait();  // opened by the client only after it saw "first"
    co_await test::write_all(s, test::chat_chunk("second", "stop") + "data: [DONE]\n\n");
    co_return false;
  };
  run(handler, [io_gate](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    *io_gate = &srv.gate();
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    EXPECT_TRUE(s.ok());
    if (!s)
      co_return;
    auto ev = co_await s->next();
    EXPECT_EQ(std::get<Delta>(ev).content, "first");
    (*io_gate)->open();
    auto rest = co_await collect(s.value());
    EXPECT_EQ(rest.text, "second");
    EXPECT_EQ(std::get<Done>(rest.last).finish_reason, "stop");
  });
}

TEST(Client, FirstEventInTheSamePacketAsTheHeaderIsDeliveredAtOnce) {
  auto gate = std::make_shared<test::Gate*>(nullptr);
  auto handler = [gate](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_chunked() + test::http_chunk(test::chat_chunk("a")));
    co_await (*gate)->wait();  // nothing more until the client has seen "a"
    std::string rest =
        test::http_chunk(test::chat_chunk("b", "stop") + "data: [DONE]\n\n") + test::http_chunk("");
    co_await test::write_all(s, rest);
    co_return true;
  };
  run(handler, [gate](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    *gate = &srv.gate();
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    EXPECT_EQ(std::get<Delta>(co_await s->next()).content, "a");
    (*gate)->open();
    EXPECT_EQ((co_await collect(s.value())).text, "b");
  });
}

TEST(Client, EventsSplitAcrossChunksAndWrites) {
  std::string events = test::chat_chunk("ab") + ": ping\r\n\r\n" + test::chat_chunk("cd", "stop") +
                       test::usage_chunk(1, 2) + "data: [DONE]\n\n";
  auto handler = [events](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_chunked());
    for (std::size_t i = 0; i < events.size(); i += 7) {
      co_await test::write_all(s, test::http_chunk(events.substr(i, 7)));
    }
    co_await test::write_all(s, test::http_chunk(""));
    co_return true;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    EXPECT_TRUE(s.ok());
    if (!s)
      co_return;
    auto got = co_await collect(s.value());
    EXPECT_EQ(got.text, "abcd");
    EXPECT_EQ(got.deltas, 2);
    EXPECT_EQ(std::get<Done>(got.last).usage->completion_tokens, 2);
  });
}

TEST(Client, HttpErrorsCarryStatusAndOpenAiMessage) {
  auto handler = [](const FakeRequest& r, tcp::socket& s) -> asio::awaitable<bool> {
    int status = r.headers.count("authorization") ? 404 : 401;
    std::string msg = status == 401 ? "Invalid API key" : "model 'm' not found";
    co_await test::write_all(
        s, test::json_response(
               status, R"({"error":{"message":")" + msg + R"(","type":"invalid_request_error"}})"));
    co_return true;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client anon(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await anon.stream_chat(hello());
    EXPECT_FALSE(s.ok());
    if (s)
      co_return;
    EXPECT_EQ(s.error().code, Errc::unauthorized);
    EXPECT_EQ(s.error().http_status, 401);
    EXPECT_EQ(s.error().message, "HTTP 401: Invalid API key");
    EXPECT_EQ(s.error().type, "invalid_request_error");
    EXPECT_EQ(s.error().key(), "http_401");
    Client keyed(io.get_executor(), {.base_url = srv.url(), .api_key = "k"});
    auto a = co_await keyed.chat(hello());
    EXPECT_FALSE(a.ok());
    if (!a) {
      EXPECT_EQ(a.error().code, Errc::not_found);
    }
  });
}

TEST(Client, APromptOverTheContextIsPromptTooLong) {
  // troupe's and OpenAI's code, and llama-server's type.
  for (
      const std::string error :
      {R"({"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}})",
       R"({"error":{"message":"too long","type":"exceed_context_size_error","code":400}})"}) {
    auto handler = [error](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
      co_await test::write_all(s, test::json_response(400, error));
      co_return true;
    };
    run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
      Client c(io.get_executor(), {.base_url = srv.url()});
      auto s = co_await c.stream_chat(hello());
      EXPECT_FALSE(s.ok());
      if (!s) {
        EXPECT_EQ(s.error().code, Errc::prompt_too_long);
        EXPECT_EQ(s.error().http_status, 400);
      }
    });
  }
}

TEST(Client, ConnectionRefused) {
  asio::io_context probe;
  tcp::acceptor a(probe, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = a.local_endpoint().port();
  a.close();  // nothing listens on `port` now
  run(test::openai_handler(), [port](asio::io_context& io, FakeServer&) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = "http://127.0.0.1:" + std::to_string(port)});
    auto s = co_await c.stream_chat(hello());
    EXPECT_FALSE(s.ok());
    if (s)
      co_return;
    EXPECT_EQ(s.error().code, Errc::unavailable);
    EXPECT_NE(s.error().message.find("connection refused"), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().key(), "unavailable");
  });
}

TEST(Client, ServerClosingMidEventIsAnError) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close() + test::chat_chunk("ok") + "data: {\"cho");
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    EXPECT_TRUE(s.ok());
    if (!s)
      co_return;
    auto got = co_await collect(s.value());
    EXPECT_EQ(got.text, "ok");
    auto* e = std::get_if<ClientError>(&got.last);
    EXPECT_TRUE(e);
    if (e) {
      EXPECT_NE(e->message.find("mid-event"), std::string::npos) << e->message;
    }
  });
}

TEST(Client, StreamEndingWithoutFinishIsAnError) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close() + test::chat_chunk("partial"));
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    auto got = co_await collect(s.value());
    auto* e = std::get_if<ClientError>(&got.last);
    EXPECT_TRUE(e);
    if (e) {
      EXPECT_EQ(e->code, Errc::unavailable);
    }
  });
}

TEST(Client, ErrorObjectInsideTheStream) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close() + test::chat_chunk("a") +
                                    "data: {\"error\":{\"message\":\"out of memory\"}}\n\n");
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    auto got = co_await collect(s.value());
    EXPECT_EQ(std::get<ClientError>(got.last).message, "out of memory");
    auto again = co_await s->next();  // after a final event: an error, never a hang
    EXPECT_TRUE(std::holds_alternative<ClientError>(again));
  });
}

// An Anthropic Messages stream (as troupe serve writes it) arrives as the same Deltas and
// Done; the request went out in Anthropic's shape.
TEST(Client, StreamsAnthropicMessagesAsDeltas) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    const auto ev = [](const char* name, const char* data) {
      return std::string("event: ") + name + "\ndata: " + data + "\n\n";
    };
    co_await test::write_all(
        s,
        test::sse_head_close() +
            ev("message_start",
               R"({"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":4,"cache_read_input_tokens":2,"output_tokens":0}}})") +
            ev("ping", R"({"type":"ping"})") +
            ev("content_block_start",
               R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})") +
            ev("content_block_delta",
               R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}})") +
            ev("content_block_stop", R"({"type":"content_block_stop","index":0})") +
            ev("content_block_start",
               R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})") +
            ev("content_block_delta",
               R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}})") +
            ev("content_block_stop", R"({"type":"content_block_stop","index":1})") +
            ev("content_block_start",
               R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}})") +
            ev("content_block_delta",
               R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}})") +
            ev("content_block_stop", R"({"type":"content_block_stop","index":2})") +
            ev("message_delta",
               R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":5}})") +
            ev("message_stop", R"({"type":"message_stop"})"));
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    ChatRequest r = hello(7);
    r.messages.insert(r.messages.begin(), Message{"system", "Be brief."});
    r.tools = boost::json::parse(
                  R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])")
                  .as_array();
    r.tool_choice = "required";
    auto s = co_await c.stream_messages(r);
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    std::string reasoning, text, calls;
    StreamEvent last;
    for (;;) {
      auto ev = co_await s->next();
      if (auto* d = std::get_if<Delta>(&ev)) {
        reasoning += d->reasoning;
        text += d->content;
        for (const auto& t : d->tool_calls)
          calls += std::to_string(t.index) + ":" + t.id + ":" + t.name + ":" + t.arguments + ";";
        continue;
      }
      last = std::move(ev);
      break;
    }
    EXPECT_EQ(reasoning, "hm");
    EXPECT_EQ(text, "Hi");
    EXPECT_EQ(calls, "0:toolu_1:f:;0:::{};");
    auto* done = std::get_if<Done>(&last);
    if (!done) {
      ADD_FAILURE() << "no Done";
      co_return;
    }
    EXPECT_EQ(done->finish_reason, "tool_use");
    if (!done->usage) {
      ADD_FAILURE() << "no usage";
      co_return;
    }
    EXPECT_EQ(done->usage->prompt_tokens, 6);
    EXPECT_EQ(done->usage->completion_tokens, 5);
    const FakeRequest& req = srv.requests().at(0);
    EXPECT_EQ(req.target, "/v1/messages");
    auto body = boost::json::parse(req.body).as_object();
    EXPECT_EQ(body.at("system"), "Be brief.");
    EXPECT_EQ(body.at("max_tokens"), 7);
    EXPECT_EQ(body.at("messages").at(0).at("content").at(0).at("text"), "hello");
    EXPECT_EQ(body.at("tools").at(0).at("input_schema").at("type"), "object");
    EXPECT_EQ(body.at("tool_choice").at("type"), "any");
    EXPECT_TRUE(body.at("stream").as_bool());
  });
}

TEST(Client, CancelClosesTheConnection) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close() + test::chat_chunk("one"));
    co_return false;  // waits for the client to close
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    EXPECT_EQ(std::get<Delta>(co_await s->next()).content, "one");
    s->cancel();
    auto ev = co_await s->next();
    EXPECT_TRUE(s->finished());
    EXPECT_TRUE(std::holds_alternative<ClientError>(ev));
  });
}

TEST(Client, PerOperationCancellationStopsAPendingRead) {
  using namespace asio::experimental::awaitable_operators;
  auto gate = std::make_shared<test::Gate*>(nullptr);
  auto handler = [gate](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    co_await test::write_all(s, test::sse_head_close());
    co_await (*gate)->wait();
    co_return false;
  };
  run(handler, [gate](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    *gate = &srv.gate();
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto s = co_await c.stream_chat(hello());
    if (!s) {
      ADD_FAILURE() << s.error().message;
      co_return;
    }
    test::Gate user_pressed_ctrl_c(io);
    user_pressed_ctrl_c.open();
    auto r = co_await (s->next() || user_pressed_ctrl_c.wait());
    EXPECT_TRUE(std::holds_alternative<std::monostate>(r));  // the read lost and was cancelled
    EXPECT_TRUE(s->finished());
    (*gate)->open();
  });
}

TEST(Client, TimeoutIsReportedAsTimeout) {
  auto handler = [](const FakeRequest&, tcp::socket& s) -> asio::awaitable<bool> {
    char c;  // never answers; returns when the client gives up and closes
    co_await s.async_read_some(asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
    co_return false;
  };
  run(handler, [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url(), .timeout = std::chrono::milliseconds(20)});
    auto s = co_await c.stream_chat(hello());
    EXPECT_FALSE(s.ok());
    if (!s) {
      EXPECT_EQ(s.error().code, Errc::timeout);
    }
  });
}

TEST(Client, NonStreamingModelsAndCompletions) {
  run(test::openai_handler(), [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto m = co_await c.models();
    EXPECT_TRUE(m.ok());
    if (m) {
      EXPECT_EQ(m->at(0).id, "fake");
    }
    auto a = co_await c.chat(hello(2));
    EXPECT_TRUE(a.ok());
    if (a) {
      EXPECT_EQ(a->content, "t0 t1 ");
    }
    CompletionRequest cr{.model = "m", .prompt = "abcd"};
    cr.sampling.max_tokens = 2;
    auto ca = co_await c.complete(cr);
    EXPECT_TRUE(ca.ok());
    if (ca) {
      EXPECT_EQ(ca->usage->prompt_tokens, 4);
    }
    auto cs = co_await c.stream_completion(cr);
    if (!cs) {
      ADD_FAILURE() << cs.error().message;
      co_return;
    }
    EXPECT_EQ((co_await collect(cs.value())).text, "t0 t1 ");
    auto h = co_await c.request("GET", "/v1/models");
    EXPECT_TRUE(h.ok());
    if (h) {
      EXPECT_EQ(h->status, 200);
    }
  });
}

TEST(Client, RequestExtraMembersAreSent) {
  run(test::openai_handler(), [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(), {.base_url = srv.url()});
    auto r = hello(1);
    r.extra["ignore_eos"] = true;
    r.sampling.temperature = 0.0;
    auto a = co_await c.chat(r);
    EXPECT_TRUE(a.ok());
    auto body = boost::json::parse(srv.requests().at(0).body).as_object();
    EXPECT_TRUE(body.at("ignore_eos").as_bool());
    EXPECT_FALSE(body.at("stream").as_bool());
    EXPECT_EQ(body.at("temperature").as_double(), 0.0);
  });
}

TEST(ParseBaseUrl, AcceptsHttpAndRefusesTheRest) {
  auto e = parse_base_url("http://localhost:8000/v1/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "localhost");
  EXPECT_EQ(e->port, "8000");
  EXPECT_EQ(e->prefix, "");
  auto p = parse_base_url("http://h/openai");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->port, "80");
  EXPECT_EQ(p->prefix, "/openai");
  auto s = parse_base_url("https://api.openai.com/v1");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("only http://"), std::string::npos);
  auto bare = parse_base_url("localhost:8081/v1");  // host:port, as llama.cpp's tools take it
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host, "localhost");
  EXPECT_EQ(bare->port, "8081");
  EXPECT_EQ(bare->prefix, "");
  auto ip = parse_base_url("127.0.0.1:9000");
  ASSERT_TRUE(ip.ok());
  EXPECT_EQ(ip->host, "127.0.0.1");
  EXPECT_EQ(ip->port, "9000");
  EXPECT_FALSE(parse_base_url("not a url").ok());
  EXPECT_FALSE(parse_base_url("http://").ok());
}

TEST(Client, InvalidHeaderFailsEveryRequest) {
  run(test::openai_handler(), [](asio::io_context& io, FakeServer& srv) -> asio::awaitable<void> {
    Client c(io.get_executor(),
             {.base_url = srv.url(), .headers = {{"X-Bad", "a\r\nInjected: 1"}}});
    auto s = co_await c.stream_chat(hello());
    EXPECT_FALSE(s.ok());
    if (!s) {
      EXPECT_EQ(s.error().code, Errc::invalid_request);
    }
    EXPECT_EQ(srv.requests().size(), 0u);
  });
}

}  // namespace
}  // namespace troupe::client
