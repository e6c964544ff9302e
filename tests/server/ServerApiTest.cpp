// The federation server's HTTP API against the real `tessera server` process: authentication and
// roles, every update rejection (and that a rejected update leaves nothing behind), model lookup
// and download, usage events and metrics.
#include <cmath>
#include <limits>

#include "ServerHarness.h"
#include "tessera/common/Error.h"

namespace tessera::servertest {
namespace {

constexpr const char* kTask = "brain-mr";

// One tiny model, one site and one admin, the server running on them.
class ServerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask);
    seed(data_, base_);
    siteToken_ = addSite(data_, "hospital-a", "site");
    adminToken_ = addSite(data_, "ops", "admin");
    startServer();
  }

  void startServer() { server_ = std::make_unique<ServerProcess>(data_); }
  Http http() const { return server_->http(); }

  std::string validUpdate(double samples = 10) const {
    return encodeDelta(kTask, base_.generation, randomDelta(base_.weights, 11), samples);
  }

  // Sends an update that must be refused and checks that nothing of it was kept: no queued
  // update, no new blob, no temporary file left behind.
  void expectRefused(const std::string& body, int status, const std::string& code, bool chunked = false) {
    const auto blobsBefore = storedBlobs(data_);
    const auto listBefore = http().getJson(std::string("/v1/models/") + kTask + "/updates", adminToken_);
    const std::string path = std::string("/v1/models/") + kTask + "/updates";
    const Reply r = chunked ? http().postChunked(path, body, siteToken_) : http().post(path, body, siteToken_);
    EXPECT_TRUE(isError(r, status, code)) << server_->logTail(5);
    EXPECT_EQ(queuedUpdates(http()), 0);
    EXPECT_EQ(http().getJson(path, adminToken_), listBefore) << "a refused update must not be recorded";
    EXPECT_EQ(storedBlobs(data_), blobsBefore) << "a refused update must not be stored";
    EXPECT_EQ(temporaryFiles(data_), 0u) << "the refused upload's temporary file must be gone";
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::string siteToken_, adminToken_;
  std::unique_ptr<ServerProcess> server_;
};

// ---- authentication and roles ---------------------------------------------------------------

