// The server's storage: content-addressed blobs and the SQLite registry, including the
// all-or-nothing guarantees the merge loop relies on after a crash.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tessera/common/Sha256.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- helpers --------------------------------------------------------------------------------

// Runs `f` and returns the tessera::Error code it threw ("" if it threw nothing).
std::string errorCode(const std::function<void()>& f) {
  try {
    f();
  } catch (const tessera::Error& e) {
    return std::string(e.codeName());
  }
  return "";
}

std::string fileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t entriesIn(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// A fresh data folder per test, removed afterwards.
class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("tessera-storage-" + std::string(info->name()) + "-" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  GenerationRecord generationRecord(int64_t generation, const std::string& sha, std::optional<int64_t> parent) {
    GenerationRecord g;
    g.generation = generation;
    g.parent = parent;
    g.weightsSha256 = sha;
    g.weightsBytes = 4;
    g.parameters = 1;
    g.strategy = "fedavg";
    return g;
  }

  // A model whose first generation's weights are really in the blob store.
  ModelRecord addModel(Registry& registry, BlobStore& blobs, const std::string& task, const std::string& modality = "CT",
                       const std::string& anatomy = "liver", const std::string& disease = "tumor") {
    const std::string sha = blobs.put("weights of " + task);
    return registry.addModel(task, modality, anatomy, disease, json{{"spec", {{"channels", 1}}}}, json{{"strategy", "fedavg"}},
                             generationRecord(1, sha, std::nullopt));
  }

  NewUpdate newUpdate(int64_t modelId, int64_t siteId, const std::string& sha) {
    NewUpdate u;
    u.modelId = modelId;
    u.siteId = siteId;
    u.baseGeneration = 1;
    u.kind = "delta";
    u.samples = 12;
    u.metrics = json{{"dice", 0.8}};
    u.blobSha256 = sha;
    u.weightsOffset = 64;
    u.weightsBytes = 100;
    u.deltaNorm = 0.5;
    return u;
  }

  fs::path dir_;
};

// ---- BlobStore ------------------------------------------------------------------------------

TEST_F(StorageTest, BlobPutReadRoundtripAndDedupe) {
  BlobStore blobs(dir_);
  const std::string sha = blobs.put("abc");
  EXPECT_EQ(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(blobs.pathOf(sha), dir_ / "blobs" / "ba" / sha);
  EXPECT_TRUE(fs::is_regular_file(blobs.pathOf(sha)));
  EXPECT_TRUE(blobs.contains(sha));
  EXPECT_EQ(blobs.read(sha), "abc");

  EXPECT_EQ(blobs.put("abc"), sha);
  EXPECT_EQ(entriesIn(dir_ / "blobs" / "ba"), 1u);
  EXPECT_EQ(entriesIn(blobs.temporaryDirectory()), 0u) << "a deduplicated put must not leave its temporary file";

  const std::string other = blobs.put(std::string("\0binary\xff", 8));
  EXPECT_NE(other, sha);
  EXPECT_EQ(blobs.read(other), std::string("\0binary\xff", 8));
  EXPECT_FALSE(blobs.contains(common::sha256Hex("never stored")));
  EXPECT_EQ(errorCode([&] { blobs.read(common::sha256Hex("never stored")); }), "not_found");
}

TEST_F(StorageTest, ReadDetectsACorruptedBlob) {
  BlobStore blobs(dir_);
  const std::string sha = blobs.put("the original weights");
  {
    std::ofstream out(blobs.pathOf(sha), std::ios::binary | std::ios::trunc);
    out << "the 0riginal weights";  // same size, one byte flipped
  }
  EXPECT_EQ(errorCode([&] { blobs.read(sha); }), "corrupt");
}

TEST_F(StorageTest, PathOfRejectsAnythingButALowerCaseSha) {
  BlobStore blobs(dir_);
  const std::string good(64, 'a');
  EXPECT_EQ(blobs.pathOf(good), dir_ / "blobs" / "aa" / good);
  for (const std::string& bad : {std::string(), std::string("abc"), std::string(63, 'a'), std::string(65, 'a'),
                                std::string(64, 'A'), std::string(63, 'a') + "g", "../" + std::string(61, 'a'),
                                std::string(62, 'a') + "/a"}) {
    EXPECT_EQ(errorCode([&] { blobs.pathOf(bad); }), "bad_request") << "'" << bad << "'";
    EXPECT_EQ(errorCode([&] { blobs.contains(bad); }), "bad_request") << "'" << bad << "'";
  }
}

TEST_F(StorageTest, StreamingWriterCommitsOnlyWholeBlobs) {
  BlobStore blobs(dir_);
  auto writer = blobs.begin();
  writer.write("hello ");
  writer.write("");
  writer.write("world");
  EXPECT_EQ(writer.size(), 11u);
  EXPECT_EQ(entriesIn(blobs.temporaryDirectory()), 1u) << "pieces go to blobs/tmp until commit";
  const std::string sha = writer.commit();
  EXPECT_EQ(sha, common::sha256Hex("hello world"));
  EXPECT_EQ(blobs.read(sha), "hello world");
  EXPECT_EQ(entriesIn(blobs.temporaryDirectory()), 0u);
  EXPECT_EQ(errorCode([&] { writer.write("more"); }), "io");
  EXPECT_EQ(errorCode([&] { writer.commit(); }), "io");

  {
    auto abandoned = blobs.begin();
    abandoned.write("never committed");
  }
  EXPECT_EQ(entriesIn(blobs.temporaryDirectory()), 0u) << "an abandoned writer removes its temporary file";
  EXPECT_FALSE(blobs.contains(common::sha256Hex("never committed")));

  auto again = blobs.begin();
  again.write("hello world");
  EXPECT_EQ(again.commit(), sha);
  EXPECT_EQ(entriesIn(blobs.temporaryDirectory()), 0u);
}

TEST_F(StorageTest, RemoveTemporaryFilesClearsCrashLeftoversOnly) {
  BlobStore blobs(dir_);
  const std::string sha = blobs.put("kept");
  std::ofstream(blobs.temporaryDirectory() / ".tmp-123-456") << "half an upload";
  std::ofstream(blobs.temporaryDirectory() / "other") << "x";
  fs::create_directory(blobs.temporaryDirectory() / "nested");
  ASSERT_EQ(entriesIn(blobs.temporaryDirectory()), 3u);

  blobs.removeTemporaryFiles();
  EXPECT_EQ(entriesIn(blobs.temporaryDirectory()), 0u);
  EXPECT_EQ(blobs.read(sha), "kept");
  BlobStore reopened(dir_);  // the tmp folder is still usable
  EXPECT_EQ(reopened.put("after cleanup"), common::sha256Hex("after cleanup"));
}

// ---- sites and tokens -----------------------------------------------------------------------

TEST_F(StorageTest, SiteTokenIsShownOnceAndOnlyItsHashIsStored) {
  std::string token;
  {
    Registry registry(dir_);
    auto [site, t] = registry.addSite("hospital-a", "site");
    token = t;
    EXPECT_EQ(site.name, "hospital-a");
    EXPECT_EQ(site.role, "site");
    EXPECT_GT(site.id, 0);
    ASSERT_EQ(token.size(), 4u + 64u);
    EXPECT_EQ(token.substr(0, 4), "tsk_");
    EXPECT_EQ(token.find_first_not_of("0123456789abcdef", 4), std::string::npos);
    EXPECT_NE(registry.addSite("hospital-b", "site").second, token);

    // Look at the stored rows with SQLite itself, as someone with a copy of the file would.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2((dir_ / "registry.sqlite3").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT * FROM sites", -1, &q, nullptr), SQLITE_OK);
    int rows = 0;
    bool hashFound = false;
    while (sqlite3_step(q) == SQLITE_ROW) {
      ++rows;
      for (int c = 0; c < sqlite3_column_count(q); ++c) {
        const auto* text = sqlite3_column_text(q, c);
        const std::string value = text ? reinterpret_cast<const char*>(text) : "";
        EXPECT_EQ(value.find(token.substr(4)), std::string::npos) << "column " << sqlite3_column_name(q, c);
        hashFound = hashFound || value == common::sha256Hex(token);
      }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    EXPECT_EQ(rows, 2);
    EXPECT_TRUE(hashFound) << "the sites table should hold SHA-256(token)";
  }
  // Nor anywhere in the database files (the main file and the write-ahead log).
  for (const auto& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(fileBytes(entry.path()).find(token.substr(4)), std::string::npos) << entry.path();
  }
}

TEST_F(StorageTest, SitesAreFoundByTokenOnly) {
  Registry registry(dir_);
  const auto [site, token] = registry.addSite("hospital-a", "site");
  const auto [admin, adminToken] = registry.addSite("ops", "admin");

  const auto found = registry.siteForToken(token);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, site.id);
  EXPECT_EQ(found->name, "hospital-a");
  EXPECT_EQ(found->role, "site");
  EXPECT_EQ(registry.siteForToken(adminToken)->role, "admin");

  std::string wrong = token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_FALSE(registry.siteForToken(wrong));
  EXPECT_FALSE(registry.siteForToken(""));
  EXPECT_FALSE(registry.siteForToken(common::sha256Hex(token))) << "the stored hash must not work as a token";

  const auto all = registry.sites();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "hospital-a");
  EXPECT_EQ(all[1].name, "ops");
}

TEST_F(StorageTest, SiteNamesAndRolesAreValidated) {
  Registry registry(dir_);
  registry.addSite("hospital-a", "site");
  EXPECT_EQ(errorCode([&] { registry.addSite("hospital-a", "admin"); }), "conflict");
  EXPECT_EQ(errorCode([&] { registry.addSite("hospital-b", "root"); }), "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addSite("hospital-b", ""); }), "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addSite("", "site"); }), "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addSite("two words", "site"); }), "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addSite("x'; DROP TABLE sites;--", "site"); }), "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addSite(std::string(65, 'a'), "site"); }), "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addSite(std::string(64, 'a'), "site"); }), "");
  EXPECT_EQ(errorCode([&] { registry.addSite("St.Mary_2-b", "admin"); }), "");
  EXPECT_EQ(registry.sites().size(), 3u);
}

