// `tessera privacy`: the accountant's published values come out of the command, in text and JSON,
// and bad arguments are one-line usage errors.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "RunTessera.h"
#include <nlohmann/json.hpp>

namespace {

using tessera::test::runTessera;

const char* kTfOrders =
    "1.25,1.5,1.75,2,2.25,2.5,3,3.5,4,4.5,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,"
    "32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,128,256,512";

}  // namespace

TEST(PrivacyCli, EpsilonTextNamesEpsilonAndOrder) {
  const auto r = runTessera("privacy epsilon --sigma 1.5 --q 0.04 --steps 2250 --delta 1e-5");
  ASSERT_EQ(r.code, 0) << r.text;
  EXPECT_NE(r.text.find("epsilon 7.3291"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("order 3.9"), std::string::npos) << r.text;
}

TEST(PrivacyCli, EpsilonJsonWithOrdersAndBothConversions) {
  const std::string base = std::string("privacy epsilon --sigma 1.3 --q 0.0025 --steps 6000 --delta 1e-5 --json --orders ") + kTfOrders;
  const auto balle = runTessera(base);
  ASSERT_EQ(balle.code, 0) << balle.text;
  const auto b = nlohmann::json::parse(balle.text);
  EXPECT_NEAR(b["epsilon"].get<double>(), 0.72422, 1e-3);
  EXPECT_EQ(b["best_order"].get<double>(), 19);
  const auto classic = runTessera(base + " --conversion classic");
  ASSERT_EQ(classic.code, 0) << classic.text;
  EXPECT_NEAR(nlohmann::json::parse(classic.text)["epsilon"].get<double>(), 0.94187, 1e-3);
}

TEST(PrivacyCli, SigmaForTargetEpsilon) {
  const auto r = runTessera("privacy sigma --epsilon 8 --delta 1e-5 --q 0.04 --steps 2250 --json");
  ASSERT_EQ(r.code, 0) << r.text;
  const auto j = nlohmann::json::parse(r.text);
  EXPECT_NEAR(j["sigma"].get<double>(), 1.416, 3e-3);
  EXPECT_LE(j["epsilon"].get<double>(), 8.0);
}

TEST(PrivacyCli, BadArgumentsAreUsageErrors) {
  const auto order = runTessera("privacy epsilon --sigma 1 --q 0.5 --steps 3 --delta 1e-5 --orders 2,x");
  EXPECT_EQ(order.code, 2);
  EXPECT_NE(order.text.find("--orders: 'x'"), std::string::npos) << order.text;
  const auto low = runTessera("privacy epsilon --sigma 1 --q 0.5 --steps 3 --delta 1e-5 --orders 1,2");
  EXPECT_EQ(low.code, 2) << low.text;
  const auto sigma = runTessera("privacy epsilon --sigma 0 --steps 3 --delta 1e-5");
  EXPECT_EQ(sigma.code, 2);
  EXPECT_NE(sigma.text.find("sigma"), std::string::npos) << sigma.text;
  EXPECT_NE(runTessera("privacy epsilon --sigma 1 --steps 3").code, 0);  // --delta is required
}

// The smallest federation that shows the cost of privacy: one fedavg run and the same under
// central DP at ε = 8, side by side in the table and report.json, with σ from the accountant for
// one release per site and round (q = 1) and C from the plain run's update norms.
TEST(PrivacyCli, SimulateReportsTheDiceCostOfDp) {
  const std::string out = ::testing::TempDir() + "tessera-simulate-dp";
  std::system(("rm -rf '" + out + "'").c_str());
  const auto r = runTessera("simulate --sites 2 --generations 1 --strategy fedavg --dp-epsilon 8 --epochs 1 --root-epochs 1 "
                         "--root-slices 2 --base-features 4 --slices-per-round 1 --out '" + out + "'");
  ASSERT_EQ(r.code, 0) << r.text;
  EXPECT_NE(r.text.find("cost of differential privacy"), std::string::npos) << r.text;
  FILE* f = std::fopen((out + "/report.json").c_str(), "r");
  ASSERT_TRUE(f);
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  std::fclose(f);
  const auto report = nlohmann::json::parse(text);
  ASSERT_EQ(report["runs"].size(), 2u);
  EXPECT_EQ(report["runs"][1]["strategy"], "fedavg+dp");
  EXPECT_EQ(report["runs"][1]["dp"]["mode"], "central");
  ASSERT_EQ(report["privacy_cost"].size(), 1u);
  const auto& cost = report["privacy_cost"][0];
  EXPECT_NEAR(cost["dice_cost"].get<double>(), cost["dice"].get<double>() - cost["dice_dp"].get<double>(), 1e-12);
  EXPECT_GT(cost["clip"].get<double>(), 0);
  // One release at q = 1 for ε = 8, δ = 1e-5 (the accountant's own answer, cf. `privacy sigma`).
  const auto sigma = runTessera("privacy sigma --epsilon 8 --delta 1e-5 --q 1 --steps 1 --json");
  ASSERT_EQ(sigma.code, 0) << sigma.text;
  EXPECT_NEAR(cost["noise_multiplier"].get<double>(), nlohmann::json::parse(sigma.text)["sigma"].get<double>(), 1e-9);
  std::system(("rm -rf '" + out + "'").c_str());
}
