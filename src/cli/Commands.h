#pragma once
// Each sub-command registers its options on the CLI11 app and returns the action to run once
// parsing succeeded. Actions throw on failure; main() turns exceptions into one-line messages.

#include <functional>

#include <CLI/CLI.hpp>

namespace tessera::cli {

using Action = std::function<int()>;

Action addInfoCommand(CLI::App& app);
Action addTrainCommand(CLI::App& app);
Action addPredictCommand(CLI::App& app);
Action addEvaluateCommand(CLI::App& app);
Action addDemoCommand(CLI::App& app);
Action addServerCommand(CLI::App& app);
Action addSimulateCommand(CLI::App& app);
Action addClientCommand(CLI::App& app);

}  // namespace tessera::cli
