// `tessera server --publish-pacs` against a real Orthanc: every generation lands in the PACS once,
// a PACS that is down at first gets it when it comes up, and a crash between the C-STORE and the
// status write does not make a second copy.
#include "OrthancFixture.h"
#include "ServerHarness.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"
#include "tessera/dicom/PacsClient.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

// `tessera ARGS…` with stderr folded into the output, and its exit status.
std::pair<int, std::string> runTessera(const std::vector<std::string>& args) {
  std::string command = std::string("'") + tesseraBinary() + "'";
  for (const auto& a : args) command += " '" + a + "'";
  command += " 2>&1";
  std::FILE* p = ::popen(command.c_str(), "r");
  if (!p) return {-1, "cannot run " + command};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

dicom::ModelQuery taskQuery() {
  dicom::ModelQuery q;
  q.task = kTask;
  return q;
}

class ServerPacsPublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::OrthancServer::available()) GTEST_SKIP() << "Orthanc is not installed";
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask);
    seed(data_, base_, "fedavg");
    server::Registry registry(data_);
    siteToken_ = registry.addSite("site-0", "site").second;
    server::updatePolicy(registry, kTask, {{"round_size", 1}});
  }

  void startServer(const std::string& pacs) {
    server_ = std::make_unique<ServerProcess>(data_, std::vector<std::string>{"--publish-pacs", pacs, "--pacs-retry", "0.2"});
  }

  json pacsStatus(int64_t generation) const {
    const json list = server_->http().getJson("/v1/models/" + kTask + "/generations", siteToken_);
    for (const auto& g : list.value("generations", json::array())) {
      if (g.value("generation", int64_t{-1}) == generation && g.contains("pacs")) return g["pacs"];
    }
    return json::object();
  }

  bool waitStored(int64_t generation, double seconds = 30) const {
    return waitFor([&] { return pacsStatus(generation).value("state", "") == "stored"; }, seconds, 0.1);
  }

  // Every instance Orthanc holds (its REST API): a second copy of an object would show here.
  static size_t orthancInstances(const test::OrthancServer& pacs) {
    httplib::Client c("127.0.0.1", pacs.httpPort());
    const auto r = c.Get("/instances");
    if (!r || r->status != 200) return SIZE_MAX;
    return json::parse(r->body).size();
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::string siteToken_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerPacsPublishTest, EveryGenerationIsStoredOnceAndFoundByItsTaskAndGeneration) {
  test::OrthancServer pacs;
  startServer(pacs.address());
  ASSERT_TRUE(waitStored(0)) << pacsStatus(0).dump() << "\n" << server_->logTail();

  const Reply r = server_->http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 0, randomDelta(base_.weights, 3)),
                                       siteToken_);
  ASSERT_EQ(r.status, 202) << r.describe();
  ASSERT_TRUE(waitForGeneration(server_->http(), kTask, siteToken_, 1, 30));
  ASSERT_TRUE(waitStored(1)) << pacsStatus(1).dump() << "\n" << server_->logTail();
  const json s1 = pacsStatus(1);
  EXPECT_EQ(s1["attempts"], 1);
  EXPECT_EQ(s1["pacs"], pacs.address());
  EXPECT_FALSE(s1.contains("last_error"));

  const auto found = dicom::PacsClient(dicom::PacsAddress::parse(pacs.address())).findModels(taskQuery());
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].generation, 0);
  EXPECT_EQ(found[1].generation, 1);
  EXPECT_EQ(found[1].seriesUid, dicom::modelSeriesUid(kTask, 1));
  EXPECT_EQ(orthancInstances(pacs), 2u);
  // What the PACS holds is the generation the server serves.
  const model::Model pulled = dicom::PacsClient(dicom::PacsAddress::parse(pacs.address())).pullModel(kTask, 1);
  EXPECT_EQ(maxAbsDifference(pulled.weights, downloadModel(server_->http(), kTask, 1, siteToken_).weights), 0.0);
}

