#pragma once
// Central's HTTP API as a function: the Router maps a parsed request to a response without
// touching a socket (tests call it directly). http_server.hpp carries requests to it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "central/agent_reports.hpp"
#include "central/agent_tokens.hpp"
#include "central/config.hpp"
#include "central/state.hpp"
#include "central/watch.hpp"
#include "elasticdns/metrics.hpp"

namespace elasticdns::central {

constexpr int kMaxJsonDepth = 64;  // records are 3 levels deep; bounds recursive JSON code

struct Request {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query, as sent
  std::string authorization;
  std::string body;
  std::string agent_report;  // the ElasticDNS-Agent header (elasticdns/agent_report.hpp)
};

/// Every response carries these (http_server.cpp): the dashboard's strict policy (scripts and
/// styles from central's own /ui files only, no inline code, no other origin), and no caching
/// of API answers.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

constexpr size_t kMaxStatusWatchers = 1'000;  // dashboards and `rollout status --wait`s

/// The query of a long-poll: `SINCE=N&wait=D`, both optional, wait only with SINCE (`index`
/// for the topology, `generation` for the status).
struct LongPollQuery {
  std::optional<uint64_t> since;
  std::optional<std::chrono::milliseconds> wait;
};
Result<LongPollQuery> parseLongPollQuery(std::string_view query, std::string_view since_name);

struct RouterOptions {
  std::chrono::milliseconds agent_report_ttl = kDefaultAgentReportTtl;
};

struct Response {
  unsigned status = 200;
  std::shared_ptr<const std::string> body;             // null: empty body
  std::string_view content_type = "application/json";  // static text: no copy per response
  std::vector<std::pair<std::string, std::string>> headers;
};

using Responder = std::function<void(Response)>;

/// Bearer tokens. Admin may read and write; agent may read. An empty token matches nothing.
/// A per-server agent token reads, and writes the containers of its own server and its own
/// server's wireguard (PUT /v1/servers/{its server}/wireguard).
struct Tokens {
  std::string admin;
  std::string agent;
  AgentTokens servers = {};  // per-server agent tokens (agent_tokens.hpp)
};

class Router {
 public:
  using Clock = WatchRegistry::Clock;
  /// Runs a function later on the same thread (io_context post); used to group the writes
  /// that arrive together into one commit. Tests may run it at once.
  using Post = std::function<void(std::function<void()>)>;

  Router(TopologyState& state, WatchRegistry& watchers, Tokens tokens, metrics::Registry& registry,
         Post post, RouterOptions options = {});

  /// Handles one request. `done` is called exactly once: at once, after the commit of a
  /// write, or when a long-poll is woken or expires. Returns the watcher id when the request
  /// became a long-poll (the caller cancels it with cancelWatch if the client goes away).
  std::optional<uint64_t> handle(const Request& req, Responder done);
  void cancelWatch(uint64_t id);
  /// Answers the long-polls whose deadline passed.
  void expireWatchers(Clock::time_point now);
  std::optional<Clock::time_point> nextWatchDeadline() const;
  metrics::Registry& metrics() { return registry_; }
  /// The state took commits from elsewhere (another replica's, through the store's watch) or
  /// was reloaded: wakes the long-polls and plans again the writes that lost a race to them.
  void storeAdvanced();
  /// The store stopped or started answering: writes waiting to be planned again fail (503)
  /// when it stopped.
  void storeHealthChanged(bool healthy);
  /// Plans again the writes that lost a race, also when no commit arrived (called on the
  /// store's heartbeat): each gets a bounded number of attempts.
  void retryConflicted();

  /// Body of an error response: {"error":{"field":...,"reason":...}}.
  static std::string errorBody(const Error& e);

 private:
  struct Pending {
    std::vector<WriteItem> items;
    Responder done;
    std::string what;  // for the response
    int attempts = 0;  // commits lost to another replica's
  };
  enum class Access { kNone, kRead, kWrite };

  Access authorize(const Request& req) const;
  std::optional<uint64_t> getTopology(const Request& req, const std::string& query,
                                      const std::string* scope, Responder& done);
  // router_status.cpp: agent reports, GET /v1/agents, GET /v1/status, the /ui files.
  // The report of the agent behind `req`, if it sent one: recorded, and its server in
  // `server`; or why not (400 malformed, 403 another server's token; in `status`).
  std::optional<Error> recordReport(const Request& req, const std::string* scope, unsigned& status,
                                    std::string& server);
  void getAgents(Responder& done);
  std::optional<uint64_t> getStatus(const std::string& query, Responder& done);
  void serveUi(std::string_view path, const std::string& method, Responder& done);
  std::shared_ptr<const std::string> statusBody();
  uint64_t statusGeneration() const { return state_.index() + reports_.generation(); }
  void notifyStatus();
  void scheduleStatusNotify();
  void registerAgentMetrics();
  // POST /v1/apply: a put of every service of the service.yml in the body.
  static Result<std::vector<WriteItem>> serviceYmlWrites(const Request& req);
  // PUT or DELETE of the record `key` of `kind`: the write, or why it is a bad request.
  static Result<WriteItem> recordWrite(const Request& req, protocol::RecordKind kind,
                                       const std::string& key);
  // PUT or DELETE /v1/servers/{server}/wireguard: the write, or why it is a bad request.
  static Result<WriteItem> wireGuardWrite(const Request& req, const std::string& server);
  void enqueue(std::vector<WriteItem> items, Responder done);
  void flush();
  void notifyWatchers();
  // The ElasticDNS-Stale header on a topology answer while the store is out of reach.
  void markStale(Response& r) const;
  // 503 for a write while the store is out of reach; true when it was refused.
  bool refuseWhileStale(Responder& done);
  std::shared_ptr<const std::string> bodySince(uint64_t since);
  void reply(Responder& done, unsigned status, std::string body);
  void replyBadMethod(Responder& done, const char* allow);  // 405 with Allow
  void replyMetrics(Responder& done);

  TopologyState& state_;
  WatchRegistry& watchers_;
  Tokens tokens_;
  metrics::Registry& registry_;
  Post post_;
  std::vector<Pending> pending_;
  bool flush_scheduled_ = false;
  // Writes that lost a race to another replica's commit: planned again once it is in memory.
  std::vector<Pending> conflicted_;
  AgentReports reports_;
  WatchRegistry status_watchers_;
  bool status_notify_scheduled_ = false;

  metrics::Counter* responses_2xx_;
  metrics::Counter* responses_4xx_;
  metrics::Counter* responses_5xx_;
  metrics::Counter* auth_failures_;
  metrics::Counter* writes_;
  metrics::Counter* changes_;
  metrics::Counter* watchers_rejected_;
  metrics::Counter* conflicts_;
  metrics::Counter* watchers_woken_;
  metrics::Histogram* commit_seconds_;
  metrics::Histogram* batch_size_;
  metrics::Histogram* fanout_seconds_;
};

}  // namespace elasticdns::central
