#include "DcmtkSupport.h"

#include <mutex>

#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcdicent.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/oflog/oflog.h"

#include "tessera/dicom/DicomModelCodec.h"

namespace tessera::dicom::detail {

void ensureTesseraDictionary() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK logs its findings on stderr; ours reach users as one-line errors instead.
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    struct Entry {
      Uint16 element;
      DcmEVR vr;
      const char* name;
    };
    const Entry entries[] = {{0x01, EVR_LO, "TesseraFormat"},        {0x02, EVR_UT, "TesseraNetworkSpec"},
                             {0x03, EVR_UT, "TesseraPreprocessing"}, {0x04, EVR_UT, "TesseraTask"},
                             {0x05, EVR_IS, "TesseraGeneration"},    {0x06, EVR_IS, "TesseraParentGeneration"},
                             {0x07, EVR_LO, "TesseraWeightsSHA256"}, {0x08, EVR_IS, "TesseraParameterCount"},
                             {0x10, EVR_OB, "TesseraWeights"}};
    DcmDataDictionary& dict = dcmDataDict.wrlock();
    for (const auto& e : entries) {
      // Private entries are keyed by the element's low byte and the creator, as in private.dic.
      dict.addEntry(new DcmDictEntry(kPrivateGroup, e.element, DcmVR(e.vr), e.name, 1, 1, "private", OFTrue,
                                     kPrivateCreator));
    }
    dcmDataDict.wrunlock();
  });
}

std::string writePart10(DcmFileFormat& file) {
  std::string out;
  std::string buffer(1 << 20, '\0');
  DcmOutputBufferStream stream(buffer.data(), buffer.size());
  file.transferInit();
  OFCondition cond = EC_StreamNotifyClient;
  while (cond == EC_StreamNotifyClient) {
    cond = file.write(stream, EXS_LittleEndianExplicit, EET_ExplicitLength, nullptr);
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    out.append(static_cast<const char*>(data), static_cast<size_t>(length));
  }
  file.transferEnd();
  if (cond.bad()) throw Error(ErrorCode::Internal, std::string("DICOM encoding failed: ") + cond.text());
  return out;
}

std::unique_ptr<DcmFileFormat> readPart10(std::string_view bytes, const std::string& source, ErrorCode code) {
  ensureTesseraDictionary();
  if (bytes.size() < 132 || bytes.substr(128, 4) != "DICM") {
    throw Error(code, source + ": not a DICOM Part 10 file (no 'DICM' after the 128-byte preamble)");
  }
  auto file = std::make_unique<DcmFileFormat>();
  DcmInputBufferStream stream;
  stream.setBuffer(bytes.data(), static_cast<offile_off_t>(bytes.size()));
  stream.setEos();
  file->transferInit();
  const OFCondition cond = file->read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
  file->transferEnd();
  if (cond.bad() || cond == EC_StreamNotifyClient) {
    const std::string why = cond == EC_StreamNotifyClient ? "data ends early (truncated)" : cond.text();
    throw Error(code, source + ": cannot be read as DICOM: " + why);
  }
  return file;
}

std::string stringValue(DcmItem& item, const DcmTagKey& key) {
  DcmElement* element = nullptr;
  if (item.findAndGetElement(key, element).bad() || element == nullptr) return {};
  std::string value;
  if (element->isaString()) {
    OFString text;
    if (element->getOFStringArray(text, OFFalse).bad()) return {};
    value.assign(text.c_str(), text.length());
  } else {
    // A VR the reader did not know (UN): the raw value bytes.
    Uint8* data = nullptr;
    if (element->getUint8Array(data).bad() || data == nullptr) return {};
    value.assign(reinterpret_cast<const char*>(data), element->getLength());
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.pop_back();
  return value;
}

}  // namespace tessera::dicom::detail
