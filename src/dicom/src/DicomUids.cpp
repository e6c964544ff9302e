#include "tessera/dicom/DicomUids.h"

#include <algorithm>
#include <vector>

#include "tessera/common/Sha256.h"

namespace tessera::dicom {

namespace {

// 128-bit value (as 32 hex digits) in decimal, by repeated division of a base-2^32 number.
std::string hexToDecimal(const std::string& hex) {
  std::vector<uint32_t> words;
  for (size_t i = 0; i < hex.size(); i += 8) words.push_back(static_cast<uint32_t>(std::stoul(hex.substr(i, 8), nullptr, 16)));
  std::string digits;
  auto isZero = [&] { return std::all_of(words.begin(), words.end(), [](uint32_t w) { return w == 0; }); };
  while (!isZero()) {
    uint64_t rest = 0;
    for (auto& w : words) {
      const uint64_t cur = (rest << 32) | w;
      w = static_cast<uint32_t>(cur / 10);
      rest = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + rest));
  }
  if (digits.empty()) return std::string(1, '0');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

}  // namespace

std::string uidFromName(std::string_view name) {
  std::string hex = common::sha256Hex(name).substr(0, 32);
  // RFC 9562 version 8 (custom, name-based with SHA-256) and the RFC variant.
  hex[12] = '8';
  const unsigned variant = (std::stoul(hex.substr(16, 1), nullptr, 16) & 0x3u) | 0x8u;
  hex[16] = "0123456789abcdef"[variant];
  return "2.25." + hexToDecimal(hex);
}

std::string modelStudyUid(std::string_view task) { return uidFromName("tessera-model-study\n" + std::string(task)); }

std::string modelSeriesUid(std::string_view task, int64_t generation) {
  return uidFromName("tessera-model-series\n" + std::string(task) + "\n" + std::to_string(generation));
}

std::string modelInstanceUid(std::string_view task, int64_t generation, std::string_view weightsSha256) {
  return uidFromName("tessera-model-instance\n" + std::string(task) + "\n" + std::to_string(generation) + "\n" +
                     std::string(weightsSha256));
}

std::string modelPatientId(std::string_view task) {
  const std::string id = "TESSERA-" + std::string(task);
  if (id.size() <= 64) return id;
  return id.substr(0, 47) + "-" + common::sha256Hex(task).substr(0, 16);
}

}  // namespace tessera::dicom
