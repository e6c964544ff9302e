// A site's whole round against the fake server: pull, fine-tune, push, status.

#include <sstream>

#include <gtest/gtest.h>

#include "SiteTestFixture.h"
#include "tessera/common/Error.h"
#include "tessera/client/ModelCache.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/federation/Merge.h"
#include "tessera/nn/Runtime.h"

namespace tessera::client {
namespace {

class SiteFlowTest : public test::FakeServerSiteTest {
 protected:
  TrainResult trainOnce(int epochs = 1) {
    SiteTrainOptions options;
    options.casesDir = cases.path();
    options.epochs = epochs;
    options.batchSize = 4;
    return train(config, options, log);
  }
};

TEST_F(SiteFlowTest, PullDownloadsOnceAndThenUsesTheCache) {
  const PullResult first = pull(config, log);
  EXPECT_TRUE(first.downloaded);
  EXPECT_EQ(first.generation, 3);
  EXPECT_EQ(first.path, config.home / "models" / "brain" / "generation-3.tsm");
  const PullResult second = pull(config, log);
  EXPECT_FALSE(second.downloaded);
  EXPECT_EQ(server.downloads(), 1);
  EXPECT_EQ(ModelCache(config.home).summary("brain")->value("strategy", ""), "fedavg");
}

TEST_F(SiteFlowTest, PullWithABadChecksumCachesNothing) {
  server.corruptChecksum = true;
  try {
    pull(config, log);
    FAIL() << "expected a checksum error";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.code(), tessera::ErrorCode::Checksum);
  }
  EXPECT_FALSE(ModelCache(config.home).latestCached("brain"));
}

TEST_F(SiteFlowTest, TrainBeforePullSaysToPull) {
  try {
    trainOnce();
    FAIL() << "expected an error";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.code(), tessera::ErrorCode::NotFound);
    EXPECT_NE(std::string(e.what()).find("tessera client pull"), std::string::npos) << e.what();
  }
}

TEST_F(SiteFlowTest, PullTrainPushStatus) {
  pull(config, log);
  const TrainResult trained = trainOnce();
  EXPECT_EQ(trained.baseGeneration, 3);
  EXPECT_EQ(trained.cases, 2);
  EXPECT_EQ(trained.samples, 8);  // 2 cases × 4 slices along axis 2
  EXPECT_FALSE(trained.keptLocalNormalization);
  EXPECT_TRUE(std::filesystem::exists(config.home / "sites-state" / "brain" / "trained.tsm"));
  const auto record = SiteState(config.home, "brain").readTrained();
  ASSERT_TRUE(record);
  EXPECT_EQ(record->baseGeneration, 3);
  EXPECT_EQ(record->metrics.count("final_loss"), 1u);
  EXPECT_EQ(record->metrics.count("seconds"), 1u);

  const auto answer = push(config, log);
  EXPECT_EQ(answer["update"], 17);
  const auto updates = server.updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].header.task, "brain");
  EXPECT_EQ(updates[0].header.baseGeneration, 3);
  EXPECT_EQ(updates[0].header.kind, federation::UpdateKind::Delta);
  EXPECT_EQ(updates[0].header.samples, 8);
  EXPECT_EQ(updates[0].weights.size(), base.weights.size());

  const auto events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["type"], "train");
  EXPECT_EQ(events[1]["type"], "push");
  EXPECT_EQ(events[1]["task"], "brain");

  const auto s = status(config);
  EXPECT_EQ(s["server"]["name"], "hospital-a");
  EXPECT_EQ(s["latest_generation"], 3);
  EXPECT_EQ(s["cache"]["up_to_date"], true);
  EXPECT_EQ(s["trained"]["base_generation"], 3);
  EXPECT_EQ(s["trained"]["pushed"]["update"], 17);
  EXPECT_EQ(s["trained"]["pushed"]["status"], "queued");

  // The same training twice would count double in the merge.
  try {
    push(config, log);
    FAIL() << "expected the second push to be refused";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.code(), tessera::ErrorCode::Rejected);
    EXPECT_NE(std::string(e.what()).find("already pushed as update 17"), std::string::npos) << e.what();
  }
}

