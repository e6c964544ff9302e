// A push under local DP: what leaves the site is clipped and noised and says so in its header,
// and a retry resends the very same noised bytes (a fresh draw would be a second release).
#include <sstream>

#include <gtest/gtest.h>

#include "SiteTestFixture.h"
#include "tessera/client/PrivatePush.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/common/Error.h"
#include "tessera/nn/Runtime.h"

namespace tessera::client {
namespace {

class PrivatePushTest : public test::FakeServerSiteTest {
 protected:
  void SetUp() override {
    FakeServerSiteTest::SetUp();
    pull(config, log);
    SiteTrainOptions options;
    options.casesDir = cases.path();
    options.epochs = 1;
    options.batchSize = 4;
    train(config, options, log);
  }
};

TEST_F(PrivatePushTest, SendsANoisedDeltaAndResendsTheSameBytesOnRetry) {
  const federation::DpParameters dp{0.01, 1.5};
  pushWithPrivacy(config, log, dp);
  SiteState state(config.home, "brain");
  auto record = *state.readTrained();
  record.pushed = nullptr;  // as if the answer had been lost
  state.writeRecord(record);
  pushWithPrivacy(config, log, dp);

  const auto updates = server.updates();
  ASSERT_EQ(updates.size(), 2u);
  ASSERT_TRUE(updates[0].header.dp.has_value());
  EXPECT_EQ(updates[0].header.dp->clipNorm, 0.01);
  EXPECT_EQ(updates[0].header.dp->noiseMultiplier, 1.5);
  EXPECT_EQ(federation::encodeUpdate(updates[0]), federation::encodeUpdate(updates[1])) << "one release, sent twice";
  // Mostly noise of std z·C per parameter: far above the clip, running statistics dropped.
  const double norm = federation::privateNorm(updates[0].weights);
  const double params = double(common::parameterCount(updates[0].weights));
  EXPECT_GT(norm, 0.5 * 1.5 * 0.01 * std::sqrt(params));
  for (const auto& t : updates[0].weights)
    if (federation::isRunningStatistic(t.name))
      for (float v : t.values) EXPECT_EQ(v, 0.0f) << t.name;
  EXPECT_NE(log.str().find("local DP"), std::string::npos) << log.str();

  // Other parameters for the same training: refused rather than a second, different release.
  record.pushed = nullptr;
  state.writeRecord(record);
  EXPECT_THROW(pushWithPrivacy(config, log, federation::DpParameters{0.01, 3.0}), tessera::Error);
}

TEST_F(PrivatePushTest, PlainPushCarriesNoDpDeclaration) {
  pushWithPrivacy(config, log, std::nullopt);
  ASSERT_EQ(server.updates().size(), 1u);
  EXPECT_FALSE(server.updates()[0].header.dp.has_value());
}

}  // namespace
}  // namespace tessera::client
