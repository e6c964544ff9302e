#pragma once
// Counters for /metrics (Prometheus text format).

#include <atomic>
#include <cstdint>
#include <string>

namespace tessera::server {

struct ServerMetrics {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> updatesAccepted{0};
  std::atomic<uint64_t> updatesRejected{0};
  std::atomic<uint64_t> uploadBytes{0};
  std::atomic<uint64_t> generationsPublished{0};
  std::atomic<uint64_t> candidatesRejected{0};
  std::atomic<uint64_t> mergeMicroseconds{0};
  std::atomic<uint64_t> mergedParameters{0};
  std::atomic<uint64_t> mergeFailures{0};
};

}  // namespace tessera::server
