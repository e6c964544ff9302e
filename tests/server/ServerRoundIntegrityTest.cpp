// A single site must not be able to spoil a round, against the real `tessera server` process:
// absurd sample counts (which overflowed the merge's weights), the same update pushed again (a
// retry, or a replay to fill the round), a second update while the first is queued, junk bodies
// written to disk in full before any check, too many uploads at once, and usage events out of
// every range. Each test also shows that honest traffic still goes through.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "RawConnection.h"
#include "ServerHarness.h"
#include "tessera/common/Container.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";
const std::string kUpdates = "/v1/models/" + kTask + "/updates";

std::string postHead(const std::string& token, uint64_t contentLength) {
  return "POST " + kUpdates + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
         "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(contentLength) + "\r\n\r\n";
}

// base + Σ cᵢ·deltaᵢ in double, like the server.
common::WeightSet combine(const common::WeightSet& base, const std::vector<std::pair<double, const common::WeightSet*>>& terms) {
  common::WeightSet out = base;
  for (size_t t = 0; t < out.size(); ++t) {
    for (size_t k = 0; k < out[t].values.size(); ++k) {
      double v = double(base[t].values[k]);
      for (const auto& [c, w] : terms) v += c * double((*w)[t].values[k]);
      out[t].values[k] = static_cast<float>(v);
    }
  }
  return out;
}

std::string encodeKeyed(const common::WeightSet& delta, const std::string& key, double samples = 10) {
  federation::ModelUpdate u;
  u.header.task = kTask;
  u.header.baseGeneration = 0;
  u.header.kind = federation::UpdateKind::Delta;
  u.header.samples = samples;
  u.header.idempotencyKey = key;
  u.weights = delta;
  return federation::encodeUpdate(u);
}

// Bytes in the data folder's temporary upload space right now.
uint64_t temporaryBytes(const fs::path& data) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(data / "blobs" / "tmp", ec), end; !ec && it != end; it.increment(ec)) {
    const auto size = fs::file_size(it->path(), ec);
    if (!ec) total += size;
    ec.clear();
  }
  return total;
}

class ServerRoundIntegrityTest : public ::testing::Test {
 protected:
  void start(int sites, const json& policy) {
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask);
    seed(data_, base_, "fedavg");
    server::Registry registry(data_);
    for (int i = 0; i < sites; ++i) siteTokens_.push_back(registry.addSite("site-" + std::to_string(i), "site").second);
    adminToken_ = registry.addSite("ops", "admin").second;
    server::updatePolicy(registry, kTask, policy);
    server_ = std::make_unique<ServerProcess>(data_);
  }
  Http http() const { return server_->http(); }
  Reply push(int site, const std::string& body) const { return http().post(kUpdates, body, siteTokens_.at(site)); }
  int64_t accepted(const Reply& r) const {
    EXPECT_EQ(r.status, 202) << r.describe() << "\n" << server_->logTail(5);
    return r.status == 202 ? r.asJson()["update"].get<int64_t>() : -1;
  }
  size_t updateCount() const { return http().getJson(kUpdates, adminToken_)["updates"].size(); }
  void expectAlive() const {
    const Reply health = http().get("/healthz");
    EXPECT_EQ(health.status, 200) << "the server died: " << health.describe() << "\n" << server_->logTail();
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::vector<std::string> siteTokens_;
  std::string adminToken_;
  std::unique_ptr<ServerProcess> server_;
};

// ---- sample counts ------------------------------------------------------------------------------

