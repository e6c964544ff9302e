// `tessera pacs echo|push|find-models|pull-model`: models in a PACS over DICOM networking
// (--pacs AET@HOST:PORT) or DICOMweb (--pacs dicomweb+http(s)://HOST:PORT/PATH).

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "tessera/dicom/DicomWebClient.h"
#include "tessera/dicom/PacsClient.h"
#include "tessera/model/Model.h"

namespace tessera::cli {

namespace {

struct PacsArgs {
  CLI::App *echo = nullptr, *push = nullptr, *find = nullptr, *pull = nullptr;
  std::string pacs, aet = "TESSERA", out, task;
  int timeout = 30;
  std::vector<std::string> files;
  dicom::ModelQuery query;
  std::optional<int64_t> generation;
  bool json = false;
};

void printModels(const std::vector<dicom::ModelSeriesInfo>& found, bool json, const std::string& where) {
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : found) {
      list.push_back({{"task", s.task}, {"generation", s.generation}, {"modality", s.modality}, {"anatomy", s.anatomy},
                      {"disease", s.disease}, {"study_uid", s.studyUid}, {"series_uid", s.seriesUid},
                      {"instances", s.instances}});
    }
    std::cout << list.dump(2) << "\n";
  } else if (found.empty()) {
    std::cout << "no Tessera models match in " << where << "\n";
  } else {
    std::printf("%-24s %10s %-8s %-12s %-16s %s\n", "task", "generation", "modality", "anatomy", "disease", "series_uid");
    for (const auto& s : found) {
      std::printf("%-24s %10lld %-8s %-12s %-16s %s\n", s.task.c_str(), static_cast<long long>(s.generation),
                  s.modality.c_str(), s.anatomy.c_str(), s.disease.c_str(), s.seriesUid.c_str());
    }
  }
}

void printPush(const dicom::PushResult& result, const std::string& where) {
  std::cout << "stored " << result.stored << " object(s) in " << where;
  if (result.skipped) std::cout << " (" << result.skipped << " non-DICOM file(s) skipped)";
  std::cout << "\n";
}

void printPulled(const model::Model& model, const std::string& out, const std::string& where) {
  std::cout << out << ": task " << model.task.name << ", generation " << model.generation << " from " << where
            << ", weights SHA-256 " << model.weightsSha256() << "\n";
}

// The same operations for both protocols; `Client` is PacsClient or DicomWebClient.
template <typename Client>
int run(const PacsArgs& a, const Client& client, const std::string& where, const char* echoed) {
  if (a.echo->parsed()) {
    if constexpr (std::is_same_v<Client, dicom::PacsClient>) {
      client.echo();
    } else {
      client.findModels({});
    }
    std::cout << where << ": answers " << echoed << "\n";
  } else if (a.push->parsed()) {
    printPush(client.push(std::vector<std::filesystem::path>(a.files.begin(), a.files.end())), where);
  } else if (a.find->parsed()) {
    printModels(client.findModels(a.query), a.json, where);
  } else {
    const auto model = client.pullModel(a.task, a.generation);
    model::saveModel(model, a.out);
    printPulled(model, a.out, where);
  }
  return 0;
}

}  // namespace

Action addPacsCommand(CLI::App& app) {
  auto a = std::make_shared<PacsArgs>();
  app.require_subcommand(1);
  auto common = [&](CLI::App* sub) {
    sub->add_option("--pacs", a->pacs,
                    "The PACS as AET@HOST:PORT (DICOM networking), or dicomweb+http(s)://HOST:PORT/PATH (DICOMweb)")
        ->required();
    sub->add_option("--aet", a->aet, "Our own AE title (default TESSERA)");
    sub->add_option("--timeout", a->timeout, "Seconds to wait for the connection and each answer (default 30)")
        ->check(CLI::Range(1, 3600));
  };
  a->echo = app.add_subcommand("echo", "Check that the PACS answers (C-ECHO; a QIDO-RS query over DICOMweb)");
  common(a->echo);
  a->push = app.add_subcommand("push", "Store DICOM files, or every DICOM file under folders, in the PACS (C-STORE / STOW-RS)");
  a->push->add_option("FILES", a->files, "DICOM files or folders")->required();
  common(a->push);
  a->find = app.add_subcommand("find-models", "List the Tessera model series in the PACS (C-FIND / QIDO-RS)");
  common(a->find);
  a->find->add_option("--modality", a->query.modality, "Only models for this modality (e.g. MR)");
  a->find->add_option("--anatomy", a->query.anatomy, "Only models for this body part (e.g. BRAIN)");
  a->find->add_option("--disease", a->query.disease, "Only models for this disease or finding");
  a->find->add_option("--task", a->query.task, "Only this task's generations");
  a->find->add_flag("--json", a->json, "Print a JSON array instead of a table");
  a->pull = app.add_subcommand("pull-model", "Fetch a task's model from the PACS (C-GET / WADO-RS) into a model file");
  common(a->pull);
  a->pull->add_option("--task", a->task, "The task")->required();
  a->pull->add_option("--generation", a->generation, "The generation (default: the newest in the PACS)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  a->pull->add_option("--out", a->out, "Model file to write (.tsm)")->required();

  return [a] {
    if (dicom::DicomWebClient::matches(a->pacs)) {
      const dicom::DicomWebClient web(a->pacs, a->timeout);
      return run(*a, web, web.describe(), "QIDO-RS");
    }
    if (a->aet.empty() || a->aet.size() > 16) throw Error(ErrorCode::BadRequest, "--aet: an AE title has 1 to 16 characters");
    dicom::PacsOptions options;
    options.callingAet = a->aet;
    options.timeoutSeconds = a->timeout;
    const dicom::PacsClient client(dicom::PacsAddress::parse(a->pacs), options);
    return run(*a, client, client.address().describe(), "C-ECHO");
  };
}

}  // namespace tessera::cli
