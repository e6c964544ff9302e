#include "tessera/nn/Runtime.h"

#include <ATen/Parallel.h>

#include <thread>

namespace tessera::nn {

void setThreadCount(int threads) {
  // Debian's LibTorch starts with one intra-op thread whatever the machine has; "default" here
  // means every core, as users expect.
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
}

int threadCount() { return at::get_num_threads(); }

}  // namespace tessera::nn
