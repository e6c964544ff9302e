// HTTPS: what a site sees when the certificate is wrong, and a handshake that never finishes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "ServerHarness.h"

namespace tessera::servertest {

namespace {

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
  CommandResult r;
  std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A CA and a server certificate for DNS name "localhost" only, made with the openssl tool.
void makeCertificates(const fs::path& dir) {
  const std::string d = dir.string();
  const std::string script =
      "cd '" + d + "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca >/dev/null 2>&1 && "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
      "printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
      "-extfile san.ext >/dev/null 2>&1";
  ASSERT_EQ(std::system(script.c_str()), 0) << "openssl could not make test certificates";
}

// A data folder under `dir` with site "site-a" and, when `seeded`, a brain model; certificates
// for "localhost" beside it. `serverArgs` start the server on them.
struct TlsFolder {
  fs::path data;
  std::string token;
  std::vector<std::string> serverArgs;
  std::string ca;
};

TlsFolder prepareTls(const fs::path& dir, bool seeded = true) {
  makeCertificates(dir);
  TlsFolder f;
  f.data = dir / "data";
  fs::create_directories(f.data);
  f.token = addSite(f.data, "site-a");
  if (seeded) seed(f.data, makeModel("brain"));
  f.serverArgs = {"--tls-cert", (dir / "server.pem").string(), "--tls-key", (dir / "server.key").string()};
  f.ca = (dir / "ca.pem").string();
  return f;
}

std::string statusCommand(const std::string& url, const std::string& token, const std::string& caCert,
                          const fs::path& home) {
  std::string c = std::string("'") + tesseraBinary() + "' client status --server '" + url + "' --token '" + token +
                  "' --task brain --home '" + home.string() + "'";
  if (!caCert.empty()) c += " --ca-cert '" + caCert + "'";
  return c;
}

}  // namespace

TEST(ServerTls, CertificateProblemsAreNamedAndStatusFails) {
  TempDir dir;
  const TlsFolder tls = prepareTls(dir.path());
  const std::string& token = tls.token;
  ServerProcess server(tls.data, tls.serverArgs);
  const std::string port = std::to_string(server.port());
  const std::string& ca = tls.ca;

  const auto good = run(statusCommand("https://localhost:" + port, token, ca, dir.path() / "home1"));
  EXPECT_EQ(good.status, 0) << good.output;

  // The certificate is for "localhost"; 127.0.0.1 is the same server under another name.
  const auto wrongName = run(statusCommand("https://127.0.0.1:" + port, token, ca, dir.path() / "home2"));
  EXPECT_NE(wrongName.status, 0) << wrongName.output;
  EXPECT_NE(wrongName.output.find("not issued for this host name"), std::string::npos) << wrongName.output;

  const auto untrusted = run(statusCommand("https://localhost:" + port, token, "", dir.path() / "home3"));
  EXPECT_NE(untrusted.status, 0) << untrusted.output;
  EXPECT_NE(untrusted.output.find("not trusted"), std::string::npos) << untrusted.output;
  EXPECT_EQ(untrusted.output.find("host name"), std::string::npos) << untrusted.output;
}

// --pin-sha256 (the server certificate's DER SHA-256, as openssl prints it) on top of the CA
// check: the right pin connects, any other is refused with a message naming the pin.
TEST(ServerTls, CertificatePinIsEnforced) {
  TempDir dir;
  const TlsFolder tls = prepareTls(dir.path());
  const std::string& token = tls.token;
  ServerProcess server(tls.data, tls.serverArgs);
  const std::string url = "https://localhost:" + std::to_string(server.port());
  const std::string& ca = tls.ca;
  const auto fingerprint = run("openssl x509 -noout -fingerprint -sha256 -in '" + (dir.path() / "server.pem").string() + "'");
  ASSERT_EQ(fingerprint.status, 0) << fingerprint.output;
  std::string pin = fingerprint.output.substr(fingerprint.output.find('=') + 1);
  while (!pin.empty() && std::isspace(static_cast<unsigned char>(pin.back()))) pin.pop_back();

  const auto good = run(statusCommand(url, token, ca, dir.path() / "home1") + " --pin-sha256 '" + pin + "'");
  EXPECT_EQ(good.status, 0) << good.output;
  std::string wrongPin = pin;
  wrongPin[0] = wrongPin[0] == 'A' ? 'B' : 'A';
  const auto wrong = run(statusCommand(url, token, ca, dir.path() / "home2") + " --pin-sha256 '" + wrongPin + "'");
  EXPECT_NE(wrong.status, 0) << wrong.output;
  EXPECT_NE(wrong.output.find("differs from pin_sha256"), std::string::npos) << wrong.output;
}

TEST(ServerTls, PlainHttpToAnotherMachineNeedsInsecure) {
  TempDir dir;
  const auto refused = run(statusCommand("http://192.0.2.1:8470", "t", "", dir.path() / "home"));
  EXPECT_EQ(refused.status, 2) << refused.output;  // config: refused before any connection
  EXPECT_NE(refused.output.find("--insecure"), std::string::npos) << refused.output;
}

TEST(ServerTls, StatusFailsWhenTheServerIsUnreachable) {
  TempDir dir;
  // A port nothing listens on: bound once to learn a free number, then released.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  const auto r = run(statusCommand("http://127.0.0.1:" + std::to_string(port), "t", "", dir.path() / "home"));
  EXPECT_EQ(r.status, 6) << r.output;  // exit status of `unreachable`
  EXPECT_NE(r.output.find("cannot reach"), std::string::npos) << r.output;
}

// A TLS handshake that never finishes must not hold a worker past the header deadline.
TEST(ServerTls, StalledHandshakesAreCutOff) {
  TempDir dir;
  TlsFolder tls = prepareTls(dir.path(), /*seeded=*/false);
  tls.serverArgs.insert(tls.serverArgs.end(), {"--threads", "4", "--header-timeout", "2"});
  ServerProcess server(tls.data, tls.serverArgs);
  std::vector<int> stalled;
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server.port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL);  // the start of a ClientHello, then nothing
    stalled.push_back(fd);
  }
  // Each connection must be closed by the server within 2 s past the 2 s deadline; the wait
  // ends as soon as the last one is.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(4000);
  int closed = 0;
  for (int fd : stalled) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    char byte;
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) > 0 && ::recv(fd, &byte, 1, 0) <= 0) ++closed;
    ::close(fd);
  }
  EXPECT_EQ(closed, 8);
  const auto r = run(statusCommand("https://localhost:" + std::to_string(server.port()), "x", tls.ca,
                                   dir.path() / "home"));
  EXPECT_NE(r.output.find("refused the token (401)"), std::string::npos) << r.output;  // answered, token refused
}

}  // namespace tessera::servertest
