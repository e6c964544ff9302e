#include "tessera/dicom/DicomSeries.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "DcmtkSupport.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"

namespace tessera::dicom {

namespace {

std::string newUid() {
  char buf[100];
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

std::string decimals(const std::vector<double>& values) {
  std::string out;
  for (double v : values) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", std::abs(v) < 1e-9 ? 0.0 : v);
    if (!out.empty()) out += "\\";
    out += text;
  }
  return out;
}

void put(DcmDataset& d, const DcmTagKey& key, const std::string& value) {
  if (d.putAndInsertString(key, value.c_str()).bad()) {
    throw Error(ErrorCode::Internal, "writeDicomSeries: cannot set " + std::string(DcmTag(key).getTagName()));
  }
}

}  // namespace

DicomSeriesInfo writeDicomSeries(const image::Volume& volume, const std::filesystem::path& dir, const DicomSeriesOptions& o) {
  const auto& g = volume.geometry;
  if (g.voxelCount() <= 0 || volume.voxels.size() != static_cast<size_t>(g.voxelCount())) {
    throw Error(ErrorCode::BadImage, "writeDicomSeries: an empty or inconsistent volume");
  }
  const bool ct = o.modality == "CT";
  const auto [lo, hi] = volume.valueRange();
  const bool asIs = lo >= 0 && hi <= 65535 &&
                    std::all_of(volume.voxels.begin(), volume.voxels.end(), [](float v) { return v == std::floor(v); });
  const double slope = asIs || hi <= lo ? 1.0 : (double(hi) - lo) / 4095.0;
  const double intercept = asIs ? 0.0 : lo;

  DicomSeriesInfo info;
  info.studyUid = o.studyUid.empty() ? newUid() : o.studyUid;
  info.seriesUid = o.seriesUid.empty() ? newUid() : o.seriesUid;
  info.frameOfReferenceUid = newUid();
  std::filesystem::create_directories(dir);
  // Column k of the direction matrix is index axis k's direction in LPS.
  auto axis = [&](int k) { return std::vector<double>{g.direction[k], g.direction[3 + k], g.direction[6 + k]}; };
  const auto rowDir = axis(0), colDir = axis(1), sliceDir = axis(2);
  std::vector<double> orientation = rowDir;
  orientation.insert(orientation.end(), colDir.begin(), colDir.end());
  const int64_t nx = g.size[0], ny = g.size[1];
  std::vector<Uint16> pixels(static_cast<size_t>(nx * ny));
  for (int64_t z = 0; z < g.size[2]; ++z) {
    DcmFileFormat file;
    DcmDataset& d = *file.getDataset();
    const std::string uid = newUid();
    put(d, DCM_SOPClassUID, ct ? UID_CTImageStorage : UID_MRImageStorage);
    put(d, DCM_SOPInstanceUID, uid);
    put(d, DCM_SpecificCharacterSet, "ISO_IR 192");
    put(d, DCM_StudyDate, "20260101");
    put(d, DCM_StudyTime, "120000");
    put(d, DCM_AccessionNumber, "");
    put(d, DCM_Modality, ct ? "CT" : "MR");
    put(d, DCM_Manufacturer, "Tessera");
    put(d, DCM_ReferringPhysicianName, "");
    put(d, DCM_SeriesDescription, o.seriesDescription);
    put(d, DCM_PatientName, o.patientName);
    put(d, DCM_PatientID, o.patientId);
    put(d, DCM_PatientBirthDate, "");
    put(d, DCM_PatientSex, "O");
    put(d, DCM_BodyPartExamined, o.bodyPart);
    put(d, DCM_StudyInstanceUID, info.studyUid);
    put(d, DCM_SeriesInstanceUID, info.seriesUid);
    put(d, DCM_StudyID, "1");
    put(d, DCM_SeriesNumber, "1");
    put(d, DCM_InstanceNumber, std::to_string(z + 1));
    put(d, DCM_FrameOfReferenceUID, info.frameOfReferenceUid);
    put(d, DCM_PositionReferenceIndicator, "");
    std::vector<double> position(3);
    for (int i = 0; i < 3; ++i) position[i] = g.origin[i] + double(z) * g.spacing[2] * sliceDir[i];
    put(d, DCM_ImagePositionPatient, decimals(position));
    put(d, DCM_ImageOrientationPatient, decimals(orientation));
    // Pixel Spacing is (between rows, between columns): y spacing first.
    put(d, DCM_PixelSpacing, decimals({g.spacing[1], g.spacing[0]}));
    put(d, DCM_SliceThickness, decimals({g.spacing[2]}));
    put(d, DCM_SliceLocation, decimals({position[0] * sliceDir[0] + position[1] * sliceDir[1] + position[2] * sliceDir[2]}));
    put(d, DCM_ImageType, "DERIVED\\SECONDARY");
    if (ct) {
      put(d, DCM_KVP, "");
      put(d, DCM_AcquisitionNumber, "1");
    } else {
      put(d, DCM_ScanningSequence, "RM");
      put(d, DCM_SequenceVariant, "NONE");
      put(d, DCM_ScanOptions, "");
      put(d, DCM_MRAcquisitionType, "3D");
      put(d, DCM_EchoTime, "");
      put(d, DCM_EchoTrainLength, "");
      put(d, DCM_RepetitionTime, "");
    }
    if (!asIs || ct) {
      put(d, DCM_RescaleIntercept, decimals({intercept}));
      put(d, DCM_RescaleSlope, decimals({slope}));
      put(d, DCM_RescaleType, ct ? "HU" : "US");
    }
    put(d, DCM_SamplesPerPixel, "1");
    put(d, DCM_PhotometricInterpretation, "MONOCHROME2");
    put(d, DCM_Rows, std::to_string(ny));
    put(d, DCM_Columns, std::to_string(nx));
    put(d, DCM_BitsAllocated, "16");
    put(d, DCM_BitsStored, "16");
    put(d, DCM_HighBit, "15");
    put(d, DCM_PixelRepresentation, "0");
    for (int64_t y = 0; y < ny; ++y) {
      for (int64_t x = 0; x < nx; ++x) {
        const double v = asIs ? volume.at(x, y, z) : std::round((volume.at(x, y, z) - intercept) / slope);
        pixels[static_cast<size_t>(x + nx * y)] = static_cast<Uint16>(std::clamp(v, 0.0, 65535.0));
      }
    }
    if (d.putAndInsertUint16Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(pixels.size())).bad()) {
      throw Error(ErrorCode::Internal, "writeDicomSeries: cannot set Pixel Data");
    }
    char name[32];
    std::snprintf(name, sizeof name, "slice-%04lld.dcm", static_cast<long long>(z + 1));
    common::writeFileAtomically(dir / name, detail::writePart10(file));
    ++info.instances;
  }
  return info;
}

}  // namespace tessera::dicom
