#pragma once
// Runs the real `tessera server` process on loopback for the HTTP tests: a fresh data folder per
// test, the registry prepared in-process (or with the admin CLI) before the server starts, and
// small helpers to build update files and to look at what the server stored.

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tessera/common/Sha256.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/ChildProcess.h"

namespace tessera::servertest {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// TESSERA_TEST_BINARY runs the tests against another build (an older one, to show a regression
// test failing before its fix).
inline const char* tesseraBinary() {
  const char* other = std::getenv("TESSERA_TEST_BINARY");
  return other && *other ? other : TESSERA_BINARY;
}

// cpp-httplib 0.11 sends without MSG_NOSIGNAL: a server that hangs up on a request body would
// otherwise kill the whole test binary with SIGPIPE instead of failing one test.
inline const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// ---- scratch folders ------------------------------------------------------------------------

// A fresh folder per test, named after it; removed afterwards unless the test failed (then its
// server log is worth reading) or TESSERA_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "scratch";
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = fs::temp_directory_path() /
            ("tessera-server-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const bool failed = info && info->result() && info->result()->Failed();
    if (failed || std::getenv("TESSERA_KEEP_TEST_DIRS")) {
      std::fprintf(stderr, "test folder kept: %s\n", path_.c_str());
      return;
    }
    // A second try: removal can trip over an entry that vanished while it was being listed.
    std::error_code ec;
    for (int attempt = 0; attempt < 3 && fs::exists(path_, ec); ++attempt) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// ---- models and updates ---------------------------------------------------------------------

inline model::NetworkSpec tinySpec() {
  model::NetworkSpec spec;
  spec.dims = 2;
  spec.axis = 2;
  spec.baseFeatures = 4;
  spec.depth = 2;
  return spec;
}

inline model::Model makeModel(const std::string& task, const model::NetworkSpec& spec = tinySpec(), uint64_t seed = 7,
                           int64_t generation = 0, const std::string& modality = "MR", const std::string& anatomy = "BRAIN",
                           const std::string& disease = "none") {
  model::TaskInfo info;
  info.name = task;
  info.modality = modality;
  info.anatomy = anatomy;
  info.disease = disease;
  model::Model model = model::initialModel(spec, model::Preprocessing{}, info, seed);
  model.generation = generation;
  return model;
}

// Small random values shaped like `like` (a plausible fine-tuning step).
inline common::WeightSet randomDelta(const common::WeightSet& like, uint64_t seed, float scale = 0.01f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  common::WeightSet d = like;
  for (auto& t : d) {
    for (auto& v : t.values) v = u(rng);
  }
  return d;
}

inline std::string encodeDelta(const std::string& task, int64_t baseGeneration, const common::WeightSet& delta,
                               double samples = 10) {
  federation::ModelUpdate u;
  u.header.task = task;
  u.header.baseGeneration = baseGeneration;
  u.header.kind = federation::UpdateKind::Delta;
  u.header.samples = samples;
  u.header.metrics = {{"dice", 0.5}};
  u.weights = delta;
  return federation::encodeUpdate(u);
}

// Largest |a − b| over every value; infinity when the tensors do not line up.
inline double maxAbsDifference(const common::WeightSet& a, const common::WeightSet& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].values.size() != b[i].values.size()) return INFINITY;
    for (size_t k = 0; k < a[i].values.size(); ++k) {
      const double d = std::abs(double(a[i].values[k]) - double(b[i].values[k]));
      if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;
    }
  }
  return worst;
}

// ---- the data folder, before the server starts (or after it stopped) -------------------------

inline std::string addSite(const fs::path& data, const std::string& name, const std::string& role = "site") {
  server::Registry registry(data);
  return registry.addSite(name, role).second;
}

inline json seed(const fs::path& data, const model::Model& model, const std::string& strategy = "fedavg") {
  server::Registry registry(data);
  server::BlobStore blobs(data);
  return server::seedModel(registry, blobs, model, strategy);
}

inline json setPolicy(const fs::path& data, const std::string& task, const json& patch) {
  server::Registry registry(data);
  return server::updatePolicy(registry, task, patch);
}

// Every stored blob (relative path), leaving out the temporary folder.
inline std::set<std::string> storedBlobs(const fs::path& data) {
  std::set<std::string> out;
  const fs::path root = data / "blobs";
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const auto rel = fs::relative(e.path(), root);
    if (*rel.begin() == "tmp") continue;
    if (e.is_regular_file()) out.insert(rel.string());
  }
  return out;
}

