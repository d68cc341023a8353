#include "central/router.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "central/apply.hpp"
#include "elasticdns/text.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;
using protocol::ChangeOp;
using protocol::RecordKind;

// Compares without an early exit, so the time taken does not reveal a token's prefix.
bool tokenEquals(std::string_view given, const std::string& expected) {
  if (expected.empty() || given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;  // path starts with '/'
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

// Deepest nesting of JSON arrays/objects, ignoring brackets inside strings. Stops counting
// past `limit`.
int jsonDepth(std::string_view s, int limit) {
  int depth = 0, max = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max) max = depth;
      if (max > limit) return max;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max;
}

Result<json> parseBody(const std::string& body) {
  if (body.empty()) return Error{"body", "a JSON object is required"};
  if (jsonDepth(body, kMaxJsonDepth) > kMaxJsonDepth) return Error{"body", "nested too deeply"};
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return Error{"body", "not valid JSON"};
  if (!j.is_object()) return Error{"body", "must be a JSON object"};
  return j;
}

std::string okBody(uint64_t index, uint64_t changes) {
  return json{{"index", index}, {"changes", changes}}.dump();
}

std::optional<uint64_t> parseIndex(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 20) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<LongPollQuery> parseLongPollQuery(std::string_view rest, std::string_view since_name) {
  LongPollQuery q;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    auto eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
    if (name == since_name && !q.since) {
      q.since = parseIndex(value);
      if (!q.since) return Error{std::string(since_name), "must be a non-negative integer"};
    } else if (name == "wait" && !q.wait) {
      auto parsed = text::parseDuration(value);
      if (!parsed) return Error{"wait", "must be a duration like 500ms, 30s or 5m"};
      q.wait = parsed.value();
    } else {
      return Error{"query", "unknown or repeated parameter '" + std::string(name) + "'"};
    }
  }
  if (q.wait && !q.since) return Error{"wait", "needs " + std::string(since_name)};
  return q;
}

std::string Router::errorBody(const Error& e) {
  return json{{"error", {{"field", e.field}, {"reason", e.reason}}}}.dump();
}

Router::Router(TopologyState& state, WatchRegistry& watchers, Tokens tokens,
               metrics::Registry& registry, Post post, RouterOptions options)
    : state_(state),
      watchers_(watchers),
      tokens_(std::move(tokens)),
      registry_(registry),
      post_(std::move(post)),
      reports_(options.agent_report_ttl),
      status_watchers_(kMaxStatusWatchers) {
  const char* kResponses = "elasticdns_central_http_responses_total";
  const char* kResponsesHelp = "HTTP responses sent, by status class";
  responses_2xx_ = &registry.counter(kResponses, kResponsesHelp, "code=\"2xx\"");
  responses_4xx_ = &registry.counter(kResponses, kResponsesHelp, "code=\"4xx\"");
  responses_5xx_ = &registry.counter(kResponses, kResponsesHelp, "code=\"5xx\"");
  auth_failures_ = &registry.counter("elasticdns_central_auth_failures_total",
                                     "Requests refused for a missing or wrong token");
  writes_ = &registry.counter("elasticdns_central_writes_total", "Writes committed");
  changes_ = &registry.counter("elasticdns_central_changes_total",
                               "Changes committed (each bumps the index)");
  conflicts_ = &registry.counter(
      "elasticdns_central_commit_conflicts_total",
      "Commits refused because another replica committed first (etcd); planned again");
  registry.callback("elasticdns_central_store_stale_seconds",
                    "Seconds since the store (etcd's quorum) last answered, 0 while it answers",
                    [this] {
                      auto stale = state_.store().staleFor();
                      return stale ? std::chrono::duration<double>(*stale).count() : 0.0;
                    });
  watchers_rejected_ =
      &registry.counter("elasticdns_central_watchers_rejected_total",
                        "Long-polls refused because the watcher limit was reached");
  watchers_woken_ = &registry.counter("elasticdns_central_watchers_answered_total",
                                      "Long-polls answered (woken by a change or expired)");
  commit_seconds_ = &registry.histogram("elasticdns_central_commit_seconds",
                                        "Time to commit one group of writes to SQLite",
                                        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1});
  fanout_seconds_ = &registry.histogram(
      "elasticdns_central_fanout_seconds",
      "Time to hand one commit's change to every long-poll it wakes (after the writers' "
      "acknowledgements)",
      {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1});
  batch_size_ =
      &registry.histogram("elasticdns_central_commit_batch_writes",
                          "Writes grouped into one commit", {1, 2, 4, 8, 16, 32, 64, 128});
  registry.callback("elasticdns_central_index", "Current topology index",
                    [this] { return double(state_.index()); });
  registry.callback("elasticdns_central_watchers", "Long-polls waiting",
                    [this] { return double(watchers_.size()); });
  const char* kRecords = "elasticdns_central_records";
  const char* kRecordsHelp = "Records in the topology, by kind";
  registry.callback(
      kRecords, kRecordsHelp, [this] { return double(state_.topology().servers.size()); }, "gauge",
      "kind=\"server\"");
  registry.callback(
      kRecords, kRecordsHelp, [this] { return double(state_.topology().services.size()); }, "gauge",
      "kind=\"service\"");
  registry.callback(
      kRecords, kRecordsHelp, [this] { return double(state_.topology().containers.size()); },
      "gauge", "kind=\"container\"");
  registry.callback(
      kRecords, kRecordsHelp, [this] { return double(state_.topology().datasources.size()); },
      "gauge", "kind=\"datasource\"");
  registry.callback(
      kRecords, kRecordsHelp, [this] { return double(state_.topology().versions.size()); }, "gauge",
      "kind=\"version\"");
  registerAgentMetrics();
}

