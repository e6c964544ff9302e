// The interactive-correction protocol (InteractiveBench.h): sequence, learning curve, effort,
// proxy masks, forgetting and latencies, driven through the same Session a person would use.

#include "tessera/interactive/InteractiveBench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "InteractiveBenchSlices.h"
#include "tessera/common/Error.h"
#include "tessera/image/Metrics.h"
#include "tessera/interactive/Session.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Inference.h"

namespace tessera::interactive {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0.0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string fixed(double value, int digits = 3) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// The structure as the session's labels: `label` inside, 0 elsewhere (other labels of a
// multi-label map are background for this protocol).
image::Volume structureOnly(const image::Volume& truth, int label) {
  image::Volume out = truth;
  const auto value = static_cast<float>(label);
  for (float& v : out.voxels) v = v == value ? value : 0.0f;
  return out;
}

struct CaseRun {
  std::string name;
  std::array<int64_t, 3> size{};
  ClickLoopResult loop;
  std::vector<double> computeSeconds;  // the session's inference time of each click
  image::Volume accepted;
  int64_t slicesDrawn = 0;
  int64_t drawnVoxels = 0;
  double diceAccepted = 0.0;
};

json caseJson(const CaseRun& run) {
  json j = toJson(run.loop);
  j["case"] = run.name;
  j["size"] = run.size;
  j["compute_seconds_per_click"] = run.computeSeconds;
  return j;
}

json meanJson(const std::vector<CaseRun>& runs) {
  std::vector<double> noc85, noc90, clickSeconds;
  size_t longest = 0;
  for (const auto& r : runs) {
    noc85.push_back(r.loop.noc85);
    noc90.push_back(r.loop.noc90);
    clickSeconds.insert(clickSeconds.end(), r.loop.secondsPerClick.begin(), r.loop.secondsPerClick.end());
    longest = std::max(longest, r.loop.dicePerClick.size());
  }
  // A case that reached the target stops: its mask, and so its Dice, stays as it was.
  std::vector<double> dice(longest, 0.0);
  for (size_t i = 0; i < longest; ++i) {
    for (const auto& r : runs) dice[i] += r.loop.dicePerClick[std::min(i, r.loop.dicePerClick.size() - 1)];
    dice[i] /= static_cast<double>(runs.size());
  }
  return {{"noc85", mean(noc85)}, {"noc90", mean(noc90)}, {"dice_per_click", dice},
          {"seconds_per_click", mean(clickSeconds)}};
}

class Protocol {
 public:
  Protocol(const fs::path& modelPath, const std::vector<BenchCase>& cases, const InteractiveBenchOptions& options)
      : modelPath_(modelPath), cases_(cases), o_(options) {
    checkBenchInput(cases, options);
    learnCases_ = o_.learnCases < 0 ? static_cast<int>(cases.size()) - 1 : o_.learnCases;
    model0_ = model::loadModel(modelPath);
    if (model0_.spec.guidanceChannels == 0) {
      throw Error(ErrorCode::BadRequest, modelPath.string() + ": the model (task " + model0_.task.name +
                                             ") has no guidance channels; the simulated user clicks (train it with --guidance)");
    }
    axis_ = model0_.spec.dims == 2 ? model0_.spec.axis : 2;
    label_ = o_.clicks.label;
    for (const auto& c : cases) truths_.push_back(structureOnly(c.truth, label_));
  }

