#include "tessera/interactive/ReplayBuffer.h"

#include <set>

#include <gtest/gtest.h>

#include "tessera/common/Error.h"

namespace tessera::interactive {
namespace {

ReplayBuffer bufferOf(int n) {
  ReplayBuffer b;
  for (int i = 0; i < n; ++i) b.add("case" + std::to_string(100 + i));  // names sort in time order
  return b;
}

bool distinctAndOldestFirst(const std::vector<std::string>& names) {
  return std::set<std::string>(names.begin(), names.end()).size() == names.size() &&
         std::is_sorted(names.begin(), names.end());
}

TEST(ReplayBuffer, EverySamplingReturnsTheAskedNumberOfDistinctCasesOldestFirst) {
  const ReplayBuffer b = bufferOf(20);
  for (auto sampling : {ReplaySampling::Uniform, ReplaySampling::Recent, ReplaySampling::Stratified}) {
    const auto s = b.sample(6, sampling, 7);
    EXPECT_EQ(s.size(), 6u) << replaySamplingName(sampling);
    EXPECT_TRUE(distinctAndOldestFirst(s)) << replaySamplingName(sampling);
  }
}

TEST(ReplayBuffer, AskingForMoreThanItHoldsGivesEverythingAndZeroGivesNothing) {
  const ReplayBuffer b = bufferOf(3);
  EXPECT_EQ(b.sample(8, ReplaySampling::Uniform, 1), b.names());
  EXPECT_TRUE(b.sample(0, ReplaySampling::Recent, 1).empty());
  EXPECT_TRUE(ReplayBuffer().sample(4, ReplaySampling::Stratified, 1).empty());
}

TEST(ReplayBuffer, RecentTakesTheNewestCases) {
  const auto s = bufferOf(10).sample(3, ReplaySampling::Recent, 99);
  EXPECT_EQ(s, (std::vector<std::string>{"case107", "case108", "case109"}));
}

TEST(ReplayBuffer, UniformIsDeterministicForASeedAndReachesOldCases) {
  const ReplayBuffer b = bufferOf(30);
  EXPECT_EQ(b.sample(5, ReplaySampling::Uniform, 3), b.sample(5, ReplaySampling::Uniform, 3));
  EXPECT_NE(b.sample(5, ReplaySampling::Uniform, 3), b.sample(5, ReplaySampling::Uniform, 4));
  // Over many seeds every case is drawn about equally often (5/30 of the time), the oldest too.
  std::vector<int> drawn(30, 0);
  const int seeds = 3000;
  for (int seed = 0; seed < seeds; ++seed) {
    for (const auto& name : b.sample(5, ReplaySampling::Uniform, static_cast<uint64_t>(seed))) ++drawn[std::stoi(name.substr(4)) - 100];
  }
  for (int i = 0; i < 30; ++i) EXPECT_NEAR(drawn[i] / double(seeds), 5.0 / 30.0, 0.04) << "case " << i;
}

TEST(ReplayBuffer, StratifiedTakesOneCaseFromEachStretchOfTime) {
  const ReplayBuffer b = bufferOf(12);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const auto s = b.sample(4, ReplaySampling::Stratified, seed);
    ASSERT_EQ(s.size(), 4u);
    for (int k = 0; k < 4; ++k) {
      const int index = std::stoi(s[k].substr(4)) - 100;
      EXPECT_GE(index, 3 * k);
      EXPECT_LT(index, 3 * k + 3);
    }
  }
}

TEST(ReplayBuffer, SamplingNamesRoundTripAndUnknownOnesAreRefused) {
  for (auto sampling : {ReplaySampling::Uniform, ReplaySampling::Recent, ReplaySampling::Stratified}) {
    EXPECT_EQ(replaySamplingFromName(replaySamplingName(sampling)), sampling);
  }
  try {
    replaySamplingFromName("newest");
    FAIL() << "accepted 'newest'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
    EXPECT_NE(std::string(e.what()).find("newest"), std::string::npos);
  }
}

}  // namespace
}  // namespace tessera::interactive
