// The site gate against the real server: a candidate waits for the sites' reports of its Dice on
// their own held-out cases and is held back when one site loses more than the worst-site
// tolerance, even though another site gains; within the tolerance it is published with the
// reports. Sites here are scripted (their Dice values are given, not measured).
#include "ServerHarness.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

class ServerSiteGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask);
    seed(data_, base_, "fedavg");
    server::Registry registry(data_);
    for (int i = 0; i < 2; ++i) sites_.push_back(registry.addSite("site-" + std::to_string(i), "site").second);
    admin_ = registry.addSite("ops", "admin").second;
    server::updatePolicy(registry, kTask, {{"round_size", 1}, {"site_quorum", 2}, {"site_tolerance", 0.02}, {"site_gate_seconds", 3600}});
    server_ = std::make_unique<ServerProcess>(data_);
  }
  Http http() const { return server_->http(); }

  // The pending candidate once the merge loop built it.
  json waitForCandidate() {
    json found;
    const bool ok = waitFor(
        [&] {
          const Reply r = http().get("/v1/models/" + kTask + "/candidate", sites_[0]);
          if (r.status != 200) return false;
          found = r.asJson();
          return true;
        },
        20);
    EXPECT_TRUE(ok) << server_->logTail();
    return found;
  }

  Reply report(int site, const std::string& sha, double current, double candidate) {
    const json body{{"weights_sha256", sha}, {"dice_current", current}, {"dice_candidate", candidate}, {"cases", 4}};
    return http().post("/v1/models/" + kTask + "/candidate/dice", body.dump(), sites_.at(site), "application/json");
  }

  json generations() { return http().getJson("/v1/models/" + kTask + "/generations", admin_)["generations"]; }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::vector<std::string> sites_;
  std::string admin_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerSiteGateTest, ACandidateThatHurtsOneSiteIsHeldBack) {
  ASSERT_EQ(http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 0, randomDelta(base_.weights, 1)), sites_[0]).status, 202);
  const json candidate = waitForCandidate();
  ASSERT_TRUE(candidate.is_object());
  EXPECT_EQ(candidate["base_generation"], 0);
  EXPECT_EQ(candidate["reported"], false);
  const std::string sha = candidate["weights_sha256"];
  // Sites fetch the candidate's weights to score it.
  const Reply weights = http().get("/v1/models/" + kTask + "/candidate/model", sites_[1]);
  ASSERT_EQ(weights.status, 200) << weights.describe();
  EXPECT_EQ(model::decodeModel(weights.body, "candidate").weightsSha256(), sha);

  // A report on other weights is refused; one site's report is not yet a quorum.
  EXPECT_TRUE(isError(report(0, std::string(64, 'a'), 0.8, 0.85), 409, "conflict"));
  ASSERT_EQ(report(0, sha, 0.80, 0.85).status, 200);
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/candidate", sites_[0])["reported"], true);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(latestGeneration(http(), kTask, sites_[0]), 0);

  // The second site loses 0.10: the worst site decides, not the mean (+0.05 − 0.10).
  ASSERT_EQ(report(1, sha, 0.80, 0.70).status, 200);
  json rejected;
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& g : generations()) {
          if (g["status"] == "rejected") rejected = g;
        }
        return rejected.is_object();
      },
      20))
      << server_->logTail();
  EXPECT_NE(rejected["reason"].get<std::string>().find("site-1"), std::string::npos) << rejected.dump();
  EXPECT_EQ(rejected["validation"]["sites"].size(), 2u) << rejected.dump();
  EXPECT_EQ(latestGeneration(http(), kTask, sites_[0]), 0);
  EXPECT_TRUE(isError(http().get("/v1/models/" + kTask + "/candidate", sites_[0]), 404, "not_found"));
}

TEST_F(ServerSiteGateTest, ACandidateWithinTheWorstSiteTolerancePublishes) {
  ASSERT_EQ(http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 0, randomDelta(base_.weights, 2)), sites_[1]).status, 202);
  const std::string sha = waitForCandidate()["weights_sha256"];
  ASSERT_EQ(report(0, sha, 0.80, 0.83).status, 200);
  ASSERT_EQ(report(1, sha, 0.80, 0.79).status, 200);  // −0.01, within 0.02
  const auto g = waitForGeneration(http(), kTask, sites_[0], 1);
  ASSERT_TRUE(g) << server_->logTail();
  EXPECT_EQ((*g)["weights_sha256"], sha);
  EXPECT_EQ((*g)["validation"]["sites"].size(), 2u) << g->dump();
  // Nothing pending any more (the pending record goes just after the generation is published).
  EXPECT_TRUE(waitFor([&] { return http().get("/v1/models/" + kTask + "/candidate", sites_[0]).status == 404; }, 10));
  EXPECT_TRUE(isError(report(0, sha, 0.8, 0.8), 404, "not_found"));
}

// FedBN's candidates are scored as a site would run them: batch-norm statistics re-estimated on
// the validation images first (the `tessera server` scorer), and the record says so.
TEST(ServerFedBnScoring, FedBnCandidatesAreScoredWithStatisticsOfTheValidationImages) {
  TempDir dir;
  const fs::path data = dir.path() / "data";
  const model::Model base = makeModel(kTask);
  seed(data, base, "fedbn");
  const std::string site = addSite(data, "site-0");
  for (int i = 0; i < 2; ++i) {  // bright squares labelled 1 on a dark background
    image::Geometry g;
    g.size = {16, 16, 4};
    model::TrainingCase c{image::Volume(g, 0.0f), image::Volume(g, 0.0f)};
    for (int64_t z = 0; z < 4; ++z) {
      for (int64_t y = 4 + i; y < 11 + i; ++y) {
        for (int64_t x = 5; x < 12; ++x) {
          c.image.at(x, y, z) = 100.0f + static_cast<float>(x + z);
          c.labels.at(x, y, z) = 1.0f;
        }
      }
    }
    model::writeCase(dir.path() / "cases", "case" + std::to_string(i), c);
  }
  runCli({"server", "admin", "set-validation", "--data", data.string(), "--task", kTask, "--cases", (dir.path() / "cases").string()});
  setPolicy(data, kTask, {{"round_size", 1}});
  ServerProcess server(data);
  ASSERT_EQ(server.http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 0, randomDelta(base.weights, 5, 0.001f)), site).status, 202);
  const auto g = waitForGeneration(server.http(), kTask, site, 1);
  ASSERT_TRUE(g) << server.logTail();
  ASSERT_TRUE((*g)["validation"].contains("dice_before")) << g->dump();
  EXPECT_EQ((*g)["validation"]["norm_statistics"], "validation images") << g->dump();
}

}  // namespace
}  // namespace tessera::servertest
