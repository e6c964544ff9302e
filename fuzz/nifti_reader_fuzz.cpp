// Fuzz target for the NIfTI reader: arbitrary bytes as a .nii (or .nii.gz when they start
// with the gzip magic) must give a Volume or an tessera::Error, never a crash, another exception
// type or a huge allocation.

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "FuzzTarget.h"
#include "tessera/image/ImageIO.h"

namespace {

namespace fs = std::filesystem;
using tessera::image::Volume;

// One scratch directory per process, so parallel fuzzers and CTest runs do not collide;
// removed again at exit.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("tessera-fuzz-nifti-" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const fs::path& scratchDir() {
  static const ScratchDir dir;
  return dir.path;
}

// Removed first rather than truncated: ext4 flushes a file truncated to zero and written again
// to disk when it is closed (auto_da_alloc), which made each input cost milliseconds of I/O.
void writeFile(const fs::path& path, const uint8_t* data, size_t size) {
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool isGzip(const uint8_t* data, size_t size) { return size >= 2 && data[0] == 0x1f && data[1] == 0x8b; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path file = scratchDir() / (isGzip(data, size) ? "input.nii.gz" : "input.nii");
  writeFile(file, data, size);
  try {
    const Volume v = tessera::image::readImage(file);
    // A successful read must be self-consistent.
    if (v.voxels.size() != static_cast<size_t>(v.geometry.voxelCount())) __builtin_trap();
  } catch (const tessera::Error&) {
    // Expected for malformed input.
  }
  return 0;
}

std::vector<std::string> tesseraFuzzSeeds() {
  using namespace tessera::image;
  Geometry g;
  g.size = {4, 3, 2};
  g.spacing = {0.5, 1.0, 2.0};
  g.origin = {-3.0, 4.0, 10.0};
  g.direction = {0, -1, 0, 1, 0, 0, 0, 0, 1};
  Volume v(g);
  for (size_t i = 0; i < v.voxels.size(); ++i) v.voxels[i] = static_cast<float>(i);

  std::vector<std::string> seeds;
  const fs::path dir = scratchDir();
  const std::pair<const char*, PixelType> variants[] = {
      {"seed-f32.nii", PixelType::Float32}, {"seed-u8.nii", PixelType::UInt8}, {"seed-i16.nii.gz", PixelType::Int16}};
  for (const auto& [name, type] : variants) {
    writeImage(v, dir / name, type);
    seeds.push_back(readFile(dir / name));
    fs::remove(dir / name);
  }
  // Hand-made headers for the paths of Tessera's own NIfTI decoder that ITK's writer never
  // produces: big-endian data, scl_slope/scl_inter rescaling, 64-bit integers and doubles.
  struct Kind {
    int16_t datatype, bitpix;
    bool bigEndian;
    float slope, inter;
  };
  for (const Kind& k : {Kind{4, 16, true, 2.5f, -3.0f}, Kind{64, 64, false, 1.0f, 0.0f}, Kind{1280, 64, false, 0.0f, 4.0f},
                        Kind{256, 8, true, -1.0f, 0.5f}}) {
    std::string h(352, '\0');
    const auto put = [&](size_t offset, auto value) {
      char bytes[sizeof value];
      std::memcpy(bytes, &value, sizeof value);
      if (k.bigEndian) std::reverse(bytes, bytes + sizeof value);
      std::memcpy(&h[offset], bytes, sizeof value);
    };
    put(0, int32_t{348});
    const int16_t dim[8] = {3, 4, 3, 2, 1, 1, 1, 1};
    for (size_t i = 0; i < 8; ++i) put(40 + 2 * i, dim[i]);
    put(70, k.datatype);
    put(72, k.bitpix);
    for (size_t i = 0; i < 8; ++i) put(76 + 4 * i, 1.0f);
    put(108, 352.0f);
    put(112, k.slope);
    put(116, k.inter);
    std::memcpy(&h[344], "n+1\0", 4);
    std::string data(24 * static_cast<size_t>(k.bitpix / 8), '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 % 251);
    seeds.push_back(h + data);
  }
  return seeds;
}
