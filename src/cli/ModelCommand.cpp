// `tessera model to-dicom|from-dicom`: a model file as a DICOM object for a PACS and back.

#include <iostream>

#include "Commands.h"
#include "tessera/dicom/DicomModelCodec.h"
#include "tessera/dicom/DicomUids.h"
#include "tessera/model/Model.h"

namespace tessera::cli {

Action addModelCommand(CLI::App& app) {
  struct Args {
    CLI::App* toDicom = nullptr;
    CLI::App* fromDicom = nullptr;
    std::string in, out;
  };
  auto a = std::make_shared<Args>();
  app.require_subcommand(1);
  a->toDicom = app.add_subcommand("to-dicom", "Write a model as a DICOM Raw Data object a PACS stores and indexes");
  a->toDicom->add_option("MODEL", a->in, "Model file (.tsm)")->required();
  a->toDicom->add_option("--out", a->out, "DICOM file to write (.dcm)")->required();
  a->fromDicom = app.add_subcommand("from-dicom", "Read a Tessera model DICOM object back into a model file");
  a->fromDicom->add_option("DICOM", a->in, "DICOM model object (.dcm)")->required();
  a->fromDicom->add_option("--out", a->out, "Model file to write (.tsm)")->required();
  return [a] {
    if (a->toDicom->parsed()) {
      const auto model = model::loadModel(a->in);
      dicom::saveModelDicom(model, a->out);
      std::cout << a->out << ": task " << model.task.name << ", generation " << model.generation << ", series "
                << dicom::modelSeriesUid(model.task.name, model.generation) << "\n";
    } else {
      const auto model = dicom::loadModelDicom(a->in);
      model::saveModel(model, a->out);
      std::cout << a->out << ": task " << model.task.name << ", generation " << model.generation << ", weights SHA-256 "
                << model.weightsSha256() << "\n";
    }
    return 0;
  };
}

}  // namespace tessera::cli
