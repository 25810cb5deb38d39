#include "cluster/router.hpp"

#include <gtest/gtest.h>

#include "cluster/directory.hpp"

namespace troupe::cluster {
namespace {

std::vector<std::uint64_t> hashes_of(const std::string& text) {
  return prefix_hashes(engine::Prompt{text}, 64, 4096);
}

TEST(PrefixHashes, OnePerFullBlockAndSharedPrefixesShareThem) {
  const std::string base(200, 'a');
  auto a = hashes_of(base + "first question");
  auto b = hashes_of(base + "second, different question");
  ASSERT_EQ(a.size(), 3u);  // 214 bytes: three full blocks
  ASSERT_GE(b.size(), 3u);
  EXPECT_EQ(a[0], b[0]);
  EXPECT_EQ(a[2], b[2]);
  EXPECT_TRUE(hashes_of("short").empty());
}

TEST(PrefixHashes, ChatPromptsHashRolesAndContent) {
  std::vector<engine::ChatMessage> s1{{"system", std::string(100, 's')}, {"user", "x"}};
  std::vector<engine::ChatMessage> s2{{"user", std::string(100, 's')}, {"user", "x"}};
  EXPECT_NE(prefix_hashes(s1, 64, 4096), prefix_hashes(s2, 64, 4096));
}

TEST(Router, LeastLoadedRelativeToCapacity) {
  Router r;
  std::vector<Candidate> c{{1, 4, 4}, {2, 3, 8}, {3, 3, 4}};
  auto d = r.route(c, {});
  EXPECT_EQ(d.index, 1u);  // 3/8 is the lowest ratio
  EXPECT_EQ(d.reason, RouteReason::least_loaded);
}

TEST(Router, SamePrefixGoesToTheSameWorker) {
  Router r;
  const std::string system(300, 'p');
  std::vector<Candidate> c{{1, 0, 4}, {2, 0, 4}};
  auto first = r.route(c, hashes_of(system + "q1"));
  c[first.index].outstanding = 1;  // now the other one is less loaded
  auto second = r.route(c, hashes_of(system + "q2"));
  EXPECT_EQ(second.index, first.index);
  EXPECT_EQ(second.reason, RouteReason::affinity);
  EXPECT_EQ(second.prefix_bytes, 256u);
}

TEST(Router, AffinityYieldsWhenItsWorkerIsMuchBusier) {
  Router r(RouterOptions{.slack = 2});
  const auto h = hashes_of(std::string(128, 'z'));
  std::vector<Candidate> c{{1, 0, 4}, {2, 0, 4}};
  const auto home = r.route(c, h).index;
  c[home].outstanding = 2;
  auto d = r.route(c, h);
  EXPECT_NE(d.index, home);
  EXPECT_EQ(d.reason, RouteReason::affinity_overruled);
  // The prefix moved with it.
  c[d.index].outstanding = 1;
  EXPECT_EQ(r.route(c, h).index, d.index);
}

TEST(Router, GoneWorkersAreSkippedAndTheTableIsBounded) {
  Router r(RouterOptions{.max_entries = 8});
  const auto h = hashes_of(std::string(128, 'y'));
  std::vector<Candidate> two{{1, 0, 1}, {2, 5, 1}};
  EXPECT_EQ(r.route(two, h).index, 0u);
  std::vector<Candidate> one{{2, 5, 1}};
  auto d = r.route(one, h);
  EXPECT_EQ(d.index, 0u);
  EXPECT_EQ(d.reason, RouteReason::least_loaded);
  for (int i = 0; i < 20; ++i)
    r.route(two, hashes_of(std::string(64, static_cast<char>('a' + i))));
  EXPECT_LE(r.entries(), 8u);
}

TEST(Directory, ParsesLoad) {
  auto l = parse_load("3 5 0.250");
  EXPECT_EQ(l.running, 3);
  EXPECT_EQ(l.queued, 5);
  EXPECT_DOUBLE_EQ(l.kv_usage, 0.25);
  EXPECT_EQ(parse_load("garbage").running, 0);
}

TEST(Directory, WorkersAndModelsFromASnapshot) {
  remote::RegistrySnapshot s;
  s.names["engine/b"] = {{2, "h2:1", 11}};
  s.names["engine/a"] = {{1, "h1:1", 10}, {2, "h2:1", 12}};
  s.names["gateway/x"] = {{3, "h3:1", 1}};
  s.members = {{1, "h1:1", 1, remote::MemberState::alive, {{"capacity", "8"}, {"n_ctx", "512"}}},
               {2, "h2:1", 1, remote::MemberState::alive, {{"load", "1 2 0.5"}}}};
  auto w = workers_for(s, "a");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].capacity, 8);
  EXPECT_EQ(w[1].load.queued, 2);
  EXPECT_EQ(all_workers(s).size(), 3u);
  auto m = models_of(s);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].id, "a");
  EXPECT_EQ(m[0].n_ctx, 512);
  EXPECT_EQ(m[1].id, "b");
}

}  // namespace
}  // namespace troupe::cluster
