#include "tessera/interactive/ClickGeometry.h"

#include <cmath>
#include <sstream>

#include "tessera/common/Error.h"

namespace tessera::interactive {

namespace {

std::string formatTriple(const std::array<double, 3>& p) {
  std::ostringstream s;
  s << p[0] << ',' << p[1] << ',' << p[2];
  return s.str();
}

}  // namespace

std::array<int64_t, 3> clickedVoxel(const image::Geometry& geometry, const std::array<double, 3>& position,
                                    ClickSpace space) {
  for (double v : position) {
    if (!std::isfinite(v)) throw Error(ErrorCode::BadRequest, "click position " + formatTriple(position) + " is not finite");
  }
  const std::array<double, 3> index = space == ClickSpace::Voxel ? position : geometry.pointToIndex(position);
  std::array<int64_t, 3> voxel{};
  for (int a = 0; a < 3; ++a) {
    // Voxel k covers [k - 0.5, k + 0.5) around its centre; llround would send -0.5 to -1.
    const double rounded = std::floor(index[a] + 0.5);
    if (rounded < 0 || rounded >= static_cast<double>(geometry.size[a])) {
      const std::string where = space == ClickSpace::Voxel
                                    ? "voxel " + formatTriple(position)
                                    : "point " + formatTriple(position) + " mm (LPS), voxel " + formatTriple(index) + ",";
      throw Error(ErrorCode::BadRequest, "click at " + where + " lies outside the image (" + geometry.describe() + ")");
    }
    voxel[a] = static_cast<int64_t>(rounded);
  }
  return voxel;
}

std::array<double, 3> parsePosition(const std::string& text) {
  std::array<double, 3> p{};
  std::istringstream in(text);
  for (int a = 0; a < 3; ++a) {
    if (a > 0) {
      char comma = 0;
      if (!(in >> comma) || comma != ',') {
        throw Error(ErrorCode::BadRequest, "position '" + text + "': expected three numbers X,Y,Z");
      }
    }
    if (!(in >> p[a]) || !std::isfinite(p[a])) {
      throw Error(ErrorCode::BadRequest, "position '" + text + "': expected three numbers X,Y,Z");
    }
  }
  in >> std::ws;
  if (!in.eof()) throw Error(ErrorCode::BadRequest, "position '" + text + "': expected three numbers X,Y,Z");
  return p;
}

}  // namespace tessera::interactive
