#include "tessera/federation/WeightStream.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "tessera/federation/UpdateError.h"

namespace tessera::federation {

namespace {
constexpr char kMagic[4] = {'T', 'S', 'W', 'T'};
constexpr uint8_t kFloat32 = 1;
constexpr uint32_t kMaxTensors = 100000;
constexpr uint16_t kMaxNameLength = 1024;
constexpr uint8_t kMaxRank = 8;
}  // namespace

WeightStreamReader::WeightStreamReader(const WeightsLocation& location, std::string source)
    : source_(std::move(source)) {
  file_ = std::fopen(location.path.c_str(), "rb");
  if (!file_) throw UpdateError("io", source_ + ": cannot open " + location.path.string() + ": " + std::strerror(errno));
  // The destructor does not run when the constructor throws: close the file here.
  try {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(location.path, ec);
    if (ec || location.offset > size) throw UpdateError("bad_update", source_ + ": weights section lies outside the file");
    remaining_ = location.length ? location.length : size - location.offset;
    // Compared without adding, which could wrap around for a huge declared length.
    if (remaining_ > size - location.offset) throw UpdateError("bad_update", source_ + ": weights section is truncated");
    if (std::fseek(file_, static_cast<long>(location.offset), SEEK_SET) != 0) {
      throw UpdateError("io", source_ + ": cannot seek to the weights section");
    }
    char magic[4];
    readRaw(magic, 4, "weights magic");
    if (std::memcmp(magic, kMagic, 4) != 0) throw UpdateError("bad_update", source_ + ": weights section does not start with 'TSWT'");
    readRaw(&count_, sizeof count_, "tensor count");
    if (count_ > kMaxTensors) throw UpdateError("bad_update", source_ + ": implausible tensor count " + std::to_string(count_));
  } catch (...) {
    std::fclose(file_);
    file_ = nullptr;
    throw;
  }
}

WeightStreamReader::~WeightStreamReader() {
  if (file_) std::fclose(file_);
}

void WeightStreamReader::readRaw(void* out, uint64_t n, const char* what) {
  if (n > remaining_) {
    throw UpdateError("bad_update", source_ + ": truncated: " + what + " needs " + std::to_string(n) + " bytes, " +
                                        std::to_string(remaining_) + " left");
  }
  if (n && std::fread(out, 1, n, file_) != n) throw UpdateError("io", source_ + ": read failed (" + what + ")");
  remaining_ -= n;
}

bool WeightStreamReader::next() {
  if (left_ > 0) {
    if (static_cast<uint64_t>(left_) * sizeof(float) > remaining_) throw UpdateError("bad_update", source_ + ": truncated tensor values");
    if (std::fseek(file_, static_cast<long>(left_ * sizeof(float)), SEEK_CUR) != 0) throw UpdateError("io", source_ + ": seek failed");
    remaining_ -= static_cast<uint64_t>(left_) * sizeof(float);
    left_ = 0;
  }
  if (index_ == count_) {
    if (remaining_ != 0) throw UpdateError("bad_update", source_ + ": " + std::to_string(remaining_) + " unexpected bytes after the last tensor");
    return false;
  }
  uint16_t nameLength = 0;
  readRaw(&nameLength, sizeof nameLength, "tensor name length");
  if (nameLength == 0 || nameLength > kMaxNameLength) {
    throw UpdateError("bad_update", source_ + ": tensor " + std::to_string(index_) + " has a name of length " + std::to_string(nameLength));
  }
  info_.name.resize(nameLength);
  readRaw(info_.name.data(), nameLength, "tensor name");
  uint8_t dtype = 0, rank = 0;
  readRaw(&dtype, 1, "tensor dtype");
  if (dtype != kFloat32) throw UpdateError("bad_update", source_ + ": tensor '" + info_.name + "' has unknown dtype " + std::to_string(dtype));
  readRaw(&rank, 1, "tensor rank");
  if (rank > kMaxRank) throw UpdateError("bad_update", source_ + ": tensor '" + info_.name + "' has rank " + std::to_string(rank));
  info_.shape.assign(rank, 0);
  uint64_t elements = 1;
  for (uint8_t d = 0; d < rank; ++d) {
    readRaw(&info_.shape[d], sizeof(int64_t), "tensor dimension");
    if (info_.shape[d] < 0 || info_.shape[d] > (int64_t{1} << 32)) {
      throw UpdateError("bad_update", source_ + ": tensor '" + info_.name + "' has dimension " + std::to_string(info_.shape[d]));
    }
    elements *= static_cast<uint64_t>(info_.shape[d]);
    if (elements > remaining_ / sizeof(float)) {
      throw UpdateError("bad_update", source_ + ": tensor '" + info_.name + "' claims more values than the file holds");
    }
  }
  info_.elements = static_cast<int64_t>(elements);
  left_ = info_.elements;
  ++index_;
  return true;
}

void WeightStreamReader::read(float* out, int64_t n, bool requireFinite) {
  if (n < 0 || n > left_) throw std::logic_error(source_ + ": reading past the end of tensor '" + info_.name + "'");
  readRaw(out, static_cast<uint64_t>(n) * sizeof(float), "tensor values");
  left_ -= n;
  if (requireFinite) {
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(out[i])) {
        throw UpdateError("non_finite", source_ + ": tensor '" + info_.name + "' holds a non-finite value (NaN or Inf)");
      }
    }
  }
}

WeightStreamWriter::WeightStreamWriter(const std::filesystem::path& directory, uint32_t tensorCount)
    : file_(directory), expected_(tensorCount) {
  put(std::string_view(kMagic, 4));
  put(std::string_view(reinterpret_cast<const char*>(&tensorCount), sizeof tensorCount));
}

void WeightStreamWriter::put(std::string_view bytes) {
  file_.write(bytes);
  hash_.update(bytes);
}

void WeightStreamWriter::beginTensor(const std::string& name, const std::vector<int64_t>& shape) {
  if (left_ != 0 || begun_ == expected_) throw std::logic_error("WeightStreamWriter: tensor '" + name + "' out of order");
  ++begun_;
  const auto nameLength = static_cast<uint16_t>(name.size());
  put(std::string_view(reinterpret_cast<const char*>(&nameLength), sizeof nameLength));
  put(name);
  const uint8_t head[2] = {kFloat32, static_cast<uint8_t>(shape.size())};
  put(std::string_view(reinterpret_cast<const char*>(head), 2));
  int64_t elements = 1;
  for (int64_t d : shape) {
    put(std::string_view(reinterpret_cast<const char*>(&d), sizeof d));
    elements *= d;
  }
  left_ = elements;
}

void WeightStreamWriter::write(const float* values, int64_t n) {
  if (n > left_) throw std::logic_error("WeightStreamWriter: more values than the tensor holds");
  put(std::string_view(reinterpret_cast<const char*>(values), static_cast<size_t>(n) * sizeof(float)));
  left_ -= n;
}

std::string WeightStreamWriter::finishHash() {
  if (left_ != 0 || begun_ != expected_) throw std::logic_error("WeightStreamWriter: finished before every tensor was written");
  return hash_.finishHex();
}

}  // namespace tessera::federation
