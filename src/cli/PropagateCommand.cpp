// `tessera propagate`: a proxy 3D mask from a few drawn slices (interactive/SlicePropagation.h).

#include <cstdio>
#include <map>
#include <memory>
#include <sstream>

#include "Commands.h"
#include "tessera/common/Error.h"
#include "tessera/image/ImageIO.h"
#include "tessera/interactive/SlicePropagation.h"

namespace tessera::cli {

namespace {

struct PropagateArgs {
  std::string image, annotated, out, weightsOut;
  std::vector<int64_t> slices;
  int axis = 2;
  int64_t maxDistance = -1;
  ImageReadArgs read;
};

std::string joined(const std::vector<int64_t>& values) {
  std::ostringstream s;
  for (size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i];
  return s.str();
}

}  // namespace

Action addPropagateCommand(CLI::App& app) {
  auto args = std::make_shared<PropagateArgs>();
  app.add_option("--image", args->image, "The scan the slices were drawn on")->required();
  app.add_option("--annotated", args->annotated,
                 "Label map on the image's grid holding the drawn slices (integer labels; other slices are ignored)")
      ->required();
  app.add_option("--slices", args->slices, "The drawn slices, comma-separated indices along --axis (0-based)")
      ->required()
      ->delimiter(',');
  app.add_option("--axis", args->axis, "Voxel axis the slices are taken along: 0, 1 or 2 (the file's i, j, k)")
      ->default_val(2);
  app.add_option("--max-distance", args->maxDistance,
                 "Slices to carry the contours beyond the first and last drawn slice (default: 10% of the slice count)");
  app.add_option("--out", args->out, "Proxy label map to write (.nii.gz, .nii, .mha, .nrrd)")->required();
  app.add_option("--weights-out", args->weightsOut,
                 "Also write the per-voxel trust 1/(1 + distance to the nearest drawn slice), 0 where nothing was "
                 "propagated");
  addImageReadOptions(app, args->read);
  return [args] {
    const auto image = image::readImage(args->image, args->read.options());
    const auto annotated = image::readImage(args->annotated, args->read.options());
    interactive::PropagationOptions options;
    options.maxDistance = args->maxDistance;
    interactive::ProxyMask proxy;
    try {
      proxy = interactive::propagateSlices(image, annotated, args->axis, args->slices, options);
    } catch (const Error& e) {
      // Say where the bad value came from: the library only knows volumes and numbers.
      const std::string message = e.what();
      const auto startsWith = [&](const char* prefix) { return message.rfind(prefix, 0) == 0; };
      if (startsWith("annotated")) throw Error(e.code(), args->annotated + ": " + message);
      if (startsWith("slice")) throw Error(e.code(), "--slices: " + message);
      if (startsWith("axis")) throw Error(e.code(), "--axis: " + message);
      throw;
    }
    std::map<int, int64_t> counts;
    float highest = 0.0f;
    for (float v : proxy.labels.voxels) {
      if (v != 0.0f) ++counts[static_cast<int>(v)];
      highest = std::max(highest, v);
    }
    const auto pixelType = highest <= 255.0f ? image::PixelType::UInt8
                           : highest <= 32767.0f ? image::PixelType::Int16
                                                 : image::PixelType::Float32;
    image::writeImage(proxy.labels, args->out, pixelType);
    if (!args->weightsOut.empty()) image::writeImage(proxy.weights, args->weightsOut);

    int64_t labelled = 0;
    std::ostringstream perLabel;
    for (const auto& [label, n] : counts) {
      labelled += n;
      perLabel << (perLabel.tellp() > 0 ? ", " : "") << "label " << label << ": " << n;
    }
    // An atlas's hundred regions would not fit a line; their count says enough there.
    if (counts.size() > 8) {
      perLabel.str("");
      perLabel << counts.size() << " labels";
    }
    std::printf("propagated %lld slices along axis %d from %zu drawn (%s) in %.2f s (registration %.2f s)\n",
                static_cast<long long>(proxy.propagatedSlices), args->axis, args->slices.size(),
                joined(args->slices).c_str(), proxy.totalSeconds, proxy.registrationSeconds);
    std::printf("labelled %lld voxels%s%s%s\n", static_cast<long long>(labelled), counts.empty() ? "" : " (",
                perLabel.str().c_str(), counts.empty() ? "" : ")");
    std::printf("wrote %s\n", args->out.c_str());
    if (!args->weightsOut.empty()) std::printf("wrote %s\n", args->weightsOut.c_str());
    return 0;
  };
}

}  // namespace tessera::cli
