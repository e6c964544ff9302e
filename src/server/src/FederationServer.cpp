#include "tessera/server/FederationServer.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>

#include "tessera/common/Error.h"
#include "JsonViews.h"
#include "MergeLoop.h"
#include "ServerMetrics.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Sha256.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/UpdateCheck.h"
#include "tessera/common/Error.h"
#include "tessera/common/Error.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Hard cap for any request body; per-model policies set lower limits for updates.
constexpr size_t kMaxBodyBytes = size_t{4} << 30;
constexpr uint64_t kMaxJsonBody = 8 << 20;
// A refused upload's body is still read and dropped, up to this much: answering while unread
// data sits in the socket makes the kernel reset the connection, and the client then sees a
// network error instead of the refusal (413, 401, 403 …).
constexpr uint64_t kDrainBytes = uint64_t{64} << 20;

void sendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void sendError(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  sendJson(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

json parseJsonBody(const httplib::Request& req) {
  if (req.body.size() > kMaxJsonBody) throw Error(ErrorCode::TooLarge, "JSON body over 8 MiB");
  try {
    return json::parse(req.body);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::BadRequest, std::string("body is not valid JSON: ") + e.what());
  }
}

int64_t parseGeneration(const std::string& text) {
  try {
    size_t used = 0;
    const long long g = std::stoll(text, &used);
    if (used == text.size() && g >= 0) return g;
  } catch (const std::exception&) {
  }
  throw Error(ErrorCode::BadRequest, "generation '" + text + "' is not a non-negative integer");
}

}  // namespace

struct FederationServer::Impl {
  ServerOptions options;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<BlobStore> blobs;
  ServerMetrics metrics;
  std::unique_ptr<MergeLoop> mergeLoop;
  std::unique_ptr<httplib::Server> http;
  std::thread listener;
  int port = 0;
  std::mutex shaMutex;
  std::map<std::string, std::string> modelFileSha;  // "<task>/<generation>" → SHA-256 of the .tsm

  explicit Impl(ServerOptions o) : options(std::move(o)) {
    fs::create_directories(options.dataDir);
    registry = std::make_unique<Registry>(options.dataDir);
    blobs = std::make_unique<BlobStore>(options.dataDir);
    blobs->removeTemporaryFiles();
    mergeLoop = std::make_unique<MergeLoop>(*registry, *blobs, options.dataDir, metrics, options.log, options.pollSeconds,
                                            options.scorer);
  }

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  Site authenticate(const httplib::Request& req) const {
    const std::string header = req.get_header_value("Authorization");
    if (header.empty()) throw Error(ErrorCode::Unauthorized, "missing 'Authorization: Bearer <token>' header");
    if (header.rfind("Bearer ", 0) != 0) throw Error(ErrorCode::Unauthorized, "Authorization header is not a bearer token");
    const auto site = registry->siteForToken(header.substr(7));
    if (!site) throw Error(ErrorCode::Unauthorized, "unknown or revoked token");
    return *site;
  }

  Site require(const httplib::Request& req, const std::string& role) const {
    Site site = authenticate(req);
    if (!role.empty() && site.role != role) {
      throw Error(ErrorCode::Forbidden, "this needs the '" + role + "' role; token of '" + site.name + "' has role '" + site.role + "'");
    }
    return site;
  }

  ModelRecord modelOr404(const std::string& task) const {
    auto m = registry->model(task);
    if (!m) throw Error(ErrorCode::NotFound, "no model for task '" + task + "'");
    return *m;
  }

  GenerationRecord generationOr404(const ModelRecord& m, const std::string& which) const {
    std::optional<GenerationRecord> g =
        which == "latest" ? registry->latestGeneration(m.id) : registry->generation(m.id, parseGeneration(which));
    if (!g) throw Error(ErrorCode::NotFound, "model '" + m.task + "' has no generation " + which);
    return *g;
  }

