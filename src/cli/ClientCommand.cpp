// `tessera client`: what a hospital site runs to take part in a federation.
//   tessera client pull | train [--cases DIR] [--unlabeled DIR] | push | status [--json]
// Settings: flags, then the config file (--config, default $TESSERA_HOME/client.json), then
// TESSERA_SERVER / TESSERA_TOKEN / TESSERA_HOME, then built-in defaults.

#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "ProgressReporter.h"
#include "tessera/client/CandidateScore.h"
#include "tessera/client/ClientConfig.h"
#include "tessera/client/PrivatePush.h"
#include "tessera/client/SiteKeys.h"
#include "tessera/client/SiteTrainer.h"
#include "tessera/common/Error.h"
#include "tessera/nn/Runtime.h"

namespace tessera::cli {

namespace {

struct ClientArgs {
  std::string server, token, task, configFile, home, caCert, pinSha256, serverKey;
  CLI::Option *serverOpt = nullptr, *tokenOpt = nullptr, *taskOpt = nullptr, *configOpt = nullptr,
              *homeOpt = nullptr, *caCertOpt = nullptr, *pinOpt = nullptr, *serverKeyOpt = nullptr;
  bool insecure = false, replaceKey = false;
  CLI::App* keygen = nullptr;
  CLI::App *pull = nullptr, *train = nullptr, *push = nullptr, *status = nullptr, *scoreCandidate = nullptr;
  std::string heldOut;
  std::string cases, unlabeled;
  nn::SemiSupervisedOptions semi;
  std::string fromPacs, pacsAet = "TESSERA";
  int epochs = 10;
  double learningRate = 2e-3;
  std::optional<int> replay;
  std::string replaySampling = "uniform";
  double labelSmoothing = 0.1;
  CLI::Option* learningRateOpt = nullptr;
  uint64_t seed = 1;
  int threads = 0;
  bool json = false;
  std::optional<double> dpClip, dpNoise;  // push: local differential privacy
};

std::optional<std::string> given(const CLI::Option* option, const std::string& value) {
  return option->count() > 0 ? std::optional<std::string>(value) : std::nullopt;
}

client::ClientConfig resolveConfig(const ClientArgs& a) {
  client::ConfigLayer flags;
  flags.server = given(a.serverOpt, a.server);
  flags.token = given(a.tokenOpt, a.token);
  flags.task = given(a.taskOpt, a.task);
  flags.home = given(a.homeOpt, a.home);
  flags.caCert = given(a.caCertOpt, a.caCert);
  flags.pinSha256 = given(a.pinOpt, a.pinSha256);
  flags.serverKey = given(a.serverKeyOpt, a.serverKey);
  client::ConfigLayer file;
  if (a.configOpt->count() > 0) {
    file = client::readConfigFile(a.configFile);
  } else if (const auto found = client::defaultConfigFile(flags.home)) {
    file = client::readConfigFile(*found);
  }
  client::ClientConfig config = client::mergeConfig(flags, file, client::configFromEnvironment());
  config.insecure = a.insecure;
  return config;
}

// Status values for people: "-" for unknown, numbers without JSON's trailing digits.
std::string orDash(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    std::ostringstream out;
    out << std::setprecision(4) << value.get<double>();
    return out.str();
  }
  return value.dump();
}

void printStatus(const nlohmann::json& s, std::ostream& out) {
  const auto& server = s["server"];
  out << "server   " << server.value("url", "");
  if (server.contains("name")) {
    out << ": signed in as " << server.value("name", "") << " (" << server.value("role", "") << ")";
  }
  if (server.contains("error")) out << ": " << server.value("error", "");
  out << "\n";
  if (s["task"].is_null()) {
    out << "task     - (pass --task NAME or set \"task\" in the client config)\n";
    return;
  }
  out << "task     " << orDash(s["task"]) << "\n";
  out << "latest   generation " << orDash(s["latest_generation"]) << " on the server\n";
  const auto& cache = s["cache"];
  std::string generations;
  for (const auto& g : cache["generations"]) generations += (generations.empty() ? "" : ", ") + g.dump();
  out << "cache    " << (generations.empty() ? "no generations" : "generation(s) " + generations) << " in "
      << cache.value("folder", "");
  if (cache["up_to_date"].is_boolean()) out << (cache["up_to_date"].get<bool>() ? " (up to date)" : " (run `tessera client pull`)");
  out << "\n";
  const auto& trained = s["trained"];
  if (trained.is_null()) {
    out << "trained  nothing yet (run `tessera client train --cases DIR`)\n";
    return;
  }
  if (trained.contains("error")) {
    out << "trained  " << trained.value("error", "") << "\n";
    return;
  }
  out << "trained  base generation " << orDash(trained["base_generation"]) << ", " << orDash(trained["samples"])
      << " samples, final loss " << orDash(trained["metrics"].value("final_loss", nlohmann::json())) << ", at "
      << orDash(trained["trained_at"]) << "\n";
  const auto& pushed = trained["pushed"];
  if (pushed.is_null()) {
    out << "pushed   not yet (run `tessera client push`)\n";
  } else {
    if (pushed.contains("secure_aggregation_round")) {
      out << "pushed   in secure-aggregation round " << orDash(pushed["secure_aggregation_round"]) << " at " << orDash(pushed["at"]);
    } else {
      out << "pushed   update " << orDash(pushed["update"]) << " at " << orDash(pushed["at"]);
    }
    if (pushed.contains("status")) out << ", " << orDash(pushed["status"]);
    if (pushed.contains("merged_into") && !pushed["merged_into"].is_null()) {
      out << " into generation " << orDash(pushed["merged_into"]);
    }
    if (pushed.contains("reason") && !pushed["reason"].is_null() && !orDash(pushed["reason"]).empty()) {
      out << " (" << orDash(pushed["reason"]) << ")";
    }
    out << "\n";
  }
}

}  // namespace

