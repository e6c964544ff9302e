// DICOM speed (issue 11), printed, never asserted: a ~31 M-parameter model to DICOM and back and
// through a real Orthanc on loopback (C-STORE, then C-FIND + C-GET + checks), each against a plain
// copy of the same bytes; the 181-slice Colin27 series (writeDicomSeries) fetched by C-GET and by
// WADO-RS; and the time to write a DICOM SEG for it.
// Usage: tessera_bench_dicom [COLIN27.nii.gz]   (needs /usr/sbin/Orthanc and its DICOMweb plugin)
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "OrthancFixture.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomSeg.h"
#include "tessera/dicom/DicomSeries.h"
#include "tessera/dicom/PacsClient.h"
#include "tessera/image/ImageIO.h"
#include "tessera/model/Model.h"

using namespace tessera;
namespace fs = std::filesystem;

namespace {

double seconds(const std::function<void()>& work) {
  const auto t0 = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void report(const char* what, double s, double bytes) {
  std::printf("%-46s %8.3f s  %8.1f MB/s\n", what, s, bytes / 1e6 / s);
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path colin = argc > 1 ? argv[1] : "/usr/share/mricron/templates/ch2.nii.gz";
  const fs::path work = fs::temp_directory_path() / ("tessera-dicom-bench-" + std::to_string(::getpid()));
  fs::create_directories(work);

  model::NetworkSpec spec;
  spec.dims = 2;
  spec.baseFeatures = 64;
  spec.depth = 5;
  model::TaskInfo task;
  task.name = "bench-brain";
  task.modality = "MR";
  task.anatomy = "BRAIN";
  model::Model m = model::initialModel(spec, model::Preprocessing{}, task, 1);
  m.generation = 1;
  const std::string tsm = model::encodeModel(m);
  common::writeFileAtomically(work / "m.tsm", tsm);
  size_t params = 0;
  for (const auto& t : m.weights) params += t.values.size();
  std::printf("model: %.1f M parameters, %.1f MB .tsm\n", params / 1e6, tsm.size() / 1e6);
  const double copy = seconds([&] { fs::copy_file(work / "m.tsm", work / "copy.tsm", fs::copy_options::overwrite_existing); });
  report("plain file copy of the .tsm", copy, double(tsm.size()));
  std::string dcm;
  report("model -> DICOM (encode)", seconds([&] { dcm = dicom::encodeModelDicom(m); }), double(tsm.size()));
  report("DICOM -> model (decode, SHA-256 + layout)", seconds([&] { dicom::decodeModelDicom(dcm, "bench"); }), double(tsm.size()));
  common::writeFileAtomically(work / "m.dcm", dcm);

  test::OrthancOptions oo;
  oo.dicomWeb = true;
  test::OrthancServer pacs(oo);
  dicom::PacsClient client(dicom::PacsAddress::parse(pacs.address()));
  report("C-STORE of the model into Orthanc", seconds([&] { client.push({work / "m.dcm"}); }), double(dcm.size()));
  report("C-FIND + C-GET + decode of the model", seconds([&] { client.pullModel(task.name, 1); }), double(dcm.size()));

  const image::Volume volume = image::readImage(colin);
  dicom::DicomSeriesInfo series;
  const double write = seconds([&] { series = dicom::writeDicomSeries(volume, work / "series"); });
  size_t seriesBytes = 0;
  for (const auto& e : fs::directory_iterator(work / "series")) seriesBytes += fs::file_size(e.path());
  std::printf("Colin27 series: %zu slices, %.1f MB\n", series.instances, seriesBytes / 1e6);
  report("writeDicomSeries (Colin27)", write, double(seriesBytes));
  report("C-STORE of the series", seconds([&] { client.push({work / "series"}); }), double(seriesBytes));
  report("C-GET of the series",
         seconds([&] { client.retrieveSeries(series.studyUid, series.seriesUid, work / "fetched"); }), double(seriesBytes));
  size_t wadoBytes = 0;
  const double wado = seconds([&] {
    httplib::Client http("127.0.0.1", pacs.httpPort());
    http.set_read_timeout(120, 0);
    const auto r = http.Get("/dicom-web/studies/" + series.studyUid + "/series/" + series.seriesUid,
                            {{"Accept", "multipart/related; type=\"application/dicom\""}});
    if (!r || r->status != 200) throw std::runtime_error("WADO-RS failed");
    wadoBytes = r->body.size();
  });
  report("WADO-RS of the series (multipart body)", wado, double(wadoBytes));

  image::Volume labels(volume.geometry);
  const auto [lo, hi] = volume.valueRange();
  for (size_t i = 0; i < labels.voxels.size(); ++i) labels.voxels[i] = volume.voxels[i] > lo + 0.3f * (hi - lo) ? 1.0f : 0.0f;
  const double seg = seconds([&] { dicom::writeDicomSeg(labels, task, work / "series", work / "seg.dcm"); });
  std::printf("%-46s %8.3f s  (%.1f MB)\n", "DICOM SEG write (181 frames, 1 segment)", seg, fs::file_size(work / "seg.dcm") / 1e6);
  fs::remove_all(work);
  return 0;
}
