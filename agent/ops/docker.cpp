#include "agent/ops/docker.hpp"

#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include <algorithm>
#include <atomic>
#include <cctype>

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "elasticdns/http_client.hpp"
#include "elasticdns/protocol.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::agent {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using json = nlohmann::json;

namespace {

constexpr size_t kMaxDockerBody = 64 * 1024 * 1024;    // a listing of thousands of containers
constexpr size_t kMaxCentralBody = 512 * 1024 * 1024;  // a full topology of kMaxContainers

std::string labelOf(const json& labels, std::string_view name) {
  if (!labels.is_object()) return {};
  auto it = labels.find(name);
  return it != labels.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The IPv4 and IPv6 addresses of one entry of NetworkSettings.Networks.
std::pair<std::string, std::string> addressesOf(const json& network) {
  std::pair<std::string, std::string> out;
  if (!network.is_object()) return out;
  if (auto it = network.find("IPAddress"); it != network.end() && it->is_string())
    out.first = it->get<std::string>();
  if (auto it = network.find("GlobalIPv6Address"); it != network.end() && it->is_string())
    out.second = it->get<std::string>();
  return out;
}

// observeContainer's errors name the container ("docker/<id>/..."): that container is skipped.
// Any other error is about Docker or central as a whole and ends the session.
bool isContainerError(const Error& e) {
  return e.field.rfind("docker/", 0) == 0;
}

std::string percentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Only the labelled containers, and for events only the actions that change a registration.
std::string labelFilter(bool events) {
  json f;
  f["label"] = {std::string(kDockerServiceLabel), std::string(kDockerVersionLabel)};
  if (events) {
    f["type"] = {"container"};
    f["event"] = {"start", "die", "destroy"};
  }
  return percentEncode(f.dump());
}

// Awaits one callback of the HTTP client: `start` is called with the callback to pass it.
template <class T, class Start>
asio::awaitable<T> awaitCallback(Start start) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(T)>(
      [start = std::move(start)](auto handler) mutable {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start([shared](T value) { (*shared)(std::move(value)); });
      },
      asio::use_awaitable);
}

}  // namespace

Result<std::optional<ObservedContainer>> observeContainer(
    const json& inspect, const std::string& server, const std::vector<std::string>& networks) {
  if (!inspect.is_object()) return Error{"docker", "container inspect is not an object"};
  auto id_it = inspect.find("Id");
  if (id_it == inspect.end() || !id_it->is_string() ||
      !validate::isContainerId(id_it->get<std::string>()))
    return Error{"docker/Id", "missing or not a container id"};
  std::string id = id_it->get<std::string>();
  const json* config = nullptr;
  if (auto it = inspect.find("Config"); it != inspect.end() && it->is_object()) config = &*it;
  json labels = config && config->contains("Labels") ? (*config)["Labels"] : json();
  std::string service = labelOf(labels, kDockerServiceLabel);
  std::string version = labelOf(labels, kDockerVersionLabel);
  if (service.empty() || version.empty()) return std::optional<ObservedContainer>();
  std::string where = "docker/" + id.substr(0, 12) + "/labels/";
  if (!validate::isDnsLabel(service))
    return Error{where + std::string(kDockerServiceLabel), "must be a lowercase DNS label"};
  if (!validate::isVersionName(version))
    return Error{where + std::string(kDockerVersionLabel), "must be 1-64 of [A-Za-z0-9_.+-]"};

  ObservedContainer out;
  out.id = id;
  if (auto st = inspect.find("State"); st != inspect.end() && st->is_object()) {
    auto running = st->find("Running");
    out.running = running != st->end() && running->is_boolean() && running->get<bool>();
  }
  const json* nets = nullptr;
  if (auto ns = inspect.find("NetworkSettings"); ns != inspect.end() && ns->is_object())
    if (auto n = ns->find("Networks"); n != ns->end() && n->is_object()) nets = &*n;

  std::pair<std::string, std::string> address;
  if (nets) {
    for (const auto& name : networks) {
      if (auto n = nets->find(name); n != nets->end()) {
        address = addressesOf(*n);
        if (!address.first.empty() || !address.second.empty()) break;
      }
    }
    // nlohmann::json keeps object keys sorted: "first by name".
    for (auto n = nets->begin();
         address.first.empty() && address.second.empty() && n != nets->end(); ++n)
      address = addressesOf(*n);
  }
  if (address.first.empty() && address.second.empty()) {
    if (out.running)
      return Error{where + "networks", "running but no IP address on any network (host or none?)"};
    return std::optional<ObservedContainer>(std::move(out));
  }
  model::Container c;
  c.id = id;
  c.service = service;
  c.version = version;
  c.server = server;
  c.address = address.first;
  c.address6 = address.second;
  c.state = out.running ? model::ContainerState::kRunning : model::ContainerState::kDraining;
  // The shared validator has the last word (addresses, sizes).
  auto valid = validate::parseContainer(protocol::toJson(c), id);
  if (!valid) return valid.error();
  out.record = std::move(valid).value();
  return std::optional<ObservedContainer>(std::move(out));
}