void Router::reply(Responder& done, unsigned status, std::string body) {
  Response r;
  r.status = status;
  if (!body.empty()) r.body = std::make_shared<const std::string>(std::move(body));
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  (status < 300 ? responses_2xx_ : status < 500 ? responses_4xx_ : responses_5xx_)->inc();
  done(std::move(r));
}

void Router::replyBadMethod(Responder& done, const char* allow) {
  Response r;
  r.status = 405;
  r.body =
      std::make_shared<const std::string>(errorBody({"method", "allowed: " + std::string(allow)}));
  r.headers.emplace_back("Allow", allow);
  responses_4xx_->inc();
  done(std::move(r));
}

void Router::replyMetrics(Responder& done) {
  Response r;
  r.body = std::make_shared<const std::string>(registry_.render());
  r.content_type = "text/plain; version=0.0.4";
  responses_2xx_->inc();
  done(std::move(r));
}

Router::Access Router::authorize(const Request& req) const {
  std::string_view h = req.authorization;
  constexpr std::string_view kBearer = "Bearer ";
  if (h.size() <= kBearer.size() || h.substr(0, kBearer.size()) != kBearer) return Access::kNone;
  std::string_view token = h.substr(kBearer.size());
  if (tokenEquals(token, tokens_.admin)) return Access::kWrite;
  if (tokenEquals(token, tokens_.agent)) return Access::kRead;
  return Access::kNone;
}

