#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "Commands.h"
#include "tessera/dicom/DicomSeg.h"
#include "tessera/dicom/PacsClient.h"
#include "tessera/image/ImageIO.h"
#include "tessera/nn/Inference.h"
#include "tessera/nn/Runtime.h"

namespace tessera::cli {

Action addPredictCommand(CLI::App& app) {
  struct Args {
    std::string model, in, out;
    int threads = 0;
    bool store = false;
    ImageReadArgs read;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--model", a->model,
                 "Model file (.tsm), or pacs:auto with --in pacs://…: the newest model in that PACS matching the "
                 "scan's modality, body part and disease")
      ->required();
  app.add_option("--in", a->in, "Image to segment (file, DICOM series directory, or pacs://AET@HOST:PORT/STUDY_UID[/SERIES_UID])")
      ->required();
  app.add_option("--out", a->out, "Label map to write (.nii.gz, .nii, .mha, .nrrd; .dcm: a DICOM SEG referencing the --in DICOM series)")->required();
  app.add_option("--threads", a->threads, "Compute threads (default: all cores)");
  app.add_flag("--store", a->store, "With --in pacs://… and --out X.dcm: store the DICOM SEG back in that PACS (C-STORE)");
  addImageReadOptions(app, a->read);
  return [a] {
    nn::setThreadCount(a->threads);
    const bool seg = a->out.ends_with(".dcm");
    std::optional<dicom::PacsSeriesUrl> pacs;
    if (dicom::PacsSeriesUrl::matches(a->in)) pacs = dicom::PacsSeriesUrl::parse(a->in);
    if (a->model == "pacs:auto" && !pacs) throw Error(ErrorCode::BadRequest, "--model pacs:auto needs --in pacs://…");
    if (pacs && pacs->seriesUid.empty()) pacs->seriesUid = dicom::PacsClient(pacs->pacs).imageSeriesOf(pacs->studyUid);
    model::Model model;
    if (a->model == "pacs:auto") {
      const dicom::PacsClient client(pacs->pacs);
      const auto choice = client.selectModel(client.describeSeries(pacs->studyUid, pacs->seriesUid));
      std::cout << "model: " << choice.reason << "\n";
      model = client.pullModel(choice.model.task, choice.model.generation);
    } else {
      model = model::loadModel(a->model);
    }
    if (a->store && !(pacs && seg)) throw Error(ErrorCode::BadRequest, "--store needs --in pacs://… and --out ending in .dcm");
    // A series from a PACS is fetched into a temporary folder, removed when done.
    struct Fetched {
      std::filesystem::path path;
      ~Fetched() {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
      }
    } fetched;
    std::string input = a->in;
    if (pacs) {
      std::string pattern = (std::filesystem::temp_directory_path() / "tessera-series-XXXXXX").string();
      if (!mkdtemp(pattern.data())) throw Error(ErrorCode::Io, "cannot create a temporary folder for the series");
      fetched.path = pattern;
      const dicom::PacsClient client(pacs->pacs);
      const size_t n = client.retrieveSeries(pacs->studyUid, pacs->seriesUid, fetched.path);
      std::cout << "fetched " << n << " instance(s) from " << pacs->pacs.describe() << "\n";
      input = fetched.path.string();
    }
    const auto volume = image::readImage(input, a->read.options());
    const auto started = std::chrono::steady_clock::now();
    const auto labels = nn::segment(model, volume);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (seg) {
      dicom::writeDicomSeg(labels, model.task, input, a->out);
      if (a->store) {
        dicom::PacsClient(pacs->pacs).push({a->out});
        std::cout << "stored " << a->out << " in " << pacs->pacs.describe() << "\n";
      }
    } else {
      image::writeImage(labels, a->out, image::PixelType::UInt8);
    }
    std::cout << "wrote " << a->out << " (" << labels.geometry.describe() << ", " << seconds << " s)\n";
    return 0;
  };
}

}  // namespace tessera::cli
