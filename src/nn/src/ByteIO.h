#pragma once
// Little-endian readers and writers for the model and weights formats. The reader checks every
// length against what is left, so a truncated or hostile file cannot make it read past the end.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "tessera/nn/ModelError.h"

namespace tessera::nn::detail {

class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));  // x86-64 and aarch64 are little-endian
    out_.append(bytes, sizeof(T));
  }
  void putBytes(std::string_view bytes) { out_.append(bytes); }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {}

  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view getBytes(uint64_t count, const char* what) {
    need(count, what);
    std::string_view view = bytes_.substr(pos_, count);
    pos_ += count;
    return view;
  }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  uint64_t position() const { return pos_; }
  [[noreturn]] void fail(const std::string& problem) const {
    throw ModelError(source_ + ": " + problem);
  }

 private:
  void need(uint64_t count, const char* what) const {
    if (count > remaining()) {
      fail(std::string("truncated: ") + what + " needs " + std::to_string(count) + " bytes at offset " +
           std::to_string(pos_) + ", only " + std::to_string(remaining()) + " left");
    }
  }
  std::string_view bytes_;
  std::string source_;
  uint64_t pos_ = 0;
};

}  // namespace tessera::nn::detail