std::optional<uint64_t> Router::handle(const Request& req, Responder done) {
  std::string_view target = req.target;
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
  auto notFound = [&] { reply(done, 404, errorBody({"path", "no such resource"})); };
  auto badMethod = [&](const char* allow) { replyBadMethod(done, allow); };

  if (path == "/healthz" || path == "/metrics") {
    if (req.method != "GET") return badMethod("GET"), std::nullopt;
    if (path == "/healthz")
      reply(done, 200, json{{"status", "ok"}, {"index", state_.index()}}.dump());
    else
      replyMetrics(done);
    return std::nullopt;
  }
  if (path == "/ui" || path.substr(0, 4) == "/ui/") {
    serveUi(path, req.method, done);
    return std::nullopt;
  }
  if (path.substr(0, 4) != "/v1/") return notFound(), std::nullopt;

  Access access = authorize(req);
  // A per-server agent token: may write, within its server's containers (checked below).
  const std::string* scope = nullptr;
  if (access == Access::kNone && req.authorization.rfind("Bearer ", 0) == 0 &&
      (scope = tokens_.servers.serverOf(std::string_view(req.authorization).substr(7))))
    access = Access::kWrite;
  bool write = req.method != "GET" && req.method != "HEAD";
  if (access == Access::kNone || (write && access != Access::kWrite)) {
    auth_failures_->inc();
    reply(done, 401, {});
    return std::nullopt;
  }

  auto parts = splitPath(path);  // "v1", resource, ...
  if (parts.size() < 2) return notFound(), std::nullopt;
  std::string_view resource = parts[1];

  if (resource == "topology" && parts.size() == 2) {
    if (req.method != "GET") return badMethod("GET"), std::nullopt;
    return getTopology(req, query, scope, done);
  }
  if (resource == "status" && parts.size() == 2) {
    if (req.method != "GET") return badMethod("GET"), std::nullopt;
    return getStatus(query, done);
  }
  if (!query.empty()) {
    reply(done, 400, errorBody({"query", "this resource takes no query parameters"}));
    return std::nullopt;
  }
  if (resource == "agents" && parts.size() == 2) {
    if (req.method != "GET") return badMethod("GET"), std::nullopt;
    getAgents(done);
    return std::nullopt;
  }
  if (resource == "servers" && parts.size() == 4 && parts[3] == "wireguard") {
    if (req.method != "PUT" && req.method != "DELETE")
      return badMethod("PUT, DELETE"), std::nullopt;
    auto item = wireGuardWrite(req, std::string(parts[2]));
    if (!item) {
      reply(done, 400, errorBody(item.error()));
      return std::nullopt;
    }
    if (scope) {
      if (auto e = checkServerScope(item.value(), state_.topology(), *scope)) {
        reply(done, 403, errorBody(*e));
        return std::nullopt;
      }
    }
    enqueue({std::move(item).value()}, std::move(done));
    return std::nullopt;
  }
  if (scope && write && resource != "containers") {
    reply(
        done, 403,
        errorBody({"token", "an agent token of server " + *scope +
                                " writes only its own containers and its own server's wireguard"}));
    return std::nullopt;
  }
  if (resource == "apply" && parts.size() == 2) {
    if (req.method != "POST") return badMethod("POST"), std::nullopt;
    auto items = serviceYmlWrites(req);
    if (!items) {
      reply(done, 400, errorBody(items.error()));
      return std::nullopt;
    }
    enqueue(std::move(items).value(), std::move(done));
    return std::nullopt;
  }

  auto kind = protocol::kindOfCollection(resource);
  if (!kind || *kind == RecordKind::kVersion) return notFound(), std::nullopt;
  size_t key_parts = *kind == RecordKind::kDatasource ? 2 : 1;  // type/group
  if (parts.size() != 2 + key_parts) return notFound(), std::nullopt;
  if (req.method != "PUT" && req.method != "DELETE") return badMethod("PUT, DELETE"), std::nullopt;
  std::string key(parts[2]);
  if (key_parts == 2) key += "/" + std::string(parts[3]);
  auto item = recordWrite(req, *kind, key);
  if (!item) {
    reply(done, 400, errorBody(item.error()));
    return std::nullopt;
  }
  if (scope) {
    if (auto e = checkServerScope(item.value(), state_.topology(), *scope)) {
      reply(done, 403, errorBody(*e));
      return std::nullopt;
    }
  }
  enqueue({std::move(item).value()}, std::move(done));
  return std::nullopt;
}

Result<std::vector<WriteItem>> Router::serviceYmlWrites(const Request& req) {
  if (req.body.empty()) return Error{"body", "a service.yml document is required"};
  auto services = parseServiceYml(req.body);
  if (!services) return services.error();
  std::vector<WriteItem> items;
  for (auto& s : services.value()) {
    std::string key = s.name;
    items.push_back({ChangeOp::kPut, RecordKind::kService, key, std::move(s)});
  }
  return items;
}