// Two updates claiming 1e308 samples made the round's Σn infinite and every weight 0: the honest
// site's update was "merged" and changed nothing. They are refused at upload (their header is
// enough), and a round of honest updates still moves the weights by exactly n_i / Σn of each.
TEST_F(ServerRoundIntegrityTest, AbsurdSampleCountsAreRefusedAndTheRoundStillCounts) {
  start(4, {{"round_size", 2}, {"round_seconds", 3600}});
  EXPECT_EQ(http().getJson("/v1/models/" + kTask + "/policy", adminToken_)["max_samples"], 1e6);
  const auto blobs = storedBlobs(data_);
  for (int site = 0; site < 2; ++site) {
    for (const double samples : {1e308, 1.7e308, 1e6 + 1}) {
      const Reply r = push(site, encodeDelta(kTask, 0, randomDelta(base_.weights, 10 + site, 0.02f), samples));
      EXPECT_TRUE(isError(r, 422, "bad_update")) << samples;
      EXPECT_NE(r.body.find("samples"), std::string::npos) << r.body;
      EXPECT_NE(r.body.find("max_samples"), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_EQ(updateCount(), 0u) << "a refused update must not be recorded";
  EXPECT_EQ(storedBlobs(data_), blobs) << "a refused update must not be stored";
  EXPECT_EQ(temporaryFiles(data_), 0u);

  // Honest sites: one at the policy's bound, one small. base + Σ (nᵢ/Σn) Δᵢ, and it moved.
  const common::WeightSet d2 = randomDelta(base_.weights, 22, 0.02f);
  const common::WeightSet d3 = randomDelta(base_.weights, 23, 0.02f);
  const double n2 = 1e6, n3 = 250000;
  const int64_t u2 = accepted(push(2, encodeDelta(kTask, 0, d2, n2)));
  const int64_t u3 = accepted(push(3, encodeDelta(kTask, 0, d3, n3)));
  const auto g = waitForGeneration(http(), kTask, siteTokens_[2], 1);
  ASSERT_TRUE(g) << server_->logTail();
  ASSERT_TRUE((*g)["validation"].is_object()) << g->dump();
  const json contributions = (*g)["validation"]["contributions"];
  ASSERT_EQ(contributions.size(), 2u) << g->dump();
  EXPECT_EQ(contributions[0]["update"], u2);
  EXPECT_EQ(contributions[1]["update"], u3);
  EXPECT_NEAR(contributions[0]["weight"].get<double>(), 0.8, 1e-12);
  EXPECT_NEAR(contributions[1]["weight"].get<double>(), 0.2, 1e-12);
  const model::Model merged = downloadModel(http(), kTask, 1, siteTokens_[3]);
  EXPECT_LT(maxAbsDifference(merged.weights, combine(base_.weights, {{0.8, &d2}, {0.2, &d3}})), 1e-5);
  EXPECT_GT(maxAbsDifference(merged.weights, base_.weights), 1e-3) << "the merged round must change the weights";
}

TEST_F(ServerRoundIntegrityTest, TheSampleBoundIsPolicy) {
  start(2, {{"round_size", 2}, {"round_seconds", 3600}, {"max_samples", 1e9}});
  accepted(push(0, encodeDelta(kTask, 0, randomDelta(base_.weights, 1), 1e9)));
  EXPECT_TRUE(isError(push(1, encodeDelta(kTask, 0, randomDelta(base_.weights, 2), 2e9)), 422, "bad_update"));
  EXPECT_TRUE(isError(http().put("/v1/models/" + kTask + "/policy", R"({"max_samples": 1e308})", adminToken_), 400, "bad_request"));
  EXPECT_TRUE(isError(http().put("/v1/models/" + kTask + "/policy", R"({"max_samples": "lots"})", adminToken_), 400, "bad_request"));
}

// ---- the same update again ----------------------------------------------------------------------

// The same bytes pushed three times filled a round of three on their own. They are one update:
// the repeats answer 200 with the first id and "duplicate": true, and the round waits for others.
TEST_F(ServerRoundIntegrityTest, TheSameBytesPushedThreeTimesAreOneUpdate) {
  start(3, {{"round_size", 3}, {"round_seconds", 3600}});
  const common::WeightSet d0 = randomDelta(base_.weights, 30, 0.02f);
  const std::string body = encodeDelta(kTask, 0, d0, 10);
  const int64_t first = accepted(push(0, body));
  for (int i = 0; i < 2; ++i) {
    const Reply again = push(0, body);
    ASSERT_EQ(again.status, 200) << again.describe();
    EXPECT_EQ(again.asJson()["update"], first);
    EXPECT_EQ(again.asJson()["duplicate"], true);
    EXPECT_EQ(again.asJson()["status"], "queued");
  }
  EXPECT_EQ(queuedUpdates(http()), 1);
  EXPECT_EQ(updateCount(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(latestGeneration(http(), kTask, siteTokens_[0]), 0) << "one site's repeats must not fill the round";
  EXPECT_EQ(temporaryFiles(data_), 0u);

  // Two other sites complete the round; the repeated update counts once.
  const common::WeightSet d1 = randomDelta(base_.weights, 31, 0.02f);
  const common::WeightSet d2 = randomDelta(base_.weights, 32, 0.02f);
  const int64_t second = accepted(push(1, encodeDelta(kTask, 0, d1, 10)));
  const int64_t third = accepted(push(2, encodeDelta(kTask, 0, d2, 20)));
  const auto g = waitForGeneration(http(), kTask, siteTokens_[0], 1);
  ASSERT_TRUE(g) << server_->logTail();
  std::vector<int64_t> merged;
  for (const auto& id : (*g)["merged_updates"]) merged.push_back(id.get<int64_t>());
  EXPECT_EQ(merged, (std::vector<int64_t>{first, second, third}));
  const model::Model m = downloadModel(http(), kTask, 1, siteTokens_[0]);
  EXPECT_LT(maxAbsDifference(m.weights, combine(base_.weights, {{0.25, &d0}, {0.25, &d1}, {0.5, &d2}})), 1e-5);

  // After the merge the same bytes are still the same update: merged, not queued again.
  const Reply late = push(0, body);
  ASSERT_EQ(late.status, 200) << late.describe();
  EXPECT_EQ(late.asJson()["update"], first);
  EXPECT_EQ(late.asJson()["status"], "merged");
  EXPECT_EQ(queuedUpdates(http()), 0);
}

// A client retry after a lost answer may rebuild its update; the idempotency key in the header
// makes it the same update: the same key from the same site answers with the first id, whatever
// the bytes. Another site's key is its own.
TEST_F(ServerRoundIntegrityTest, TheSameIdempotencyKeyIsTheFirstUpdate) {
  start(2, {{"round_size", 3}, {"round_seconds", 3600}});
  const int64_t first = accepted(push(0, encodeKeyed(randomDelta(base_.weights, 40), "push-0123abcd")));
  const Reply retry = push(0, encodeKeyed(randomDelta(base_.weights, 41), "push-0123abcd", 12));
  ASSERT_EQ(retry.status, 200) << retry.describe();
  EXPECT_EQ(retry.asJson()["update"], first);
  EXPECT_EQ(retry.asJson()["duplicate"], true);
  EXPECT_EQ(queuedUpdates(http()), 1);
  const json u = http().getJson("/v1/updates/" + std::to_string(first), siteTokens_[0]);
  EXPECT_DOUBLE_EQ(u["samples"].get<double>(), 10) << "the first update is the one kept";

  const int64_t other = accepted(push(1, encodeKeyed(randomDelta(base_.weights, 42), "push-0123abcd")));
  EXPECT_NE(other, first);
  EXPECT_EQ(queuedUpdates(http()), 2);
  // A key that is not one is refused like any malformed header field.
  EXPECT_TRUE(isError(push(1, encodeKeyed(randomDelta(base_.weights, 43), std::string(200, 'k'))), 422, "bad_update"));
  EXPECT_TRUE(isError(push(1, encodeKeyed(randomDelta(base_.weights, 44), "white space")), 422, "bad_update"));
}

// A site has one queued update per round (policy `updates_per_site_per_round`): a second,
// different one while the first waits is a conflict, stored nowhere; once the round is merged
// the site may push again.
TEST_F(ServerRoundIntegrityTest, ASecondUpdateFromOneSiteInARoundIsAConflict) {
  start(2, {{"round_size", 2}, {"round_seconds", 3600}});
  accepted(push(0, encodeDelta(kTask, 0, randomDelta(base_.weights, 50), 10)));
  const auto blobs = storedBlobs(data_);
  const Reply second = push(0, encodeDelta(kTask, 0, randomDelta(base_.weights, 51), 10));
  EXPECT_TRUE(isError(second, 409, "conflict"));
  EXPECT_NE(second.body.find("updates_per_site_per_round"), std::string::npos) << second.body;
  EXPECT_TRUE(isError(http().postChunked(kUpdates, encodeDelta(kTask, 0, randomDelta(base_.weights, 52), 10), siteTokens_[0]), 409,
                      "conflict"))
      << "without Content-Length too";
  EXPECT_EQ(queuedUpdates(http()), 1);
  EXPECT_EQ(updateCount(), 1u);
  EXPECT_EQ(storedBlobs(data_), blobs) << "the refused update must not be stored";
  EXPECT_EQ(temporaryFiles(data_), 0u);

  accepted(push(1, encodeDelta(kTask, 0, randomDelta(base_.weights, 53), 10)));
  ASSERT_TRUE(waitForGeneration(http(), kTask, siteTokens_[0], 1)) << server_->logTail();
  accepted(push(0, encodeDelta(kTask, 1, randomDelta(base_.weights, 54), 10)));

  // The policy may allow more.
  ASSERT_EQ(http().put("/v1/models/" + kTask + "/policy", R"({"updates_per_site_per_round": 2, "round_size": 5})", adminToken_).status,
            200);
  accepted(push(0, encodeDelta(kTask, 1, randomDelta(base_.weights, 55), 10)));
  EXPECT_TRUE(isError(push(0, encodeDelta(kTask, 1, randomDelta(base_.weights, 56), 10)), 409, "conflict"));
}

// ---- bodies checked from their first bytes ---------------------------------------------------------

// 100 MiB of junk behind a valid token was streamed to DATA/blobs/tmp in full before the first
// check. The header is read into memory and checked first: nothing reaches the disk, and the
// answer does not wait for the rest of the body.
TEST_F(ServerRoundIntegrityTest, AJunkBodyIsRefusedFromItsFirstBytes) {
  start(1, json::object());
  constexpr uint64_t kJunk = uint64_t{100} << 20;
  {
    // Only the first bytes are sent; the answer comes without the other 100 MiB (and well before
    // the server's 5 s read timeout, which is what an answer after reading would need).
    RawConnection c(server_->port());
    ASSERT_TRUE(c.send(postHead(siteTokens_[0], kJunk) + std::string(64, 'x')));
    const auto sent = Clock::now();
    const std::string answer = c.receive(4);
    const double seconds = std::chrono::duration<double>(Clock::now() - sent).count();
    EXPECT_EQ(answer.rfind("HTTP/1.1 422", 0), 0u) << answer.substr(0, 300);
    EXPECT_NE(answer.find("bad_update"), std::string::npos) << answer.substr(0, 300);
    EXPECT_NE(answer.find("TSUPDATE"), std::string::npos) << answer.substr(0, 300);
    EXPECT_LT(seconds, 3.0) << "the answer waited for a body it does not need";
    std::printf("junk upload: answered %.0f ms after its first 64 bytes\n", seconds * 1000);
    EXPECT_EQ(temporaryFiles(data_), 0u);
  }
  // A whole 100 MiB of junk, with and without Content-Length, watched from the side: the
  // temporary space stays empty throughout.
  std::atomic<bool> done{false};
  std::atomic<uint64_t> most{0};
  std::thread watch([&] {
    while (!done) {
      most = std::max<uint64_t>(most, temporaryBytes(data_));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  const std::string junk(kJunk, '\xab');
  const Reply sized = http().post(kUpdates, junk, siteTokens_[0]);
  const Reply chunked = http().postChunked(kUpdates, junk, siteTokens_[0]);
  done = true;
  watch.join();
  // Cut off after the answer, a client still sending may see the reset instead of the answer.
  for (const Reply* r : {&sized, &chunked}) {
    if (r->status != -1) {
      EXPECT_TRUE(isError(*r, 422, "bad_update"));
    }
  }
  EXPECT_LT(most.load(), uint64_t{1} << 20) << "junk reached the disk";
  std::printf("100 MiB junk uploads: at most %llu bytes in blobs/tmp (answers: %d, %d)\n",
              static_cast<unsigned long long>(most.load()), sized.status, chunked.status);
  EXPECT_EQ(temporaryFiles(data_), 0u);
  expectAlive();
  EXPECT_EQ(updateCount(), 0u);
}

// An update whose header the server refuses (unknown base, wrong task, a length that does not
// match Content-Length, another network) is refused before its weights are stored, and a real
// client still reads why: the body is read and dropped, never written.
TEST_F(ServerRoundIntegrityTest, AWellFormedUpdateRefusedForItsHeaderIsAnsweredAndNotStored) {
  start(1, json::object());
  const auto blobs = storedBlobs(data_);
  const common::WeightSet delta = randomDelta(base_.weights, 60);
  // A header claiming 8 MiB of weights: refused for its base, answered after the body is dropped.
  {
    nlohmann::json h{{"format", "tessera-update"}, {"task", kTask}, {"base_generation", 99}, {"kind", "delta"},
                     {"samples", 1},  {"metrics", json::object()}, {"parameters", 2'000'000}, {"weights_bytes", 8 << 20},
                     {"weights_sha256", std::string(64, '0')}};
    const std::string body = common::encodeContainerPrefix(common::ContainerKind::Update, h, 8 << 20) + std::string(8 << 20, '\0');
    EXPECT_TRUE(isError(push(0, body), 422, "unknown_base"));
    h["base_generation"] = 0;
    const std::string other = common::encodeContainerPrefix(common::ContainerKind::Update, h, 8 << 20) + std::string(8 << 20, '\0');
    EXPECT_TRUE(isError(push(0, other), 422, "shape_mismatch")) << "2 M parameters are not this network";
  }
  EXPECT_TRUE(isError(push(0, encodeDelta("liver-ct", 0, delta)), 422, "task_mismatch"));
  const std::string good = encodeDelta(kTask, 0, delta);
  // Content-Length and the header disagree: refused without reading on.
  EXPECT_TRUE(isError(push(0, good + std::string(1000, '\0')), 422, "bad_update"));
  EXPECT_TRUE(isError(http().postChunked(kUpdates, good + "trailing", siteTokens_[0]), 422, "bad_update"));
  EXPECT_TRUE(isError(http().postChunked(kUpdates, good.substr(0, good.size() - 10), siteTokens_[0]), 422, "bad_update"));
  EXPECT_EQ(storedBlobs(data_), blobs);
  EXPECT_EQ(temporaryFiles(data_), 0u);
  EXPECT_EQ(updateCount(), 0u);
  accepted(push(0, good));
}

// One site may have two uploads in flight; a third is refused with 429 until one finishes.
TEST_F(ServerRoundIntegrityTest, OneSiteHasAtMostTwoUploadsInFlight) {
  start(2, {{"round_size", 3}, {"updates_per_site_per_round", 3}});
  const std::string body = encodeDelta(kTask, 0, randomDelta(base_.weights, 70));
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 2; ++i) {
    slow.push_back(std::make_unique<RawConnection>(server_->port()));
    ASSERT_TRUE(slow.back()->send(postHead(siteTokens_[0], body.size()) + body.substr(0, body.size() / 2)));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // both are inside the upload route
  const Reply third = push(0, encodeDelta(kTask, 0, randomDelta(base_.weights, 71)));
  EXPECT_TRUE(isError(third, 429, "rate_limited"));
  EXPECT_FALSE(third.header("Retry-After").empty()) << third.describe();
  // Another site is not held up by it.
  accepted(push(1, encodeDelta(kTask, 0, randomDelta(base_.weights, 72))));
  // Once the slow uploads are gone, the site may upload again.
  for (auto& c : slow) c->close();
  Reply later;
  EXPECT_TRUE(waitFor(
      [&] {
        later = push(0, encodeDelta(kTask, 0, randomDelta(base_.weights, 73)));
        return later.status != 429;
      },
      15, 0.2))
      << later.describe();
  EXPECT_EQ(later.status, 202) << later.describe();
  EXPECT_EQ(temporaryFiles(data_), 0u);
}

// ---- usage events --------------------------------------------------------------------------------

TEST_F(ServerRoundIntegrityTest, UsageEventsOutOfRangeAreRefused) {
  start(2, json::object());
  auto post = [&](const json& events, int site = 0) {
    return http().post("/v1/events", json{{"events", events}}.dump(), siteTokens_[site], "application/json");
  };
  const json ok{{"type", "predict"}, {"task", kTask}, {"seconds", 2.5}, {"dice", 0.75}};
  auto with = [&](const std::string& field, const json& value) {
    json e = ok;
    e[field] = value;
    return json::array({ok, e});
  };
  const std::vector<std::pair<std::string, json>> bad = {
      {"seconds", -1},   {"seconds", 1e308}, {"seconds", 1e6 + 1}, {"seconds", "5"}, {"seconds", true},
      {"dice", 1e308},   {"dice", -0.01},    {"dice", 1.01},       {"dice", "0.5"},  {"dice", json::array()},
      {"task", std::string(100 * 1024, 'a')}, {"task", "Brain MR"}, {"task", "../etc"}, {"task", ""}, {"task", 7},
      {"type", "hack"},  {"type", 1},
  };
  for (const auto& [field, value] : bad) {
    const Reply r = post(with(field, value));
    EXPECT_TRUE(isError(r, 400, "bad_request")) << field << " = " << value.dump().substr(0, 60);
    EXPECT_NE(r.body.find(field), std::string::npos) << "the message must name the field: " << r.body.substr(0, 300);
    EXPECT_LT(r.body.size(), 2000u) << "the message must not echo a huge value";
  }
  // A task is required, and every event must be an object.
  EXPECT_TRUE(isError(post(json::array({{{"type", "predict"}}})), 400, "bad_request"));
  EXPECT_TRUE(isError(post(json::array({1, 2})), 400, "bad_request"));
  // 250,000 rows in one request, and just over the per-request cap.
  json many = json::array();
  for (int i = 0; i < 250000; ++i) many.push_back({{"type", "predict"}, {"task", kTask}});
  EXPECT_TRUE(isError(post(many), 413, "too_large"));
  json overCap = json::array();
  for (int i = 0; i < 1001; ++i) overCap.push_back(ok);
  EXPECT_TRUE(isError(post(overCap), 413, "too_large"));

  // Nothing of the refused batches counted; valid events (edges included) still do.
  json edges = json::array({ok,
                            {{"type", "correct"}, {"task", kTask}, {"seconds", 0}, {"dice", 0}},
                            {{"type", "train"}, {"task", kTask}, {"seconds", 1e6}, {"dice", 1}},
                            {{"type", "push"}, {"task", kTask}, {"seconds", nullptr}}});
  const Reply r = post(edges);
  ASSERT_EQ(r.status, 202) << r.describe();
  EXPECT_EQ(r.asJson()["accepted"], 4);
  const json stats = http().getJson("/v1/stats", adminToken_);
  int64_t count = 0;
  for (const auto& e : stats["events"]) count += e["count"].get<int64_t>();
  EXPECT_EQ(count, 4) << stats.dump(2);
  for (const auto& e : stats["events"]) {
    if (!e["mean_dice"].is_null()) {
      EXPECT_GE(e["mean_dice"].get<double>(), 0.0);
      EXPECT_LE(e["mean_dice"].get<double>(), 1.0);
    }
  }
}

TEST_F(ServerRoundIntegrityTest, UsageEventsAreLimitedPerSiteAndHour) {
  start(2, json::object());
  const json ok{{"type", "predict"}, {"task", kTask}, {"seconds", 1.0}};
  json batch = json::array();
  for (int i = 0; i < 1000; ++i) batch.push_back(ok);
  const std::string body = json{{"events", batch}}.dump();
  for (int i = 0; i < 10; ++i) {
    const Reply r = http().post("/v1/events", body, siteTokens_[0], "application/json");
    ASSERT_EQ(r.status, 202) << "batch " << i << ": " << r.describe();
  }
  const Reply over = http().post("/v1/events", json{{"events", json::array({ok})}}.dump(), siteTokens_[0], "application/json");
  EXPECT_TRUE(isError(over, 429, "rate_limited"));
  const std::string retry = over.header("Retry-After");
  ASSERT_FALSE(retry.empty()) << over.describe();
  EXPECT_GT(std::stol(retry), 3000);
  EXPECT_LE(std::stol(retry), 3600);
  // The other site is not affected.
  EXPECT_EQ(http().post("/v1/events", json{{"events", json::array({ok})}}.dump(), siteTokens_[1], "application/json").status, 202);
  const json stats = http().getJson("/v1/stats", adminToken_);
  int64_t count = 0;
  for (const auto& e : stats["events"]) count += e["count"].get<int64_t>();
  EXPECT_EQ(count, 10001);
}

}  // namespace
}  // namespace tessera::servertest