TEST_F(StorageTest, RotatedTokenReplacesTheOldOne) {
  Registry registry(dir_);
  const auto [site, oldToken] = registry.addSite("hospital-a", "site");
  const std::string newToken = registry.rotateToken("hospital-a");
  EXPECT_NE(newToken, oldToken);
  EXPECT_FALSE(registry.siteForToken(oldToken));
  ASSERT_TRUE(registry.siteForToken(newToken));
  EXPECT_EQ(registry.siteForToken(newToken)->id, site.id);
  EXPECT_EQ(errorCode([&] { registry.rotateToken("nobody"); }), "not_found");
}

// ---- models and generations -----------------------------------------------------------------

TEST_F(StorageTest, ModelsAreFilteredCaseInsensitively) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  addModel(registry, blobs, "liver-ct", "CT", "Liver", "Tumor");
  addModel(registry, blobs, "knee-mr", "MR", "Knee", "Cartilage");
  addModel(registry, blobs, "brain-mr", "MR", "Brain", "Glioma");

  auto tasks = [&](const ModelFilter& f) {
    std::vector<std::string> out;
    for (const auto& m : registry.models(f)) out.push_back(m.task);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(tasks({}), (V{"liver-ct", "knee-mr", "brain-mr"}));
  EXPECT_EQ(tasks({"", "mr", "", ""}), (V{"knee-mr", "brain-mr"}));
  EXPECT_EQ(tasks({"", "", "KNEE", ""}), (V{"knee-mr"}));
  EXPECT_EQ(tasks({"", "Mr", "", "gLIOMA"}), (V{"brain-mr"}));
  EXPECT_EQ(tasks({"LIVER-CT", "", "", ""}), (V{"liver-ct"}));
  EXPECT_EQ(tasks({"", "mri", "", ""}), V{}) << "exact match, not prefix";
  EXPECT_EQ(tasks({"", "ct", "knee", ""}), V{}) << "all filters must hold";
  EXPECT_EQ(tasks({"", "' OR 1=1 --", "", ""}), V{});
}

