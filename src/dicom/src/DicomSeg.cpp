#include "tessera/dicom/DicomSeg.h"

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "DcmtkSupport.h"
#include "dcmtk/dcmfg/fgderimg.h"
#include "dcmtk/dcmfg/fgfracon.h"
#include "dcmtk/dcmfg/fgpixmsr.h"
#include "dcmtk/dcmfg/fgplanor.h"
#include "dcmtk/dcmfg/fgplanpo.h"
#include "dcmtk/dcmiod/iodreferences.h"
#include "dcmtk/dcmseg/segdoc.h"
#include "dcmtk/dcmseg/segment.h"
#include "dcmtk/dcmseg/segutils.h"
#include "dcmtk/dcmfg/fgseg.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/AnatomyCodes.h"

namespace tessera::dicom {

namespace {

struct SourceInstance {
  std::filesystem::path path;
  std::string sopClass, sopInstance, series;
  std::array<double, 3> position{};
};

// Header of one file, without loading pixel data.
std::optional<SourceInstance> readHeader(const std::filesystem::path& path) {
  DcmFileFormat file;
  if (file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 256).bad()) return std::nullopt;
  DcmDataset& ds = *file.getDataset();
  SourceInstance s;
  s.path = path;
  s.sopClass = detail::stringValue(ds, DCM_SOPClassUID);
  s.sopInstance = detail::stringValue(ds, DCM_SOPInstanceUID);
  s.series = detail::stringValue(ds, DCM_SeriesInstanceUID);
  for (unsigned long i = 0; i < 3; ++i) {
    Float64 v = 0;
    if (ds.findAndGetFloat64(DCM_ImagePositionPatient, v, i).bad()) return std::nullopt;
    s.position[i] = v;
  }
  if (s.sopInstance.empty() || s.series.empty()) return std::nullopt;
  return s;
}

std::vector<SourceInstance> sourceSeries(const std::filesystem::path& source) {
  std::error_code ec;
  std::vector<SourceInstance> instances;
  std::string series;
  std::filesystem::path folder = source;
  if (!std::filesystem::is_directory(source, ec)) {
    const auto first = readHeader(source);
    if (!first) throw Error(ErrorCode::BadImage, source.string() + ": not a DICOM image with a position, cannot reference it from a SEG");
    series = first->series;
    folder = source.parent_path().empty() ? std::filesystem::path(".") : source.parent_path();
  }
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    auto h = readHeader(entry.path());
    if (!h) continue;
    if (series.empty()) series = h->series;
    if (h->series != series) {
      if (std::filesystem::is_directory(source, ec)) {
        throw Error(ErrorCode::BadImage, source.string() + ": holds more than one DICOM series");
      }
      continue;
    }
    if (seen.insert(h->sopInstance).second) instances.push_back(std::move(*h));
  }
  if (instances.empty()) throw Error(ErrorCode::BadImage, source.string() + ": no DICOM series to reference from a SEG");
  return instances;
}

std::string ds(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", std::abs(v) < 1e-9 ? 0.0 : v);
  return buf;
}

void check(const OFCondition& cond, const std::string& what) {
  if (cond.bad()) throw Error(ErrorCode::Internal, "DICOM SEG: " + what + ": " + cond.text());
}

model::CodedConcept propertyType(const std::string& labelName, const model::TaskInfo& task) {
  if (auto a = findAnatomy(labelName)) return a->region;
  if (!task.anatomyCode.empty()) return task.anatomyCode;
  if (auto a = findAnatomy(task.anatomy)) return a->region;
  return {"SCT", "85756007", "Tissue"};
}

}  // namespace

