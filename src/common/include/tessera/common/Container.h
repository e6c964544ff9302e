#pragma once
// The file envelope shared by `.tsm` models and `TSUPDATE` update files:
//   8 bytes magic ("TSMODEL\0" or "TSUPDATE"), u32 format version (1),
//   u64 header length H, H bytes of UTF-8 JSON,
//   u64 weights length W, W bytes of weight records (WeightRecords.h).
// All integers little-endian. One reader for bytes in memory and for files (which it never
// loads whole), one set of limits.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "tessera/common/Error.h"

namespace tessera::common {

enum class ContainerKind { Model, Update };

struct ContainerLimits {
  static constexpr uint32_t version = 1;
  static constexpr uint64_t maxHeaderBytes = uint64_t{1} << 20;
  static constexpr uint64_t prefixBytes = 8 + 4 + 8;  // magic, version, header length
};

// "TSMODEL" / "TSUPDATE", and the code of errors about such files (BadModel / BadUpdate).
std::string_view magicName(ContainerKind kind);
ErrorCode formatErrorCode(ContainerKind kind);

// Everything before the weight records.
std::string encodeContainerPrefix(ContainerKind kind, const nlohmann::json& header, uint64_t weightsBytes);

struct ContainerLayout {
  std::string headerText;  // the JSON header, not yet parsed
  uint64_t weightsOffset = 0;
  uint64_t weightsLength = 0;
};

// Checks magic, version, lengths (the weights section must end exactly at the end of the
// input) and returns the header text and where the weights are. Throws Error(formatErrorCode,
// "<source>: …") naming the problem.
ContainerLayout readContainerLayout(std::string_view bytes, ContainerKind kind, const std::string& source);
ContainerLayout readContainerFileLayout(const std::filesystem::path& path, ContainerKind kind, const std::string& source);
// The same checks on the first bytes of a stream (an upload still arriving): std::nullopt while
// more bytes are needed to know the layout, Error as soon as the bytes seen show a problem (a
// wrong signature is refused from its first byte). weightsLength is the declared one; the
// caller checks that exactly that many bytes follow the prefix. Reads at most prefixBytes +
// maxHeaderBytes + 8 bytes of `bytes`.
std::optional<ContainerLayout> readContainerPrefix(std::string_view bytes, ContainerKind kind, const std::string& source);

// Parses the header text as a JSON object whose "format" is `format`; Error otherwise.
nlohmann::json parseContainerHeader(const std::string& text, ContainerKind kind, const std::string& format,
                                    const std::string& source);

}  // namespace tessera::common