TEST_F(StorageTest, ModelKeepsItsFieldsAndFirstGeneration) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const std::string sha = blobs.put("seed weights");
  GenerationRecord first = generationRecord(5, sha, 4);  // seeded from a file trained elsewhere
  first.strategy = "seed";
  const json header{{"spec", {{"channels", 1}, {"classes", 3}}}, {"task", {{"labels", {{"1", "liver"}}}}}};
  const auto added = registry.addModel("liver-ct", "CT", "liver", "tumor", header, json{{"round_size", 3}}, first);
  EXPECT_GT(added.id, 0);
  EXPECT_EQ(added.latestGeneration, 5);

  const auto m = registry.model("liver-ct");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, added.id);
  EXPECT_EQ(m->modality, "CT");
  EXPECT_EQ(m->header, header);
  EXPECT_EQ(m->policy, (json{{"round_size", 3}}));
  EXPECT_EQ(m->latestGeneration, 5);
  EXPECT_EQ(registry.modelById(added.id)->task, "liver-ct");
  EXPECT_FALSE(registry.model("Liver-CT")) << "task lookup is exact";
  EXPECT_FALSE(registry.modelById(added.id + 1));

  const auto g = registry.latestGeneration(added.id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->generation, 5);
  EXPECT_EQ(g->parent, 4);
  EXPECT_EQ(g->weightsSha256, sha);
  EXPECT_EQ(g->strategy, "seed");
  EXPECT_TRUE(g->validation.is_null());
  EXPECT_GT(g->createdAt, 0);

  // A second model for the task changes nothing, not even a stray generation row.
  EXPECT_EQ(errorCode([&] { registry.addModel("liver-ct", "MR", "", "", header, json::object(), first); }), "conflict");
  EXPECT_EQ(registry.models({}).size(), 1u);
  EXPECT_EQ(registry.generations(added.id).size(), 1u);
  EXPECT_EQ(errorCode([&] { registry.addModel("bad-sha", "", "", "", header, json::object(), generationRecord(1, "x", {})); }),
            "bad_request");
  EXPECT_FALSE(registry.model("bad-sha")) << "the model row must roll back with its generation";

  registry.setPolicy(added.id, json{{"round_size", 5}});
  EXPECT_EQ(registry.model("liver-ct")->policy, (json{{"round_size", 5}}));
  EXPECT_EQ(errorCode([&] { registry.setPolicy(added.id + 1, json::object()); }), "not_found");
  EXPECT_EQ(errorCode([&] { registry.setPolicy(added.id, json::array()); }), "bad_request");
}

