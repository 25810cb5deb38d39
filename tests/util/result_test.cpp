#include "util/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace troupe {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0)
    return Error{Errc::invalid_request, "must be positive", "x"};
  return x;
}

TEST(Result, HoldsValueOrError) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_request);
  EXPECT_EQ(bad.error().param, "x");
  EXPECT_EQ(errc_name(bad.error().code), "invalid_request");
}

TEST(Result, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(Result, DefaultIsAnError) {
  Result<std::string> r;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
}

TEST(Result, VoidResult) {
  Result<void> ok;
  EXPECT_TRUE(ok);
  Result<void> bad = Error{Errc::timeout, "late"};
  EXPECT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "late");
}

}  // namespace
}  // namespace troupe
