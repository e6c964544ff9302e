#include "tessera/common/WeightRecords.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace tessera::common {

namespace {
constexpr char kMagic[4] = {'T', 'S', 'W', 'T'};
constexpr uint8_t kFloat32 = 1;

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::string_view bytes, const std::string& source, ErrorCode code)
      : bytes_(bytes), source_(source), code_(code) {}
  void read(void* out, uint64_t n, const char* what) override {
    need(n, what);
    if (n) std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
  }
  void skip(uint64_t n, const char* what) override {
    need(n, what);
    pos_ += n;
  }
  uint64_t remaining() const override { return bytes_.size() - pos_; }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > remaining()) {
      throw Error(code_, source_ + ": truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                             std::to_string(pos_) + ", only " + std::to_string(remaining()) + " left");
    }
  }
  std::string_view bytes_;
  const std::string& source_;
  ErrorCode code_;
  uint64_t pos_ = 0;
};

class FileSource final : public ByteSource {
 public:
  FileSource(const WeightsLocation& location, const std::string& source, ErrorCode code) : source_(source), code_(code) {
    file_ = std::fopen(location.path.c_str(), "rb");
    if (!file_) throw Error(ErrorCode::Io, source_ + ": cannot open " + location.path.string() + ": " + std::strerror(errno));
    // The destructor does not run when the constructor throws: close the file here.
    try {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(location.path, ec);
      if (ec || location.offset > size) throw Error(code_, source_ + ": weights section lies outside the file");
      remaining_ = location.length ? location.length : size - location.offset;
      // Compared without adding, which could wrap around for a huge declared length.
      if (remaining_ > size - location.offset) throw Error(code_, source_ + ": weights section is truncated");
      if (::fseeko(file_, static_cast<off_t>(location.offset), SEEK_SET) != 0) {
        throw Error(ErrorCode::Io, source_ + ": cannot seek to the weights section");
      }
    } catch (...) {
      std::fclose(file_);
      throw;
    }
  }
  ~FileSource() override { std::fclose(file_); }
  void read(void* out, uint64_t n, const char* what) override {
    need(n, what);
    if (n && std::fread(out, 1, n, file_) != n) throw Error(ErrorCode::Io, source_ + ": read failed (" + what + ")");
    remaining_ -= n;
  }
  void skip(uint64_t n, const char* what) override {
    need(n, what);
    if (::fseeko(file_, static_cast<off_t>(n), SEEK_CUR) != 0) throw Error(ErrorCode::Io, source_ + ": seek failed");
    remaining_ -= n;
  }
  uint64_t remaining() const override { return remaining_; }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > remaining_) {
      throw Error(code_, source_ + ": truncated: " + what + " needs " + std::to_string(n) + " bytes, " +
                             std::to_string(remaining_) + " left");
    }
  }
  std::FILE* file_ = nullptr;
  const std::string& source_;
  ErrorCode code_;
  uint64_t remaining_ = 0;
};

template <typename T>
std::string_view bytesOf(const T& value) {
  return {reinterpret_cast<const char*>(&value), sizeof value};
}
}  // namespace

int64_t WeightTensor::elementCount() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t parameterCount(const WeightSet& weights) {
  int64_t n = 0;
  for (const auto& t : weights) n += t.elementCount();
  return n;
}

WeightRecordReader::WeightRecordReader(const WeightsLocation& location, std::string source, ErrorCode formatCode)
    : source_(std::move(source)), formatCode_(formatCode) {
  in_ = std::make_unique<FileSource>(location, source_, formatCode_);
  start();
}

WeightRecordReader::WeightRecordReader(std::string_view bytes, std::string source, ErrorCode formatCode)
    : source_(std::move(source)), formatCode_(formatCode) {
  in_ = std::make_unique<MemorySource>(bytes, source_, formatCode_);
  start();
}

WeightRecordReader::~WeightRecordReader() = default;

void WeightRecordReader::fail(const std::string& problem) const { throw Error(formatCode_, source_ + ": " + problem); }

void WeightRecordReader::start() {
  char magic[4];
  in_->read(magic, 4, "weights magic");
  if (std::memcmp(magic, kMagic, 4) != 0) fail("weights section does not start with 'TSWT'");
  in_->read(&count_, sizeof count_, "tensor count");
  if (count_ > WeightLimits::maxTensors) fail("implausible tensor count " + std::to_string(count_));
}

bool WeightRecordReader::next() {
  if (left_ > 0) {
    in_->skip(static_cast<uint64_t>(left_) * sizeof(float), "tensor values");
    left_ = 0;
  }
  if (index_ == count_) {
    if (in_->remaining() != 0) fail(std::to_string(in_->remaining()) + " unexpected bytes after the last tensor");
    return false;
  }
  uint16_t nameLength = 0;
  in_->read(&nameLength, sizeof nameLength, "tensor name length");
  if (nameLength == 0 || nameLength > WeightLimits::maxNameLength) {
    fail("tensor " + std::to_string(index_) + " has a name of length " + std::to_string(nameLength));
  }
  info_.name.resize(nameLength);
  in_->read(info_.name.data(), nameLength, "tensor name");
  uint8_t dtype = 0, rank = 0;
  in_->read(&dtype, 1, "tensor dtype");
  if (dtype != kFloat32) fail("tensor '" + info_.name + "' has unknown dtype " + std::to_string(dtype));
  in_->read(&rank, 1, "tensor rank");
  if (rank > WeightLimits::maxRank) fail("tensor '" + info_.name + "' has rank " + std::to_string(rank));
  info_.shape.assign(rank, 0);
  uint64_t elements = 1;
  for (uint8_t d = 0; d < rank; ++d) {
    in_->read(&info_.shape[d], sizeof(int64_t), "tensor dimension");
    if (info_.shape[d] < 0 || info_.shape[d] > WeightLimits::maxDimension) {
      fail("tensor '" + info_.name + "' has dimension " + std::to_string(info_.shape[d]));
    }
    elements *= static_cast<uint64_t>(info_.shape[d]);
    // Checked per dimension so the product cannot wrap before the check sees it.
    if (elements > in_->remaining() / sizeof(float)) fail("tensor '" + info_.name + "' claims more values than the file holds");
  }
  info_.elements = static_cast<int64_t>(elements);
  left_ = info_.elements;
  ++index_;
  return true;
}

