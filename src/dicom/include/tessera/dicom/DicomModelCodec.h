#pragma once
// A model as a DICOM object that an unmodified PACS stores, indexes and can be searched in.
//
// SOP class: Raw Data Storage (1.2.840.10008.5.1.4.1.1.66). It is the standard storage class
// for data that is not an image and whose content is defined by its creator in private
// attributes; every conformant PACS accepts it (Orthanc, dcm4chee, commercial archives), it
// needs no pixel data, and its IOD carries the patient, study, series and equipment modules a
// PACS indexes. Unlike a made-up SOP class UID (IODeep), it is negotiated and stored as is.
//
// Standard attributes (what a PACS matches on):
//   Modality = the task's modality (e.g. MR; "OT" when the task names none)
//   BodyPartExamined = the task's anatomy as a CS term (e.g. BRAIN)
//   AnatomicRegionSequence = its SNOMED CT code (task's own code, else AnatomyCodes' table;
//     absent when neither knows the region)
//   StudyInstanceUID = modelStudyUid(task): one study per task; StudyDescription = the task
//     name; StudyID = "TESSERA"
//   SeriesInstanceUID = modelSeriesUid(task, generation); SeriesNumber = generation (a PACS
//     browser lists the task's history in order, newest last); SeriesDescription =
//     "<task> generation <G>" (cut to 64 characters)
//   Disease / finding: AdmittingDiagnosesDescription (0008,1080) = the disease in words and
//     AdmittingDiagnosesCodeSequence (0008,1084) = its code when the task has one. These are
//     the standard study-level "diagnosis" attributes (Patient Study module, part of the Raw
//     Data IOD); the study is per task, and the task's disease is what the study is about.
//     Orthanc answers C-FIND on them at series level.
//   Patient: PatientName "TESSERA^MODEL", PatientID modelPatientId(task) — a model has no
//     patient, and this keeps model studies apart from every real patient.
//   Manufacturer "Tessera", ManufacturerModelName "tessera-model", SoftwareVersions,
//   ContentDate/Time and InstanceCreationDate/Time (the export time), InstanceNumber 1.
// Private block, group 0x0099, reserved by creator (0099,0010) = "TESSERA 1.0":
//   (0099,1001) LO  format "tessera-model-dicom/1"
//   (0099,1002) UT  network spec (JSON)
//   (0099,1003) UT  preprocessing (JSON)
//   (0099,1004) UT  task (JSON, including label names and the exact anatomy/disease text)
//   (0099,1005) IS  generation
//   (0099,1006) IS  parent generation (absent for a root model)
//   (0099,1007) LO  SHA-256 of the weight records (hex)
//   (0099,1008) IS  parameter count
//   (0099,1010) OB  the weight records (the `.tsm` weights section, byte for byte)
// from-dicom rebuilds the model from these alone and checks SHA-256 and tensor layout, so the
// `.tsm` it writes is byte-identical to the one exported.

#include <filesystem>
#include <string>
#include <string_view>

#include "tessera/model/Model.h"

namespace tessera::dicom {

inline constexpr const char* kRawDataStorageUid = "1.2.840.10008.5.1.4.1.1.66";
inline constexpr const char* kPrivateCreator = "TESSERA 1.0";
inline constexpr uint16_t kPrivateGroup = 0x0099;

// Options for export. `when` is "YYYYMMDDHHMMSS" (UTC); empty: now.
struct DicomExportOptions {
  std::string when;
};

// A DICOM Part 10 file (Explicit VR Little Endian) holding `model`.
std::string encodeModelDicom(const model::Model& model, const DicomExportOptions& options = {});
void saveModelDicom(const model::Model& model, const std::filesystem::path& path, const DicomExportOptions& options = {});

// Throws Error(BadModel, "<source>: …") for anything that is not a complete, consistent Tessera
// model object: not DICOM, truncated, another SOP class, no or another private creator, a
// weights SHA-256 that does not match, weights that do not fit the spec.
model::Model decodeModelDicom(std::string_view bytes, const std::string& source);
model::Model loadModelDicom(const std::filesystem::path& path);

}  // namespace tessera::dicom
