#include "tessera/common/Container.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

namespace tessera::common {

namespace {
constexpr char kModelMagic[8] = {'T', 'S', 'M', 'O', 'D', 'E', 'L', '\0'};
constexpr char kUpdateMagic[8] = {'T', 'S', 'U', 'P', 'D', 'A', 'T', 'E'};

std::string_view magicBytes(ContainerKind kind) {
  return {kind == ContainerKind::Model ? kModelMagic : kUpdateMagic, 8};
}

template <typename T>
void append(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T load(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// The layout from its fixed-size parts: `readAt(offset, n)` returns exactly n bytes.
template <typename ReadAt>
ContainerLayout parse(uint64_t total, ContainerKind kind, const std::string& source, ReadAt&& readAt) {
  const ErrorCode code = formatErrorCode(kind);
  auto bad = [&](const std::string& problem) { return Error(code, source + ": " + problem); };
  const std::string wanted(magicBytes(kind));
  if (total < 8 || readAt(0, 8) != wanted) {
    throw bad(std::string("not a Tessera ") + (kind == ContainerKind::Model ? "model file" : "update") + " (missing '" +
              std::string(magicName(kind)) + "' signature)");
  }
  if (total < ContainerLimits::prefixBytes) throw bad("truncated: the file ends inside its fixed header");
  const std::string prefix = readAt(8, 12);
  const auto version = load<uint32_t>(prefix.data());
  if (version != ContainerLimits::version) {
    throw bad("format version " + std::to_string(version) + " is not supported (this build reads " +
              std::to_string(ContainerLimits::version) + ")");
  }
  const auto headerLength = load<uint64_t>(prefix.data() + 4);
  if (headerLength > ContainerLimits::maxHeaderBytes) {
    throw bad("header length " + std::to_string(headerLength) + " is over the limit of " +
              std::to_string(ContainerLimits::maxHeaderBytes) + " bytes");
  }
  // Compared without adding to `total`'s side, which cannot wrap: headerLength is bounded.
  if (ContainerLimits::prefixBytes + headerLength + 8 > total) {
    throw bad("truncated: the header needs " + std::to_string(headerLength) + " bytes, only " +
              std::to_string(total - ContainerLimits::prefixBytes) + " follow");
  }
  ContainerLayout layout;
  layout.headerText = readAt(ContainerLimits::prefixBytes, headerLength);
  layout.weightsLength = load<uint64_t>(readAt(ContainerLimits::prefixBytes + headerLength, 8).data());
  layout.weightsOffset = ContainerLimits::prefixBytes + headerLength + 8;
  const uint64_t present = total - layout.weightsOffset;
  if (layout.weightsLength > present) {
    throw bad("truncated: the weights section needs " + std::to_string(layout.weightsLength) + " bytes, only " +
              std::to_string(present) + " follow");
  }
  if (layout.weightsLength < present) {
    throw bad(std::to_string(present - layout.weightsLength) + " unexpected bytes after the weights section (it says " +
              std::to_string(layout.weightsLength) + " bytes)");
  }
  return layout;
}
}  // namespace

std::string_view magicName(ContainerKind kind) { return kind == ContainerKind::Model ? "TSMODEL" : "TSUPDATE"; }

ErrorCode formatErrorCode(ContainerKind kind) {
  return kind == ContainerKind::Model ? ErrorCode::BadModel : ErrorCode::BadUpdate;
}

std::string encodeContainerPrefix(ContainerKind kind, const nlohmann::json& header, uint64_t weightsBytes) {
  const std::string text = header.dump();
  if (text.size() > ContainerLimits::maxHeaderBytes) {
    throw Error(formatErrorCode(kind), std::string(magicName(kind)) + " header of " + std::to_string(text.size()) +
                                           " bytes is over the limit of " +
                                           std::to_string(ContainerLimits::maxHeaderBytes));
  }
  std::string out(magicBytes(kind));
  append<uint32_t>(out, ContainerLimits::version);
  append<uint64_t>(out, text.size());
  out += text;
  append<uint64_t>(out, weightsBytes);
  return out;
}

ContainerLayout readContainerLayout(std::string_view bytes, ContainerKind kind, const std::string& source) {
  return parse(bytes.size(), kind, source,
               [&](uint64_t offset, uint64_t n) { return std::string(bytes.substr(offset, n)); });
}

std::optional<ContainerLayout> readContainerPrefix(std::string_view bytes, ContainerKind kind, const std::string& source) {
  const auto readAt = [&](uint64_t offset, uint64_t n) { return std::string(bytes.substr(offset, n)); };
  const std::string_view wanted = magicBytes(kind);
  const size_t seen = std::min<size_t>(bytes.size(), wanted.size());
  // parse() names each problem below; it is called only once one is certain.
  // A stream that does not start with the signature is refused from its first bytes.
  if (bytes.substr(0, seen) != wanted.substr(0, seen)) return parse(bytes.size(), kind, source, readAt);
  if (bytes.size() < ContainerLimits::prefixBytes) return std::nullopt;
  const auto version = load<uint32_t>(bytes.data() + 8);
  const auto headerLength = load<uint64_t>(bytes.data() + 12);
  if (version != ContainerLimits::version || headerLength > ContainerLimits::maxHeaderBytes) {
    return parse(ContainerLimits::prefixBytes, kind, source, readAt);
  }
  const uint64_t prefix = ContainerLimits::prefixBytes + headerLength + 8;
  if (bytes.size() < prefix) return std::nullopt;
  const auto weightsLength = load<uint64_t>(bytes.data() + prefix - 8);
  if (weightsLength > UINT64_MAX - prefix) {
    throw Error(formatErrorCode(kind), source + ": weights length " + std::to_string(weightsLength) + " is impossible");
  }
  // As if the whole stream were there: every check but the one on where the input ends.
  return parse(prefix + weightsLength, kind, source, readAt);
}

ContainerLayout readContainerFileLayout(const std::filesystem::path& path, ContainerKind kind, const std::string& source) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(ErrorCode::BadRequest, source + ": is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const bool missing = !std::filesystem::exists(path, ec);
    throw Error(missing ? ErrorCode::NotFound : ErrorCode::Io,
                source + (missing ? ": no such file" : std::string(": cannot open: ") + std::strerror(errno)));
  }
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::Io, source + ": cannot read its size: " + ec.message());
  return parse(size, kind, source, [&](uint64_t offset, uint64_t n) {
    std::string out(n, '\0');
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(out.data(), static_cast<std::streamsize>(n));
    if (!in) throw Error(ErrorCode::Io, source + ": read failed at offset " + std::to_string(offset));
    return out;
  });
}

nlohmann::json parseContainerHeader(const std::string& text, ContainerKind kind, const std::string& format,
                                    const std::string& source) {
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(formatErrorCode(kind), source + ": header is not valid JSON: " + e.what());
  }
  // (value() would throw json::type_error for a "format" that is not a string.)
  if (!header.is_object() || !header.contains("format") || header.at("format") != format) {
    throw Error(formatErrorCode(kind), source + ": header does not declare format '" + format + "'");
  }
  return header;
}

}  // namespace tessera::common
