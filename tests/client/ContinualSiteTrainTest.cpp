// `tessera client train --replay N`: the site learns only newly accepted cases, rehearses earlier
// ones, and reports what each correction cost from the interactions sidecars.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "SiteTestFixture.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/common/Error.h"
#include "tessera/interactive/ContinualLearning.h"
#include "tessera/nn/Runtime.h"

namespace tessera::client {
namespace {

class ContinualSiteTrainTest : public test::FakeServerSiteTest {
 protected:
  void writeSidecar(const std::string& name, int clicks, double seconds, double dice) {
    std::filesystem::create_directories(cases.path() / "interactions");
    std::ofstream(interactive::interactionsPath(cases.path(), name))
        << nlohmann::json{{"format", "tessera-interaction"}, {"clicks", clicks}, {"seconds", seconds},
                          {"dice_initial_to_accepted", dice}}
               .dump();
  }

  TrainResult trainWithReplay(int replay) {
    SiteTrainOptions options;
    options.casesDir = cases.path();
    options.epochs = 1;
    options.batchSize = 4;
    options.replay = replay;
    return train(config, options, log);
  }
};

TEST_F(ContinualSiteTrainTest, LearnsNewCasesOnceAndReportsTheirCorrections) {
  pull(config, log);
  writeSidecar("case0", 4, 35.5, 0.62);
  TrainResult first = trainWithReplay(2);
  EXPECT_EQ(first.learned, (std::vector<std::string>{"case0", "case1"}));
  EXPECT_TRUE(first.replayed.empty());
  EXPECT_EQ(first.dice.size(), 2u);
  EXPECT_EQ(first.baseGeneration, 3);
  EXPECT_EQ(interactive::readLearnedRecord(cases.path()).size(), 2u);

  auto events = server.events();
  ASSERT_EQ(events.size(), 2u);  // train, and one correction (case1 has no sidecar)
  EXPECT_EQ(events[0]["type"], "train");
  EXPECT_TRUE(events[0].contains("dice"));
  EXPECT_EQ(events[1]["type"], "correct");
  EXPECT_EQ(events[1]["task"], "brain");
  EXPECT_DOUBLE_EQ(events[1]["seconds"].get<double>(), 35.5);
  EXPECT_DOUBLE_EQ(events[1]["dice"].get<double>(), 0.62);
  EXPECT_EQ(events[1]["clicks"], 4);

  // Nothing accepted since: nothing to learn.
  try {
    trainWithReplay(2);
    FAIL() << "learned the same cases again";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NotFound);
    EXPECT_NE(std::string(e.what()).find("nothing new to learn"), std::string::npos) << e.what();
  }

  // A third case: learned alone with one earlier case replayed, trained on both.
  std::filesystem::create_directories(cases.path() / "more");
  test::writeCases(cases.path() / "more", 3, 4);
  std::filesystem::copy_file(cases.path() / "more" / "images" / "case2.nii.gz", cases.path() / "images" / "case2.nii.gz");
  std::filesystem::copy_file(cases.path() / "more" / "labels" / "case2.nii.gz", cases.path() / "labels" / "case2.nii.gz");
  std::filesystem::remove_all(cases.path() / "more");
  writeSidecar("case2", 1, 8.0, 0.9);
  TrainResult second = trainWithReplay(1);
  EXPECT_EQ(second.learned, std::vector<std::string>{"case2"});
  EXPECT_EQ(second.replayed.size(), 1u);
  EXPECT_EQ(second.cases, 2);
  EXPECT_EQ(second.samples, 8);
  events = server.events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3]["type"], "correct");
  EXPECT_EQ(events[3]["clicks"], 1);
}

TEST_F(ContinualSiteTrainTest, PlainTrainingRecordsTheCasesSoReplayLaterSkipsThem) {
  pull(config, log);
  SiteTrainOptions options;
  options.casesDir = cases.path();
  options.epochs = 1;
  options.batchSize = 4;
  const TrainResult plain = train(config, options, log);
  EXPECT_EQ(plain.cases, 2);
  EXPECT_EQ(plain.learned.size(), 2u);
  EXPECT_EQ(interactive::readLearnedRecord(cases.path()).size(), 2u);
  EXPECT_THROW(trainWithReplay(4), Error);
}

}  // namespace
}  // namespace tessera::client
