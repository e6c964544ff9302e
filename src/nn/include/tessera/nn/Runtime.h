#pragma once
// Process-wide compute settings, kept behind a Torch-free interface.

namespace tessera::nn {

// Intra-op threads used by training and inference; 0 keeps LibTorch's default (all cores).
void setThreadCount(int threads);
int threadCount();

}  // namespace tessera::nn
