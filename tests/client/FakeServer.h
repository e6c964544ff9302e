#pragma once
// A stand-in for the federation server: a real HTTP server on 127.0.0.1 (any free port) that
// answers the routes the client calls the way docs/API.md says the real one does. Tests flip its
// switches to provoke refusals, corrupt transfers and failing usage reporting.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tessera/common/Sha256.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/model/Model.h"

namespace tessera::test {

class FakeServer {
 public:
  static constexpr const char* kSiteToken = "site-token-123";
  static constexpr const char* kAdminToken = "admin-token-456";

  // Serves `model` as the latest published generation of its task.
  explicit FakeServer(const model::Model& model)
      : task_(model.task.name), generation_(model.generation), modelBytes_(model::encodeModel(model)),
        weightsSha_(model.weightsSha256()) {
    routes();
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeServer() {
    http_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Serves `model` from now on as the latest generation, as a server rolled back or restored
  // from a backup does: a generation number the client has seen may now name other weights.
  void serve(const model::Model& model) {
    std::lock_guard lock(mutex_);
    generation_ = model.generation;
    modelBytes_ = model::encodeModel(model);
    weightsSha_ = model.weightsSha256();
  }

  // Switches.
  std::atomic<bool> corruptChecksum{false};  // announce a wrong X-Tessera-Sha256
  std::atomic<bool> rejectUpdates{false};    // 422 norm_too_large
  std::atomic<bool> failEvents{false};       // 500 on /v1/events
  std::string strategy = "fedavg";           // set before the client asks

  // What the server received.
  std::vector<federation::ModelUpdate> updates() {
    std::lock_guard lock(mutex_);
    return updates_;
  }
  std::vector<nlohmann::json> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  int downloads() const { return downloads_; }

 private:
  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(), "application/json");
  }
  static void answer(httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  }

  // The role of the request's token, or "" after answering 401.
  std::string role(const httplib::Request& req, httplib::Response& res) const {
    const std::string auth = req.get_header_value("Authorization");
    if (auth == std::string("Bearer ") + kSiteToken) return "site";
    if (auth == std::string("Bearer ") + kAdminToken) return "admin";
    error(res, 401, "unauthorized", auth.empty() ? "missing bearer token" : "unknown token");
    return "";
  }

  bool knownTask(const httplib::Request& req, httplib::Response& res) const {
    if (req.matches[1] == task_) return true;
    error(res, 404, "not_found", "no model for task '" + req.matches[1].str() + "'");
    return false;
  }

  nlohmann::json generationJson() const {
    std::lock_guard lock(mutex_);
    return {{"task", task_},        {"generation", generation_},   {"parent", generation_ - 1},
            {"status", "published"}, {"weights_sha256", weightsSha_}, {"strategy", strategy},
            {"merged_updates", nlohmann::json::array()}, {"validation", nullptr}, {"reason", ""},
            {"created_at", "2024-05-01T12:00:00Z"}};
  }

  void routes() {
    http_.Get("/v1/whoami", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string r = role(req, res);
      if (!r.empty()) answer(res, 200, {{"name", r == "site" ? "hospital-a" : "root"}, {"role", r}});
    });
    http_.Get("/v1/stats", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string r = role(req, res);
      if (r == "site") error(res, 403, "forbidden", "admin role required for /v1/stats");
      if (r == "admin") answer(res, 200, {{"usage", nlohmann::json::array()}});
    });
    http_.Get(R"(/v1/models/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (role(req, res).empty() || !knownTask(req, res)) return;
      std::unique_lock lock(mutex_);
      const int64_t latest = generation_;
      lock.unlock();
      answer(res, 200, {{"task", task_}, {"modality", "MR"}, {"anatomy", "BRAIN"}, {"disease", "none"},
                        {"latest_generation", latest}, {"parameters", 1234}, {"strategy", strategy},
                        {"spec", nlohmann::json::object()}});
    });
    http_.Get(R"(/v1/models/([^/]+)/generations/latest)", [this](const httplib::Request& req, httplib::Response& res) {
      if (role(req, res).empty() || !knownTask(req, res)) return;
      answer(res, 200, generationJson());
    });
    http_.Get(R"(/v1/models/([^/]+)/generations/(\d+)/model)", [this](const httplib::Request& req, httplib::Response& res) {
      if (role(req, res).empty() || !knownTask(req, res)) return;
      std::unique_lock lock(mutex_);
      if (std::stoll(req.matches[2].str()) != generation_) return error(res, 404, "not_found", "no such generation");
      const std::string bytes = modelBytes_;
      lock.unlock();
      ++downloads_;
      res.set_header("X-Tessera-Sha256", corruptChecksum ? std::string(64, '0') : common::sha256Hex(bytes));
      res.set_content(bytes, "application/octet-stream");
    });
    http_.Post(R"(/v1/models/([^/]+)/updates)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string r = role(req, res);
      if (r.empty() || !knownTask(req, res)) return;
      if (r != "site") return error(res, 403, "forbidden", "only sites push updates");
      if (rejectUpdates) return error(res, 422, "norm_too_large", "update norm ratio 3.10 exceeds max_delta_norm_ratio 2.0");
      try {
        auto update = federation::decodeUpdate(req.body, "upload");
        std::lock_guard lock(mutex_);
        updates_.push_back(std::move(update));
      } catch (const std::exception& e) {
        return error(res, 422, "bad_update", e.what());
      }
      answer(res, 202, {{"update", 17}, {"status", "queued"}});
    });
    http_.Get(R"(/v1/updates/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (role(req, res).empty()) return;
      if (req.matches[1] != "17") return error(res, 404, "not_found", "no update " + req.matches[1].str());
      answer(res, 200, {{"id", 17}, {"task", task_}, {"site", "hospital-a"}, {"base_generation", generation_},
                        {"kind", "delta"}, {"status", "queued"}, {"merged_into", nullptr}, {"reason", ""}});
    });
    http_.Post("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
      if (role(req, res).empty()) return;
      if (failEvents) {
        res.status = 500;
        res.set_content("<html>Internal Server Error</html>", "text/html");
        return;
      }
      const auto body = nlohmann::json::parse(req.body);
      std::lock_guard lock(mutex_);
      for (const auto& e : body.at("events")) events_.push_back(e);
      answer(res, 202, {{"accepted", body.at("events").size()}});
    });
  }

  std::string task_;
  int64_t generation_;
  std::string modelBytes_;
  std::string weightsSha_;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;  // guards the served model, updates_ and events_
  std::vector<federation::ModelUpdate> updates_;
  std::vector<nlohmann::json> events_;
  std::atomic<int> downloads_{0};
};

}  // namespace tessera::test