Result<WriteItem> Router::recordWrite(const Request& req, RecordKind kind, const std::string& key) {
  // The key from the URL must be valid on its own (a DELETE has no body to validate).
  if (auto e = protocol::checkKey(kind, key)) return *e;
  WriteItem item{req.method == "PUT" ? ChangeOp::kPut : ChangeOp::kDelete, kind, key, std::nullopt};
  if (item.op == ChangeOp::kDelete) {
    if (!req.body.empty()) return Error{"body", "DELETE takes no body"};
    return item;
  }
  auto body = parseBody(req.body);
  if (!body) return body.error();
  auto record = protocol::parseRecord(kind, body.value(), key);
  if (!record) return record.error();
  item.record = std::move(record).value();
  return item;
}

Result<WriteItem> Router::wireGuardWrite(const Request& req, const std::string& server) {
  if (auto e = protocol::checkKey(RecordKind::kServer, server)) return *e;
  model::Server s;
  s.name = server;
  if (req.method == "DELETE") {
    if (!req.body.empty()) return Error{"body", "DELETE takes no body"};
  } else {
    auto body = parseBody(req.body);
    if (!body) return body.error();
    auto wireguard = validate::parseWireGuard(body.value());
    if (!wireguard)
      return Error{
          wireguard.error().field.empty() ? "wireguard" : "wireguard/" + wireguard.error().field,
          wireguard.error().reason};
    s.wireguard = std::move(wireguard).value();
  }
  return WriteItem{ChangeOp::kPut, RecordKind::kServer, server, std::move(s), true};
}

std::optional<uint64_t> Router::getTopology(const Request& req, const std::string& query,
                                            const std::string* scope, Responder& done) {
  auto q = parseLongPollQuery(query, "index");
  if (!q) {
    reply(done, 400, errorBody(q.error()));
    return std::nullopt;
  }
  const auto& since = q->since;
  const auto& wait = q->wait;
  unsigned report_status = 400;
  std::string reporter;  // the server of the agent that reported, if one did
  if (auto e = recordReport(req, scope, report_status, reporter)) {
    reply(done, report_status, errorBody(*e));
    return std::nullopt;
  }
  auto send = [&](std::shared_ptr<const std::string> body) {
    Response r;
    r.body = std::move(body);
    markStale(r);
    responses_2xx_->inc();
    done(std::move(r));
  };
  uint64_t index = state_.index();
  // Over etcd every replica serves the one index (the cluster's revision), so an agent ahead
  // of this replica got it from another replica further on (it failed over, or this replica
  // is catching up after a partition). Its long-poll waits here until this replica passes
  // its index (then a delta) instead of getting this replica's older full snapshot at once,
  // which would take the agent back in time (and two replicas both behind a lost quorum made
  // agents flip between their snapshots at once, a full one each time). At its deadline,
  // still behind, it gets the full snapshot after all: the store may have been reset.
  const bool agent_ahead = since && *since > index && state_.store().oneIndexPerCommit();
  if (!since || (*since != index && !agent_ahead) || !wait || wait->count() == 0) {
    send(since ? bodySince(*since) : state_.fullBody());
    return std::nullopt;
  }
  auto deadline = Clock::now() + std::min<std::chrono::milliseconds>(*wait, kMaxWait);
  auto watch = std::make_shared<uint64_t>(0);  // the id, known once added
  auto id =
      watchers_.add(*since, deadline, [this, done, watch](std::shared_ptr<const std::string> b) {
        reports_.watchEnded(*watch, true, Clock::now(), std::chrono::system_clock::now());
        watchers_woken_->inc();
        responses_2xx_->inc();
        Response r;
        r.body = std::move(b);
        markStale(r);
        done(std::move(r));
      });
  if (!id) {
    watchers_rejected_->inc();
    reply(done, 503, errorBody({"wait", "too many watchers; retry later"}));
    return std::nullopt;
  }
  *watch = *id;
  if (!reporter.empty()) reports_.holdsWatch(reporter, *id);
  return id;
}

std::shared_ptr<const std::string> Router::bodySince(uint64_t since) {
  if (auto d = state_.deltaBody(since)) return d;
  return state_.fullBody();
}

void Router::expireWatchers(Clock::time_point now) {
  watchers_.expire(now, [this](uint64_t since) { return bodySince(since); });
  status_watchers_.expire(now, [this](uint64_t) { return statusBody(); });
}

