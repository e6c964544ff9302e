#include "tessera/server/FederationServer.h"

#include <httplib.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "tessera/common/Error.h"
#include "ConnectionSupervisor.h"
#include "JsonViews.h"
#include "MergeLoop.h"
#include "PacsPublisher.h"
#include "SecAggRounds.h"
#include "SignatureCheck.h"
#include "ServerMetrics.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Container.h"
#include "tessera/common/Sha256.h"
#include "tessera/federation/MergePolicy.h"
#include "tessera/federation/UpdateCheck.h"
#include "tessera/common/Error.h"
#include "tessera/common/Error.h"
#include "tessera/server/AdminTasks.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/HighWater.h"
#include "tessera/server/PrivacyLedger.h"
#include "tessera/server/Registry.h"
#include "tessera/model/TaskName.h"
#include "tessera/common/Error.h"

namespace tessera::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Hard cap for any request body; per-model policies set lower limits for updates.
constexpr size_t kMaxBodyBytes = size_t{4} << 30;
constexpr uint64_t kMaxJsonBody = 8 << 20;
// A seeded model (.tsm) uploaded by an admin.
constexpr uint64_t kMaxModelBytes = uint64_t{2} << 30;
// A refused upload's body is still read and dropped, up to this much: answering while unread
// data sits in the socket makes the kernel reset the connection, and the client then sees a
// network error instead of the refusal (413, 401, 403 …).
constexpr uint64_t kDrainBytes = uint64_t{64} << 20;

// A request's header is refused past these (431): what a client sends before its token is
// checked must not cost the server more than this.
constexpr size_t kMaxHeaderCount = 64;
constexpr size_t kMaxHeaderBytes = 32 << 10;

void sendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  // Messages quote client input, which may be invalid UTF-8: replaced, never a throw (a 500).
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// The body carries the request id (also in the X-Request-Id header) so that a report of a
// failure can be found in the server's log.
void sendError(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  json error{{"code", code}, {"message", message}};
  if (res.has_header("X-Request-Id")) error["request_id"] = res.get_header_value("X-Request-Id");
  sendJson(res, status, {{"error", error}});
}

json parseJsonBody(const std::string& body) {
  if (body.size() > kMaxJsonBody) throw Error(ErrorCode::TooLarge, "JSON body over 8 MiB");
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::BadRequest, std::string("body is not valid JSON: ") + e.what());
  }
}

// Content-Length as a number; absent is 0. Anything but 1..19 digits is the client's mistake.
uint64_t declaredLength(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return 0;
  const std::string text = req.get_header_value("Content-Length");
  if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(ErrorCode::BadRequest, "Content-Length '" + text.substr(0, 32) + "' is not a byte count");
  }
  return std::stoull(text);
}

