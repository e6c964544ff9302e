// Fuzz target for the NIfTI reader: arbitrary bytes as a .nii (or .nii.gz when they start
// with the gzip magic) must give a Volume or an tessera::Error, never a crash, another exception
// type or a huge allocation.

#include <unistd.h>

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

void writeFile(const fs::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
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
  return seeds;
}
