#pragma once
// Helpers shared by the federation tests: a scratch directory, tiny weight sets written as files,
// and an assertion on tessera::Error codes. Expected values are always computed in the tests
// themselves, never through the code under test.

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/WeightRecords.h"

namespace tessera::test {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tessera-federation-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void writeBytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline std::string readBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The three tensors of the tiny "model" every merge test uses; values from `seed`.
inline common::WeightSet tinyWeights(float seed, float step = 0.25f) {
  common::WeightSet w{{"enc.conv.weight", {2, 3}, {}}, {"enc.norm.weight", {3}, {}}, {"dec.conv.bias", {4}, {}}};
  float v = seed;
  for (auto& t : w) {
    t.values.resize(static_cast<size_t>(t.elementCount()));
    for (auto& x : t.values) {
      x = v;
      v += step;
    }
  }
  return w;
}

// Every value of a weight set, in file order, as doubles.
inline std::vector<double> flatten(const common::WeightSet& w) {
  std::vector<double> out;
  for (const auto& t : w) out.insert(out.end(), t.values.begin(), t.values.end());
  return out;
}

inline void expectWeightsNear(const common::WeightSet& actual, const std::vector<double>& expected, double tolerance,
                              const std::string& what) {
  const auto flat = flatten(actual);
  ASSERT_EQ(flat.size(), expected.size()) << what;
  for (size_t i = 0; i < flat.size(); ++i) EXPECT_NEAR(flat[i], expected[i], tolerance) << what << " at value " << i;
}

// Runs `body`, expects an tessera::Error with `code`; returns its message ("" when none was thrown).
inline std::string updateErrorOf(const std::function<void()>& body, const std::string& code) {
  try {
    body();
  } catch (const tessera::Error& e) {
    EXPECT_EQ(e.codeName(), code) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected tessera::Error(" << code << "), got another exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected tessera::Error(" << code << "), nothing was thrown";
  return "";
}

// Framing of an encoded update: u64 fields and the JSON header at byte 20.
inline uint64_t u64At(const std::string& bytes, size_t offset) {
  uint64_t v = 0;
  std::memcpy(&v, bytes.data() + offset, 8);
  return v;
}

inline void setU64(std::string& bytes, size_t offset, uint64_t v) { std::memcpy(bytes.data() + offset, &v, 8); }

// Rewrites the JSON header of an encoded update (raw text), keeping the weights section.
inline std::string withHeaderText(const std::string& encoded, const std::string& text) {
  const uint64_t headerLength = u64At(encoded, 12);
  std::string out = encoded.substr(0, 12);
  const uint64_t n = text.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += text;
  out += encoded.substr(20 + headerLength);
  return out;
}

inline std::string withHeader(const std::string& encoded, const std::function<void(nlohmann::json&)>& edit) {
  auto header = nlohmann::json::parse(encoded.substr(20, u64At(encoded, 12)));
  edit(header);
  return withHeaderText(encoded, header.dump());
}

}  // namespace tessera::test
