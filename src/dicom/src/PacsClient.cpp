#include "tessera/dicom/PacsClient.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <memory>
#include <set>

#include "DcmtkSupport.h"
#include "ModelPick.h"
#include "dcmtk/dcmnet/scu.h"
#include "tessera/common/Error.h"
#include "tessera/dicom/AnatomyCodes.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"
#include "tessera/model/TaskName.h"

namespace tessera::dicom {

PacsAddress PacsAddress::parse(std::string_view text, std::string_view what) {
  auto bad = [&](const std::string& problem) {
    return Error(ErrorCode::BadRequest, std::string(what) + " '" + std::string(text) + "': " + problem +
                                            " (expected AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242)");
  };
  const auto at = text.find('@');
  const auto colon = text.rfind(':');
  if (at == std::string_view::npos || colon == std::string_view::npos || colon < at) throw bad("malformed");
  PacsAddress a;
  a.aet = std::string(text.substr(0, at));
  a.host = std::string(text.substr(at + 1, colon - at - 1));
  const auto portText = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (ec != std::errc() || end != portText.data() + portText.size() || port == 0 || port > 65535) throw bad("bad port");
  a.port = static_cast<uint16_t>(port);
  if (a.aet.empty() || a.aet.size() > 16) throw bad("the AE title must be 1 to 16 characters");
  if (a.host.empty()) throw bad("no host");
  return a;
}

PacsSeriesUrl PacsSeriesUrl::parse(std::string_view text) {
  auto bad = [&](const std::string& problem) {
    return Error(ErrorCode::BadRequest, "--in '" + std::string(text) + "': " + problem +
                                            " (expected pacs://AET@HOST:PORT/STUDY_UID[/SERIES_UID])");
  };
  if (!matches(text)) throw bad("not a pacs:// address");
  const std::string_view rest = text.substr(7);
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) throw bad("no study UID");
  PacsSeriesUrl url;
  url.pacs = PacsAddress::parse(rest.substr(0, slash), "--in");
  const std::string_view uids = rest.substr(slash + 1);
  const auto second = uids.find('/');
  url.studyUid = std::string(uids.substr(0, second));
  if (second != std::string_view::npos) url.seriesUid = std::string(uids.substr(second + 1));
  auto isUid = [](const std::string& uid) {
    return !uid.empty() && uid.size() <= 64 && uid.find_first_not_of("0123456789.") == std::string::npos;
  };
  if (!isUid(url.studyUid)) throw bad("the study UID is not a DICOM UID");
  if (second != std::string_view::npos && !isUid(url.seriesUid)) throw bad("the series UID is not a DICOM UID");
  return url;
}

std::string PacsAddress::describe() const { return aet + "@" + host + ":" + std::to_string(port); }

namespace {

const char* const kUncompressed[] = {UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax};

OFList<OFString> uncompressed() {
  OFList<OFString> list;
  for (const char* ts : kUncompressed) list.push_back(ts);
  return list;
}

// DcmSCU keeping C-GET's incoming objects in memory instead of writing files.
class Scu : public DcmSCU {
 public:
  std::vector<std::unique_ptr<DcmDataset>> received;

  OFCondition handleSTORERequest(const T_ASC_PresentationContextID, DcmDataset* incoming, OFBool&,
                                 Uint16& status) override {
    if (incoming == nullptr) return DIMSE_NULLKEY;
    // DcmSCU deletes `incoming` afterwards: move its elements instead of copying the weights.
    auto kept = std::make_unique<DcmDataset>();
    while (incoming->card() > 0) kept->insert(incoming->remove(static_cast<unsigned long>(0)));
    received.push_back(std::move(kept));
    status = STATUS_Success;
    return EC_Normal;
  }
};

class Session {
 public:
  Session(const PacsAddress& address, const PacsOptions& options) : address_(address) {
    detail::ensureTesseraDictionary();
    scu.setAETitle(options.callingAet.c_str());
    scu.setPeerAETitle(address.aet.c_str());
    scu.setPeerHostName(address.host.c_str());
    scu.setPeerPort(address.port);
    scu.setConnectionTimeout(options.timeoutSeconds);
    scu.setACSETimeout(static_cast<Uint32>(options.timeoutSeconds));
    scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
    scu.setDIMSETimeout(static_cast<Uint32>(options.timeoutSeconds));
    scu.setMaxReceivePDULength(ASC_MAXIMUMPDUSIZE);
    scu.setVerbosePCMode(OFFalse);
  }
  ~Session() {
    if (scu.isConnected()) scu.releaseAssociation();
  }

