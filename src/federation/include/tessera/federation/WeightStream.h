#pragma once
// Reading and writing a weights section (the `TSWT` records of nn::encodeWeights) one tensor,
// or one chunk of a tensor, at a time. Merging models of tens of millions of parameters from
// many sites must not hold them all in memory: the server streams every input from disk.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Sha256.h"

namespace tessera::federation {

// Where a weights section lives: a whole file (`offset` 0) or a part of a model/update file.
struct WeightsLocation {
  std::filesystem::path path;
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: up to the end of the file
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t elements = 0;
};

class WeightStreamReader {
 public:
  // Throws UpdateError("bad_update", "<source>: ...") for foreign or truncated content.
  WeightStreamReader(const WeightsLocation& location, std::string source);
  ~WeightStreamReader();
  WeightStreamReader(const WeightStreamReader&) = delete;
  WeightStreamReader& operator=(const WeightStreamReader&) = delete;

  uint32_t tensorCount() const { return count_; }
  // Advances to the next tensor (skipping unread values of the current one); false at the end.
  bool next();
  const TensorInfo& tensor() const { return info_; }
  // Reads the next `n` values of the current tensor. With `requireFinite`, NaN/Inf throws
  // UpdateError("non_finite").
  void read(float* out, int64_t n, bool requireFinite = false);
  int64_t valuesLeft() const { return left_; }
  const std::string& source() const { return source_; }

 private:
  void readRaw(void* out, uint64_t n, const char* what);
  std::FILE* file_ = nullptr;
  std::string source_;
  uint64_t remaining_ = 0;  // bytes of the section not yet read
  uint32_t count_ = 0;
  uint32_t index_ = 0;
  TensorInfo info_;
  int64_t left_ = 0;
};

// Writes a weights section to a temporary file while hashing it; commit() moves it into place.
class WeightStreamWriter {
 public:
  WeightStreamWriter(const std::filesystem::path& directory, uint32_t tensorCount);
  void beginTensor(const std::string& name, const std::vector<int64_t>& shape);
  void write(const float* values, int64_t n);
  // The SHA-256 of everything written (equal to nn::sha256Hex(nn::encodeWeights(...))).
  std::string finishHash();
  uint64_t bytesWritten() const { return file_.bytesWritten(); }
  common::AtomicFileWriter& file() { return file_; }

 private:
  void put(std::string_view bytes);
  common::AtomicFileWriter file_;
  common::Sha256 hash_;
  uint32_t expected_;
  uint32_t begun_ = 0;
  int64_t left_ = 0;
};

}  // namespace tessera::federation
