// Denial of service without a token: slow and oversized clients against the real server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "RawConnection.h"
#include "ServerHarness.h"

namespace tessera::servertest {

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int statusOf(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(response.substr(9, 3)) : -1;
}

long rssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class ServerSlowClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    adminToken_ = addSite(dir_.path(), "operator", "admin");
    siteToken_ = addSite(dir_.path(), "site-a");
    seed(dir_.path(), makeModel("brain"));
  }
  TempDir dir_;
  std::string adminToken_;
  std::string siteToken_;
};

}  // namespace

// Slowloris: 32 connections each sending one header line a second must not keep healthy
// clients waiting, and are cut off once the header deadline passes.
TEST_F(ServerSlowClientTest, SlowHeadersDoNotStarveHealthyClients) {
  ServerProcess server(dir_.path(), {"--threads", "8", "--header-timeout", "3"});
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 32; ++i) {
    slow.push_back(std::make_unique<RawConnection>(server.port()));
    ASSERT_TRUE(slow.back()->connected());
    slow.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  }
  double worst = 0;
  int answered = 0;
  const auto start = Clock::now();
  while (since(start) < 6) {
    for (auto& c : slow) c->send("X-Slow: 1\r\n");
    const auto asked = Clock::now();
    RawConnection healthy(server.port(), "127.0.0.2");
    healthy.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string reply = healthy.receive(5);
    worst = std::max(worst, since(asked));
    EXPECT_EQ(statusOf(reply), 200) << reply.substr(0, 200);
    ++answered;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::printf("healthz under 32 slow clients: %d answers, slowest %.3f s\n", answered, worst);
  EXPECT_LT(worst, 2.0);
  // Every slow connection is gone by now (3 s deadline, checked every 0.1 s).
  int closed = 0;
  for (auto& c : slow) closed += c->closedByServer(1.0) ? 1 : 0;
  EXPECT_EQ(closed, 32);
}

TEST_F(ServerSlowClientTest, SlowBodyIsCutOff) {
  ServerProcess server(dir_.path(), {"--body-grace", "2"});
  RawConnection c(server.port());
  c.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + siteToken_ +
         "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{");
  const auto start = Clock::now();
  bool closed = false;
  while (!closed && since(start) < 8) {
    c.send(" ");
    closed = c.closedByServer(0.5);
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(since(start), 6.0);  // 2 s grace + 1000 bytes at 64 KiB/s, checked every 0.1 s
}

