#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ProgressReporter.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/Dataset.h"
#include "tessera/model/TaskName.h"
#include "tessera/common/Error.h"
#include "tessera/nn/Runtime.h"
#include "tessera/nn/Training.h"

namespace tessera::cli {

namespace {

struct TrainArgs {
  ImageReadArgs read;
  std::vector<std::string> images, labels;
  std::string dataset, spec, out, init;
  int epochs = 30;
  int batchSize = 8;
  double learningRate = 2e-3;
  uint64_t seed = 1;
  int threads = 0;
  bool binarize = false;
  bool noAugment = false;
  bool guidance = false;
  model::TaskInfo task;
};

nlohmann::json readJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::BadModel, path + ": cannot open spec file");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::BadModel, path + ": not valid JSON: " + e.what());
  }
}

// A spec file is either a bare network spec or {"network": …, "preprocessing": …}.
model::Model modelFromSpecFile(const std::string& path, const model::Model& defaults, uint64_t seed) {
  const auto j = readJsonFile(path);
  try {
    const bool wrapped = j.is_object() && j.contains("network");
    const auto spec = model::networkSpecFromJson(wrapped ? j.at("network") : j);
    const auto prep = wrapped && j.contains("preprocessing") ? model::preprocessingFromJson(j.at("preprocessing"))
                                                             : defaults.preprocessing;
    auto task = defaults.task;
    for (int l = 0; l < spec.classes; ++l) {
      if (!task.labels.count(l)) task.labels[l] = "label " + std::to_string(l);
    }
    return model::initialModel(spec, prep, task, seed);
  } catch (const Error& e) {
    throw Error(ErrorCode::BadModel, path + ": " + e.what());
  }
}

}  // namespace