  json run() {
    const auto started = std::chrono::steady_clock::now();
    fs::create_directories(o_.workDir / "sessions");
    json report = {{"format", "tessera-bench-interactive"}, {"version", 1}};
    report["protocol"] = protocolJson();

    json curve = json::array();
    curve.push_back(heldOutStage(0, modelPath_));

    json sequence = json::array();
    std::vector<CaseRun> sequenceRuns;
    std::vector<model::NamedCase> accepted;
    std::vector<double> learnSeconds, diceRightAfter;
    model::Model current = model0_;
    fs::path currentFile = modelPath_;
    for (int k = 0; k < learnCases_; ++k) {
      CaseRun run = annotate(currentFile, k, /*drawToTarget=*/true, "sequence-" + std::to_string(k));
      model::NamedCase fresh{cases_[k].name, {cases_[k].image, run.accepted, {}}};
      const ContinualResult learned = learnContinually(current, {fresh}, accepted, o_.learning);
      accepted.push_back(std::move(fresh));
      currentFile = o_.workDir / ("model-" + std::to_string(k + 1) + ".tsm");
      model::saveModel(current, currentFile);
      learnSeconds.push_back(learned.seconds);
      diceRightAfter.push_back(automaticDice(current, k));
      say("learned " + cases_[k].name + " (replayed " + std::to_string(learned.replayed.size()) + ") in " +
          fixed(learned.seconds, 1) + " s; its Dice without clicks now " + fixed(diceRightAfter.back()));

      json j = caseJson(run);
      const AnnotationEffort manual = manualEffort(truths_[k], axis_, label_);
      j["learned_before"] = k;
      j["slices_drawn"] = run.slicesDrawn;
      j["drawn_voxels"] = run.drawnVoxels;
      j["dice_accepted"] = run.diceAccepted;
      j["interactions"] = run.loop.clicksUsed() + run.slicesDrawn;
      j["manual_interactions"] = manual.interactions;
      j["manual_voxels"] = manual.editedVoxels;
      j["learn_seconds"] = learned.seconds;
      sequence.push_back(j);
      sequenceRuns.push_back(std::move(run));
      if (o_.curveEveryStep || k + 1 == learnCases_) curve.push_back(heldOutStage(k + 1, currentFile));
    }
    report["sequence"] = {{"cases", sequence}, {"mean", meanJson(sequenceRuns)}};
    report["learning_curve"] = curve;
    report["summary"] = {
        {"first_case", {{"noc85", sequenceRuns.front().loop.noc85}, {"noc90", sequenceRuns.front().loop.noc90}}},
        {"held_out_before", {{"noc85", curve.front()["mean"]["noc85"]}, {"noc90", curve.front()["mean"]["noc90"]}}},
        {"held_out_after",
         {{"learned", curve.back()["learned"]}, {"noc85", curve.back()["mean"]["noc85"]}, {"noc90", curve.back()["mean"]["noc90"]}}}};
    report["effort"] = effortJson(sequenceRuns);

    json forgetting = {{"with_replay", forgettingJson(o_.learning.replay, diceRightAfter, current)}};
    if (o_.forgetting) forgetting["without_replay"] = withoutReplay(accepted);
    report["forgetting"] = forgetting;

    double proxySlowest = 0.0;
    int64_t proxySlices = 0;
    std::array<int64_t, 3> proxySize{};
    report["proxy"] = proxyJson(proxySlowest, proxySlices, proxySize);

    report["latency"] = {
        {"click", clickLatency()},
        {"learn", {{"mean_seconds", mean(learnSeconds)},
                   {"max_seconds", learnSeconds.empty() ? 0.0 : *std::max_element(learnSeconds.begin(), learnSeconds.end())},
                   {"steps", learnSeconds.size()}}},
        {"propagate", {{"slices", proxySlices}, {"seconds", proxySlowest}, {"size", proxySize}}}};
    report["seconds"] = seconds(started);
    return report;
  }

 private:
  void say(const std::string& line) const {
    if (o_.say) o_.say(line);
  }

  json protocolJson() const {
    std::vector<std::string> heldOut;
    for (size_t i = static_cast<size_t>(learnCases_); i < cases_.size(); ++i) heldOut.push_back(cases_[i].name);
    return {{"target", o_.clicks.targetDice},   {"max_clicks", o_.clicks.maxClicks}, {"label", label_},
            {"axis", axis_},                    {"learn_cases", learnCases_},        {"held_out", heldOut},
            {"replay", o_.learning.replay},     {"epochs", o_.learning.epochs},      {"proxy_every", o_.proxyEvery}};
  }