// Reads a body of at most `limit` bytes (the caller checked the token first).
std::string readBody(const httplib::Request& req, const httplib::ContentReader& reader, uint64_t limit) {
  if (declaredLength(req) > limit) {
    throw Error(ErrorCode::TooLarge, "body of " + std::to_string(declaredLength(req)) + " bytes is over the limit of " +
                                         std::to_string(limit) + " for this route");
  }
  std::string body;
  bool over = false;
  reader([&](const char* data, size_t length) {
    if (body.size() + length > limit) {
      over = true;
      return false;
    }
    body.append(data, length);
    return true;
  });
  if (over) throw Error(ErrorCode::TooLarge, "body over the limit of " + std::to_string(limit) + " bytes for this route");
  return body;
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

// Usage events: per request and per site and hour. More is a client bug or an attack; either
// way it must not fill the registry or skew /v1/stats.
constexpr size_t kMaxEventsPerRequest = 1000;
constexpr int64_t kMaxEventsPerSiteHour = 10000;
constexpr double kMaxEventSeconds = 1e6;

// Temporary upload space per site: at most kUploadsPerSite uploads at once and, together, at most
// 2 × the model's max_update_bytes in flight (a body without Content-Length counts as it
// arrives). One site cannot fill the disk or every worker thread with uploads of its own.
constexpr int kUploadsPerSite = 2;

class UploadQuota {
 public:
  // Holds one upload's place for as long as it lives.
  class Slot {
   public:
    Slot(UploadQuota& quota, const Site& site, uint64_t limit) : quota_(quota), site_(site), limit_(limit) {
      std::lock_guard lock(quota_.mutex_);
      auto& used = quota_.sites_[site_.id];
      if (used.uploads >= kUploadsPerSite) {
        throw Error(ErrorCode::RateLimited, "site '" + site_.name + "' already has " + std::to_string(used.uploads) +
                                                " uploads in progress, the most the server takes from one site at a time; "
                                                "retry when one has finished");
      }
      ++used.uploads;
    }
    ~Slot() {
      std::lock_guard lock(quota_.mutex_);
      auto it = quota_.sites_.find(site_.id);
      it->second.bytes -= bytes_;
      if (--it->second.uploads == 0) quota_.sites_.erase(it);
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

    // Grows this upload's share to `bytes`; RateLimited when the site's uploads together would
    // be over the limit.
    void reserve(uint64_t bytes) {
      if (bytes <= bytes_) return;
      std::lock_guard lock(quota_.mutex_);
      auto& used = quota_.sites_[site_.id];
      if (used.bytes - bytes_ + bytes > limit_) {
        throw Error(ErrorCode::RateLimited, "site '" + site_.name + "' has " + std::to_string(used.bytes - bytes_) +
                                                " bytes of other uploads in flight; with this one's " + std::to_string(bytes) +
                                                " that is over its limit of " + std::to_string(limit_) +
                                                " bytes (twice max_update_bytes); retry when one has finished");
      }
      used.bytes += bytes - bytes_;
      bytes_ = bytes;
    }

   private:
    UploadQuota& quota_;
    Site site_;
    uint64_t limit_;
    uint64_t bytes_ = 0;
  };

 private:
  struct Used {
    int uploads = 0;
    uint64_t bytes = 0;
  };
  std::mutex mutex_;
  std::map<int64_t, Used> sites_;
};

}  // namespace

struct FederationServer::Impl {
  ServerOptions options;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<BlobStore> blobs;
  ServerMetrics metrics;
  std::unique_ptr<MergeLoop> mergeLoop;
  std::unique_ptr<PacsPublisher> pacsPublisher;  // null without --publish-pacs
  std::unique_ptr<SecAggRounds> secagg;
  std::unique_ptr<httplib::Server> http;
  std::thread listener;
  int port = 0;
  std::unique_ptr<ConnectionSupervisor> supervisor;
  std::atomic<uint64_t> requestCounter{0};
  std::string requestPrefix = [] {
    char text[16];
    std::snprintf(text, sizeof text, "%06x", static_cast<unsigned>(std::random_device{}() & 0xffffff));
    return std::string(text);
  }();
  std::mutex shaMutex;
  std::map<std::string, std::string> modelFileSha;  // "<task>/<generation>" → SHA-256 of the .tsm
  UploadQuota uploads;

  explicit Impl(ServerOptions o) : options(std::move(o)) {
    fs::create_directories(options.dataDir);
    registry = std::make_unique<Registry>(options.dataDir);
    // Before anything else touches the folder (leftover and orphan clean-up included): a
    // registry behind DATA/highwater.json has lost what sites were told; refuse to start.
    enforceHighWater(*registry, options.dataDir);
    blobs = std::make_unique<BlobStore>(options.dataDir);
    removeLeftovers();
    mergeLoop = std::make_unique<MergeLoop>(*registry, *blobs, options.dataDir, metrics, options.log, options.pollSeconds,
                                            options.scorer, options.normAdaptedScorer);
    secagg = std::make_unique<SecAggRounds>(*registry, options.dataDir, *mergeLoop, options.log);
    secagg->abortInterrupted();
    if (!options.publishPacs.empty()) {
      PacsPublishOptions po;
      po.address = options.publishPacs;
      po.callingAet = options.pacsCallingAet;
      po.retryBaseSeconds = options.pacsRetrySeconds;
      pacsPublisher = std::make_unique<PacsPublisher>(*registry, *blobs, options.dataDir, po, options.log);
    }
  }

  // A generation's JSON, with its PACS status when the server publishes to one.
  json generationView(const std::string& task, const GenerationRecord& g) const {
    json j = generationJson(task, g);
    if (pacsPublisher) j["pacs"] = pacsPublisher->statusOf(task, g.generation);
    return j;
  }

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  // At start-up, before the merge loop runs: what interrupted or failed writes left behind —
  // temporary files of uploads and merges, and blobs no row names (an insert that failed after
  // its blob was stored, a candidate that was never published). An unreferenced blob younger
  // than an hour is kept: `tessera server admin seed` may be between its blob and its row.
  void removeLeftovers() {
    static constexpr double kOrphanAgeSeconds = 3600;
    for (const auto& path : blobs->removeTemporaryFiles()) log("start-up: removed leftover temporary file " + path.string());
    for (const auto& path : blobs->removeUnreferenced(registry->referencedBlobs(), kOrphanAgeSeconds)) {
      log("start-up: removed orphan blob " + path.string() + " (no generation or update refers to it)");
    }
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

  // Every route that names a task comes here first: a name that breaks the task-name rule is
  // 400 bad_request, a valid name without a model 404.
  ModelRecord modelOr404(const std::string& task) const {
    model::requireValidTaskName(task, "task");
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
      if (e.httpStatus() >= 500) {
        log("request " + res.get_header_value("X-Request-Id") + ": error " + std::string(e.codeName()) + ": " + e.what());
      }
      sendError(res, e.httpStatus(), std::string(e.codeName()), e.what());
    } catch (const std::invalid_argument& e) {
      sendError(res, 400, "bad_request", e.what());
    } catch (const std::exception& e) {
      log("request " + res.get_header_value("X-Request-Id") + ": internal error: " + e.what());
      sendError(res, 500, "internal", e.what());
    }
    ++metrics.errors;
  }

  void routes();
  void requestChecks(httplib::Server& svr);
  void fallbackRoutes(httplib::Server& svr);
  void errorRoutes(httplib::Server& svr);
  void healthRoutes(httplib::Server& svr);
  void modelRoutes(httplib::Server& svr);
  void generationRoutes(httplib::Server& svr);
  void policyRoutes(httplib::Server& svr);
  void updateRoutes(httplib::Server& svr);
  void privacyRoutes(httplib::Server& svr);
  void candidateRoutes(httplib::Server& svr);
  void usageRoutes(httplib::Server& svr);
  void secAggRoutes(httplib::Server& svr);
  void receiveEvents(const httplib::Request& req, httplib::Response& res, const std::string& text);

  // A route with a body: `handle(req, res, reader)` checks the token before it reads anything; a
  // refusal before the body was read drops a bounded amount of it so that the client reads the
  // answer instead of a reset.
  template <typename Handle>
  httplib::Server::HandlerWithContentReader bodyRoute(Handle handle) {
    return [this, handle](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
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
      guard(res, [&] { handle(req, res, tracked); });
      if (!bodyRead && res.status >= 400) drainRefusedBody(req, reader);
    };
  }
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
  if (policy.secureAggregation) {
    // A plain upload would hand the server the single update the policy promises it never sees.
    throw Error(ErrorCode::Conflict, "model '" + task + "' runs secure aggregation: send the update through /v1/models/" + task +
                                         "/secagg/… (`tessera client push` does)");
  }
  const auto signature = readUploadSignature(req, *registry, site, options.requireSignatures);
  const bool sized = req.has_header("Content-Length");
  const uint64_t declared = declaredLength(req);
  const auto overLimit = [&](uint64_t bytes) {
    return Error(ErrorCode::TooLarge, "update of " + std::to_string(bytes) + (sized ? "" : "+") + " bytes is over the limit of " +
                                          std::to_string(policy.maxUpdateBytes) + " bytes");
  };
  // Refused before a byte of the body is read; the route drops what it can of it.
  if (sized && declared > policy.maxUpdateBytes) throw overLimit(declared);
  std::optional<UploadQuota::Slot> slot;
  try {
    slot.emplace(uploads, site, policy.maxUpdateBytes > UINT64_MAX / 2 ? UINT64_MAX : 2 * policy.maxUpdateBytes);
    slot->reserve(declared);
  } catch (const Error&) {
    res.set_header("Retry-After", "5");
    throw;
  }

  // The body arrives in stages. Its first bytes (container prefix and JSON header) stay in memory
  // and are checked before anything touches the disk: a body that is not an update, or an update
  // this server would refuse for its header, costs no disk space and is answered at once. Only
  // then is it streamed to a temporary file (never held in memory whole), and stored once every
  // check has passed. An upload that can only be a repeat or a conflict is hashed, not stored.
  enum class Stage { Header, Store, HashOnly, Drop };
  Stage stage = Stage::Header;
  std::string head;
  std::optional<federation::UpdateFileInfo> info;
  std::optional<GenerationRecord> base;
  std::optional<UpdateRecord> repeat;  // the update this one repeats (same idempotency key)
  std::optional<double> dpNoise;       // the noise multiplier its DP release is accounted with
  std::optional<Error> budgetRefusal;  // over the site's privacy budget, unless it is a repeat
  std::optional<common::AtomicFileWriter> file;
  common::Sha256 hash;
  std::exception_ptr refusal;
  uint64_t received = 0, refusedAt = 0;

  const auto roundFull = [&] {
    const int64_t queued = registry->queuedFrom(model.id, site.id);
    return Error(ErrorCode::Conflict, "site '" + site.name + "' already has " + std::to_string(queued) + " update" +
                                          (queued == 1 ? "" : "s") + " queued for model '" + task + "'; the policy takes " +
                                          std::to_string(policy.updatesPerSitePerRound) +
                                          " per site and round ('updates_per_site_per_round'): wait until it is merged");
  };

  // Everything the header alone decides; the answer is the stage for the rest of the body.
  const auto checkHeader = [&](const federation::UpdateFileInfo& i) {
    const auto& h = i.header;
    if (i.weightsOffset + i.weightsLength > policy.maxUpdateBytes) throw overLimit(i.weightsOffset + i.weightsLength);
    if (h.task != task) {
      throw Error(ErrorCode::TaskMismatch, "update is for task '" + h.task.substr(0, 80) + "', it was sent to model '" + task + "'");
    }
    if (!(h.samples <= policy.maxSamples)) {
      char text[64];
      std::snprintf(text, sizeof text, "%.6g", h.samples);
      char limit[64];
      std::snprintf(limit, sizeof limit, "%.6g", policy.maxSamples);
      throw Error(ErrorCode::BadUpdate, std::string("update header field 'samples' is ") + text + "; the policy of model '" + task +
                                            "' accepts at most " + limit + " ('max_samples')");
    }
    base = registry->generation(model.id, h.baseGeneration);
    if (!base) {
      throw Error(ErrorCode::UnknownBase, "update starts from generation " + std::to_string(h.baseGeneration) +
                                              ", which model '" + task + "' does not have");
    }
    const auto latest = registry->latestGeneration(model.id);
    if (latest && latest->generation - base->generation > policy.maxStaleness) {
      throw Error(ErrorCode::StaleBase, "update starts from generation " + std::to_string(base->generation) + ", " +
                                            std::to_string(latest->generation - base->generation) +
                                            " behind the latest; the policy accepts at most " +
                                            std::to_string(policy.maxStaleness) + " (pull and train again)");
    }
    // The same network has the same weight records, byte for byte in length.
    if (h.parameters != base->parameters || static_cast<int64_t>(i.weightsLength) != base->weightsBytes) {
      throw Error(ErrorCode::ShapeMismatch, "update holds " + std::to_string(h.parameters) + " parameters in " +
                                                std::to_string(i.weightsLength) + " bytes of weights; generation " +
                                                std::to_string(base->generation) + " of model '" + task + "' has " +
                                                std::to_string(base->parameters) + " in " +
                                                std::to_string(base->weightsBytes) + " (another network?)");
    }
    const uint64_t total = i.weightsOffset + i.weightsLength;
    if (sized && declared != total) {
      throw Error(ErrorCode::BadUpdate, "update: Content-Length " + std::to_string(declared) + " does not match the " +
                                            std::to_string(total) + " bytes its header declares (" +
                                            (declared < total ? "truncated" : "trailing bytes") + ")");
    }
    if (!h.idempotencyKey.empty()) {
      repeat = registry->sameUpdate(model.id, site.id, h.idempotencyKey, "");
      if (repeat) return Stage::HashOnly;
    }
    // Differential privacy: the update's release is accounted at this noise multiplier; refused
    // here, before its body is stored, when the policy wants DP it lacks or the site's budget is
    // spent (checked again in the transaction that queues it).
    if (h.dp && h.kind != federation::UpdateKind::Delta) {
      throw Error(ErrorCode::BadUpdate, "update declares local DP but is not a delta ('kind' is '" + federation::toString(h.kind) + "')");
    }
    dpNoise = accountedNoiseMultiplier(policy.dp, h.dp ? std::optional<double>(h.dp->noiseMultiplier) : std::nullopt, task);
    if (dpNoise) {
      try {
        checkPrivacyBudget(policy.dp, registry->privacySteps(model.id, site.id), *dpNoise, site.name, task);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::PrivacyBudgetExceeded) throw;
        // Refused unless its bytes repeat an update already counted (known once they are hashed).
        budgetRefusal = e;
        return Stage::HashOnly;
      }
    }
    if (registry->queuedFrom(model.id, site.id) < policy.updatesPerSitePerRound) return Stage::Store;
    // Over the site's share of the round: refused, unless it repeats an update of this site
    // (then its bytes say which). A key that is new means new bytes: refused at once.
    if (!h.idempotencyKey.empty()) throw roundFull();
    return Stage::HashOnly;
  };

  // A refused body is read and dropped, never stored, so that the client reads the answer rather
  // than a reset: all of it when its header was a well-formed update's (a real client, refused
  // for its base, task or sample count), otherwise only while that is cheap: a large body that
  // is no update at all is cut off at once.
  const auto keepDropping = [&] {
    if (sized) return info.has_value() || declared - std::min(declared, received) <= kDrainBytes;
    return received - refusedAt <= kDrainBytes || (info.has_value() && received <= policy.maxUpdateBytes);
  };
  reader([&](const char* data, size_t length) {
    received += length;
    if (stage == Stage::Drop) return keepDropping();
    try {
      if (!sized) {
        if (received > policy.maxUpdateBytes) throw overLimit(received);
        slot->reserve(received);
      }
      const std::string_view chunk(data, length);
      if (stage == Stage::Header) {
        head.append(chunk);
        info = federation::readUpdatePrefix(head, "update");
        if (!info) return true;
        stage = checkHeader(*info);
        if (stage == Stage::Store) {
          file.emplace(options.dataDir / "blobs" / "tmp");
          file->write(head);
        }
        hash.update(head);
        head = std::string();
        return true;
      }
      if (stage == Stage::Store) file->write(chunk);
      hash.update(chunk);
      return true;
    } catch (...) {
      refusal = std::current_exception();
      stage = Stage::Drop;
      refusedAt = received;
      file.reset();  // removes the temporary file
      return keepDropping();
    }
  });
  metrics.uploadBytes += received;
  if (refusal) {
    // A body cut off unread cannot be followed by another request on this connection.
    if (sized && received < declared) res.set_header("Connection", "close");
    try {
      std::rethrow_exception(refusal);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::RateLimited) res.set_header("Retry-After", "5");
      throw;
    }
  }
  if (stage == Stage::Header) {
    // The body ended inside its header: the reader of whole files names the problem.
    common::readContainerLayout(head, common::ContainerKind::Update, "update");
    throw Error(ErrorCode::BadUpdate, "update: truncated inside its header");
  }
  const uint64_t expected = info->weightsOffset + info->weightsLength;
  if (received != expected) {
    throw Error(ErrorCode::BadUpdate, received < expected ? "update: truncated: " + std::to_string(received) + " of the " +
                                                                std::to_string(expected) + " bytes its header declares"
                                                          : "update: " + std::to_string(received - expected) +
                                                                " unexpected bytes after the weights section");
  }
  const std::string sha = hash.finishHex();
  // Before anything is stored or answered as a repeat: the bytes must be the ones the site signed.
  if (signature) verifyUploadSignature(*registry, site, *signature, task, info->header.baseGeneration, sha);
  const auto answerRepeat = [&](const UpdateRecord& first) {
    log("model '" + task + "': update from site '" + site.name + "' repeats update " + std::to_string(first.id) +
        " (same " + (repeat ? "idempotency key" : "bytes") + "); not counted again");
    sendJson(res, 200, {{"update", first.id}, {"status", first.status}, {"duplicate", true}});
  };
  if (stage == Stage::HashOnly) {
    if (repeat) return answerRepeat(*repeat);
    if (const auto same = registry->sameUpdate(model.id, site.id, "", sha)) return answerRepeat(*same);
    if (budgetRefusal) throw *budgetRefusal;
    throw roundFull();
  }
  // The same bytes as an update this site sent before: no need to check or store them again.
  if (const auto same = registry->sameUpdate(model.id, site.id, "", sha)) return answerRepeat(*same);

  blobs->verify(base->weightsSha256);  // the norm check reads the base weights: never damaged ones
  // A locally private delta is mostly noise, ‖Δ‖ ≈ z·C·√P: the ratio to the model's norm says
  // nothing then. Its bound is the clip plus the noise's norm with a margin of 6 of its standard
  // deviations (σ/√2 for the norm of a P-dimensional Gaussian).
  auto checkPolicy = policy;
  const auto& declaredDp = info->header.dp;
  if (declaredDp) checkPolicy.maxDeltaNormRatio = 1e300;
  const auto check = federation::checkUpdateFile(file->temporaryPath(), task, {blobs->pathOf(base->weightsSha256), 0, 0}, checkPolicy);
  if (declaredDp) {
    const double c = declaredDp->clipNorm, sigma = declaredDp->noiseMultiplier * c;
    const double bound = c + sigma * (std::sqrt(static_cast<double>(check.info.header.parameters)) + 6);
    if (!(check.deltaNorm <= bound)) {
      char text[200];
      std::snprintf(text, sizeof text, "update norm %.4g is over %.4g, the most a delta clipped to %.4g with noise multiplier %.4g can have",
                    check.deltaNorm, bound, c, declaredDp->noiseMultiplier);
      throw Error(ErrorCode::NormTooLarge, text);
    }
  }
  const fs::path target = blobs->pathOf(sha);
  fs::create_directories(target.parent_path());
  file->commit(target);

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
  u.idempotencyKey = check.info.header.idempotencyKey;
  u.dpNoiseMultiplier = dpNoise;
  // One transaction decides, also between two copies of one upload arriving at the same time.
  const QueuedUpdate queued = registry->queueUpdate(u, policy.updatesPerSitePerRound, [&](const std::vector<PrivacyStep>& earlier) {
    if (dpNoise) checkPrivacyBudget(policy.dp, earlier, *dpNoise, site.name, task);
  });
  if (queued.duplicate) return answerRepeat(*registry->update(queued.id));
  const int64_t id = queued.id;
  try {
    // Before the 202: the id the site is told is then one the start-up check holds the registry to.
    raiseHighWater(options.dataDir, HighWaterMark{id, {}});
  } catch (const std::exception& e) {
    // The update is committed; refusing now would only make the site send it twice.
    log("error io: update " + std::to_string(id) + " is queued but " + highWaterFile(options.dataDir).string() +
        " could not record it: " + e.what());
  }
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
  // The weights are checked against their SHA-256 before a byte goes out (hashed once per change
  // of the file; BlobStore::openVerified) and then streamed from the very descriptor that was
  // checked: a damaged blob is answered with 500 `corrupt`, never served under a checksum
  // computed from the damaged bytes.
  std::shared_ptr<std::FILE> file;
  try {
    file = blobs->openVerified(g.weightsSha256);
  } catch (const Error& e) {
    // The registry names this generation, so a missing blob is the store's fault, not a 404.
    if (e.code() != ErrorCode::NotFound) throw;
    throw Error(ErrorCode::Corrupt, "model '" + m.task + "' generation " + std::to_string(g.generation) + ": " + e.what());
  }
  // Keyed by the weights too: a pending candidate (SiteGate.h) is served under the number it would
  // get, which another candidate may get instead.
  const std::string key = m.task + "/" + std::to_string(g.generation) + "/" + g.weightsSha256;
  std::string fileSha;
  {
    std::lock_guard lock(shaMutex);
    if (auto it = modelFileSha.find(key); it != modelFileSha.end()) fileSha = it->second;
  }
  if (fileSha.empty()) {
    common::Sha256 h;
    h.update(*prefix);
    std::vector<char> buf(1 << 20);
    std::rewind(file.get());
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), file.get())) > 0) h.update(std::string_view(buf.data(), n));
    if (std::ferror(file.get())) throw Error(ErrorCode::Io, blobs->pathOf(g.weightsSha256).string() + ": cannot read weights blob");
    fileSha = h.finishHex();
    std::lock_guard lock(shaMutex);
    modelFileSha[key] = fileSha;
  }
  res.set_header("X-Tessera-Sha256", fileSha);
  if (!g.signature.empty()) res.set_header("X-Tessera-Signature", g.signature);
  res.set_header("Content-Disposition", "attachment; filename=\"" + m.task + "-generation-" + std::to_string(g.generation) + ".tsm\"");
  const size_t total = prefix->size() + static_cast<size_t>(g.weightsBytes);
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
  metric("tessera_merge_failures_total", "counter", "Merge attempts that failed (logged; retried with back-off).",
         metrics.mergeFailures.load());
  metric("tessera_queued_updates", "gauge", "Updates waiting for a merge.", static_cast<double>(registry->queuedCount()));
  if (supervisor) {
    metric("tessera_connections_closed_slow_header_total", "counter", "Connections closed for not sending a header in time.",
           static_cast<double>(supervisor->closedSlowHeaders()));
    metric("tessera_connections_closed_slow_body_total", "counter", "Connections closed for sending a body too slowly.",
           static_cast<double>(supervisor->closedSlowBodies()));
    metric("tessera_connections_closed_address_cap_total", "counter", "Connections closed over the per-address cap.",
           static_cast<double>(supervisor->closedOverAddressCap()));
    metric("tessera_connections_closed_big_header_total", "counter", "Connections closed for an oversized request header.",
           static_cast<double>(supervisor->closedBigHeaders()));
    metric("tessera_connections_closed_header_budget_total", "counter",
           "Connections closed because too many waited for their header.", static_cast<double>(supervisor->closedOverHeaderBudget()));
  }
  return out;
}

