// `tessera privacy`: the RDP accountant as a planning tool. What ε does a study with this noise,
// sampling rate and number of rounds spend, and what noise does a target ε need?

#include <cstdio>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "Commands.h"
#include "tessera/common/Error.h"
#include "tessera/federation/RdpAccountant.h"

namespace tessera::cli {

namespace {

std::vector<double> parseOrders(const std::string& text) {
  std::vector<double> orders;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      throw Error(ErrorCode::BadRequest, "--orders: '" + item + "' is not a number (give e.g. 2,4,8,16,32)");
    orders.push_back(value);
  }
  if (orders.empty()) throw Error(ErrorCode::BadRequest, "--orders: no order given");
  return orders;  // each is checked (> 1, finite) by the accountant
}

federation::RdpConversion conversionFromName(const std::string& name) {
  return name == "classic" ? federation::RdpConversion::Classic : federation::RdpConversion::Balle;
}

}  // namespace

Action addPrivacyCommand(CLI::App& app) {
  struct Args {
    double sigma = 0, q = 1, delta = 1e-5, epsilon = 0;
    uint64_t steps = 0;
    std::string orders, conversion = "balle";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  app.require_subcommand(1);
  auto common = [a](CLI::App* sub) {
    sub->add_option("--q", a->q, "Sampling rate: the fraction of sites (or records) taking part in each step; 1 = all")
        ->check(CLI::Range(0.0, 1.0));
    sub->add_option("--steps", a->steps, "Number of steps (rounds)")->required()->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
    sub->add_option("--delta", a->delta, "Target δ")->required()->check(CLI::Range(1e-300, 0.999999));
    sub->add_option("--orders", a->orders, "RDP orders, comma-separated (default: Opacus' 1.1…10.9, 12…63)");
    sub->add_option("--conversion", a->conversion, "RDP → (ε, δ): balle (Balle et al. 2020, tighter) or classic")
        ->check(CLI::IsMember({"balle", "classic"}));
    sub->add_flag("--json", a->json, "Print one JSON object");
  };
  auto* eps = app.add_subcommand("epsilon", "ε spent by STEPS steps of the subsampled Gaussian mechanism");
  eps->add_option("--sigma", a->sigma, "Noise multiplier σ (noise std / clipping norm)")->required();
  common(eps);
  auto* sig = app.add_subcommand("sigma", "The smallest noise multiplier σ that keeps ε at or below a target");
  sig->add_option("--epsilon", a->epsilon, "Target ε")->required();
  common(sig);

  return [a, eps] {
    const auto orders = a->orders.empty() ? federation::defaultRdpOrders() : parseOrders(a->orders);
    const auto conversion = conversionFromName(a->conversion);
    if (eps->parsed()) {
      const auto spent = federation::epsilonOf(a->sigma, a->q, a->steps, a->delta, conversion, orders);
      if (a->json) {
        std::cout << nlohmann::json{{"epsilon", spent.epsilon}, {"best_order", spent.bestOrder}, {"sigma", a->sigma},
                                    {"q", a->q}, {"steps", a->steps}, {"delta", a->delta},
                                    {"conversion", a->conversion}}
                         .dump()
                  << "\n";
      } else {
        std::printf("epsilon %.6g at delta %.3g (best RDP order %g, %s conversion)\n", spent.epsilon, a->delta,
                    spent.bestOrder, a->conversion.c_str());
      }
      return 0;
    }
    const double sigma = federation::noiseMultiplierFor(a->epsilon, a->delta, a->q, a->steps, conversion, orders);
    const auto spent = federation::epsilonOf(sigma, a->q, a->steps, a->delta, conversion, orders);
    if (a->json) {
      std::cout << nlohmann::json{{"sigma", sigma}, {"epsilon", spent.epsilon}, {"best_order", spent.bestOrder},
                                  {"target_epsilon", a->epsilon}, {"q", a->q}, {"steps", a->steps},
                                  {"delta", a->delta}, {"conversion", a->conversion}}
                       .dump()
                << "\n";
    } else {
      std::printf("sigma %.6g gives epsilon %.6g at delta %.3g (best RDP order %g, %s conversion)\n", sigma,
                  spent.epsilon, a->delta, spent.bestOrder, a->conversion.c_str());
    }
    return 0;
  };
}

}  // namespace tessera::cli
