#include "tessera/dicom/DicomModelCodec.h"

#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include "DcmtkSupport.h"
#include "tessera/common/AtomicFile.h"
#include "tessera/common/Error.h"
#include "tessera/common/Sha256.h"
#include "tessera/dicom/AnatomyCodes.h"
#include "tessera/dicom/DicomUids.h"

namespace tessera::dicom {

namespace {

constexpr const char* kFormat = "tessera-model-dicom/1";

namespace el {
constexpr Uint16 format = 0x01, spec = 0x02, preprocessing = 0x03, task = 0x04, generation = 0x05, parent = 0x06,
                 sha256 = 0x07, parameters = 0x08, weights = 0x10;
}

// Tags of our block when it is reserved at (0099,00bb): (0099,bbxx).
DcmTag privateTag(Uint16 block, Uint16 element, DcmEVR vr) {
  DcmTag tag(kPrivateGroup, static_cast<Uint16>((block << 8) | element), DcmVR(vr));
  tag.setPrivateCreator(kPrivateCreator);
  return tag;
}

std::string cut(const std::string& text, size_t max) { return text.size() <= max ? text : text.substr(0, max); }

std::string utcNow() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

void put(DcmItem& item, const DcmTagKey& key, const std::string& value) {
  const OFCondition cond = item.putAndInsertString(key, value.c_str());
  if (cond.bad()) throw Error(ErrorCode::Internal, std::string("DICOM attribute ") + key.toString().c_str() + ": " + cond.text());
}

void putCode(DcmItem& item, const DcmTagKey& sequence, const model::CodedConcept& code) {
  DcmItem* entry = nullptr;
  if (item.findOrCreateSequenceItem(sequence, entry, -2).bad() || entry == nullptr) {
    throw Error(ErrorCode::Internal, "cannot create a code sequence item");
  }
  put(*entry, DCM_CodeValue, cut(code.value, 16));
  put(*entry, DCM_CodingSchemeDesignator, cut(code.scheme, 16));
  put(*entry, DCM_CodeMeaning, cut(code.meaning.empty() ? code.value : code.meaning, 64));
}

}  // namespace

std::string encodeModelDicom(const model::Model& model, const DicomExportOptions& options) {
  detail::ensureTesseraDictionary();
  const std::string weights = common::encodeWeights(model.weights);
  const std::string sha = common::sha256Hex(weights);
  const std::string when = options.when.empty() ? utcNow() : options.when;
  const std::string date = when.substr(0, 8), time = when.substr(8, 6);
  const auto& task = model.task;

  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  // Task JSON may hold any UTF-8 (label names).
  put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  put(ds, DCM_SOPClassUID, kRawDataStorageUid);
  put(ds, DCM_SOPInstanceUID, modelInstanceUid(task.name, model.generation, sha));
  put(ds, DCM_InstanceCreationDate, date);
  put(ds, DCM_InstanceCreationTime, time);
  // Patient module: a model has no patient; one fixed name and an ID per task.
  put(ds, DCM_PatientName, "TESSERA^MODEL");
  put(ds, DCM_PatientID, modelPatientId(task.name));
  put(ds, DCM_PatientBirthDate, "");
  put(ds, DCM_PatientSex, "O");
  // General Study: one study per task.
  put(ds, DCM_StudyInstanceUID, modelStudyUid(task.name));
  put(ds, DCM_StudyDate, date);
  put(ds, DCM_StudyTime, time);
  put(ds, DCM_ReferringPhysicianName, "");
  put(ds, DCM_StudyID, "TESSERA");
  put(ds, DCM_AccessionNumber, "");
  put(ds, DCM_StudyDescription, cut(task.name, 64));
  // Patient Study: the task's disease as the study's diagnosis (matchable, coded when known).
  if (!task.disease.empty()) put(ds, DCM_AdmittingDiagnosesDescription, cut(task.disease, 64));
  if (!task.diseaseCode.empty()) putCode(ds, DCM_AdmittingDiagnosesCodeSequence, task.diseaseCode);
  // General Series: one series per generation.
  put(ds, DCM_Modality, task.modality.empty() ? "OT" : cut(task.modality, 16));
  put(ds, DCM_SeriesInstanceUID, modelSeriesUid(task.name, model.generation));
  put(ds, DCM_SeriesNumber, std::to_string(model.generation));
  put(ds, DCM_SeriesDate, date);
  put(ds, DCM_SeriesTime, time);
  put(ds, DCM_SeriesDescription, cut(task.name + " generation " + std::to_string(model.generation), 64));
  const auto known = findAnatomy(task.anatomy);
  const std::string bodyPart = known ? known->bodyPart : bodyPartTerm(task.anatomy);
  if (!bodyPart.empty()) put(ds, DCM_BodyPartExamined, bodyPart);
  // Laterality is Type 2C: needed for paired body parts, forbidden for unpaired ones. A model has no
  // side; with no body part at all a validator cannot tell which case holds, so it gets the empty
  // value that means "unknown" (with a body part it is left out).
  if (bodyPart.empty()) put(ds, DCM_Laterality, "");
  if (!task.anatomyCode.empty()) {
    putCode(ds, DCM_AnatomicRegionSequence, task.anatomyCode);
  } else if (known) {
    putCode(ds, DCM_AnatomicRegionSequence, known->region);
  }
  // General Equipment.
  put(ds, DCM_Manufacturer, "Tessera");
  put(ds, DCM_ManufacturerModelName, "tessera-model");
  put(ds, DCM_SoftwareVersions, "tessera 0.1.0");
  // Acquisition Context (type 2: present, empty) and Raw Data.
  ds.insertEmptyElement(DCM_AcquisitionContextSequence);
  put(ds, DCM_InstanceNumber, "1");
  put(ds, DCM_CreatorVersionUID, uidFromName("tessera-creator-version\n0.1.0"));
  put(ds, DCM_ContentDate, date);
  put(ds, DCM_ContentTime, time);

  // The private block, reserved at (0099,0010).
  constexpr Uint16 block = 0x10;
  put(ds, DcmTagKey(kPrivateGroup, block), kPrivateCreator);
  auto putPrivate = [&](Uint16 element, DcmEVR vr, const std::string& value) {
    const OFCondition cond = ds.putAndInsertString(privateTag(block, element, vr), value.c_str(), static_cast<Uint32>(value.size()));
    if (cond.bad()) throw Error(ErrorCode::Internal, std::string("private attribute: ") + cond.text());
  };
  putPrivate(el::format, EVR_LO, kFormat);
  putPrivate(el::spec, EVR_UT, model::toJson(model.spec).dump());
  putPrivate(el::preprocessing, EVR_UT, model::toJson(model.preprocessing).dump());
  putPrivate(el::task, EVR_UT, model::toJson(task).dump());
  putPrivate(el::generation, EVR_IS, std::to_string(model.generation));
  if (model.parentGeneration) putPrivate(el::parent, EVR_IS, std::to_string(*model.parentGeneration));
  putPrivate(el::sha256, EVR_LO, sha);
  putPrivate(el::parameters, EVR_IS, std::to_string(common::parameterCount(model.weights)));
  if (weights.size() >= 0xFFFFFFFEull) throw Error(ErrorCode::TooLarge, "model weights exceed DICOM's 4 GiB element limit");
  const OFCondition cond = ds.putAndInsertUint8Array(privateTag(block, el::weights, EVR_OB),
                                                     reinterpret_cast<const Uint8*>(weights.data()),
                                                     static_cast<unsigned long>(weights.size()));
  if (cond.bad()) throw Error(ErrorCode::Internal, std::string("private weights attribute: ") + cond.text());
  return detail::writePart10(file);
}

void saveModelDicom(const model::Model& model, const std::filesystem::path& path, const DicomExportOptions& options) {
  common::writeFileAtomically(path, encodeModelDicom(model, options));
}

namespace detail {

model::Model decodeModelDataset(DcmItem& ds, const std::string& source) {
  ensureTesseraDictionary();
  auto bad = [&](const std::string& problem) { return Error(ErrorCode::BadModel, source + ": " + problem); };
  // Find the block whose creator is ours; remember other creators for the message.
  Uint16 block = 0;
  std::string otherCreator;
  for (Uint16 b = 0x10; b <= 0xFF; ++b) {
    const std::string creator = stringValue(ds, DcmTagKey(kPrivateGroup, b));
    if (creator == kPrivateCreator) {
      block = b;
      break;
    }
    if (!creator.empty() && otherCreator.empty()) otherCreator = creator;
  }
  if (block == 0) {
    const std::string sopClass = stringValue(ds, DCM_SOPClassUID);
    const char* name = sopClass.empty() ? nullptr : dcmFindNameOfUID(sopClass.c_str());
    const std::string what = sopClass.empty() ? "a DICOM object without SOP Class UID"
                                              : "a DICOM object of SOP class " + std::string(name ? name : sopClass);
    if (!otherCreator.empty()) {
      throw bad("not a Tessera model: " + what + " whose private group 0099 belongs to creator '" + otherCreator +
                "', not '" + kPrivateCreator + "'");
    }
    throw bad("not a Tessera model: " + what + " without a '" + kPrivateCreator + "' private block");
  }
  auto tag = [&](Uint16 element) { return DcmTagKey(kPrivateGroup, static_cast<Uint16>((block << 8) | element)); };
  auto text = [&](Uint16 element, const char* what) {
    std::string value = stringValue(ds, tag(element));
    if (value.empty()) throw bad(std::string("Tessera private block lacks ") + what);
    return value;
  };
  const std::string format = text(el::format, "its format");
  if (format != kFormat) throw bad("Tessera private block has format '" + format + "', this version reads '" + kFormat + "'");

  model::Model model;
  try {
    model.spec = model::networkSpecFromJson(nlohmann::json::parse(text(el::spec, "the network spec")));
    model.preprocessing = model::preprocessingFromJson(nlohmann::json::parse(text(el::preprocessing, "the preprocessing")));
    model.task = model::taskInfoFromJson(nlohmann::json::parse(text(el::task, "the task")));
    model.generation = std::stoll(text(el::generation, "the generation"));
    const std::string parent = stringValue(ds, tag(el::parent));
    if (!parent.empty()) model.parentGeneration = std::stoll(parent);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("Tessera private block holds malformed JSON: ") + e.what());
  } catch (const std::logic_error& e) {  // stoll
    throw bad("Tessera private block holds a generation that is not a number");
  } catch (const Error& e) {
    throw Error(e.code(), source + ": " + e.what());
  }
  const std::string expectedSha = text(el::sha256, "the weights SHA-256");
  DcmElement* weightsElement = nullptr;
  Uint8* data = nullptr;
  if (ds.findAndGetElement(tag(el::weights), weightsElement).bad() || weightsElement == nullptr ||
      weightsElement->getUint8Array(data).bad() || data == nullptr) {
    throw bad("Tessera private block lacks the weights");
  }
  const std::string_view weights(reinterpret_cast<const char*>(data), weightsElement->getLength());
  if (common::sha256Hex(weights) != expectedSha) {
    throw bad("weights SHA-256 does not match the one in the object (corrupted or altered)");
  }
  model.weights = common::decodeWeights(weights, source, ErrorCode::BadModel);
  model::checkWeightLayout(model.spec, model.weights, source);
  return model;
}

}  // namespace detail

model::Model decodeModelDicom(std::string_view bytes, const std::string& source) {
  auto file = detail::readPart10(bytes, source, ErrorCode::BadModel);
  return detail::decodeModelDataset(*file->getDataset(), source);
}

model::Model loadModelDicom(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(ErrorCode::NotFound, path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec)) throw Error(ErrorCode::BadRequest, path.string() + ": is a directory, not a DICOM file");
  return decodeModelDicom(common::readFile(path), path.string());
}

}  // namespace tessera::dicom
