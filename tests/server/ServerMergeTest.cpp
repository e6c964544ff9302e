// Merging over HTTP against the real server process: a fedavg round, Dafne's merge on arrival,
// the validation gate holding back a destructive candidate, and many sites uploading at once.
#include <barrier>
#include <mutex>

#include "ServerHarness.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

// base + Σ cᵢ·deltaᵢ, accumulated in double like the server.
common::WeightSet combine(const common::WeightSet& base, const std::vector<std::pair<double, const common::WeightSet*>>& terms,
                      double baseFactor = 1.0) {
  common::WeightSet out = base;
  for (size_t t = 0; t < out.size(); ++t) {
    for (size_t k = 0; k < out[t].values.size(); ++k) {
      double v = baseFactor * double(base[t].values[k]);
      for (const auto& [c, w] : terms) v += c * double((*w)[t].values[k]);
      out[t].values[k] = static_cast<float>(v);
    }
  }
  return out;
}

std::vector<int64_t> ids(const json& list) {
  std::vector<int64_t> out;
  for (const auto& v : list) out.push_back(v.get<int64_t>());
  return out;
}

class ServerMergeTest : public ::testing::Test {
 protected:
  // Seeds the model, registers `sites` sites and an admin, applies `policy`, starts the server.
  void start(const model::Model& base, const std::string& strategy, int sites, const json& policy = json::object()) {
    data_ = dir_.path() / "data";
    base_ = base;
    seed(data_, base_, strategy);
    server::Registry registry(data_);
    for (int i = 0; i < sites; ++i) siteTokens_.push_back(registry.addSite("site-" + std::to_string(i), "site").second);
    adminToken_ = registry.addSite("ops", "admin").second;
    if (!policy.empty()) server::updatePolicy(registry, kTask, policy);
    server_ = std::make_unique<ServerProcess>(data_);
  }
  Http http() const { return server_->http(); }

