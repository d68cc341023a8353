// The operator's side of the router: the agents' reports on their long-polls, GET /v1/agents,
// GET /v1/status (a long-poll of its own), the dashboard's files under /ui and the agents'
// metrics (central/README.md, "Agents and status").
#include <charconv>

#include <nlohmann/json.hpp>

#include "central/router.hpp"
#include "central/status.hpp"
#include "central/ui_assets.hpp"
#include "elasticdns/text.hpp"

namespace elasticdns::central {
namespace {

using nlohmann::json;
using WallClock = std::chrono::system_clock;

// Status long-polls share the HTTP server's cancelWatch with topology long-polls: their ids
// carry this bit.
constexpr uint64_t kStatusWatchBit = 1ull << 63;

constexpr const char* kLagBuckets[] = {"0", "1-9", "10-99", "100+", "not_seen"};

}  // namespace

std::optional<Error> Router::recordReport(const Request& req, const std::string* scope,
                                          unsigned& status, std::string& server) {
  if (req.agent_report.empty()) return std::nullopt;
  auto r = report::parse(req.agent_report);
  if (!r) {
    status = 400;
    return r.error();
  }
  if (scope && r->server != *scope) {
    status = 403;
    return Error{"agent_report/server",
                 "an agent token of server " + *scope + " reports only for that server"};
  }
  server = r->server;
  uint64_t before = reports_.generation();
  reports_.update(std::move(r).value(), Clock::now(), WallClock::now());
  if (reports_.generation() != before) scheduleStatusNotify();
  return std::nullopt;
}

void Router::cancelWatch(uint64_t id) {
  if (id & kStatusWatchBit) {
    status_watchers_.remove(id & ~kStatusWatchBit);
    return;
  }
  watchers_.remove(id);
  uint64_t before = reports_.generation();
  reports_.watchEnded(id, false, Clock::now(), WallClock::now());
  if (reports_.generation() != before) scheduleStatusNotify();
}

std::optional<Router::Clock::time_point> Router::nextWatchDeadline() const {
  auto a = watchers_.nextDeadline();
  auto b = status_watchers_.nextDeadline();
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

void Router::getAgents(Responder& done) {
  json agents = json::array();
  const uint64_t index = state_.index();
  for (const auto& a : reports_.views(Clock::now())) agents.push_back(status::agentJson(a, index));
  reply(done, 200,
        json{{"index", index},
             {"agent_report_ttl_ms", reports_.ttl().count()},
             {"agents", std::move(agents)}}
            .dump());
}

std::shared_ptr<const std::string> Router::statusBody() {
  json j = status::compute(state_.topology(), reports_.views(Clock::now()));
  j["generation"] = statusGeneration();
  j["agent_report_ttl_ms"] = reports_.ttl().count();
  return std::make_shared<const std::string>(j.dump());
}

// GET /v1/status[?generation=G&wait=D]: at once, or when the status generation passes G
// (a topology change or an agent's news) or at the deadline.
std::optional<uint64_t> Router::getStatus(const std::string& query, Responder& done) {
  auto q = parseLongPollQuery(query, "generation");
  if (!q) {
    reply(done, 400, errorBody(q.error()));
    return std::nullopt;
  }
  auto send = [this, &done] {
    Response r;
    r.body = statusBody();
    responses_2xx_->inc();
    done(std::move(r));
  };
  if (!q->since || *q->since != statusGeneration() || !q->wait || q->wait->count() == 0) {
    send();
    return std::nullopt;
  }
  auto deadline = Clock::now() + std::min<std::chrono::milliseconds>(*q->wait, kMaxWait);
  auto id =
      status_watchers_.add(*q->since, deadline, [this, done](std::shared_ptr<const std::string> b) {
        responses_2xx_->inc();
        Response r;
        r.body = std::move(b);
        done(std::move(r));
      });
  if (!id) {
    watchers_rejected_->inc();
    reply(done, 503, errorBody({"wait", "too many status watchers; retry later"}));
    return std::nullopt;
  }
  return *id | kStatusWatchBit;
}

void Router::notifyStatus() {
  status_notify_scheduled_ = false;
  if (status_watchers_.size() == 0) return;
  status_watchers_.notify(statusGeneration(), [this](uint64_t) { return statusBody(); });
}

// Agents report in bursts (all of them re-poll after a change): one notification per turn of
// the io_context.
void Router::scheduleStatusNotify() {
  if (status_notify_scheduled_) return;
  status_notify_scheduled_ = true;
  post_([this] { notifyStatus(); });
}

void Router::serveUi(std::string_view path, const std::string& method, Responder& done) {
  if (method != "GET" && method != "HEAD") return replyBadMethod(done, "GET");
  if (path == "/ui") path = "/ui/";
  for (const auto& asset : ui::assets()) {
    if (asset.path != path) continue;
    Response r;
    r.body = std::make_shared<const std::string>(asset.body);
    r.content_type = asset.content_type;
    responses_2xx_->inc();
    done(std::move(r));
    return;
  }
  reply(done, 404, errorBody({"path", "no such resource"}));
}

void Router::registerAgentMetrics() {
  for (const char* bucket : kLagBuckets) {
    registry_.callback(
        "elasticdns_central_agents", "Agents by lag (changes behind central's index)",
        [this, bucket] {
          double n = 0;
          const uint64_t index = state_.index();
          for (const auto& a : reports_.views(Clock::now()))
            n += std::string_view(status::lagBucket(a, index)) == bucket;
          return n;
        },
        "gauge", "lag=\"" + std::string(bucket) + "\"");
  }
  registry_.callback("elasticdns_central_status_watchers", "Status long-polls waiting",
                     [this] { return double(status_watchers_.size()); });
}

}  // namespace elasticdns::central
