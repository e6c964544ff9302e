#include <cstdio>
#include <iostream>

#include "Commands.h"
#include "tessera/image/ImageIO.h"

namespace tessera::cli {

Action addInfoCommand(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  app.add_option("IMAGE", *path, "NIfTI (.nii, .nii.gz), MetaImage (.mha), NRRD file, or a DICOM series directory")
      ->required();
  return [path] {
    const auto volume = image::readImage(*path);
    const auto& g = volume.geometry;
    const auto [lo, hi] = volume.valueRange();
    std::printf("file:       %s\n", path->c_str());
    std::printf("size:       %lld x %lld x %lld (%lld voxels)\n", static_cast<long long>(g.size[0]),
                static_cast<long long>(g.size[1]), static_cast<long long>(g.size[2]),
                static_cast<long long>(g.voxelCount()));
    std::printf("spacing:    %g x %g x %g mm\n", g.spacing[0], g.spacing[1], g.spacing[2]);
    std::printf("origin:     %g, %g, %g mm (LPS)\n", g.origin[0], g.origin[1], g.origin[2]);
    std::printf("direction:  [%g %g %g; %g %g %g; %g %g %g]\n", g.direction[0], g.direction[1], g.direction[2],
                g.direction[3], g.direction[4], g.direction[5], g.direction[6], g.direction[7], g.direction[8]);
    std::printf("values:     %g .. %g\n", static_cast<double>(lo), static_cast<double>(hi));
    if (!volume.modality.empty()) std::printf("modality:   %s\n", volume.modality.c_str());
    if (!volume.bodyPart.empty()) std::printf("body part:  %s\n", volume.bodyPart.c_str());
    return 0;
  };
}

}  // namespace tessera::cli
