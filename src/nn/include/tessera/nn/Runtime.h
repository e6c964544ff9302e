#pragma once
// Process-wide compute settings, kept behind a Torch-free interface.

namespace tessera::nn {

// Intra-op threads used by training and inference; 0 means one per core.
void setThreadCount(int threads);
int threadCount();

}  // namespace tessera::nn
