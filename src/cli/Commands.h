#pragma once
// Each sub-command registers its options on the CLI11 app and returns the action to run once
// parsing succeeded. Actions throw on failure; main() turns exceptions into one-line messages.

#include <functional>
#include <optional>

#include <CLI/CLI.hpp>

#include "tessera/image/ImageIO.h"

namespace tessera::cli {

using Action = std::function<int()>;

// --volume and --nan-as, shared by every command that reads images.
struct ImageReadArgs {
  int64_t volume = -1;
  std::optional<double> nanAs;

  image::ReadOptions options() const {
    image::ReadOptions o;
    o.volume = volume;
    if (nanAs) {
      o.replaceNaN = true;
      o.nanValue = static_cast<float>(*nanAs);
    }
    return o;
  }
};

inline void addImageReadOptions(CLI::App& app, ImageReadArgs& args) {
  app.add_option("--volume", args.volume, "For 4D images: the 3D volume to take (0-based index along the 4th dimension)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app.add_option("--nan-as", args.nanAs,
                 "Read NaN voxels as this value (e.g. 0 for NaN outside the field of view); NaN is refused otherwise")
      ->check(CLI::Number);
}

Action addInfoCommand(CLI::App& app);
Action addTrainCommand(CLI::App& app);
Action addPredictCommand(CLI::App& app);
Action addEvaluateCommand(CLI::App& app);
Action addDemoCommand(CLI::App& app);
Action addServerCommand(CLI::App& app);
Action addSimulateCommand(CLI::App& app);
Action addClientCommand(CLI::App& app);
Action addInteractCommand(CLI::App& app);
Action addLearnCommand(CLI::App& app);
Action addPropagateCommand(CLI::App& app);
Action addModelCommand(CLI::App& app);
Action addPacsCommand(CLI::App& app);
Action addPrivacyCommand(CLI::App& app);
Action addBenchCommand(CLI::App& app);

}  // namespace tessera::cli
