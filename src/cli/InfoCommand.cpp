#include <cstdio>
#include <iostream>

#include "Commands.h"
#include "tessera/image/ImageIO.h"

namespace tessera::cli {

Action addInfoCommand(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto read = std::make_shared<ImageReadArgs>();
  app.add_option("IMAGE", *path,
                 "NIfTI (.nii, .nii.gz, .hdr/.img), Analyze (.hdr/.img), MetaImage (.mha), NRRD file, a DICOM file "
                 "(its series is read) or a DICOM series directory")
      ->required();
  addImageReadOptions(app, *read);
  return [path, read] {
    // A 4D image is described rather than refused: its first volume (or --volume) supplies the values.
    auto options = read->options();
    if (options.volume < 0) options.volume = 0;
    const auto volume = image::readImage(*path, options);
    const auto& g = volume.geometry;
    const auto [lo, hi] = volume.valueRange();
    std::printf("file:       %s\n", path->c_str());
    if (volume.volumes > 1)
      std::printf("size:       %lld x %lld x %lld x %lld (4D: %lld volumes of %lld voxels)\n",
                  static_cast<long long>(g.size[0]), static_cast<long long>(g.size[1]),
                  static_cast<long long>(g.size[2]), static_cast<long long>(volume.volumes),
                  static_cast<long long>(volume.volumes), static_cast<long long>(g.voxelCount()));
    else
      std::printf("size:       %lld x %lld x %lld (%lld voxels)\n", static_cast<long long>(g.size[0]),
                  static_cast<long long>(g.size[1]), static_cast<long long>(g.size[2]),
                  static_cast<long long>(g.voxelCount()));
    std::printf("spacing:    %g x %g x %g mm\n", g.spacing[0], g.spacing[1], g.spacing[2]);
    std::printf("origin:     %g, %g, %g mm (LPS)\n", g.origin[0], g.origin[1], g.origin[2]);
    std::printf("direction:  [%g %g %g; %g %g %g; %g %g %g]\n", g.direction[0], g.direction[1], g.direction[2],
                g.direction[3], g.direction[4], g.direction[5], g.direction[6], g.direction[7], g.direction[8]);
    if (volume.volumes > 1)
      std::printf("values:     %g .. %g (volume %lld)\n", static_cast<double>(lo), static_cast<double>(hi),
                  static_cast<long long>(options.volume));
    else
      std::printf("values:     %g .. %g\n", static_cast<double>(lo), static_cast<double>(hi));
    if (!volume.source.empty()) std::printf("read as:    %s\n", volume.source.c_str());
    if (!volume.modality.empty()) std::printf("modality:   %s\n", volume.modality.c_str());
    if (!volume.bodyPart.empty()) std::printf("body part:  %s\n", volume.bodyPart.c_str());
    return 0;
  };
}

}  // namespace tessera::cli
