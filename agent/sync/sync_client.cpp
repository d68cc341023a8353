#include "agent/sync/sync_client.hpp"

#include <mutex>
#include <random>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include "agent/sync/snapshot_file.hpp"
#include "agent/util/log_limit.hpp"
#include "elasticdns/http_client.hpp"
#include "elasticdns/protocol.hpp"

namespace elasticdns::agent {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A long-poll may take `wait` plus central's reply time; past this margin it is dead.
constexpr auto kPollMargin = std::chrono::seconds(15);

std::string targetFor(const std::shared_ptr<const model::Topology>& current, bool want_full,
                      std::chrono::seconds wait) {
  if (!current || want_full) return "/v1/topology";
  return "/v1/topology?index=" + std::to_string(current->index) +
         "&wait=" + std::to_string(wait.count()) + "s";
}

// What the metrics read: shared with the Registry's callbacks, which may outlive the client.
struct SyncStatus {
  std::atomic<Clock::rep> last_contact{0};  // steady-clock ticks; 0 = never
  std::atomic<uint64_t> index{0};
  std::atomic<size_t> following{0};  // the central URL polled now
  const Clock::time_point created = Clock::now();
};

struct SyncMetrics {
  explicit SyncMetrics(metrics::Registry& r)
      : polls(r.counter("elasticdns_agent_sync_polls_total", "Requests made to central")),
        fail_network(r.counter("elasticdns_agent_sync_failures_total",
                               "Requests to central that failed, by reason", "reason=\"network\"")),
        fail_auth(r.counter("elasticdns_agent_sync_failures_total",
                            "Requests to central that failed, by reason", "reason=\"auth\"")),
        fail_http(r.counter("elasticdns_agent_sync_failures_total",
                            "Requests to central that failed, by reason", "reason=\"http\"")),
        fail_invalid(r.counter("elasticdns_agent_sync_failures_total",
                               "Requests to central that failed, by reason", "reason=\"invalid\"")),
        rejected(r.counter("elasticdns_agent_sync_rejected_snapshots_total",
                           "Snapshots or deltas from central that failed validation")),
        persist_failures(r.counter("elasticdns_agent_sync_persist_failures_total",
                                   "Snapshots that could not be written to state_dir")),
        stale_answers(r.counter("elasticdns_agent_sync_stale_answers_total",
                                "Answers of a central whose store is out of reach (the agent "
                                "then follows the next central URL)")),
        full_answers(r.counter(kAnswers, kAnswersHelp, "kind=\"full\"")),
        delta_answers(r.counter(kAnswers, kAnswersHelp, "kind=\"delta\"")) {}
  static constexpr const char* kAnswers = "elasticdns_agent_sync_answers_total";
  static constexpr const char* kAnswersHelp =
      "Topology answers from central, by kind (a full snapshot or a delta since the agent's "
      "index)";
  metrics::Counter& polls;
  metrics::Counter& fail_network;
  metrics::Counter& fail_auth;
  metrics::Counter& fail_http;
  metrics::Counter& fail_invalid;
  metrics::Counter& rejected;
  metrics::Counter& persist_failures;
  metrics::Counter& stale_answers;
  metrics::Counter& full_answers;
  metrics::Counter& delta_answers;
};

// The sync loop. Everything but start()/stop()/the status atomics runs on `strand`.
class SyncCore : public std::enable_shared_from_this<SyncCore> {
 public:
  SyncCore(asio::io_context& io, SyncConfig config, metrics::Registry& registry,
           SyncClient::OnSnapshot on_snapshot)
      : strand_(asio::make_strand(io)),
        timer_(strand_),
        config_(std::move(config)),
        m_(registry),
        status_(std::make_shared<SyncStatus>()),
        on_snapshot_(std::move(on_snapshot)),
        rng_(std::random_device{}()) {
    for (const auto& u : config_.urls) {
      auto parsed = text::parseHttpUrl(u);
      if (parsed)
        urls_.push_back(std::move(parsed).value());
      else
        spdlog::error("sync: ignoring central url: {}", parsed.error().reason);
    }
    std::weak_ptr<SyncStatus> status = status_;
    registry.callback("elasticdns_agent_snapshot_index", "Index of the topology snapshot in use",
                      [status] {
                        auto s = status.lock();
                        return s ? static_cast<double>(s->index.load()) : 0.0;
                      });
    for (size_t i = 0; i < urls_.size(); ++i)
      registry.callback(
          "elasticdns_agent_sync_following", "1 for the central URL the agent polls now, else 0",
          [status, i] {
            auto s = status.lock();
            return s && s->following.load() == i ? 1.0 : 0.0;
          },
          "gauge", "url=\"" + urls_[i].text() + "\"");
    registry.callback("elasticdns_agent_snapshot_age_seconds",
                      "Seconds since central last answered (since start when it never did)",
                      [status] {
                        auto s = status.lock();
                        if (!s) return 0.0;
                        auto last = s->last_contact.load();
                        auto since = last ? Clock::time_point(Clock::duration(last)) : s->created;
                        return std::chrono::duration<double>(Clock::now() - since).count();
                      });
  }