// ---- publishing and rejecting rounds --------------------------------------------------------

TEST_F(StorageTest, PublishGenerationMarksUpdatesMergedAtomically) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto [site, token] = registry.addSite("hospital-a", "site");
  const std::string updateSha = blobs.put("update file");
  const int64_t u1 = registry.addUpdate(newUpdate(model.id, site.id, updateSha));
  const int64_t u2 = registry.addUpdate(newUpdate(model.id, site.id, updateSha));
  const int64_t u3 = registry.addUpdate(newUpdate(model.id, site.id, updateSha));
  ASSERT_EQ(registry.queuedCount(), 3);

  GenerationRecord g2 = generationRecord(2, blobs.put("generation 2"), 1);
  g2.modelId = model.id;
  g2.validation = json{{"dice_before", 0.7}, {"dice_after", 0.75}};
  registry.publishGeneration(g2, {u1});

  const auto stored = registry.generation(model.id, 2);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->mergedUpdates, std::vector<int64_t>{u1});
  EXPECT_EQ(stored->validation, g2.validation);
  EXPECT_EQ(registry.model("liver-ct")->latestGeneration, 2);
  const auto merged = registry.update(u1);
  ASSERT_TRUE(merged);
  EXPECT_EQ(merged->status, "merged");
  EXPECT_EQ(merged->mergedInto, 2);
  EXPECT_TRUE(merged->mergedAt);
  EXPECT_EQ(registry.queuedCount(), 2);

  // u2 would be marked first, then u1 (already merged) fails: the whole round must roll back.
  GenerationRecord g3 = generationRecord(3, blobs.put("generation 3"), 2);
  g3.modelId = model.id;
  EXPECT_EQ(errorCode([&] { registry.publishGeneration(g3, {u2, u1}); }), "conflict");
  EXPECT_FALSE(registry.generation(model.id, 3));
  EXPECT_EQ(registry.update(u2)->status, "queued");
  EXPECT_FALSE(registry.update(u2)->mergedInto);
  EXPECT_EQ(registry.update(u1)->mergedInto, 2);

  // An existing generation number is refused before any update changes.
  GenerationRecord again = generationRecord(2, blobs.put("another generation 2"), 1);
  again.modelId = model.id;
  EXPECT_EQ(errorCode([&] { registry.publishGeneration(again, {u3}); }), "conflict");
  EXPECT_EQ(registry.generation(model.id, 2)->weightsSha256, g2.weightsSha256);
  EXPECT_EQ(registry.update(u3)->status, "queued");

  // Nor may a round take another model's update, a missing one, or the same one twice.
  const auto other = addModel(registry, blobs, "knee-mr");
  const int64_t foreign = registry.addUpdate(newUpdate(other.id, site.id, updateSha));
  EXPECT_EQ(errorCode([&] { registry.publishGeneration(g3, {u2, foreign}); }), "conflict");
  EXPECT_EQ(errorCode([&] { registry.publishGeneration(g3, {u2, 9999}); }), "conflict");
  EXPECT_EQ(errorCode([&] { registry.publishGeneration(g3, {u2, u2}); }), "bad_request");
  GenerationRecord orphan = g3;
  orphan.modelId = 9999;
  EXPECT_EQ(errorCode([&] { registry.publishGeneration(orphan, {}); }), "not_found");
  EXPECT_EQ(registry.queuedCount(), 3);
  EXPECT_EQ(registry.generations(model.id).size(), 2u);

  registry.publishGeneration(g3, {u2, u3});
  EXPECT_EQ(registry.queuedUpdates(model.id).size(), 0u);
  EXPECT_EQ(registry.updates(model.id, "merged").size(), 3u);
  EXPECT_EQ(registry.generation(model.id, 3)->mergedUpdates, (std::vector<int64_t>{u2, u3}));
}

