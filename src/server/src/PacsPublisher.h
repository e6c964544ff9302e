#pragma once
// `tessera server --publish-pacs`: every published generation is stored in a PACS (C-STORE, or
// STOW-RS for a dicomweb+http(s):// address) by a background thread, so the archive a hospital
// already runs holds the task's whole history without anyone exporting it.
//
// Never lost: the registry is the list of what must be published. The publisher walks every
// generation of every task and publishes each one whose status file does not say "stored" for
// this PACS, so a generation published while the PACS was down, or while the server was down
// between its commit and its C-STORE, is picked up on the next pass or the next start.
// Never twice: the object's Study/Series/SOP Instance UIDs are derived from (task, generation,
// weights SHA-256) (DicomUids.h), so a retry after a crash between the C-STORE and the status
// write sends the very same instance, which the PACS keeps once.
// Status per generation: DATA/pacs-publish/<task>/<generation>.json, replaced atomically:
//   {"state": "pending"|"stored"|"failed", "pacs", "attempts", "last_error", "sop_instance_uid",
//    "stored_at"}. "failed" is an object that could not be built (its blob is damaged): retrying
// cannot help until an operator repairs it; it is tried again at the next start. A PACS that is
// down or refuses keeps the generation "pending" with attempts and the last error, and is
// retried with exponential back-off (retryBaseSeconds doubling up to retryMaxSeconds).

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace tessera::server {

class Registry;
class BlobStore;

struct PacsPublishOptions {
  std::string address;  // "AET@HOST:PORT" or "dicomweb+http(s)://HOST:PORT/PATH"; empty: off
  std::string callingAet = "TESSERA";
  double retryBaseSeconds = 2;
  double retryMaxSeconds = 300;
  double pollSeconds = 2;  // how often the registry is checked for new generations
};

class PacsPublisher {
 public:
  // Error(BadRequest) for an address that is neither form.
  PacsPublisher(Registry& registry, BlobStore& blobs, std::filesystem::path dataDir, PacsPublishOptions options,
                std::function<void(const std::string&)> log);
  ~PacsPublisher();
  PacsPublisher(const PacsPublisher&) = delete;
  PacsPublisher& operator=(const PacsPublisher&) = delete;

  void start();
  void stop();
  void notify();  // a generation was published: look now rather than at the next poll

  // The "pacs" field of a generation in /v1/models/T/generations.
  nlohmann::json statusOf(const std::string& task, int64_t generation) const;

 private:
  void run();
  void pass();
  void publishOne(const std::string& task, int64_t modelId, int64_t generation);
  std::filesystem::path statusPath(const std::string& task, int64_t generation) const;
  nlohmann::json readStatus(const std::string& task, int64_t generation) const;
  void writeStatus(const std::string& task, int64_t generation, const nlohmann::json& status);

  Registry& registry_;
  BlobStore& blobs_;
  std::filesystem::path dir_;
  PacsPublishOptions options_;
  std::function<void(const std::string&)> log_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool notified_ = false;
  // Back-off is per run of the server: a restart retries every pending generation at once.
  std::map<std::string, double> nextTry_;  // "<task>/<generation>" -> steady seconds
};

}  // namespace tessera::server
