#include "remote/detail/handshake.hpp"

#include <gtest/gtest.h>

namespace troupe::remote {
namespace {

struct Pair {
  Handshake dialer, acceptor;
  Pair(std::string s1, std::string s2)
      : dialer(Role::dialer, s1, Hello{1, "127.0.0.1:1", random_nonce()}),
        acceptor(Role::acceptor, s2, Hello{2, "127.0.0.1:2", random_nonce()}) {}
};

TEST(Handshake, SameSecretAuthenticatesBothWays) {
  Pair p("s3cret", "s3cret");
  auto pd = p.dialer.on_hello(p.acceptor.hello_payload());
  auto pa = p.acceptor.on_hello(p.dialer.hello_payload());
  ASSERT_TRUE(pd.ok() && pa.ok());
  EXPECT_TRUE(p.acceptor.on_proof(*pd).ok());
  EXPECT_TRUE(p.dialer.on_proof(*pa).ok());
  EXPECT_EQ(p.acceptor.peer().node, 1u);
  EXPECT_EQ(p.dialer.peer().address, "127.0.0.1:2");
}

TEST(Handshake, WrongSecretIsRefused) {
  Pair p("right", "wrong");
  auto pd = p.dialer.on_hello(p.acceptor.hello_payload());
  auto pa = p.acceptor.on_hello(p.dialer.hello_payload());
  ASSERT_TRUE(pd.ok() && pa.ok());
  auto r = p.acceptor.on_proof(*pd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  EXPECT_FALSE(p.dialer.on_proof(*pa).ok());
}

TEST(Handshake, ReflectedHelloAndProofAreRefused) {
  Handshake h(Role::dialer, "k", Hello{1, "a:1", random_nonce()});
  auto r = h.on_hello(h.hello_payload());  // an attacker echoes our own hello
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthorized);

  // A proof computed for the other role does not verify: the role is part of the MAC.
  Pair p("k", "k");
  auto pd = p.dialer.on_hello(p.acceptor.hello_payload());
  ASSERT_TRUE(p.acceptor.on_hello(p.dialer.hello_payload()).ok());
  ASSERT_TRUE(pd.ok());
  EXPECT_FALSE(p.dialer.on_proof(*pd).ok());  // our own proof sent back to us
}

TEST(Handshake, MalformedHelloAndEarlyProof) {
  Handshake h(Role::acceptor, "k", Hello{2, "a:1", random_nonce()});
  std::vector<std::byte> junk(7, std::byte{0xff});
  EXPECT_EQ(h.on_hello(junk).error().code, Errc::invalid_request);
  EXPECT_EQ(h.on_proof(junk).error().code, Errc::invalid_request);
  auto ok = encode_hello(Hello{5, "x:1", random_nonce()});
  ok.push_back(std::byte{0});  // trailing byte
  EXPECT_FALSE(decode_hello(ok).ok());
  EXPECT_FALSE(decode_hello(encode_hello(Hello{5, std::string(300, 'a'), {}})).ok());
}

}  // namespace
}  // namespace troupe::remote