void WeightRecordReader::read(float* out, int64_t n, bool requireFinite) {
  if (n < 0 || n > left_) throw std::logic_error(source_ + ": reading past the end of tensor '" + info_.name + "'");
  in_->read(out, static_cast<uint64_t>(n) * sizeof(float), "tensor values");
  left_ -= n;
  if (requireFinite) {
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(out[i])) {
        throw Error(ErrorCode::NonFinite, source_ + ": tensor '" + info_.name + "' holds a non-finite value (NaN or Inf)");
      }
    }
  }
}

WeightRecordWriter::WeightRecordWriter(Sink sink, uint32_t tensorCount) : sink_(std::move(sink)), expected_(tensorCount) {
  if (tensorCount > WeightLimits::maxTensors) {
    throw Error(ErrorCode::BadModel, "weights: " + std::to_string(tensorCount) + " tensors, the format allows " +
                                         std::to_string(WeightLimits::maxTensors));
  }
}

void WeightRecordWriter::put(std::string_view bytes) {
  // The header goes out lazily so that a subclass's sink is fully constructed before it is used.
  if (!started_) {
    started_ = true;
    put(std::string_view(kMagic, 4));
    put(bytesOf(expected_));
  }
  sink_(bytes);
  hash_.update(bytes);
  written_ += bytes.size();
}

void WeightRecordWriter::beginTensor(const std::string& name, const std::vector<int64_t>& shape) {
  if (left_ != 0 || begun_ == expected_) throw std::logic_error("weights writer: tensor '" + name + "' out of order");
  if (name.empty() || name.size() > WeightLimits::maxNameLength) {
    throw Error(ErrorCode::BadModel, "weights: tensor name '" + name.substr(0, 64) + "' is empty or longer than " +
                                         std::to_string(WeightLimits::maxNameLength) + " bytes");
  }
  if (shape.size() > WeightLimits::maxRank) throw Error(ErrorCode::BadModel, "weights: tensor '" + name + "' has rank over 8");
  ++begun_;
  const auto nameLength = static_cast<uint16_t>(name.size());
  put(bytesOf(nameLength));
  put(name);
  const uint8_t head[2] = {kFloat32, static_cast<uint8_t>(shape.size())};
  put(std::string_view(reinterpret_cast<const char*>(head), 2));
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > WeightLimits::maxDimension) {
      throw Error(ErrorCode::BadModel, "weights: tensor '" + name + "' has dimension " + std::to_string(d));
    }
    put(bytesOf(d));
    elements *= d;
  }
  left_ = elements;
}

void WeightRecordWriter::write(const float* values, int64_t n) {
  if (n > left_) throw std::logic_error("weights writer: more values than the tensor holds");
  put(std::string_view(reinterpret_cast<const char*>(values), static_cast<size_t>(n) * sizeof(float)));
  left_ -= n;
}

std::string WeightRecordWriter::finishHash() {
  if (left_ != 0 || begun_ != expected_) throw std::logic_error("weights writer: finished before every tensor was written");
  if (!started_) put({});
  return hash_.finishHex();
}

WeightFileWriter::WeightFileWriter(const std::filesystem::path& directory, uint32_t tensorCount)
    : WeightRecordWriter([this](std::string_view bytes) { file_.write(bytes); }, tensorCount), file_(directory) {}

std::string encodeWeights(const WeightSet& weights) {
  std::string out;
  size_t bytes = 8;
  for (const auto& t : weights) bytes += 4 + t.name.size() + 8 * t.shape.size() + 4 * t.values.size();
  out.reserve(bytes);
  WeightRecordWriter writer([&](std::string_view b) { out.append(b); }, static_cast<uint32_t>(weights.size()));
  for (const auto& t : weights) {
    if (t.elementCount() != static_cast<int64_t>(t.values.size())) {
      throw Error(ErrorCode::ShapeMismatch, "weights: tensor '" + t.name + "' holds " + std::to_string(t.values.size()) +
                                                " values, its shape says " + std::to_string(t.elementCount()));
    }
    writer.beginTensor(t.name, t.shape);
    writer.write(t.values.data(), static_cast<int64_t>(t.values.size()));
  }
  writer.finishHash();
  return out;
}

WeightSet decodeWeights(std::string_view bytes, const std::string& source, ErrorCode formatCode) {
  WeightRecordReader reader(bytes, source, formatCode);
  WeightSet weights;
  weights.reserve(reader.tensorCount());
  while (reader.next()) {
    WeightTensor t{reader.tensor().name, reader.tensor().shape, {}};
    t.values.resize(static_cast<size_t>(reader.tensor().elements));
    reader.read(t.values.data(), reader.tensor().elements, /*requireFinite=*/true);
    weights.push_back(std::move(t));
  }
  return weights;
}

}  // namespace tessera::common