void FederationServer::Impl::receiveEvents(const httplib::Request& req, httplib::Response& res, const std::string& text) {
  const Site s = require(req, "site");
  const json body = parseJsonBody(text);
  if (!body.is_object() || !body.contains("events") || !body["events"].is_array()) {
    throw Error(ErrorCode::BadRequest, "body must be {\"events\": [...]}");
  }
  const json& list = body["events"];
  if (list.size() > kMaxEventsPerRequest) {
    throw Error(ErrorCode::TooLarge, std::to_string(list.size()) + " events in one request; the server takes at most " +
                                         std::to_string(kMaxEventsPerRequest) + " (send them in batches)");
  }
  // Every field is checked for its type and range: one bad event refuses the whole batch.
  static const std::vector<std::string> kTypes{"predict", "correct", "train", "push"};
  std::vector<UsageEvent> events;
  events.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    const std::string where = "event " + std::to_string(i);
    if (!e.is_object()) throw Error(ErrorCode::BadRequest, where + " is not an object");
    const auto text = [&](const char* field) -> std::string {
      if (!e.contains(field) || !e[field].is_string()) {
        throw Error(ErrorCode::BadRequest, where + ": field '" + field + "' is missing or not a string");
      }
      return e[field].get<std::string>();
    };
    // A number within [low, high], or absent/null.
    const auto number = [&](const char* field, double low, double high) -> std::optional<double> {
      if (!e.contains(field) || e[field].is_null()) return std::nullopt;
      const json& v = e[field];
      // (JSON has no NaN or Infinity; nlohmann reads 1e999 as infinity.)
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < low || v.get<double>() > high) {
        char range[64];
        std::snprintf(range, sizeof range, "%g..%g", low, high);
        throw Error(ErrorCode::BadRequest, where + ": field '" + field + "' must be a finite number in " + range + ", not " +
                                               v.dump().substr(0, 40));
      }
      return v.get<double>();
    };
    UsageEvent ev;
    ev.type = text("type");
    if (std::find(kTypes.begin(), kTypes.end(), ev.type) == kTypes.end()) {
      throw Error(ErrorCode::BadRequest, where + ": type '" + ev.type.substr(0, 40) + "' is not one of predict, correct, train, push");
    }
    ev.task = text("task");
    model::requireValidTaskName(ev.task, where + " task");
    ev.seconds = number("seconds", 0, kMaxEventSeconds);
    ev.dice = number("dice", 0, 1);
    events.push_back(std::move(ev));
  }
  const double retry = registry->addEventsWithin(s.id, events, kMaxEventsPerSiteHour, 3600);
  if (retry > 0) {
    res.set_header("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(retry))));
    throw Error(ErrorCode::RateLimited, "these " + std::to_string(events.size()) + " events would take site '" + s.name +
                                            "' over " + std::to_string(kMaxEventsPerSiteHour) +
                                            " events within an hour, the most the server takes; retry in " +
                                            std::to_string(static_cast<int64_t>(std::ceil(retry))) + " s");
  }
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
  bool complete = false;
  if (drainable) {
    uint64_t dropped = 0;
    complete = reader([&](const char*, size_t length) {
      dropped += length;
      return dropped <= kDrainBytes;
    });
  }
  // What is left unread must not be parsed as the next request (httplib would buffer it whole
  // looking for a line end): the connection ends with this response.
  if (!complete && supervisor) supervisor->closeAfterResponse(req.remote_addr, req.remote_port);
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
      // Degraded (503, so that probes and load balancers notice) while a stored blob is known to
      // be damaged or missing, a merge keeps failing, or the registry cannot be read; each
      // problem is one line naming the blob, model or file, and is also in the server log.
      json problems = json::array();
      for (const auto& p : blobs->damagedBlobs()) problems.push_back(p);
      for (const auto& p : mergeLoop->problems()) problems.push_back(p);
      json body{{"status", "ok"}};
      try {
        body["models"] = registry->models({}).size();
        body["queued_updates"] = registry->queuedCount();
      } catch (const std::exception& e) {
        problems.push_back(std::string("registry: ") + e.what());
      }
      body["status"] = problems.empty() ? "ok" : "degraded";
      body["problems"] = problems;
      sendJson(res, problems.empty() ? 200 : 503, body);
    });
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    guard(res, [&] { res.set_content(prometheus(), "text/plain; version=0.0.4"); });
  });
  // The key every generation is signed with; public, so no token (a client pins it on first use).
  svr.Get("/v1/server-key", [this](const httplib::Request&, httplib::Response& res) {
    guard(res, [&] { sendJson(res, 200, {{"algorithm", "ed25519"}, {"public_key", registry->serverPublicKey()}}); });
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
  svr.Post("/v1/models", bodyRoute([this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      require(req, "admin");
      const model::Model model = model::decodeModel(readBody(req, reader, kMaxModelBytes), "uploaded model");
      const std::string strategy = req.has_param("strategy") ? req.get_param_value("strategy") : "fedavg";
      const json seeded = seedModel(*registry, *blobs, model, strategy);
      log("model '" + model.task.name + "' seeded at generation " + std::to_string(model.generation));
      const auto m = modelOr404(model.task.name);
      sendJson(res, 201, modelSummaryJson(m, registry->latestGeneration(m.id)));
  }));
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
      for (const auto& g : registry->generations(m.id)) list.push_back(generationView(m.task, g));
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
      sendJson(res, 200, generationView(m.task, generationOr404(m, req.matches[2])));
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
  svr.Put(R"(/v1/models/([^/]+)/policy)", bodyRoute([this](const httplib::Request& req, httplib::Response& res,
                                                             const httplib::ContentReader& reader) {
    require(req, "admin");
    modelOr404(req.matches[1]);
    const json policy = updatePolicy(*registry, req.matches[1], parseJsonBody(readBody(req, reader, kMaxJsonBody)));
    mergeLoop->notify();
    sendJson(res, 200, policy);
  }));
}

// /v1/models/T/privacy: ε spent per site under the model's DP policy (admin: every site; a site:
// its own row).
void FederationServer::Impl::privacyRoutes(httplib::Server& svr) {
  svr.Get(R"(/v1/models/([^/]+)/privacy)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      const Site s = require(req, "");
      const auto m = modelOr404(req.matches[1]);
      sendJson(res, 200, privacyReport(*registry, m.task, s.role == "admin" ? std::nullopt : std::optional(s.name)));
    });
  });
}

