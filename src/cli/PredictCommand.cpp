#include <chrono>
#include <iostream>

#include "Commands.h"
#include "tessera/dicom/DicomSeg.h"
#include "tessera/image/ImageIO.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"

namespace tessera::cli {

Action addPredictCommand(CLI::App& app) {
  struct Args {
    std::string model, in, out;
    int threads = 0;
    ImageReadArgs read;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--model", a->model, "Model file (.tsm)")->required();
  app.add_option("--in", a->in, "Image to segment (file or DICOM series directory)")->required();
  app.add_option("--out", a->out, "Label map to write (.nii.gz, .nii, .mha, .nrrd; .dcm: a DICOM SEG referencing the --in DICOM series)")->required();
  app.add_option("--threads", a->threads, "Compute threads (default: all cores)");
  addImageReadOptions(app, a->read);
  return [a] {
    nn::setThreadCount(a->threads);
    const auto model = model::loadModel(a->model);
    const auto volume = image::readImage(a->in, a->read.options());
    const auto started = std::chrono::steady_clock::now();
    const auto labels = nn::segment(model, volume);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (a->out.ends_with(".dcm")) {
      dicom::writeDicomSeg(labels, model.task, a->in, a->out);
    } else {
      image::writeImage(labels, a->out, image::PixelType::UInt8);
    }
    std::cout << "wrote " << a->out << " (" << labels.geometry.describe() << ", " << seconds << " s)\n";
    return 0;
  };
}

}  // namespace tessera::cli