  // Runs a route body; every exception becomes the API's JSON error.
  template <typename Body>
  void guard(httplib::Response& res, Body&& body) {
    ++metrics.requests;
    try {
      body();
      return;
    } catch (const Error& e) {
      // Update refusals (422) are counted apart: they are sites' mistakes, not the server's.
      if (e.httpStatus() == 422) ++metrics.updatesRejected;
      if (e.httpStatus() >= 500) log(std::string("error ") + std::string(e.codeName()) + ": " + e.what());
      sendError(res, e.httpStatus(), std::string(e.codeName()), e.what());
    } catch (const std::invalid_argument& e) {
      sendError(res, 400, "bad_request", e.what());
    } catch (const std::exception& e) {
      log(std::string("internal error: ") + e.what());
      sendError(res, 500, "internal", e.what());
    }
    ++metrics.errors;
  }

  void routes();
  void errorRoutes(httplib::Server& svr);
  void healthRoutes(httplib::Server& svr);
  void modelRoutes(httplib::Server& svr);
  void generationRoutes(httplib::Server& svr);
  void policyRoutes(httplib::Server& svr);
  void updateRoutes(httplib::Server& svr);
  void usageRoutes(httplib::Server& svr);
  void receiveEvents(const httplib::Request& req, httplib::Response& res);
  void drainRefusedBody(const httplib::Request& req, const httplib::ContentReader& reader);
  void receiveUpdate(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                     const std::string& task);
  void sendModelFile(httplib::Response& res, const ModelRecord& m, const GenerationRecord& g);
  std::string prometheus() const;
};

void FederationServer::Impl::receiveUpdate(const httplib::Request& req, httplib::Response& res,
                                           const httplib::ContentReader& reader, const std::string& task) {
  const Site site = require(req, "site");
  const ModelRecord model = modelOr404(task);
  const auto policy = federation::policyFromJson(model.policy);
  const std::string declared = req.get_header_value("Content-Length");
  const auto overLimit = [&] {
    return Error(ErrorCode::TooLarge, (declared.empty() ? "update" : "update of " + declared + " bytes") +
                                           " is over the limit of " + std::to_string(policy.maxUpdateBytes) + " bytes");
  };
  const uint64_t drainLimit = policy.maxUpdateBytes + std::min(kDrainBytes, UINT64_MAX - policy.maxUpdateBytes);
  // Too large to be worth reading even to drop it: the route closes the connection unread.
  if (!declared.empty() && std::stoull(declared) > drainLimit) throw overLimit();
  // Stream the body to a temporary file: nothing is stored until every check has passed, and a
  // large update never sits in memory. Once over the limit, the rest is read and dropped (up to
  // kDrainBytes more) so that the client gets to read the 413.
  common::AtomicFileWriter file(options.dataDir / "blobs" / "tmp");
  common::Sha256 hash;
  bool tooLarge = !declared.empty() && std::stoull(declared) > policy.maxUpdateBytes;
  uint64_t received = 0;
  reader([&](const char* data, size_t length) {
    received += length;
    if (received > policy.maxUpdateBytes) tooLarge = true;
    if (tooLarge) return received <= drainLimit;
    file.write(std::string_view(data, length));
    hash.update(std::string_view(data, length));
    return true;
  });
  if (tooLarge) throw overLimit();
  metrics.uploadBytes += file.bytesWritten();
  const auto info = federation::readUpdateFileInfo(file.temporaryPath(), "update");
  const auto base = registry->generation(model.id, info.header.baseGeneration);
  if (!base) {
    throw Error(ErrorCode::UnknownBase, "update starts from generation " + std::to_string(info.header.baseGeneration) +
                                                      ", which model '" + task + "' does not have");
  }
  const auto latest = registry->latestGeneration(model.id);
  if (latest && latest->generation - base->generation > policy.maxStaleness) {
    throw Error(ErrorCode::StaleBase, "update starts from generation " + std::to_string(base->generation) + ", " +
                                                    std::to_string(latest->generation - base->generation) +
                                                    " behind the latest; the policy accepts at most " +
                                                    std::to_string(policy.maxStaleness) + " (pull and train again)");
  }
  const auto check = federation::checkUpdateFile(file.temporaryPath(), task, {blobs->pathOf(base->weightsSha256), 0, 0}, policy);
  const std::string sha = hash.finishHex();
  const fs::path target = blobs->pathOf(sha);
  fs::create_directories(target.parent_path());
  file.commit(target);

  NewUpdate u;
  u.modelId = model.id;
  u.siteId = site.id;
  u.baseGeneration = base->generation;
  u.kind = federation::toString(check.info.header.kind);
  u.samples = check.info.header.samples;
  u.metrics = json::object();
  for (const auto& [k, v] : check.info.header.metrics) u.metrics[k] = v;
  u.blobSha256 = sha;
  u.weightsOffset = static_cast<int64_t>(check.info.weightsOffset);
  u.weightsBytes = static_cast<int64_t>(check.info.weightsLength);
  u.deltaNorm = check.deltaNorm;
  const int64_t id = registry->addUpdate(u);
  ++metrics.updatesAccepted;
  log("model '" + task + "': update " + std::to_string(id) + " from site '" + site.name + "' queued (base generation " +
      std::to_string(base->generation) + ", " + std::to_string(static_cast<int64_t>(u.samples)) + " samples)");
  mergeLoop->notify();
  sendJson(res, 202, {{"update", id}, {"status", "queued"}, {"delta_norm", check.deltaNorm}});
}