  Error error(ErrorCode code, const std::string& problem) const {
    return Error(code, "PACS " + address_.describe() + ": " + problem);
  }

  void propose(const char* sopClass, const OFList<OFString>& syntaxes, T_ASC_SC_ROLE role = ASC_SC_ROLE_DEFAULT) {
    scu.addPresentationContext(sopClass, syntaxes, role);
  }

  void connect(const std::string& callingAet) {
    OFCondition cond = scu.initNetwork();
    if (cond.bad()) throw error(ErrorCode::Internal, std::string("network setup failed: ") + cond.text());
    cond = scu.negotiateAssociation();
    if (cond.good()) return;
    if (cond == DUL_ASSOCIATIONREJECTED) {
      throw error(ErrorCode::Rejected, "association rejected (is '" + address_.aet + "' its AE title, and does it accept calls from '" +
                                           callingAet + "'?)");
    }
    if (cond == NET_EC_NoAcceptablePresentationContexts) {
      throw error(ErrorCode::Rejected, "association accepted but none of the requested services (SOP classes) is offered");
    }
    throw error(ErrorCode::Unreachable, std::string("cannot connect: ") + cond.text());
  }

  T_ASC_PresentationContextID context(const char* sopClass, const char* what) {
    const auto id = scu.findAnyPresentationContextID(sopClass, "");
    if (id == 0) throw error(ErrorCode::Rejected, std::string("does not offer ") + what);
    return id;
  }

  Scu scu;

 private:
  PacsAddress address_;
};

std::string value(DcmItem& item, const DcmTagKey& key) { return detail::stringValue(item, key); }

int64_t number(const std::string& text, int64_t fallback) {
  int64_t v = fallback;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && end == text.data() + text.size() ? v : fallback;
}

// The task of a series: StudyDescription carries it; "<task> generation <G>" as a fallback.
std::string taskOf(const std::string& studyDescription, const std::string& seriesDescription) {
  if (model::isValidTaskName(studyDescription)) return studyDescription;
  const auto at = seriesDescription.rfind(" generation ");
  return at == std::string::npos ? std::string() : seriesDescription.substr(0, at);
}

std::string statusText(Uint16 status) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", status);
  return buf;
}

void collectFiles(const std::filesystem::path& path, std::vector<std::pair<std::filesystem::path, bool>>& out) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::vector<std::filesystem::path> files;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec); !ec && it != std::filesystem::end(it);
         it.increment(ec)) {
      if (it->is_regular_file(ec)) files.push_back(it->path());
    }
    if (ec) throw Error(ErrorCode::Io, path.string() + ": cannot list: " + ec.message());
    std::sort(files.begin(), files.end());
    for (auto& f : files) out.emplace_back(f, false);
  } else if (std::filesystem::is_regular_file(path, ec)) {
    out.emplace_back(path, true);
  } else {
    throw Error(ErrorCode::NotFound, path.string() + ": no such file or folder");
  }
}

}  // namespace

PacsClient::PacsClient(PacsAddress address, PacsOptions options) : address_(std::move(address)), options_(std::move(options)) {}