bool Router::refuseWhileStale(Responder& done) {
  auto stale = state_.store().staleFor();
  if (!stale) return false;
  reply(
      done, 503,
      errorBody({"store", std::string(state_.store().name()) + " has not answered for " +
                              std::to_string(stale->count() / 1000) +
                              " s (no quorum): writes are refused, reads are served from memory"}));
  return true;
}

void Router::enqueue(std::vector<WriteItem> items, Responder done) {
  if (refuseWhileStale(done)) return;
  pending_.push_back({std::move(items), std::move(done), {}});
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    post_([this] { flush(); });
  }
}

void Router::flush() {
  flush_scheduled_ = false;
  std::vector<Pending> batch;
  batch.swap(pending_);
  std::vector<std::vector<WriteItem>> writes;
  writes.reserve(batch.size());
  for (auto& p : batch) writes.push_back(std::move(p.items));
  auto start = std::chrono::steady_clock::now();
  auto outcomes = state_.apply(writes);
  commit_seconds_->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  batch_size_->observe(static_cast<double>(batch.size()));
  // The writers' acknowledgements first, then the watchers: an acknowledgement waits for the
  // commit, not for the fan-out to every long-poll (10,000 of them take a few hundred ms). A
  // writer that reads after its acknowledgement is served after the fan-out on this thread,
  // from the same state the watchers got.
  bool again = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& o = outcomes[i];
    // A write to plan again gets its items back (apply read them, it kept nothing).
    if (o.retry) batch[i].items = std::move(writes[i]);
    if (o.retry && o.error && o.error->field == kCommitConflict) {
      conflicts_->inc();
      conflicted_.push_back(std::move(batch[i]));
      continue;
    }
    if (o.retry) {  // not planned: the commit was full
      pending_.push_back(std::move(batch[i]));
      again = true;
      continue;
    }
    if (o.error) {
      if (o.status >= 500) spdlog::error("central.store: {}", o.error->message());
      reply(batch[i].done, o.status, errorBody(*o.error));
      continue;
    }
    writes_->inc();
    changes_->inc(o.changes);
    reply(batch[i].done, 200, okBody(o.index, o.changes));
  }
  if (again && !flush_scheduled_) {
    flush_scheduled_ = true;
    post_([this] { flush(); });
  }
  notifyWatchers();
}

void Router::notifyWatchers() {
  auto start = std::chrono::steady_clock::now();
  if (watchers_.notify(state_.index(), [this](uint64_t since) { return bodySince(since); }) > 0)
    fanout_seconds_->observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  notifyStatus();
}

void Router::storeAdvanced() {
  notifyWatchers();
  retryConflicted();
}

void Router::retryConflicted() {
  if (conflicted_.empty()) return;
  // Plan them again on the state that now holds the commit they lost to. A write that keeps
  // losing (a replica writing without pause) gives up after a bound.
  constexpr int kMaxAttempts = 20;
  for (auto& p : conflicted_) {
    if (++p.attempts > kMaxAttempts) {
      reply(p.done, 503,
            errorBody({"store", "other replicas kept committing first; retry the write"}));
      continue;
    }
    pending_.push_back(std::move(p));
  }
  conflicted_.clear();
  if (!pending_.empty() && !flush_scheduled_) {
    flush_scheduled_ = true;
    post_([this] { flush(); });
  }
}

void Router::markStale(Response& r) const {
  // Served from memory while the store is out of reach: say for how long (seconds).
  if (auto stale = state_.store().staleFor())
    r.headers.emplace_back("ElasticDNS-Stale",
                           std::to_string(std::chrono::duration<double>(*stale).count()));
}

void Router::storeHealthChanged(bool healthy) {
  if (healthy) return;
  // The long-polls learn it now (an agent then follows another replica), not at their deadline.
  watchers_.expire(Clock::time_point::max(), [this](uint64_t since) { return bodySince(since); });
  for (auto& p : conflicted_)
    if (!refuseWhileStale(p.done)) pending_.push_back(std::move(p));
  conflicted_.clear();
}

}  // namespace elasticdns::central