void FederationServer::Impl::sendModelFile(httplib::Response& res, const ModelRecord& m, const GenerationRecord& g) {
  model::Model meta;
  meta.spec = model::networkSpecFromJson(m.header.at("spec"));
  meta.preprocessing = model::preprocessingFromJson(m.header.at("preprocessing"));
  meta.task = model::taskInfoFromJson(m.header.at("task"));
  meta.generation = g.generation;
  meta.parentGeneration = g.parent;
  auto prefix = std::make_shared<std::string>(
      model::encodeModelPrefix(meta, g.parameters, static_cast<uint64_t>(g.weightsBytes), g.weightsSha256));
  const fs::path blob = blobs->pathOf(g.weightsSha256);
  const std::string key = m.task + "/" + std::to_string(g.generation);
  std::string fileSha;
  {
    std::lock_guard lock(shaMutex);
    if (auto it = modelFileSha.find(key); it != modelFileSha.end()) fileSha = it->second;
  }
  if (fileSha.empty()) {
    common::Sha256 h;
    h.update(*prefix);
    std::FILE* f = std::fopen(blob.c_str(), "rb");
    if (!f) throw Error(ErrorCode::Io, blob.string() + ": weights blob missing");
    std::vector<char> buf(1 << 20);
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.update(std::string_view(buf.data(), n));
    std::fclose(f);
    fileSha = h.finishHex();
    std::lock_guard lock(shaMutex);
    modelFileSha[key] = fileSha;
  }
  res.set_header("X-Tessera-Sha256", fileSha);
  res.set_header("Content-Disposition", "attachment; filename=\"" + m.task + "-generation-" + std::to_string(g.generation) + ".tsm\"");
  const size_t total = prefix->size() + static_cast<size_t>(g.weightsBytes);
  auto file = std::shared_ptr<std::FILE>(std::fopen(blob.c_str(), "rb"), [](std::FILE* f) {
    if (f) std::fclose(f);
  });
  if (!file) throw Error(ErrorCode::Io, blob.string() + ": weights blob missing");
  res.set_content_provider(total, "application/octet-stream",
                           [prefix, file](size_t offset, size_t length, httplib::DataSink& sink) {
                             if (offset < prefix->size()) {
                               const size_t n = std::min(length, prefix->size() - offset);
                               return sink.write(prefix->data() + offset, n);
                             }
                             std::vector<char> buf(std::min<size_t>(length, 1 << 20));
                             std::fseek(file.get(), static_cast<long>(offset - prefix->size()), SEEK_SET);
                             const size_t n = std::fread(buf.data(), 1, buf.size(), file.get());
                             return n > 0 && sink.write(buf.data(), n);
                           });
}

