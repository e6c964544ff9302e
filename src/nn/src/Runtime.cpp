#include "tessera/nn/Runtime.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <thread>

namespace tessera::nn {

void setThreadCount(int threads) {
  // Debian's LibTorch starts with one intra-op thread whatever the machine has; "default" here
  // means every core, as users expect.
  if (threads <= 0) threads = defaultThreadCount();
  at::set_num_threads(threads);
}

int defaultThreadCount() {
  // More threads than free cores makes OpenMP's barriers spin against each other: on a busy
  // 2-core machine training ran 10x slower with 2 threads than with 1.
  if (const char* env = std::getenv("TESSERA_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int threadCount() { return at::get_num_threads(); }

}  // namespace tessera::nn
