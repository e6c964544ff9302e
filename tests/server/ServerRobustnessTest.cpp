// Clients that misbehave the way real networks do: hanging up in the middle of a download or an
// upload, or sending a body far over the limit. The server must answer what it can, keep nothing
// of a broken upload, and above all keep running.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "RawConnection.h"
#include "ServerHarness.h"
#include "tessera/common/Container.h"

namespace tessera::servertest {
namespace {

const std::string kTask = "brain-mr";

class ServerRobustnessTest : public ::testing::Test {
 protected:
  void start(const model::NetworkSpec& spec) {
    data_ = dir_.path() / "data";
    base_ = makeModel(kTask, spec);
    seed(data_, base_);
    siteToken_ = addSite(data_, "hospital-a");
    adminToken_ = addSite(data_, "ops", "admin");
    server_ = std::make_unique<ServerProcess>(data_);
  }
  Http http() const { return server_->http(); }

  void expectAlive() {
    const Reply health = http().get("/healthz");
    EXPECT_EQ(health.status, 200) << "the server died: " << health.describe() << "\n" << server_->logTail();
  }

  TempDir dir_;
  fs::path data_;
  model::Model base_;
  std::string siteToken_, adminToken_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerRobustnessTest, ClientHangingUpMidDownloadDoesNotKillTheServer) {
  model::NetworkSpec spec = tinySpec();
  spec.baseFeatures = 32;
  spec.depth = 5;  // ~31 MB of weights: far more than the socket buffers hold
  start(spec);
  for (int i = 0; i < 3; ++i) {
    RawConnection c(server_->port());
    ASSERT_TRUE(c.send("GET /v1/models/" + kTask + "/generations/0/model HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                       siteToken_ + "\r\n\r\n"));
    const std::string start = c.receiveSome(4096);
    EXPECT_EQ(start.rfind("HTTP/1.1 200", 0), 0u) << start.substr(0, 200);
    c.close();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the server writes into the reset
  }
  expectAlive();
  // And it still serves the whole file to a client that stays.
  const model::Model m = downloadModel(http(), kTask, 0, siteToken_);
  EXPECT_EQ(maxAbsDifference(m.weights, base_.weights), 0.0);
}

TEST_F(ServerRobustnessTest, UploadCutOffMidwayLeavesNothing) {
  start(tinySpec());
  const std::string body = encodeDelta(kTask, 0, randomDelta(base_.weights, 9));
  const auto blobs = storedBlobs(data_);
  for (int i = 0; i < 3; ++i) {
    RawConnection c(server_->port());
    ASSERT_TRUE(c.send("POST /v1/models/" + kTask + "/updates HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + siteToken_ +
                       "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n\r\n" + body.substr(0, body.size() / 2)));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c.close();
  }
  EXPECT_TRUE(waitFor([&] { return temporaryFiles(data_) == 0; }, 10)) << "partial uploads must not stay in blobs/tmp";
  expectAlive();
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_EQ(storedBlobs(data_), blobs);
  // The whole upload still works afterwards.
  EXPECT_EQ(http().post("/v1/models/" + kTask + "/updates", body, siteToken_).status, 202);
}

TEST_F(ServerRobustnessTest, FarOversizedUploadIsAnsweredWithTooLarge) {
  start(tinySpec());
  ASSERT_EQ(http().put("/v1/models/" + kTask + "/policy", R"({"max_update_bytes": 1048576})", adminToken_).status, 200);
  const auto blobs = storedBlobs(data_);
  // Several MB over the limit: more than the socket buffers take, so a server that answers
  // without reading the body resets the connection under the client's feet instead. An update
  // whose header says how large it is (without Content-Length, the header is what tells).
  const json header{{"format", "tessera-update"}, {"task", kTask}, {"base_generation", 0}, {"kind", "delta"},
                    {"samples", 1}, {"metrics", json::object()}, {"parameters", 2 << 20}, {"weights_bytes", 8 << 20},
                    {"weights_sha256", std::string(64, '0')}};
  const std::string body = common::encodeContainerPrefix(common::ContainerKind::Update, header, 8 << 20) + std::string(8 << 20, 'x');
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(isError(http().post("/v1/models/" + kTask + "/updates", body, siteToken_), 413, "too_large")) << "sized, try " << i;
    EXPECT_TRUE(isError(http().postChunked("/v1/models/" + kTask + "/updates", body, siteToken_), 413, "too_large"))
        << "chunked, try " << i;
  }
  expectAlive();
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_EQ(storedBlobs(data_), blobs);
  EXPECT_EQ(temporaryFiles(data_), 0u);
}

TEST_F(ServerRobustnessTest, LargeUploadsRefusedBeforeTheBodyGetTheirAnswer) {
  start(tinySpec());
  const auto blobs = storedBlobs(data_);
  // A real update of a real network is tens of MB: refused by role, token or task, the client
  // must still read why rather than a reset connection.
  const std::string body(8 << 20, 'x');
  const std::string path = "/v1/models/" + kTask + "/updates";
  EXPECT_TRUE(isError(http().post(path, body, adminToken_), 403, "forbidden"));
  EXPECT_TRUE(isError(http().post(path, body, ""), 401, "unauthorized"));
  EXPECT_TRUE(isError(http().post("/v1/models/no-such-task/updates", body, siteToken_), 404, "not_found"));
  EXPECT_TRUE(isError(http().postChunked(path, body, adminToken_), 403, "forbidden"));
  expectAlive();
  EXPECT_EQ(queuedUpdates(http()), 0);
  EXPECT_EQ(storedBlobs(data_), blobs);
}

}  // namespace
}  // namespace tessera::servertest