TEST_F(SiteFlowTest, RejectedPushLeavesTheTrainingPushable) {
  pull(config, log);
  trainOnce();
  server.rejectUpdates = true;
  EXPECT_THROW(push(config, log), tessera::Error);
  EXPECT_TRUE(SiteState(config.home, "brain").readTrained()->pushed.is_null());
  server.rejectUpdates = false;
  EXPECT_EQ(push(config, log)["status"], "queued");
}

// A push whose answer was lost (the record never learnt the id) is sent again with the same
// idempotency key, so the server counts it once; a new training gets a new key.
TEST_F(SiteFlowTest, ARetriedPushCarriesTheSameIdempotencyKey) {
  pull(config, log);
  trainOnce();
  push(config, log);
  SiteState state(config.home, "brain");
  auto record = *state.readTrained();
  record.pushed = nullptr;  // as if the answer had never arrived
  state.writeRecord(record);
  push(config, log);
  trainOnce(2);  // another training, other weights
  push(config, log);
  const auto updates = server.updates();
  ASSERT_EQ(updates.size(), 3u);
  const std::string key = updates[0].header.idempotencyKey;
  EXPECT_EQ(key.rfind("push-", 0), 0u) << key;
  EXPECT_EQ(federation::idempotencyKeyProblem(key), "");
  EXPECT_EQ(updates[1].header.idempotencyKey, key) << "the retry of one training";
  EXPECT_NE(updates[2].header.idempotencyKey, key) << "a new training";
}

TEST_F(SiteFlowTest, FailingUsageReportsOnlyWarn) {
  server.failEvents = true;
  pull(config, log);
  trainOnce();
  EXPECT_EQ(push(config, log)["status"], "queued");
  EXPECT_NE(log.str().find("warning: could not report the push event"), std::string::npos) << log.str();
}

TEST_F(SiteFlowTest, FedBNKeepsTheSitesNormalisationStatistics) {
  server.strategy = "fedbn";
  pull(config, log);
  trainOnce();
  const model::Model first = model::loadModel(config.home / "sites-state" / "brain" / "trained.tsm");
  const TrainResult second = trainOnce();
  EXPECT_EQ(second.strategy, "fedbn");
  EXPECT_TRUE(second.keptLocalNormalization);
  // Otherwise there would be nothing to keep and the check above would prove nothing.
  bool anyNormalization = false;
  for (const auto& t : first.weights) anyNormalization |= federation::isNormalizationTensor(t.name);
  EXPECT_TRUE(anyNormalization);
}

TEST_F(SiteFlowTest, StatusWorksWithoutTheServer) {
  pull(config, log);
  ClientConfig offline = config;
  offline.server = "http://127.0.0.1:1";
  const auto s = status(offline);
  EXPECT_EQ(s["server"]["reachable"], false);
  EXPECT_EQ(s["server"]["error_code"], "unreachable");
  EXPECT_TRUE(s["latest_generation"].is_null());
  EXPECT_EQ(s["cache"]["latest"], 3);
  EXPECT_TRUE(s["trained"].is_null());
}

TEST_F(SiteFlowTest, TrainWithoutTheServerUsesTheStrategySavedAtPull) {
  server.strategy = "fedbn";
  pull(config, log);
  ClientConfig offline = config;
  offline.server = "http://127.0.0.1:1";
  SiteTrainOptions options;
  options.casesDir = cases.path();
  options.epochs = 1;
  options.batchSize = 4;
  EXPECT_EQ(train(offline, options, log).strategy, "fedbn");
  EXPECT_NE(log.str().find("using 'fedbn' from the last pull"), std::string::npos) << log.str();
}

}  // namespace
}  // namespace tessera::client