  // The simulated user on case `index` with the model in `modelFile`; with drawToTarget, whole
  // slices are drawn after the clicks until the target is reached (what a person would do).
  CaseRun annotate(const fs::path& modelFile, size_t index, bool drawToTarget, const std::string& tag) {
    const BenchCase& c = cases_[index];
    const image::Volume& truth = truths_[index];
    const fs::path dir = o_.workDir / "sessions" / tag;
    fs::remove_all(dir);
    Session session = Session::start(dir, modelFile, c.image, c.name);
    CaseRun run;
    run.name = c.name;
    run.size = c.image.geometry.size;
    run.loop = runClickLoop(session, truth, o_.clicks);
    for (const auto& step : session.steps()) {
      if (step.step == "click") run.computeSeconds.push_back(step.computeSeconds);
    }
    double dice = run.loop.dicePerClick.back();
    if (drawToTarget) {
      const auto structure = detail::structurePerSlice(truth, axis_, label_);
      const auto value = static_cast<float>(label_);
      while (dice < o_.clicks.targetDice) {
        const image::Volume& mask = session.mask();
        const auto wrong = detail::voxelsPerSlice(mask, axis_, [&](int64_t i) {
          return (mask.voxels[static_cast<size_t>(i)] == value) != (truth.voxels[static_cast<size_t>(i)] == value);
        });
        const auto worst = std::max_element(wrong.begin(), wrong.end());
        if (*worst == 0) break;
        const auto slice = static_cast<int64_t>(worst - wrong.begin());
        session.scribble(axis_, slice, truth);
        ++run.slicesDrawn;
        run.drawnVoxels += structure[static_cast<size_t>(slice)];
        dice = image::diceScore(session.mask(), truth, label_);
      }
    }
    run.diceAccepted = dice;
    run.accepted = session.mask();
    fs::remove_all(dir);
    clickTimes_.push_back({run.size, run.loop.secondsPerClick, run.computeSeconds});
    say(tag + " " + c.name + ": Dice " + fixed(run.loop.dicePerClick.front()) + " -> " + fixed(run.loop.dicePerClick.back()) +
        " after " + std::to_string(run.loop.clicksUsed()) + " click(s), NoC@85 " + std::to_string(run.loop.noc85) +
        ", NoC@90 " + std::to_string(run.loop.noc90) +
        (run.slicesDrawn ? ", " + std::to_string(run.slicesDrawn) + " slice(s) drawn to reach " + fixed(dice) : std::string()));
    return run;
  }

  json heldOutStage(int learned, const fs::path& modelFile) {
    std::vector<CaseRun> runs;
    json cases = json::array();
    for (size_t i = static_cast<size_t>(learnCases_); i < cases_.size(); ++i) {
      runs.push_back(annotate(modelFile, i, /*drawToTarget=*/false, "held-out-after-" + std::to_string(learned)));
      cases.push_back(caseJson(runs.back()));
    }
    return {{"learned", learned}, {"cases", cases}, {"mean", meanJson(runs)}};
  }

  double automaticDice(const model::Model& m, size_t index) const {
    return image::diceScore(nn::segment(m, cases_[index].image), truths_[index], label_);
  }

  json effortJson(const std::vector<CaseRun>& runs) const {
    AnnotationEffort manual;
    int64_t clicks = 0, slices = 0, drawnVoxels = 0;
    for (size_t k = 0; k < runs.size(); ++k) {
      const AnnotationEffort m = manualEffort(truths_[k], axis_, label_);
      manual.interactions += m.interactions;
      manual.editedVoxels += m.editedVoxels;
      clicks += runs[k].loop.clicksUsed();
      slices += runs[k].slicesDrawn;
      drawnVoxels += runs[k].drawnVoxels;
    }
    auto reduction = [](double interactive, double manual) { return manual > 0 ? 100.0 * (1.0 - interactive / manual) : 0.0; };
    return {{"cases", runs.size()},
            {"manual", {{"interactions", manual.interactions}, {"edited_voxels", manual.editedVoxels}}},
            {"interactive",
             {{"interactions", clicks + slices}, {"clicks", clicks}, {"slices_drawn", slices}, {"edited_voxels", drawnVoxels}}},
            {"reduction_interactions_percent", reduction(double(clicks + slices), double(manual.interactions))},
            {"reduction_voxels_percent", reduction(double(drawnVoxels), double(manual.editedVoxels))},
            {"definition",
             "manual: one interaction per slice across the drawing axis that contains the structure, every structure voxel "
             "drawn; interactive: clicks until the target Dice, then whole slices drawn (worst first) if it was not "
             "reached; a click edits no voxel, a drawn slice its structure voxels"}};
  }

  // Dice right after learning each case (but the last) against the final model's.
  json forgettingJson(int replay, const std::vector<double>& rightAfter, const model::Model& final) const {
    json cases = json::array();
    std::vector<double> before, after;
    for (size_t k = 0; k + 1 < rightAfter.size(); ++k) {
      before.push_back(rightAfter[k]);
      after.push_back(automaticDice(final, k));
      cases.push_back({{"case", cases_[k].name}, {"dice_after_learning_it", before.back()}, {"dice_at_end", after.back()}});
    }
    json j = {{"replay", replay}, {"cases", cases}};
    if (before.empty()) {
      j["mean_before"] = j["mean_after"] = j["drop_points"] = nullptr;
    } else {
      j["mean_before"] = mean(before);
      j["mean_after"] = mean(after);
      j["drop_points"] = 100.0 * (mean(before) - mean(after));
    }
    return j;
  }

