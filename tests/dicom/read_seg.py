# Decodes a DICOM SEG with pydicom: per frame its segment, position, source instance and mask.
import json, sys
import pydicom
seg = pydicom.dcmread(sys.argv[1])
src = {}
for f in sys.argv[2:]:
    d = pydicom.dcmread(f, stop_before_pixels=True)
    src[d.SOPInstanceUID] = [float(v) for v in d.ImagePositionPatient]
px = seg.pixel_array
if px.ndim == 2:
    px = px[None]
frames = []
for i, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
    ref = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
    frames.append({"segment": int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
                   "position": [float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient],
                   "source_position": src[ref],
                   "mask": "".join(str(int(v)) for v in px[i].ravel())})
segments = {int(s.SegmentNumber): s.SegmentLabel for s in seg.SegmentSequence}
print(json.dumps({"modality": seg.Modality, "sop": seg.SOPClassUID, "frames": frames,
                  "segments": segments, "frame_of_reference": seg.FrameOfReferenceUID,
                  "referenced_series": seg.ReferencedSeriesSequence[0].SeriesInstanceUID,
                  "orientation": [float(v) for v in seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient],
                  "type": [seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue]}))
