#pragma once
// The federation server: REST API (docs/API.md), update queue and merge loop over a data folder
// holding the SQLite registry, the content-addressed blobs and per-task validation cases.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tessera/model/CaseFolder.h"
#include "tessera/model/Model.h"

namespace tessera::server {

// Scores a candidate on the validation cases (mean foreground Dice). Running the network is the
// caller's business (`tessera server` passes nn::meanDice), so this library needs no LibTorch.
using ValidationScorer = std::function<double(const model::Model&, const std::vector<model::TrainingCase>&)>;

struct ServerOptions {
  std::filesystem::path dataDir;
  std::string host = "127.0.0.1";
  int port = 8470;  // 0: any free port (see FederationServer::port())
  std::filesystem::path tlsCert;
  std::filesystem::path tlsKey;
  int threads = 16;
  // Slow clients (see ConnectionSupervisor): a request's header must arrive within this many
  // seconds; a body may take `bodyGraceSeconds` plus 1 s per 64 KiB; one address holds at most
  // `connectionsPerAddress` connections.
  double headerSeconds = 10;
  double bodyGraceSeconds = 30;
  int connectionsPerAddress = 32;
  // How often the merge loop looks for rounds that timed out.
  double pollSeconds = 0.5;
  std::function<void(const std::string&)> log;  // one line per event; null: quiet
  // Null: candidates are published without a validation score (the gate cannot hold them back).
  ValidationScorer scorer;
  // FedBN's candidates: the global model holds nobody's batch-norm statistics, so `tessera
  // server` re-estimates them on the validation images before scoring (nn::recomputeNormStatistics).
  // Null: FedBN candidates are scored with `scorer` as they are.
  ValidationScorer normAdaptedScorer;
  // Every upload must be signed (sites without a registered public key cannot upload). Without
  // it, only sites with a registered key must sign.
  bool requireSignatures = false;
  // `--publish-pacs`: every published generation is also stored in this PACS ("AET@HOST:PORT" or
  // "dicomweb+http(s)://…") by a background publisher (PacsPublisher.h); empty: off.
  std::string publishPacs;
  std::string pacsCallingAet = "TESSERA";
  double pacsRetrySeconds = 2;  // first back-off after a failed store; doubles up to 5 minutes
};

class FederationServer {
 public:
  explicit FederationServer(ServerOptions options);
  ~FederationServer();
  FederationServer(const FederationServer&) = delete;
  FederationServer& operator=(const FederationServer&) = delete;

  // Binds the socket (throws std::runtime_error naming the address when it cannot) and starts
  // the merge loop; returns at once.
  void start();
  int port() const;
  // Serves until stop() is called from another thread or a signal handler thread.
  void wait();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server
