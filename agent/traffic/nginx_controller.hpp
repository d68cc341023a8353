#pragma once
// Keeps nginx's configuration in step with the topology (agent/README.md, "Traffic
// distribution"). Every snapshot is rendered; only a text that differs from the installed one
// goes further: written as a candidate, checked with `nginx -t` (a test configuration that
// includes the candidates), then moved in place, nginx's main configuration checked with them
// (else the last good files go back), and nginx reloaded. A candidate that fails the
// check is kept in the work directory as failed-*.conf, logged once and counted; the installed
// files stay and nginx keeps serving them.
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/traffic/render.hpp"
#include "agent/traffic/traffic_config.hpp"
#include "elasticdns/metrics.hpp"
#include "elasticdns/model.hpp"

namespace elasticdns::agent {

enum class TrafficOutcome : uint8_t {
  kUnchanged,     // the rendered text is the installed one
  kInstalled,     // new files in place and nginx reloaded
  kRejected,      // nginx -t failed: the candidate is kept as failed-*.conf, nothing changed
  kReloadFailed,  // the files are in place but the reload failed (retried on the next update)
  kWriteFailed,   // a file could not be written
};

struct TrafficSettings {
  TrafficConfig config;
  std::string domain;
  std::string resolver;  // ADDR:PORT; the config's, else the agent's first listen address
  std::filesystem::path work_dir;
};

/// The render options of `settings`: certificates looked up in cert_dir, the self-signed one
/// in the work directory as the fallback.
RenderOptions renderOptionsOf(const TrafficSettings& settings);

class NginxController {
 public:
  NginxController(TrafficSettings settings, metrics::Registry& metrics);
  ~NginxController();
  NginxController(const NginxController&) = delete;
  NginxController& operator=(const NginxController&) = delete;

  /// Starts the thread that applies updates (nginx -t and reloads never block the caller).
  void start();
  /// Hands over the newest topology; any thread. Updates that arrive while one is applied are
  /// coalesced: only the latest is applied next.
  void update(std::shared_ptr<const model::Topology> topology);
  /// Applies the last topology again, also a candidate nginx rejected before (after a fix of
  /// the certificates in cert_dir, say); any thread. The agent calls it on SIGHUP.
  void recheck();
  /// Stops the thread (an update in progress finishes first).
  void stop();

  /// One step on the calling thread: render, and if the text changed, check, swap, reload.
  TrafficOutcome apply(const model::Topology& topology);

  /// How many configurations nginx has taken since start (0: none yet); any thread. The agent
  /// reports it to central.
  uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }

 private:
  struct Metrics;
  void run();
  bool ensureSelfSigned();
  TrafficOutcome install(const RenderedTraffic& r, uint64_t index);
  void keepRejected(const RenderedTraffic& r);
  bool reload(std::string& error);
  /// nginx -t of main_conf with the new files in place: "" when it passes, else nginx's words.
  std::string checkMainConfig();

  const TrafficSettings settings_;
  std::unique_ptr<Metrics> metrics_;
  std::string installed_http_, installed_stream_;
  std::string failed_http_, failed_stream_;  // the last rejected candidate (logged once)
  std::vector<std::string> warned_;          // the last warnings logged
  bool reload_pending_ = false;
  std::atomic<uint64_t> generation_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const model::Topology> next_;
  std::shared_ptr<const model::Topology> last_;  // the last one applied
  bool retry_failed_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace elasticdns::agent
