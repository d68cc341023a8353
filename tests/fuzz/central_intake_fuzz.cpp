// Fuzz target for everything central takes from the network: JSON records, sync-protocol
// responses, service.yml documents, the config file, and whole requests through the router
// (real SQLite in a temp dir). The first byte picks the intake; the rest is the input.
// Built with g++ into a replay driver (tests/fuzz/central_replay_main.cpp) that ctest runs on
// corpus/central_intake/ in every test run; with clang, -fsanitize=fuzzer builds a fuzzer.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "central/apply.hpp"
#include "central/config.hpp"
#include "central/router.hpp"
#include "elasticdns/protocol.hpp"
#include "elasticdns/validate.hpp"

using namespace elasticdns;
using namespace elasticdns::central;

namespace {

// One router over one database for the whole run; removed at exit.
struct RouterFixture {
  std::filesystem::path dir;
  std::unique_ptr<TopologyState> state;
  metrics::Registry registry;
  WatchRegistry watchers{16};
  std::unique_ptr<Router> router;

  RouterFixture() {
    dir = std::filesystem::temp_directory_path() / ("central-fuzz-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir);
    auto store = SqliteStore::open(dir.string(), Durability::kNormal, 64);
    if (!store) std::abort();
    auto s = TopologyState::load(std::move(store.value()), 64);
    if (!s) std::abort();
    state = std::move(s.value());
    router = std::make_unique<Router>(*state, watchers, Tokens{"admin", "agent"}, registry,
                                      [](std::function<void()> fn) { fn(); });
  }
  ~RouterFixture() {
    router.reset();
    state.reset();
    std::filesystem::remove_all(dir);
  }
};

RouterFixture& fixture() {
  static RouterFixture f;
  return f;
}

void fuzzJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return;
  (void)validate::parseServer(j);
  (void)validate::parseService(j);
  (void)validate::parseContainer(j);
  (void)validate::parseDatasource(j);
  (void)validate::parsePort(j);
  auto r = protocol::parseResponse(j);
  if (r && r->full) {
    // What central would send back for it must parse to the same topology.
    auto again =
        protocol::parseResponse(nlohmann::json::parse(protocol::writeFullResponse(r->topology)));
    if (!again || !(again->topology == r->topology)) std::abort();
  }
  if (r && !r->full) {
    model::Topology t;
    (void)protocol::applyChanges(t, r->changes, r->index);
  }
}

void fuzzRequest(uint8_t selector, const std::string& input) {
  static const char* kMethods[] = {"GET", "PUT", "DELETE", "POST"};
  auto nl = input.find('\n');
  Request req;
  req.method = kMethods[selector % 4];
  req.target = input.substr(0, nl);
  req.authorization = "Bearer admin";
  if (nl != std::string::npos) req.body = input.substr(nl + 1);
  auto& f = fixture();
  int calls = 0;
  auto id = f.router->handle(req, [&](Response r) {
    ++calls;
    if (r.status < 200 || r.status > 599) std::abort();
  });
  if (id) {
    f.router->cancelWatch(*id);
  } else if (calls != 1) {
    std::abort();  // every request is answered exactly once
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > kMaxBodyBytes) return 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      fuzzJson(input);
      break;
    case 1:
      (void)parseServiceYml(input);
      break;
    case 2:
      (void)parseConfig(input);
      break;
    case 3:
      fuzzRequest(static_cast<uint8_t>(data[0] / 4), input);
      break;
  }
  return 0;
}