// /v1/models/T/updates and /v1/updates/N: uploads and their status.
void FederationServer::Impl::updateRoutes(httplib::Server& svr) {
  svr.Post(R"(/v1/models/([^/]+)/updates)",
           bodyRoute([this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
             receiveUpdate(req, res, reader, req.matches[1]);
           }));
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

// /v1/models/T/candidate: the candidate waiting for the site gate (SiteGate.h), its weights, and
// the sites' reports of its Dice on their own held-out cases.
void FederationServer::Impl::candidateRoutes(httplib::Server& svr) {
  auto pendingOr404 = [this](const ModelRecord& m) {
    auto c = SiteGate(options.dataDir, m.id).pending();
    if (!c) throw Error(ErrorCode::NotFound, "model '" + m.task + "' has no candidate waiting for site reports");
    return *c;
  };
  svr.Get(R"(/v1/models/([^/]+)/candidate)", [this, pendingOr404](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      const Site s = require(req, "");
      const auto m = modelOr404(req.matches[1]);
      const auto c = pendingOr404(m);
      sendJson(res, 200, {{"task", m.task}, {"base_generation", c.baseGeneration}, {"generation", c.baseGeneration + 1},
                          {"weights_sha256", c.weightsSha256}, {"strategy", c.strategy}, {"created_at", c.createdAt},
                          {"reports", c.reports.size()}, {"reported", c.reports.count(s.name) > 0}});
    });
  });
  svr.Get(R"(/v1/models/([^/]+)/candidate/model)", [this, pendingOr404](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      const auto m = modelOr404(req.matches[1]);
      const auto c = pendingOr404(m);
      GenerationRecord g;  // not in the registry: served unsigned, for scoring only
      g.modelId = m.id;
      g.generation = c.baseGeneration + 1;
      g.parent = c.baseGeneration;
      g.weightsSha256 = c.weightsSha256;
      g.weightsBytes = c.weightsBytes;
      g.parameters = c.parameters;
      sendModelFile(res, m, g);
    });
  });
  svr.Post(R"(/v1/models/([^/]+)/candidate/dice)",
           bodyRoute([this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
             const Site s = require(req, "site");
             const auto m = modelOr404(req.matches[1]);
             const json body = parseJsonBody(readBody(req, reader, kMaxJsonBody));
             auto dice = [&](const char* field) {
               const auto it = body.find(field);
               if (it == body.end() || !it->is_number() || !(it->get<double>() >= 0 && it->get<double>() <= 1)) {
                 throw Error(ErrorCode::BadRequest, std::string("candidate report field '") + field + "' must be a Dice in [0, 1]");
               }
               return it->get<double>();
             };
             const auto sha = body.find("weights_sha256");
             if (sha == body.end() || !sha->is_string()) throw Error(ErrorCode::BadRequest, "candidate report field 'weights_sha256' is missing");
             const auto cases = body.find("cases");
             if (cases == body.end() || !cases->is_number_integer() || cases->get<int64_t>() < 1) {
               throw Error(ErrorCode::BadRequest, "candidate report field 'cases' must be a count >= 1");
             }
             const auto c = SiteGate(options.dataDir, m.id).report(s.name, sha->get<std::string>(),
                                                                    {dice("dice_candidate"), dice("dice_current"), cases->get<int64_t>()});
             log("model '" + m.task + "': site '" + s.name + "' reported candidate Dice " + std::to_string(dice("dice_current")) + " -> " +
                 std::to_string(dice("dice_candidate")));
             mergeLoop->notify();
             sendJson(res, 200, {{"reports", c.reports.size()}});
           }));
}