std::string FederationServer::Impl::prometheus() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    char line[64];
    std::snprintf(line, sizeof line, "%.17g", value);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + line + "\n";
  };
  metric("tessera_http_requests_total", "counter", "HTTP requests handled.", metrics.requests.load());
  metric("tessera_http_errors_total", "counter", "Requests answered with an error.", metrics.errors.load());
  metric("tessera_updates_accepted_total", "counter", "Updates accepted and queued.", metrics.updatesAccepted.load());
  metric("tessera_updates_rejected_total", "counter", "Updates refused by validation.", metrics.updatesRejected.load());
  metric("tessera_upload_bytes_total", "counter", "Bytes of update bodies received.", metrics.uploadBytes.load());
  metric("tessera_generations_published_total", "counter", "Generations published by merges.", metrics.generationsPublished.load());
  metric("tessera_candidates_rejected_total", "counter", "Candidates held back by the validation gate.", metrics.candidatesRejected.load());
  metric("tessera_merge_seconds_total", "counter", "Time spent merging.", metrics.mergeMicroseconds.load() / 1e6);
  metric("tessera_merged_parameters_total", "counter", "Parameters read from updates by merges.", metrics.mergedParameters.load());
  metric("tessera_queued_updates", "gauge", "Updates waiting for a merge.", static_cast<double>(registry->queuedCount()));
  return out;
}

void FederationServer::Impl::receiveEvents(const httplib::Request& req, httplib::Response& res) {
  const Site s = require(req, "site");
  const json body = parseJsonBody(req);
  if (!body.is_object() || !body.contains("events") || !body["events"].is_array()) {
    throw Error(ErrorCode::BadRequest, "body must be {\"events\": [...]}");
  }
  static const std::vector<std::string> kTypes{"predict", "correct", "train", "push"};
  std::vector<UsageEvent> events;
  for (const auto& e : body["events"]) {
    UsageEvent ev;
    try {
      ev.type = e.at("type").get<std::string>();
      ev.task = e.value("task", "");
      if (e.contains("seconds") && !e["seconds"].is_null()) ev.seconds = e["seconds"].get<double>();
      if (e.contains("dice") && !e["dice"].is_null()) ev.dice = e["dice"].get<double>();
    } catch (const json::exception& x) {
      throw Error(ErrorCode::BadRequest, std::string("event ") + e.dump() + ": " + x.what());
    }
    if (std::find(kTypes.begin(), kTypes.end(), ev.type) == kTypes.end()) {
      throw Error(ErrorCode::BadRequest, "event type '" + ev.type + "' is not one of predict, correct, train, push");
    }
    events.push_back(ev);
  }
  registry->addEvents(s.id, events);
  sendJson(res, 202, {{"accepted", events.size()}});
}

// Refused before the body was read (token, role, task, declared size): drop the body, if it is
// not hopelessly large, so that the client reads the answer instead of a reset.
void FederationServer::Impl::drainRefusedBody(const httplib::Request& req, const httplib::ContentReader& reader) {
  const std::string declared = req.get_header_value("Content-Length");
  const bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
  const bool drainable = chunked || (!declared.empty() && declared.size() < 19 &&
                                     declared.find_first_not_of("0123456789") == std::string::npos &&
                                     std::stoull(declared) <= kDrainBytes);
  if (!drainable) return;
  uint64_t dropped = 0;
  reader([&](const char*, size_t length) {
    dropped += length;
    return dropped <= kDrainBytes;
  });
}

// What httplib answers by itself (unknown route, body over the limit, a throw) as JSON errors.
void FederationServer::Impl::errorRoutes(httplib::Server& svr) {
  svr.set_payload_max_length(kMaxBodyBytes);
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    // Only statuses set by httplib itself arrive here without a JSON body (404 route, 413 …).
    if (res.body.empty()) {
      const std::string code = res.status == 404 ? "not_found" : res.status == 413 ? "too_large" : "http_" + std::to_string(res.status);
      sendError(res, res.status, code, res.status == 404 ? "no such route" : "request refused with HTTP status " + std::to_string(res.status));
    }
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    sendError(res, 500, "internal", "unexpected server error");
  });

}

