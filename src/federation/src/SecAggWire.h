#pragma once
// Byte layout of secure aggregation's messages: little-endian integers, a header of magic, step,
// round id and sender, then the step's fields. Private to SecureAggregation.cpp.

#include <cstdint>
#include <cstring>
#include <string>

#include "tessera/common/Error.h"
#include "tessera/federation/PairwiseMasks.h"
#include "tessera/federation/SecretSharing.h"

namespace tessera::federation::wire {

enum class Step : uint8_t { Keys = 1, KeyList = 2, Shares = 3, SharesRelay = 4, Masked = 5, Survivors = 6, Unmask = 7 };

class Writer {
 public:
  Writer(Step step, const RoundId& round, uint32_t sender) {
    bytes_.append("TSA1", 4);
    u8(static_cast<uint8_t>(step));
    raw(round.data(), round.size());
    u32(sender);
  }
  void u8(uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void raw(const void* data, size_t size) { bytes_.append(static_cast<const char*>(data), size); }
  void key(const Secret32& k) { raw(k.data(), k.size()); }
  void share(const SecretShare& s) {
    u32(s.x);
    for (uint64_t y : s.y) u64(y);
  }
  void blob(const std::string& b) {
    u32(static_cast<uint32_t>(b.size()));
    bytes_.append(b);
  }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class Reader {
 public:
  Reader(const std::string& bytes, Step step, const RoundId& round, const char* what)
      : bytes_(bytes), what_(what) {
    if (bytes.size() < 25 || bytes.compare(0, 4, "TSA1") != 0) fail("not a secure-aggregation message");
    pos_ = 4;
    const uint8_t s = u8();
    RoundId r;
    raw(r.data(), r.size());
    if (r != round)
      throw tessera::Error(tessera::ErrorCode::Replay, std::string(what_) + ": message of another round (replayed?)");
    if (s != static_cast<uint8_t>(step))
      throw tessera::Error(tessera::ErrorCode::Conflict, std::string(what_) + ": message of step " + std::to_string(s) +
                                                           ", expected step " + std::to_string(int(step)));
    sender_ = u32();
  }
  uint32_t sender() const { return sender_; }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(bytes_[pos_++]);
  }
  uint32_t u32() {
    uint32_t v;
    raw(&v, 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    raw(&v, 8);
    return v;
  }
  void raw(void* out, size_t size) {
    need(size);
    std::memcpy(out, bytes_.data() + pos_, size);
    pos_ += size;
  }
  Secret32 key() {
    Secret32 k;
    raw(k.data(), k.size());
    return k;
  }
  SecretShare share() {
    SecretShare s;
    s.x = u32();
    for (auto& y : s.y) y = u64();
    return s;
  }
  std::string blob() {
    const uint32_t size = u32();
    need(size);
    std::string b = bytes_.substr(pos_, size);
    pos_ += size;
    return b;
  }
  // Bounds a count read from the message by the bytes left, so a forged count cannot make us allocate.
  uint64_t count(size_t minBytesEach) {
    const uint64_t c = u32();
    if (c * minBytesEach > bytes_.size() - pos_) fail("count larger than the message");
    return c;
  }
  const char* dataAt() const { return bytes_.data() + pos_; }
  void skip(size_t size) {
    need(size);
    pos_ += size;
  }
  void end() const {
    if (pos_ != bytes_.size()) fail("trailing bytes");
  }

 private:
  void need(size_t size) const {
    if (size > bytes_.size() - pos_) fail("truncated");
  }
  [[noreturn]] void fail(const std::string& problem) const {
    throw tessera::Error(tessera::ErrorCode::BadRequest, std::string(what_) + ": " + problem);
  }
  const std::string& bytes_;
  const char* what_;
  size_t pos_ = 0;
  uint32_t sender_ = 0;
};

}  // namespace tessera::federation::wire