TEST_F(ServerPacsPublishTest, APacsThatIsDownAtFirstGetsTheGenerationWhenItComesUpAndACrashDoesNotCopyItTwice) {
  const uint16_t port = test::freeLoopbackPort();
  const std::string address = "TESTPACS@127.0.0.1:" + std::to_string(port);
  startServer(address);
  ASSERT_TRUE(waitFor([&] { return pacsStatus(0).value("attempts", 0) >= 2; }, 30, 0.1)) << server_->logTail();
  const json down = pacsStatus(0);
  EXPECT_EQ(down["state"], "pending");
  EXPECT_NE(down.value("last_error", "").find("127.0.0.1:" + std::to_string(port)), std::string::npos) << down.dump();

  test::OrthancOptions po;
  po.dicomPort = port;
  test::OrthancServer pacs(po);
  ASSERT_TRUE(waitStored(0, 60)) << pacsStatus(0).dump() << "\n" << server_->logTail();
  EXPECT_EQ(orthancInstances(pacs), 1u);

  // A crash after the C-STORE but before the status reached the disk: the restarted server
  // stores the generation again, under the same UIDs, and the PACS still holds one copy.
  server_->kill();
  fs::remove(data_ / "pacs-publish" / kTask / "0.json");
  startServer(address);
  ASSERT_TRUE(waitStored(0)) << server_->logTail();
  EXPECT_EQ(pacsStatus(0)["attempts"], 1);
  EXPECT_EQ(orthancInstances(pacs), 1u);
  const auto found = dicom::PacsClient(dicom::PacsAddress::parse(address)).findModels(taskQuery());
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].instances, 1);
}

TEST_F(ServerPacsPublishTest, ASitePullsFromThePacsWithTheServersSignedHashAndWithoutTheServerOnlyTheObjectsOwn) {
  test::OrthancServer pacs;
  startServer(pacs.address());
  ASSERT_EQ(server_->http().post("/v1/models/" + kTask + "/updates", encodeDelta(kTask, 0, randomDelta(base_.weights, 5)), siteToken_).status,
            202);
  ASSERT_TRUE(waitForGeneration(server_->http(), kTask, siteToken_, 1, 30));
  ASSERT_TRUE(waitStored(1)) << server_->logTail();
  const model::Model served = downloadModel(server_->http(), kTask, 1, siteToken_);
  auto pull = [&](const std::string& from, const std::string& home) {
    return runTessera({"client", "pull", "--from-pacs", from, "--server", "http://127.0.0.1:" + std::to_string(server_->port()),
                       "--token", siteToken_, "--task", kTask, "--home", (dir_.path() / home).string()});
  };
  const auto cached = [&](const std::string& home) {
    return model::loadModel(dir_.path() / home / "models" / kTask / "generation-1.tsm");
  };

  const auto [status, out] = pull(pacs.address(), "site-a");
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("generation 1"), std::string::npos) << out;
  EXPECT_EQ(cached("site-a").weightsSha256(), served.weightsSha256());
  EXPECT_EQ(maxAbsDifference(cached("site-a").weights, served.weights), 0.0);

  // Another PACS holding other weights under the same task and generation: the server's signed
  // record exposes them.
  test::OrthancServer impostor;
  const fs::path forged = dir_.path() / "forged.dcm";
  dicom::saveModelDicom(makeModel(kTask, tinySpec(), 99, 1), forged);
  dicom::PacsClient(dicom::PacsAddress::parse(impostor.address())).push({forged});
  const auto [badStatus, badOut] = pull(impostor.address(), "site-b");
  EXPECT_NE(badStatus, 0) << badOut;
  EXPECT_NE(badOut.find("differs from the server's signed record"), std::string::npos) << badOut;
  EXPECT_FALSE(fs::exists(dir_.path() / "site-b" / "models" / kTask / "generation-1.tsm"));

  // The server away: the PACS's newest generation, intact by its own hash, with a warning.
  server_->kill();
  const auto [offStatus, offOut] = pull(pacs.address(), "site-c");
  ASSERT_EQ(offStatus, 0) << offOut;
  EXPECT_NE(offOut.find("own SHA-256 only"), std::string::npos) << offOut;
  EXPECT_EQ(cached("site-c").weightsSha256(), served.weightsSha256());
}

TEST_F(ServerPacsPublishTest, AMalformedPacsAddressStopsTheServerAtStartWithOneLine) {
  EXPECT_THROW(startServer("not-a-pacs"), std::runtime_error);
}

}  // namespace
}  // namespace tessera::servertest
