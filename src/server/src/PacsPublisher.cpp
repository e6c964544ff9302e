#include "PacsPublisher.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"
#include "tessera/dicom/DicomWebClient.h"
#include "tessera/dicom/PacsClient.h"
#include "tessera/model/Model.h"
#include "tessera/server/BlobStore.h"
#include "tessera/server/Registry.h"

namespace tessera::server {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double steadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string key(const std::string& task, int64_t generation) { return task + "/" + std::to_string(generation); }

}  // namespace

PacsPublisher::PacsPublisher(Registry& registry, BlobStore& blobs, fs::path dataDir, PacsPublishOptions options,
                             std::function<void(const std::string&)> log)
    : registry_(registry), blobs_(blobs), dir_(std::move(dataDir) / "pacs-publish"), options_(std::move(options)),
      log_(std::move(log)) {
  // Refused at start-up rather than at the first generation.
  if (!dicom::DicomWebClient::matches(options_.address)) dicom::PacsAddress::parse(options_.address, "--publish-pacs");
  else dicom::DicomWebClient(options_.address);
  fs::create_directories(dir_ / "tmp");
}

PacsPublisher::~PacsPublisher() { stop(); }

void PacsPublisher::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void PacsPublisher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PacsPublisher::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_all();
}

fs::path PacsPublisher::statusPath(const std::string& task, int64_t generation) const {
  return dir_ / task / (std::to_string(generation) + ".json");
}

json PacsPublisher::readStatus(const std::string& task, int64_t generation) const {
  const fs::path path = statusPath(task, generation);
  std::error_code ec;
  if (!fs::exists(path, ec)) return json::object();
  try {
    return json::parse(common::readFile(path));
  } catch (const std::exception&) {
    return json::object();  // unreadable: publish again (idempotent, see the header)
  }
}

void PacsPublisher::writeStatus(const std::string& task, int64_t generation, const json& status) {
  fs::create_directories(dir_ / task);
  common::writeFileAtomically(statusPath(task, generation), status.dump());
}

json PacsPublisher::statusOf(const std::string& task, int64_t generation) const {
  json s = readStatus(task, generation);
  if (s.empty() || s.value("pacs", "") != options_.address) {
    s = {{"state", "pending"}, {"attempts", 0}};
    s["pacs"] = options_.address;
  }
  return s;
}

void PacsPublisher::run() {
  for (;;) {
    pass();
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::duration<double>(options_.pollSeconds), [this] { return stopping_ || notified_; });
    if (stopping_) return;
    notified_ = false;
  }
}

void PacsPublisher::pass() {
  std::vector<ModelRecord> models;
  try {
    models = registry_.models(ModelFilter{});
  } catch (const std::exception& e) {
    if (log_) log_(std::string("pacs publish: cannot read the registry: ") + e.what());
    return;
  }
  for (const auto& m : models) {
    for (const auto& g : registry_.generations(m.id)) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        const auto it = nextTry_.find(key(m.task, g.generation));
        if (it != nextTry_.end() && steadySeconds() < it->second) continue;
      }
      const json s = readStatus(m.task, g.generation);
      if (s.value("pacs", "") == options_.address && s.value("state", "") == "stored") continue;
      publishOne(m.task, m.id, g.generation);
    }
  }
}

void PacsPublisher::publishOne(const std::string& task, int64_t modelId, int64_t generation) {
  const auto m = registry_.modelById(modelId);
  const auto g = registry_.generation(modelId, generation);
  if (!m || !g) return;
  json s = readStatus(task, generation);
  if (s.value("pacs", "") != options_.address) s = json::object();
  const int64_t attempts = s.value("attempts", int64_t{0}) + 1;
  s["pacs"] = options_.address;
  s["attempts"] = attempts;
  s["sop_instance_uid"] = dicom::modelInstanceUid(task, generation, g->weightsSha256);
  s["series_uid"] = dicom::modelSeriesUid(task, generation);

  std::string object;
  try {
    model::Model meta;
    meta.spec = model::networkSpecFromJson(m->header.at("spec"));
    meta.preprocessing = model::preprocessingFromJson(m->header.at("preprocessing"));
    meta.task = model::taskInfoFromJson(m->header.at("task"));
    meta.generation = g->generation;
    meta.parentGeneration = g->parent;
    const std::string weights = blobs_.read(g->weightsSha256);
    const std::string file = model::encodeModelPrefix(meta, g->parameters, weights.size(), g->weightsSha256) + weights;
    object = dicom::encodeModelDicom(model::decodeModel(file, key(task, generation)));
  } catch (const std::exception& e) {
    s["state"] = "failed";
    s["last_error"] = e.what();
    writeStatus(task, generation, s);
    std::lock_guard lock(mutex_);
    nextTry_[key(task, generation)] = INFINITY;  // until the next start (see the header)
    if (log_) log_("pacs publish: " + key(task, generation) + " cannot be built: " + e.what());
    return;
  }

  const fs::path file = dir_ / "tmp" / (task + "-" + std::to_string(generation) + "-" + std::to_string(getpid()) + ".dcm");
  try {
    common::writeFileAtomically(file, object);
    if (dicom::DicomWebClient::matches(options_.address)) {
      dicom::DicomWebClient(options_.address).push({file});
    } else {
      dicom::PacsOptions po;
      po.callingAet = options_.callingAet;
      dicom::PacsClient(dicom::PacsAddress::parse(options_.address, "--publish-pacs"), po).push({file});
    }
    std::error_code ec;
    fs::remove(file, ec);
    s["state"] = "stored";
    s["stored_at"] = wallSeconds();
    s.erase("last_error");
    writeStatus(task, generation, s);
    std::lock_guard lock(mutex_);
    nextTry_.erase(key(task, generation));
    if (log_) log_("pacs publish: " + key(task, generation) + " stored in " + options_.address + " (attempt " + std::to_string(attempts) + ")");
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(file, ec);
    s["state"] = "pending";
    s["last_error"] = e.what();
    writeStatus(task, generation, s);
    const double wait = std::min(options_.retryMaxSeconds, options_.retryBaseSeconds * std::pow(2.0, double(std::min<int64_t>(attempts - 1, 30))));
    std::lock_guard lock(mutex_);
    nextTry_[key(task, generation)] = steadySeconds() + wait;
    if (log_) log_("pacs publish: " + key(task, generation) + " attempt " + std::to_string(attempts) + " failed, retry in " + std::to_string(int(wait)) + " s: " + e.what());
  }
}

}  // namespace tessera::server
