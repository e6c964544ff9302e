// A server rolled back (or restored from a backup) reuses generation numbers for other weights:
// the client must trust the server's record of the weights' SHA-256, not its own cache's file
// names, and must never train from a generation the server no longer has.

#include <sstream>

#include <gtest/gtest.h>

#include "FakeServer.h"
#include "TestModels.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteTrainer.h"

namespace tessera::client {
namespace {

// The same generation number with other weights: what a different merge history produces.
model::Model otherWeights(model::Model m, float shift) {
  for (auto& t : m.weights) {
    for (auto& v : t.values) v += shift;
  }
  return m;
}

class PullRollbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config.server = server.url();
    config.token = test::FakeServer::kSiteToken;
    config.task = "brain";
    config.home = home.path() / "state";
  }

  model::Model base = test::tinyModel("brain", 3);
  test::FakeServer server{base};
  test::ScratchDir home;
  ClientConfig config;
  std::ostringstream log;
};

TEST_F(PullRollbackTest, SameGenerationWithOtherWeightsIsDownloadedAgain) {
  ASSERT_TRUE(pull(config, log).downloaded);
  const model::Model replaced = otherWeights(base, 0.25f);
  ASSERT_NE(replaced.weightsSha256(), base.weightsSha256());
  server.serve(replaced);

  const PullResult again = pull(config, log);
  EXPECT_TRUE(again.downloaded) << log.str();
  EXPECT_EQ(again.generation, 3);
  EXPECT_EQ(server.downloads(), 2);
  EXPECT_EQ(ModelCache(config.home).load("brain", 3).weightsSha256(), replaced.weightsSha256());
  EXPECT_NE(log.str().find("rolled back"), std::string::npos) << log.str();

  // Now the cache holds the server's weights: no third download.
  EXPECT_FALSE(pull(config, log).downloaded);
  EXPECT_EQ(server.downloads(), 2);
}

TEST_F(PullRollbackTest, GenerationsNewerThanTheServersLatestLeaveTheCache) {
  ASSERT_TRUE(pull(config, log).downloaded);  // generation 3
  model::Model next = otherWeights(base, 0.125f);
  next.generation = 4;
  next.parentGeneration = 3;
  server.serve(next);
  ASSERT_TRUE(pull(config, log).downloaded);  // generation 4
  ASSERT_EQ(ModelCache(config.home).latestCached("brain"), 4);

  server.serve(base);  // rolled back to generation 3
  const PullResult rolledBack = pull(config, log);
  EXPECT_FALSE(rolledBack.downloaded) << "generation 3 in the cache is still the server's";
  EXPECT_EQ(rolledBack.generation, 3);
  // `tessera client train` starts from the latest cached generation: it must be the server's.
  EXPECT_EQ(ModelCache(config.home).latestCached("brain"), 3) << log.str();
  EXPECT_EQ(ModelCache(config.home).generations("brain"), std::vector<int64_t>{3});
}

}  // namespace
}  // namespace tessera::client
