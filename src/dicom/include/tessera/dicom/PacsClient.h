#pragma once
// A DICOM network client (DIMSE, through DCMTK) for one PACS: verification (C-ECHO), storing
// files (C-STORE), finding model series (C-FIND at series level on the attributes
// DicomModelCodec writes) and retrieving a model (C-GET). Every failure is an Error with a
// one-line message naming the PACS: Unreachable (no connection), Rejected (association or
// request refused, e.g. a wrong called AE title), NotFound (no match), Conflict (several
// matches where one is needed), BadModel (the object found is not a Tessera model).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/model/Model.h"

namespace tessera::dicom {

struct PacsAddress {
  std::string aet;  // called AE title
  std::string host;
  uint16_t port = 0;

  // "AET@HOST:PORT"; Error(BadRequest) naming `what` otherwise.
  static PacsAddress parse(std::string_view text, std::string_view what = "--pacs");
  std::string describe() const;  // "AET@HOST:PORT"
};

// "pacs://AET@HOST:PORT/STUDY_UID[/SERIES_UID]": a series (or a study with one image series).
struct PacsSeriesUrl {
  PacsAddress pacs;
  std::string studyUid;
  std::string seriesUid;  // empty: the study's only image series

  static bool matches(std::string_view text) { return text.starts_with("pacs://"); }
  static PacsSeriesUrl parse(std::string_view text);
};

struct PacsOptions {
  std::string callingAet = "TESSERA";
  int timeoutSeconds = 30;  // connection, association and each DIMSE message
};

// One model series as a PACS describes it.
struct ModelSeriesInfo {
  std::string task;
  int64_t generation = 0;
  std::string modality;
  std::string anatomy;  // Body Part Examined
  std::string disease;  // Admitting Diagnoses Description
  std::string studyUid;
  std::string seriesUid;
  std::string seriesDescription;
  int64_t instances = 0;  // Number of Series Related Instances (0 when the PACS does not say)
};

// Empty fields match anything. `anatomy` may be a body part term or a region name ("brain").
struct ModelQuery {
  std::string task;
  std::string modality;
  std::string anatomy;
  std::string disease;
};

// What a scan series says about itself, the keys of model selection.
struct ScanKeys {
  std::string modality;
  std::string bodyPart;  // Body Part Examined
  std::string disease;   // Admitting Diagnoses Description of its study
};

// The model chosen for a scan, and why.
struct ModelChoice {
  ModelSeriesInfo model;
  std::string reason;  // "task T generation G: modality MR, body part BRAIN and disease glioma match"
};

struct PushResult {
  size_t stored = 0;
  size_t skipped = 0;  // files in folders that are not DICOM
};

class PacsClient {
 public:
  explicit PacsClient(PacsAddress address, PacsOptions options = {});

  void echo() const;
  // Files, and folders searched recursively (non-DICOM files in folders are skipped; a named
  // file that is not DICOM is an error).
  PushResult push(const std::vector<std::filesystem::path>& paths) const;
  // Tessera model series matching `query`, ordered by task then generation.
  std::vector<ModelSeriesInfo> findModels(const ModelQuery& query) const;
  // The model of `task`'s newest generation in the PACS, or of `generation`.
  model::Model pullModel(const std::string& task, std::optional<int64_t> generation = std::nullopt) const;

  // Every instance of a series (C-GET) written into `folder` as one file each; returns how many.
  // Without a series UID, the study's only series that is not a SEG, model or report; several
  // are a Conflict naming them.
  size_t retrieveSeries(const std::string& studyUid, const std::string& seriesUid,
                        const std::filesystem::path& folder) const;
  // The study's only series that is not a SEG, model or report (NotFound / Conflict otherwise).
  std::string imageSeriesOf(const std::string& studyUid) const;

  // Modality, body part and disease of a series (C-FIND).
  ScanKeys describeSeries(const std::string& studyUid, const std::string& seriesUid) const;
  // IODeep's selection: among the model series of the scan's modality, those whose anatomy
  // matches the scan's body part (any anatomy when the scan names none), preferring one whose
  // disease matches the scan's; the newest generation of the best task. NotFound when none
  // qualifies, Conflict when several tasks are equally good.
  ModelChoice selectModel(const ScanKeys& scan) const;

  const PacsAddress& address() const { return address_; }

 private:
  PacsAddress address_;
  PacsOptions options_;
};

}  // namespace tessera::dicom
