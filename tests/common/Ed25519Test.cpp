// Ed25519 keys on disk and the signed messages: what a site and the server rely on.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tessera/common/Ed25519.h"
#include "tessera/common/Error.h"
#include "tessera/common/SignedMessages.h"

namespace fs = std::filesystem;
using tessera::Error;
using tessera::ErrorCode;
using namespace tessera::common;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tessera-ed25519-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(Ed25519, SignaturesVerifyOnlyForTheirMessageAndKey) {
  const SigningKey a = SigningKey::generate();
  const SigningKey b = SigningKey::generate();
  const std::string sig = a.sign("message");
  EXPECT_EQ(sig.size(), 128u);
  EXPECT_TRUE(verifySignature(a.publicKeyHex(), "message", sig));
  EXPECT_FALSE(verifySignature(a.publicKeyHex(), "messagE", sig));
  EXPECT_FALSE(verifySignature(b.publicKeyHex(), "message", sig));
  std::string flipped = sig;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  EXPECT_FALSE(verifySignature(a.publicKeyHex(), "message", flipped));
  EXPECT_FALSE(verifySignature("zz", "message", sig));
  EXPECT_FALSE(verifySignature(a.publicKeyHex(), "message", ""));
}

// RFC 8032 test 1: the empty message under the all-zero-derived test key.
TEST(Ed25519, MatchesRfc8032TestVector) {
  const std::string pk = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
  const std::string sig =
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
  EXPECT_TRUE(verifySignature(pk, "", sig));
  EXPECT_FALSE(verifySignature(pk, "x", sig));
}

TEST(Ed25519, SecretKeyFileIsPrivateAndRoundTrips) {
  const fs::path dir = scratch("roundtrip");
  const SigningKey key = SigningKey::generate();
  key.save(dir / "site-key");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "site-key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const SigningKey again = SigningKey::load(dir / "site-key");
  EXPECT_EQ(again.publicKeyHex(), key.publicKeyHex());
  EXPECT_TRUE(verifySignature(key.publicKeyHex(), "m", again.sign("m")));
  EXPECT_EQ(readPublicKey((dir / "site-key.pub").string(), "key"), key.publicKeyHex());
  fs::remove_all(dir);
}

TEST(Ed25519, RefusesASecretKeyOthersCanRead) {
  const fs::path dir = scratch("mode");
  SigningKey::generate().save(dir / "site-key");
  ::chmod((dir / "site-key").c_str(), 0644);
  try {
    SigningKey::load(dir / "site-key");
    FAIL() << "a world-readable secret key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Config);
    EXPECT_NE(std::string(e.what()).find("0644"), std::string::npos) << e.what();
  }
  EXPECT_THROW(SigningKey::load(dir / "missing"), Error);
  fs::remove_all(dir);
}

TEST(Ed25519, PublicKeysAreReadAsHexOrBase64) {
  const std::string hex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
  EXPECT_EQ(normalizePublicKey(" D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A\n", "k"), hex);
  EXPECT_EQ(normalizePublicKey("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "k"), hex);
  EXPECT_THROW(normalizePublicKey("abc", "k"), Error);
  EXPECT_THROW(normalizePublicKey(std::string(64, 'g'), "k"), Error);
}

TEST(SignedMessages, EveryFieldIsBoundAndSeparated) {
  UpdateSignatureFields f{"brain", "site-a", 3, "00ff", "abc"};
  EXPECT_EQ(updateSignatureMessage(f),
            "tessera-update-signature-v1\ntask=brain\nsite=site-a\nbase_generation=3\nnonce=00ff\nupdate_sha256=abc\n");
  GenerationSignatureFields g{"brain", 2, 1, "abc"};
  EXPECT_EQ(generationSignatureMessage(g),
            "tessera-generation-signature-v1\ntask=brain\ngeneration=2\nparent=1\nweights_sha256=abc\n");
  g.parent.reset();
  EXPECT_NE(generationSignatureMessage(g).find("parent=none\n"), std::string::npos);
  EXPECT_NE(randomHex(16), randomHex(16));
  EXPECT_EQ(randomHex(16).size(), 32u);
}
