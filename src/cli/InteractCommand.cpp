// `tessera interact`: a correction session driven from the shell, one step per call (the web UI
// drives the same interactive::Session in process). Each step prints what changed on one line,
// or with --json one JSON object (StepReport's fields, documented in Session.h and the README).
#include <iostream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "tessera/image/ImageIO.h"
#include "tessera/interactive/Session.h"
#include "tessera/nn/Runtime.h"

namespace tessera::cli {

namespace {

struct InteractArgs {
  std::string session, model, in, pos, mask, cases;
  int label = 1;
  bool mm = false, json = false;
  int64_t slice = 0;
  int axis = -1;
  int top = 1;
  int history = interactive::SessionOptions{}.historyDepth;
  int threads = 0;
  ImageReadArgs read;
  CLI::App *start = nullptr, *click = nullptr, *scribble = nullptr, *propagate = nullptr, *suggest = nullptr,
           *accept = nullptr, *undo = nullptr;
};

void print(const interactive::StepReport& report, bool json) {
  if (json) {
    std::cout << interactive::toJson(report).dump() << "\n";
  } else {
    std::cout << interactive::describe(report) << "\n";
  }
}

nlohmann::json suggestionJson(const interactive::SliceSuggestion& s) {
  return {{"axis", s.axis},
          {"slice", s.slice},
          {"score", s.score},
          {"residual_voxels", s.residualVoxels},
          {"mean_entropy", s.meanEntropy}};
}

}  // namespace

Action addInteractCommand(CLI::App& app) {
  auto a = std::make_shared<InteractArgs>();
  app.require_subcommand(1);
  auto sessionOption = [&a](CLI::App* sub) {
    sub->add_option("--session", a->session, "Session directory")->required();
    sub->add_flag("--json", a->json, "Print the result as one JSON object");
  };
  a->start = app.add_subcommand("start", "Predict with the model and open a session: writes DIR/mask.nii.gz");
  a->start->add_option("--model", a->model, "Model file (.tsm)")->required();
  a->start->add_option("--in", a->in, "Image to correct (file or DICOM series directory)")->required();
  a->start->add_option("--history", a->history, "Undo levels kept")->capture_default_str()->check(CLI::Range(1, 1000));
  addImageReadOptions(*a->start, a->read);
  a->click = app.add_subcommand("click", "A click on the structure (--label 1) or off it (--label 0): updates DIR/mask.nii.gz");
  a->click->add_option("--pos", a->pos, "Voxel index i,j,k (file order), or with --mm a point in mm (LPS)")->required();
  a->click->add_flag("--mm", a->mm, "--pos is a patient position in mm (LPS), not a voxel index");
  a->click->add_option("--label", a->label, "1: part of the structure (a miss); 0: not (a false positive)")
      ->required()
      ->check(CLI::IsMember({0, 1}));
  a->scribble = app.add_subcommand("scribble", "Replace one slice of the mask with a drawn one");
  a->scribble->add_option("--slice", a->slice, "Slice index along the axis")->required()->check(CLI::NonNegativeNumber);
  a->scribble->add_option("--axis", a->axis, "Index axis 0, 1 or 2 (default: the model's slice axis)")->check(CLI::Range(0, 2));
  a->scribble->add_option("--mask", a->mask, "The drawn slice: a 2D label image (size 1 along the axis) or a volume whose slice is taken")
      ->required();
  a->propagate = app.add_subcommand("propagate", "Proxy 3D mask from the drawn slices (registration), drawn slices kept");
  a->suggest = app.add_subcommand("suggest", "Where to correct next: slices ranked by residual and uncertainty");
  a->suggest->add_option("--top", a->top, "How many slices to list")->capture_default_str()->check(CLI::Range(1, 100000));
  a->accept = app.add_subcommand("accept", "Save image + mask as a corrected case (and its usage figures)");
  a->accept->add_option("--cases", a->cases, "Case folder (images/, labels/, interactions/)")->required();
  a->undo = app.add_subcommand("undo", "Back to the mask before the last step");
  for (CLI::App* sub : {a->start, a->click, a->scribble, a->propagate, a->suggest, a->accept, a->undo}) {
    sessionOption(sub);
    sub->add_option("--threads", a->threads, "Compute threads (default: all cores)");
  }

  return [a] {
    nn::setThreadCount(a->threads);
    if (a->start->parsed()) {
      interactive::SessionOptions options;
      options.historyDepth = a->history;
      const auto image = image::readImage(a->in, a->read.options());
      auto session = interactive::Session::start(a->session, a->model, image,
                                                 std::filesystem::absolute(a->in).lexically_normal().string(), options);
      const auto report = session.steps().front();
      if (a->json) {
        print(report, true);
      } else {
        print(report, false);
        std::cout << "wrote " << (session.directory() / "mask.nii.gz").string() << "\n";
      }
      return 0;
    }
    auto session = interactive::Session::open(a->session);
    if (a->click->parsed()) {
      const auto position = interactive::parsePosition(a->pos);
      print(session.click(position, a->mm ? interactive::ClickSpace::PatientMm : interactive::ClickSpace::Voxel, a->label == 1),
            a->json);
    } else if (a->scribble->parsed()) {
      const int axis = a->axis >= 0 ? a->axis : session.defaultAxis();
      print(session.scribble(axis, a->slice, image::readImage(a->mask)), a->json);
    } else if (a->propagate->parsed()) {
      print(session.propagate(), a->json);
    } else if (a->suggest->parsed()) {
      const auto ranked = session.suggest(a->top);
      if (ranked.empty()) throw Error(ErrorCode::NotFound, a->session + ": every slice is drawn; nothing left to suggest");
      if (a->json) {
        auto out = suggestionJson(ranked.front());
        out["ranked"] = nlohmann::json::array();
        for (const auto& s : ranked) out["ranked"].push_back(suggestionJson(s));
        std::cout << out.dump() << "\n";
      } else {
        for (const auto& s : ranked) {
          std::cout << "slice " << s.slice << " across axis " << s.axis << ": score " << s.score << " ("
                    << static_cast<int64_t>(s.residualVoxels) << " voxels changed by the last step, mean entropy "
                    << s.meanEntropy << ")\n";
        }
      }
    } else if (a->accept->parsed()) {
      const auto accepted = session.accept(a->cases);
      if (a->json) {
        auto out = interactive::toJson(accepted.report);
        out["case"] = accepted.name;
        out["image"] = accepted.image.string();
        out["labels"] = accepted.labels.string();
        out["interactions"] = accepted.interactions.string();
        std::cout << out.dump() << "\n";
      } else {
        print(accepted.report, false);
        std::cout << "wrote " << accepted.labels.string() << " and " << accepted.interactions.string() << "\n";
      }
    } else if (a->undo->parsed()) {
      print(session.undo(), a->json);
    }
    return 0;
  };
}

}  // namespace tessera::cli
