#pragma once
// A correction session: one image, one model, and the person's clicks and drawn slices, kept in
// a directory so that a command line, a web UI or a benchmark can drive it step by step.
//
// Directory layout (all written by this class; nothing else should write there):
//   session.json         the commit point (see below); replaced atomically, last, by every step
//   image.nii.gz         the image (float32) as read at `start`: the session is self-contained
//   mask.nii.gz          the current label map (uint8) on the image's grid
//   entropy.nii.gz       the model's uncertainty (uint8: 255 * entropy / log(classes))
//   weights.nii.gz       after `propagate`: per-voxel trust of the proxy mask (float32), for learning
//   initial.nii.gz       the model's first prediction (Dice before/after correction)
//   history/REV/         one folder per kept revision: mask, entropy, previous (the mask before
//                        that step: the residual), weights, state.json (clicks, drawn slices).
//                        Files a step does not change are hard links, so a step costs one mask.
// The top-level mask/entropy/weights files are hard links to the current revision's files.
//
// session.json: {"format": "tessera-interact-session", "version": 1,
//   "model": {"path", "weights_sha256", "generation", "task", "classes", "guidance_channels", "dims", "axis"},
//   "image": {"source", "file": "image.nii.gz", "sha256", "size": [x,y,z]},
//   "created": ISO-8601 UTC, "revision": current revision, "next_revision",
//   "history": [revisions kept, oldest first; undo goes back one], "history_depth",
//   "clicks": [{"voxel": [i,j,k], "label": 1|0}], "drawn": [{"axis", "slice"}], "has_weights",
//   "steps": [StepReport JSON of every step ever done, undone ones included], "accepted": [case names]}
//
// Every step checks everything first (arguments, stored files, model), then writes the new
// revision's files under history/, then session.json (the commit point), then republishes the
// top-level links. A step that fails leaves the directory exactly as it was. Steps from several
// openers (a shell and a web UI) take turns under a lock on the directory; one computed from a
// state another opener has since replaced is refused with Error(Conflict) (open again, retry).

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tessera/image/Volume.h"
#include "tessera/interactive/ClickGeometry.h"
#include "tessera/interactive/Suggestion.h"
#include "tessera/model/Model.h"
#include "tessera/nn/Guidance.h"

namespace tessera::interactive {

// What one step changed. JSON fields (stable): step, revision, voxels_changed, dice_to_previous
// (foreground Dice between the mask before and after the step; 1 when both are empty; null for
// start), seconds (the whole step, files included), compute_seconds (inference or propagation
// only: how long until the new mask existed in memory), axis/first_slice/last_slice (the slices a
// click re-inferred along the model's axis; -1 when not applicable), detail (one sentence).
struct StepReport {
  std::string step;  // start, click, scribble, propagate, undo, accept
  int64_t revision = 0;
  int64_t voxelsChanged = 0;
  std::optional<double> diceToPrevious;
  double seconds = 0.0;
  double computeSeconds = 0.0;
  int axis = -1;
  int64_t firstSlice = -1;
  int64_t lastSlice = -1;
  std::string detail;
};

nlohmann::json toJson(const StepReport& report);
StepReport stepReportFromJson(const nlohmann::json& json);
// "click: 1234 voxels changed, Dice to previous 0.973, 0.21 s (slices 3..21 of axis 2 re-inferred)"
std::string describe(const StepReport& report);

struct SessionOptions {
  int historyDepth = 20;  // undo levels kept
  int inferenceBatchSize = 16;
};

// accept's result. The sidecar CASEDIR/interactions/NAME.json holds (stable fields):
//   format "tessera-interaction", version 1, case (NAME), image_source, model {weights_sha256,
//   generation, task}, clicks (click steps, undone ones included), scribbles, propagations,
//   undos, steps (all steps after start), drawn_slices (in the accepted mask), seconds (summed
//   step time after start: the person's interaction cost as the program saw it), session_seconds
//   (wall time from start to accept), dice_initial_to_accepted (foreground Dice of the model's
//   first prediction to the accepted mask: how much the person had to fix), voxels_changed
//   (initial vs accepted), accepted_at (ISO-8601 UTC).
// After `propagate`, CASEDIR/weights/NAME.nii.gz holds the proxy's per-voxel trust (what
// `tessera learn` scales the loss with); `weights` is empty otherwise.
struct AcceptedCase {
  std::string name;
  std::filesystem::path image, labels, interactions, weights;
  StepReport report;
};

class Session {
 public:
  // Creates DIR (absent or empty; Error(Conflict) otherwise), copies the image, predicts.
  // Throws BadModel/BadImage/NotFound for unreadable inputs; nothing is left behind on failure.
  static Session start(const std::filesystem::path& directory, const std::filesystem::path& modelPath,
                       const std::filesystem::path& imagePath, const SessionOptions& options = {});
  static Session start(const std::filesystem::path& directory, const std::filesystem::path& modelPath,
                       const image::Volume& image, const std::string& imageSource, const SessionOptions& options = {});
  // Error(NotFound) when DIR holds no session, Error(Corrupt) naming the file for a damaged one.
  static Session open(const std::filesystem::path& directory);

  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // A positive (the structure) or negative (not the structure) click. Re-infers the slices the
  // click's Gaussian reaches (±3 sigma along the model's slice axis for 2D models that keep the
  // slice spacing, sigma being the in-plane width in mm as nn/Guidance.h encodes it; the whole
  // image otherwise) with all clicks so far, so the mask equals a full re-inference; drawn
  // slices keep what was drawn. Error(BadRequest) for a click outside the image or a model without guidance channels;
  // Error(Conflict) when the model file changed since start.
  StepReport click(const std::array<double, 3>& position, ClickSpace space, bool positive);
  StepReport clickVoxel(const std::array<int64_t, 3>& voxel, bool positive);
  // Replaces slice `slice` across `axis` with `drawn`: a 2D image (size 1 along the axis, the
  // image's size along the others) or a volume of the image's size (its slice is taken). Labels
  // must be 0..classes-1. Error(BadRequest) naming the sizes otherwise.
  StepReport scribble(int axis, int64_t slice, const image::Volume& drawn);
  // The proxy 3D mask from the drawn slices (all across one axis), drawn slices kept; stores the
  // proxy's per-voxel weights. Error(BadRequest) without drawn slices or with several axes.
  StepReport propagate();
  // Slices ranked by expected error (Suggestion.h) across the model's slice axis (2D models) or
  // all three axes (3D models), drawn slices excluded.
  std::vector<SliceSuggestion> suggest(int top = 1) const;
  // Writes image + mask as case NAME (image file stem + UTC time, made unique) under `casesDir`
  // (model::writeCase layout) with the usage sidecar described above.
  AcceptedCase accept(const std::filesystem::path& casesDir);
  // Back to the state before the last step that changed the mask (several levels, up to the
  // history depth). Error(BadRequest) when there is nothing to undo.
  StepReport undo();

  const std::filesystem::path& directory() const;
  const image::Volume& image() const;
  const image::Volume& mask() const;
  const image::Volume& previousMask() const;
  const image::Volume& initialMask() const;
  // Normalised entropy (0..1) on the image's grid.
  image::Volume normalizedEntropy() const;
  const std::vector<nn::Click>& clicks() const;
  const std::vector<DrawnSlice>& drawnSlices() const;
  int64_t revision() const;
  int undoLevels() const;
  std::vector<StepReport> steps() const;
  // The default scribble axis: the model's slice axis for 2D models, 2 otherwise.
  int defaultAxis() const;

 private:
  struct State;
  explicit Session(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace tessera::interactive
