#pragma once
// A site in front of the fake server: the server publishes a tiny generation 3 of task "brain",
// the site has two labelled cases and its state in a scratch folder, and trains on one thread
// (bit-identical reruns).

#include <sstream>

#include <gtest/gtest.h>

#include "FakeServer.h"
#include "TestModels.h"
#include "tessera/client/ClientConfig.h"
#include "tessera/nn/Runtime.h"

namespace tessera::test {

class FakeServerSiteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nn::setThreadCount(1);
    config.server = server.url();
    config.token = FakeServer::kSiteToken;
    config.task = "brain";
    config.home = home.path() / "state";
    writeCases(cases.path(), 2, 4);
  }

  model::Model base = tinyModel("brain", 3);
  FakeServer server{base};
  ScratchDir home, cases;
  client::ClientConfig config;
  std::ostringstream log;
};

}  // namespace tessera::test
