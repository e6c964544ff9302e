#pragma once
// Training progress on stderr: a redrawn bar on a terminal, one plain line per epoch otherwise
// (logs and CI capture stay readable).

#include <string>

#include "tessera/nn/Training.h"

namespace tessera::cli {

class ProgressReporter {
 public:
  explicit ProgressReporter(std::string label);
  ~ProgressReporter();
  void operator()(const nn::TrainProgress& progress);

 private:
  std::string label_;
  bool terminal_;
  bool drawn_ = false;
};

std::string formatDuration(double seconds);

}  // namespace tessera::cli