void PacsClient::echo() const {
  Session s(address_, options_);
  s.propose(UID_VerificationSOPClass, uncompressed());
  s.connect(options_.callingAet);
  const OFCondition cond = s.scu.sendECHORequest(s.context(UID_VerificationSOPClass, "verification (C-ECHO)"));
  if (cond.bad()) throw s.error(ErrorCode::Server, std::string("C-ECHO failed: ") + cond.text());
}

PushResult PacsClient::push(const std::vector<std::filesystem::path>& paths) const {
  detail::ensureTesseraDictionary();
  std::vector<std::pair<std::filesystem::path, bool>> candidates;
  for (const auto& p : paths) collectFiles(p, candidates);
  struct Item {
    std::filesystem::path path;
    std::string sopClass, transferSyntax;
  };
  std::vector<Item> items;
  PushResult result;
  for (const auto& [path, named] : candidates) {
    DcmFileFormat file;
    OFString sop, ts;
    const bool ok = file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_metaOnly).good() &&
                    file.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop).good() &&
                    file.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, ts).good() && !sop.empty();
    if (!ok) {
      if (named) throw Error(ErrorCode::BadRequest, path.string() + ": not a DICOM Part 10 file");
      ++result.skipped;
      continue;
    }
    items.push_back({path, sop.c_str(), ts.c_str()});
  }
  if (items.empty()) throw Error(ErrorCode::NotFound, "no DICOM files to push");

  Session s(address_, options_);
  std::set<std::pair<std::string, std::string>> proposed;
  std::set<std::string> classes;
  for (const auto& item : items) {
    if (proposed.insert({item.sopClass, item.transferSyntax}).second) {
      OFList<OFString> one;
      one.push_back(item.transferSyntax.c_str());
      s.propose(item.sopClass.c_str(), one);
    }
    if (classes.insert(item.sopClass).second) s.propose(item.sopClass.c_str(), uncompressed());
  }
  if (proposed.size() + classes.size() > 128) {
    throw Error(ErrorCode::BadRequest, "too many different SOP classes and transfer syntaxes for one association (push fewer files at once)");
  }
  s.scu.setDatasetConversionMode(OFTrue);
  s.connect(options_.callingAet);
  for (const auto& item : items) {
    auto id = s.scu.findPresentationContextID(item.sopClass.c_str(), item.transferSyntax.c_str());
    if (id == 0) id = s.scu.findAnyPresentationContextID(item.sopClass.c_str(), "");
    if (id == 0) {
      const char* name = dcmFindNameOfUID(item.sopClass.c_str());
      throw s.error(ErrorCode::Rejected, "does not accept " + std::string(name ? name : item.sopClass) + " objects (" +
                                             item.path.string() + ")");
    }
    Uint16 status = 0;
    const OFCondition cond = s.scu.sendSTORERequest(id, item.path.c_str(), nullptr, status);
    if (cond.bad()) throw s.error(ErrorCode::Server, "C-STORE of " + item.path.string() + " failed: " + cond.text());
    // 0x0000 success, 0xB000/0xB006/0xB007 warnings (stored with coercion or unchecked).
    if (status != 0 && (status & 0xF000) != 0xB000) {
      throw s.error(ErrorCode::Rejected, "refused " + item.path.string() + " (C-STORE status " + statusText(status) + ")");
    }
    ++result.stored;
  }
  return result;
}

