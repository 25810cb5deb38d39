// Two and three nodes in one process, each on its own io_context and thread.
#include "remote/node.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "remote/detail/frame_io.hpp"
#include "test_node.hpp"

namespace troupe::remote {
namespace {

using namespace test;
namespace asio = boost::asio;

// Publishes "echo" (answers an ask with its payload) and "sink" (counts tells and checks
// that each sender's sequence numbers arrive in order).
struct Services {
  Signal* signal;
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> out_of_order{false};
  std::mutex mu;
  std::map<std::uint64_t, std::uint64_t> next;  // sender tag -> next sequence number

  void publish(Node& n) {
    n.publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
    n.publish("sink", [this](Envelope& e) {
      WireReader r(e.payload);
      std::uint64_t tag = r.u64(), seq = r.u64();
      {
        std::lock_guard lock(mu);
        if (next[tag] != seq)
          out_of_order = true;
        next[tag] = seq + 1;
      }
      received.fetch_add(1);
      signal->notify();
    });
  }
};

std::array<std::byte, 64> numbered(std::uint64_t tag, std::uint64_t seq) {
  std::array<std::byte, 64> b{};
  WireWriter w(b);
  w.u64(tag);
  w.u64(seq);
  return b;
}

Result<Reply> ask_sync(const RemoteRef& ref, std::string_view text,
                       std::chrono::steady_clock::duration timeout = 5s) {
  auto fut = ref.async_ask_raw(7, as_bytes(text), timeout, asio::use_future);
  return fut.get();
}

TEST(Node, TwoNodesTellAndAskByName) {
  Signal sig;
  Services svc{&sig};
  TestNode a(fast_options(), &sig);
  svc.publish(*a);
  TestNode b(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return b.knows("echo") && b.knows("sink"); }));

  auto echo = b->lookup("echo");
  ASSERT_TRUE(echo.ok());
  EXPECT_EQ(echo->node(), a->id());
  auto r = ask_sync(*echo, "hello");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->type, 7u);
  EXPECT_EQ(as_string(r->payload), "hello");

  auto sink = b->lookup("sink").value();
  constexpr std::uint64_t kCount = 20000;
  for (std::uint64_t i = 0; i < kCount;) {
    auto t = sink.tell_raw(numbered(1, i));
    if (t.ok())
      ++i;
    else
      ASSERT_EQ(t.error().code, Errc::overloaded);  // a full queue is the only excuse
  }
  ASSERT_TRUE(sig.wait([&] { return svc.received.load() >= kCount; }));
  EXPECT_EQ(svc.received.load(), kCount);
  EXPECT_FALSE(svc.out_of_order.load());
}

// A reply goes back on the connection its ask came in on. Here the asker advertises an
// address nobody can dial, so a reply sent over a connection of the answerer's own would
// never arrive. With and without the readers' spin.
TEST(Node, RepliesTravelBackOnTheAskersConnection) {
  for (auto spin : {std::chrono::microseconds(0), std::chrono::microseconds(50)}) {
    auto ao = fast_options();
    ao.spin_before_block = spin;
    TestNode a(std::move(ao));
    std::uint64_t echo = a->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
    auto bo = fast_options();
    bo.advertise = "127.0.0.1:1";  // nothing listens there
    bo.spin_before_block = spin;
    TestNode b(std::move(bo));
    auto ref = b->ref_for(ActorAddress{a->id(), a->address(), echo});
    for (int i = 0; i < 200; ++i) {
      auto r = ask_sync(ref, "hello " + std::to_string(i));
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(as_string(r->payload), "hello " + std::to_string(i));
    }
    auto missing = b->ref_for(ActorAddress{a->id(), a->address(), echo + 1000});
    auto r = ask_sync(missing, "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::not_found);
  }
}

TEST(Node, AskOutcomes) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  std::mutex mu;
  std::vector<RemoteReply> held;  // answered later (or never)
  a->publish("hold", [&](Envelope& e) {
    {
      std::lock_guard lock(mu);
      held.push_back(std::move(e.reply));
    }
    sig.notify();
  });
  a->publish("drop", [](Envelope&) {});  // the reply is destroyed unanswered
  a->publish("fail", [](Envelope& e) { e.reply.fail({Errc::invalid_request, "nope"}); });
  TestNode b(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return b.knows("hold") && b.knows("drop") && b.knows("fail"); }));

  auto timeout = ask_sync(b->lookup("hold").value(), "x", 100ms);
  ASSERT_FALSE(timeout.ok());
  EXPECT_EQ(timeout.error().code, Errc::timeout);
  auto dropped = ask_sync(b->lookup("drop").value(), "x");
  ASSERT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.error().code, Errc::internal);
  auto failed = ask_sync(b->lookup("fail").value(), "x");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, Errc::invalid_request);
  EXPECT_EQ(failed.error().message, "nope");

  // An actor id nobody has.
  ActorAddress bogus = b->lookup("hold")->address();
  bogus.actor = 999;
  auto unknown = ask_sync(b->ref_for(bogus), "x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::not_found);
  EXPECT_EQ(b->lookup("nobody").error().code, Errc::not_found);

  // Asking an actor on this very node works the same.
  a->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
  ASSERT_TRUE(sig.wait([&] { return a.knows("echo"); }));
  auto local = ask_sync(a->lookup("echo").value(), "self");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(as_string(local->payload), "self");

  // A coroutine ask.
  ASSERT_TRUE(sig.wait([&] { return b.knows("echo"); }));
  auto ref = b->lookup("echo").value();
  auto fut = asio::co_spawn(
      b.io(),
      [ref]() -> asio::awaitable<Result<Reply>> {
        co_return co_await ref.async_ask_raw(1, as_bytes("co"), 5s, asio::use_awaitable);
      },
      asio::use_future);
  auto co = fut.get();
  ASSERT_TRUE(co.ok());
  EXPECT_EQ(as_string(co->payload), "co");
  std::lock_guard lock(mu);
  held.clear();
}