void writeDicomSeg(const image::Volume& labels, const model::TaskInfo& task, const std::filesystem::path& source,
                   const std::filesystem::path& out, const SegOptions& options) {
  detail::ensureTesseraDictionary();
  const auto& g = labels.geometry;
  if (g.size[0] > 65535 || g.size[1] > 65535) throw Error(ErrorCode::BadImage, "label map too large for a DICOM SEG frame");
  const auto instances = sourceSeries(source);

  // The source instance of every slice, by position.
  std::vector<const SourceInstance*> sliceSource(static_cast<size_t>(g.size[2]), nullptr);
  const double tolerance = 0.01 + 0.05 * std::min({g.spacing[0], g.spacing[1], g.spacing[2]});
  for (int64_t z = 0; z < g.size[2]; ++z) {
    const auto p = g.indexToPoint({0, 0, static_cast<double>(z)});
    double best = tolerance;
    for (const auto& s : instances) {
      const double d = std::hypot(s.position[0] - p[0], s.position[1] - p[1], s.position[2] - p[2]);
      if (d <= best) {
        best = d;
        sliceSource[static_cast<size_t>(z)] = &s;
      }
    }
    if (!sliceSource[static_cast<size_t>(z)]) {
      throw Error(ErrorCode::BadImage, source.string() + ": no instance of the series lies at slice " + std::to_string(z) +
                                           " of the label map (" + ds(p[0]) + ", " + ds(p[1]) + ", " + ds(p[2]) +
                                           " mm): the labels are not on this series' grid");
    }
  }

  // Segments: the task's foreground labels plus any other value present.
  std::map<int, std::string> names;
  for (const auto& [value, name] : task.labels) {
    if (value > 0) names[value] = name;
  }
  for (float v : labels.voxels) {
    const int value = static_cast<int>(std::lround(v));
    if (value > 0 && !names.count(value)) names[value] = "label " + std::to_string(value);
  }

  DcmSegmentation* raw = nullptr;
  check(DcmSegmentation::createBinarySegmentation(
            raw, static_cast<Uint16>(g.size[1]), static_cast<Uint16>(g.size[0]),
            IODGeneralEquipmentModule::EquipmentInfo("Tessera", "tessera", "0", "tessera 0.1.0"),
            ContentIdentificationMacro("1", "TESSERA_SEG", options.seriesDescription.substr(0, 64), "")),
        "create");
  std::unique_ptr<DcmSegmentation> seg(raw);
  check(seg->importFromSourceImage(instances.front().path.c_str()), "patient/study/frame of reference of " +
                                                                         instances.front().path.string());
  check(seg->getSeries().setSeriesDescription(options.seriesDescription.substr(0, 64)), "series description");
  check(seg->getSeries().setSeriesNumber("100"), "series number");

  const std::string dimensionUid = [] {
    char uid[100];
    return std::string(dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  }();
  check(seg->getDimensions().addDimensionIndex(DCM_ReferencedSegmentNumber, dimensionUid.c_str(),
                                               DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
        "dimension (segment)");
  check(seg->getDimensions().addDimensionIndex(DCM_ImagePositionPatient, dimensionUid.c_str(), DCM_PlanePositionSequence,
                                               "ImagePositionPatient"),
        "dimension (position)");

  FGPixelMeasures measures;
  check(measures.setPixelSpacing((ds(g.spacing[1]) + "\\" + ds(g.spacing[0])).c_str()), "pixel spacing");
  check(measures.setSliceThickness(ds(g.spacing[2]).c_str()), "slice thickness");
  check(seg->addForAllFrames(measures), "pixel measures");
  const auto& d = g.direction;  // column k: direction of index axis k
  std::unique_ptr<FGPlaneOrientationPatient> orientation(
      FGPlaneOrientationPatient::createMinimal(ds(d[0]).c_str(), ds(d[3]).c_str(), ds(d[6]).c_str(), ds(d[1]).c_str(),
                                               ds(d[4]).c_str(), ds(d[7]).c_str()));
  if (!orientation) throw Error(ErrorCode::Internal, "DICOM SEG: orientation");
  check(seg->addForAllFrames(*orientation), "orientation");

  // Label names are UTF-8: written as they are when the object's character set allows it
  // (none or ISO_IR 192 taken over from the source), else with '_' for non-ASCII bytes.
  OFString charset;
  seg->getSOPCommon().getSpecificCharacterSet(charset);
  const bool utf8 = charset.empty() || charset == "ISO_IR 192" || charset == "ISO_IR 6";
  auto ascii = [](std::string text) {
    for (char& c : text) {
      if (static_cast<unsigned char>(c) >= 0x80 || c == '\\') c = '_';
    }
    return text;
  };
  std::map<Uint16, std::string> utf8Labels;  // segment number -> label, put in after encoding
  std::vector<Uint8> frame(static_cast<size_t>(g.size[0] * g.size[1]));
  for (const auto& [value, name] : names) {
    const auto type = propertyType(name, task);
    const bool anatomical = type.value != "85756007";
    DcmSegment* segment = nullptr;
    const std::string label = name.substr(0, 64);
    check(DcmSegment::create(segment, ascii(label),
                             anatomical ? CodeSequenceMacro("123037004", "SCT", "Anatomical Structure")
                                        : CodeSequenceMacro("85756007", "SCT", "Tissue"),
                             CodeSequenceMacro(type.value.c_str(), type.scheme.c_str(), type.meaning.c_str()),
                             DcmSegTypes::SAT_AUTOMATIC, options.algorithmName.c_str()),
          "segment '" + name + "'");
    std::unique_ptr<DcmSegment> owned(segment);  // until the segmentation takes it
    Uint16 number = 0;
    if (seg->addSegment(segment, number).bad()) throw Error(ErrorCode::Internal, "DICOM SEG: cannot add segment '" + name + "'");
    owned.release();
    if (utf8 && ascii(label) != label) utf8Labels[number] = label;
    for (int64_t z = 0; z < g.size[2]; ++z) {
      for (int64_t y = 0; y < g.size[1]; ++y) {
        for (int64_t x = 0; x < g.size[0]; ++x) {
          frame[static_cast<size_t>(x + g.size[0] * y)] = std::lround(labels.at(x, y, z)) == value ? 1 : 0;
        }
      }
      const SourceInstance& src = *sliceSource[static_cast<size_t>(z)];
      const auto p = g.indexToPoint({0, 0, static_cast<double>(z)});
      std::unique_ptr<FGPlanePosPatient> position(
          FGPlanePosPatient::createMinimal(ds(p[0]).c_str(), ds(p[1]).c_str(), ds(p[2]).c_str()));
      FGFrameContent content;
      check(content.setDimensionIndexValues(number, 0), "frame content");
      check(content.setDimensionIndexValues(static_cast<Uint32>(z + 1), 1), "frame content");
      ImageSOPInstanceReferenceMacro ref;
      check(ref.setReferencedSOPClassUID(src.sopClass.c_str()), "source class");
      check(ref.setReferencedSOPInstanceUID(src.sopInstance.c_str()), "source instance");
      OFVector<ImageSOPInstanceReferenceMacro> refs;
      refs.push_back(ref);
      std::unique_ptr<FGDerivationImage> derivation(FGDerivationImage::createMinimal(
          refs, "Segmentation", CodeSequenceMacro("113076", "DCM", "Segmentation"),
          CodeSequenceMacro("121322", "DCM", "Source image for image processing operation")));
      if (!position || !derivation) throw Error(ErrorCode::Internal, "DICOM SEG: frame groups");
      OFVector<FGBase*> groups;
      groups.push_back(position.get());
      groups.push_back(&content);
      groups.push_back(derivation.get());
      check(seg->addFrame(frame.data(), number, groups), "frame " + std::to_string(z));
    }
  }

  IODReferences references;
  OFVector<OFString> files;
  for (const auto& s : instances) files.push_back(s.path.c_str());
  references.addFromFiles(files, IODReference::LEVEL_STUDY);
  seg->getCommonInstanceReference().addReferences(references);

  DcmFileFormat file;
  DcmDataset& dataset = *file.getDataset();
  check(seg->writeDataset(dataset), "encoding");
  // dcmiod checks strings as ASCII; UTF-8 labels go in once it is done.
  if (!utf8Labels.empty()) {
    dataset.putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
    DcmItem* item = nullptr;
    for (long i = 0; dataset.findAndGetSequenceItem(DCM_SegmentSequence, item, i).good() && item; ++i) {
      Uint16 number = 0;
      item->findAndGetUint16(DCM_SegmentNumber, number);
      if (auto it = utf8Labels.find(number); it != utf8Labels.end()) item->putAndInsertString(DCM_SegmentLabel, it->second.c_str());
    }
  }
  common::writeFileAtomicallyWith(out, ".dcm", [&](const std::filesystem::path& temporary) {
    check(file.saveFile(temporary.c_str(), EXS_LittleEndianExplicit), "writing " + out.string());
  });
}

bool isDicomSeg(const std::filesystem::path& path) {
  detail::ensureTesseraDictionary();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  DcmFileFormat file;
  if (file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 256, ERM_metaOnly).bad()) return false;
  OFString sop;
  file.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop);
  return sop == UID_SegmentationStorage;
}