inline size_t temporaryFiles(const fs::path& data) {
  const fs::path tmp = data / "blobs" / "tmp";
  if (!fs::exists(tmp)) return 0;
  return static_cast<size_t>(std::distance(fs::directory_iterator(tmp), fs::directory_iterator()));
}

// Runs `tessera ARGS…` to completion and returns its stdout; fails the test on a non-zero exit.
inline std::string runCli(const std::vector<std::string>& args) {
  std::string command = std::string("'") + tesseraBinary() + "'";
  for (const auto& a : args) command += " '" + a + "'";
  command += " 2>/dev/null";
  std::FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "cannot run " << command;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_EQ(status, 0) << command << "\n" << out;
  return out;
}

// ---- HTTP -----------------------------------------------------------------------------------

struct Reply {
  int status = -1;  // -1: no answer (the error says why)
  std::string body;
  httplib::Headers headers;
  std::string error;

  nlohmann::json asJson() const {
    try {
      return nlohmann::json::parse(body);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "HTTP " << status << " body is not JSON (" << e.what() << "): " << body.substr(0, 300) << error;
      return nullptr;
    }
  }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string describe() const { return "HTTP " + std::to_string(status) + " " + body.substr(0, 500) + error; }
};

class Http {
 public:
  explicit Http(int port) : port_(port) {}

  Reply get(const std::string& path, const std::string& token = "") const {
    return send([&](httplib::Client& c, const httplib::Headers& h) { return c.Get(path.c_str(), h); }, token);
  }
  Reply post(const std::string& path, const std::string& body, const std::string& token = "",
             const std::string& type = "application/octet-stream") const {
    return send([&](httplib::Client& c, const httplib::Headers& h) { return c.Post(path.c_str(), h, body, type.c_str()); },
                token);
  }
  // The body without Content-Length (chunked), as a streaming client would send it.
  Reply postChunked(const std::string& path, const std::string& body, const std::string& token) const {
    return send(
        [&](httplib::Client& c, const httplib::Headers& h) {
          return c.Post(
              path.c_str(), h,
              [&body](size_t offset, httplib::DataSink& sink) {
                if (offset < body.size()) {
                  sink.write(body.data() + offset, std::min<size_t>(body.size() - offset, 1000));
                } else {
                  sink.done();
                }
                return true;
              },
              "application/octet-stream");
        },
        token);
  }
  Reply put(const std::string& path, const std::string& body, const std::string& token = "") const {
    return send([&](httplib::Client& c, const httplib::Headers& h) { return c.Put(path.c_str(), h, body, "application/json"); },
                token);
  }
  Reply withRawAuthorization(const std::string& path, const std::string& authorization) const {
    httplib::Client c("127.0.0.1", port_);
    configure(c);
    return toReply(c.Get(path.c_str(), httplib::Headers{{"Authorization", authorization}}));
  }

  // Convenience for the common case: a JSON answer with the expected status.
  json getJson(const std::string& path, const std::string& token, int expected = 200) const {
    const Reply r = get(path, token);
    EXPECT_EQ(r.status, expected) << path << ": " << r.describe();
    return r.status == expected ? r.asJson() : json(nullptr);
  }

 private:
  static void configure(httplib::Client& c) {
    c.set_connection_timeout(10, 0);
    c.set_read_timeout(120, 0);
    c.set_write_timeout(120, 0);
  }
  static Reply toReply(const httplib::Result& r) {
    Reply out;
    if (!r) {
      out.error = " (no answer: " + httplib::to_string(r.error()) + ")";
      return out;
    }
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    return out;
  }
  template <typename F>
  Reply send(F&& f, const std::string& token) const {
    httplib::Client c("127.0.0.1", port_);
    configure(c);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return toReply(f(c, h));
  }
  int port_;
};

// Checks the API's error shape: {"error": {"code": CODE, "message": "…"}} with the status.
inline ::testing::AssertionResult isError(const Reply& r, int status, const std::string& code) {
  if (r.status != status) return ::testing::AssertionFailure() << "expected HTTP " << status << " " << code << ", got " << r.describe();
  json j;
  try {
    j = json::parse(r.body);
  } catch (const std::exception&) {
    return ::testing::AssertionFailure() << "error body is not JSON: " << r.body.substr(0, 300);
  }
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) {
    return ::testing::AssertionFailure() << "no {\"error\":{…}} object: " << r.body;
  }
  const auto& e = j["error"];
  if (!e.contains("code") || e["code"] != code) return ::testing::AssertionFailure() << "expected code '" << code << "': " << r.body;
  if (!e.contains("message") || !e["message"].is_string() || e["message"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "error without a message: " << r.body;
  }
  return ::testing::AssertionSuccess();
}

