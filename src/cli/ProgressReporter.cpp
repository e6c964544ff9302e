#include "ProgressReporter.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace tessera::cli {

std::string formatDuration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buffer, sizeof buffer, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lds", s);
  }
  return buffer;
}

ProgressReporter::ProgressReporter(std::string label)
    : label_(std::move(label)), terminal_(::isatty(STDERR_FILENO) == 1) {}

ProgressReporter::~ProgressReporter() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressReporter::operator()(const nn::TrainProgress& p) {
  // Semi-supervised training: how much of the unlabelled images the teacher was sure of.
  char pseudo[96] = "";
  if (p.unlabeledVoxels > 0) {
    std::snprintf(pseudo, sizeof pseudo, "  pseudo-labelled %lld/%lld (%.0f%%)", static_cast<long long>(p.pseudoLabelledVoxels),
                  static_cast<long long>(p.unlabeledVoxels), 100.0 * static_cast<double>(p.pseudoLabelledVoxels) / static_cast<double>(p.unlabeledVoxels));
  }
  if (!terminal_) {
    std::fprintf(stderr, "%s: epoch %d/%d  loss %.4f%s  elapsed %s  left %s\n", label_.c_str(), p.epoch, p.epochs,
                 p.loss, pseudo, formatDuration(p.secondsElapsed).c_str(), formatDuration(p.secondsLeft).c_str());
    std::fflush(stderr);
    return;
  }
  constexpr int kWidth = 30;
  const int filled = p.epochs > 0 ? p.epoch * kWidth / p.epochs : kWidth;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] epoch %d/%d  loss %.4f%s  %s left   ", label_.c_str(), bar.c_str(), p.epoch,
               p.epochs, p.loss, pseudo, formatDuration(p.secondsLeft).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace tessera::cli
