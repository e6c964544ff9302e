// Differential privacy through the real server: the per-site budget refuses the update that would
// exceed it, GET /v1/models/T/privacy and `admin privacy` report what each site spent, and central
// mode publishes the mean of clipped deltas plus noise of std z·C/m.
#include "ServerHarness.h"
#include "tessera/federation/GaussianMechanism.h"
#include "tessera/federation/RdpAccountant.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

class ServerPrivacyTest : public ::testing::Test {
 protected:
  void start(const std::string& strategy, int sites, const json& policy) {
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask);
    seed(data_, base_, strategy);
    server::Registry registry(data_);
    for (int i = 0; i < sites; ++i) siteTokens_.push_back(registry.addSite("site-" + std::to_string(i), "site").second);
    adminToken_ = registry.addSite("ops", "admin").second;
    server::updatePolicy(registry, kTask, policy);
    server_ = std::make_unique<ServerProcess>(data_);
  }
  Http http() const { return server_->http(); }
  Reply post(int site, const std::string& body) const {
    return http().post("/v1/models/" + kTask + "/updates", body, siteTokens_.at(site));
  }

  // A delta clipped and noised as `tessera client push --dp-clip C --dp-noise z` does.
  std::string privateDelta(uint64_t seed, double clip, double z) const {
    federation::ModelUpdate u;
    u.header.task = kTask;
    u.header.baseGeneration = 0;
    u.header.samples = 10;
    u.weights = randomDelta(base_.weights, seed, 0.05f);
    federation::NoiseSource noise(seed);
    federation::privatizeLocally(u.weights, {clip, z}, noise);
    u.header.dp = federation::DpParameters{clip, z};
    return federation::encodeUpdate(u);
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::vector<std::string> siteTokens_;
  std::string adminToken_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerPrivacyTest, LocalDpBudgetRefusesTheUpdateThatWouldExceedIt) {
  // q = 1, z = 1: one release costs eps1, two eps2; the budget lies between them.
  const double eps1 = federation::epsilonOf(1.0, 1.0, 1, 1e-5).epsilon;
  const double eps2 = federation::epsilonOf(1.0, 1.0, 2, 1e-5).epsilon;
  const double budget = (eps1 + eps2) / 2;
  start("fedavg", 2,
        {{"round_size", 10}, {"round_seconds", 3600}, {"updates_per_site_per_round", 5},
         {"dp", {{"mode", "local"}, {"clip", 0.5}, {"noise_multiplier", 1.0}, {"epsilon_max", budget}, {"delta", 1e-5}}}});

  // Without DP, or with less noise than the policy asks for: refused as such.
  EXPECT_TRUE(isError(post(0, encodeDelta(kTask, 0, randomDelta(base_.weights, 1))), 422, "rejected"));
  EXPECT_TRUE(isError(post(0, privateDelta(2, 0.5, 0.5)), 422, "rejected"));

  const Reply first = post(0, privateDelta(3, 0.5, 1.0));
  ASSERT_EQ(first.status, 202) << first.describe() << "\n" << server_->logTail(5);
  // The same bytes again are the same release: answered as a repeat, not refused, not counted.
  const Reply repeat = post(0, privateDelta(3, 0.5, 1.0));
  EXPECT_EQ(repeat.status, 200) << repeat.describe();
  const Reply second = post(0, privateDelta(4, 0.5, 1.0));
  ASSERT_TRUE(isError(second, 403, "privacy_budget_exceeded")) << second.describe();
  const std::string message = second.asJson()["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("site-0"), std::string::npos) << message;
  char budgetText[32];
  std::snprintf(budgetText, sizeof budgetText, "%.4g", budget);
  EXPECT_NE(message.find(budgetText), std::string::npos) << message;
  char spentText[32];
  std::snprintf(spentText, sizeof spentText, "%.4g", eps1);
  EXPECT_NE(message.find(spentText), std::string::npos) << message;
  // Another site has its own budget.
  EXPECT_EQ(post(1, privateDelta(5, 0.5, 1.0)).status, 202);

  // The admin sees every site; a site only itself.
  const json report = http().getJson("/v1/models/" + kTask + "/privacy", adminToken_);
  ASSERT_EQ(report["sites"].size(), 2u) << report.dump(2);
  for (const auto& s : report["sites"]) {
    EXPECT_EQ(s["releases"], 1) << s.dump();
    EXPECT_NEAR(s["epsilon"].get<double>(), eps1, 1e-9);
    EXPECT_NEAR(s["epsilon_max"].get<double>(), budget, 1e-12);
    EXPECT_NEAR(s["remaining"].get<double>(), budget - eps1, 1e-9);
  }
  EXPECT_EQ(report["dp"]["mode"], "local");
  const json own = http().getJson("/v1/models/" + kTask + "/privacy", siteTokens_[1]);
  ASSERT_EQ(own["sites"].size(), 1u);
  EXPECT_EQ(own["sites"][0]["site"], "site-1");

  // The operator's command reads the same ledger from the data folder.
  const json cli = json::parse(runCli({"server", "admin", "privacy", "--task", kTask, "--json", "--data", data_.string()}));
  EXPECT_EQ(cli["sites"], report["sites"]);
}

TEST_F(ServerPrivacyTest, CentralDpPublishesClippedMeanPlusCalibratedNoise) {
  const double clip = 0.05, z = 2.0;
  start("fedavg", 2,
        {{"round_size", 2}, {"round_seconds", 3600}, {"validation_tolerance", 1.0},
         {"dp", {{"mode", "central"}, {"clip", clip}, {"noise_multiplier", z}}}});
  std::vector<common::WeightSet> deltas;
  for (int i = 0; i < 2; ++i) {
    deltas.push_back(randomDelta(base_.weights, 40 + i, 0.05f));
    const Reply r = post(i, encodeDelta(kTask, 0, deltas.back(), 10.0 * (i + 1)));
    ASSERT_EQ(r.status, 202) << r.describe();
  }
  const auto g = waitForGeneration(http(), kTask, siteTokens_[0], 1);
  ASSERT_TRUE(g) << server_->logTail();
  const model::Model merged = downloadModel(http(), kTask, 1, siteTokens_[0]);

  // Expected without noise: base + mean of the clipped deltas, equal weights whatever the samples.
  for (auto& d : deltas) federation::clipToNorm(d, clip);
  double sumSq = 0;
  int64_t count = 0;
  for (size_t t = 0; t < merged.weights.size(); ++t) {
    const auto& name = merged.weights[t].name;
    for (size_t k = 0; k < merged.weights[t].values.size(); ++k) {
      const double noise = double(merged.weights[t].values[k]) - double(base_.weights[t].values[k]) -
                           (double(deltas[0][t].values[k]) + deltas[1][t].values[k]) / 2;
      if (federation::isRunningStatistic(name)) {
        EXPECT_EQ(merged.weights[t].values[k], base_.weights[t].values[k]) << name;
        continue;
      }
      sumSq += noise * noise;
      ++count;
    }
  }
  ASSERT_GT(count, 1000);
  const double expectedStd = z * clip / 2;
  EXPECT_NEAR(std::sqrt(sumSq / count), expectedStd, expectedStd * 0.1) << count << " coordinates";

  // Each site took part once: one release at the policy's z, no budget set.
  const json report = http().getJson("/v1/models/" + kTask + "/privacy", adminToken_);
  ASSERT_EQ(report["sites"].size(), 2u);
  for (const auto& s : report["sites"]) {
    EXPECT_EQ(s["releases"], 1);
    EXPECT_NEAR(s["epsilon"].get<double>(), federation::epsilonOf(z, 1.0, 1, 1e-5).epsilon, 1e-9);
    EXPECT_TRUE(s["epsilon_max"].is_null());
  }
}

// Adaptive clipping: the deltas get the larger noise multiplier z_Δ that pays for the noisy count,
// and after the round the server stores a new clip (the count is noisy, so only its range is known).
TEST_F(ServerPrivacyTest, AdaptiveClippingRaisesTheDeltaNoiseAndMovesTheClip) {
  const double clip = 0.05, z = 2.0, countNoise = 1.5;
  start("fedavg", 2,
        {{"round_size", 2}, {"round_seconds", 3600}, {"validation_tolerance", 1.0},
         {"dp", {{"mode", "central"}, {"clip", clip}, {"noise_multiplier", z}, {"adaptive_quantile", 0.5},
                 {"adaptive_count_noise", countNoise}}}});
  std::vector<common::WeightSet> deltas;
  for (int i = 0; i < 2; ++i) {
    deltas.push_back(randomDelta(base_.weights, 60 + i, 0.05f));  // norms far above the clip
    ASSERT_EQ(post(i, encodeDelta(kTask, 0, deltas.back())).status, 202);
  }
  ASSERT_TRUE(waitForGeneration(http(), kTask, siteTokens_[0], 1)) << server_->logTail();
  const model::Model merged = downloadModel(http(), kTask, 1, siteTokens_[0]);
  for (auto& d : deltas) federation::clipToNorm(d, clip);
  double sumSq = 0;
  int64_t count = 0;
  for (size_t t = 0; t < merged.weights.size(); ++t) {
    if (federation::isRunningStatistic(merged.weights[t].name)) continue;
    for (size_t k = 0; k < merged.weights[t].values.size(); ++k) {
      const double noise = double(merged.weights[t].values[k]) - double(base_.weights[t].values[k]) -
                           (double(deltas[0][t].values[k]) + deltas[1][t].values[k]) / 2;
      sumSq += noise * noise;
      ++count;
    }
  }
  const double zDelta = 1 / std::sqrt(1 / (z * z) - 1 / (4 * countNoise * countNoise));
  EXPECT_NEAR(std::sqrt(sumSq / count), zDelta * clip / 2, zDelta * clip / 2 * 0.1);
  // Both updates were clipped (b = 0): C·exp(−η(b̄ − γ)) with b̄ = N(0, σ_b²)/2, within 8 σ.
  ASSERT_TRUE(waitFor([&] { return http().getJson("/v1/models/" + kTask + "/policy", adminToken_)["dp"]["clip"] != clip; }, 10))
      << server_->logTail();
  const double next = http().getJson("/v1/models/" + kTask + "/policy", adminToken_)["dp"]["clip"].get<double>();
  EXPECT_GT(next, clip * std::exp(-0.2 * (8 * countNoise / 2 - 0.5)));
  EXPECT_LT(next, clip * std::exp(-0.2 * (-8 * countNoise / 2 - 0.5)));
}

}  // namespace
}  // namespace tessera::servertest