TEST(Node, ThreeNodesExactCountsAndOrderUnderLoad) {
  Signal sig;
  Services sa{&sig}, sb{&sig}, sc{&sig};
  TestNode a(fast_options(), &sig);
  TestNode b(fast_options({a->address()}), &sig);
  TestNode c(fast_options({a->address()}), &sig);
  // The same name on three nodes: lookup_all lists all of them.
  sa.publish(*a);
  sb.publish(*b);
  sc.publish(*c);
  for (TestNode* n : {&a, &b, &c}) {
    ASSERT_TRUE(sig.wait([&] { return (*n)->lookup_all("sink").size() == 3; }));
  }
  constexpr int kThreads = 3;
  constexpr std::uint64_t kEach = 5000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      TestNode& from = t == 0 ? a : t == 1 ? b : c;
      for (const auto& where : from->lookup_all("sink")) {
        RemoteRef ref = from->ref_for(where);
        for (std::uint64_t i = 0; i < kEach;) {
          if (ref.tell_raw(numbered(t, i)).ok())
            ++i;
        }
      }
    });
  }
  for (auto& th : threads)
    th.join();
  ASSERT_TRUE(sig.wait([&] {
    return sa.received.load() == kThreads * kEach && sb.received.load() == kThreads * kEach &&
           sc.received.load() == kThreads * kEach;
  }));
  EXPECT_FALSE(sa.out_of_order || sb.out_of_order || sc.out_of_order);
}

TEST(Node, DeadNodeIsDetectedAndItsAsksFailFast) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  TestNode b(fast_options({a->address()}), &sig);
  auto c = std::make_unique<TestNode>(fast_options({a->address()}), &sig);
  std::mutex mu;
  std::vector<RemoteReply> held;
  (*c)->publish("hold", [&](Envelope& e) {
    {
      std::lock_guard lock(mu);
      held.push_back(std::move(e.reply));
    }
    sig.notify();
  });
  ASSERT_TRUE(sig.wait([&] { return a.knows("hold") && b.knows("hold"); }));
  NodeId cid = (*c)->id();
  auto ref = a->lookup("hold").value();
  auto pending = ref.async_ask_raw(0, as_bytes("x"), 60s, asio::use_future);
  ASSERT_TRUE(sig.wait([&] {
    std::lock_guard l(mu);
    return held.size() == 1;
  }));

  auto killed_at = std::chrono::steady_clock::now();
  c->shutdown();  // stops answering probes, like a crashed process
  ASSERT_TRUE(sig.wait([&] { return !a.sees(cid) && !b.sees(cid); }));
  auto took = std::chrono::steady_clock::now() - killed_at;
  // Configured worst case: 3 probe rounds + 1 + suspect timeout = 0.7 s; allow slow machines.
  EXPECT_LT(took, 5s * kSlowdown);
  std::printf(
      "dead node detected after %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(pending.get().error().code, Errc::unavailable);
  auto start = std::chrono::steady_clock::now();
  auto r = ask_sync(ref, "again", 60s);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(a->lookup("hold").error().code, Errc::not_found);
  std::lock_guard lock(mu);
  held.clear();
}

