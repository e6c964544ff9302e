// A site whose scans carry no labels: `client train --unlabeled DIR` trains semi-supervised and
// its update says how many unlabelled images went into it.

#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

#include "FakeServer.h"
#include "TestModels.h"
#include "tessera/client/SiteState.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/nn/Runtime.h"

namespace tessera::client {
namespace {

class UnlabeledSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nn::setThreadCount(1);
    config.server = server.url();
    config.token = test::FakeServer::kSiteToken;
    config.task = "brain";
    config.home = home.path() / "state";
    test::writeCases(cases.path(), 2, 4);
    // The same scans without their label maps, one of them in another format.
    const auto labelled = model::readCaseFolder(cases.path());
    image::writeImage(labelled[0].data.image, unlabeled.path() / "scan-a.nii.gz");
    image::writeImage(labelled[1].data.image, unlabeled.path() / "scan-b.mha");
    std::ofstream(unlabeled.path() / "notes.txt") << "not an image\n";
  }

  TrainResult trainWith(const std::filesystem::path& casesDir, const std::filesystem::path& unlabeledDir) {
    SiteTrainOptions options;
    options.casesDir = casesDir;
    options.unlabeledDir = unlabeledDir;
    options.epochs = 2;
    options.batchSize = 4;
    return train(config, options, log);
  }

  model::Model base = test::tinyModel("brain", 3);
  test::FakeServer server{base};
  test::ScratchDir home, cases, unlabeled;
  ClientConfig config;
  std::ostringstream log;
};

TEST_F(UnlabeledSiteTest, ASiteWithOnlyUnlabelledScansTrainsAndPushes) {
  pull(config, log);
  const TrainResult trained = trainWith({}, unlabeled.path());
  EXPECT_EQ(trained.cases, 0);
  EXPECT_EQ(trained.unlabeledImages, 2);
  EXPECT_EQ(trained.unlabeledVoxels, 2 * 16 * 16 * 4);
  // 2 images × 4 slices, weighed by the share the teacher pseudo-labelled (at least 0.01).
  const double fraction = static_cast<double>(trained.pseudoLabelledVoxels) / static_cast<double>(trained.unlabeledVoxels);
  EXPECT_NEAR(trained.samples, std::max(0.01, 8 * fraction), 1e-9);
  EXPECT_NE(log.str().find("2 unlabeled image(s)"), std::string::npos) << log.str();

  push(config, log);
  const auto updates = server.updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_NEAR(updates[0].header.samples, trained.samples, 1e-9);
  EXPECT_EQ(updates[0].header.metrics.at("unlabeled_images"), 2);
  EXPECT_EQ(updates[0].header.metrics.at("unlabeled_samples"), 8);
  EXPECT_NEAR(updates[0].header.metrics.at("pseudo_labelled_fraction"), fraction, 1e-9);
  // Trained, not a copy of the base.
  EXPECT_NE(updates[0].weights[0].values, std::vector<float>(updates[0].weights[0].values.size(), 0.0f));
}

TEST_F(UnlabeledSiteTest, LabelledAndUnlabelledTogetherCountBoth) {
  pull(config, log);
  const TrainResult trained = trainWith(cases.path(), unlabeled.path());
  EXPECT_EQ(trained.cases, 2);
  EXPECT_EQ(trained.unlabeledImages, 2);
  const double fraction = static_cast<double>(trained.pseudoLabelledVoxels) / static_cast<double>(trained.unlabeledVoxels);
  EXPECT_NEAR(trained.samples, 8 + 8 * fraction, 1e-9);
  const auto record = SiteState(config.home, "brain").readTrained();
  ASSERT_TRUE(record);
  EXPECT_EQ(record->metrics.at("unlabeled_images"), 2);
  // Without unlabelled images the metrics say nothing about them.
  trainWith(cases.path(), {});
  EXPECT_EQ(SiteState(config.home, "brain").readTrained()->metrics.count("unlabeled_images"), 0u);
}

TEST_F(UnlabeledSiteTest, NothingToTrainOnAndReplayAreConfigErrors) {
  pull(config, log);
  auto expectConfigError = [&](const std::function<void()>& f, const std::string& words) {
    try {
      f();
      FAIL() << "expected an error saying " << words;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::Config) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expectConfigError([&] { trainWith({}, {}); }, "--unlabeled");
  expectConfigError([&] { trainWith({}, home.path() / "missing"); }, "not a folder");
  test::ScratchDir empty;
  expectConfigError([&] { trainWith({}, empty.path()); }, "no images");
  SiteTrainOptions continual;
  continual.casesDir = cases.path();
  continual.unlabeledDir = unlabeled.path();
  continual.replay = 2;
  expectConfigError([&] { train(config, continual, log); }, "--replay");
}

}  // namespace
}  // namespace tessera::client
