#include "tessera/nn/Runtime.h"

#include <ATen/Parallel.h>

namespace tessera::nn {

void setThreadCount(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

int threadCount() { return at::get_num_threads(); }

}  // namespace tessera::nn