TEST(Node, LeaveIsSeenQuickly) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  auto b = std::make_unique<TestNode>(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return a.sees((*b)->id()); }));
  NodeId bid = (*b)->id();
  (*b)->leave();
  ASSERT_TRUE(sig.wait([&] { return !a.sees(bid); }, 2s * kSlowdown));
}

TEST(Node, RestartAtTheSameAddressRejoins) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  a->publish("x", [](Envelope&) {});
  auto b = std::make_unique<TestNode>(fast_options({a->address()}), &sig);
  (*b)->publish("svc", [](Envelope& e) { e.reply.send(0, as_bytes("v1")); });
  ASSERT_TRUE(sig.wait([&] { return a.knows("svc"); }));
  std::string addr = (*b)->address();
  NodeId old_id = (*b)->id();
  b->shutdown();
  ASSERT_TRUE(sig.wait([&] { return !a.sees(old_id); }));
  auto opt = fast_options({a->address()});
  opt.listen = addr;
  b = std::make_unique<TestNode>(opt, &sig);
  (*b)->publish("svc", [](Envelope& e) { e.reply.send(0, as_bytes("v2")); });
  ASSERT_TRUE(sig.wait([&] { return a.knows("svc") && a.sees((*b)->id()); }));
  auto r = ask_sync(a->lookup("svc").value(), "?");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(as_string(r->payload), "v2");
}

TEST(Node, WrongSecretIsRefused) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  a->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
  auto opt = fast_options({a->address()});
  opt.cluster_secret = "wrong";
  TestNode intruder(opt, &sig);
  ASSERT_TRUE(sig.wait([&] { return a->stats().handshake_failures >= 1; }, kDeadline));
  EXPECT_FALSE(intruder.knows("echo"));
  EXPECT_EQ(a->snapshot()->members.size(), 1u);
}

// Connects to `node` and completes a handshake with `secret`; returns the socket.
asio::ip::tcp::socket authenticated_socket(asio::io_context& io, Node& node, std::string secret) {
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), node.port()});
  Handshake hs(Role::dialer, std::move(secret), Hello{12345, "127.0.0.1:1", random_nonce()});
  FrameDecoder dec(1024, 1024);
  auto f = asio::co_spawn(io, run_handshake(s, hs, dec, 5s), asio::use_future);
  io.restart();
  io.run();
  auto peer = f.get();
  if (!peer)
    throw std::runtime_error(peer.error().message);
  return s;
}

bool closed_by_peer(asio::ip::tcp::socket& s) {
  std::byte b[16];
  boost::system::error_code ec;
  for (;;) {
    s.read_some(asio::buffer(b), ec);
    if (ec)
      return true;  // EOF or reset
  }
}

TEST(Node, BadFramesCloseOnlyThatConnection) {
  Signal sig;
  auto opt = fast_options();
  opt.max_frame_bytes = 1 << 20;
  TestNode a(opt, &sig);
  a->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
  TestNode b(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return b.knows("echo"); }));
  auto echo = b->lookup("echo").value();

  asio::io_context io;
  {  // garbage before any handshake
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), a->port()});
    std::string junk(100, 'z');
    asio::write(s, asio::buffer(junk));
    EXPECT_TRUE(closed_by_peer(s));
  }
  {  // oversized frame after a good handshake
    auto s = authenticated_socket(io, *a, "test-secret");
    auto h = encode_header(FrameHeader{FrameKind::tell, (1u << 20) + 1, 1});
    asio::write(s, asio::buffer(h));
    EXPECT_TRUE(closed_by_peer(s));
  }
  {  // unknown frame kind after a good handshake
    auto s = authenticated_socket(io, *a, "test-secret");
    auto h = encode_header(FrameHeader{FrameKind::tell, 0, 1});
    h[3] = std::byte{42};
    asio::write(s, asio::buffer(h));
    EXPECT_TRUE(closed_by_peer(s));
  }
  EXPECT_GE(a->stats().bad_frames, 2u);
  EXPECT_GE(a->stats().handshake_failures, 1u);
  auto r = ask_sync(echo, "still here");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(as_string(r->payload), "still here");
}

