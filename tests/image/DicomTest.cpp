// DICOM series directories. The library has no DICOM writer, so the fixtures are written
// here with ITK's GDCMImageIO, one file per slice, as a scanner would export them.

#include <string>

#include "TestSupport.h"
#include "itkGDCMImageIO.h"
#include "itkImage.h"
#include "itkImageFileWriter.h"
#include "itkMetaDataObject.h"
#include "tessera/image/ImageIO.h"

namespace tessera::image {
namespace {

namespace fs = std::filesystem;
using test::errorOf;
using test::TempDir;
using test::writeBytes;

constexpr int kColumns = 4, kRows = 3;
constexpr double kPixelSpacing = 0.5, kSliceStep = 2.0;

int16_t pixelValue(int x, int y, int slice) { return static_cast<int16_t>(100 * slice + 10 * y + x); }

// Writes `slices` MR slices of one series into `dir`, named <prefix><n>.dcm.
void writeSeries(const fs::path& dir, const std::string& seriesUid, int slices, const std::string& prefix) {
  using Image = itk::Image<int16_t, 3>;
  for (int k = 0; k < slices; ++k) {
    auto image = Image::New();
    Image::RegionType region;
    region.SetSize({kColumns, kRows, 1});
    image->SetRegions(region);
    Image::SpacingType spacing;
    spacing[0] = spacing[1] = kPixelSpacing;
    spacing[2] = kSliceStep;
    image->SetSpacing(spacing);
    Image::PointType origin;
    origin[0] = -10.0;
    origin[1] = 20.0;
    origin[2] = 30.0 + kSliceStep * k;
    image->SetOrigin(origin);
    image->Allocate();
    for (int y = 0; y < kRows; ++y)
      for (int x = 0; x < kColumns; ++x) image->SetPixel({x, y, 0}, pixelValue(x, y, k));

    itk::MetaDataDictionary& tags = image->GetMetaDataDictionary();
    const auto set = [&](const std::string& key, const std::string& value) {
      itk::EncapsulateMetaData<std::string>(tags, key, value);
    };
    set("0008|0016", "1.2.840.10008.5.1.4.1.1.4");  // MR Image Storage
    set("0008|0018", seriesUid + "." + std::to_string(k + 1));
    set("0008|0060", "MR");
    set("0028|0004", "MONOCHROME2");
    set("0018|0015", "HEAD ");  // DICOM pads to even length; the reader trims
    set("0020|000d", "1.2.826.0.1.3680043.2.1125.99.1");
    set("0020|000e", seriesUid);
    set("0020|0013", std::to_string(k + 1));

    auto io = itk::GDCMImageIO::New();
    io->KeepOriginalUIDOn();  // otherwise every file gets a fresh series UID
    auto writer = itk::ImageFileWriter<Image>::New();
    writer->SetImageIO(io);
    writer->SetInput(image);
    writer->SetFileName((dir / (prefix + std::to_string(k + 1) + ".dcm")).string());
    writer->Update();
  }
}

const std::string kSeriesA = "1.2.826.0.1.3680043.2.1125.99.1.1";
const std::string kSeriesB = "1.2.826.0.1.3680043.2.1125.99.1.2";

TEST(DicomSeries, SingleSeriesReadsWithGeometryAndTags) {
  TempDir dir;
  writeSeries(dir.path(), kSeriesA, 5, "a");
  const Volume v = readImage(dir.path());
  EXPECT_EQ(v.geometry.size, (std::array<int64_t, 3>{kColumns, kRows, 5}));
  EXPECT_NEAR(v.geometry.spacing[0], kPixelSpacing, 1e-6);
  EXPECT_NEAR(v.geometry.spacing[2], kSliceStep, 1e-6);
  EXPECT_NEAR(v.geometry.origin[0], -10.0, 1e-6);
  EXPECT_NEAR(v.geometry.origin[2], 30.0, 1e-6);
  EXPECT_EQ(v.modality, "MR");
  EXPECT_EQ(v.bodyPart, "HEAD");
  for (int k = 0; k < 5; ++k) EXPECT_EQ(v.at(3, 2, k), pixelValue(3, 2, k)) << "slice " << k;
}

TEST(DicomSeries, DirectoryWithoutDicomIsAnError) {
  TempDir dir;
  writeBytes(dir / "readme.txt", "no images here\n");
  const std::string msg = errorOf([&] { readImage(dir.path()); });
  EXPECT_NE(msg.find(dir.path().string() + ": no DICOM series found"), std::string::npos) << msg;
}

TEST(DicomSeries, TwoSeriesInOneDirectoryIsAnError) {
  TempDir dir;
  writeSeries(dir.path(), kSeriesA, 3, "a");
  writeSeries(dir.path(), kSeriesB, 2, "b");
  const std::string msg = errorOf([&] { readImage(dir.path()); });
  EXPECT_NE(msg.find(dir.path().string() + ": 2 DICOM series found; pass one series directory"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("series: " + kSeriesA + ", " + kSeriesB + ")"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(DicomSeries, OneFileReadsTheSeriesItBelongsTo) {
  TempDir dir;
  writeSeries(dir.path(), kSeriesA, 3, "a");
  writeSeries(dir.path(), kSeriesB, 2, "b");
  const Volume a = readImage(dir / "a2.dcm");
  EXPECT_EQ(a.geometry.size, (std::array<int64_t, 3>{kColumns, kRows, 3}));
  EXPECT_NEAR(a.geometry.origin[2], 30.0, 1e-6);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(a.at(1, 2, k), pixelValue(1, 2, k)) << "slice " << k;
  EXPECT_NE(a.source.find("DICOM series " + kSeriesA + ": 3 slices found in " + dir.path().string()), std::string::npos)
      << a.source;
  const Volume b = readImage(dir / "b1.dcm");
  EXPECT_EQ(b.geometry.size[2], 2);
  EXPECT_NE(b.source.find(kSeriesB + ": 2 slices"), std::string::npos) << b.source;
}

TEST(DicomSeries, NonDicomFileWithoutKnownEndingIsStillUnrecognised) {
  TempDir dir;
  writeBytes(dir / "notes.bin", std::string(200, 'x'));
  std::string msg = errorOf([&] { readImage(dir / "notes.bin"); });
  EXPECT_NE(msg.find("notes.bin: unrecognised image format"), std::string::npos) << msg;
  writeBytes(dir / "notes.dcm", std::string(200, 'x'));
  msg = errorOf([&] { readImage(dir / "notes.dcm"); });
  EXPECT_NE(msg.find("notes.dcm: not a readable DICOM file"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tessera::image