std::vector<ModelSeriesInfo> PacsClient::findModels(const ModelQuery& query) const {
  Session s(address_, options_);
  s.propose(UID_FINDStudyRootQueryRetrieveInformationModel, uncompressed());
  s.connect(options_.callingAet);
  const auto id = s.context(UID_FINDStudyRootQueryRetrieveInformationModel, "study-root queries (C-FIND)");

  const auto anatomy = findAnatomy(query.anatomy);
  const std::string bodyPart = anatomy ? anatomy->bodyPart : bodyPartTerm(query.anatomy);
  DcmDataset keys;
  keys.putAndInsertString(DCM_QueryRetrieveLevel, "SERIES");
  keys.putAndInsertString(DCM_StudyInstanceUID, query.task.empty() ? "" : modelStudyUid(query.task).c_str());
  keys.putAndInsertString(DCM_StudyDescription, "");
  keys.putAndInsertString(DCM_AdmittingDiagnosesDescription, query.disease.c_str());
  keys.putAndInsertString(DCM_SeriesInstanceUID, "");
  keys.putAndInsertString(DCM_SeriesNumber, "");
  keys.putAndInsertString(DCM_SeriesDescription, "");
  keys.putAndInsertString(DCM_Modality, query.modality.c_str());
  keys.putAndInsertString(DCM_BodyPartExamined, bodyPart.c_str());
  keys.putAndInsertString(DCM_Manufacturer, "Tessera");
  keys.putAndInsertString(DCM_NumberOfSeriesRelatedInstances, "");
  OFList<QRResponse*> responses;
  const OFCondition cond = s.scu.sendFINDRequest(id, &keys, &responses);
  std::vector<ModelSeriesInfo> found;
  Uint16 finalStatus = 0;
  for (auto* r : responses) {
    finalStatus = r->m_status;
    if (r->m_dataset) {
      DcmDataset& d = *r->m_dataset;
      ModelSeriesInfo info;
      info.studyUid = value(d, DCM_StudyInstanceUID);
      info.seriesUid = value(d, DCM_SeriesInstanceUID);
      info.seriesDescription = value(d, DCM_SeriesDescription);
      info.task = taskOf(value(d, DCM_StudyDescription), info.seriesDescription);
      info.generation = number(value(d, DCM_SeriesNumber), -1);
      info.modality = value(d, DCM_Modality);
      info.anatomy = value(d, DCM_BodyPartExamined);
      info.disease = value(d, DCM_AdmittingDiagnosesDescription);
      info.instances = number(value(d, DCM_NumberOfSeriesRelatedInstances), 0);
      // A PACS may ignore keys it does not index; check what it returned.
      const std::string manufacturer = value(d, DCM_Manufacturer);
      const bool matches = (manufacturer.empty() || manufacturer == "Tessera") &&
                           (query.modality.empty() || info.modality == query.modality) &&
                           (bodyPart.empty() || info.anatomy == bodyPart) &&
                           (query.disease.empty() || info.disease == query.disease) &&
                           (query.task.empty() || info.studyUid == modelStudyUid(query.task));
      if (matches) found.push_back(std::move(info));
    }
    delete r;
  }
  if (cond.bad()) throw s.error(ErrorCode::Server, std::string("C-FIND failed: ") + cond.text());
  if (finalStatus != 0 && (finalStatus & 0xFF00) != 0xFF00) {
    throw s.error(ErrorCode::Rejected, "refused the query (C-FIND status " + statusText(finalStatus) + ")");
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::tie(a.task, a.generation, a.seriesUid) < std::tie(b.task, b.generation, b.seriesUid);
  });
  return found;
}

ModelSeriesInfo pickGeneration(const std::vector<ModelSeriesInfo>& series, const std::string& task, int64_t wanted,
                               const std::string& where) {
  std::vector<ModelSeriesInfo> chosen;
  std::copy_if(series.begin(), series.end(), std::back_inserter(chosen), [&](const auto& s) { return s.generation == wanted; });
  if (chosen.empty()) {
    std::string have;
    for (const auto& s : series) have += (have.empty() ? "" : ", ") + std::to_string(s.generation);
    throw Error(ErrorCode::NotFound, where + ": task '" + task + "' has no generation " + std::to_string(wanted) +
                                         " (generations there: " + have + ")");
  }
  if (chosen.size() > 1) {
    throw Error(ErrorCode::Conflict, where + ": task '" + task + "' generation " + std::to_string(wanted) + " is in " +
                                         std::to_string(chosen.size()) + " series; cannot choose one");
  }
  const ModelSeriesInfo target = chosen.front();
  if (target.instances > 1) {
    throw Error(ErrorCode::Conflict, where + ": series " + target.seriesUid + " (task '" + task + "' generation " +
                                         std::to_string(wanted) + ") holds " + std::to_string(target.instances) +
                                         " objects; cannot choose one");
  }

  return target;
}