image::Volume readDicomSeg(const std::filesystem::path& path, const image::Geometry& grid) {
  detail::ensureTesseraDictionary();
  auto bad = [&](const std::string& problem) { return Error(ErrorCode::BadImage, path.string() + ": " + problem); };
  if (!isDicomSeg(path)) throw bad("not a DICOM Segmentation object");
  DcmFileFormat header;
  Uint16 rows = 0, cols = 0;
  if (header.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, 256).bad() ||
      header.getDataset()->findAndGetUint16(DCM_Rows, rows).bad() ||
      header.getDataset()->findAndGetUint16(DCM_Columns, cols).bad()) {
    throw bad("cannot read Rows and Columns");
  }
  if (rows != grid.size[1] || cols != grid.size[0]) {
    throw bad("frames of " + std::to_string(cols) + "x" + std::to_string(rows) + " do not match the image's " +
              std::to_string(grid.size[0]) + "x" + std::to_string(grid.size[1]) + " slices");
  }
  DcmSegmentation* raw = nullptr;
  const OFCondition loaded = DcmSegmentation::loadFile(path.c_str(), raw);
  std::unique_ptr<DcmSegmentation> seg(raw);
  if (loaded.bad() || !seg) throw bad(std::string("cannot be read as a DICOM SEG: ") + loaded.text());
  if (seg->getSegmentationType() != DcmSegTypes::ST_BINARY) throw bad("only binary segmentations are read, not fractional ones");

  image::Volume labels(grid, 0.0f);
  auto& groups = seg->getFunctionalGroups();
  // Orientation must be the image's, or the frames would be drawn on the wrong plane.
  if (auto* o = dynamic_cast<FGPlaneOrientationPatient*>(groups.get(0, DcmFGTypes::EFG_PLANEORIENTPATIENT))) {
    Float64 r[6] = {0, 0, 0, 0, 0, 0};
    if (o->getImageOrientationPatient(r[0], r[1], r[2], r[3], r[4], r[5]).good()) {
      const auto& d = grid.direction;
      for (int i = 0; i < 3; ++i) {
        if (std::abs(r[i] - d[static_cast<size_t>(i * 3)]) > 1e-3 || std::abs(r[i + 3] - d[static_cast<size_t>(i * 3 + 1)]) > 1e-3) {
          throw bad("its frames are oriented differently from the image it is compared with");
        }
      }
    }
  }
  const double tolerance = 0.05;  // of a voxel
  for (size_t f = 0; f < seg->getNumberOfFrames(); ++f) {
    auto* position = dynamic_cast<FGPlanePosPatient*>(groups.get(static_cast<Uint32>(f), DcmFGTypes::EFG_PLANEPOSPATIENT));
    auto* segment = dynamic_cast<FGSegmentation*>(groups.get(static_cast<Uint32>(f), DcmFGTypes::EFG_SEGMENTATION));
    Float64 x = 0, y = 0, z = 0;
    Uint16 number = 0;
    if (!position || !segment || position->getImagePositionPatient(x, y, z).bad() ||
        segment->getReferencedSegmentNumber(number).bad()) {
      throw bad("frame " + std::to_string(f + 1) + " lacks its position or segment number");
    }
    const auto index = grid.pointToIndex({x, y, z});
    const double slice = std::round(index[2]);
    if (std::abs(index[0]) > tolerance || std::abs(index[1]) > tolerance || std::abs(index[2] - slice) > tolerance ||
        slice < 0 || slice >= static_cast<double>(grid.size[2])) {
      throw bad("frame " + std::to_string(f + 1) + " at (" + ds(x) + ", " + ds(y) + ", " + ds(z) +
                " mm) is not on a slice of the image it is compared with");
    }
    const DcmIODTypes::Frame* packed = seg->getFrame(f);
    if (!packed) throw bad("frame " + std::to_string(f + 1) + " has no pixel data");
    std::unique_ptr<DcmIODTypes::Frame> frame(DcmSegUtils::unpackBinaryFrame(packed, rows, cols));
    if (!frame || frame->length < static_cast<size_t>(rows) * cols) throw bad("frame " + std::to_string(f + 1) + " is truncated");
    const auto z0 = static_cast<int64_t>(slice);
    for (int64_t yy = 0; yy < grid.size[1]; ++yy) {
      for (int64_t xx = 0; xx < grid.size[0]; ++xx) {
        if (frame->pixData[static_cast<size_t>(xx + grid.size[0] * yy)]) labels.at(xx, yy, z0) = static_cast<float>(number);
      }
    }
  }
  return labels;
}

}  // namespace tessera::dicom