TEST_F(StorageTest, RejectCandidateDiscardsItsUpdates) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto [site, token] = registry.addSite("hospital-a", "site");
  const std::string sha = blobs.put("update");
  const int64_t u1 = registry.addUpdate(newUpdate(model.id, site.id, sha));
  const int64_t u2 = registry.addUpdate(newUpdate(model.id, site.id, sha));
  const int64_t u3 = registry.addUpdate(newUpdate(model.id, site.id, sha));

  RejectedCandidate c;
  c.modelId = model.id;
  c.baseGeneration = 1;
  c.strategy = "fedavg";
  c.validation = json{{"dice_before", 0.8}, {"dice_after", 0.6}};
  c.reason = "validation Dice fell by 0.2";
  registry.rejectCandidate(c, {u1, u2});

  for (const int64_t id : {u1, u2}) {
    const auto u = registry.update(id);
    EXPECT_EQ(u->status, "discarded");
    EXPECT_EQ(u->reason, c.reason);
    EXPECT_FALSE(u->mergedInto);
  }
  EXPECT_EQ(registry.update(u3)->status, "queued");
  const auto rejected = registry.rejectedCandidates(model.id);
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_EQ(rejected[0].updateIds, (std::vector<int64_t>{u1, u2}));
  EXPECT_EQ(rejected[0].validation, c.validation);
  EXPECT_EQ(rejected[0].reason, c.reason);
  EXPECT_EQ(rejected[0].baseGeneration, 1);
  EXPECT_EQ(registry.generations(model.id).size(), 1u);

  EXPECT_EQ(errorCode([&] { registry.rejectCandidate(c, {u3, u1}); }), "conflict");
  EXPECT_EQ(registry.update(u3)->status, "queued");
  EXPECT_EQ(registry.rejectedCandidates(model.id).size(), 1u);
  EXPECT_EQ(registry.updates(model.id, "discarded").size(), 2u);
  EXPECT_EQ(registry.updates(model.id, "").size(), 3u);
  EXPECT_EQ(errorCode([&] { registry.updates(model.id, "lost"); }), "bad_request");
}

// ---- updates ----------------------------------------------------------------------------------

TEST_F(StorageTest, UpdatesKeepTheirFieldsAndAreValidated) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto [site, token] = registry.addSite("hospital-a", "site");
  NewUpdate n = newUpdate(model.id, site.id, blobs.put("update"));
  n.deltaNorm.reset();
  const int64_t id = registry.addUpdate(n);
  const auto u = registry.update(id);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->siteName, "hospital-a");
  EXPECT_EQ(u->kind, "delta");
  EXPECT_DOUBLE_EQ(u->samples, 12);
  EXPECT_EQ(u->metrics, (json{{"dice", 0.8}}));
  EXPECT_EQ(u->weightsOffset, 64);
  EXPECT_EQ(u->weightsBytes, 100);
  EXPECT_FALSE(u->deltaNorm);
  EXPECT_EQ(u->status, "queued");
  EXPECT_GT(u->receivedAt, 0);
  EXPECT_FALSE(u->mergedAt);
  EXPECT_FALSE(registry.update(id + 1));

  auto with = [&](auto change) {
    NewUpdate bad = n;
    change(bad);
    return errorCode([&] { registry.addUpdate(bad); });
  };
  EXPECT_EQ(with([](NewUpdate& b) { b.kind = "gradient"; }), "bad_request");
  EXPECT_EQ(with([](NewUpdate& b) { b.samples = -1; }), "bad_request");
  EXPECT_EQ(with([](NewUpdate& b) { b.blobSha256 = "not-a-sha"; }), "bad_request");
  EXPECT_EQ(with([](NewUpdate& b) { b.deltaNorm = std::nan(""); }), "bad_request");
  EXPECT_EQ(with([](NewUpdate& b) { b.modelId = 9999; }), "not_found");
  EXPECT_EQ(with([](NewUpdate& b) { b.siteId = 9999; }), "not_found");
  EXPECT_EQ(registry.queuedCount(), 1);
}

