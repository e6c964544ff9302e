#pragma once
// The six lobes of Colin27 from the AAL atlas (Tzourio-Mazoyer et al. 2002) in Debian's
// mricron-data: aal.nii.gz holds the 116 AAL regions (values 1..116) on ch2's grid, aal.nii.txt
// lists "INDEX NAME CODE" per region. AAL's own code groups regions by its leading digit, and the
// lobes follow it:
//   2xxx precentral, frontal gyri, rolandic operculum, SMA, olfactory, rectus → 1 frontal
//   8xxx Heschl, temporal gyri and poles                                  → 2 temporal
//   6xxx postcentral, parietal, supramarginal, angular, precuneus         → 3 parietal
//   5xxx calcarine, cuneus, lingual, occipital gyri, fusiform             → 4 occipital
//   9xxx cerebellar hemispheres and vermis                                → 5 cerebellum
//   3xxx insula, 4xxx cingulum, hippocampus, parahippocampal, amygdala,
//   7xxx caudate, putamen, pallidum, thalamus                             → 6 deep grey / limbic
// (AAL gives the paracentral lobule code 6401, i.e. parietal; it is kept there.) AAL labels grey
// matter only: white matter and CSF are background.

#include <filesystem>
#include <map>
#include <string>

#include "tessera/image/Volume.h"

namespace tessera::simulation {

enum Lobe : int { Frontal = 1, Temporal, Parietal, Occipital, Cerebellum, DeepGrey, LobeCount = 7 };

// 0 background, 1..6 the lobes above.
std::map<int, std::string> lobeNames();

// The lobe of an AAL code (2001, 8111, …); 0 for a code of no lobe.
int lobeOfAalCode(int code);

// aal.nii.gz with every region replaced by its lobe. Throws Error(BadImage) naming the file when
// the atlas or its region list is missing or unreadable.
image::Volume readLobeAtlas(const std::filesystem::path& dataDir);

}  // namespace tessera::simulation
