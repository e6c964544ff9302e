// Minimal PNG writer (8-bit RGB, no interlacing, one IDAT) on top of zlib's deflate and CRC-32.

#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "tessera/plot/LinePlot.h"

namespace tessera::plot {

namespace {

constexpr int kBytesPerPixel = 3;

void appendBigEndian(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void appendChunk(std::string& out, const char (&type)[5], const std::string& data) {
  appendBigEndian(out, static_cast<uint32_t>(data.size()));
  const size_t typeAt = out.size();
  out.append(type, 4);
  out += data;
  // The CRC covers the chunk type and data, not the length.
  const auto* covered = reinterpret_cast<const Bytef*>(out.data() + typeAt);
  appendBigEndian(out, static_cast<uint32_t>(::crc32(::crc32(0L, Z_NULL, 0), covered, static_cast<uInt>(4 + data.size()))));
}

// Per row, the filter (None, Sub or Up) whose output has the smallest sum of absolute signed bytes:
// the usual PNG heuristic; it roughly halves the size of charts with long vertical edges.
std::vector<uint8_t> filterRows(const Raster& raster) {
  const size_t stride = static_cast<size_t>(raster.width) * kBytesPerPixel;
  std::vector<uint8_t> out;
  out.reserve((stride + 1) * static_cast<size_t>(raster.height));
  std::array<std::vector<uint8_t>, 3> candidates;
  for (auto& c : candidates) c.resize(stride);

  for (int y = 0; y < raster.height; ++y) {
    const uint8_t* row = raster.rgb.data() + static_cast<size_t>(y) * stride;
    const uint8_t* above = y > 0 ? row - stride : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      const uint8_t left = i >= kBytesPerPixel ? row[i - kBytesPerPixel] : 0;
      candidates[0][i] = row[i];
      candidates[1][i] = static_cast<uint8_t>(row[i] - left);
      candidates[2][i] = static_cast<uint8_t>(row[i] - (above ? above[i] : 0));
    }
    size_t best = 0;
    long bestCost = -1;
    for (size_t f = 0; f < candidates.size(); ++f) {
      long cost = 0;
      for (uint8_t b : candidates[f]) cost += std::abs(static_cast<int8_t>(b));
      if (bestCost < 0 || cost < bestCost) {
        bestCost = cost;
        best = f;
      }
    }
    out.push_back(static_cast<uint8_t>(best));  // filter type byte: 0 None, 1 Sub, 2 Up
    out.insert(out.end(), candidates[best].begin(), candidates[best].end());
  }
  return out;
}

}  // namespace

std::string encodePng(const Raster& raster) {
  if (raster.width <= 0 || raster.height <= 0)
    throw PlotError("PNG encoder: raster size " + std::to_string(raster.width) + "x" + std::to_string(raster.height) +
                    " is empty");
  const size_t expected = static_cast<size_t>(raster.width) * static_cast<size_t>(raster.height) * kBytesPerPixel;
  if (raster.rgb.size() != expected)
    throw PlotError("PNG encoder: raster of " + std::to_string(raster.width) + "x" + std::to_string(raster.height) +
                    " needs " + std::to_string(expected) + " bytes but has " + std::to_string(raster.rgb.size()));

  const std::vector<uint8_t> filtered = filterRows(raster);
  uLongf compressedSize = ::compressBound(static_cast<uLong>(filtered.size()));
  std::string compressed(compressedSize, '\0');
  const int rc = ::compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressedSize, filtered.data(),
                             static_cast<uLong>(filtered.size()), Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) throw PlotError("PNG encoder: zlib compress2 failed with code " + std::to_string(rc));
  compressed.resize(compressedSize);

  std::string header;
  appendBigEndian(header, static_cast<uint32_t>(raster.width));
  appendBigEndian(header, static_cast<uint32_t>(raster.height));
  header += std::string{8, 2, 0, 0, 0};  // bit depth 8, colour type RGB, deflate, adaptive filters, no interlace

  std::string png("\x89PNG\r\n\x1a\n", 8);
  appendChunk(png, "IHDR", header);
  appendChunk(png, "IDAT", compressed);
  appendChunk(png, "IEND", {});
  return png;
}

}  // namespace tessera::plot
