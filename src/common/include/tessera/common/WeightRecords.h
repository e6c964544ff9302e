#pragma once
// Network weights as plain named float arrays, and their one on-disk form: the `TSWT` weight
// records that `.tsm` models and `TSUPDATE` update files carry after their JSON header.
//
// Records (all integers little-endian):
//   4 bytes "TSWT", u32 tensor count, then per tensor:
//   u16 name length, name bytes, u8 dtype (1 = float32), u8 rank, rank × i64 dimensions,
//   elements × float32 values.
// One reader and one writer, both streaming, so a server can merge models of tens of millions
// of parameters from many sites without holding them in memory. Nothing here needs LibTorch.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"

namespace tessera::common {

struct WeightTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;

  int64_t elementCount() const;
};

using WeightSet = std::vector<WeightTensor>;

int64_t parameterCount(const WeightSet& weights);

// The limits every reader and writer applies.
struct WeightLimits {
  static constexpr uint32_t maxTensors = 100000;
  static constexpr uint16_t maxNameLength = 1024;
  static constexpr uint8_t maxRank = 8;
  static constexpr int64_t maxDimension = int64_t{1} << 32;
};

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

// Sequential bytes with a known length: part of a file or of a buffer.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Throws Error(formatCode, "<source>: truncated: …") when fewer than `n` bytes are left.
  virtual void read(void* out, uint64_t n, const char* what) = 0;
  virtual void skip(uint64_t n, const char* what) = 0;
  virtual uint64_t remaining() const = 0;
};

// Reads records one tensor, or one chunk of a tensor, at a time. Every length is checked against
// what is left before anything is allocated, so a hostile file cannot make it over-allocate.
class WeightRecordReader {
 public:
  // Over a file section. `formatCode` is the code of errors about malformed content (BadModel
  // for model files, BadUpdate for updates); a file that cannot be opened is Io.
  WeightRecordReader(const WeightsLocation& location, std::string source, ErrorCode formatCode = ErrorCode::BadUpdate);
  // Over bytes that outlive the reader.
  WeightRecordReader(std::string_view bytes, std::string source, ErrorCode formatCode);
  ~WeightRecordReader();
  WeightRecordReader(const WeightRecordReader&) = delete;
  WeightRecordReader& operator=(const WeightRecordReader&) = delete;

  uint32_t tensorCount() const { return count_; }
  // Advances to the next tensor (skipping unread values of the current one); false after the
  // last one, when it also checks that nothing follows.
  bool next();
  const TensorInfo& tensor() const { return info_; }
  // The next `n` values of the current tensor. With `requireFinite`, NaN/Inf throws NonFinite.
  void read(float* out, int64_t n, bool requireFinite = false);
  int64_t valuesLeft() const { return left_; }
  const std::string& source() const { return source_; }

 private:
  void start();
  [[noreturn]] void fail(const std::string& problem) const;
  std::unique_ptr<ByteSource> in_;
  std::string source_;
  ErrorCode formatCode_;
  uint32_t count_ = 0;
  uint32_t index_ = 0;
  TensorInfo info_;
  int64_t left_ = 0;
};

// Writes records in order to a sink while hashing them.
class WeightRecordWriter {
 public:
  using Sink = std::function<void(std::string_view)>;
  WeightRecordWriter(Sink sink, uint32_t tensorCount);
  virtual ~WeightRecordWriter() = default;
  void beginTensor(const std::string& name, const std::vector<int64_t>& shape);
  void write(const float* values, int64_t n);
  // The SHA-256 of everything written; throws std::logic_error when a tensor is incomplete.
  std::string finishHash();
  uint64_t bytesWritten() const { return written_; }

 private:
  void put(std::string_view bytes);
  Sink sink_;
  Sha256 hash_;
  uint32_t expected_;
  uint32_t begun_ = 0;
  int64_t left_ = 0;
  uint64_t written_ = 0;
  bool started_ = false;
};

// Records streamed into a temporary file in `directory`; file().commit(path) moves it into place.
class WeightFileWriter : public WeightRecordWriter {
 public:
  WeightFileWriter(const std::filesystem::path& directory, uint32_t tensorCount);
  AtomicFileWriter& file() { return file_; }

 private:
  AtomicFileWriter file_;
};

std::string encodeWeights(const WeightSet& weights);
// Throws Error(formatCode or NonFinite, "<source>: …") for malformed, truncated or non-finite content.
WeightSet decodeWeights(std::string_view bytes, const std::string& source, ErrorCode formatCode = ErrorCode::BadModel);

}  // namespace tessera::common
