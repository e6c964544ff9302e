// Integrity over HTTP: signed uploads (accepted; tampered, replayed and unsigned ones refused with
// their own codes), signed generations and the server key, revoked and rotated tokens.
#include "ServerHarness.h"

#include "tessera/common/Ed25519.h"
#include "tessera/common/SignedMessages.h"

namespace tessera::servertest {

namespace {

struct SignedPost {
  std::string nonce, signature;
};

SignedPost signUpload(const common::SigningKey& key, const std::string& site, const std::string& task, int64_t base,
                      const std::string& bytes, std::string nonce = common::randomHex(16)) {
  const std::string message = common::updateSignatureMessage({task, site, base, nonce, common::sha256Hex(bytes)});
  return {nonce, key.sign(message)};
}

Reply postUpdate(int port, const std::string& token, const std::string& bytes, const std::optional<SignedPost>& s) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  if (s) {
    h.emplace("X-Tessera-Nonce", s->nonce);
    h.emplace("X-Tessera-Signature", s->signature);
  }
  const auto r = c.Post("/v1/models/brain/updates", h, bytes, "application/octet-stream");
  Reply out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  return out;
}

class ServerSignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data = dir.path() / "data";
    fs::create_directories(data);
    token = addSite(data, "site-a");
    server::Registry(data).setSitePublicKey("site-a", key.publicKeyHex());
    seed(data, base);
  }
  TempDir dir;
  fs::path data;
  std::string token;
  common::SigningKey key = common::SigningKey::generate();
  model::Model base = makeModel("brain");
};

}  // namespace

TEST_F(ServerSignatureTest, SignedUploadIsAcceptedTamperedReplayedAndUnsignedAreRefused) {
  ServerProcess server(data);
  const std::string bytes = encodeDelta("brain", 0, randomDelta(base.weights, 1));

  EXPECT_TRUE(isError(postUpdate(server.port(), token, bytes, std::nullopt), 401, "unsigned"));

  // Any byte changed after signing: one in the weights, and a header field (samples).
  const SignedPost good = signUpload(key, "site-a", "brain", 0, bytes);
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x01;
  EXPECT_TRUE(isError(postUpdate(server.port(), token, flipped, good), 403, "bad_signature"));
  const std::string otherHeader = encodeDelta("brain", 0, randomDelta(base.weights, 1), 11);
  EXPECT_TRUE(isError(postUpdate(server.port(), token, otherHeader, good), 403, "bad_signature"));
  // Signed for another site, or with another key.
  EXPECT_TRUE(isError(postUpdate(server.port(), token, bytes, signUpload(key, "site-b", "brain", 0, bytes)), 403,
                      "bad_signature"));
  EXPECT_TRUE(isError(postUpdate(server.port(), token, bytes, signUpload(common::SigningKey::generate(), "site-a", "brain", 0, bytes)),
                      403, "bad_signature"));
  EXPECT_EQ(queuedUpdates(server.http()), 0);

  const Reply accepted = postUpdate(server.port(), token, bytes, good);
  ASSERT_EQ(accepted.status, 202) << accepted.describe();
  EXPECT_EQ(queuedUpdates(server.http()), 1);

  // The same signed request again (a copy taken off the wire) and the same nonce on other bytes.
  EXPECT_TRUE(isError(postUpdate(server.port(), token, bytes, good), 409, "replay"));
  const std::string other = encodeDelta("brain", 0, randomDelta(base.weights, 2));
  EXPECT_TRUE(isError(postUpdate(server.port(), token, other, signUpload(key, "site-a", "brain", 0, other, good.nonce)), 409,
                      "replay"));
  EXPECT_EQ(queuedUpdates(server.http()), 1);
}

TEST_F(ServerSignatureTest, RequireSignaturesRefusesSitesWithoutAKey) {
  const std::string tokenB = addSite(data, "site-b");
  ServerProcess server(data, {"--require-signatures"});
  const std::string bytes = encodeDelta("brain", 0, randomDelta(base.weights, 3));
  EXPECT_TRUE(isError(postUpdate(server.port(), tokenB, bytes, std::nullopt), 401, "unsigned"));
  // A signature without a registered key cannot be checked.
  EXPECT_TRUE(isError(postUpdate(server.port(), tokenB, bytes, signUpload(key, "site-b", "brain", 0, bytes)), 403,
                      "bad_signature"));
}

TEST_F(ServerSignatureTest, GenerationsAreSignedWithTheKeyTheServerPresents) {
  ServerProcess server(data);
  const json presented = server.http().getJson("/v1/server-key", "");
  ASSERT_TRUE(presented.is_object());
  const std::string serverKey = presented.value("public_key", "");
  EXPECT_EQ(serverKey, runCli({"server", "admin", "server-key", "--data", data.string()}).substr(0, 64));

  const json g = server.http().getJson("/v1/models/brain/generations/latest", token);
  ASSERT_TRUE(g.is_object());
  const common::GenerationSignatureFields fields{"brain", 0, std::nullopt, g.value("weights_sha256", "")};
  EXPECT_EQ(fields.weightsSha256, base.weightsSha256());
  EXPECT_TRUE(common::verifySignature(serverKey, common::generationSignatureMessage(fields), g.value("signature", "")));
  const Reply file = server.http().get("/v1/models/brain/generations/0/model", token);
  EXPECT_EQ(file.header("X-Tessera-Signature"), g.value("signature", ""));
}

TEST_F(ServerSignatureTest, RevokedTokenIsRefusedAtOnceAndARotatedOneReplacesIt) {
  ServerProcess server(data);
  const Http http = server.http();
  EXPECT_EQ(http.get("/v1/whoami", token).status, 200);
  runCli({"server", "admin", "revoke-site", "--site", "site-a", "--data", data.string()});
  EXPECT_TRUE(isError(http.get("/v1/whoami", token), 401, "unauthorized"));

  std::string fresh = runCli({"server", "admin", "rotate-token", "--site", "site-a", "--data", data.string()});
  while (!fresh.empty() && std::isspace(static_cast<unsigned char>(fresh.back()))) fresh.pop_back();
  ASSERT_FALSE(fresh.empty());
  EXPECT_TRUE(isError(http.get("/v1/whoami", token), 401, "unauthorized"));
  const json me = http.getJson("/v1/whoami", fresh);
  ASSERT_TRUE(me.is_object());
  EXPECT_EQ(me.value("name", ""), "site-a");
}

}  // namespace tessera::servertest