TEST_F(ServerApiTest, HealthAndMetricsNeedNoToken) {
  const Reply health = http().get("/healthz");
  ASSERT_EQ(health.status, 200) << health.describe();
  const json h = health.asJson();
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["models"], 1);
  EXPECT_EQ(h["queued_updates"], 0);

  const Reply metrics = http().get("/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.describe();
  EXPECT_NE(metrics.header("Content-Type").find("text/plain"), std::string::npos) << metrics.header("Content-Type");
  EXPECT_NE(metrics.body.find("# TYPE tessera_generations_published_total counter"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("\ntessera_generations_published_total 0\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("\ntessera_queued_updates 0\n"), std::string::npos) << metrics.body;
}

TEST_F(ServerApiTest, MissingOrUnknownTokenIsUnauthorized) {
  const std::string updates = std::string("/v1/models/") + kTask + "/updates";
  for (const std::string path : {"/v1/whoami", "/v1/models", "/v1/stats"}) {
    const Reply none = http().get(path);
    EXPECT_TRUE(isError(none, 401, "unauthorized")) << path;
    EXPECT_NE(none.header("Content-Type").find("application/json"), std::string::npos) << path;
    EXPECT_TRUE(isError(http().get(path, "tsk_" + std::string(64, '0')), 401, "unauthorized")) << path;
    EXPECT_TRUE(isError(http().withRawAuthorization(path, "Basic " + siteToken_), 401, "unauthorized")) << path;
    EXPECT_TRUE(isError(http().withRawAuthorization(path, "Bearer"), 401, "unauthorized")) << path;
  }
  // A token is not its hash, and one character off is another token.
  EXPECT_TRUE(isError(http().get("/v1/whoami", common::sha256Hex(siteToken_)), 401, "unauthorized"));
  std::string offByOne = siteToken_;
  offByOne.back() = offByOne.back() == 'a' ? 'b' : 'a';
  EXPECT_TRUE(isError(http().get("/v1/whoami", offByOne), 401, "unauthorized"));

  // An anonymous upload is refused before anything is stored.
  const auto blobs = storedBlobs(data_);
  EXPECT_TRUE(isError(http().post(updates, validUpdate()), 401, "unauthorized"));
  EXPECT_EQ(storedBlobs(data_), blobs);
  EXPECT_EQ(queuedUpdates(http()), 0);

  const json me = http().getJson("/v1/whoami", siteToken_);
  EXPECT_EQ(me, (json{{"name", "hospital-a"}, {"role", "site"}}));
  EXPECT_EQ(http().getJson("/v1/whoami", adminToken_), (json{{"name", "ops"}, {"role", "admin"}}));
}

TEST_F(ServerApiTest, SiteTokenOnAdminRoutesIsForbidden) {
  const std::string policyPath = std::string("/v1/models/") + kTask + "/policy";
  const json policyBefore = http().getJson(policyPath, adminToken_);
  ASSERT_EQ(policyBefore["round_size"], 3);

  model::Model other = makeModel("knee-ct", tinySpec(), 3);
  EXPECT_TRUE(isError(http().post("/v1/models", model::encodeModel(other), siteToken_), 403, "forbidden"));
  EXPECT_TRUE(isError(http().get("/v1/models/knee-ct", siteToken_), 404, "not_found")) << "a refused seed must not create the model";

  EXPECT_TRUE(isError(http().put(policyPath, R"({"round_size": 1})", siteToken_), 403, "forbidden"));
  EXPECT_TRUE(isError(http().get(policyPath, siteToken_), 403, "forbidden"));
  EXPECT_EQ(http().getJson(policyPath, adminToken_), policyBefore) << "a refused policy change must change nothing";
  EXPECT_TRUE(isError(http().get("/v1/stats", siteToken_), 403, "forbidden"));
  EXPECT_TRUE(isError(http().get(std::string("/v1/models/") + kTask + "/updates", siteToken_), 403, "forbidden"));

  // The admin may do all of it.
  const Reply seeded = http().post("/v1/models?strategy=dafne", model::encodeModel(other), adminToken_);
  ASSERT_EQ(seeded.status, 201) << seeded.describe();
  EXPECT_EQ(seeded.asJson()["task"], "knee-ct");
  EXPECT_EQ(seeded.asJson()["strategy"], "dafne");
  EXPECT_TRUE(isError(http().post("/v1/models", model::encodeModel(other), adminToken_), 409, "conflict"));
  const Reply changed = http().put(policyPath, R"({"round_size": 5})", adminToken_);
  ASSERT_EQ(changed.status, 200) << changed.describe();
  EXPECT_EQ(changed.asJson()["round_size"], 5);
  EXPECT_EQ(changed.asJson()["strategy"], "fedavg") << "a partial policy keeps the other fields";
  EXPECT_TRUE(isError(http().put(policyPath, R"({"round_size": 0})", adminToken_), 400, "bad_request"));
  EXPECT_TRUE(isError(http().put(policyPath, R"({"no_such_field": 1})", adminToken_), 400, "bad_request"));
  EXPECT_TRUE(isError(http().put(policyPath, "{not json", adminToken_), 400, "bad_request"));
  EXPECT_EQ(http().getJson(policyPath, adminToken_)["round_size"], 5);
  EXPECT_EQ(http().get("/v1/stats", adminToken_).status, 200);
}

TEST_F(ServerApiTest, AdminTokenCannotPushAnUpdate) {
  const auto blobs = storedBlobs(data_);
  EXPECT_TRUE(isError(http().post(std::string("/v1/models/") + kTask + "/updates", validUpdate(), adminToken_), 403, "forbidden"));
  EXPECT_EQ(storedBlobs(data_), blobs);
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_TRUE(isError(http().post("/v1/events", R"({"events":[{"type":"predict","task":"brain-mr"}]})", adminToken_,
                                  "application/json"),
                      403, "forbidden"));
}

TEST_F(ServerApiTest, TokensMadeByTheAdminCliWork) {
  // Sites registered with the command-line tool while the server runs (same SQLite file).
  const std::string token = runCli({"server", "admin", "add-site", "hospital-cli", "--role", "site", "--data", data_.string()});
  ASSERT_FALSE(token.empty());
  const std::string clean = token.substr(0, token.find_last_not_of("\r\n") + 1);
  EXPECT_EQ(http().getJson("/v1/whoami", clean), (json{{"name", "hospital-cli"}, {"role", "site"}}));
  const std::string admin = runCli({"server", "admin", "add-site", "ops-cli", "--role", "admin", "--data", data_.string()});
  const std::string cleanAdmin = admin.substr(0, admin.find_last_not_of("\r\n") + 1);
  EXPECT_EQ(http().getJson("/v1/whoami", cleanAdmin)["role"], "admin");
  EXPECT_EQ(http().get("/v1/stats", cleanAdmin).status, 200);
  EXPECT_TRUE(isError(http().get("/v1/stats", clean), 403, "forbidden"));
  // The name is taken now: the tool fails and prints no token.
  std::string again = "'";
  again.append(tesseraBinary()).append("' server admin add-site hospital-cli --data '").append(data_.string()).append("' >/dev/null 2>&1");
  EXPECT_NE(std::system(again.c_str()), 0);
}

// ---- update rejections ------------------------------------------------------------------------

TEST_F(ServerApiTest, UpdateFromAnotherNetworkIsShapeMismatch) {
  model::NetworkSpec wider = tinySpec();
  wider.baseFeatures = 8;
  const model::Model foreign = makeModel(kTask, wider, 5);
  expectRefused(encodeDelta(kTask, 0, randomDelta(foreign.weights, 1)), 422, "shape_mismatch");
  model::NetworkSpec deeper = tinySpec();
  deeper.depth = 3;
  const model::Model deep = makeModel(kTask, deeper, 5);
  expectRefused(encodeDelta(kTask, 0, randomDelta(deep.weights, 1)), 422, "shape_mismatch");

  // The control: an update of the right network from the same fixture is accepted.
  const Reply ok = http().post(std::string("/v1/models/") + kTask + "/updates", validUpdate(), siteToken_);
  ASSERT_EQ(ok.status, 202) << ok.describe();
  EXPECT_EQ(ok.asJson()["status"], "queued");
  EXPECT_EQ(queuedUpdates(http()), 1);
}

TEST_F(ServerApiTest, NonFiniteWeightsAreRefused) {
  // encodeWeights writes whatever floats it is given; the server must look at every value.
  common::WeightSet nan = randomDelta(base_.weights, 2);
  nan.back().values.back() = std::numeric_limits<float>::quiet_NaN();
  expectRefused(encodeDelta(kTask, 0, nan), 422, "non_finite");
  common::WeightSet inf = randomDelta(base_.weights, 3);
  inf.front().values.front() = -std::numeric_limits<float>::infinity();
  expectRefused(encodeDelta(kTask, 0, inf), 422, "non_finite");
}

TEST_F(ServerApiTest, UpdateOverThePolicySizeLimitIsTooLarge) {
  const Reply policy = http().put(std::string("/v1/models/") + kTask + "/policy", R"({"max_update_bytes": 2048})", adminToken_);
  ASSERT_EQ(policy.status, 200) << policy.describe();
  const std::string body = validUpdate();
  ASSERT_GT(body.size(), 2048u) << "the tiny model's update must be over the limit for this test to mean anything";
  expectRefused(body, 413, "too_large");
  // Without Content-Length the limit is enforced while the body streams in.
  expectRefused(body, 413, "too_large", /*chunked=*/true);

  ASSERT_EQ(http().put(std::string("/v1/models/") + kTask + "/policy", R"({"max_update_bytes": 1048576})", adminToken_).status, 200);
  const Reply ok = http().postChunked(std::string("/v1/models/") + kTask + "/updates", body, siteToken_);
  EXPECT_EQ(ok.status, 202) << ok.describe();
}

TEST_F(ServerApiTest, UpdateFromAnUnknownGenerationIsUnknownBase) {
  expectRefused(encodeDelta(kTask, 99, randomDelta(base_.weights, 4)), 422, "unknown_base");
  expectRefused(encodeDelta(kTask, 1, randomDelta(base_.weights, 4)), 422, "unknown_base");
}

TEST_F(ServerApiTest, UpdateFarOutsideTheNormBoundIsRefused) {
  common::WeightSet huge = base_.weights;
  for (auto& t : huge) {
    for (auto& v : t.values) v *= 100.0f;
  }
  expectRefused(encodeDelta(kTask, 0, huge), 422, "norm_too_large");
}

TEST_F(ServerApiTest, UpdateForAnotherTaskIsTaskMismatch) {
  expectRefused(encodeDelta("liver-ct", 0, randomDelta(base_.weights, 5)), 422, "task_mismatch");
}

TEST_F(ServerApiTest, GarbageAndTruncatedBodiesAreBadUpdates) {
  const std::string good = validUpdate();
  expectRefused("this is not an update at all, just some text that is long enough", 422, "bad_update");
  expectRefused(std::string(5000, '\xff'), 422, "bad_update");
  expectRefused("", 422, "bad_update");
  expectRefused(good.substr(0, good.size() - 100), 422, "bad_update");
  expectRefused(good.substr(0, 30), 422, "bad_update");
  expectRefused(good + "trailing", 422, "bad_update");
  // Well-formed, but one weight differs from what the header's checksum was made of (damage in
  // transit): the header of one update spliced onto the weights of another.
  common::WeightSet changed = randomDelta(base_.weights, 11);
  changed[0].values[0] += 0.001f;
  const std::string other = encodeDelta(kTask, base_.generation, changed);
  const size_t weightsBytes = common::encodeWeights(changed).size();
  ASSERT_EQ(other.size(), good.size());
  const std::string spliced = good.substr(0, good.size() - weightsBytes) + other.substr(other.size() - weightsBytes);
  ASSERT_NE(spliced, good);
  expectRefused(spliced, 422, "bad_update");
  EXPECT_EQ(http().post(std::string("/v1/models/") + kTask + "/updates", good, siteToken_).status, 202);
}

TEST_F(ServerApiTest, UpdateFromTooOldAGenerationIsStale) {
  ASSERT_EQ(http().put(std::string("/v1/models/") + kTask + "/policy", R"({"strategy": "dafne", "max_staleness": 0})", adminToken_)
                .status,
            200);
  const Reply first = http().post(std::string("/v1/models/") + kTask + "/updates", validUpdate(), siteToken_);
  ASSERT_EQ(first.status, 202) << first.describe();
  ASSERT_TRUE(waitForGeneration(http(), kTask, siteToken_, 1)) << server_->logTail();
  expectRefused(encodeDelta(kTask, 0, randomDelta(base_.weights, 6)), 422, "stale_base");
}

TEST_F(ServerApiTest, UnknownModelsGenerationsAndUpdatesAreNotFound) {
  EXPECT_TRUE(isError(http().get("/v1/models/nothing", siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http().get(std::string("/v1/models/") + kTask + "/generations/7", siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http().get(std::string("/v1/models/") + kTask + "/generations/7/model", siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http().get(std::string("/v1/models/") + kTask + "/generations/x", siteToken_), 400, "bad_request"));
  EXPECT_TRUE(isError(http().get("/v1/updates/12345", siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http().get("/v1/updates/123456789012345678901234567890", siteToken_), 404, "not_found"))
      << "an id no update can have is not a server fault";
  EXPECT_TRUE(isError(http().post("/v1/models/nothing/updates", validUpdate(), siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http().get("/v1/no/such/route", siteToken_), 404, "not_found"));
}

// ---- models -------------------------------------------------------------------------------------

TEST_F(ServerApiTest, ModelsAreFoundByFiltersCaseInsensitivelyAndByTask) {
  server_.reset();  // more models, registered while the server is down
  seed(data_, makeModel("knee-mr", tinySpec(), 2, 0, "MR", "KNEE", "cartilage"), "fedbn");
  seed(data_, makeModel("liver-ct", tinySpec(), 3, 4, "CT", "LIVER", "tumor"), "dafne");
  startServer();

  auto tasks = [&](const std::string& query) {
    const json list = http().getJson("/v1/models" + query, siteToken_);
    std::vector<std::string> out;
    for (const auto& m : list["models"]) out.push_back(m["task"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(tasks(""), (V{"brain-mr", "knee-mr", "liver-ct"}));
  EXPECT_EQ(tasks("?modality=mr"), (V{"brain-mr", "knee-mr"}));
  EXPECT_EQ(tasks("?modality=MR&anatomy=knee"), (V{"knee-mr"}));
  EXPECT_EQ(tasks("?anatomy=Liver&disease=TUMOR"), (V{"liver-ct"}));
  EXPECT_EQ(tasks("?disease=None"), (V{"brain-mr"}));
  EXPECT_EQ(tasks("?task=LIVER-CT"), (V{"liver-ct"}));
  EXPECT_EQ(tasks("?modality=m"), V{}) << "filters are exact, not prefixes";
  EXPECT_EQ(tasks("?modality=ct&anatomy=knee"), V{});

  const json liver = http().getJson("/v1/models/liver-ct", siteToken_);
  EXPECT_EQ(liver["task"], "liver-ct");
  EXPECT_EQ(liver["modality"], "CT");
  EXPECT_EQ(liver["anatomy"], "LIVER");
  EXPECT_EQ(liver["disease"], "tumor");
  EXPECT_EQ(liver["latest_generation"], 4) << "a seeded model keeps its file's generation";
  EXPECT_EQ(liver["parameters"], common::parameterCount(base_.weights));
  EXPECT_EQ(liver["strategy"], "dafne");
  EXPECT_EQ(liver["spec"]["base_features"], 4) << liver.dump();
  EXPECT_EQ(http().getJson("/v1/models/knee-mr", siteToken_)["strategy"], "fedbn");

  const json latest = http().getJson("/v1/models/liver-ct/generations/latest", siteToken_);
  EXPECT_EQ(latest["generation"], 4);
  EXPECT_EQ(latest["status"], "published");
  EXPECT_EQ(latest["strategy"], "seed");
  EXPECT_EQ(latest["merged_updates"], json::array());
  EXPECT_EQ(http().getJson("/v1/models/liver-ct/generations/4", siteToken_), latest);
  const json generations = http().getJson("/v1/models/liver-ct/generations", siteToken_);
  ASSERT_EQ(generations["generations"].size(), 1u);
  EXPECT_EQ(generations["generations"][0], latest);
}

TEST_F(ServerApiTest, DownloadedModelMatchesItsChecksumAndTheGeneration) {
  const std::string path = std::string("/v1/models/") + kTask + "/generations/0/model";
  const Reply r = http().get(path, siteToken_);
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.header("X-Tessera-Sha256"), common::sha256Hex(r.body));
  EXPECT_EQ(r.body, model::encodeModel(base_)) << "the served file is the seeded model, byte for byte";
  const model::Model m = model::decodeModel(r.body, "download");
  EXPECT_EQ(m.generation, 0);
  EXPECT_EQ(m.task.name, kTask);
  EXPECT_EQ(m.weightsSha256(), http().getJson(std::string("/v1/models/") + kTask + "/generations/0", siteToken_)["weights_sha256"]);
  EXPECT_EQ(maxAbsDifference(m.weights, base_.weights), 0.0);
  // Served again (from the server's checksum cache): the same bytes and header.
  const Reply again = http().get(std::string("/v1/models/") + kTask + "/generations/latest/model", siteToken_);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body, r.body);
  EXPECT_EQ(again.header("X-Tessera-Sha256"), r.header("X-Tessera-Sha256"));
  EXPECT_TRUE(isError(http().get(path), 401, "unauthorized"));
}

// ---- usage ---------------------------------------------------------------------------------------

TEST_F(ServerApiTest, EventsAreAggregatedInStats) {
  const std::string siteB = [&] {
    server_.reset();
    const std::string t = addSite(data_, "hospital-b", "site");
    startServer();
    return t;
  }();
  auto post = [&](const std::string& token, const json& events) {
    return http().post("/v1/events", json{{"events", events}}.dump(), token, "application/json");
  };
  const Reply a = post(siteToken_, json::array({{{"type", "predict"}, {"task", kTask}, {"seconds", 2.0}, {"dice", 0.8}},
                                                {{"type", "predict"}, {"task", kTask}, {"seconds", 4.0}},
                                                {{"type", "correct"}, {"task", kTask}, {"seconds", 30.0}}}));
  ASSERT_EQ(a.status, 202) << a.describe();
  EXPECT_EQ(a.asJson(), (json{{"accepted", 3}}));
  ASSERT_EQ(post(siteB, json::array({{{"type", "predict"}, {"task", kTask}, {"seconds", 6.0}, {"dice", 0.6}}})).status, 202);
  // One bad event refuses the whole batch.
  EXPECT_TRUE(isError(post(siteToken_, json::array({{{"type", "train"}, {"task", kTask}}, {{"type", "hack"}}})), 400, "bad_request"));
  EXPECT_TRUE(isError(http().post("/v1/events", R"({"nope": 1})", siteToken_, "application/json"), 400, "bad_request"));
  EXPECT_TRUE(isError(http().post("/v1/events", R"({"events":[)", siteToken_, "application/json"), 400, "bad_request"));
  EXPECT_TRUE(isError(post("", json::array()), 401, "unauthorized"));

  const json stats = http().getJson("/v1/stats", adminToken_);
  auto find = [&](const std::string& type, const std::string& site) -> json {
    for (const auto& e : stats["events"]) {
      if (e["type"] == type && e["site"] == site && e["task"] == kTask) return e;
    }
    return nullptr;
  };
  ASSERT_EQ(stats["events"].size(), 3u) << stats.dump(2);
  const json predictA = find("predict", "hospital-a");
  ASSERT_FALSE(predictA.is_null()) << stats.dump(2);
  EXPECT_EQ(predictA["count"], 2);
  EXPECT_DOUBLE_EQ(predictA["mean_seconds"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(predictA["mean_dice"].get<double>(), 0.8);
  const json correctA = find("correct", "hospital-a");
  EXPECT_EQ(correctA["count"], 1);
  EXPECT_DOUBLE_EQ(correctA["mean_seconds"].get<double>(), 30.0);
  EXPECT_TRUE(correctA["mean_dice"].is_null());
  const json predictB = find("predict", "hospital-b");
  EXPECT_EQ(predictB["count"], 1);
  EXPECT_DOUBLE_EQ(predictB["mean_dice"].get<double>(), 0.6);
  EXPECT_TRUE(find("train", "hospital-a").is_null()) << "the refused batch must not count";
  EXPECT_EQ(stats["sites"], 2);
  ASSERT_EQ(stats["models"].size(), 1u);
  EXPECT_EQ(stats["models"][0]["task"], kTask);
  EXPECT_EQ(stats["models"][0]["generations"], 1);
}

TEST_F(ServerApiTest, MetricsCountRequestsUploadsAndRejections) {
  const std::string updates = std::string("/v1/models/") + kTask + "/updates";
  ASSERT_EQ(http().post(updates, validUpdate(), siteToken_).status, 202);
  ASSERT_EQ(http().post(updates, "garbage", siteToken_).status, 422);
  const Reply m = http().get("/metrics");
  ASSERT_EQ(m.status, 200);
  auto value = [&](const std::string& name) {
    const auto at = m.body.find("\n" + name + " ");
    if (at == std::string::npos) return -1.0;
    return std::stod(m.body.substr(at + name.size() + 2));
  };
  EXPECT_EQ(value("tessera_updates_accepted_total"), 1);
  EXPECT_EQ(value("tessera_updates_rejected_total"), 1);
  EXPECT_EQ(value("tessera_queued_updates"), 1);
  EXPECT_GE(value("tessera_http_requests_total"), 2);
  EXPECT_GE(value("tessera_http_errors_total"), 1);
  EXPECT_GT(value("tessera_upload_bytes_total"), 0);
  EXPECT_EQ(value("tessera_generations_published_total"), 0);
}

}  // namespace
}  // namespace tessera::servertest
