// The registry's side of integrity: the server key signs every generation it stores (also those
// of an older file), revoked tokens stop at once, a rotated token reinstates, nonces count once.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <random>

#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/common/SignedMessages.h"
#include "tessera/server/Backup.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/server/ServerKey.h"

namespace tessera::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class RegistrySecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::path(::testing::TempDir()) / ("tessera-registry-security-" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  GenerationRecord generation(int64_t g, const std::string& sha, std::optional<int64_t> parent) {
    GenerationRecord r;
    r.generation = g;
    r.parent = parent;
    r.weightsSha256 = sha;
    r.weightsBytes = 4;
    r.parameters = 1;
    r.strategy = "fedavg";
    return r;
  }
  bool verifies(const Registry& registry, const std::string& task, const GenerationRecord& g) {
    return common::verifySignature(registry.serverPublicKey(),
                                   common::generationSignatureMessage({task, g.generation, g.parent, g.weightsSha256}),
                                   g.signature);
  }
  fs::path dir_;
};

TEST_F(RegistrySecurityTest, EveryStoredGenerationIsSignedByThePrivateServerKey) {
  Registry registry(dir_);
  BlobStore blobs(dir_);
  const auto m = registry.addModel("liver", "CT", "liver", "tumor", json{{"spec", 1}}, json::object(),
                                   generation(0, blobs.put("w0"), std::nullopt));
  GenerationRecord next = generation(1, blobs.put("w1"), 0);
  next.modelId = m.id;
  registry.publishGeneration(next, {});
  const auto g0 = registry.generation(m.id, 0);
  const auto g1 = registry.generation(m.id, 1);
  ASSERT_TRUE(g0 && g1);
  EXPECT_TRUE(verifies(registry, "liver", *g0));
  EXPECT_TRUE(verifies(registry, "liver", *g1));
  GenerationRecord swapped = *g1;
  swapped.weightsSha256 = g0->weightsSha256;  // the registry row edited to name other weights
  EXPECT_FALSE(verifies(registry, "liver", swapped));
  EXPECT_TRUE(registry.checkSignatures().empty());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "registry.sqlite3").c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE generations SET weights_sha256 = '" + g0->weightsSha256 + "' WHERE generation = 1";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  const auto problems = registry.checkSignatures();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("generation 1"), std::string::npos) << problems[0];

  struct stat st {};
  ASSERT_EQ(::stat(serverKeyFile(dir_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Another process on the same folder (an admin command) signs with the same key.
  EXPECT_EQ(Registry(dir_).serverPublicKey(), registry.serverPublicKey());
}

// A server restored from a backup signs with the key sites have pinned.
TEST_F(RegistrySecurityTest, BackupKeepsTheServerKey) {
  std::string key;
  {
    Registry registry(dir_);
    BlobStore blobs(dir_);
    registry.addModel("liver", "CT", "", "", json{{"spec", 1}}, json::object(), generation(0, blobs.put("w0"), std::nullopt));
    key = registry.serverPublicKey();
  }
  backupDataFolder(dir_, dir_ / "backup");
  EXPECT_EQ(Registry(dir_ / "backup").serverPublicKey(), key);
}

TEST_F(RegistrySecurityTest, GenerationsOfAnOlderFileAreSignedWhenItIsOpened) {
  int64_t modelId = 0;
  {
    Registry registry(dir_);
    BlobStore blobs(dir_);
    modelId = registry.addModel("liver", "CT", "", "", json{{"spec", 1}}, json::object(),
                                generation(0, blobs.put("w0"), std::nullopt)).id;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "registry.sqlite3").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE generations SET signature = NULL", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Registry registry(dir_);
  const auto g = registry.generation(modelId, 0);
  ASSERT_TRUE(g);
  EXPECT_TRUE(verifies(registry, "liver", *g));
}

TEST_F(RegistrySecurityTest, RevokedTokensStopAndARotatedTokenReinstates) {
  Registry registry(dir_);
  const auto [site, token] = registry.addSite("hospital-a", "site");
  ASSERT_TRUE(registry.siteForToken(token));
  registry.revokeSite("hospital-a");
  EXPECT_FALSE(registry.siteForToken(token));
  const std::string fresh = registry.rotateToken("hospital-a");
  EXPECT_FALSE(registry.siteForToken(token));
  ASSERT_TRUE(registry.siteForToken(fresh));
  EXPECT_EQ(registry.siteForToken(fresh)->id, site.id);
  EXPECT_THROW(registry.revokeSite("nobody"), Error);
}

TEST_F(RegistrySecurityTest, SiteKeysAndNonces) {
  Registry registry(dir_);
  const auto site = registry.addSite("hospital-a", "site").first;
  EXPECT_FALSE(registry.sitePublicKey(site.id));
  const auto key = common::SigningKey::generate();
  registry.setSitePublicKey("hospital-a", key.publicKeyHex());
  EXPECT_EQ(registry.sitePublicKey(site.id), key.publicKeyHex());
  EXPECT_THROW(registry.setSitePublicKey("hospital-a", "not a key"), Error);
  EXPECT_THROW(registry.setSitePublicKey("nobody", key.publicKeyHex()), Error);

  EXPECT_FALSE(registry.nonceSeen(site.id, "00ff"));
  EXPECT_TRUE(registry.claimNonce(site.id, "00ff"));
  EXPECT_TRUE(registry.nonceSeen(site.id, "00ff"));
  EXPECT_FALSE(registry.claimNonce(site.id, "00ff"));
  const auto other = registry.addSite("hospital-b", "site").first;
  EXPECT_TRUE(registry.claimNonce(other.id, "00ff"));  // nonces are per site
}

}  // namespace
}  // namespace tessera::server
