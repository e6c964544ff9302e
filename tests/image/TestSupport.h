#pragma once
// Shared helpers for the image tests: a per-test scratch directory and small volume builders.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "tessera/image/Volume.h"

namespace tessera::image::test {

// A fresh directory under the system temp dir, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "tessera-image-";
    if (info) name += std::string(info->test_suite_name()) + "-" + info->name() + "-";
    // Parameterised test names contain '/', which would nest directories.
    std::replace(name.begin(), name.end(), '/', '_');
    name += std::to_string(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline Geometry grid(int64_t nx, int64_t ny, int64_t nz, std::array<double, 3> spacing = {1, 1, 1}) {
  Geometry g;
  g.size = {nx, ny, nz};
  g.spacing = spacing;
  return g;
}

// Sets voxels of `v` inside the index box [lo, hi] (inclusive) to `value`.
inline void fillBox(Volume& v, std::array<int64_t, 3> lo, std::array<int64_t, 3> hi, float value) {
  for (int64_t z = lo[2]; z <= hi[2]; ++z)
    for (int64_t y = lo[1]; y <= hi[1]; ++y)
      for (int64_t x = lo[0]; x <= hi[0]; ++x) v.at(x, y, z) = value;
}

inline void writeBytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string readBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `body` and returns the tessera::Error message; fails the test if nothing (or something
// else) is thrown.
template <typename Body>
std::string errorOf(Body&& body) {
  try {
    body();
  } catch (const tessera::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an tessera::Error";
  return {};
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs a Python snippet with Debian's interpreter (the one that has nibabel) and `arg` as
// sys.argv[1]; `out` gets stdout and stderr; false if it failed. The snippet must not contain
// double quotes.
inline bool runPython(const std::string& code, const std::filesystem::path& arg, std::string& out) {
  const std::string cmd = "/usr/bin/python3 -c \"" + code + "\" '" + arg.string() + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return false;
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe)) out += buffer;
  return pclose(pipe) == 0;
}

}  // namespace tessera::image::test