// Polls `condition` until it holds or `seconds` pass; returns whether it held.
inline bool waitFor(const std::function<bool()>& condition, double seconds, double pollSeconds = 0.02) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    if (condition()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::duration<double>(pollSeconds));
  }
}

// ---- the server process ---------------------------------------------------------------------

class ServerProcess {
 public:
  // Starts `tessera server` on a free loopback port and waits until it listens.
  explicit ServerProcess(const fs::path& data, const std::vector<std::string>& extraArgs = {}) : data_(data) {
    portFile_ = data.parent_path() / (data.filename().string() + ".port");
    log_ = data.parent_path() / (data.filename().string() + ".log");
    std::error_code ec;
    fs::remove(portFile_, ec);
    std::vector<std::string> args{tesseraBinary(), "server", "--data", data.string(), "--listen", "127.0.0.1:0",
                                  "--port-file", portFile_.string()};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    process_ = std::make_unique<common::ChildProcess>(args, log_);
    const bool up = waitFor(
        [&] {
          if (!process_->running()) return true;
          std::ifstream in(portFile_);
          int port = 0;
          if (in >> port && port > 0) {
            port_ = port;
            return true;
          }
          return false;
        },
        60, 0.01);
    if (!up || port_ <= 0) {
      throw std::runtime_error("tessera server did not start (" + std::string(up ? "exited" : "timed out") + "); log:\n" +
                               common::tailOfFile(log_, 30));
    }
  }
  ~ServerProcess() {
    if (process_ && process_->running()) kill();
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  Http http() const { return Http(port_); }
  const fs::path& logFile() const { return log_; }
  std::string logTail(int lines = 40) const { return common::tailOfFile(log_, lines); }
  pid_t pid() const { return process_->pid(); }

  // SIGKILL: no destructor, no flush, exactly a crash.
  void kill() {
    process_->signal(SIGKILL);
    process_->wait();
  }
  // SIGTERM: the clean shutdown; returns the exit status.
  int stop() {
    process_->signal(SIGTERM);
    return process_->wait();
  }

 private:
  fs::path data_, portFile_, log_;
  std::unique_ptr<common::ChildProcess> process_;
  int port_ = -1;
};

// The queued-update count the server reports on /healthz (-1 when it does not answer); a
// degraded server (503) still reports it.
inline int64_t queuedUpdates(const Http& http) {
  const Reply r = http.get("/healthz");
  if (r.status != 200 && r.status != 503) return -1;
  return json::parse(r.body).value("queued_updates", int64_t{-1});
}

inline std::optional<int64_t> latestGeneration(const Http& http, const std::string& task, const std::string& token) {
  const Reply r = http.get("/v1/models/" + task + "/generations/latest", token);
  if (r.status != 200) return std::nullopt;
  return json::parse(r.body).at("generation").get<int64_t>();
}

// Waits until the latest generation is at least `generation`; returns it (nullopt on timeout).
inline std::optional<json> waitForGeneration(const Http& http, const std::string& task, const std::string& token,
                                             int64_t generation, double seconds = 60) {
  std::optional<json> found;
  waitFor(
      [&] {
        const Reply r = http.get("/v1/models/" + task + "/generations/latest", token);
        if (r.status != 200) return false;
        const json g = json::parse(r.body);
        if (g.at("generation").get<int64_t>() < generation) return false;
        found = g;
        return true;
      },
      seconds, 0.05);
  return found;
}

inline model::Model downloadModel(const Http& http, const std::string& task, int64_t generation, const std::string& token) {
  const Reply r = http.get("/v1/models/" + task + "/generations/" + std::to_string(generation) + "/model", token);
  if (r.status != 200) throw std::runtime_error("download failed: " + r.describe());
  if (common::sha256Hex(r.body) != r.header("X-Tessera-Sha256")) throw std::runtime_error("download: X-Tessera-Sha256 mismatch");
  return model::decodeModel(r.body, "downloaded generation " + std::to_string(generation));
}

}  // namespace tessera::servertest