  int64_t push(int site, const std::string& body) {
    const Reply r = http().post("/v1/models/" + kTask + "/updates", body, siteTokens_.at(site));
    EXPECT_EQ(r.status, 202) << r.describe() << "\n" << server_->logTail(5);
    if (r.status != 202) return -1;
    EXPECT_EQ(r.asJson()["status"], "queued");
    return r.asJson()["update"].get<int64_t>();
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::vector<std::string> siteTokens_;
  std::string adminToken_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerMergeTest, FedAvgMergesARoundOfThreeIntoTheSampleWeightedMean) {
  start(makeModel(kTask), "fedavg", 3, {{"round_size", 3}, {"round_seconds", 3600}});
  const std::vector<double> samples{10, 30, 60};
  std::vector<common::WeightSet> deltas;
  std::vector<int64_t> pushed;
  for (int i = 0; i < 3; ++i) {
    deltas.push_back(randomDelta(base_.weights, 100 + i, 0.02f));
    pushed.push_back(push(i, encodeDelta(kTask, 0, deltas.back(), samples[i])));
    if (i < 2) {
      // An incomplete round is not merged, however long it waits (well, within round_seconds).
      std::this_thread::sleep_for(std::chrono::milliseconds(i == 1 ? 1200 : 100));
      EXPECT_EQ(latestGeneration(http(), kTask, siteTokens_[0]), 0);
      EXPECT_EQ(queuedUpdates(http()), i + 1);
    }
  }
  ASSERT_EQ(std::set<int64_t>(pushed.begin(), pushed.end()).size(), 3u);

  const auto g = waitForGeneration(http(), kTask, siteTokens_[0], 1);
  ASSERT_TRUE(g) << server_->logTail();
  EXPECT_EQ((*g)["generation"], 1);
  EXPECT_EQ((*g)["parent"], 0);
  EXPECT_EQ((*g)["status"], "published");
  EXPECT_EQ((*g)["strategy"], "fedavg");
  EXPECT_EQ(ids((*g)["merged_updates"]), pushed);
  EXPECT_EQ(queuedUpdates(http()), 0);

  // The lineage as the generations list tells it, oldest first.
  const json list = http().getJson("/v1/models/" + kTask + "/generations", siteTokens_[1]);
  ASSERT_EQ(list["generations"].size(), 2u) << list.dump(2);
  EXPECT_EQ(list["generations"][0]["generation"], 0);
  EXPECT_EQ(list["generations"][0]["strategy"], "seed");
  EXPECT_EQ(list["generations"][1], *g);

  // Every update says where it went; a site sees only its own.
  for (int i = 0; i < 3; ++i) {
    const json u = http().getJson("/v1/updates/" + std::to_string(pushed[i]), siteTokens_[i]);
    EXPECT_EQ(u["status"], "merged");
    EXPECT_EQ(u["merged_into"], 1);
    EXPECT_EQ(u["site"], "site-" + std::to_string(i));
    EXPECT_EQ(u["base_generation"], 0);
    EXPECT_EQ(u["kind"], "delta");
    EXPECT_DOUBLE_EQ(u["samples"].get<double>(), samples[i]);
    EXPECT_GT(u["delta_norm"].get<double>(), 0);
    EXPECT_TRUE(isError(http().get("/v1/updates/" + std::to_string(pushed[i]), siteTokens_[(i + 1) % 3]), 404, "not_found"));
    EXPECT_EQ(http().getJson("/v1/updates/" + std::to_string(pushed[i]), adminToken_)["status"], "merged");
  }
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/updates?status=merged", adminToken_)["updates"].size(), 3u);
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/updates?status=queued", adminToken_)["updates"].size(), 0u);

  // The weights: base + Σ (nᵢ / Σn) Δᵢ.
  const double total = samples[0] + samples[1] + samples[2];
  const common::WeightSet expected = combine(base_.weights, {{samples[0] / total, &deltas[0]},
                                                         {samples[1] / total, &deltas[1]},
                                                         {samples[2] / total, &deltas[2]}});
  const model::Model merged = downloadModel(http(), kTask, 1, siteTokens_[2]);
  EXPECT_EQ(merged.generation, 1);
  EXPECT_EQ(merged.parentGeneration, 0);
  EXPECT_EQ(merged.weightsSha256(), (*g)["weights_sha256"]);
  EXPECT_LT(maxAbsDifference(merged.weights, expected), 1e-5);
  // Not the plain mean: the sample weights matter.
  const common::WeightSet plainMean = combine(base_.weights, {{1.0 / 3, &deltas[0]}, {1.0 / 3, &deltas[1]}, {1.0 / 3, &deltas[2]}});
  EXPECT_GT(maxAbsDifference(merged.weights, plainMean), 1e-4);
  EXPECT_EQ(http().getJson("/v1/models/" + kTask, siteTokens_[0])["latest_generation"], 1);
}

TEST_F(ServerMergeTest, DafneMergesEachUploadOnArrival) {
  start(makeModel(kTask), "dafne", 2);
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/policy", adminToken_)["strategy"], "dafne");
  const common::WeightSet d1 = randomDelta(base_.weights, 201, 0.05f);
  const common::WeightSet d2 = randomDelta(base_.weights, 202, 0.05f);

  const int64_t u1 = push(0, encodeDelta(kTask, 0, d1, 5));
  const auto g1 = waitForGeneration(http(), kTask, siteTokens_[0], 1);
  ASSERT_TRUE(g1) << server_->logTail();
  EXPECT_EQ((*g1)["strategy"], "dafne");
  EXPECT_EQ((*g1)["parent"], 0);
  EXPECT_EQ(ids((*g1)["merged_updates"]), std::vector<int64_t>{u1});

  // The second site trained on generation 0 too: Dafne averages its model, base 0 + Δ₂, into
  // the current generation 1.
  const int64_t u2 = push(1, encodeDelta(kTask, 0, d2, 500));
  const auto g2 = waitForGeneration(http(), kTask, siteTokens_[0], 2);
  ASSERT_TRUE(g2) << server_->logTail();
  EXPECT_EQ((*g2)["parent"], 1);
  EXPECT_EQ(ids((*g2)["merged_updates"]), std::vector<int64_t>{u2});

  // merged = 0.5·current + 0.5·uploaded, whatever the sample counts.
  const common::WeightSet expected1 = combine(base_.weights, {{0.5, &d1}});
  const model::Model m1 = downloadModel(http(), kTask, 1, siteTokens_[1]);
  EXPECT_LT(maxAbsDifference(m1.weights, expected1), 1e-5);
  common::WeightSet uploaded2 = combine(base_.weights, {{1.0, &d2}});
  const common::WeightSet expected2 = combine(m1.weights, {{0.5, &uploaded2}}, 0.5);
  const model::Model m2 = downloadModel(http(), kTask, 2, siteTokens_[1]);
  EXPECT_LT(maxAbsDifference(m2.weights, expected2), 1e-5);

  const Reply metrics = http().get("/metrics");
  EXPECT_NE(metrics.body.find("\ntessera_generations_published_total 2\n"), std::string::npos) << metrics.body;
}

// A model whose head ignores its input: background logit −5, foreground +5, so it labels every
// voxel foreground and scores a modest but non-zero Dice on the validation squares.
model::Model allForegroundModel() {
  model::Model m = makeModel(kTask);
  bool weight = false, bias = false;
  for (auto& t : m.weights) {
    if (t.name == "head.weight") {
      std::fill(t.values.begin(), t.values.end(), 0.0f);
      weight = true;
    } else if (t.name == "head.bias") {
      t.values = {-5.0f, 5.0f};
      bias = true;
    }
  }
  if (!weight || !bias) throw std::runtime_error("the network has no head.weight/head.bias tensors");
  return m;
}

// `count` cases of 16×16×4 voxels: a bright square labelled 1 on a dark background.
void writeValidationCases(const fs::path& dir, int count) {
  for (int i = 0; i < count; ++i) {
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
    model::writeCase(dir, "case" + std::to_string(i), c);
  }
}

TEST_F(ServerMergeTest, ValidationGateHoldsBackADestructiveCandidate) {
  data_ = dir_.path() / "data";
  base_ = allForegroundModel();
  seed(data_, base_, "fedavg");
  siteTokens_.push_back(addSite(data_, "site-0"));
  adminToken_ = addSite(data_, "ops", "admin");
  // The operator's way: the admin CLI gives the server its validation cases and the policy.
  writeValidationCases(dir_.path() / "cases", 2);
  runCli({"server", "admin", "set-validation", "--data", data_.string(), "--task", kTask, "--cases", (dir_.path() / "cases").string()});
  runCli({"server", "admin", "policy", "--data", data_.string(), "--task", kTask, "--set",
          R"({"round_size": 1, "validation_tolerance": 0, "max_delta_norm_ratio": 10})"});
  server_ = std::make_unique<ServerProcess>(data_);
  const json policy = http().getJson("/v1/models/" + kTask + "/policy", adminToken_);
  ASSERT_EQ(policy["validation_tolerance"], 0.0);
  ASSERT_EQ(policy["round_size"], 1);

  // Flip the head's bias: within the norm bound, but the model now labels nothing.
  common::WeightSet flip = base_.weights;
  for (auto& t : flip) {
    std::fill(t.values.begin(), t.values.end(), 0.0f);
    if (t.name == "head.bias") t.values = {10.0f, -10.0f};
  }
  const int64_t bad = push(0, encodeDelta(kTask, 0, flip));
  ASSERT_GT(bad, 0);
  json update;
  ASSERT_TRUE(waitFor(
      [&] {
        update = http().getJson("/v1/updates/" + std::to_string(bad), siteTokens_[0]);
        return update.is_object() && update["status"] != "queued";
      },
      60, 0.05))
      << server_->logTail();
  EXPECT_EQ(update["status"], "discarded");
  EXPECT_NE(update["reason"].get<std::string>().find("validation Dice"), std::string::npos) << update.dump();
  EXPECT_TRUE(update["merged_into"].is_null());

  EXPECT_EQ(latestGeneration(http(), kTask, siteTokens_[0]), 0) << "the latest generation must not change";
  const json list = http().getJson("/v1/models/" + kTask + "/generations", siteTokens_[0]);
  ASSERT_EQ(list["generations"].size(), 2u) << list.dump(2);
  const json rejected = list["generations"][1];
  EXPECT_EQ(rejected["status"], "rejected");
  EXPECT_NE(rejected["reason"].get<std::string>().find("validation Dice"), std::string::npos) << rejected.dump();
  EXPECT_EQ(ids(rejected["merged_updates"]), std::vector<int64_t>{bad});
  EXPECT_EQ(rejected["parent"], 0);
  ASSERT_TRUE(rejected["validation"].is_object()) << rejected.dump();
  EXPECT_GT(rejected["validation"]["dice_before"].get<double>(), 0.1);
  EXPECT_EQ(rejected["validation"]["dice_after"].get<double>(), 0.0);
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/updates?status=discarded", adminToken_)["updates"].size(), 1u);
  const Reply metrics = http().get("/metrics");
  EXPECT_NE(metrics.body.find("\ntessera_candidates_rejected_total 1\n"), std::string::npos) << metrics.body;

  // The control: a harmless update passes the same gate and is published with its scores.
  common::WeightSet harmless = randomDelta(base_.weights, 301, 0.001f);
  for (auto& t : harmless) {
    if (t.name.rfind("head.", 0) == 0) std::fill(t.values.begin(), t.values.end(), 0.0f);
  }
  push(0, encodeDelta(kTask, 0, harmless));
  const auto g1 = waitForGeneration(http(), kTask, siteTokens_[0], 1);
  ASSERT_TRUE(g1) << server_->logTail();
  EXPECT_EQ((*g1)["status"], "published");
  ASSERT_TRUE((*g1)["validation"].is_object()) << g1->dump();
  EXPECT_DOUBLE_EQ((*g1)["validation"]["dice_after"].get<double>(), (*g1)["validation"]["dice_before"].get<double>());
}

TEST_F(ServerMergeTest, SixteenConcurrentUploadsAreAllMergedIntoOneRound) {
  constexpr int kSites = 16;
  start(makeModel(kTask), "fedavg", kSites, {{"round_size", kSites}, {"round_seconds", 3600}});
  std::vector<std::string> bodies;
  std::vector<common::WeightSet> deltas;
  for (int i = 0; i < kSites; ++i) {
    deltas.push_back(randomDelta(base_.weights, 400 + i, 0.01f));
    bodies.push_back(encodeDelta(kTask, 0, deltas.back(), 1 + i));
  }

  std::barrier ready(kSites);
  std::mutex m;
  std::vector<Reply> replies(kSites);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSites; ++i) {
    threads.emplace_back([&, i] {
      ready.arrive_and_wait();
      Reply r = http().post("/v1/models/" + kTask + "/updates", bodies[i], siteTokens_[i]);
      std::lock_guard lock(m);
      replies[i] = std::move(r);
    });
  }
  for (auto& t : threads) t.join();

