# Writes a small MR series (one instance per slice, real geometry) for the SEG tests:
# make_series.py OUT_DIR OBLIQUE(0|1)
import math, os, sys
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out, oblique = sys.argv[1], sys.argv[2] == "1"
os.makedirs(out, exist_ok=True)
cols, rows, slices = 20, 16, 8
spacing = (0.8, 0.9, 2.5)  # column step (x), row step (y), slice step
a = math.radians(20 if oblique else 0)
row_dir = np.array([math.cos(a), math.sin(a), 0.0])       # along a row: x index
col_dir = np.array([0.0, math.cos(a), -math.sin(a)]) if oblique else np.array([0.0, 1.0, 0.0])
col_dir = col_dir - row_dir * np.dot(row_dir, col_dir)
col_dir /= np.linalg.norm(col_dir)
normal = np.cross(row_dir, col_dir)
origin = np.array([-10.0, 12.5, 30.0])
study, series, frame = generate_uid(), generate_uid(), generate_uid()
for k in range(slices):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    uid = generate_uid()
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    d = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    d.is_little_endian, d.is_implicit_VR = True, False
    d.SOPClassUID, d.SOPInstanceUID = meta.MediaStorageSOPClassUID, uid
    d.PatientName, d.PatientID, d.PatientBirthDate, d.PatientSex = "PHANTOM^SEG", "SEG-TEST", "", "O"
    d.StudyInstanceUID, d.SeriesInstanceUID, d.FrameOfReferenceUID = study, series, frame
    d.StudyDate, d.StudyTime, d.StudyID, d.AccessionNumber, d.ReferringPhysicianName = "20260101", "120000", "1", "", ""
    d.Modality, d.SeriesNumber, d.InstanceNumber, d.Manufacturer = "MR", 1, k + 1, "test"
    d.BodyPartExamined = "BRAIN"
    d.PositionReferenceIndicator = ""
    d.PatientPosition = "HFS"
    d.ScanningSequence, d.SequenceVariant, d.ScanOptions, d.MRAcquisitionType = "GR", "NONE", "", "3D"
    d.EchoTime, d.RepetitionTime, d.EchoTrainLength = 3, 10, 1
    d.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    d.ImagePositionPatient = [f"{v:.10g}" for v in origin + k * spacing[2] * normal]
    d.ImageOrientationPatient = [f"{v:.10g}" for v in list(row_dir) + list(col_dir)]
    d.PixelSpacing = [spacing[1], spacing[0]]
    d.SliceThickness = spacing[2]
    d.Rows, d.Columns = rows, cols
    d.SamplesPerPixel, d.PhotometricInterpretation = 1, "MONOCHROME2"
    d.BitsAllocated, d.BitsStored, d.HighBit, d.PixelRepresentation = 16, 16, 15, 0
    px = (np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) + 100 * k).astype(np.uint16)
    d.PixelData = px.tobytes()
    d.save_as(os.path.join(out, f"slice{k:03d}.dcm"))
