// Nodes as separate processes on loopback (and in network namespaces for a partition).
#include <gtest/gtest.h>

#include <boost/asio/use_future.hpp>
#include <cstdlib>
#include <sstream>

#include "child_process.hpp"
#include "test_node.hpp"

namespace troupe::remote {
namespace {

using namespace test;
namespace asio = boost::asio;
using std::chrono::milliseconds;

constexpr milliseconds kWait{20000};

struct Started {
  std::unique_ptr<ChildProcess> child;
  std::string port;
};

Started spawn_node(const std::string& name, const std::string& listen, const std::string& seeds,
                   const std::string& netns = "") {
  std::vector<std::string> argv;
  if (!netns.empty())
    argv = {"ip", "netns", "exec", netns};
  for (std::string a :
       {std::string(REMOTE_TEST_NODE), std::string("--listen"), listen, std::string("--seeds"),
        seeds, std::string("--secret"), std::string("test-secret"), std::string("--name"), name}) {
    argv.push_back(a);
  }
  Started s{std::make_unique<ChildProcess>(argv), {}};
  auto ready = s.child->wait_line("READY ", kWait);
  if (!ready)
    throw std::runtime_error("node " + name + " did not start");
  std::istringstream in(*ready);
  std::string word;
  in >> word >> s.port;
  return s;
}

Result<Reply> ask(const RemoteRef& ref, std::span<const std::byte> payload,
                  std::chrono::steady_clock::duration timeout = std::chrono::seconds(5)) {
  return ref.async_ask_raw(0, payload, timeout, asio::use_future).get();
}

std::uint64_t count_of(Node& n, const std::string& name) {
  auto ref = n.lookup(name);
  if (!ref)
    return 0;
  auto r = ask(*ref, {});
  if (!r)
    return 0;
  WireReader rd(r->payload);
  return rd.u64();
}

TEST(Process, TellAskKillAndRestart) {
  Signal sig;
  TestNode observer(fast_options(), &sig);
  auto p1 = spawn_node("p1", "127.0.0.1:0", observer->address());
  auto p2 = spawn_node("p2", "127.0.0.1:0", observer->address());
  ASSERT_TRUE(sig.wait([&] { return observer.knows("echo/p1") && observer.knows("echo/p2"); }));

  auto r = ask(observer->lookup("echo/p2").value(), as_bytes("ping"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(as_string(r->payload), "ping");

  // Exact count across processes: the ask is answered after every earlier tell was handled.
  auto counter = observer->lookup("count/p1").value();
  constexpr std::uint64_t kTells = 20000;
  std::array<std::byte, 64> payload{};
  for (std::uint64_t i = 0; i < kTells;) {
    auto t = counter.tell_raw(payload);
    if (t.ok())
      ++i;
    else
      ASSERT_EQ(t.error().code, Errc::overloaded) << t.error().message;
  }
  EXPECT_EQ(count_of(*observer, "count/p1"), kTells);

  // kill -9: the observer and p1 declare p2 dead; asks to it fail fast.
  auto p2_ref = observer->lookup("echo/p2").value();
  NodeId p2_id = p2_ref.node();
  auto killed = std::chrono::steady_clock::now();
  p2.child->kill9();
  ASSERT_TRUE(sig.wait([&] { return !observer.sees(p2_id); }));
  auto took = std::chrono::steady_clock::now() - killed;
  std::printf("killed process declared dead after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(took).count()));
  EXPECT_LT(took, std::chrono::seconds(5) * kSlowdown);
  ASSERT_TRUE(p1.child->wait_line("EVENT dead 127.0.0.1:" + p2.port, kWait).has_value());
  auto start = std::chrono::steady_clock::now();
  auto dead = ask(p2_ref, as_bytes("x"), std::chrono::seconds(30));
  ASSERT_FALSE(dead.ok());
  EXPECT_EQ(dead.error().code, Errc::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));

  // Restart on the same port: it rejoins, p1 sees it, and it answers again.
  auto again = spawn_node("p2", "127.0.0.1:" + p2.port, observer->address());
  ASSERT_TRUE(sig.wait([&] {
    auto ref = observer->lookup("echo/p2");
    return ref.ok() && ref->node() != p2_id;
  }));
  ASSERT_TRUE(p1.child->wait_line("EVENT joined 127.0.0.1:" + p2.port, kWait).has_value());
  auto back = ask(observer->lookup("echo/p2").value(), as_bytes("back"));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(as_string(back->payload), "back");
}

bool run(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

// Two network namespaces joined by a veth pair; the link goes down and up again.
class NetnsPair {
 public:
  NetnsPair() {
    std::string tag = std::to_string(::getpid() % 100000);
    a_ = "trpa" + tag;
    b_ = "trpb" + tag;
    ok_ = run("ip netns add " + a_) && run("ip netns add " + b_) &&
          run("ip link add va" + tag + " netns " + a_ + " type veth peer name vb" + tag +
              " netns " + b_) &&
          run("ip -n " + a_ + " addr add 10.213.0.1/24 dev va" + tag) &&
          run("ip -n " + b_ + " addr add 10.213.0.2/24 dev vb" + tag) &&
          run("ip -n " + a_ + " link set va" + tag + " up") &&
          run("ip -n " + b_ + " link set vb" + tag + " up") &&
          run("ip -n " + a_ + " link set lo up") && run("ip -n " + b_ + " link set lo up");
    dev_ = "va" + tag;
  }
  ~NetnsPair() {
    run("ip netns del " + a_);
    run("ip netns del " + b_);
  }
  bool ok() const { return ok_; }
  bool set_link(bool up) {
    return run("ip -n " + a_ + " link set " + dev_ + (up ? " up" : " down"));
  }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  std::string a_, b_, dev_;
  bool ok_ = false;
};

TEST(Process, PartitionWithNetworkNamespacesHeals) {
  NetnsPair net;
  if (!net.ok())
    GTEST_SKIP() << "network namespaces not permitted here (needs root and ip)";
  auto n1 = spawn_node("n1", "10.213.0.1:7301", "", net.a());
  auto n2 = spawn_node("n2", "10.213.0.2:7301", "10.213.0.1:7301", net.b());
  ASSERT_TRUE(n1.child->wait_line("EVENT joined 10.213.0.2:7301", kWait).has_value());
  ASSERT_TRUE(n2.child->wait_line("EVENT joined 10.213.0.1:7301", kWait).has_value());

  ASSERT_TRUE(net.set_link(false));
  EXPECT_TRUE(n1.child->wait_line("EVENT dead 10.213.0.2:7301", kWait).has_value());
  EXPECT_TRUE(n2.child->wait_line("EVENT dead 10.213.0.1:7301", kWait).has_value());

  ASSERT_TRUE(net.set_link(true));
  EXPECT_TRUE(n1.child->wait_line("EVENT joined 10.213.0.2:7301", kWait).has_value());
  EXPECT_TRUE(n2.child->wait_line("EVENT joined 10.213.0.1:7301", kWait).has_value());
}

}  // namespace
}  // namespace troupe::remote