  std::vector<int64_t> accepted;
  std::map<int64_t, int> siteOf;
  for (int i = 0; i < kSites; ++i) {
    ASSERT_EQ(replies[i].status, 202) << "site " << i << ": " << replies[i].describe();
    const int64_t id = replies[i].asJson()["update"].get<int64_t>();
    accepted.push_back(id);
    siteOf[id] = i;
  }
  std::sort(accepted.begin(), accepted.end());
  ASSERT_EQ(std::set<int64_t>(accepted.begin(), accepted.end()).size(), static_cast<size_t>(kSites)) << "ids must be distinct";

  const auto g = waitForGeneration(http(), kTask, siteTokens_[0], 1);
  ASSERT_TRUE(g) << server_->logTail();
  std::vector<int64_t> merged = ids((*g)["merged_updates"]);
  std::sort(merged.begin(), merged.end());
  EXPECT_EQ(merged, accepted) << "generation 1 must merge exactly the 16 accepted updates";
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_EQ(latestGeneration(http(), kTask, siteTokens_[0]), 1) << "one round, one generation";
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/updates?status=merged", adminToken_)["updates"].size(),
            static_cast<size_t>(kSites));

  // Nothing lost or counted twice: the weights are the sample-weighted mean of all 16.
  double total = 0;
  for (int i = 0; i < kSites; ++i) total += 1 + i;
  std::vector<std::pair<double, const common::WeightSet*>> terms;
  for (int i = 0; i < kSites; ++i) terms.emplace_back((1 + i) / total, &deltas[i]);
  const model::Model m1 = downloadModel(http(), kTask, 1, siteTokens_[3]);
  EXPECT_LT(maxAbsDifference(m1.weights, combine(base_.weights, terms)), 1e-5);
}

}  // namespace
}  // namespace tessera::servertest
