// remote_test_node: one cluster node in its own process, for the multi-process tests.
//
//   remote_test_node --listen IP:PORT [--seeds A,B] [--secret S] --name N
//
// Publishes "echo/N" (answers an ask with its payload) and "count/N" (counts tells; an ask
// answers the count as a little-endian u64). Prints "READY <port> <node id>" once listening,
// then "EVENT <kind> <address> <node id>" for every membership change, and runs until killed.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstring>
#include <string>

#include "remote/node.hpp"
#include "test_node.hpp"

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    auto comma = s.find(',', pos);
    if (comma == std::string::npos)
      comma = s.size();
    if (comma > pos)
      out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace troupe::remote;
  NodeOptions opt = test::fast_options();
  std::string name = "node";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--listen")
      opt.listen = v;
    else if (k == "--seeds")
      opt.seeds = split(v);
    else if (k == "--secret")
      opt.cluster_secret = v;
    else if (k == "--name")
      name = v;
  }
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  auto node = Node::start(io, opt);
  if (!node) {
    std::fprintf(stderr, "remote_test_node: %s\n", node.error().message.c_str());
    return 1;
  }
  Node& n = *node.value();
  n.on_member_event([](const MemberEvent& e) {
    std::printf("EVENT %s %s %016llx\n", std::string(member_event_name(e.kind)).c_str(),
                e.member.address.c_str(), static_cast<unsigned long long>(e.member.id));
    std::fflush(stdout);
  });
  n.publish("echo/" + name, [](Envelope& e) { e.reply.send(e.type, e.payload); });
  std::uint64_t count = 0;  // only touched on the single I/O thread
  n.publish("count/" + name, [&count](Envelope& e) {
    if (!e.reply.pending()) {
      ++count;
      return;
    }
    std::byte b[8];
    WireWriter w(b);
    w.u64(count);
    e.reply.send(0, b);
  });
  std::printf("READY %u %016llx\n", n.port(), static_cast<unsigned long long>(n.id()));
  std::fflush(stdout);
  io.run();
}
