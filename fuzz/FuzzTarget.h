#pragma once
// Every fuzz target defines both functions. Under libFuzzer (TESSERA_LIBFUZZER=ON) only the
// first is used; in normal builds FuzzReplayMain feeds seeds and random mutations of them, so
// CTest exercises the same entry point on every run.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Valid inputs to mutate from; built in memory so no data file is committed.
std::vector<std::string> tesseraFuzzSeeds();
