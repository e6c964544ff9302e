// FedAdam on the real server process: the moments of one round carry into the next across a
// server restart (SIGKILL), so the second generation is exactly the second Adam step.
#include "ServerHarness.h"
#include "tessera/federation/GaussianMechanism.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";
constexpr double kEta = 0.01, kBeta1 = 0.9, kBeta2 = 0.99, kTau = 1e-3;

struct Moments {
  std::vector<std::vector<double>> m, v;
};

// One FedAdam step of a single-update round written out independently of the server's code:
// Δ = (x + d) − x with the float rounding of the stored mean, running statistics take the mean.
common::WeightSet adamStep(const common::WeightSet& x, const common::WeightSet& d, Moments& state) {
  common::WeightSet out = x;
  if (state.m.empty()) {
    for (const auto& t : x) {
      state.m.emplace_back(t.values.size(), 0.0);
      state.v.emplace_back(t.values.size(), kTau * kTau);
    }
  }
  for (size_t t = 0; t < x.size(); ++t) {
    for (size_t k = 0; k < x[t].values.size(); ++k) {
      const float mean = static_cast<float>(double(x[t].values[k]) + double(d[t].values[k]));
      if (federation::isRunningStatistic(x[t].name)) {
        out[t].values[k] = mean;
        continue;
      }
      const double delta = double(mean) - x[t].values[k];
      double& m = state.m[t][k];
      double& v = state.v[t][k];
      m = kBeta1 * m + (1 - kBeta1) * delta;
      v = kBeta2 * v + (1 - kBeta2) * delta * delta;
      out[t].values[k] = static_cast<float>(x[t].values[k] + kEta * m / (std::sqrt(v) + kTau));
    }
  }
  return out;
}

TEST(ServerAdaptiveMerge, FedAdamMomentsSurviveARestart) {
  TempDir dir;
  const fs::path data = dir.path() / "data";
  const model::Model base = makeModel(kTask);
  seed(data, base, "fedadam");
  std::string site;
  {
    server::Registry registry(data);
    site = registry.addSite("site-0", "site").second;
    server::updatePolicy(registry, kTask, {{"round_size", 1}, {"server_lr", kEta}, {"beta1", kBeta1}, {"beta2", kBeta2}, {"tau", kTau}});
  }
  const auto d1 = randomDelta(base.weights, 11, 0.02f);
  const auto d2 = randomDelta(base.weights, 12, 0.02f);

  auto server = std::make_unique<ServerProcess>(data);
  ASSERT_EQ(server->http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 0, d1), site).status, 202);
  ASSERT_TRUE(waitForGeneration(server->http(), kTask, site, 1)) << server->logTail();
  const model::Model g1 = downloadModel(server->http(), kTask, 1, site);
  Moments carried;
  EXPECT_LT(maxAbsDifference(g1.weights, adamStep(base.weights, d1, carried)), 1e-5);
  server->kill();

  server = std::make_unique<ServerProcess>(data);
  ASSERT_EQ(server->http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 1, d2), site).status, 202);
  const auto g = waitForGeneration(server->http(), kTask, site, 2);
  ASSERT_TRUE(g) << server->logTail();
  EXPECT_EQ((*g)["strategy"], "fedadam");
  const model::Model g2 = downloadModel(server->http(), kTask, 2, site);
  EXPECT_LT(maxAbsDifference(g2.weights, adamStep(g1.weights, d2, carried)), 1e-5);
  // Moments lost in the restart would have given a clearly different step.
  Moments fresh;
  EXPECT_GT(maxAbsDifference(g2.weights, adamStep(g1.weights, d2, fresh)), 1e-3);
  // The moments on disk are named by the generation they belong to; older ones are removed when
  // the next adaptive round starts.
  std::set<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(data / "optimizer-moments")) {
    if (e.is_regular_file()) files.insert(e.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{g1.weightsSha256() + ".tswt", (*g)["weights_sha256"].get<std::string>() + ".tswt"}));
}

}  // namespace
}  // namespace tessera::servertest
