#pragma once
// Docker discovery: the agent watches the local Docker engine (its API on a unix socket, the
// /events stream) and keeps central's containers of this server in step with the containers
// that carry the labels `elasticdns.service` and `elasticdns.version`:
//   started   → PUT /v1/containers/{id}, state running, address from its network settings
//   died      → PUT the same record with state draining (left out of answers at once)
//   destroyed → DELETE /v1/containers/{id}
// Every (re)connection to Docker first reconciles: Docker's labelled containers against what
// central holds for this server, so nothing is missed while the agent or Docker was down.
// The events stream is opened before the listing, so an event that happens during the
// reconciliation is read after it (every write is idempotent).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json_fwd.hpp>

#include "agent/ops/docker_config.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/model.hpp"
#include "elasticdns/result.hpp"

namespace elasticdns::agent {

constexpr std::string_view kDockerServiceLabel = "elasticdns.service";
constexpr std::string_view kDockerVersionLabel = "elasticdns.version";
/// Engine API version asked for: Docker 20.10 (Debian 12's docker.io) speaks 1.41, and every
/// later engine still serves it.
constexpr std::string_view kDockerApiVersion = "v1.41";
constexpr size_t kMaxDockerEventLine = 64 * 1024;  // one event is ~1 KiB; bounds a bad stream

/// What Docker says about one labelled container.
struct ObservedContainer {
  std::string id;
  bool running = false;
  /// The record to register: service and version from the labels, server = this host,
  /// address(es) from the network settings. Absent when the container has no address (it is
  /// stopped, or has no network); a running container without one is an error instead.
  std::optional<model::Container> record;
};

/// Reads GET /containers/{id}/json. nullopt when the container does not carry both labels;
/// an Error when a label is not a valid service/version name, or a running container has no
/// address on any network.
Result<std::optional<ObservedContainer>> observeContainer(const nlohmann::json& inspect,
                                                          const std::string& server,
                                                          const std::vector<std::string>& networks);

struct DockerEvent {
  enum class Action : uint8_t { kStart, kDie, kDestroy, kOther };
  Action action = Action::kOther;
  std::string id;
};

/// Parses one line of GET /events (a JSON object). Events of other types or actions come back
/// as kOther.
Result<DockerEvent> parseDockerEvent(std::string_view line);

/// The writes that make central's containers of this server match Docker.
struct ReconcilePlan {
  std::vector<model::Container> put;
  std::vector<std::string> remove;
  bool operator==(const ReconcilePlan&) const = default;
};

/// `docker`: every labelled container Docker has (running or not). `central`: central's
/// containers whose server is this host, by id. Running containers are put when central's
/// record differs; stopped ones that central still has as running are put as draining;
/// central's containers that Docker no longer has are removed.
ReconcilePlan planReconcile(const std::vector<ObservedContainer>& docker,
                            const std::map<std::string, model::Container>& central);

/// Where and how Docker discovery writes.
struct DockerDiscoveryOptions {
  DockerConfig docker;
  std::string server;                     // this host's server name in the topology
  std::vector<std::string> central_urls;  // "http://host:port", tried in order
  std::string token;                      // this server's agent token (never logged)
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds request_timeout{10'000};  // one HTTP exchange, Docker or central
};

/// Runs on the given io_context (it never blocks it). Counts in `metrics`:
/// elasticdns_docker_events_total, elasticdns_docker_writes_total{result},
/// elasticdns_docker_reconciles_total, elasticdns_docker_errors_total and the gauge
/// elasticdns_docker_connected (1 while the events stream is open and reconciled).
class DockerDiscovery {
 public:
  DockerDiscovery(boost::asio::io_context& io, DockerDiscoveryOptions options,
                  metrics::Registry& metrics);
  ~DockerDiscovery();
  DockerDiscovery(const DockerDiscovery&) = delete;
  DockerDiscovery& operator=(const DockerDiscovery&) = delete;

  /// Starts watching; on any error it reconnects with backoff and reconciles again.
  void start();
  /// Stops watching; safe from any thread. No write is started after it returns.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elasticdns::agent