// A TCP connection from `source` to `node` that sends nothing.
asio::ip::tcp::socket silent_socket(asio::io_context& io, Node& node, const char* source) {
  asio::ip::tcp::socket s(io);
  s.open(asio::ip::tcp::v4());
  s.bind({asio::ip::make_address(source), 0});
  s.connect({asio::ip::make_address("127.0.0.1"), node.port()});
  return s;
}

// Unauthenticated connections: at most max_handshakes_per_address from one address at once
// (the rest are closed unanswered), and none outlives the handshake deadline. Peers on other
// addresses are not held up meanwhile.
TEST(Node, UnauthenticatedConnectionsAreBoundedPerAddress) {
  Signal sig;
  auto opt = fast_options();
  opt.max_handshakes_per_address = 4;
  opt.handshake_timeout = 60s;  // the four stay in their handshake for the whole test
  TestNode a(opt, &sig);
  a->publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
  asio::io_context io;
  std::vector<asio::ip::tcp::socket> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(silent_socket(io, *a, "127.0.0.3"));
  for (int i = 0; i < 6; ++i) {
    auto s = silent_socket(io, *a, "127.0.0.3");
    EXPECT_TRUE(closed_by_peer(s));
  }
  EXPECT_EQ(a->stats().handshakes_refused, 6u);
  TestNode b(fast_options({a->address()}), &sig);  // from 127.0.0.1
  ASSERT_TRUE(sig.wait([&] { return b.knows("echo"); }));
  auto r = ask_sync(b->lookup("echo").value(), "still here");
  ASSERT_TRUE(r.ok());
  const auto failures = a->stats().handshake_failures;
  held.clear();  // closed by us: their handshakes fail and give their places back
  ASSERT_TRUE(sig.wait([&] { return a->stats().handshake_failures >= failures + 4; }));
  for (int i = 0; i < 4; ++i)
    held.push_back(silent_socket(io, *a, "127.0.0.3"));
  auto fifth = silent_socket(io, *a, "127.0.0.3");
  EXPECT_TRUE(closed_by_peer(fifth));  // accepted in order: the four before it were admitted
  EXPECT_EQ(a->stats().handshakes_refused, 7u);
}

TEST(Node, ASilentConnectionIsClosedAtTheHandshakeDeadline) {
  Signal sig;
  auto opt = fast_options();
  opt.handshake_timeout = 200ms;
  TestNode a(opt, &sig);
  asio::io_context io;
  auto s = silent_socket(io, *a, "127.0.0.3");
  EXPECT_TRUE(closed_by_peer(s));
  EXPECT_TRUE(sig.wait([&] { return a->stats().handshake_failures >= 1; }, kDeadline));
}

TEST(Node, LargePayloadsArriveIntact) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  std::atomic<std::uint64_t> sum{0}, count{0};
  a->publish("big", [&](Envelope& e) {
    std::uint64_t s = 0;
    for (auto b : e.payload)
      s += std::to_integer<std::uint8_t>(b);
    sum += s;
    count += 1;
    sig.notify();
  });
  TestNode b(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return b.knows("big"); }));
  auto ref = b->lookup("big").value();
  std::uint64_t expect = 0;
  for (int i = 0; i < 8; ++i) {
    std::vector<std::byte> p(1 << 20);
    for (std::size_t j = 0; j < p.size(); ++j)
      p[j] = std::byte(j * 7 + i);
    for (auto x : p)
      expect += std::to_integer<std::uint8_t>(x);
    ASSERT_TRUE(ref.tell_raw(std::move(p)).ok());
  }
  ASSERT_TRUE(sig.wait([&] { return count.load() == 8; }));
  EXPECT_EQ(sum.load(), expect);
}

TEST(Node, MetadataIsGossiped) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  TestNode b(fast_options({a->address()}), &sig);
  b->set_metadata("load", "3");
  ASSERT_TRUE(sig.wait([&] {
    auto snap = a->snapshot();  // keep it alive for the loop
    for (const auto& m : snap->members) {
      if (m.id == b->id() && m.meta.count("load") && m.meta.at("load") == "3")
        return true;
    }
    return false;
  }));
}

}  // namespace
}  // namespace troupe::remote
