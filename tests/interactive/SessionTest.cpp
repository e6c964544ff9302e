// A correction session's steps on a phantom with a tiny (untrained) guidance model: what each
// step changes, what it stores, and that a reopened session continues where the last left off.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "SessionTestSupport.h"
#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/interactive/Session.h"
#include "tessera/model/CaseFolder.h"
#include "tessera/nn/Inference.h"

namespace fs = std::filesystem;
using namespace tessera;
using interactive::ClickSpace;
using interactive::Session;

namespace {

class SessionTest : public test::SessionFixture {};

bool sameVoxels(const image::Volume& a, const image::Volume& b) { return a.voxels == b.voxels; }

image::Volume sliceOf(const image::Volume& v, int64_t z) {
  auto g = v.geometry;
  g.size[2] = 1;
  image::Volume s(g);
  for (int64_t y = 0; y < g.size[1]; ++y)
    for (int64_t x = 0; x < g.size[0]; ++x) s.at(x, y, 0) = v.at(x, y, z);
  return s;
}

}  // namespace

TEST_F(SessionTest, StartPredictsAndStoresEverythingNeededToContinue) {
  const auto dir = root_ / "s";
  auto session = Session::start(dir, writeModel("m.tsm", 2), root_ / "image.nii.gz");
  for (const char* file : {"session.json", "image.nii.gz", "mask.nii.gz", "entropy.nii.gz", "initial.nii.gz",
                           "history/0/mask.nii.gz", "history/0/state.json"}) {
    EXPECT_TRUE(fs::exists(dir / file)) << file;
  }
  const auto doc = nlohmann::json::parse(common::readFile(dir / "session.json"));
  EXPECT_EQ(doc.at("format"), "tessera-interact-session");
  EXPECT_EQ(doc.at("version"), 1);
  EXPECT_EQ(doc.at("model").at("weights_sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(doc.at("image").at("sha256"), common::sha256OfFile(dir / "image.nii.gz"));
  EXPECT_EQ(doc.at("steps").size(), 1u);
  EXPECT_EQ(doc.at("steps")[0].at("step"), "start");
  const auto mask = image::readImage(dir / "mask.nii.gz");
  EXPECT_TRUE(mask.geometry.sameGrid(phantom_.image.geometry));
  EXPECT_TRUE(sameVoxels(mask, session.mask()));
  EXPECT_EQ(session.undoLevels(), 0);

  const auto reopened = Session::open(dir);
  EXPECT_TRUE(sameVoxels(reopened.mask(), session.mask()));
  EXPECT_TRUE(sameVoxels(reopened.image(), session.image()));
  EXPECT_TRUE(sameVoxels(reopened.initialMask(), session.mask()));
  EXPECT_TRUE(sameVoxels(reopened.normalizedEntropy(), session.normalizedEntropy()));
  EXPECT_EQ(reopened.revision(), 0);

  // "DIR/" is DIR.
  auto slashed = Session::start(root_ / "t/", root_ / "m.tsm", root_ / "image.nii.gz");
  EXPECT_TRUE(fs::exists(root_ / "t" / "session.json"));
  EXPECT_EQ(slashed.directory(), root_ / "t");
}

TEST_F(SessionTest, ClickReinfersOnlyTheSlicesItsGaussianReaches) {
  const auto dir = root_ / "s";
  auto session = Session::start(dir, writeModel("m.tsm", 2), root_ / "image.nii.gz");
  const auto before = session.mask();
  const auto report = session.click({24, 24, 2}, ClickSpace::Voxel, true);
  EXPECT_EQ(report.step, "click");
  EXPECT_EQ(report.revision, 1);
  EXPECT_EQ(report.axis, 2);
  EXPECT_EQ(report.firstSlice, 0);
  // sigma across slices: 3 voxels of 1 mm in-plane = 1.5 slices of 2 mm; reach 3 sigma = 4.5 slices.
  EXPECT_EQ(report.lastSlice, 6);
  ASSERT_TRUE(report.diceToPrevious);
  int64_t changed = 0;
  for (size_t i = 0; i < before.voxels.size(); ++i) changed += before.voxels[i] != session.mask().voxels[i];
  EXPECT_EQ(changed, report.voxelsChanged);
  for (int64_t z = 7; z < 16; ++z) EXPECT_TRUE(sameVoxels(sliceOf(before, z), sliceOf(session.mask(), z))) << z;
  EXPECT_TRUE(sameVoxels(session.previousMask(), before));

  const auto reopened = Session::open(dir);
  ASSERT_EQ(reopened.clicks().size(), 1u);
  EXPECT_EQ(reopened.clicks()[0].voxel, (std::array<int64_t, 3>{24, 24, 2}));
  EXPECT_TRUE(reopened.clicks()[0].positive);
  EXPECT_TRUE(sameVoxels(reopened.mask(), session.mask()));
  EXPECT_TRUE(sameVoxels(reopened.previousMask(), before));
  EXPECT_TRUE(sameVoxels(image::readImage(dir / "mask.nii.gz"), session.mask()));
}

TEST_F(SessionTest, ReinferringOnlyReachedSlicesEqualsAFullReinference) {
  const auto modelPath = writeModel("m.tsm", 2, 1, /*guidanceGain=*/30.0f);
  auto session = Session::start(root_ / "s", modelPath, root_ / "image.nii.gz");
  for (const auto& [voxel, positive] : std::vector<std::pair<std::array<double, 3>, bool>>{
           {{24, 24, 3}, true}, {{30, 20, 9}, false}, {{12, 30, 14}, true}}) {
    const auto report = session.click(voxel, ClickSpace::Voxel, positive);
    EXPECT_GT(report.voxelsChanged, 0);  // the clicks matter, so a too-narrow slice range would show
  }
  const auto full = nn::segmentDetailed(model::loadModel(modelPath), session.image(), nn::Guidance{session.clicks()});
  EXPECT_TRUE(sameVoxels(full.labels, session.mask()));
  int64_t differentEntropy = 0;
  const auto entropy = session.normalizedEntropy();
  const double maxNats = std::log(2.0);
  for (size_t i = 0; i < entropy.voxels.size(); ++i) {
    differentEntropy += std::abs(entropy.voxels[i] - full.entropy.voxels[i] / maxNats) > 1.0 / 255.0;
  }
  EXPECT_EQ(differentEntropy, 0);
}

TEST_F(SessionTest, MillimetreClickLandsOnTheSameVoxel) {
  auto session = Session::start(root_ / "s", writeModel("m.tsm", 2), root_ / "image.nii.gz");
  const auto point = session.image().geometry.indexToPoint({10, 20, 5});
  session.click(point, ClickSpace::PatientMm, false);
  ASSERT_EQ(session.clicks().size(), 1u);
  EXPECT_EQ(session.clicks()[0].voxel, (std::array<int64_t, 3>{10, 20, 5}));
  EXPECT_FALSE(session.clicks()[0].positive);
}

TEST_F(SessionTest, DrawnSlicesKeepWhatWasDrawnThroughLaterClicks) {
  auto session = Session::start(root_ / "s", writeModel("m.tsm", 2), root_ / "image.nii.gz");
  auto drawn = sliceOf(phantom_.labels, 8);
  const auto report = session.scribble(2, 8, drawn);
  EXPECT_EQ(report.step, "scribble");
  EXPECT_TRUE(sameVoxels(sliceOf(session.mask(), 8), drawn));
  session.click({24, 24, 8}, ClickSpace::Voxel, false);
  session.click({20, 24, 9}, ClickSpace::Voxel, true);
  EXPECT_TRUE(sameVoxels(sliceOf(session.mask(), 8), drawn));
  // A whole volume works too: its slice K is taken.
  session.scribble(2, 3, phantom_.labels);
  EXPECT_TRUE(sameVoxels(sliceOf(session.mask(), 3), sliceOf(phantom_.labels, 3)));
  const auto reopened = Session::open(session.directory());
  ASSERT_EQ(reopened.drawnSlices().size(), 2u);
  EXPECT_EQ(reopened.drawnSlices()[0].slice, 8);
  EXPECT_EQ(reopened.drawnSlices()[1].slice, 3);
  for (const auto& s : reopened.suggest(16)) EXPECT_TRUE(s.slice != 8 && s.slice != 3) << s.slice;
}

TEST_F(SessionTest, UndoRestoresByteIdenticalMasksSeveralStepsBack) {
  const auto dir = root_ / "s";
  std::vector<std::string> masks;
  {
    auto session = Session::start(dir, writeModel("m.tsm", 2), root_ / "image.nii.gz");
    masks.push_back(common::readFile(dir / "mask.nii.gz"));
    session.click({24, 24, 5}, ClickSpace::Voxel, true);
    masks.push_back(common::readFile(dir / "mask.nii.gz"));
  }
  {
    auto session = Session::open(dir);  // undo works across processes: the history is on disk
    session.scribble(2, 7, sliceOf(phantom_.labels, 7));
    masks.push_back(common::readFile(dir / "mask.nii.gz"));
    session.click({10, 30, 12}, ClickSpace::Voxel, false);
    EXPECT_EQ(session.undoLevels(), 3);
    const auto clicksBefore = session.clicks().size();
    auto report = session.undo();
    EXPECT_EQ(report.step, "undo");
    EXPECT_EQ(common::readFile(dir / "mask.nii.gz"), masks[2]);
    EXPECT_EQ(session.clicks().size(), clicksBefore - 1);
    session.undo();
    EXPECT_EQ(common::readFile(dir / "mask.nii.gz"), masks[1]);
    EXPECT_TRUE(session.drawnSlices().empty());
  }
  auto session = Session::open(dir);
  EXPECT_EQ(session.clicks().size(), 1u);
  session.undo();
  EXPECT_EQ(common::readFile(dir / "mask.nii.gz"), masks[0]);
  EXPECT_TRUE(session.clicks().empty());
  try {
    session.undo();
    FAIL() << "undo past the start";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadRequest);
  }
  // Steps done after an undo continue from the restored state.
  session.click({24, 24, 5}, ClickSpace::Voxel, true);
  EXPECT_EQ(session.clicks().size(), 1u);
  EXPECT_EQ(Session::open(dir).steps().size(), 8u);  // start, 3 steps, 3 undos, 1 click: all logged
}

TEST_F(SessionTest, HistoryDepthLimitsUndo) {
  interactive::SessionOptions options;
  options.historyDepth = 2;
  auto session = Session::start(root_ / "s", writeModel("m.tsm", 2), root_ / "image.nii.gz", options);
  for (double z : {2.0, 6.0, 10.0}) session.click({24, 24, z}, ClickSpace::Voxel, true);
  EXPECT_EQ(session.undoLevels(), 2);
  EXPECT_FALSE(fs::exists(root_ / "s" / "history" / "0"));  // beyond the depth: gone
  EXPECT_TRUE(fs::exists(root_ / "s" / "initial.nii.gz"));   // the first prediction stays for accept's Dice
  session.undo();
  session.undo();
  EXPECT_THROW(session.undo(), Error);
  EXPECT_EQ(session.clicks().size(), 1u);
}

TEST_F(SessionTest, PropagateFillsTheVolumeFromDrawnSlicesAndStoresWeights) {
  auto session = Session::start(root_ / "s", writeModel("m.tsm", 2), root_ / "image.nii.gz");
  for (int64_t z : {4, 8, 12}) session.scribble(2, z, phantom_.labels);
  const auto report = session.propagate();
  EXPECT_EQ(report.step, "propagate");
  EXPECT_TRUE(fs::exists(root_ / "s" / "weights.nii.gz"));
  for (int64_t z : {4, 8, 12}) EXPECT_TRUE(sameVoxels(sliceOf(session.mask(), z), sliceOf(phantom_.labels, z))) << z;
  // Between drawn slices the proxy follows the phantom's shape.
  const auto truth = sliceOf(phantom_.labels, 6), proxy = sliceOf(session.mask(), 6);
  int64_t both = 0, sum = 0;
  for (size_t i = 0; i < truth.voxels.size(); ++i) {
    both += truth.voxels[i] > 0 && proxy.voxels[i] > 0;
    sum += (truth.voxels[i] > 0) + (proxy.voxels[i] > 0);
  }
  EXPECT_GT(2.0 * static_cast<double>(both) / static_cast<double>(sum), 0.8);
  const auto accepted = session.accept(root_ / "cases");
  EXPECT_EQ(accepted.weights, root_ / "cases" / "weights" / (accepted.name + ".nii.gz"));
  EXPECT_EQ(image::readImage(accepted.weights).voxels, image::readImage(root_ / "s" / "weights.nii.gz").voxels);
  session.undo();
  EXPECT_FALSE(fs::exists(root_ / "s" / "weights.nii.gz"));
}

TEST_F(SessionTest, AcceptWritesTheCaseAndItsUsageSidecar) {
  auto session = Session::start(root_ / "s", writeModel("m.tsm", 2), root_ / "image.nii.gz");
  session.click({24, 24, 8}, ClickSpace::Voxel, true);
  session.click({30, 24, 8}, ClickSpace::Voxel, false);
  session.undo();
  session.scribble(2, 8, phantom_.labels);
  const auto cases = root_ / "cases";
  const auto accepted = session.accept(cases);
  EXPECT_TRUE(fs::exists(accepted.image));
  EXPECT_TRUE(fs::exists(accepted.labels));
  EXPECT_TRUE(accepted.weights.empty());  // nothing propagated
  EXPECT_EQ(accepted.interactions, cases / "interactions" / (accepted.name + ".json"));
  EXPECT_EQ(accepted.name.rfind("image-", 0), 0u) << accepted.name;
  const auto usage = nlohmann::json::parse(common::readFile(accepted.interactions));
  EXPECT_EQ(usage.at("format"), "tessera-interaction");
  EXPECT_EQ(usage.at("case"), accepted.name);
  EXPECT_EQ(usage.at("clicks"), 2);
  EXPECT_EQ(usage.at("undos"), 1);
  EXPECT_EQ(usage.at("scribbles"), 1);
  EXPECT_EQ(usage.at("steps"), 4);
  EXPECT_EQ(usage.at("drawn_slices"), 1);
  EXPECT_GE(usage.at("seconds").get<double>(), 0.0);
  const auto initialDice = usage.at("dice_initial_to_accepted").get<double>();
  EXPECT_GE(initialDice, 0.0);
  EXPECT_LE(initialDice, 1.0);
  EXPECT_EQ(usage.at("model").at("weights_sha256"), nlohmann::json::parse(common::readFile(root_ / "s" / "session.json"))
                                                         .at("model")
                                                         .at("weights_sha256"));
  const auto read = model::readCaseFolder(cases);
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].name, accepted.name);
  EXPECT_EQ(read[0].data.labels.voxels, session.mask().voxels);
  const auto again = session.accept(cases);
  EXPECT_NE(again.name, accepted.name);
  EXPECT_EQ(model::readCaseFolder(cases).size(), 2u);
}

TEST_F(SessionTest, ReportsSerialiseWithStableFields) {
  interactive::StepReport r;
  r.step = "click";
  r.revision = 3;
  r.voxelsChanged = 12;
  r.diceToPrevious = 0.5;
  r.seconds = 0.25;
  r.axis = 2;
  r.firstSlice = 1;
  r.lastSlice = 9;
  const auto j = interactive::toJson(r);
  for (const char* field : {"step", "revision", "voxels_changed", "dice_to_previous", "seconds", "compute_seconds", "axis",
                            "first_slice", "last_slice", "detail"}) {
    EXPECT_TRUE(j.contains(field)) << field;
  }
  const auto back = interactive::stepReportFromJson(j);
  EXPECT_EQ(back.voxelsChanged, 12);
  EXPECT_EQ(*back.diceToPrevious, 0.5);
  EXPECT_NE(interactive::describe(r).find("12 voxels changed"), std::string::npos);
}
