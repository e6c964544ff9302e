// Fuzz target for the parsers of untrusted update bytes, in memory and on disk: decodeUpdate
// (what a site's upload decodes to), and readUpdateFileInfo + common::WeightRecordReader over a file,
// the path the server takes for a stored upload (header first, then the weights streamed
// without the SHA-256 check that would hide the weights parser from the fuzzer), and
// readUpdatePrefix on prefixes of them (the server's check of an upload as it arrives). The same
// bytes are also streamed as a bare weights section. Any exception other than tessera::Error, or a
// crash, is a finding.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <vector>

#include "FuzzTarget.h"
#include "tessera/federation/ModelUpdate.h"
#include "tessera/common/Error.h"
#include "tessera/common/WeightRecords.h"

namespace {

namespace fs = std::filesystem;
using tessera::Error;
namespace common = tessera::common;
using tessera::common::WeightsLocation;
using tessera::common::WeightRecordReader;

// One scratch file per process, removed at exit.
struct ScratchFile {
  fs::path path = fs::temp_directory_path() / ("tessera-fuzz-update-" + std::to_string(::getpid()) + ".tsu");
  ~ScratchFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

const fs::path& scratch() {
  static ScratchFile file;
  return file.path;
}

// Removed first rather than truncated: ext4 flushes a file truncated to zero and written again
// to disk when it is closed (auto_da_alloc), which made each input cost milliseconds of I/O.
bool writeScratch(std::string_view bytes) {
  std::error_code ec;
  fs::remove(scratch(), ec);
  std::FILE* f = std::fopen(scratch().c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

// Reads every tensor the way the merge does; `skipOdd` leaves every other tensor unread so that
// next() has to skip its values.
void streamAll(const common::WeightsLocation& location, bool skipOdd) {
  common::WeightRecordReader reader(location, "fuzz-weights");
  std::vector<float> buffer(1024);
  int index = 0;
  while (reader.next()) {
    if (skipOdd && index++ % 2 == 1) continue;
    while (reader.valuesLeft() > 0) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(buffer.size()), reader.valuesLeft());
      reader.read(buffer.data(), n, true);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)tessera::federation::decodeUpdate(bytes, "fuzz.tsu");
  } catch (const tessera::Error&) {
  }
  // The server's check of an upload from its first bytes, as they arrive: every prefix length
  // up to the header's end (cut at a few sizes: all of them would be quadratic).
  for (const size_t cut : {size_t{0}, size_t{7}, size_t{8}, size_t{19}, size_t{20}, size / 2, size}) {
    try {
      (void)tessera::federation::readUpdatePrefix(bytes.substr(0, std::min(cut, size)), "fuzz-prefix");
    } catch (const tessera::Error&) {
    }
  }
  if (!writeScratch(bytes)) return 0;
  try {
    const auto info = tessera::federation::readUpdateFileInfo(scratch(), "fuzz-file");
    streamAll({scratch(), info.weightsOffset, info.weightsLength}, size % 2 == 1);
  } catch (const tessera::Error&) {
  }
  try {
    streamAll({scratch(), 0, 0}, false);
  } catch (const tessera::Error&) {
  }
  return 0;
}

std::vector<std::string> tesseraFuzzSeeds() {
  tessera::federation::ModelUpdate delta;
  delta.header.task = "brain";
  delta.header.baseGeneration = 3;
  delta.header.samples = 17;
  delta.header.metrics = {{"dice", 0.75}};
  delta.weights = {{"enc.conv.weight", {2, 1, 3, 3}, std::vector<float>(18, 0.125f)},
                   {"enc.norm.weight", {2}, {1.0f, -1.0f}},
                   {"head.bias", {}, {0.5f}},
                   {"empty", {0}, {}}};
  tessera::federation::ModelUpdate full = delta;
  full.header.kind = tessera::federation::UpdateKind::Weights;
  full.header.metrics.clear();
  return {tessera::federation::encodeUpdate(delta), tessera::federation::encodeUpdate(full),
          tessera::common::encodeWeights(delta.weights)};
}