Action addClientCommand(CLI::App& app) {
  auto a = std::make_shared<ClientArgs>();
  app.require_subcommand(1);
  a->serverOpt = app.add_option("--server", a->server, "Federation server URL (default http://127.0.0.1:8470)");
  a->tokenOpt = app.add_option("--token", a->token, "This site's token (or TESSERA_TOKEN)");
  a->taskOpt = app.add_option("--task", a->task, "Model (task) to work on");
  a->configOpt = app.add_option("--config", a->configFile, "Client config JSON (default: $TESSERA_HOME/client.json if present)");
  a->homeOpt = app.add_option("--home", a->home, "Site state folder (default: $TESSERA_HOME or ~/.tessera)");
  a->caCertOpt = app.add_option("--ca-cert", a->caCert, "CA certificate (PEM) trusted for an https:// server");
  a->pinOpt = app.add_option("--pin-sha256", a->pinSha256,
                             "Accept only the server certificate with this SHA-256 of its DER encoding (openssl x509 "
                             "-noout -fingerprint -sha256), on top of the CA check");
  a->serverKeyOpt = app.add_option("--server-key", a->serverKey,
                                   "The server's Ed25519 public key (hex): generations must be signed with it (default: "
                                   "the key seen on first contact, pinned in the home folder)");
  app.add_flag("--insecure", a->insecure, "Allow plain http:// to a server on another machine (token and updates in clear)");

  a->pull = app.add_subcommand("pull", "Download the latest generation unless it is already cached");
  a->pull->add_option("--from-pacs", a->fromPacs,
                      "Take the generation from this PACS (AET@HOST:PORT or dicomweb+http(s)://…) instead of the server; "
                      "its weights are checked against the server's signed record (only its own SHA-256 when the server is away)");
  a->pull->add_option("--pacs-aet", a->pacsAet, "Our AE title towards --from-pacs")->capture_default_str();
  a->train = app.add_subcommand("train", "Fine-tune the newest pulled generation on this site's cases");
  a->train->add_option("--cases", a->cases, "Folder with images/NAME.nii.gz and labels/NAME.nii.gz");
  a->train->add_option("--unlabeled", a->unlabeled,
                       "Folder of images without labels (or its images/ subfolder): semi-supervised training on them "
                       "too (EMA teacher's confident pseudo-labels + consistency); with or without --cases");
  a->train->add_option("--confidence", a->semi.confidence,
                       "With --unlabeled: the teacher's class probability a voxel needs to be pseudo-labelled")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  a->train->add_option("--consistency-weight", a->semi.consistencyWeight,
                       "With --unlabeled: weight of the consistency term (student vs teacher on two intensity perturbations)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  a->train->add_option("--teacher-decay", a->semi.teacherDecay,
                       "With --unlabeled: the EMA teacher's decay per optimisation step")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  a->train->add_option("--epochs", a->epochs, "Passes over the cases")->capture_default_str()->check(CLI::Range(1, 100000));
  a->learningRateOpt = a->train->add_option("--learning-rate", a->learningRate,
                                            "Adam's initial learning rate (decays over the epochs; with --replay "
                                            "default 5e-4)")
      ->capture_default_str()
      ->check(CLI::Range(1e-7, 1.0));
  a->train->add_option("--replay", a->replay,
                       "Continual learning: learn only the cases accepted since the last learning (CASEDIR/learned.json), "
                       "rehearsing up to N earlier ones")
      ->check(CLI::Range(0, 100000));
  a->train->add_option("--replay-sampling", a->replaySampling, "With --replay: uniform, recent or stratified (by time)")
      ->capture_default_str();
  a->train->add_option("--label-smoothing", a->labelSmoothing, "With --replay: label smoothing of the targets")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  a->train->add_option("--seed", a->seed, "Random seed (shuffling, augmentation)")->capture_default_str();
  a->train->add_option("--threads", a->threads, "Compute threads (default: all cores)");
  a->push = app.add_subcommand("push", "Send the trained model's difference to its base generation to the server; when the task's policy "
                                       "says secure_aggregation, take part in a secure-aggregation round instead (the server learns only "
                                       "the round's sum; the push waits, printing each step, until the round publishes or aborts)");
  a->push->add_option("--dp-clip", a->dpClip, "Local DP: clip the delta to this L2 norm before adding noise");
  a->push->add_option("--dp-noise", a->dpNoise, "Local DP: noise multiplier z (Gaussian noise of std z * clip per parameter)");
  a->keygen = app.add_subcommand("keygen", "Make this site's Ed25519 key pair (home/site-key); push signs with it from then on");
  a->keygen->add_flag("--replace", a->replaceKey, "Replace an existing key (the operator must register the new one)");
  a->status = app.add_subcommand("status", "Show the server, the cached generations and what is waiting to be pushed");
  a->status->add_flag("--json", a->json, "Print the status as JSON");
  a->scoreCandidate = app.add_subcommand(
      "score-candidate",
      "The site gate: score the candidate generation the server holds back, and the generation it would replace, on "
      "this site's held-out corrected cases and report both Dice to the server (nothing to do when none is pending)");
  a->scoreCandidate->add_option("--held-out", a->heldOut, "Held-out corrected cases (images/ + labels/), never trained on")
      ->required();
  a->scoreCandidate->add_option("--threads", a->threads, "Compute threads (default: all cores)");
  a->scoreCandidate->add_flag("--json", a->json, "Print the result as JSON");
  // The common options may also follow the sub-command: `tessera client pull --task brain`.
  for (CLI::App* sub : {a->pull, a->train, a->push, a->status, a->keygen, a->scoreCandidate}) sub->fallthrough();

  return [a] {
    const client::ClientConfig config = resolveConfig(*a);
    if (a->keygen->parsed()) {
      const std::string key = client::createSiteKey(config.home, a->replaceKey);
      std::cerr << "wrote " << client::siteKeyFile(config.home).string() << " (secret, mode 0600) and its .pub; register the "
                << "public key with the server operator: tessera server admin set-site-key --site NAME --public-key KEY\n";
      std::cout << key << "\n";
      return 0;
    }
    if (a->pull->parsed()) {
      const auto r = a->fromPacs.empty() ? client::pull(config, std::cerr)
                                         : client::pullFromPacs(config, a->fromPacs, a->pacsAet, std::cerr);
      std::cout << config.task << " generation " << r.generation << ": " << r.path.string()
                << (r.downloaded ? " (downloaded)" : " (already cached)") << "\n";
    } else if (a->train->parsed()) {
      nn::setThreadCount(a->threads);
      client::SiteTrainOptions options;
      options.casesDir = a->cases;
      options.unlabeledDir = a->unlabeled;
      options.semiSupervised = a->semi;
      options.epochs = a->epochs;
      options.learningRate = a->learningRate;
      options.seed = a->seed;
      if (a->replay) {
        options.replay = a->replay;
        options.replaySampling = interactive::replaySamplingFromName(a->replaySampling);
        options.labelSmoothing = a->labelSmoothing;
        if (a->learningRateOpt->count() == 0) options.learningRate = interactive::ContinualOptions{}.learningRate;
      }
      client::TrainResult r;
      {
        // Scoped so the progress line is finished before the summary is printed.
        ProgressReporter progress("train");
        options.onEpoch = [&progress](const nn::TrainProgress& p) { progress(p); };
        r = client::train(config, options, std::cerr);
      }
      std::ostringstream summary;
      summary << "wrote " << r.modelPath.string() << " (base generation " << r.baseGeneration << ", " << r.cases
              << " case(s), " << r.samples << " samples, final loss " << r.finalLoss << ", "
              << formatDuration(r.seconds) << (r.keptLocalNormalization ? ", local normalisation kept" : "")
              << ")";
      if (r.unlabeledImages > 0) {
        summary << "; " << r.unlabeledImages << " unlabeled image(s), " << r.pseudoLabelledVoxels << " of "
                << r.unlabeledVoxels << " voxels pseudo-labelled in the last epoch";
      }
      if (a->replay) {
        summary << "; learned " << r.learned.size() << " new case(s), replayed " << r.replayed.size();
        for (const auto& d : r.dice) summary << "; " << d.name << " Dice " << d.before << " -> " << d.after;
      }
      summary << "; next: tessera client push\n";
      std::cout << summary.str();
    } else if (a->push->parsed()) {
      if (a->dpClip.has_value() != a->dpNoise.has_value())
        throw Error(ErrorCode::Config, "--dp-clip and --dp-noise: give both for a differentially private push, or neither");
      std::optional<federation::DpParameters> dp;
      if (a->dpClip) dp = federation::DpParameters{*a->dpClip, *a->dpNoise};
      const auto answer = client::pushWithPrivacy(config, std::cerr, dp);
      if (answer.contains("round")) {
        std::cout << "pushed through secure-aggregation round " << orDash(answer["round"]) << " for " << config.task << ": "
                  << orDash(answer.value("state", nlohmann::json())) << ", generation " << orDash(answer.value("generation", nlohmann::json()))
                  << "\n";
      } else {
        std::cout << "pushed update " << orDash(answer.value("update", nlohmann::json())) << " for " << config.task
                  << " (" << answer.value("status", "queued") << ")\n";
      }
    } else if (a->scoreCandidate->parsed()) {
      nn::setThreadCount(a->threads);
      const auto r = client::scoreCandidate(config, a->heldOut, std::cerr);
      if (a->json) {
        std::cout << nlohmann::json{{"pending", r.pending}, {"reported", r.reported}, {"base_generation", r.baseGeneration},
                                    {"dice_current", r.diceCurrent}, {"dice_candidate", r.diceCandidate}, {"cases", r.cases}}
                         .dump(2)
                  << "\n";
      } else if (!r.pending) {
        std::cout << "no candidate of " << config.task << " is waiting for site scores\n";
      } else {
        std::cout << config.task << " candidate on generation " << r.baseGeneration << ": Dice " << std::fixed
                  << std::setprecision(4) << r.diceCandidate << " against " << r.diceCurrent << " now, on " << r.cases
                  << " held-out case(s); " << (r.reported ? "reported to the server" : "NOT reported") << "\n";
      }
    } else if (a->status->parsed()) {
      const auto s = client::status(config);
      if (a->json) {
        std::cout << s.dump(2) << "\n";
      } else {
        printStatus(s, std::cout);
      }
      // Scripts and monitoring read the exit status: a server that could not be asked is a failure.
      const auto& server = s.at("server");
      if (server.contains("error_code")) return exitStatus(codeFromName(server.at("error_code").get<std::string>()));
    }
    return 0;
  };
}

}  // namespace tessera::cli
