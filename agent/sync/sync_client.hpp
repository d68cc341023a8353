#pragma once
// Keeps the agent's topology in sync with central: long-poll, validate, then publish; the
// snapshot is persisted in state_dir so the agent can start while central is down.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "elasticdns/agent_report.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/model.hpp"

namespace elasticdns::agent {

struct SyncConfig {
  std::vector<std::string> urls;    // e.g. "http://127.0.0.1:8080"; failed over in order
  std::string token;                // the agent's read token (never logged)
  std::filesystem::path state_dir;  // holds topology.json; empty = no persistence
  std::chrono::seconds wait{30};    // long-poll duration asked of central
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{10'000};
  /// What the agent says about itself (server, version, eBPF, ...), asked before every poll and
  /// sent in the ElasticDNS-Agent header with the index served and the sync age filled in
  /// (central/README.md, "Agent reports"). Empty: no report. Runs on the client's io_context.
  std::function<report::AgentReport()> report;
};

class SyncClient {
 public:
  /// Called with every new validated snapshot, on the SyncClient's io_context.
  using OnSnapshot = std::function<void(std::shared_ptr<const model::Topology>)>;

  SyncClient(boost::asio::io_context& io, SyncConfig config, metrics::Registry& metrics,
             OnSnapshot on_snapshot);
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  /// Loads the persisted snapshot, if any and valid, and calls on_snapshot with it before
  /// returning; then starts polling central in the background.
  void start();
  /// Cancels the poll; on_snapshot is not called after stop() returns.
  void stop();
  /// When central last answered successfully (steady clock), or the epoch if never. The age of
  /// this drives serve-stale (Extended DNS Error 3). Safe from any thread.
  std::chrono::steady_clock::time_point lastContact() const;
  /// Index of the last published snapshot (0 = none). Safe from any thread.
  uint64_t index() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The steps of sync that need no network, exposed for tests.

enum class SyncOutcome : uint8_t {
  kPublished,  // a new snapshot to publish (`topology`)
  kUnchanged,  // central answered, nothing changed (a long-poll that timed out)
  kNeedFull,   // a delta that does not start at our index: ask for a full snapshot
  kRejected,   // the response or the snapshot it yields is invalid (`error`); keep the old one
};
struct SyncStep {
  SyncOutcome outcome = SyncOutcome::kRejected;
  std::shared_ptr<const model::Topology> topology;
  std::string error;
  bool full = false;  // central answered with a full snapshot (else a delta); unset if rejected
};
/// Decides what a GET /v1/topology response body means given the current snapshot (null =
/// none). Validates everything before building the new snapshot; `current` is never modified.
SyncStep applyTopologyResponse(const std::shared_ptr<const model::Topology>& current,
                               std::string_view body);
/// The agent's report for a poll: `base` with the index served and the age of the last
/// contact with central (`last_contact` zero: never; the age then counts from `started`).
report::AgentReport reportFor(report::AgentReport base, uint64_t index,
                              std::chrono::steady_clock::time_point last_contact,
                              std::chrono::steady_clock::time_point started,
                              std::chrono::steady_clock::time_point now);

}  // namespace elasticdns::agent