model::Model PacsClient::pullModel(const std::string& task, std::optional<int64_t> generation) const {
  model::requireValidTaskName(task, "--task");
  ModelQuery query;
  query.task = task;
  auto series = findModels(query);
  const std::string where = "PACS " + address_.describe();
  if (series.empty()) throw Error(ErrorCode::NotFound, where + ": no model of task '" + task + "'");
  int64_t wanted = generation.value_or(-1);
  if (!generation) {
    for (const auto& s : series) wanted = std::max(wanted, s.generation);
  }
  const ModelSeriesInfo target = pickGeneration(series, task, wanted, where);

  Session s(address_, options_);
  s.propose(UID_GETStudyRootQueryRetrieveInformationModel, uncompressed());
  // Storage classes we accept back: models, and common images so that a foreign object in the
  // series is reported as "not a Tessera model" rather than as a failed transfer.
  for (const char* sop : {UID_RawDataStorage, UID_CTImageStorage, UID_MRImageStorage, UID_SecondaryCaptureImageStorage,
                          UID_EncapsulatedPDFStorage}) {
    s.propose(sop, uncompressed(), ASC_SC_ROLE_SCP);
  }
  s.connect(options_.callingAet);
  const auto id = s.context(UID_GETStudyRootQueryRetrieveInformationModel, "study-root retrieval (C-GET)");
  DcmDataset keys;
  keys.putAndInsertString(DCM_QueryRetrieveLevel, "SERIES");
  keys.putAndInsertString(DCM_StudyInstanceUID, target.studyUid.c_str());
  keys.putAndInsertString(DCM_SeriesInstanceUID, target.seriesUid.c_str());
  OFList<RetrieveResponse*> responses;
  const OFCondition cond = s.scu.sendCGETRequest(id, &keys, &responses);
  Uint16 finalStatus = 0;
  for (auto* r : responses) {
    finalStatus = r->m_status;
    delete r;
  }
  if (cond.bad()) throw s.error(ErrorCode::Server, std::string("C-GET failed: ") + cond.text());
  const std::string source = where + " series " + target.seriesUid;
  if (s.scu.received.empty()) {
    throw Error(ErrorCode::Server, source + ": C-GET delivered no object (status " + statusText(finalStatus) +
                                       "; an object of a class we did not ask for is not a Tessera model)");
  }
  if (s.scu.received.size() > 1) {
    throw Error(ErrorCode::Conflict, source + " holds " + std::to_string(s.scu.received.size()) + " objects; cannot choose one");
  }
  auto model = detail::decodeModelDataset(*s.scu.received.front(), source);
  if (model.task.name != task || model.generation != wanted) {
    throw Error(ErrorCode::BadModel, source + ": holds task '" + model.task.name + "' generation " +
                                         std::to_string(model.generation) + ", not '" + task + "' generation " +
                                         std::to_string(wanted));
  }
  return model;
}