Action addTrainCommand(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* images = app.add_option("--images", a->images, "Training images")->expected(1, -1);
  auto* labels = app.add_option("--labels", a->labels, "Label maps, one per image, on the same grid")->expected(1, -1);
  app.add_option("--dataset", a->dataset,
                 "Training dataset folder instead of --images/--labels: images/ + labels/, an nnU-Net v2 raw dataset "
                 "or a Medical Segmentation Decathlon task (its label names go into the model)")
      ->excludes(images)
      ->excludes(labels);
  app.add_option("--spec", a->spec, "Network spec JSON (default: chosen from the data)");
  app.add_option("--out", a->out, "Where to write the model (.tsm)")->required();
  addImageReadOptions(app, a->read);
  app.add_option("--epochs", a->epochs, "Passes over the training data")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--init", a->init, "Fine-tune this model instead of starting from random weights");
  app.add_option("--seed", a->seed, "Random seed (initial weights, shuffling, augmentation)")->capture_default_str();
  app.add_option("--batch-size", a->batchSize, "Slices (2D) or patches (3D) per step")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--learning-rate", a->learningRate, "Initial learning rate (Adam, polynomial decay)")->capture_default_str();
  app.add_option("--threads", a->threads, "Compute threads (default: all cores; 1 for bit-identical reruns)");
  app.add_flag("--binarize", a->binarize, "Treat every non-zero label value as label 1");
  app.add_flag("--no-augment", a->noAugment, "Disable intensity augmentation");
  app.add_flag("--guidance", a->guidance,
               "Interactive model: positive/negative click maps as 2 extra input channels, trained with simulated "
               "clicks (and none part of the time, so it also segments on its own); with --init, that model must "
               "have them");
  app.add_option("--task", a->task.name, "Task name stored in the model (a-z, 0-9, . _ -; at most 64)")->capture_default_str();
  app.add_option("--modality", a->task.modality, "Modality stored in the model (DICOM code, e.g. MR)");
  app.add_option("--anatomy", a->task.anatomy, "Anatomical region stored in the model (e.g. BRAIN)");
  app.add_option("--disease", a->task.disease, "Disease stored in the model");

  return [a] {
    model::requireValidTaskName(a->task.name, "--task");  // before any data is read or trained on
    if (a->dataset.empty() && a->images.empty()) {
      throw Error(ErrorCode::Config, "train: give --dataset DIR, or --images with --labels");
    }
    if (a->images.size() != a->labels.size()) {
      throw Error(ErrorCode::BadModel, "--images has " + std::to_string(a->images.size()) + " files but --labels has " +
                           std::to_string(a->labels.size()));
    }
    nn::setThreadCount(a->threads);
    std::vector<model::TrainingCase> cases;
    std::vector<std::string> imageFiles = a->images, labelFiles = a->labels;  // what messages call each case's files
    if (!a->dataset.empty()) {
      model::Dataset dataset = model::readDataset(a->dataset);
      if (dataset.cases.empty()) throw Error(ErrorCode::BadDataset, a->dataset + ": holds no cases");
      if (!a->binarize) model::applyLabelNames(a->task, dataset);  // --binarize keeps background and foreground
      std::cerr << a->dataset << ": " << model::layoutName(dataset.layout) << " dataset, " << dataset.cases.size()
                << " case(s)" << std::endl;
      for (auto& c : dataset.cases) {
        imageFiles.push_back(a->dataset + " (case " + c.name + " image)");
        labelFiles.push_back(a->dataset + " (case " + c.name + " labels)");
        cases.push_back(std::move(c.data));
      }
    } else {
      for (size_t i = 0; i < a->images.size(); ++i) {
        // --volume picks a volume of 4D images; label maps are 3D.
        auto labelOptions = a->read.options();
        labelOptions.volume = -1;
        cases.push_back({image::readImage(a->images[i], a->read.options()), image::readImage(a->labels[i], labelOptions)});
      }
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      model::TrainingCase& c = cases[i];
      if (!c.image.geometry.sameGrid(c.labels.geometry)) {
        throw Error(ErrorCode::BadImage, labelFiles[i] + ": label grid " + c.labels.geometry.describe() +
                                " differs from image " + imageFiles[i] + " grid " + c.image.geometry.describe());
      }
      if (a->binarize) {
        for (float& v : c.labels.voxels) v = v > 0 ? 1.0f : 0.0f;
      }
      if (a->task.modality.empty()) a->task.modality = c.image.modality;
      if (a->task.anatomy.empty()) a->task.anatomy = c.image.bodyPart;
    }
    model::Model model;
    if (!a->init.empty()) {
      model = model::loadModel(a->init);
      model.parentGeneration = model.generation;
      model.generation += 1;
      // Adding channels would throw away what the first layer learned: a new model is the honest way.
      if (a->guidance && model.spec.guidanceChannels == 0) {
        throw Error(ErrorCode::BadRequest, a->init +
                                               ": model has no guidance channels, so --guidance cannot fine-tune it "
                                               "(train a new model with --guidance instead of --init)");
      }
    } else {
      model = nn::defaultModelFor(cases, a->task, a->seed);
      if (!a->spec.empty()) model = modelFromSpecFile(a->spec, model, a->seed);
      if (a->guidance && model.spec.guidanceChannels == 0) {
        model.spec.guidanceChannels = 2;
        model = model::initialModel(model.spec, model.preprocessing, model.task, a->seed);
      }
    }
    for (size_t i = 0; i < cases.size(); ++i) {
      try {
        nn::validateTrainingCases({cases[i]}, model.spec, model.preprocessing);
      } catch (const Error& e) {
        // The message names "training case 1"; name the file instead: the image for an image
        // that is too small, else the label map (and how to fix label values).
        const std::string what = e.what();
        if (e.code() == ErrorCode::BadImage) throw Error(e.code(), imageFiles[i] + what.substr(what.find(':')));
        throw Error(ErrorCode::BadModel, labelFiles[i] + what.substr(what.find(':')) +
                             (a->binarize ? "" : " (use --binarize for a mask with other non-zero values)"));
      }
    }
    std::cerr << "training " << (model.spec.dims == 2 ? "2D" : "3D") << " U-Net (" << common::parameterCount(model.weights)
              << " parameters" << (model.spec.guidanceChannels > 0 ? ", click guidance" : "") << ") on "
              << cases.size() << " image(s), " << a->epochs << " epochs, "
              << nn::threadCount() << " thread(s)" << std::endl;
    nn::TrainOptions options;
    options.epochs = a->epochs;
    options.batchSize = a->batchSize;
    options.learningRate = a->learningRate;
    options.seed = a->seed;
    options.augment = !a->noAugment;
    ProgressReporter progress("train");
    options.onEpoch = [&progress](const nn::TrainProgress& p) { progress(p); };
    nn::trainModel(model, cases, options);
    model::saveModel(model, a->out);
    std::cout << "wrote " << a->out << " (generation " << model.generation << ", weights sha256 "
              << model.weightsSha256().substr(0, 16) << "…)\n";
    return 0;
  };
}

}  // namespace tessera::cli
