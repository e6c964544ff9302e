#pragma once
// Process-wide compute settings, kept behind a Torch-free interface.

namespace tessera::nn {

// Intra-op threads used by training and inference; 0 means the default: TESSERA_THREADS when
// set (an operator sharing the machine with other work), otherwise one per core.
void setThreadCount(int threads);
int defaultThreadCount();
int threadCount();

}  // namespace tessera::nn