Result<DockerEvent> parseDockerEvent(std::string_view line) {
  if (line.size() > kMaxDockerEventLine) return Error{"docker/events", "event line too long"};
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Error{"docker/events", "event is not a JSON object"};
  DockerEvent e;
  auto str = [&](const json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string type = str(j, "Type");
  std::string action = str(j, "Action");
  if (auto actor = j.find("Actor"); actor != j.end() && actor->is_object())
    e.id = str(*actor, "ID");
  if (e.id.empty()) e.id = str(j, "id");  // API < 1.22 spelling
  if (type != "container") return e;
  if (!validate::isContainerId(e.id)) return Error{"docker/events", "event without a container id"};
  if (action == "start")
    e.action = DockerEvent::Action::kStart;
  else if (action == "die")
    e.action = DockerEvent::Action::kDie;
  else if (action == "destroy")
    e.action = DockerEvent::Action::kDestroy;
  return e;
}

ReconcilePlan planReconcile(const std::vector<ObservedContainer>& docker,
                            const std::map<std::string, model::Container>& central) {
  ReconcilePlan plan;
  std::map<std::string, const ObservedContainer*> seen;
  for (const auto& o : docker) seen[o.id] = &o;
  for (const auto& [id, o] : seen) {
    auto c = central.find(id);
    if (o->running && o->record) {
      if (c == central.end() || !(c->second == *o->record)) plan.put.push_back(*o->record);
    } else if (!o->running && c != central.end() &&
               c->second.state != model::ContainerState::kDraining) {
      model::Container drained = c->second;
      drained.state = model::ContainerState::kDraining;
      plan.put.push_back(std::move(drained));
    }
  }
  for (const auto& [id, c] : central)
    if (!seen.count(id)) plan.remove.push_back(id);
  return plan;
}

struct DockerDiscovery::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, DockerDiscoveryOptions o, metrics::Registry& m)
      : io_(io),
        options_(std::move(o)),
        timer_(io),
        events_total_(m.counter("elasticdns_docker_events_total",
                                "Docker events read that change a registration")),
        writes_ok_(m.counter("elasticdns_docker_writes_total",
                             "Container writes to central by Docker discovery", "result=\"ok\"")),
        writes_rejected_(m.counter("elasticdns_docker_writes_total",
                                   "Container writes to central by Docker discovery",
                                   "result=\"rejected\"")),
        writes_failed_(m.counter("elasticdns_docker_writes_total",
                                 "Container writes to central by Docker discovery",
                                 "result=\"failed\"")),
        reconciles_total_(m.counter("elasticdns_docker_reconciles_total",
                                    "Completed reconciliations of Docker with central")),
        errors_total_(m.counter("elasticdns_docker_errors_total",
                                "Docker discovery sessions ended by an error (then retried)")),
        connected_(m.gauge("elasticdns_docker_connected",
                           "1 while Docker's events stream is open and reconciled")) {}

  asio::io_context& io_;
  DockerDiscoveryOptions options_;
  asio::steady_timer timer_;
  metrics::Counter& events_total_;
  metrics::Counter& writes_ok_;
  metrics::Counter& writes_rejected_;
  metrics::Counter& writes_failed_;
  metrics::Counter& reconciles_total_;
  metrics::Counter& errors_total_;
  metrics::Gauge& connected_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> reconciles_{0};
  // What this agent registered at central, by id (initialised from central at each
  // reconciliation). Touched only on the io_context.
  std::map<std::string, model::Container> registered_;
  // The exchanges in flight (the events stream, one request), cancelled by stop() so that a
  // pending read ends at once. io_context only.
  std::shared_ptr<HttpBodyStream> events_;
  std::shared_ptr<HttpExchange> request_;

  void closeAll() {
    timer_.cancel();
    if (events_) events_->cancel();
    if (request_) request_->cancel();
  }

  asio::awaitable<Result<HttpResponse>> send(HttpDestination to, HttpRequest request) {
    auto self = shared_from_this();
    auto reply = co_await awaitCallback<Result<HttpResponse>>([&](HttpCallback done) {
      request_ = httpRequest(io_.get_executor(), to, std::move(request), std::move(done));
    });
    request_.reset();
    co_return reply;
  }

  asio::awaitable<Result<HttpResponse>> docker(std::string target) {
    HttpRequest request;
    request.target = target;
    request.timeout = options_.request_timeout;
    request.body_limit = kMaxDockerBody;
    HttpDestination to = UnixSocketPath{options_.docker.socket};
    auto reply = co_await send(to, request);
    if (!reply)
      co_return Error{"docker",
                      options_.docker.socket + " " + target + ": " + reply.error().message()};
    co_return reply;
  }

  // One request to the first central URL that answers.
  asio::awaitable<Result<HttpResponse>> central(http::verb method, std::string target,
                                                std::string body) {
    auto self = shared_from_this();
    Error last{"docker", "no central URL configured"};
    for (const auto& central_url : options_.central_urls) {
      auto url = text::parseHttpUrl(central_url);
      if (!url) co_return Error{"docker", url.error().message()};
      HttpRequest request;
      request.method = method;
      request.target = target;
      request.token = options_.token;
      request.body = body;
      request.timeout = options_.request_timeout;
      request.body_limit = kMaxCentralBody;
      HttpDestination to = url.value();
      auto reply = co_await send(to, request);
      if (reply) co_return reply;
      last = Error{"docker", central_url + ": " + reply.error().message()};
      if (stopping_) break;
    }
    co_return last;
  }

  // PUT or DELETE one container. An error means central could not be reached or refused the
  // token: the session ends and the next one reconciles. A record central rejects (400) is
  // logged and counted, and the session goes on.
  asio::awaitable<std::optional<Error>> write(const model::Container* put, const std::string& id) {
    if (stopping_) co_return Error{"docker", "stopping"};
    std::string target = "/v1/containers/" + id;
    http::verb method = put ? http::verb::put : http::verb::delete_;
    std::string body = put ? protocol::toJson(*put).dump() : "";
    auto reply = co_await central(method, target, body);
    if (!reply) {
      writes_failed_.inc();
      co_return reply.error();
    }
    unsigned status = reply->status;
    if (status / 100 == 2 || (!put && status == 404)) {
      writes_ok_.inc();
      if (put)
        registered_[id] = *put;
      else
        registered_.erase(id);
      spdlog::info(
          "[docker] {} container {} ({})", put ? "registered" : "removed", id.substr(0, 12),
          put ? std::string(model::toString(put->state)) + " " + put->service + " " + put->version
              : "gone");
      co_return std::nullopt;
    }
    if (status == 400 || status == 422) {
      writes_rejected_.inc();
      spdlog::warn("[docker] central rejected container {}: {}", id.substr(0, 12), reply->body);
      co_return std::nullopt;
    }
    writes_failed_.inc();
    co_return Error{
        "docker",
        "central answered " + std::to_string(status) + " to " +
            std::string(http::to_string(method)) + " " + target +
            (status == 401 || status == 403 ? " (is the token this server's agent token?)" : "")};
  }

  asio::awaitable<Result<std::optional<ObservedContainer>>> inspect(const std::string& id) {
    std::string target = "/" + std::string(kDockerApiVersion) + "/containers/" + id + "/json";
    auto reply = co_await docker(target);
    if (!reply) co_return reply.error();
    if (reply->status == 404) co_return std::optional<ObservedContainer>();  // gone meanwhile
    if (reply->status != 200)
      co_return Error{"docker",
                      "inspect " + id.substr(0, 12) + ": status " + std::to_string(reply->status)};
    json j = json::parse(reply->body, nullptr, false);
    co_return observeContainer(j, options_.server, options_.docker.networks);
  }

  asio::awaitable<std::optional<Error>> reconcile() {
    // Arguments of co_await'ed calls are named locals: GCC 12 has destroyed temporaries in a
    // co_await expression twice.
    std::string list_target = "/" + std::string(kDockerApiVersion) +
                              "/containers/json?all=1&filters=" + labelFilter(false);
    auto list = co_await docker(list_target);
    if (!list) co_return list.error();
    json ids = json::parse(list->body, nullptr, false);
    if (list->status != 200 || !ids.is_array())
      co_return Error{"docker", "container list: status " + std::to_string(list->status)};
    std::vector<ObservedContainer> observed;
    for (const auto& c : ids) {
      if (!c.is_object() || !c.contains("Id") || !c["Id"].is_string()) continue;
      std::string id = c["Id"].get<std::string>();
      auto o = co_await inspect(id);
      if (!o) {
        // A transport error ends the session; a container with bad labels is only skipped.
        if (!isContainerError(o.error())) co_return o.error();
        spdlog::warn("[docker] skipping container: {}", o.error().message());
        continue;
      }
      if (o.value()) observed.push_back(std::move(*o.value()));
    }
    std::string topology_target = "/v1/topology";
    std::string no_body;
    auto topo = co_await central(http::verb::get, topology_target, no_body);
    if (!topo) co_return topo.error();
    if (topo->status != 200)
      co_return Error{"docker", "GET /v1/topology: status " + std::to_string(topo->status)};
    auto parsed = protocol::parseResponse(json::parse(topo->body, nullptr, false));
    if (!parsed) co_return Error{"docker", "GET /v1/topology: " + parsed.error().message()};
    std::map<std::string, model::Container> mine;
    for (const auto& [id, c] : parsed->topology.containers)
      if (c.server == options_.server) mine.emplace(id, c);
    registered_ = mine;
    auto plan = planReconcile(observed, mine);
    for (const auto& c : plan.put)
      if (auto e = co_await write(&c, c.id)) co_return e;
    for (const auto& id : plan.remove)
      if (auto e = co_await write(nullptr, id)) co_return e;
    spdlog::info("[docker] reconciled: {} labelled container(s), {} put, {} removed",
                 observed.size(), plan.put.size(), plan.remove.size());
    co_return std::nullopt;
  }

  asio::awaitable<std::optional<Error>> handle(const DockerEvent& e) {
    switch (e.action) {
      case DockerEvent::Action::kStart: {
        auto o = co_await inspect(e.id);
        if (!o) {
          if (!isContainerError(o.error())) co_return o.error();
          spdlog::warn("[docker] skipping container: {}", o.error().message());
          co_return std::nullopt;
        }
        if (const auto& seen = o.value(); seen && seen->running && seen->record)
          co_return co_await write(&*seen->record, e.id);
        co_return std::nullopt;
      }
      case DockerEvent::Action::kDie: {
        auto it = registered_.find(e.id);
        if (it == registered_.end() || it->second.state == model::ContainerState::kDraining)
          co_return std::nullopt;
        model::Container drained = it->second;
        drained.state = model::ContainerState::kDraining;
        co_return co_await write(&drained, e.id);
      }
      case DockerEvent::Action::kDestroy:
        if (!registered_.count(e.id)) co_return std::nullopt;
        co_return co_await write(nullptr, e.id);
      case DockerEvent::Action::kOther:
        break;
    }
    co_return std::nullopt;
  }

  // One connection to Docker: open the events stream, reconcile, then follow the events
  // until an error. Returns why it ended.
  asio::awaitable<Error> session() {
    HttpRequest request;
    request.target = "/" + std::string(kDockerApiVersion) + "/events?filters=" + labelFilter(true);
    request.timeout = options_.request_timeout;
    auto status = co_await awaitCallback<Result<unsigned>>([&](HttpHeadCallback on_head) {
      events_ = httpOpenBodyStream(io_.get_executor(), UnixSocketPath{options_.docker.socket},
                                   std::move(request), std::move(on_head));
    });
    if (!status) co_return Error{"docker", "events: " + status.error().message()};
    if (status.value() != 200)
      co_return Error{"docker", "events: status " + std::to_string(status.value())};
    // Events that happen during the reconciliation wait in the stream, and are read after it.
    if (auto e = co_await reconcile()) co_return *e;
    reconciles_total_.inc();
    reconciles_.fetch_add(1);
    connected_.set(1);

    std::string pending;
    for (;;) {
      auto more = co_await awaitCallback<Result<std::string>>(
          [&](HttpBodyStream::ChunkCallback got) { events_->read(std::move(got)); });
      if (!more) co_return Error{"docker", "events: " + more.error().message()};
      pending += more.value();
      size_t start = 0;
      for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(pending.data() + start, nl - start);
        if (line.empty()) continue;
        auto ev = parseDockerEvent(line);
        if (!ev) {
          spdlog::warn("[docker] ignoring event: {}", ev.error().message());
          continue;
        }
        if (ev->action == DockerEvent::Action::kOther) continue;
        events_total_.inc();
        if (auto e = co_await handle(ev.value())) co_return *e;
      }
      pending.erase(0, start);
      if (pending.size() > kMaxDockerEventLine) co_return Error{"docker", "events: line too long"};
    }
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto backoff = options_.backoff_min;
    while (!stopping_) {
      uint64_t before = reconciles_.load();
      Error why = co_await session();
      events_.reset();
      connected_.set(0);
      if (stopping_) break;
      errors_total_.inc();
      if (reconciles_.load() != before) backoff = options_.backoff_min;  // it had worked
      spdlog::warn("[docker] {}; retrying in {} ms", why.message(), backoff.count());
      timer_.expires_after(backoff);
      error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      backoff = std::min(backoff * 2, options_.backoff_max);
    }
  }
};

DockerDiscovery::DockerDiscovery(asio::io_context& io, DockerDiscoveryOptions options,
                                 metrics::Registry& metrics)
    : impl_(std::make_shared<Impl>(io, std::move(options), metrics)) {}

DockerDiscovery::~DockerDiscovery() {
  stop();
}

void DockerDiscovery::start() {
  spdlog::info("[docker] watching {} for containers labelled {} and {} (server {})",
               impl_->options_.docker.socket, kDockerServiceLabel, kDockerVersionLabel,
               impl_->options_.server);
  asio::co_spawn(impl_->io_, impl_->run(), asio::detached);
}

void DockerDiscovery::stop() {
  if (impl_->stopping_.exchange(true)) return;
  asio::post(impl_->io_, [impl = impl_] { impl->closeAll(); });
}

}  // namespace elasticdns::agent