TEST_F(StorageTest, ConcurrentUploadsGetDistinctIds) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto [site, token] = registry.addSite("hospital-a", "site");
  const std::string sha = blobs.put("update");

  std::mutex idsMutex;
  std::vector<int64_t> ids;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        try {
          const int64_t id = registry.addUpdate(newUpdate(model.id, site.id, sha));
          (void)registry.queuedCount();  // readers interleave with writers, as in the server
          std::lock_guard lock(idsMutex);
          ids.push_back(id);
        } catch (const std::exception& e) {
          std::lock_guard lock(idsMutex);
          failures.push_back(e.what());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_EQ(ids.size(), 400u);
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 400u);
  EXPECT_EQ(registry.queuedCount(), 400);
  const auto listed = registry.queuedUpdates(model.id);
  ASSERT_EQ(listed.size(), 400u);
  EXPECT_TRUE(std::is_sorted(listed.begin(), listed.end(), [](const auto& a, const auto& b) { return a.id < b.id; }));
}

// ---- usage ------------------------------------------------------------------------------------

TEST_F(StorageTest, UsageStatsAggregateEventsPerTypeTaskAndSite) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto [a, tokenA] = registry.addSite("hospital-a", "site");
  const auto [b, tokenB] = registry.addSite("hospital-b", "site");
  registry.addSite("ops", "admin");
  registry.addEvents(a.id, {{"predict", "liver-ct", 2.0, 0.8}, {"predict", "liver-ct", 4.0, std::nullopt},
                            {"correct", "liver-ct", 10.0, std::nullopt}});
  registry.addEvents(b.id, {{"predict", "liver-ct", 6.0, 0.6}});
  registry.addEvents(b.id, {});

  // All or nothing: one bad event keeps the good one before it out too.
  EXPECT_EQ(errorCode([&] { registry.addEvents(a.id, {{"predict", "liver-ct", 1.0, {}}, {"hack", "liver-ct", {}, {}}}); }),
            "bad_request");
  EXPECT_EQ(errorCode([&] { registry.addEvents(9999, {{"train", "liver-ct", 1.0, {}}}); }), "not_found");

  const std::string sha = blobs.put("update");
  const int64_t u1 = registry.addUpdate(newUpdate(model.id, a.id, sha));
  const int64_t u2 = registry.addUpdate(newUpdate(model.id, b.id, sha));
  registry.addUpdate(newUpdate(model.id, b.id, sha));
  GenerationRecord g2 = generationRecord(2, blobs.put("g2"), 1);
  g2.modelId = model.id;
  registry.publishGeneration(g2, {u1});
  RejectedCandidate c;
  c.modelId = model.id;
  c.baseGeneration = 2;
  c.strategy = "fedavg";
  c.reason = "worse";
  registry.rejectCandidate(c, {u2});

  const json stats = registry.usageStats();
  const json expectedEvents = json::array({
      {{"type", "correct"}, {"task", "liver-ct"}, {"site", "hospital-a"}, {"count", 1}, {"mean_seconds", 10.0}, {"mean_dice", nullptr}},
      {{"type", "predict"}, {"task", "liver-ct"}, {"site", "hospital-a"}, {"count", 2}, {"mean_seconds", 3.0}, {"mean_dice", 0.8}},
      {{"type", "predict"}, {"task", "liver-ct"}, {"site", "hospital-b"}, {"count", 1}, {"mean_seconds", 6.0}, {"mean_dice", 0.6}},
  });
  EXPECT_EQ(stats["events"], expectedEvents) << stats.dump(2);
  const json expectedModels = json::array({{{"task", "liver-ct"},
                                            {"generations", 2},
                                            {"rejected_candidates", 1},
                                            {"updates", {{"queued", 1}, {"merged", 1}, {"discarded", 1}}}}});
  EXPECT_EQ(stats["models"], expectedModels) << stats.dump(2);
  EXPECT_EQ(stats["sites"], 2) << "admins are not participating sites";
}

// ---- durability -------------------------------------------------------------------------------

