// Every bad input a session can meet: a one-line error with the right code, and the session
// directory exactly as it was (every file's bytes hashed before and after).
#include <fstream>

#include "SessionTestSupport.h"
#include "tessera/common/Error.h"
#include "tessera/interactive/Session.h"

namespace fs = std::filesystem;
using namespace tessera;
using interactive::ClickSpace;
using interactive::Session;

namespace {

class SessionFailureTest : public test::SessionFixture {
 protected:
  // Runs `step`, expects Error(code) whose message contains `fragment`, and no change in `dir`.
  template <typename F>
  void expectRefusedUnchanged(const fs::path& dir, F step, ErrorCode code, const std::string& fragment) {
    const auto before = test::fingerprint(dir);
    try {
      step();
      ADD_FAILURE() << "expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
    EXPECT_EQ(test::fingerprint(dir), before);
  }
};

image::Volume labelSlice(std::array<int64_t, 3> size, float value) {
  image::Geometry g;
  g.size = size;
  return image::Volume(g, value);
}

}  // namespace

TEST_F(SessionFailureTest, BadStepsLeaveTheSessionAsItWas) {
  const auto dir = root_ / "s";
  auto session = Session::start(dir, writeModel("m.tsm", 2), root_ / "image.nii.gz");
  session.click({24, 24, 8}, ClickSpace::Voxel, true);
  expectRefusedUnchanged(dir, [&] { session.click({48, 0, 0}, ClickSpace::Voxel, true); }, ErrorCode::BadRequest, "outside the image");
  expectRefusedUnchanged(dir, [&] { session.click({-5000, 0, 0}, ClickSpace::PatientMm, true); }, ErrorCode::BadRequest, "outside the image");
  expectRefusedUnchanged(dir, [&] { session.scribble(2, 3, labelSlice({10, 10, 1}, 1)); }, ErrorCode::BadRequest, "10x10x1");
  expectRefusedUnchanged(dir, [&] { session.scribble(2, 3, labelSlice({48, 48, 2}, 1)); }, ErrorCode::BadRequest, "48x48x1");
  expectRefusedUnchanged(dir, [&] { session.scribble(2, 16, labelSlice({48, 48, 1}, 1)); }, ErrorCode::BadRequest, "slice 16");
  expectRefusedUnchanged(dir, [&] { session.scribble(3, 1, labelSlice({48, 48, 1}, 1)); }, ErrorCode::BadRequest, "axis 3");
  expectRefusedUnchanged(dir, [&] { session.scribble(2, 3, labelSlice({48, 48, 1}, 5)); }, ErrorCode::BadRequest, "label 5");
  expectRefusedUnchanged(dir, [&] { session.propagate(); }, ErrorCode::BadRequest, "no drawn slices");
  session.scribble(2, 3, labelSlice({48, 48, 1}, 1));
  session.scribble(0, 3, labelSlice({1, 48, 16}, 0));
  expectRefusedUnchanged(dir, [&] { session.propagate(); }, ErrorCode::BadRequest, "one axis");
  expectRefusedUnchanged(dir, [&] { (void)Session::start(dir, root_ / "m.tsm", root_ / "image.nii.gz"); }, ErrorCode::Conflict, "not an empty directory");
  // The model file replaced by another one: clicks would mix two models' predictions.
  writeModel("m.tsm", 2, /*seed=*/99);
  expectRefusedUnchanged(dir, [&] { (void)Session::open(dir).click({1, 1, 1}, ClickSpace::Voxel, true); }, ErrorCode::Conflict, "changed since");
}

TEST_F(SessionFailureTest, ModelWithoutGuidanceRefusesClicks) {
  const auto dir = root_ / "s";
  auto session = Session::start(dir, writeModel("auto.tsm", 0), root_ / "image.nii.gz");
  expectRefusedUnchanged(dir, [&] { session.click({24, 24, 8}, ClickSpace::Voxel, true); }, ErrorCode::BadRequest, "no guidance channels");
  // Everything else still works without clicks.
  session.scribble(2, 3, labelSlice({48, 48, 1}, 1));
  EXPECT_EQ(session.undoLevels(), 1);
}

TEST_F(SessionFailureTest, UnknownAndDamagedSessionsAreRefusedUntouched) {
  expectRefusedUnchanged(root_, [&] { (void)Session::open(root_ / "nowhere"); }, ErrorCode::NotFound, "no session here");
  const auto dir = root_ / "s";
  { auto session = Session::start(dir, writeModel("m.tsm", 2), root_ / "image.nii.gz"); session.click({24, 24, 8}, ClickSpace::Voxel, true); }
  const auto json = common::readFile(dir / "session.json");

  std::ofstream(dir / "session.json", std::ios::trunc) << json.substr(0, json.size() / 2);
  expectRefusedUnchanged(dir, [&] { (void)Session::open(dir); }, ErrorCode::Corrupt, "session.json");
  expectRefusedUnchanged(dir, [&] { (void)Session::open(dir).undo(); }, ErrorCode::Corrupt, "session.json");
  std::ofstream(dir / "session.json", std::ios::trunc) << json;

  fs::rename(dir / "mask.nii.gz", root_ / "away.nii.gz");
  expectRefusedUnchanged(dir, [&] { (void)Session::open(dir); }, ErrorCode::Corrupt, "mask.nii.gz");
  fs::rename(root_ / "away.nii.gz", dir / "mask.nii.gz");

  fs::rename(dir / "history" / "1" / "mask.nii.gz", root_ / "away.nii.gz");
  expectRefusedUnchanged(dir, [&] { (void)Session::open(dir); }, ErrorCode::Corrupt, "mask.nii.gz");
  fs::rename(root_ / "away.nii.gz", dir / "history" / "1" / "mask.nii.gz");

  const auto image = common::readFile(dir / "image.nii.gz");
  std::ofstream(dir / "image.nii.gz", std::ios::trunc | std::ios::binary) << image.substr(0, image.size() - 10);
  expectRefusedUnchanged(dir, [&] { (void)Session::open(dir); }, ErrorCode::Corrupt, "image.nii.gz");
  std::ofstream(dir / "image.nii.gz", std::ios::trunc | std::ios::binary) << image;

  EXPECT_NO_THROW(Session::open(dir).undo());  // restored: usable again
}

TEST_F(SessionFailureTest, AStepOnAStaleViewIsRefused) {
  // Two openers of one session (a shell and a web UI): the one that did not see the other's step
  // must not overwrite it.
  const auto dir = root_ / "s";
  auto first = Session::start(dir, writeModel("m.tsm", 2), root_ / "image.nii.gz");
  auto second = Session::open(dir);
  first.click({24, 24, 8}, ClickSpace::Voxel, true);
  expectRefusedUnchanged(dir, [&] { second.click({20, 20, 4}, ClickSpace::Voxel, false); }, ErrorCode::Conflict, "another step");
  expectRefusedUnchanged(dir, [&] { second.undo(); }, ErrorCode::BadRequest, "nothing to undo");
  expectRefusedUnchanged(dir, [&] { (void)second.accept(root_ / "cases"); }, ErrorCode::Conflict, "another step");
  EXPECT_FALSE(fs::exists(root_ / "cases"));
  EXPECT_EQ(Session::open(dir).clicks().size(), 1u);
}