// /healthz, /metrics and /v1/whoami: probes and identity.
void FederationServer::Impl::healthRoutes(httplib::Server& svr) {
  svr.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    guard(res, [&] {
      sendJson(res, 200, {{"status", "ok"}, {"models", registry->models({}).size()}, {"queued_updates", registry->queuedCount()}});
    });
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    guard(res, [&] { res.set_content(prometheus(), "text/plain; version=0.0.4"); });
  });
  svr.Get("/v1/whoami", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      const Site s = require(req, "");
      sendJson(res, 200, {{"name", s.name}, {"role", s.role}});
    });
  });
}

// /v1/models: list, seed, one model.
void FederationServer::Impl::modelRoutes(httplib::Server& svr) {
  svr.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      ModelFilter f{req.get_param_value("task"), req.get_param_value("modality"), req.get_param_value("anatomy"),
                    req.get_param_value("disease")};
      json list = json::array();
      for (const auto& m : registry->models(f)) list.push_back(modelSummaryJson(m, registry->latestGeneration(m.id)));
      sendJson(res, 200, {{"models", list}});
    });
  });
  svr.Post("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "admin");
      const model::Model model = model::decodeModel(req.body, "uploaded model");
      const std::string strategy = req.has_param("strategy") ? req.get_param_value("strategy") : "fedavg";
      const json seeded = seedModel(*registry, *blobs, model, strategy);
      log("model '" + model.task.name + "' seeded at generation " + std::to_string(model.generation));
      const auto m = modelOr404(model.task.name);
      sendJson(res, 201, modelSummaryJson(m, registry->latestGeneration(m.id)));
    });
  });
  svr.Get(R"(/v1/models/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      const auto m = modelOr404(req.matches[1]);
      sendJson(res, 200, modelSummaryJson(m, registry->latestGeneration(m.id)));
    });
  });
}

// /v1/models/T/generations: history, one generation, its model file.
void FederationServer::Impl::generationRoutes(httplib::Server& svr) {
  svr.Get(R"(/v1/models/([^/]+)/generations)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      const auto m = modelOr404(req.matches[1]);
      json list = json::array();
      for (const auto& g : registry->generations(m.id)) list.push_back(generationJson(m.task, g));
      for (const auto& c : registry->rejectedCandidates(m.id)) list.push_back(rejectedCandidateJson(m.task, c));
      std::stable_sort(list.begin(), list.end(), [](const json& a, const json& b) {
        return a.at("created_at").get<double>() < b.at("created_at").get<double>();
      });
      sendJson(res, 200, {{"generations", list}});
    });
  });
  svr.Get(R"(/v1/models/([^/]+)/generations/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      const auto m = modelOr404(req.matches[1]);
      sendJson(res, 200, generationJson(m.task, generationOr404(m, req.matches[2])));
    });
  });
  svr.Get(R"(/v1/models/([^/]+)/generations/([^/]+)/model)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      const auto m = modelOr404(req.matches[1]);
      sendModelFile(res, m, generationOr404(m, req.matches[2]));
    });
  });
}

// /v1/models/T/policy (admin).
void FederationServer::Impl::policyRoutes(httplib::Server& svr) {
  svr.Get(R"(/v1/models/([^/]+)/policy)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "admin");
      sendJson(res, 200, federation::toJson(federation::policyFromJson(modelOr404(req.matches[1]).policy)));
    });
  });
  svr.Put(R"(/v1/models/([^/]+)/policy)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "admin");
      modelOr404(req.matches[1]);
      const json policy = updatePolicy(*registry, req.matches[1], parseJsonBody(req));
      mergeLoop->notify();
      sendJson(res, 200, policy);
    });
  });
}