  // The same accepted masks learned in the same order from M_0, without rehearsal.
  json withoutReplay(const std::vector<model::NamedCase>& accepted) const {
    model::Model m = model0_;
    ContinualOptions options = o_.learning;
    options.replay = 0;
    std::vector<double> rightAfter;
    for (size_t k = 0; k < accepted.size(); ++k) {
      learnContinually(m, {accepted[k]}, {}, options);
      rightAfter.push_back(automaticDice(m, k));
    }
    say("without replay: learned the " + std::to_string(accepted.size()) + " accepted case(s) again");
    return forgettingJson(0, rightAfter, m);
  }

  json proxyJson(double& slowest, int64_t& slowestSlices, std::array<int64_t, 3>& slowestSize) const {
    json perCase = json::array();
    std::vector<std::vector<double>> propagated(o_.proxyEvery.size()), copied(o_.proxyEvery.size());
    for (size_t i = 0; i < cases_.size(); ++i) {
      const auto& truth = truths_[i];
      json every = json::array();
      for (size_t e = 0; e < o_.proxyEvery.size(); ++e) {
        const auto slices = everyNthStructureSlice(truth, axis_, label_, o_.proxyEvery[e]);
        const ProxyMask proxy = propagateSlices(cases_[i].image, truth, axis_, slices, o_.propagation);
        const double dicePropagated = image::diceScore(proxy.labels, truth, label_);
        const double diceCopied = image::diceScore(copyNearestSlice(truth, axis_, slices), truth, label_);
        propagated[e].push_back(dicePropagated);
        copied[e].push_back(diceCopied);
        every.push_back({{"every", o_.proxyEvery[e]},
                         {"drawn", slices.size()},
                         {"dice_propagated", dicePropagated},
                         {"dice_nearest_copy", diceCopied},
                         {"seconds", proxy.totalSeconds}});
        const int64_t sliceCount = truth.geometry.size[static_cast<size_t>(axis_)];
        if (sliceCount > slowestSlices || (sliceCount == slowestSlices && proxy.totalSeconds > slowest)) {
          slowestSlices = sliceCount;
          slowest = proxy.totalSeconds;
          slowestSize = truth.geometry.size;
        }
        say("proxy " + cases_[i].name + ", 1 slice in " + std::to_string(o_.proxyEvery[e]) + " drawn (" +
            std::to_string(slices.size()) + " slices): Dice " + fixed(dicePropagated) + " propagated, " + fixed(diceCopied) +
            " nearest-slice copy, " + fixed(proxy.totalSeconds, 2) + " s");
      }
      perCase.push_back({{"case", cases_[i].name}, {"slices", truth.geometry.size[static_cast<size_t>(axis_)]}, {"every", every}});
    }
    json means = json::array();
    for (size_t e = 0; e < o_.proxyEvery.size(); ++e) {
      means.push_back({{"every", o_.proxyEvery[e]}, {"dice_propagated", mean(propagated[e])}, {"dice_nearest_copy", mean(copied[e])}});
    }
    return {{"axis", axis_}, {"cases", perCase}, {"mean", means}};
  }

  // Clicks on the largest image the bench saw (the budget is for a 181x217x181 volume).
  json clickLatency() const {
    const ClickTimes* largest = nullptr;
    auto voxels = [](const std::array<int64_t, 3>& s) { return s[0] * s[1] * s[2]; };
    for (const auto& t : clickTimes_) {
      if (!largest || voxels(t.size) > voxels(largest->size)) largest = &t;
    }
    std::vector<double> wall, compute;
    for (const auto& t : clickTimes_) {
      if (t.size != largest->size) continue;
      wall.insert(wall.end(), t.wall.begin(), t.wall.end());
      compute.insert(compute.end(), t.compute.begin(), t.compute.end());
    }
    return {{"size", largest->size},
            {"median_seconds", median(wall)},
            {"median_compute_seconds", median(compute)},
            {"clicks", wall.size()}};
  }

  struct ClickTimes {
    std::array<int64_t, 3> size;
    std::vector<double> wall, compute;
  };

  fs::path modelPath_;
  const std::vector<BenchCase>& cases_;
  InteractiveBenchOptions o_;
  int learnCases_ = 0;
  model::Model model0_;
  int axis_ = 2;
  int label_ = 1;
  std::vector<image::Volume> truths_;
  std::vector<ClickTimes> clickTimes_;
};

}  // namespace

json runInteractiveBench(const fs::path& modelPath, const std::vector<BenchCase>& cases,
                         const InteractiveBenchOptions& options) {
  return Protocol(modelPath, cases, options).run();
}

}  // namespace tessera::interactive