std::string PacsClient::imageSeriesOf(const std::string& studyUid) const {
  const std::string where = "PACS " + address_.describe();
  Session s(address_, options_);
  s.propose(UID_FINDStudyRootQueryRetrieveInformationModel, uncompressed());
  s.connect(options_.callingAet);
  DcmDataset keys;
  keys.putAndInsertString(DCM_QueryRetrieveLevel, "SERIES");
  keys.putAndInsertString(DCM_StudyInstanceUID, studyUid.c_str());
  keys.putAndInsertString(DCM_SeriesInstanceUID, "");
  keys.putAndInsertString(DCM_Modality, "");
  keys.putAndInsertString(DCM_Manufacturer, "");
  OFList<QRResponse*> responses;
  const OFCondition cond =
      s.scu.sendFINDRequest(s.context(UID_FINDStudyRootQueryRetrieveInformationModel, "study-root queries (C-FIND)"),
                            &keys, &responses);
  std::vector<std::string> images;
  for (auto* r : responses) {
    if (r->m_dataset) {
      const std::string modality = value(*r->m_dataset, DCM_Modality);
      const bool derived = modality == "SEG" || modality == "SR" || modality == "PR" ||
                           value(*r->m_dataset, DCM_Manufacturer) == "Tessera";
      if (!derived) images.push_back(value(*r->m_dataset, DCM_SeriesInstanceUID));
    }
    delete r;
  }
  if (cond.bad()) throw s.error(ErrorCode::Server, std::string("C-FIND failed: ") + cond.text());
  if (images.empty()) throw Error(ErrorCode::NotFound, where + ": study " + studyUid + " has no image series");
  if (images.size() > 1) {
    std::string list;
    for (const auto& uid : images) list += (list.empty() ? "" : ", ") + uid;
    throw Error(ErrorCode::Conflict, where + ": study " + studyUid + " has " + std::to_string(images.size()) +
                                         " image series (" + list + "); name one as pacs://…/STUDY/SERIES");
  }
  return images.front();
}

size_t PacsClient::retrieveSeries(const std::string& studyUid, const std::string& seriesUid,
                                  const std::filesystem::path& folder) const {
  const std::string series = seriesUid.empty() ? imageSeriesOf(studyUid) : seriesUid;
  const std::string where = "PACS " + address_.describe();

  Session s(address_, options_);
  s.propose(UID_GETStudyRootQueryRetrieveInformationModel, uncompressed());
  // Image storage classes we take back (the PACS converts to an uncompressed syntax when needed).
  for (int i = 0; i < numberOfDcmShortSCUStorageSOPClassUIDs && i < 120; ++i) {
    s.propose(dcmShortSCUStorageSOPClassUIDs[i], uncompressed(), ASC_SC_ROLE_SCP);
  }
  s.connect(options_.callingAet);
  DcmDataset keys;
  keys.putAndInsertString(DCM_QueryRetrieveLevel, "SERIES");
  keys.putAndInsertString(DCM_StudyInstanceUID, studyUid.c_str());
  keys.putAndInsertString(DCM_SeriesInstanceUID, series.c_str());
  OFList<RetrieveResponse*> responses;
  const OFCondition cond = s.scu.sendCGETRequest(
      s.context(UID_GETStudyRootQueryRetrieveInformationModel, "study-root retrieval (C-GET)"), &keys, &responses);
  Uint16 finalStatus = 0;
  for (auto* r : responses) {
    finalStatus = r->m_status;
    delete r;
  }
  if (cond.bad()) throw s.error(ErrorCode::Server, std::string("C-GET failed: ") + cond.text());
  if (s.scu.received.empty()) {
    throw Error(ErrorCode::NotFound, where + ": series " + series + " of study " + studyUid + " delivered no object (C-GET status " +
                                         statusText(finalStatus) + ")");
  }
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  size_t n = 0;
  for (auto& dataset : s.scu.received) {
    DcmFileFormat file(dataset.release(), OFFalse);  // takes the dataset over, no copy
    char name[32];
    std::snprintf(name, sizeof name, "%06zu.dcm", ++n);
    const auto path = folder / name;
    const OFCondition saved = file.saveFile(path.c_str(), EXS_LittleEndianExplicit);
    if (saved.bad()) throw Error(ErrorCode::Io, path.string() + ": cannot write: " + saved.text());
  }
  return n;
}