TEST_F(StorageTest, RegistryReopensWithAllItsData) {
  std::string token;
  int64_t modelId = 0, u1 = 0, u2 = 0;
  {
    Registry registry(dir_);
    BlobStore blobs(dir_);
    token = registry.addSite("hospital-a", "site").second;
    const auto site = *registry.siteForToken(token);
    modelId = addModel(registry, blobs, "liver-ct", "CT", "liver", "tumor").id;
    u1 = registry.addUpdate(newUpdate(modelId, site.id, blobs.put("u")));
    u2 = registry.addUpdate(newUpdate(modelId, site.id, blobs.put("u")));
    GenerationRecord g2 = generationRecord(2, blobs.put("g2"), 1);
    g2.modelId = modelId;
    registry.publishGeneration(g2, {u1});
    registry.addEvents(site.id, {{"train", "liver-ct", 30.0, std::nullopt}});
    registry.setPolicy(modelId, json{{"round_size", 7}});

    // A second connection to the same file (the admin CLI beside a running server) sees it all.
    Registry beside(dir_);
    EXPECT_EQ(beside.queuedCount(), 1);
    beside.addSite("hospital-b", "site");
    EXPECT_EQ(registry.sites().size(), 2u);
  }
  Registry reopened(dir_);
  BlobStore blobs(dir_);
  ASSERT_TRUE(reopened.siteForToken(token));
  EXPECT_EQ(reopened.siteForToken(token)->name, "hospital-a");
  EXPECT_EQ(reopened.sites().size(), 2u);
  const auto m = reopened.model("liver-ct");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, modelId);
  EXPECT_EQ(m->policy, (json{{"round_size", 7}}));
  EXPECT_EQ(m->latestGeneration, 2);
  EXPECT_EQ(reopened.generations(modelId).size(), 2u);
  EXPECT_EQ(reopened.update(u1)->status, "merged");
  EXPECT_EQ(reopened.update(u2)->status, "queued");
  EXPECT_EQ(reopened.usageStats()["events"].size(), 1u);
  EXPECT_TRUE(reopened.checkConsistency(blobs).empty());

  // The file really is in WAL mode (a property stored in the file itself).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((dir_ / "registry.sqlite3").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "wal");
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST_F(StorageTest, OpeningFailuresNameThePath) {
  const fs::path notADirectory = dir_ / "plain-file";
  std::ofstream(notADirectory) << "x";
  try {
    Registry registry(notADirectory);
    FAIL() << "opened a registry inside a regular file";
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.code(), tessera::ErrorCode::Io);
    EXPECT_NE(std::string(e.what()).find(notADirectory.string()), std::string::npos) << e.what();
  }
}

TEST_F(StorageTest, RefusesAFileFromANewerSchema) {
  { Registry registry(dir_); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "registry.sqlite3").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(errorCode([&] { Registry registry(dir_); }), "io");
}

// A registry written by the first schema (no idempotency keys) is brought up to date on open,
// keeping its rows; opening it again changes nothing.
TEST_F(StorageTest, MigratesAVersionOneFile) {
  int64_t oldUpdate = 0;
  int64_t modelId = 0, siteId = 0;
  std::string sha;
  {
    Registry registry(dir_);
    BlobStore blobs(dir_);
    modelId = addModel(registry, blobs, "liver-ct").id;
    siteId = registry.addSite("hospital-a", "site").first.id;
    sha = blobs.put("update");
    oldUpdate = registry.addUpdate(newUpdate(modelId, siteId, sha));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "registry.sqlite3").c_str(), &db), SQLITE_OK);
  // Back to what version 1 wrote.
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX updates_by_idempotency_key; DROP INDEX updates_by_site_blob; DROP INDEX events_by_site_time; "
                         "ALTER TABLE updates DROP COLUMN idempotency_key; ALTER TABLE updates DROP COLUMN dp_noise_multiplier; "
                         "ALTER TABLE sites DROP COLUMN public_key; ALTER TABLE sites DROP COLUMN revoked_at; "
                         "ALTER TABLE generations DROP COLUMN signature; DROP TABLE update_nonces; "
                         "PRAGMA user_version = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  for (int open = 0; open < 2; ++open) {
    Registry registry(dir_);
    ASSERT_TRUE(registry.update(oldUpdate)) << "open " << open;
    EXPECT_EQ(registry.update(oldUpdate)->status, "queued");
    // The old row is found by its bytes; a keyed retry of a new upload by its key.
    const auto same = registry.sameUpdate(modelId, siteId, "", sha);
    ASSERT_TRUE(same);
    EXPECT_EQ(same->id, oldUpdate);
  }
  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "registry.sqlite3").c_str(), &check), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check, "PRAGMA user_version", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 4);
  sqlite3_finalize(q);
  sqlite3_close(check);
}