// /v1/events and /v1/stats: usage reported by sites.
void FederationServer::Impl::usageRoutes(httplib::Server& svr) {
  svr.Post("/v1/events", bodyRoute([this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    require(req, "site");
    receiveEvents(req, res, readBody(req, reader, kMaxJsonBody));
  }));
  svr.Get("/v1/stats", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "admin");
      sendJson(res, 200, registry->usageStats());
    });
  });
}

// /v1/models/T/secagg/…: the site side of a secure-aggregation round (SecAggRounds.h), one route
// per protocol step. A site acts only as itself: its token names it, its protocol id is the one
// it was given at join, and its messages are signed like uploads when it has a registered key.
void FederationServer::Impl::secAggRoutes(httplib::Server& svr) {
  const auto send = [](httplib::Response& res, const SecAggAnswer& a) {
    if (a.binary) {
      res.status = a.status;
      res.set_content(a.body, "application/octet-stream");
    } else {
      sendJson(res, a.status, json::parse(a.body));
    }
  };
  const auto roundOf = [](const httplib::Request& req) {
    if (!req.has_param("round")) throw Error(ErrorCode::BadRequest, "query parameter 'round' (the id join answered) is missing");
    return req.get_param_value("round");
  };
  svr.Post(R"(/v1/models/([^/]+)/secagg/join)",
           bodyRoute([this, send](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
             const Site site = require(req, "site");
             const auto m = modelOr404(req.matches[1]);
             const json body = parseJsonBody(readBody(req, reader, kMaxJsonBody));
             const auto base = body.find("base_generation");
             if (base == body.end() || !base->is_number_integer()) {
               throw Error(ErrorCode::BadRequest, "join field 'base_generation' (the generation the update starts from) is missing");
             }
             send(res, secagg->join(m, site, base->get<int64_t>()));
           }));
  const std::pair<const char*, SecAggStep> posts[] = {{"advertise-keys", SecAggStep::Advertise},
                                                      {"shares", SecAggStep::Shares},
                                                      {"masked-input", SecAggStep::Masked},
                                                      {"unmask", SecAggStep::Unmask}};
  for (const auto& [name, step] : posts) {
    svr.Post(std::string(R"(/v1/models/([^/]+)/secagg/)") + name,
             bodyRoute([this, send, roundOf, step = step](const httplib::Request& req, httplib::Response& res,
                                                         const httplib::ContentReader& reader) {
               const Site site = require(req, "site");
               const auto m = modelOr404(req.matches[1]);
               const std::string round = roundOf(req);
               const auto signature = readUploadSignature(req, *registry, site, options.requireSignatures);
               // A masked input is an update's size: the policy's upload limit holds; the other
               // messages are keys and share boxes, a few KiB per site.
               const uint64_t limit = step == SecAggStep::Masked ? federation::policyFromJson(m.policy).maxUpdateBytes : kMaxJsonBody;
               const std::string message = readBody(req, reader, limit);
               metrics.uploadBytes += message.size();
               send(res, secagg->post(m, site, round, step, message, [&](int64_t base, const std::string& sha) {
                 if (signature) verifyUploadSignature(*registry, site, *signature, m.task, base, sha);
               }));
             }));
  }
  const std::pair<const char*, SecAggStep> gets[] = {
      {"keys", SecAggStep::Advertise}, {"my-shares", SecAggStep::Shares}, {"survivors", SecAggStep::Masked}};
  for (const auto& [name, after] : gets) {
    svr.Get(std::string(R"(/v1/models/([^/]+)/secagg/)") + name,
            [this, send, roundOf, after = after](const httplib::Request& req, httplib::Response& res) {
              guard(res, [&] {
                const Site site = require(req, "site");
                const auto m = modelOr404(req.matches[1]);
                send(res, secagg->fetch(m, site, roundOf(req), after));
              });
            });
  }
  svr.Get(R"(/v1/models/([^/]+)/secagg/status)", [this](const httplib::Request& req, httplib::Response& res) {
    guard(res, [&] {
      require(req, "");
      const auto m = modelOr404(req.matches[1]);
      sendJson(res, 200, secagg->status(m, req.get_param_value("round")));
    });
  });
}