// A client that sends its header and a large body in one go, while every worker is busy, has
// megabytes in the kernel before anyone read its header: that is not an oversized header.
TEST_F(ServerSlowClientTest, ABodyQueuedBehindBusyWorkersIsNotAnOversizedHeader) {
  ServerProcess server(dir_.path(), {"--threads", "2"});
  std::vector<std::unique_ptr<RawConnection>> busy;
  for (int i = 0; i < 2; ++i) {
    busy.push_back(std::make_unique<RawConnection>(server.port()));
    busy.back()->send("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + siteToken_ +
                      "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both workers now wait for a body
  const std::string body = "{\"events\": [{\"type\": \"train\", \"task\": \"brain\"}]" + std::string(2 << 20, ' ') + "}";
  RawConnection upload(server.port());
  ASSERT_TRUE(upload.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + siteToken_ +
                          "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 1 << 20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // several supervisor scans
  busy.clear();                                                 // the workers are free again
  upload.send(body.substr(1 << 20));
  const std::string reply = upload.receive(10);
  EXPECT_EQ(statusOf(reply), 202) << reply.substr(0, 300) << "\n" << server.logTail(5);
}

TEST_F(ServerSlowClientTest, ShutdownDoesNotWaitForSlowClients) {
  ServerProcess server(dir_.path());
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 4; ++i) {
    slow.push_back(std::make_unique<RawConnection>(server.port()));
    slow.back()->send("GET /healthz HTTP/1.1\r\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto start = Clock::now();
  EXPECT_EQ(server.stop(), 0);
  std::printf("SIGTERM with 4 slow clients: exited after %.2f s\n", since(start));
  EXPECT_LT(since(start), 3.0);
}

TEST_F(ServerSlowClientTest, OneAddressHoldsAtMostItsCap) {
  ServerProcess server(dir_.path(), {"--max-connections-per-address", "4"});
  std::vector<std::unique_ptr<RawConnection>> many;
  for (int i = 0; i < 12; ++i) {
    many.push_back(std::make_unique<RawConnection>(server.port()));
    many.back()->send("GET /healthz HTTP/1.1\r\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  int closed = 0;
  for (auto& c : many) closed += c->closedByServer(0.2) ? 1 : 0;
  EXPECT_EQ(closed, 8);
}

// An unauthenticated body must not be read into memory: 256 MiB without a token.
TEST_F(ServerSlowClientTest, UnauthenticatedBodiesAreNotBuffered) {
  ServerProcess server(dir_.path());
  const long before = rssKb(server.pid());
  for (const std::string path : {"/v1/models", "/v1/events", "/v1/no/such/route"}) {
    RawConnection c(server.port());
    c.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n");
    const std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 256; ++i) {
      if (!c.send(chunk)) break;  // the server may stop reading once it has answered
    }
    const std::string reply = c.receive(3);
    EXPECT_TRUE(statusOf(reply) == 401 || statusOf(reply) == 404 || reply.empty()) << path << ": " << reply.substr(0, 200);
  }
  const long after = rssKb(server.pid());
  std::printf("server RSS before %ld KiB, after 3 x 256 MiB unauthenticated bodies %ld KiB\n", before, after);
  EXPECT_LT(after - before, 64 * 1024);
}

TEST_F(ServerSlowClientTest, OversizedHeadersAreRefusedAndForgotten) {
  ServerProcess server(dir_.path());
  const long before = rssKb(server.pid());
  for (int k = 0; k < 4; ++k) {
    RawConnection c(server.port());
    std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 2000; ++i) head += "X-Filler-" + std::to_string(i) + ": " + std::string(1000, 'f') + "\r\n";
    c.send(head + "\r\n");
    // Refused with 431 if the header was parsed, or cut off while it was arriving.
    const std::string reply = c.receive(3);
    EXPECT_TRUE(statusOf(reply) == 431 || reply.empty()) << reply.substr(0, 200);
  }
  {
    // Within the byte limit but with too many fields: parsed, then refused.
    RawConnection c(server.port());
    std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 100; ++i) head += "X-F" + std::to_string(i) + ": 1\r\n";
    c.send(head + "\r\n");
    const std::string reply = c.receive(3);
    EXPECT_EQ(statusOf(reply), 431) << reply.substr(0, 200);
  }
  // A request line with no end and header lines without end: the connection is cut long
  // before the server holds them.
  for (int k = 0; k < 4; ++k) {
    RawConnection c(server.port());
    c.send("GET /");
    const std::string chunk(1 << 20, 'a');
    int sent = 0;
    while (sent < 256 && c.send(chunk)) ++sent;
    EXPECT_LT(sent, 256) << "a 256 MiB request line was read to the end";
  }
  const long after = rssKb(server.pid());
  std::printf("server RSS before %ld KiB, after 4 x 2 MB headers and 4 endless request lines %ld KiB\n", before, after);
  EXPECT_LT(after - before, 32 * 1024);
  EXPECT_EQ(server.http().get("/healthz").status, 200);
}

TEST_F(ServerSlowClientTest, ClientMistakesAreFourHundredsWithARequestId) {
  ServerProcess server(dir_.path());
  auto raw = [&](const std::string& request) {
    RawConnection c(server.port());
    c.send(request);
    return c.receive(3);
  };
  for (const std::string length : {"abc", "99999999999999999999", "-1"}) {
    const std::string reply = raw("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + siteToken_ +
                                  "\r\nContent-Length: " + length + "\r\n\r\n");
    const int status = statusOf(reply);
    EXPECT_TRUE(status == 400 || status == 413) << length << ": " << reply.substr(0, 300);
  }
  const std::string multipart = raw("POST /v1/models/brain/updates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + siteToken_ +
                                    "\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 4\r\n\r\n--b\n");
  EXPECT_EQ(statusOf(multipart), 415) << multipart.substr(0, 300);
  // Invalid UTF-8 in a JSON body and in a path: answered, never a 500.
  const Reply badUtf8 = server.http().post("/v1/events", "{\"events\": [{\"type\": \"\xff\xfe\"}]}", siteToken_);
  EXPECT_TRUE(isError(badUtf8, 400, "bad_request")) << badUtf8.describe();
  EXPECT_FALSE(badUtf8.header("X-Request-Id").empty());
  EXPECT_EQ(badUtf8.asJson()["error"]["request_id"], badUtf8.header("X-Request-Id"));
  const Reply badPath = server.http().get("/v1/models/\xff\xfe", siteToken_);
  EXPECT_GE(badPath.status, 400);
  EXPECT_LT(badPath.status, 500) << badPath.describe();
}

// Ranges are not offered: a Range header gets the whole body with its true length.
TEST_F(ServerSlowClientTest, RangeRequestsGetTheWholeModel) {
  ServerProcess server(dir_.path());
  RawConnection c(server.port());
  c.send("GET /v1/models/brain/generations/latest/model HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + siteToken_ +
         "\r\nRange: bytes=-1000000000\r\nConnection: close\r\n\r\n");
  const std::string reply = c.receive(5);
  ASSERT_EQ(statusOf(reply), 200) << reply.substr(0, 300);
  const auto headEnd = reply.find("\r\n\r\n");
  const auto at = reply.find("Content-Length: ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(std::stoull(reply.substr(at + 16)), reply.size() - headEnd - 4);
  const auto model = model::decodeModel(reply.substr(headEnd + 4), "downloaded");
  EXPECT_EQ(model.task.name, "brain");
}

}  // namespace tessera::servertest
