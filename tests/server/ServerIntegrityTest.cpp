// Integrity of what the server stores and serves, against the real `tessera server` process:
// a blob whose bytes no longer match their SHA-256 name is never served or merged (500 `corrupt`,
// /healthz degraded, the log names the blob), a merge that cannot write backs off and says so
// on /healthz, and what failed writes left behind is removed at start-up.
#include "ServerHarness.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

// Flips one bit of the byte `fromEnd` bytes before the end of `path`: for a weights blob or an
// update file that is inside the last tensor's float values, so the file still decodes and only
// its hash can tell.
void flipBit(const fs::path& path, uint64_t fromEnd = 3, unsigned char mask = 0x01) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << "cannot open " << path;
  const auto size = static_cast<uint64_t>(fs::file_size(path));
  ASSERT_GT(size, fromEnd);
  f.seekg(static_cast<std::streamoff>(size - 1 - fromEnd));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ static_cast<char>(mask));
  f.seekp(static_cast<std::streamoff>(size - 1 - fromEnd));
  f.write(&c, 1);
  f.flush();
  ASSERT_TRUE(f) << "cannot write " << path;
}

size_t countOccurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

class ServerIntegrityTest : public ::testing::Test {
 protected:
  void prepare(const json& policy = json::object()) {
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask);
    seed(data_, base_);
    server::Registry registry(data_);
    siteToken_ = registry.addSite("hospital-a", "site").second;
    otherSiteToken_ = registry.addSite("hospital-b", "site").second;
    adminToken_ = registry.addSite("ops", "admin").second;
    if (!policy.empty()) server::updatePolicy(registry, kTask, policy);
  }
  void start(const json& policy = json::object()) {
    prepare(policy);
    server_ = std::make_unique<ServerProcess>(data_);
  }
  Http http() const { return server_->http(); }
  std::string log() const { return common::readFile(server_->logFile()); }

  fs::path blobPath(const std::string& sha) const { return data_ / "blobs" / sha.substr(0, 2) / sha; }
  std::string generationSha(int64_t generation) const {
    return http().getJson("/v1/models/" + kTask + "/generations/" + std::to_string(generation), siteToken_).at("weights_sha256");
  }
  // Pushes an update from hospital-a (or hospital-b); returns the SHA-256 of its stored blob.
  std::string pushStored(const std::string& body, bool otherSite = false) {
    const auto before = storedBlobs(data_);
    const Reply r = http().post("/v1/models/" + kTask + "/updates", body, otherSite ? otherSiteToken_ : siteToken_);
    EXPECT_EQ(r.status, 202) << r.describe() << "\n" << server_->logTail(5);
    for (const auto& b : storedBlobs(data_)) {
      if (!before.count(b)) return fs::path(b).filename().string();
    }
    ADD_FAILURE() << "the update left no new blob";
    return "";
  }
  Reply health() const { return http().get("/healthz"); }
  // /healthz says "degraded" (503) and one of its problems contains `needle`.
  ::testing::AssertionResult degradedNaming(const std::string& needle) const {
    const Reply r = health();
    if (r.status != 503) return ::testing::AssertionFailure() << "expected 503 degraded, got " << r.describe();
    const json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || j.value("status", "") != "degraded" || !j.contains("problems") || !j["problems"].is_array()) {
      return ::testing::AssertionFailure() << "not a degraded health report: " << r.body;
    }
    for (const auto& p : j["problems"]) {
      if (p.is_string() && p.get<std::string>().find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no problem naming '" << needle << "': " << r.body;
  }
  ::testing::AssertionResult healthy() const {
    const Reply r = health();
    const json j = json::parse(r.body, nullptr, false);
    if (r.status == 200 && j.is_object() && j.value("status", "") == "ok") return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected 200 ok, got " << r.describe();
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::string siteToken_, otherSiteToken_, adminToken_;
  std::unique_ptr<ServerProcess> server_;
};

// One flipped bit in a generation's weights: the download is refused with 500 `corrupt` (never
// the damaged bytes under a checksum computed from them), /healthz is degraded and the log names
// the blob, even though the same generation was downloaded (and its checks cached) before.
// Restoring the file heals all three.
TEST_F(ServerIntegrityTest, DamagedGenerationBlobIsRefusedNotServed) {
  start();
  const std::string sha = generationSha(0);
  ASSERT_TRUE(server::isSha256Hex(sha)) << sha;
  const std::string path = "/v1/models/" + kTask + "/generations/0/model";
  ASSERT_EQ(downloadModel(http(), kTask, 0, siteToken_).weightsSha256(), base_.weightsSha256());
  ASSERT_TRUE(healthy());

  flipBit(blobPath(sha));
  for (const std::string& which : {path, "/v1/models/" + kTask + "/generations/latest/model"}) {
    const Reply r = http().get(which, siteToken_);
    EXPECT_TRUE(isError(r, 500, "corrupt")) << which;
    EXPECT_NE(r.body.find(sha), std::string::npos) << "the error names the blob: " << r.body;
  }
  EXPECT_TRUE(degradedNaming(sha));
  EXPECT_TRUE(waitFor([&] { return log().find(sha) != std::string::npos; }, 5)) << server_->logTail();
  EXPECT_NE(log().find("damaged"), std::string::npos) << server_->logTail();
  // The generation's description is not content: it is still answered.
  EXPECT_EQ(http().get("/v1/models/" + kTask + "/generations/0", siteToken_).status, 200);

  flipBit(blobPath(sha));  // restored from a backup
  EXPECT_EQ(downloadModel(http(), kTask, 0, siteToken_).weightsSha256(), base_.weightsSha256());
  EXPECT_TRUE(healthy());
}

// A generation blob that vanished: 500 `corrupt` and degraded health naming it (a 404 would tell
// the client the generation does not exist).
TEST_F(ServerIntegrityTest, MissingGenerationBlobIsAServerFaultNotAnUnknownGeneration) {
  prepare();
  const auto g = [&] {
    server::Registry registry(data_);
    return registry.latestGeneration(registry.model(kTask)->id);
  }();
  ASSERT_TRUE(g);
  fs::rename(blobPath(g->weightsSha256), dir_.path() / "moved-away");
  server_ = std::make_unique<ServerProcess>(data_);
  EXPECT_TRUE(isError(http().get("/v1/models/" + kTask + "/generations/0/model", siteToken_), 500, "corrupt"));
  EXPECT_TRUE(degradedNaming(g->weightsSha256));
  fs::rename(dir_.path() / "moved-away", blobPath(g->weightsSha256));
  EXPECT_TRUE(healthy());
  EXPECT_EQ(downloadModel(http(), kTask, 0, siteToken_).weightsSha256(), base_.weightsSha256());
}

// One flipped bit in a queued update: the round is not merged (no generation carrying the bit
// under a fresh checksum), its updates stay queued, /healthz is degraded naming the blob and the
// failing merge, and once the file is restored the retry merges exactly the intended mean.
TEST_F(ServerIntegrityTest, DamagedQueuedUpdateIsNotMergedUntilRestored) {
  start({{"round_size", 2}, {"round_seconds", 3600}});
  const auto deltaA = randomDelta(base_.weights, 11, 0.02f);
  const auto deltaB = randomDelta(base_.weights, 12, 0.02f);
  const std::string shaA = pushStored(encodeDelta(kTask, 0, deltaA, 10));
  ASSERT_FALSE(shaA.empty());
  flipBit(blobPath(shaA));
  pushStored(encodeDelta(kTask, 0, deltaB, 10), true);  // completes the round

  EXPECT_TRUE(waitFor([&] { return log().find(shaA) != std::string::npos; }, 20)) << server_->logTail();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(latestGeneration(http(), kTask, siteToken_), 0) << "a merge published the damaged update:\n" << server_->logTail();
  EXPECT_EQ(queuedUpdates(http()), 2);
  EXPECT_TRUE(degradedNaming(shaA));
  EXPECT_TRUE(degradedNaming("merges of model '" + kTask + "' failing"));

  flipBit(blobPath(shaA));  // restored
  const auto g1 = waitForGeneration(http(), kTask, siteToken_, 1, 90);
  ASSERT_TRUE(g1) << server_->logTail();
  common::WeightSet expected = base_.weights;
  for (size_t t = 0; t < expected.size(); ++t) {
    for (size_t k = 0; k < expected[t].values.size(); ++k) {
      expected[t].values[k] =
          static_cast<float>(double(base_.weights[t].values[k]) + 0.5 * double(deltaA[t].values[k]) + 0.5 * double(deltaB[t].values[k]));
    }
  }
  EXPECT_LT(maxAbsDifference(downloadModel(http(), kTask, 1, siteToken_).weights, expected), 1e-5);
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_TRUE(healthy());
  EXPECT_NE(log().find("works again"), std::string::npos) << server_->logTail();
}

// A merge that cannot write (blobs/tmp is no directory: the same failure as a full or read-only
// disk, and it stops root too): every attempt is logged with its reason, retries back off
// (0.5 s doubling) instead of spinning every poll, /healthz is degraded, and the merge completes
// once the disk is writable again.
TEST_F(ServerIntegrityTest, MergeThatCannotWriteBacksOffAndReportsDegraded) {
  start({{"round_size", 10}, {"round_seconds", 3600}});
  pushStored(encodeDelta(kTask, 0, randomDelta(base_.weights, 21), 10));
  pushStored(encodeDelta(kTask, 0, randomDelta(base_.weights, 22), 10), true);
  const fs::path tmp = data_ / "blobs" / "tmp";
  fs::remove_all(tmp);
  { std::ofstream(tmp) << "not a directory\n"; }

  const auto failures = [&] { return countOccurrences(log(), "cannot create"); };
  const Reply put = http().put("/v1/models/" + kTask + "/policy", R"({"round_size": 2})", adminToken_);
  ASSERT_EQ(put.status, 200) << put.describe();
  ASSERT_TRUE(waitFor([&] { return failures() >= 1; }, 20)) << server_->logTail();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  const size_t attempts = failures();
  // Polling every 0.5 s would make 12 or 13 attempts in these 6 s; backing off 0.5, 1, 2, 4 s: 4.
  EXPECT_GE(attempts, 3u) << "the merge stopped retrying:\n" << server_->logTail();
  EXPECT_LE(attempts, 5u) << "the merge retries without backing off:\n" << server_->logTail();
  EXPECT_TRUE(degradedNaming("merges of model '" + kTask + "' failing"));
  EXPECT_EQ(latestGeneration(http(), kTask, siteToken_), 0);
  EXPECT_EQ(queuedUpdates(http()), 2);
  const Reply metrics = http().get("/metrics");
  EXPECT_NE(metrics.body.find("tessera_merge_failures_total"), std::string::npos);

  fs::remove(tmp);
  fs::create_directory(tmp);
  ASSERT_TRUE(waitForGeneration(http(), kTask, siteToken_, 1, 90)) << server_->logTail();
  EXPECT_TRUE(healthy());
  EXPECT_EQ(queuedUpdates(http()), 0);
}

// What interrupted or failed writes left behind is gone after a restart, and logged: temporary
// files, and blobs no row names (an insert that failed on a full disk after its blob was stored,
// a candidate never published). A young unreferenced blob may be a write in flight (`admin seed`
// stores its blob before its row) and stays.
TEST_F(ServerIntegrityTest, StartUpRemovesLeftoversAndOldOrphanBlobs) {
  prepare();
  std::string oldOrphan, youngOrphan;
  {
    server::BlobStore blobs(data_);
    oldOrphan = blobs.put("update whose registry insert failed on a full disk");
    youngOrphan = blobs.put("weights whose row is being written right now");
    fs::last_write_time(blobs.pathOf(oldOrphan), fs::file_time_type::clock::now() - std::chrono::hours(2));
  }
  const fs::path tmp = data_ / "blobs" / "tmp";
  { std::ofstream(tmp / "upload-interrupted.tmp") << std::string(4096, 'x'); }
  fs::create_directories(tmp / "stray");
  { std::ofstream(tmp / "stray" / "half") << "half"; }
  const auto keep = storedBlobs(data_).size() - 1;  // all but the old orphan

  server_ = std::make_unique<ServerProcess>(data_);
  EXPECT_EQ(temporaryFiles(data_), 0u);
  EXPECT_FALSE(fs::exists(blobPath(oldOrphan))) << server_->logTail();
  EXPECT_TRUE(fs::exists(blobPath(youngOrphan)));
  EXPECT_EQ(storedBlobs(data_).size(), keep);
  const std::string text = log();
  EXPECT_NE(text.find(oldOrphan), std::string::npos) << "the removal is logged:\n" << text;
  EXPECT_NE(text.find("upload-interrupted.tmp"), std::string::npos) << text;
  EXPECT_EQ(downloadModel(http(), kTask, 0, siteToken_).weightsSha256(), base_.weightsSha256());
  EXPECT_TRUE(healthy());
}

// The store itself: storing content whose damaged copy is already there repairs the copy
// instead of keeping it because it has the right size.
TEST(BlobStoreIntegrityTest, StoringTheSameContentRepairsADamagedCopy) {
  TempDir dir;
  server::BlobStore blobs(dir.path());
  const std::string content(1000, 'a');
  const std::string sha = blobs.put(content);
  flipBit(blobs.pathOf(sha), 10);
  EXPECT_THROW(blobs.verify(sha), tessera::Error);
  EXPECT_EQ(blobs.damagedBlobs().size(), 1u);
  EXPECT_EQ(blobs.put(content), sha);
  EXPECT_EQ(blobs.read(sha), content);
  EXPECT_TRUE(blobs.damagedBlobs().empty());
}

}  // namespace
}  // namespace tessera::servertest