ScanKeys PacsClient::describeSeries(const std::string& studyUid, const std::string& seriesUid) const {
  Session s(address_, options_);
  s.propose(UID_FINDStudyRootQueryRetrieveInformationModel, uncompressed());
  s.connect(options_.callingAet);
  DcmDataset keys;
  keys.putAndInsertString(DCM_QueryRetrieveLevel, "SERIES");
  keys.putAndInsertString(DCM_StudyInstanceUID, studyUid.c_str());
  keys.putAndInsertString(DCM_SeriesInstanceUID, seriesUid.c_str());
  keys.putAndInsertString(DCM_Modality, "");
  keys.putAndInsertString(DCM_BodyPartExamined, "");
  keys.putAndInsertString(DCM_AdmittingDiagnosesDescription, "");
  OFList<QRResponse*> responses;
  const OFCondition cond = s.scu.sendFINDRequest(
      s.context(UID_FINDStudyRootQueryRetrieveInformationModel, "study-root queries (C-FIND)"), &keys, &responses);
  std::vector<ScanKeys> found;
  for (auto* r : responses) {
    if (r->m_dataset && value(*r->m_dataset, DCM_SeriesInstanceUID) == seriesUid) {
      found.push_back({value(*r->m_dataset, DCM_Modality), value(*r->m_dataset, DCM_BodyPartExamined),
                       value(*r->m_dataset, DCM_AdmittingDiagnosesDescription)});
    }
    delete r;
  }
  if (cond.bad()) throw s.error(ErrorCode::Server, std::string("C-FIND failed: ") + cond.text());
  if (found.empty()) throw s.error(ErrorCode::NotFound, "no series " + seriesUid + " in study " + studyUid);
  return found.front();
}

ModelChoice PacsClient::selectModel(const ScanKeys& scan) const {
  const std::string where = "PACS " + address_.describe();
  const auto anatomy = findAnatomy(scan.bodyPart);
  const std::string bodyPart = anatomy ? anatomy->bodyPart : bodyPartTerm(scan.bodyPart);
  if (scan.modality.empty()) throw Error(ErrorCode::BadRequest, where + ": the scan names no modality; choose a model with --model");
  ModelQuery query;
  query.modality = scan.modality;
  auto candidates = findModels(query);
  auto lower = [](std::string t) {
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return t;
  };
  // Score per task: its newest generation decides; anatomy must match when the scan names one.
  std::map<std::string, ModelSeriesInfo> newest;
  for (const auto& c : candidates) {
    if (c.task.empty()) continue;
    auto& n = newest[c.task];
    if (n.task.empty() || c.generation > n.generation) n = c;
  }
  int best = -1;
  std::vector<const ModelSeriesInfo*> winners;
  for (const auto& [task, m] : newest) {
    if (!bodyPart.empty() && m.anatomy != bodyPart) continue;
    const int score = (!scan.disease.empty() && lower(m.disease) == lower(scan.disease)) ? 1 : 0;
    if (score > best) {
      best = score;
      winners.clear();
    }
    if (score == best) winners.push_back(&m);
  }
  const std::string scanText = scan.modality + (bodyPart.empty() ? "" : " " + bodyPart) +
                               (scan.disease.empty() ? "" : " (" + scan.disease + ")");
  if (winners.empty()) throw Error(ErrorCode::NotFound, where + ": no Tessera model for " + scanText);
  if (winners.size() > 1) {
    std::string tasks;
    for (const auto* w : winners) tasks += (tasks.empty() ? "" : ", ") + w->task;
    throw Error(ErrorCode::Conflict, where + ": " + std::to_string(winners.size()) + " models fit " + scanText +
                                         " equally well (" + tasks + "); choose one with --model");
  }
  ModelChoice choice;
  choice.model = *winners.front();
  choice.reason = "task " + choice.model.task + " generation " + std::to_string(choice.model.generation) +
                  ": modality " + scan.modality + (bodyPart.empty() ? "" : ", body part " + bodyPart) +
                  (best > 0 ? ", disease " + choice.model.disease : "") + " match" +
                  (bodyPart.empty() ? " (the scan names no body part)" : "");
  return choice;
}

}  // namespace tessera::dicom