// /v1/models/T/updates and /v1/updates/N: uploads and their status.
void FederationServer::Impl::updateRoutes(httplib::Server& svr) {
  svr.Post(R"(/v1/models/([^/]+)/updates)",
           [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
             bool bodyRead = false;
             const httplib::ContentReader tracked(
                 [&](httplib::ContentReceiver receiver) {
                   bodyRead = true;
                   return reader(std::move(receiver));
                 },
                 [&](httplib::MultipartContentHeader header, httplib::ContentReceiver receiver) {
                   bodyRead = true;
                   return reader(std::move(header), std::move(receiver));
                 });
             guard(res, [&] { receiveUpdate(req, res, tracked, req.matches[1]); });
             if (!bodyRead && res.status >= 400) drainRefusedBody(req, reader);
           });
  svr.Get(R"(/v1/models/([^/]+)/updates)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "admin");
      const auto m = modelOr404(req.matches[1]);
      json list = json::array();
      for (const auto& u : registry->updates(m.id, req.get_param_value("status"))) list.push_back(updateJson(m.task, u));
      sendJson(res, 200, {{"updates", list}});
    });
  });
  svr.Get(R"(/v1/updates/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      const Site s = require(req, "");
      // More digits than any id has (std::stoll would throw out_of_range: a 500) is no update.
      const std::string digits = req.matches[1];
      const auto u = digits.size() <= 18 ? registry->update(std::stoll(digits)) : std::nullopt;
      if (!u || (s.role != "admin" && u->siteId != s.id)) {
        throw Error(ErrorCode::NotFound, "no update " + std::string(req.matches[1]) + " of yours");
      }
      const auto m = registry->modelById(u->modelId);
      sendJson(res, 200, updateJson(m ? m->task : "", *u));
    });
  });
}

// /v1/events and /v1/stats: usage reported by sites.
void FederationServer::Impl::usageRoutes(httplib::Server& svr) {
  svr.Post("/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] { receiveEvents(req, res); });
  });
  svr.Get("/v1/stats", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "admin");
      sendJson(res, 200, registry->usageStats());
    });
  });
}

void FederationServer::Impl::routes() {
  auto& svr = *http;
  errorRoutes(svr);
  healthRoutes(svr);
  modelRoutes(svr);
  generationRoutes(svr);
  policyRoutes(svr);
  updateRoutes(svr);
  usageRoutes(svr);
}

FederationServer::FederationServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

FederationServer::~FederationServer() {
  stop();
  wait();
}

void FederationServer::start() {
  auto& o = impl_->options;
  if (!o.tlsCert.empty() || !o.tlsKey.empty()) {
    if (o.tlsCert.empty() || o.tlsKey.empty()) throw std::invalid_argument("--tls-cert and --tls-key go together");
    auto ssl = std::make_unique<httplib::SSLServer>(o.tlsCert.c_str(), o.tlsKey.c_str());
    if (!ssl->is_valid()) {
      throw std::runtime_error("cannot load the TLS certificate " + o.tlsCert.string() + " / key " + o.tlsKey.string());
    }
    impl_->http = std::move(ssl);
  } else {
    impl_->http = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(2, o.threads);
  impl_->http->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  impl_->routes();
  if (o.port == 0) {
    impl_->port = impl_->http->bind_to_any_port(o.host);
    if (impl_->port < 0) throw std::runtime_error("cannot listen on " + o.host + " (any port)");
  } else {
    if (!impl_->http->bind_to_port(o.host, o.port)) {
      throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (in use or not allowed)");
    }
    impl_->port = o.port;
  }
  impl_->mergeLoop->start();
  impl_->mergeLoop->notify();  // updates queued before a restart are merged now
  impl_->listener = std::thread([this] { impl_->http->listen_after_bind(); });
}

int FederationServer::port() const { return impl_->port; }

void FederationServer::wait() {
  if (impl_->listener.joinable()) impl_->listener.join();
}

void FederationServer::stop() {
  if (impl_->http) impl_->http->stop();
  impl_->mergeLoop->stop();
}

}  // namespace tessera::server
