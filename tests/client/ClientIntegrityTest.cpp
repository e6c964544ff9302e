// A site against a real `tessera server`: its pushes are signed with its key and accepted, it
// trusts the server key it first met and refuses a generation whose record was altered on the
// server (weights swapped under the registry's eyes), and it refuses plain HTTP to another
// machine without --insecure.
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "TestModels.h"
#include "TesseraCommand.h"
#include "tessera/client/ApiClient.h"
#include "tessera/client/SiteKeys.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/common/ChildProcess.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/common/WeightRecords.h"
#include "tessera/nn/Runtime.h"

namespace tessera::client {
namespace {

namespace fs = std::filesystem;

using test::lastLine;
using test::tessera;

ErrorCode codeOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;
}

class ClientIntegrityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nn::setThreadCount(1);
    data = scratch.path() / "data";
    const fs::path modelFile = scratch.path() / "brain.tsm";
    model::saveModel(base, modelFile);
    tessera({"server", "admin", "seed", "--model", modelFile.string(), "--data", data.string()}, scratch.path() / "seed");
    config.home = scratch.path() / "site";
    config.task = "brain";
    const std::string publicKey = createSiteKey(config.home, false);
    config.token = lastLine(tessera({"server", "admin", "add-site", "site-a", "--public-key",
                                     (config.home / "site-key.pub").string(), "--data", data.string()},
                                    scratch.path() / "add-site"));
    EXPECT_EQ(publicKey.size(), 64u);
    const fs::path portFile = scratch.path() / "port";
    server = std::make_unique<common::ChildProcess>(
        std::vector<std::string>{TESSERA_BINARY, "server", "--data", data.string(), "--listen", "127.0.0.1:0", "--port-file",
                                 portFile.string()},
        scratch.path() / "server.log");
    int port = 0;
    for (int i = 0; i < 3000 && port == 0 && server->running(); ++i) {
      std::ifstream in(portFile);
      if (!(in >> port)) port = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_GT(port, 0) << common::tailOfFile(scratch.path() / "server.log", 20);
    config.server = "http://127.0.0.1:" + std::to_string(port);
    test::writeCases(cases.path(), 2, 4);
  }

  // Points generation 0's record at other weights, as someone with write access to the server's
  // data folder (but not its key) could: a consistent blob and row, only the signature is old.
  void swapGenerationWeights() {
    model::Model other = base;
    other.weights[0].values[0] += 0.5f;
    const std::string section = common::encodeWeights(other.weights);
    const std::string sha = common::sha256Hex(section);
    const fs::path blob = data / "blobs" / sha.substr(0, 2) / sha;
    fs::create_directories(blob.parent_path());
    std::ofstream(blob, std::ios::binary) << section;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((data / "registry.sqlite3").c_str(), &db), SQLITE_OK);
    const std::string sql = "UPDATE generations SET weights_sha256 = '" + sha + "' WHERE generation = 0";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  model::Model base = test::tinyModel("brain", 0);
  test::ScratchDir scratch, cases;
  fs::path data;
  ClientConfig config;
  std::unique_ptr<common::ChildProcess> server;
  std::ostringstream log;
};

TEST_F(ClientIntegrityTest, SignedPushIsAcceptedAndAPushWithoutTheKeyIsRefused) {
  pull(config, log);
  EXPECT_TRUE(fs::exists(config.home / "trusted-servers.json")) << log.str();
  SiteTrainOptions options;
  options.casesDir = cases.path();
  options.epochs = 1;
  options.batchSize = 4;
  train(config, options, log);

  // The key is registered: without it the same push is refused, with it accepted.
  fs::rename(siteKeyFile(config.home), scratch.path() / "away");
  EXPECT_EQ(codeOf([&] { push(config, log); }), ErrorCode::Unsigned) << log.str();
  fs::rename(scratch.path() / "away", siteKeyFile(config.home));
  const auto answer = push(config, log);
  EXPECT_EQ(answer.value("status", ""), "queued") << answer.dump();
  EXPECT_NE(log.str().find("signed the update as site 'site-a'"), std::string::npos) << log.str();
}

TEST_F(ClientIntegrityTest, AGenerationAlteredOnTheServerIsRefused) {
  const PullResult first = pull(config, log);
  EXPECT_TRUE(first.downloaded);
  swapGenerationWeights();
  // With the key pinned at first contact, and with the key given explicitly on a fresh site.
  EXPECT_EQ(codeOf([&] { pull(config, log); }), ErrorCode::BadSignature) << log.str();
  ClientConfig fresh = config;
  fresh.home = scratch.path() / "fresh-site";
  fresh.serverKey = ApiClient(config).serverKey().value("public_key", "");
  EXPECT_EQ(codeOf([&] { pull(fresh, log); }), ErrorCode::BadSignature) << log.str();
  EXPECT_FALSE(fs::exists(fresh.home / "models" / "brain" / "generation-0.tsm"));
  // A server presenting another key than the one pinned: nothing it signs is accepted.
  fresh.serverKey = common::sha256Hex("not the server's key");
  EXPECT_EQ(codeOf([&] { pull(fresh, log); }), ErrorCode::BadSignature) << log.str();
}

TEST(ClientTransport, PlainHttpToAnotherMachineNeedsInsecure) {
  ClientConfig config;
  config.server = "http://10.20.30.40:8470";
  config.token = "t";
  EXPECT_EQ(codeOf([&] { ApiClient api(config); }), ErrorCode::Config);
  config.insecure = true;
  EXPECT_NO_THROW(ApiClient api(config));
  for (const char* loopback : {"http://127.0.0.1:8470", "http://localhost:1", "http://[::1]:8470", "http://127.1.2.3"}) {
    ClientConfig local;
    local.server = loopback;
    EXPECT_NO_THROW(ApiClient api(local)) << loopback;
  }
  ClientConfig pinned;
  pinned.server = "https://example.org";
  pinned.pinSha256 = "AB:CD";
  EXPECT_EQ(codeOf([&] { ApiClient api(pinned); }), ErrorCode::Config);
  pinned.server = "http://127.0.0.1:1";
  pinned.pinSha256 = std::string(64, 'a');
  EXPECT_EQ(codeOf([&] { ApiClient api(pinned); }), ErrorCode::Config);  // a pin needs https://
}

}  // namespace
}  // namespace tessera::client
