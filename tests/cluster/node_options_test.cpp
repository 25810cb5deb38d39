// cluster::node_options: the worker's and gateway's cluster flags turned into NodeOptions,
// and every way the flags can be wrong.

#include <gtest/gtest.h>

#include <chrono>

#include "cluster/process.hpp"

namespace troupe::cluster {
namespace {

NodeFlags valid() {
  NodeFlags f;
  f.listen = "127.0.0.1:7946";
  f.cluster_secret = "s3cret";
  return f;
}

TEST(NodeOptions, CarriesTheFlagsOver) {
  NodeFlags f = valid();
  f.probe_interval_ms = 300;
  f.probe_timeout_ms = 100;
  f.suspect_timeout_ms = 900;
  f.rejoin_interval_ms = 1200;
  f.join = {"127.0.0.1:1,127.0.0.1:2"};
  auto o = node_options(f);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->listen, "127.0.0.1:7946");
  EXPECT_EQ(o->cluster_secret, "s3cret");
  EXPECT_EQ(o->membership.probe_interval, std::chrono::milliseconds(300));
  EXPECT_EQ(o->membership.probe_timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(o->membership.suspect_timeout, std::chrono::milliseconds(900));
  EXPECT_EQ(o->membership.rejoin_interval, std::chrono::milliseconds(1200));
  EXPECT_FALSE(o->tls.enabled());
}

TEST(NodeOptions, ReaderSpinDefaultsToTheMachinesAndCanBeSet) {
  NodeFlags f = valid();
  auto dflt = node_options(f);
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->spin_before_block, remote::default_spin_before_block());
  f.reader_spin_us = 0;
  auto off = node_options(f);
  ASSERT_TRUE(off);
  EXPECT_EQ(off->spin_before_block, std::chrono::microseconds(0));
  f.reader_spin_us = 120;
  auto on = node_options(f);
  ASSERT_TRUE(on);
  EXPECT_EQ(on->spin_before_block, std::chrono::microseconds(120));
  f.reader_spin_us = 1001;
  auto too_long = node_options(f);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::invalid_request);
  EXPECT_NE(too_long.error().message.find("--reader-spin"), std::string::npos);
}

TEST(NodeOptions, RefusesBadTimingsMissingSecretAndPartialTls) {
  NodeFlags f = valid();
  f.probe_timeout_ms = f.probe_interval_ms;
  EXPECT_FALSE(node_options(f));
  f = valid();
  f.suspect_timeout_ms = 0;
  EXPECT_FALSE(node_options(f));
  f = valid();
  f.tls_cert = "node.crt";
  auto tls = node_options(f);
  ASSERT_FALSE(tls);
  EXPECT_NE(tls.error().message.find("--tls-ca"), std::string::npos);
  f = valid();
  f.advertise = "not an address";
  EXPECT_FALSE(node_options(f));
}

TEST(NodeOptions, NeedsASecretFromTheFlagOrTheEnvironment) {
  NodeFlags f = valid();
  f.cluster_secret.clear();
  ::unsetenv("TROUPE_CLUSTER_SECRET");
  auto none = node_options(f);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("cluster secret"), std::string::npos);
  ::setenv("TROUPE_CLUSTER_SECRET", "from-env", 1);
  auto env = node_options(f);
  ::unsetenv("TROUPE_CLUSTER_SECRET");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->cluster_secret, "from-env");
}

}  // namespace
}  // namespace troupe::cluster
