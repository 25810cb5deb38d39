// Mutual TLS on links: round trips through it, and refusals of plaintext, mismatched and
// untrusted peers (each refused connection is one log line; the node keeps serving).
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/use_future.hpp>
#include <filesystem>

#include "remote/wire.hpp"
#include "test_certs.hpp"
#include "test_node.hpp"

namespace troupe::remote {
namespace {

using namespace test;
namespace asio = boost::asio;

// One CA and a directory of node certificates, removed at the end of the test.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("tls-test");
    ca_ = make_ca(dir_, "ca");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  NodeOptions tls_options(const std::string& name, std::vector<std::string> seeds = {}) {
    auto o = fast_options(std::move(seeds));
    o.tls = make_node_cert(ca_, dir_, name);
    return o;
  }
  std::filesystem::path dir_;
  TestCa ca_;
};

Result<Reply> ask_sync(const RemoteRef& ref, std::string_view text) {
  return ref.async_ask_raw(7, as_bytes(text), 10s, asio::use_future).get();
}

void publish_echo(Node& n) {
  n.publish("echo", [](Envelope& e) { e.reply.send(e.type, e.payload); });
}

// `client` finds echo (published on the other node) and gets an answer through it.
void expect_echo_works(TestNode& client, Signal& sig) {
  ASSERT_TRUE(sig.wait([&] { return client.knows("echo"); }));
  auto r = ask_sync(client->lookup("echo").value(), "through");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(as_string(r->payload), "through");
}

TEST_F(TlsTest, TellAndAskRoundTrip) {
  Signal sig;
  TestNode a(tls_options("a"), &sig);
  publish_echo(*a);
  std::atomic<std::uint64_t> count{0}, next{0}, big{0}, big_sum{0};
  std::atomic<bool> out_of_order{false};
  a->publish("sink", [&](Envelope& e) {
    if (e.payload.size() > 1024) {
      std::uint64_t s = 0;
      for (auto b : e.payload)
        s += std::to_integer<std::uint8_t>(b);
      big_sum += s;
      big += 1;
    } else {
      WireReader r(e.payload);
      if (r.u64() != next.load())
        out_of_order = true;
      next += 1;
      count += 1;
    }
    sig.notify();
  });
  TestNode b(tls_options("b", {a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return b.knows("echo") && b.knows("sink"); }));
  EXPECT_TRUE(sig.wait([&] { return a.sees_alive(b->id()); }));

  auto r = ask_sync(b->lookup("echo").value(), "hello over tls");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->type, 7u);
  EXPECT_EQ(as_string(r->payload), "hello over tls");

  auto sink = b->lookup("sink").value();
  constexpr std::uint64_t kCount = 20000;
  for (std::uint64_t i = 0; i < kCount;) {
    std::array<std::byte, 64> p{};
    WireWriter w(p);
    w.u64(i);
    auto t = sink.tell_raw(p);
    if (t.ok())
      ++i;
    else
      ASSERT_EQ(t.error().code, Errc::overloaded);
  }
  std::uint64_t expect = 0;
  for (int i = 0; i < 4; ++i) {  // larger than a TLS record and than a staging batch
    std::vector<std::byte> p((1 << 20) + 333);
    for (std::size_t j = 0; j < p.size(); ++j)
      p[j] = std::byte(j * 13 + i);
    for (auto x : p)
      expect += std::to_integer<std::uint8_t>(x);
    ASSERT_TRUE(sink.tell_raw(std::move(p)).ok());
  }
  ASSERT_TRUE(sig.wait([&] { return count.load() == kCount && big.load() == 4; }));
  EXPECT_FALSE(out_of_order.load());
  EXPECT_EQ(big_sum.load(), expect);
  EXPECT_EQ(a->stats().handshake_failures, 0u);
  EXPECT_EQ(b->stats().handshake_failures, 0u);
}

TEST_F(TlsTest, TlsNodeRefusesPlaintextPeerAndKeepsServing) {
  Signal sig;
  TestNode a(tls_options("a"), &sig);
  publish_echo(*a);
  TestNode plain(fast_options({a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return a->stats().handshake_failures >= 1; }));
  EXPECT_FALSE(plain.knows("echo"));
  EXPECT_FALSE(a.sees(plain->id()));
  TestNode b(tls_options("b", {a->address()}), &sig);
  expect_echo_works(b, sig);
}

TEST_F(TlsTest, PlaintextNodeRefusesTlsPeerAndKeepsServing) {
  Signal sig;
  TestNode a(fast_options(), &sig);
  publish_echo(*a);
  TestNode secure(tls_options("secure", {a->address()}), &sig);
  ASSERT_TRUE(sig.wait([&] { return a->stats().handshake_failures >= 1; }));
  EXPECT_FALSE(secure.knows("echo"));
  EXPECT_FALSE(a.sees(secure->id()));
  TestNode b(fast_options({a->address()}), &sig);
  expect_echo_works(b, sig);
}

TEST_F(TlsTest, CertificateFromAnotherCaIsRefused) {
  Signal sig;
  TestNode a(tls_options("a"), &sig);
  publish_echo(*a);
  auto other_ca = make_ca(dir_, "other-ca");
  auto opt = fast_options({a->address()});
  opt.tls = make_node_cert(other_ca, dir_, "stranger");
  opt.tls.ca_file = ca_.cert_file;  // trusts a's CA, but a does not trust its certificate
  TestNode stranger(opt, &sig);
  ASSERT_TRUE(sig.wait([&] { return a->stats().handshake_failures >= 1; }));
  EXPECT_FALSE(stranger.knows("echo"));
  EXPECT_FALSE(a.sees(stranger->id()));
  TestNode b(tls_options("b", {a->address()}), &sig);
  expect_echo_works(b, sig);
}

TEST_F(TlsTest, IncompleteOrUnusableOptionsAreRefused) {
  asio::io_context io;
  auto good = make_node_cert(ca_, dir_, "n");
  auto other = make_node_cert(ca_, dir_, "m");
  auto start = [&](TlsOptions tls) {
    NodeOptions o;
    o.cluster_secret = "s";
    o.tls = std::move(tls);
    return Node::start(io, std::move(o));
  };
  EXPECT_TRUE(TlsOptions{}.enabled() == false);
  auto only_cert = start({good.cert_file, "", ""});
  ASSERT_FALSE(only_cert.ok());
  EXPECT_EQ(only_cert.error().code, Errc::invalid_request);
  auto missing = start({good.cert_file, good.key_file, (dir_ / "nope.pem").string()});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::invalid_request);
  auto mismatched = start({good.cert_file, other.key_file, good.ca_file});
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.error().code, Errc::invalid_request);
  auto fine = start(good);
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  fine.value()->stop();
}

}  // namespace
}  // namespace troupe::remote
