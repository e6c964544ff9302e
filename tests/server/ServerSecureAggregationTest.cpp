// Secure aggregation through the real `tessera server`: sites (the client library's
// takePartInSecureRound, one thread each) run the protocol over HTTP, and the server publishes
// the fedavg of the round's updates without ever holding one of them.
#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "ServerHarness.h"
#include "tessera/client/SecurePush.h"
#include "tessera/client/SiteKeys.h"
#include "tessera/common/Ed25519.h"
#include "tessera/common/WeightRecords.h"
#include "tessera/federation/FixedPoint.h"
#include "tessera/federation/SecureAggregation.h"

namespace tessera::servertest {
namespace {

constexpr const char* kTask = "brain";

struct Federation {
  TempDir dir;
  fs::path data;
  model::Model base;
  std::map<std::string, std::string> tokens;
  std::string admin;
  std::unique_ptr<ServerProcess> server;

  // Sites in `keyed` get an Ed25519 key (home/site-key, registered with the server): their
  // protocol messages must then be signed.
  explicit Federation(const json& policy, const std::set<std::string>& keyed = {}, const std::vector<std::string>& sites = {"a", "b", "c"}) {
    data = dir.path() / "data";
    base = makeModel(kTask);
    seed(data, base, "fedavg");
    for (const auto& s : sites) tokens[s] = addSite(data, "site-" + s);
    for (const auto& s : keyed) {
      const auto key = common::SigningKey::generate();
      fs::create_directories(config(s).home);
      key.save(client::siteKeyFile(config(s).home));
      server::Registry(data).setSitePublicKey("site-" + s, key.publicKeyHex());
    }
    admin = addSite(data, "operator", "admin");
    setPolicy(data, kTask, policy);
    server = std::make_unique<ServerProcess>(data);
  }

  client::ClientConfig config(const std::string& site) const {
    client::ClientConfig c;
    c.server = server ? "http://127.0.0.1:" + std::to_string(server->port()) : "";
    c.token = tokens.at(site);
    c.task = kTask;
    c.home = dir.path() / ("home-" + site);
    return c;
  }