// Runs on every request once httplib has parsed its header, before any body is read: gives the
// request its id, tells the connection supervisor, and refuses what no route should see.
void FederationServer::Impl::requestChecks(httplib::Server& svr) {
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const uint64_t number = ++requestCounter;
    res.set_header("X-Request-Id", requestPrefix + "-" + std::to_string(number));
    uint64_t bodyBytes = 0;
    try {
      bodyBytes = declaredLength(req);
    } catch (const Error& e) {
      sendError(res, e.httpStatus(), std::string(e.codeName()), e.what());
    }
    if (supervisor) supervisor->requestStarted(req.remote_addr, req.remote_port, bodyBytes);
    // Refusals here leave any body unread: the connection ends with the answer.
    auto refuse = [&] {
      if (supervisor) supervisor->closeAfterResponse(req.remote_addr, req.remote_port);
      return httplib::Server::HandlerResponse::Handled;
    };
    if (res.status >= 400) return refuse();
    size_t headerBytes = 0;
    for (const auto& [name, value] : req.headers) headerBytes += name.size() + value.size() + 4;
    if (req.headers.size() > kMaxHeaderCount || headerBytes > kMaxHeaderBytes) {
      sendError(res, 431, "too_large",
                "request header of " + std::to_string(req.headers.size()) + " fields and " + std::to_string(headerBytes) +
                    " bytes is over the limit of " + std::to_string(kMaxHeaderCount) + " fields or " +
                    std::to_string(kMaxHeaderBytes) + " bytes");
      // The parsed header may have been large: hand its memory back to the system now.
      malloc_trim(0);
      return refuse();
    }
    const std::string type = req.get_header_value("Content-Type");
    if (type.rfind("multipart/", 0) == 0) {
      sendError(res, 415, "bad_request", "multipart bodies are not accepted: send the file itself as the body");
      return refuse();
    }
    // This httplib answers some ranges of a streamed body with a wrong Content-Length; the API
    // does not offer ranges, so a Range header is ignored and the whole body is sent (RFC 9110
    // allows a server to ignore Range).
    if (!req.ranges.empty() || req.has_header("Range")) {
      auto& writable = const_cast<httplib::Request&>(req);
      writable.ranges.clear();
      writable.headers.erase("Range");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_logger([this](const httplib::Request& req, const httplib::Response&) {
    if (supervisor) supervisor->requestFinished(req.remote_addr, req.remote_port);
  });
}

// Methods with a body on paths no route has: answered without reading the body into memory
// (httplib reads a body whole before looking for a route without a content reader).
void FederationServer::Impl::fallbackRoutes(httplib::Server& svr) {
  auto noRoute = bodyRoute([](const httplib::Request& req, httplib::Response&, const httplib::ContentReader&) {
    throw Error(ErrorCode::NotFound, "no route " + req.method + " " + req.path.substr(0, 200));
  });
  svr.Post(".*", noRoute);
  svr.Put(".*", noRoute);
  svr.Patch(".*", noRoute);
  svr.Delete(".*", noRoute);
}

void FederationServer::Impl::routes() {
  auto& svr = *http;
  requestChecks(svr);
  errorRoutes(svr);
  healthRoutes(svr);
  modelRoutes(svr);
  generationRoutes(svr);
  policyRoutes(svr);
  privacyRoutes(svr);
  updateRoutes(svr);
  usageRoutes(svr);
  candidateRoutes(svr);
  secAggRoutes(svr);
  fallbackRoutes(svr);
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
  impl_->http->set_read_timeout(5, 0);
  impl_->http->set_write_timeout(30, 0);
  impl_->http->set_keep_alive_timeout(5);
  ConnectionLimits limits;
  limits.headerSeconds = o.headerSeconds;
  limits.bodyGraceSeconds = o.bodyGraceSeconds;
  limits.perAddress = o.connectionsPerAddress;
  limits.headerBudget = std::max(1, threads / 2);
  impl_->supervisor = std::make_unique<ConnectionSupervisor>(impl_->port, limits, [this](const std::string& line) { impl_->log(line); });
  impl_->supervisor->start();
  impl_->mergeLoop->start();
  impl_->mergeLoop->notify();  // updates queued before a restart are merged now
  if (impl_->pacsPublisher) impl_->pacsPublisher->start();
  impl_->listener = std::thread([this] { impl_->http->listen_after_bind(); });
}

int FederationServer::port() const { return impl_->port; }

void FederationServer::wait() {
  if (impl_->listener.joinable()) impl_->listener.join();
}

void FederationServer::stop() {
  // Slow clients are cut off first: httplib's stop() waits for every worker to finish.
  if (impl_->supervisor) impl_->supervisor->closeAll();
  if (impl_->http) impl_->http->stop();
  if (impl_->supervisor) impl_->supervisor->stop();
  impl_->mergeLoop->stop();
  if (impl_->pacsPublisher) impl_->pacsPublisher->stop();
}

}  // namespace tessera::server
