// The interactive bench's figures as text: what a person reading a terminal (or the README)
// needs, in the order the issue asks for them.

#include <cstdio>
#include <sstream>

#include "tessera/interactive/InteractiveBench.h"

namespace tessera::interactive {

namespace {

using nlohmann::json;

std::string number(const json& value, int digits = 3) {
  if (!value.is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value.get<double>());
  return text;
}

std::string sizeText(const json& size) {
  if (!size.is_array() || size.size() != 3) return "?";
  return std::to_string(size[0].get<int64_t>()) + "x" + std::to_string(size[1].get<int64_t>()) + "x" +
         std::to_string(size[2].get<int64_t>());
}

}  // namespace

std::string formatInteractiveBench(const json& r) {
  std::ostringstream out;
  const auto& p = r.at("protocol");
  out << "protocol: simulated user to Dice " << number(p.at("target"), 2) << " or " << p.at("max_clicks") << " clicks; "
      << p.at("learn_cases") << " case(s) learned in sequence (replay " << p.at("replay") << ", " << p.at("epochs")
      << " epochs each), " << p.at("held_out").size() << " held out\n";

  out << "\nNoC (mean; a case that never reaches the target counts max clicks + 1):\n";
  const auto& s = r.at("summary");
  out << "  first case (model before learning):   NoC@85 " << number(s["first_case"]["noc85"], 1) << ", NoC@90 "
      << number(s["first_case"]["noc90"], 1) << "\n";
  for (const auto& stage : r.at("learning_curve")) {
    out << "  held out, model after " << stage["learned"] << " case(s):   NoC@85 " << number(stage["mean"]["noc85"], 1)
        << ", NoC@90 " << number(stage["mean"]["noc90"], 1) << "   per case:";
    for (const auto& c : stage["cases"]) out << " " << c["case"].get<std::string>() << " " << c["noc90"];
    out << "\n";
  }
  out << "  sequence cases as they came:";
  for (const auto& c : r.at("sequence").at("cases")) out << " " << c["case"].get<std::string>() << " " << c["noc90"];
  out << "\n";

  const auto& e = r.at("effort");
  out << "\nannotation effort for " << e["cases"] << " case(s): interactive " << e["interactive"]["interactions"]
      << " interactions (" << e["interactive"]["clicks"] << " clicks + " << e["interactive"]["slices_drawn"]
      << " slices drawn), " << e["interactive"]["edited_voxels"] << " voxels drawn; manual " << e["manual"]["interactions"]
      << " slices, " << e["manual"]["edited_voxels"] << " voxels; reduction " << number(e["reduction_interactions_percent"], 1)
      << "% interactions, " << number(e["reduction_voxels_percent"], 1) << "% voxels\n";

  out << "\nproxy masks from 1 drawn slice in k (mean Dice to the truth): propagated vs nearest-slice copy\n";
  for (const auto& m : r.at("proxy").at("mean")) {
    out << "  k = " << m["every"] << ": " << number(m["dice_propagated"]) << " vs " << number(m["dice_nearest_copy"]) << "\n";
  }

  out << "\nforgetting (automatic Dice on earlier cases, right after learning them -> at the end):\n";
  for (const auto& [key, f] : r.at("forgetting").items()) {
    out << "  " << key << " (replay " << f["replay"] << "): " << number(f["mean_before"]) << " -> "
        << number(f["mean_after"]) << ", drop " << number(f["drop_points"], 2) << " Dice points\n";
  }

  const auto& l = r.at("latency");
  out << "\nlatency: click -> updated mask " << number(l["click"]["median_seconds"], 3) << " s median ("
      << number(l["click"]["median_compute_seconds"], 3) << " s inference) on " << sizeText(l["click"]["size"]) << ", "
      << l["click"]["clicks"] << " clicks; learn one accepted case " << number(l["learn"]["mean_seconds"], 1) << " s mean, "
      << number(l["learn"]["max_seconds"], 1) << " s max; propagate across " << l["propagate"]["slices"] << " slices "
      << number(l["propagate"]["seconds"], 2) << " s (" << sizeText(l["propagate"]["size"]) << ")\n";
  return out.str();
}

}  // namespace tessera::interactive
