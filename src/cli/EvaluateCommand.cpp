#include <cmath>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "tessera/dicom/DicomSeg.h"
#include "tessera/image/ImageIO.h"
#include "tessera/image/Metrics.h"

namespace tessera::cli {

namespace {
// JSON has no infinity: an undefined distance (one mask empty) is written as null.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
}  // namespace

Action addEvaluateCommand(CLI::App& app) {
  struct Args {
    std::string pred, truth;
    bool json = false;
    ImageReadArgs read;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--pred", a->pred, "Predicted label map (or a DICOM SEG of the --truth image's series)")->required();
  app.add_option("--truth", a->truth, "Reference label map on the same grid (or a DICOM SEG)")->required();
  app.add_flag("--json", a->json, "Print one JSON object instead of a table");
  addImageReadOptions(app, a->read);
  return [a] {
    // A DICOM SEG has no grid of its own here: it is read onto the other side's.
    const bool predSeg = dicom::isDicomSeg(a->pred), truthSeg = dicom::isDicomSeg(a->truth);
    if (predSeg && truthSeg) {
      throw Error(ErrorCode::BadRequest, "--pred and --truth are both DICOM SEGs; one must be a label map giving the grid");
    }
    image::Volume pred, truth;
    if (predSeg) {
      truth = image::readImage(a->truth, a->read.options());
      pred = dicom::readDicomSeg(a->pred, truth.geometry);
    } else {
      pred = image::readImage(a->pred, a->read.options());
      truth = truthSeg ? dicom::readDicomSeg(a->truth, pred.geometry) : image::readImage(a->truth, a->read.options());
    }
    if (!pred.geometry.sameGrid(truth.geometry)) {
      throw Error(ErrorCode::BadImage, a->pred + ": grid " + pred.geometry.describe() + " differs from " + a->truth +
                              " grid " + truth.geometry.describe() + " (resample one of them first)");
    }
    const auto metrics = image::evaluateLabels(pred, truth);
    if (a->json) {
      nlohmann::json labels = nlohmann::json::object();
      for (const auto& [label, m] : metrics) {
        labels[std::to_string(label)] = {{"dice", m.dice},
                                         {"jaccard", m.jaccard},
                                         {"hd95_mm", number(m.hd95Mm)},
                                         {"volume_pred_ml", m.volumePredMl},
                                         {"volume_truth_ml", m.volumeTruthMl}};
      }
      std::cout << nlohmann::json{{"labels", labels}}.dump(2) << "\n";
      return 0;
    }
    std::printf("%-6s %8s %8s %10s %14s %15s\n", "label", "dice", "jaccard", "hd95_mm", "volume_pred_ml",
                "volume_truth_ml");
    for (const auto& [label, m] : metrics) {
      std::printf("%-6d %8.4f %8.4f %10.2f %14.2f %15.2f\n", label, m.dice, m.jaccard, m.hd95Mm, m.volumePredMl,
                  m.volumeTruthMl);
    }
    if (metrics.empty()) std::printf("(no labels in either map)\n");
    return 0;
  };
}

}  // namespace tessera::cli
