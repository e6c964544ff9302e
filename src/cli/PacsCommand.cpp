// `tessera pacs echo|push|find-models|pull-model`: models in a PACS over DICOM networking.

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "tessera/dicom/PacsClient.h"
#include "tessera/model/Model.h"

namespace tessera::cli {

Action addPacsCommand(CLI::App& app) {
  struct Args {
    CLI::App *echo = nullptr, *push = nullptr, *find = nullptr, *pull = nullptr;
    std::string pacs, aet = "TESSERA", out, task;
    int timeout = 30;
    std::vector<std::string> files;
    dicom::ModelQuery query;
    std::optional<int64_t> generation;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  app.require_subcommand(1);
  auto common = [&](CLI::App* sub) {
    sub->add_option("--pacs", a->pacs, "The PACS as AET@HOST:PORT (its AE title, host and DICOM port)")->required();
    sub->add_option("--aet", a->aet, "Our own AE title (default TESSERA)");
    sub->add_option("--timeout", a->timeout, "Seconds to wait for the connection and each answer (default 30)")
        ->check(CLI::Range(1, 3600));
  };
  a->echo = app.add_subcommand("echo", "Check that the PACS answers (C-ECHO)");
  common(a->echo);
  a->push = app.add_subcommand("push", "Store DICOM files, or every DICOM file under folders, in the PACS (C-STORE)");
  a->push->add_option("FILES", a->files, "DICOM files or folders")->required();
  common(a->push);
  a->find = app.add_subcommand("find-models", "List the Tessera model series in the PACS (C-FIND)");
  common(a->find);
  a->find->add_option("--modality", a->query.modality, "Only models for this modality (e.g. MR)");
  a->find->add_option("--anatomy", a->query.anatomy, "Only models for this body part (e.g. BRAIN)");
  a->find->add_option("--disease", a->query.disease, "Only models for this disease or finding");
  a->find->add_option("--task", a->query.task, "Only this task's generations");
  a->find->add_flag("--json", a->json, "Print a JSON array instead of a table");
  a->pull = app.add_subcommand("pull-model", "Fetch a task's model from the PACS (C-GET) into a model file");
  common(a->pull);
  a->pull->add_option("--task", a->task, "The task")->required();
  a->pull->add_option("--generation", a->generation, "The generation (default: the newest in the PACS)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  a->pull->add_option("--out", a->out, "Model file to write (.tsm)")->required();

  return [a] {
    dicom::PacsOptions options;
    options.callingAet = a->aet;
    options.timeoutSeconds = a->timeout;
    if (a->aet.empty() || a->aet.size() > 16) throw Error(ErrorCode::BadRequest, "--aet: an AE title has 1 to 16 characters");
    const dicom::PacsClient client(dicom::PacsAddress::parse(a->pacs), options);
    if (a->echo->parsed()) {
      client.echo();
      std::cout << client.address().describe() << ": answers C-ECHO\n";
    } else if (a->push->parsed()) {
      std::vector<std::filesystem::path> paths(a->files.begin(), a->files.end());
      const auto result = client.push(paths);
      std::cout << "stored " << result.stored << " object(s) in " << client.address().describe();
      if (result.skipped) std::cout << " (" << result.skipped << " non-DICOM file(s) skipped)";
      std::cout << "\n";
    } else if (a->find->parsed()) {
      const auto found = client.findModels(a->query);
      if (a->json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& s : found) {
          list.push_back({{"task", s.task}, {"generation", s.generation}, {"modality", s.modality},
                          {"anatomy", s.anatomy}, {"disease", s.disease}, {"study_uid", s.studyUid},
                          {"series_uid", s.seriesUid}, {"instances", s.instances}});
        }
        std::cout << list.dump(2) << "\n";
      } else if (found.empty()) {
        std::cout << "no Tessera models match in " << client.address().describe() << "\n";
      } else {
        std::printf("%-24s %10s %-8s %-12s %-16s %s\n", "task", "generation", "modality", "anatomy", "disease", "series_uid");
        for (const auto& s : found) {
          std::printf("%-24s %10lld %-8s %-12s %-16s %s\n", s.task.c_str(), static_cast<long long>(s.generation),
                      s.modality.c_str(), s.anatomy.c_str(), s.disease.c_str(), s.seriesUid.c_str());
        }
      }
    } else {
      const auto model = client.pullModel(a->task, a->generation);
      model::saveModel(model, a->out);
      std::cout << a->out << ": task " << model.task.name << ", generation " << model.generation
                << " from " << client.address().describe() << ", weights SHA-256 " << model.weightsSha256() << "\n";
    }
    return 0;
  };
}

}  // namespace tessera::cli