  void start() {
    if (!config_.state_dir.empty()) loadPersisted();
    if (urls_.empty()) {
      // No central configured is a supported mode (a standalone agent); URLs that were given
      // but none of which parses is a configuration mistake.
      if (config_.urls.empty())
        spdlog::info("sync: no central configured; serving the persisted snapshot only");
      else
        spdlog::error("sync: no usable central url; serving the persisted snapshot only");
      return;
    }
    asio::post(strand_, [self = shared_from_this()] { self->poll(); });
  }

  void stop() {
    {
      std::lock_guard lock(publish_mu_);
      stopped_ = true;
    }
    asio::post(strand_, [self = shared_from_this()] {
      self->timer_.cancel();
      if (self->inflight_) self->inflight_->cancel();
      self->inflight_.reset();
    });
  }

  Clock::time_point lastContact() const {
    return Clock::time_point(Clock::duration(status_->last_contact.load()));
  }
  uint64_t index() const { return status_->index.load(); }

 private:
  bool stopped() {
    std::lock_guard lock(publish_mu_);
    return stopped_;
  }

  void loadPersisted() {
    auto file = config_.state_dir / kSnapshotFileName;
    std::error_code ec;
    if (!fs::exists(file, ec)) {
      spdlog::info("sync: no persisted snapshot at {}", file.string());
      return;
    }
    auto t = loadSnapshot(config_.state_dir);
    if (!t) {
      m_.rejected.inc();
      spdlog::warn("sync: ignoring persisted snapshot {}: {}", file.string(), t.error().message());
      return;
    }
    spdlog::info("sync: starting from persisted snapshot {} (index {})", file.string(), t->index);
    publish(std::make_shared<const model::Topology>(std::move(t).value()), false);
  }

  void poll() {
    if (stopped()) return;
    HttpRequest request;
    request.target = targetFor(current_, want_full_, config_.wait);
    request.token = config_.token;
    request.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config_.wait) +
                      std::chrono::duration_cast<std::chrono::milliseconds>(kPollMargin);
    request.body_limit = kMaxSnapshotBytes;
    if (config_.report) {
      auto last = status_->last_contact.load();
      auto r = reportFor(config_.report(), current_ ? current_->index : 0,
                         last ? Clock::time_point(Clock::duration(last)) : Clock::time_point(),
                         status_->created, Clock::now());
      request.headers.emplace_back(std::string(report::kHeader), report::format(r));
    }
    m_.polls.inc();
    inflight_ = httpRequest(strand_, urls_[url_index_ % urls_.size()], std::move(request),
                            // weak: the core owns the request, which owns this callback
                            [weak = weak_from_this()](Result<HttpResponse> r) {
                              auto self = weak.lock();
                              if (!self) return;
                              self->inflight_.reset();
                              self->onResponse(std::move(r));
                            });
  }

  void onResponse(Result<HttpResponse> r) {
    if (stopped()) return;
    const HttpUrl& url = urls_[url_index_ % urls_.size()];
    if (!r) return fail(m_.fail_network, url.text() + ": " + r.error().message());
    unsigned status = r->status;
    if (status == 401 || status == 403)
      return fail(m_.fail_auth,
                  url.text() + ": HTTP " + std::to_string(status) + " (check the agent token)");
    if (status != 200) return fail(m_.fail_http, url.text() + ": HTTP " + std::to_string(status));
    SyncStep step = applyTopologyResponse(current_, r->body);
    if (step.outcome != SyncOutcome::kRejected)
      (step.full ? m_.full_answers : m_.delta_answers).inc();
    switch (step.outcome) {
      case SyncOutcome::kRejected:
        m_.rejected.inc();
        want_full_ = true;  // a delta that does not apply may be fixed by a full snapshot
        return fail(m_.fail_invalid, url.text() + ": rejected snapshot, keeping index " +
                                         std::to_string(current_ ? current_->index : 0) + ": " +
                                         step.error);
      case SyncOutcome::kNeedFull:
        want_full_ = true;
        break;
      case SyncOutcome::kUnchanged:
        want_full_ = false;
        break;
      case SyncOutcome::kPublished:
        want_full_ = false;
        // A replica cut off from its store's quorum may be behind the index we have (we
        // followed another one meanwhile): its snapshot would take us back in time. Keep ours.
        if (current_ && step.topology->index < current_->index && r->header("ElasticDNS-Stale")) {
          if (log_.allow())
            spdlog::warn("sync: {} is stale and behind (index {} < {}): keeping ours", url.text(),
                         step.topology->index, current_->index);
          break;
        }
        publish(std::move(step.topology), true);
        break;
    }
    status_->last_contact.store(Clock::now().time_since_epoch().count());
    if (failures_ > 0) spdlog::info("sync: {} answers again", url.text());
    failures_ = 0;
    // A replica that lost its store (etcd's quorum) still answers from memory, marked stale:
    // its data is kept, and the next replica is followed from here on.
    if (auto stale = r->header("ElasticDNS-Stale"); stale && urls_.size() > 1) {
      m_.stale_answers.inc();
      url_index_ = (url_index_ + 1) % urls_.size();
      status_->following.store(url_index_);
      if (log_.allow())
        spdlog::warn("sync: {} answers from memory, its store out of reach for {} s: following {}",
                     url.text(), *stale, urls_[url_index_].text());
    }
    poll();
  }

