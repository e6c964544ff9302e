#pragma once
// Crash-safe file replacement for the plot library (kept local so that it needs nothing but POSIX):
// readers see the old file or the complete new one, never a truncated PNG.

#include <filesystem>
#include <string_view>

namespace tessera::plot {

// Temporary file in the same directory, fsync, rename over `path`, fsync the directory.
// Throws PlotError naming `path` and the system's reason; no temporary file is left behind.
void writeFileAtomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace tessera::plot