// The server's way of queueing: a repeat (same key or same bytes) from the same site is the
// first update again; a site gets `maxQueuedPerSite` queued updates per model, no more.
TEST_F(StorageTest, QueueUpdateCountsARepeatOnceAndLimitsASite) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto a = registry.addSite("hospital-a", "site").first;
  const auto b = registry.addSite("hospital-b", "site").first;
  NewUpdate first = newUpdate(model.id, a.id, blobs.put("update 1"));
  first.idempotencyKey = "push-1";
  const QueuedUpdate q1 = registry.queueUpdate(first, 1);
  EXPECT_FALSE(q1.duplicate);
  EXPECT_EQ(q1.status, "queued");
  // The same bytes again, with or without the key: the same update.
  NewUpdate again = first;
  again.idempotencyKey.clear();
  EXPECT_EQ(registry.queueUpdate(again, 1).id, q1.id);
  EXPECT_TRUE(registry.queueUpdate(again, 1).duplicate);
  // The same key with other bytes (a retry of a rebuilt update): the first id.
  NewUpdate rebuilt = newUpdate(model.id, a.id, blobs.put("update 1, rebuilt"));
  rebuilt.idempotencyKey = "push-1";
  EXPECT_EQ(registry.queueUpdate(rebuilt, 1).id, q1.id);
  // Another update from the same site while the first is queued: conflict, nothing stored.
  NewUpdate second = newUpdate(model.id, a.id, blobs.put("update 2"));
  second.idempotencyKey = "push-2";
  EXPECT_EQ(errorCode([&] { registry.queueUpdate(second, 1); }), "conflict");
  EXPECT_EQ(registry.queuedFrom(model.id, a.id), 1);
  EXPECT_EQ(registry.queueUpdate(second, 2).duplicate, false) << "the policy may allow two";
  // Another site with the same key and bytes is another update.
  NewUpdate fromB = first;
  fromB.siteId = b.id;
  const QueuedUpdate qb = registry.queueUpdate(fromB, 1);
  EXPECT_FALSE(qb.duplicate);
  EXPECT_NE(qb.id, q1.id);
  EXPECT_EQ(registry.queuedCount(), 3);
}

TEST_F(StorageTest, EventsWithinAQuotaPerWindow) {
  Registry registry(dir_);
  const auto a = registry.addSite("hospital-a", "site").first;
  const auto b = registry.addSite("hospital-b", "site").first;
  const std::vector<UsageEvent> three(3, UsageEvent{"predict", "liver-ct", 1.0, 0.5});
  EXPECT_EQ(registry.addEventsWithin(a.id, three, 7, 3600), 0.0);
  EXPECT_EQ(registry.addEventsWithin(a.id, three, 7, 3600), 0.0);
  const double wait = registry.addEventsWithin(a.id, three, 7, 3600);
  EXPECT_GT(wait, 3500);
  EXPECT_LE(wait, 3600);
  EXPECT_EQ(registry.addEventsWithin(b.id, three, 7, 3600), 0.0) << "the quota is per site";
  EXPECT_EQ(registry.addEventsWithin(a.id, {three[0]}, 7, 3600), 0.0) << "what fits still goes in";
  // A short window lets them in again once it has passed.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(registry.addEventsWithin(a.id, three, 7, 0.2), 0.0);
  EXPECT_EQ(registry.usageStats()["events"][0]["count"], 10);
}

TEST_F(StorageTest, DamagedJsonIsReportedAsCorrupt) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  addModel(registry, blobs, "liver-ct");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "registry.sqlite3").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE models SET header_json = '{\"spec\":' WHERE task = 'liver-ct'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(errorCode([&] { registry.model("liver-ct"); }), "corrupt");
}

TEST_F(StorageTest, CheckConsistencyFindsMissingBlobs) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto model = addModel(registry, blobs, "liver-ct");
  const auto [site, token] = registry.addSite("hospital-a", "site");
  const std::string updateSha = blobs.put("queued update");
  const int64_t queued = registry.addUpdate(newUpdate(model.id, site.id, updateSha));
  const int64_t mergedId = registry.addUpdate(newUpdate(model.id, site.id, blobs.put("merged update")));
  GenerationRecord g2 = generationRecord(2, blobs.put("generation 2"), 1);
  g2.modelId = model.id;
  registry.publishGeneration(g2, {mergedId});
  EXPECT_EQ(registry.checkConsistency(blobs), std::vector<std::string>{});

  fs::remove(blobs.pathOf(g2.weightsSha256));
  fs::remove(blobs.pathOf(updateSha));
  const auto problems = registry.checkConsistency(blobs);
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_NE(problems[0].find(g2.weightsSha256), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("generation 2"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("update " + std::to_string(queued)), std::string::npos) << problems[1];
}

}  // namespace
}  // namespace tessera::server