  void fail(metrics::Counter& counter, const std::string& what) {
    counter.inc();
    ++failures_;
    if (log_.allow()) spdlog::warn("sync: {}", what);
    url_index_ = (url_index_ + 1) % urls_.size();  // fail over to the next central
    status_->following.store(url_index_);
    if (urls_.size() > 1 && log_.allow())
      spdlog::info("sync: following {}", urls_[url_index_].text());
    // Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
    // Jitter"), floored at backoff_min.
    auto lo = config_.backoff_min.count();
    auto hi = std::min<int64_t>(config_.backoff_max.count(), lo << std::min(failures_ - 1, 20));
    hi = std::max(hi, lo);
    std::uniform_int_distribution<int64_t> pick(lo, hi);
    timer_.expires_after(std::chrono::milliseconds(pick(rng_)));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->poll();
    });
  }

  void publish(std::shared_ptr<const model::Topology> t, bool persist) {
    if (persist && !config_.state_dir.empty()) {
      if (auto e = saveSnapshot(config_.state_dir, *t)) {
        m_.persist_failures.inc();
        spdlog::error("sync: cannot persist the snapshot: {}", e->message());
      }
    }
    std::lock_guard lock(publish_mu_);
    if (stopped_) return;
    current_ = t;
    status_->index.store(t->index);
    on_snapshot_(std::move(t));
  }

  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer timer_;
  const SyncConfig config_;
  SyncMetrics m_;
  std::shared_ptr<SyncStatus> status_;
  SyncClient::OnSnapshot on_snapshot_;
  std::vector<HttpUrl> urls_;
  size_t url_index_ = 0;
  int failures_ = 0;  // consecutive
  bool want_full_ = false;
  std::shared_ptr<const model::Topology> current_;
  std::shared_ptr<HttpExchange> inflight_;
  std::mt19937_64 rng_;  // backoff jitter only: need not be unpredictable
  LogLimit log_;
  std::mutex publish_mu_;  // orders on_snapshot calls against stop()
  bool stopped_ = false;   // guarded by publish_mu_
};

}  // namespace

SyncStep applyTopologyResponse(const std::shared_ptr<const model::Topology>& current,
                               std::string_view body) {
  if (body.size() > kMaxSnapshotBytes) return {SyncOutcome::kRejected, nullptr, "body too large"};
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return {SyncOutcome::kRejected, nullptr, "body is not valid JSON"};
  auto r = protocol::parseResponse(j);
  if (!r) return {SyncOutcome::kRejected, nullptr, r.error().message()};
  if (r->full) {
    if (current && *current == r->topology) return {SyncOutcome::kUnchanged, nullptr, {}, true};
    return {SyncOutcome::kPublished,
            std::make_shared<const model::Topology>(std::move(r.value().topology)),
            {},
            true};
  }
  if (!current || r->since != current->index || r->index < r->since)
    return {SyncOutcome::kNeedFull, nullptr, {}};
  if (r->index == current->index && r->changes.empty())
    return {SyncOutcome::kUnchanged, nullptr, {}};
  model::Topology next = *current;
  if (auto e = protocol::applyChanges(next, r->changes, r->index))
    return {SyncOutcome::kRejected, nullptr, e->message()};
  return {SyncOutcome::kPublished, std::make_shared<const model::Topology>(std::move(next)), {}};
}

report::AgentReport reportFor(report::AgentReport base, uint64_t index,
                              Clock::time_point last_contact, Clock::time_point started,
                              Clock::time_point now) {
  base.index = index;
  auto since = last_contact == Clock::time_point() ? started : last_contact;
  base.sync_age_ms = static_cast<uint64_t>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count()));
  return base;
}

struct SyncClient::Impl {
  std::shared_ptr<SyncCore> core;
};

SyncClient::SyncClient(asio::io_context& io, SyncConfig config, metrics::Registry& metrics,
                       OnSnapshot on_snapshot)
    : impl_(std::make_unique<Impl>()) {
  impl_->core = std::make_shared<SyncCore>(io, std::move(config), metrics, std::move(on_snapshot));
}

SyncClient::~SyncClient() {
  stop();
}

void SyncClient::start() {
  impl_->core->start();
}
void SyncClient::stop() {
  impl_->core->stop();
}
Clock::time_point SyncClient::lastContact() const {
  return impl_->core->lastContact();
}
uint64_t SyncClient::index() const {
  return impl_->core->index();
}

}  // namespace elasticdns::agent