  // Every site in its own thread; a site's error is kept as its result's "error".
  std::map<std::string, json> runRound(const std::map<std::string, common::WeightSet>& deltas,
                                       const std::map<std::string, std::string>& leaveAfter = {}) {
    std::map<std::string, json> results;
    std::map<std::string, std::ostringstream> logs;
    std::mutex mutex;
    std::vector<std::thread> threads;
    for (const auto& [site, delta] : deltas) {
      threads.emplace_back([&, site = site, delta = &delta] {
        client::SecureRoundOptions options;
        options.pollSeconds = 0.05;
        if (leaveAfter.count(site)) options.leaveAfter = leaveAfter.at(site);
        std::ostringstream log;
        json result;
        try {
          result = client::takePartInSecureRound(config(site), kTask, 0, *delta, log, options);
        } catch (const Error& e) {
          result = {{"error", e.what()}, {"code", std::string(e.codeName())}};
        }
        const std::lock_guard lock(mutex);
        results[site] = result;
        logs[site] << log.str();
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& [site, log] : logs) std::printf("--- site %s\n%s", site.c_str(), log.str().c_str());
    return results;
  }

  common::WeightSet generationWeights(int64_t generation) const {
    const Reply r = server->http().get("/v1/models/" + std::string(kTask) + "/generations/" + std::to_string(generation) + "/model", admin);
    EXPECT_EQ(r.status, 200) << r.describe();
    return model::decodeModel(r.body, "generation").weights;
  }
};

common::WeightSet plus(const common::WeightSet& base, const std::vector<const common::WeightSet*>& deltas) {
  common::WeightSet out = base;
  for (size_t t = 0; t < out.size(); ++t) {
    for (size_t k = 0; k < out[t].values.size(); ++k) {
      double mean = 0;
      for (const auto* d : deltas) mean += (*d)[t].values[k];
      out[t].values[k] = static_cast<float>(out[t].values[k] + mean / deltas.size());
    }
  }
  return out;
}

// Whether `haystack` holds `needle` anywhere.
bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// Every regular file of the data folder, blobs, registry and round records alike.
std::vector<std::string> everyStoredFile(const fs::path& data) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(data)) {
    if (!e.is_regular_file()) continue;
    try {
      out.push_back(common::readFile(e.path()));
    } catch (const Error&) {
      // a temporary file renamed away while the folder was listed
    }
  }
  return out;
}

std::string rawFloats(const common::WeightTensor& t) {
  return std::string(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
}

// The largest tensor (the one whose bytes are least likely to match by chance).
size_t largestTensor(const common::WeightSet& w) {
  size_t best = 0;
  for (size_t i = 1; i < w.size(); ++i) {
    if (w[i].values.size() > w[best].values.size()) best = i;
  }
  return best;
}

TEST(ServerSecureAggregation, ThreeSitesPublishTheFedAvgOfTheirUpdatesAndNoSingleUpdateIsStored) {
  Federation f({{"secure_aggregation", true}, {"round_size", 3}, {"secagg_step_seconds", 30}}, {"a"}, {"a", "b", "c", "d"});  // a signs
  const std::map<std::string, common::WeightSet> deltas{{"a", randomDelta(f.base.weights, 1)},
                                                        {"b", randomDelta(f.base.weights, 2)},
                                                        {"c", randomDelta(f.base.weights, 3)}};
  const auto start = Clock::now();
  const auto results = f.runRound(deltas);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  RecordProperty("secagg_round_seconds", std::to_string(seconds));
  std::printf("3-site secure-aggregation round over HTTP: %.3f s (%lld parameters)\n", seconds,
              static_cast<long long>(common::parameterCount(f.base.weights)));
  for (const auto& [site, r] : results) {
    ASSERT_EQ(r.value("state", ""), "published") << site << ": " << r.dump() << "\n" << f.server->logTail();
    EXPECT_EQ(r["generation"], 1);
  }
  const auto published = f.generationWeights(1);
  const auto expected = plus(f.base.weights, {&deltas.at("a"), &deltas.at("b"), &deltas.at("c")});
  // Fixed point with R = 1 and 3 sites: a step of 1.4e-9; float32 rounding of the weights dominates.
  EXPECT_LT(maxAbsDifference(published, expected), 1e-6);
  EXPECT_GT(maxAbsDifference(published, f.base.weights), 1e-4);  // it did move

  const json g = f.server->http().getJson("/v1/models/brain/generations/1", f.admin);
  EXPECT_TRUE(g["merged_updates"].empty());
  EXPECT_EQ(g["validation"]["secure_aggregation"]["sites"].size(), 3u) << g.dump();
  EXPECT_TRUE(f.server->http().getJson("/v1/models/brain/updates", f.admin)["updates"].empty());

  // For comparison (printed, not checked): the same round as three plain uploads and their merge.
  const Http http = f.server->http();
  ASSERT_EQ(http.post("/v1/models?strategy=fedavg", model::encodeModel(makeModel("plain")), f.admin).status, 201);
  const auto plainStart = Clock::now();
  std::vector<std::thread> uploads;
  for (const std::string site : {"b", "c", "d"}) {  // d: a fourth site, unsigned like b and c
    uploads.emplace_back([&, site] {
      const Reply r = http.post("/v1/models/plain/updates", encodeDelta("plain", 0, randomDelta(f.base.weights, 100 + site[0])), f.tokens.at(site));
      EXPECT_EQ(r.status, 202) << r.describe();
    });
  }
  for (auto& t : uploads) t.join();
  const bool merged = waitForGeneration(http, "plain", f.admin, 1, 30).has_value();
  std::printf("the same with plain uploads: %s in %.3f s\n", merged ? "merged" : "not merged",
              std::chrono::duration<double>(Clock::now() - plainStart).count());

  // No file in the data folder holds a site's delta, as float32 or as its fixed-point encoding.
  EXPECT_EQ(f.server->stop(), 0);  // a quiet folder: nothing is being written while it is read
  const federation::FixedPointCodec codec(1.0, 3);
  const auto files = everyStoredFile(f.data);
  ASSERT_FALSE(files.empty());
  for (const auto& [site, delta] : deltas) {
    const auto& t = delta[largestTensor(delta)];
    const std::string floats = rawFloats(t);
    const auto encoded = codec.encode(t.values);
    const std::string fixed(reinterpret_cast<const char*>(encoded.data()), encoded.size() * 4);
    for (const auto& bytes : files) {
      EXPECT_FALSE(contains(bytes, floats)) << "site " << site << "'s delta is stored";
      EXPECT_FALSE(contains(bytes, fixed)) << "site " << site << "'s encoded delta is stored";
    }
  }
}

TEST(ServerSecureAggregation, ASiteDroppingAfterSharingKeysLeavesTheOtherTwoToPublish) {
  Federation f({{"secure_aggregation", true}, {"round_size", 3}, {"secagg_step_seconds", 5}});  // t = 2; a step waits 5 s for a site that is gone
  const std::map<std::string, common::WeightSet> deltas{{"a", randomDelta(f.base.weights, 11)},
                                                        {"b", randomDelta(f.base.weights, 12)},
                                                        {"c", randomDelta(f.base.weights, 13)}};
  const auto results = f.runRound(deltas, {{"c", "shares"}});
  EXPECT_EQ(results.at("c").value("left_after", ""), "shares");
  for (const std::string site : {"a", "b"}) {
    ASSERT_EQ(results.at(site).value("state", ""), "published") << results.at(site).dump() << "\n" << f.server->logTail();
    // Survivors are a set; their order is the order the sites joined, which thread scheduling decides.
    auto survivors = results.at(site)["survivors"].get<std::vector<std::string>>();
    std::sort(survivors.begin(), survivors.end());
    EXPECT_EQ(survivors, (std::vector<std::string>{"site-a", "site-b"}));
  }
  const auto expected = plus(f.base.weights, {&deltas.at("a"), &deltas.at("b")});
  EXPECT_LT(maxAbsDifference(f.generationWeights(1), expected), 1e-6);
  const json g = f.server->http().getJson("/v1/models/brain/generations/1", f.admin);
  EXPECT_EQ(g["validation"]["secure_aggregation"]["dropped"], json({"site-c"}));
}

TEST(ServerSecureAggregation, CentralDpClipsAtTheSitesAndNoisesTheMeanOnce) {
  // z = 0 makes the result exact: the mean of the three deltas, each clipped to L2 norm 0.05 by its
  // site (their norms are about 0.24), with the codec's range at the clip.
  Federation f({{"secure_aggregation", true}, {"round_size", 3}, {"dp", {{"mode", "central"}, {"clip", 0.05}, {"noise_multiplier", 0}}}});
  std::map<std::string, common::WeightSet> deltas, clipped;
  for (const std::string site : {"a", "b", "c"}) {
    deltas[site] = randomDelta(f.base.weights, 31 + site[0]);
    double norm = 0;
    for (const auto& t : deltas[site]) {
      for (const float v : t.values) norm += double(v) * v;
    }
    norm = std::sqrt(norm);
    ASSERT_GT(norm, 0.05);
    clipped[site] = deltas[site];
    for (auto& t : clipped[site]) {
      for (float& v : t.values) v = static_cast<float>(v * (0.05 / norm));
    }
  }
  const auto results = f.runRound(deltas);
  ASSERT_EQ(results.at("a").value("state", ""), "published") << results.at("a").dump() << "\n" << f.server->logTail();
  const auto expected = plus(f.base.weights, {&clipped.at("a"), &clipped.at("b"), &clipped.at("c")});
  EXPECT_LT(maxAbsDifference(f.generationWeights(1), expected), 1e-6);
  const json g = f.server->http().getJson("/v1/models/brain/generations/1", f.admin);
  EXPECT_EQ(g["validation"]["secure_aggregation"]["central_dp"]["clip"], 0.05) << g.dump();
}

TEST(ServerSecureAggregation, FedAdamOnTheSecureSumTakesTheSameStepAsOnPlainUploads) {
  // The server optimizer's pseudo-gradient is the round's mean delta, which the secure sum gives.
  Federation f({{"strategy", "fedadam"}, {"secure_aggregation", true}, {"round_size", 3}});
  const std::map<std::string, common::WeightSet> deltas{{"a", randomDelta(f.base.weights, 41)},
                                                        {"b", randomDelta(f.base.weights, 42)},
                                                        {"c", randomDelta(f.base.weights, 43)}};
  const auto results = f.runRound(deltas);
  ASSERT_EQ(results.at("a").value("state", ""), "published") << results.at("a").dump() << "\n" << f.server->logTail();
  // The same three deltas (equal sample counts) as plain uploads to a twin task.
  const Http http = f.server->http();
  ASSERT_EQ(http.post("/v1/models?strategy=fedadam", model::encodeModel(makeModel("twin")), f.admin).status, 201);
  for (const auto& [site, delta] : deltas) {
    const Reply r = http.post("/v1/models/twin/updates", encodeDelta("twin", 0, delta), f.tokens.at(site));
    ASSERT_EQ(r.status, 202) << r.describe();
  }
  ASSERT_TRUE(waitForGeneration(http, "twin", f.admin, 1, 30).has_value()) << f.server->logTail();
  const Reply twin = http.get("/v1/models/twin/generations/1/model", f.admin);
  ASSERT_EQ(twin.status, 200);
  const auto secure = f.generationWeights(1);
  EXPECT_LT(maxAbsDifference(secure, model::decodeModel(twin.body, "twin").weights), 1e-6);
  EXPECT_GT(maxAbsDifference(secure, f.base.weights), 1e-4);
}

TEST(ServerSecureAggregation, TooFewSurvivorsAbortTheRoundAndNothingIsPublished) {
  Federation f({{"secure_aggregation", true}, {"round_size", 3}, {"secagg_threshold", 3}, {"secagg_step_seconds", 5}});
  const std::map<std::string, common::WeightSet> deltas{{"a", randomDelta(f.base.weights, 21)},
                                                        {"b", randomDelta(f.base.weights, 22)},
                                                        {"c", randomDelta(f.base.weights, 23)}};
  const auto results = f.runRound(deltas, {{"c", "shares"}});
  for (const std::string site : {"a", "b"}) {
    EXPECT_EQ(results.at(site).value("code", ""), "rejected") << results.at(site).dump();
    EXPECT_NE(results.at(site).value("error", "").find("abort"), std::string::npos) << results.at(site).dump();
  }
  const json status = f.server->http().getJson("/v1/models/brain/secagg/status", f.admin);
  EXPECT_EQ(status["state"], "aborted") << status.dump();
  EXPECT_NE(status["reason"].get<std::string>().find("threshold 3"), std::string::npos) << status.dump();
  EXPECT_EQ(latestGeneration(f.server->http(), kTask, f.admin), 0);
}

TEST(ServerSecureAggregation, StrategiesThatNeedSingleUpdatesAreRefusedAndPlainUploadsToo) {
  Federation f({{"secure_aggregation", true}, {"round_size", 3}});
  const Http http = f.server->http();
  for (const std::string strategy : {"median", "trimmed-mean", "dafne"}) {
    const Reply r = http.put("/v1/models/brain/policy", json{{"strategy", strategy}}.dump(), f.admin);
    EXPECT_TRUE(isError(r, 400, "bad_request")) << strategy;
    EXPECT_NE(r.body.find(strategy), std::string::npos) << r.body;
  }
  EXPECT_TRUE(isError(http.put("/v1/models/brain/policy", json{{"site_quorum", 2}}.dump(), f.admin), 400, "bad_request"));
  // A plain upload would hand the server one site's update.
  const Reply upload = http.post("/v1/models/brain/updates", encodeDelta(kTask, 0, randomDelta(f.base.weights, 5)), f.tokens.at("a"));
  EXPECT_TRUE(isError(upload, 409, "conflict")) << upload.describe();
  // The other way round: switching secure aggregation on under a median policy.
  EXPECT_EQ(http.put("/v1/models/brain/policy", json{{"secure_aggregation", false}, {"strategy", "median"}}.dump(), f.admin).status, 200);
  const Reply on = http.put("/v1/models/brain/policy", json{{"secure_aggregation", true}}.dump(), f.admin);
  EXPECT_TRUE(isError(on, 400, "bad_request"));
  EXPECT_NE(on.body.find("median"), std::string::npos) << on.body;
}

TEST(ServerSecureAggregation, StepsOutOfOrderAre409AndASiteSendsOnlyAsItself) {
  Federation f({{"secure_aggregation", true}, {"round_size", 3}, {"secagg_step_seconds", 30}});
  const Http http = f.server->http();
  const Reply joined = http.post("/v1/models/brain/secagg/join", json{{"base_generation", 0}}.dump(), f.tokens.at("a"), "application/json");
  ASSERT_EQ(joined.status, 200) << joined.describe();
  const json place = joined.asJson();
  const std::string round = place["round"];
  federation::SecAggConfig config;
  for (size_t i = 0; i < config.round.size(); ++i) config.round[i] = static_cast<uint8_t>(std::stoi(round.substr(2 * i, 2), nullptr, 16));
  config.siteCount = 3;
  config.threshold = place["threshold"];
  config.length = place["length"];
  federation::SecAggClient a(config, place["site_id"]);
  const std::string keys = a.advertiseKeys();
  // A masked input before the key step closed: out of order.
  EXPECT_TRUE(isError(http.post("/v1/models/brain/secagg/masked-input?round=" + round, keys, f.tokens.at("a")), 409, "conflict"));
  // The key list before it exists: the step is still open.
  const Reply early = http.get("/v1/models/brain/secagg/keys?round=" + round, f.tokens.at("a"));
  EXPECT_EQ(early.status, 202) << early.describe();
  // Site b may not post a's message, before or after joining.
  EXPECT_TRUE(isError(http.post("/v1/models/brain/secagg/advertise-keys?round=" + round, keys, f.tokens.at("b")), 403, "forbidden"));
  ASSERT_EQ(http.post("/v1/models/brain/secagg/join", json{{"base_generation", 0}}.dump(), f.tokens.at("b"), "application/json").status, 200);
  EXPECT_TRUE(isError(http.post("/v1/models/brain/secagg/advertise-keys?round=" + round, keys, f.tokens.at("b")), 403, "forbidden"));
  EXPECT_EQ(http.post("/v1/models/brain/secagg/advertise-keys?round=" + round, keys, f.tokens.at("a")).status, 200);
  EXPECT_TRUE(isError(http.post("/v1/models/brain/secagg/advertise-keys?round=" + round, keys, f.tokens.at("a")), 409, "replay"));
  // A join on an older generation than the round's is refused.
  EXPECT_TRUE(isError(http.post("/v1/models/brain/secagg/join", json{{"base_generation", 7}}.dump(), f.tokens.at("c"), "application/json"), 422,
                      "stale_base"));
  EXPECT_TRUE(isError(http.get("/v1/models/brain/secagg/keys?round=../../etc", f.tokens.at("a")), 400, "bad_request"));

  // A restart ends the open round: nothing of it survives but its record, which says aborted.
  f.server->kill();
  f.server = std::make_unique<ServerProcess>(f.data);
  const json status = f.server->http().getJson("/v1/models/brain/secagg/status?round=" + round, f.admin);
  EXPECT_EQ(status["state"], "aborted") << status.dump();
  EXPECT_TRUE(isError(f.server->http().get("/v1/models/brain/secagg/keys?round=" + round, f.tokens.at("a")), 409, "conflict"));
  EXPECT_EQ(latestGeneration(f.server->http(), kTask, f.admin), 0);
}

}  // namespace
}  // namespace tessera::servertest
