#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ProgressReporter.h"
#include "tessera/image/ImageIO.h"
#include "tessera/image/Metrics.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

namespace tessera::cli {

namespace fs = std::filesystem;

namespace {

std::string defaultDataDir() {
  if (const char* env = std::getenv("TESSERA_MRICRON_DIR")) return env;
  return "/usr/share/mricron/templates";
}

std::vector<int64_t> slicesWithRemainder(int64_t count, int64_t step, int64_t remainder) {
  std::vector<int64_t> out;
  for (int64_t i = remainder; i < count; i += step) out.push_back(i);
  return out;
}

}  // namespace

Action addDemoCommand(CLI::App& app) {
  struct Args {
    std::string dataDir = defaultDataDir();
    std::string out = "tessera-demo";
    int epochs = 40;
    uint64_t seed = 1;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--data", a->dataDir, "Folder holding ch2.nii.gz and ch2bet.nii.gz (env TESSERA_MRICRON_DIR)")
      ->capture_default_str();
  app.add_option("--out", a->out, "Folder for the model, segmentations and report")->capture_default_str();
  app.add_option("--epochs", a->epochs, "Training epochs")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--seed", a->seed, "Random seed")->capture_default_str();
  app.add_option("--threads", a->threads, "Compute threads (default: all cores)");
  return [a] {
    const auto started = std::chrono::steady_clock::now();
    nn::setThreadCount(a->threads);
    const fs::path imagePath = fs::path(a->dataDir) / "ch2.nii.gz";
    const fs::path maskPath = fs::path(a->dataDir) / "ch2bet.nii.gz";
    std::cout << "Tessera demo: brain segmentation of the Colin27 T1 MRI (Debian package mricron-data)\n";
    image::Volume t1;
    image::Volume brain;
    try {
      t1 = image::readImage(imagePath);
      brain = image::readImage(maskPath);
    } catch (const image::ImageError& e) {
      throw image::ImageError(std::string(e.what()) + " (install it with: apt-get install mricron-data)");
    }
    for (float& v : brain.voxels) v = v > 0 ? 1.0f : 0.0f;  // the brain-extracted T1 is the mask

    // Interleaved axial slices: every 4th for training, the ones halfway between for testing.
    const int64_t slices = t1.geometry.size[2];
    const auto trainIdx = slicesWithRemainder(slices, 4, 0);
    const auto testIdx = slicesWithRemainder(slices, 4, 2);
    nn::TrainingCase train{image::extractSlices(t1, 2, trainIdx), image::extractSlices(brain, 2, trainIdx)};
    const auto testImage = image::extractSlices(t1, 2, testIdx);
    const auto testTruth = image::extractSlices(brain, 2, testIdx);
    std::cout << "image " << t1.geometry.describe() << "; training on " << trainIdx.size()
              << " axial slices, testing on " << testIdx.size() << " disjoint slices\n";

    nn::TaskInfo task;
    task.name = "brain";
    task.modality = "MR";
    task.anatomy = "BRAIN";
    task.disease = "none";
    task.labels = {{0, "background"}, {1, "brain"}};
    auto model = nn::defaultModelFor({train}, task, a->seed);
    std::cout << "network: 2D U-Net, " << nn::parameterCount(model.weights) << " parameters, "
              << nn::threadCount() << " thread(s), " << a->epochs << " epochs" << std::endl;
    nn::TrainOptions options;
    options.epochs = a->epochs;
    options.seed = a->seed;
    ProgressReporter progress("train");
    options.onEpoch = [&progress](const nn::TrainProgress& p) { progress(p); };
    nn::trainModel(model, {train}, options);

    fs::create_directories(a->out);
    const fs::path modelPath = fs::path(a->out) / "brain.tsm";
    nn::saveModel(model, modelPath);
    const auto prediction = nn::segment(model, testImage);
    image::writeImage(testImage, fs::path(a->out) / "test-image.nii.gz", image::PixelType::Int16);
    image::writeImage(testTruth, fs::path(a->out) / "test-truth.nii.gz", image::PixelType::UInt8);
    image::writeImage(prediction, fs::path(a->out) / "test-prediction.nii.gz", image::PixelType::UInt8);
    const auto metrics = image::evaluateLabels(prediction, testTruth);
    const auto& m = metrics.at(1);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    nlohmann::json report{{"task", "brain"},
                          {"train_slices", trainIdx.size()},
                          {"test_slices", testIdx.size()},
                          {"epochs", a->epochs},
                          {"dice", m.dice},
                          {"jaccard", m.jaccard},
                          {"hd95_mm", m.hd95Mm},
                          {"volume_pred_ml", m.volumePredMl},
                          {"volume_truth_ml", m.volumeTruthMl},
                          {"seconds", seconds},
                          {"model", modelPath.string()}};
    std::ofstream(fs::path(a->out) / "report.json") << report.dump(2) << "\n";
    std::printf("held-out slices: Dice %.4f  Jaccard %.4f  HD95 %.2f mm  volume %.1f ml (truth %.1f ml)\n", m.dice,
                m.jaccard, m.hd95Mm, m.volumePredMl, m.volumeTruthMl);
    std::printf("done in %s; model, segmentations and report.json are in %s/\n", formatDuration(seconds).c_str(),
                a->out.c_str());
    return 0;
  };
}

}  // namespace tessera::cli
