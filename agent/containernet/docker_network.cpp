#include "agent/containernet/docker_network.hpp"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "agent/ops/docker.hpp"
#include "elasticdns/http_client.hpp"

namespace elasticdns::agent {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using json = nlohmann::json;

namespace {

constexpr std::string_view kBridgeNameOption = "com.docker.network.bridge.name";
constexpr std::string_view kMtuOption = "com.docker.network.driver.mtu";

std::string stringAt(const json& o, std::string_view key) {
  if (!o.is_object()) return {};
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

json dockerNetworkCreateBody(const DockerNetworkSpec& want) {
  json options = json::object();
  if (!want.bridge.empty()) options[std::string(kBridgeNameOption)] = want.bridge;
  if (want.mtu != 0) options[std::string(kMtuOption)] = std::to_string(want.mtu);
  return json{
      {"Name", want.name},
      {"Driver", "bridge"},
      {"CheckDuplicate", true},
      {"IPAM",
       {{"Driver", "default"},
        {"Config", json::array({{{"Subnet", want.subnet}, {"Gateway", want.gateway}}})}}},
      {"Options", options},
      {"Labels", {{std::string(kContainerNetNetworkLabel), "1"}}},
  };
}

DockerNetworkDecision decideDockerNetwork(const json& inspect, const DockerNetworkSpec& want) {
  DockerNetworkDecision d;
  d.id = stringAt(inspect, "Id");
  const std::string driver = stringAt(inspect, "Driver");
  json options = inspect.is_object() && inspect.contains("Options") ? inspect["Options"] : json();
  d.bridge = stringAt(options, kBridgeNameOption);
  if (d.bridge.empty() && !d.id.empty()) d.bridge = "br-" + d.id.substr(0, 12);
  // What it has: every IPAM config as subnet/gateway.
  std::string has;
  bool matches = false;
  if (inspect.is_object())
    if (auto ipam = inspect.find("IPAM"); ipam != inspect.end() && ipam->is_object())
      if (auto configs = ipam->find("Config"); configs != ipam->end() && configs->is_array())
        for (const auto& c : *configs) {
          std::string subnet = stringAt(c, "Subnet"), gateway = stringAt(c, "Gateway");
          if (!has.empty()) has += ", ";
          has += "subnet " + (subnet.empty() ? "none" : subnet) + " gateway " +
                 (gateway.empty() ? "none" : gateway);
          // No gateway given at creation: Docker's default IPAM takes the subnet's first host,
          // which is ContainerNet's gateway too.
          if (subnet == want.subnet && (gateway == want.gateway || gateway.empty())) matches = true;
        }
  if (has.empty()) has = "no IPAM config";
  bool ours = false;
  if (inspect.is_object() && inspect.contains("Labels"))
    ours = !stringAt(inspect["Labels"], kContainerNetNetworkLabel).empty();
  size_t containers = 0;
  if (inspect.is_object())
    if (auto c = inspect.find("Containers"); c != inspect.end() && c->is_object())
      containers = c->size();
  const std::string should = "driver bridge, subnet " + want.subnet + " gateway " + want.gateway;
  if (driver == "bridge" && matches) {
    d.verdict = DockerNetworkDecision::Verdict::kAdopt;
    d.detail = "Docker network " + want.name + " (" + d.id.substr(0, 12) + ", bridge " + d.bridge +
               ") has " + should;
    if (std::string mtu = stringAt(options, kMtuOption);
        want.mtu != 0 && mtu != std::to_string(want.mtu))
      d.detail += "; its MTU option is " + (mtu.empty() ? "unset" : mtu) + ", not " +
                  std::to_string(want.mtu) + " (set on the bridge instead)";
    if (!want.bridge.empty() && d.bridge != want.bridge)
      d.detail += "; its bridge is not containernet/bridge " + want.bridge +
                  " (the gateway and MTU go on " + want.bridge + " only)";
    return d;
  }
  if (ours && containers == 0 && driver == "bridge") {
    d.verdict = DockerNetworkDecision::Verdict::kRecreate;
    d.detail = "Docker network " + want.name + " (" + d.id.substr(0, 12) +
               ", created by the agent" + ", no containers) has " + has +
               "; ContainerNet's lease is " + want.subnet + ": removing it and creating it again";
    return d;
  }
  d.verdict = DockerNetworkDecision::Verdict::kMismatch;
  d.detail = "Docker network " + want.name + " (" + d.id.substr(0, 12) + ") has driver " +
             (driver.empty() ? "none" : driver) + ", " + has + "; ContainerNet needs " + should +
             (containers != 0 ? " (it has " + std::to_string(containers) + " container(s))" : "") +
             ". Left alone: remove it (docker network rm " + want.name +
             ") or set containernet/docker_network to another name";
  return d;
}

struct DockerNetworkKeeper::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, Options o) : io(io), options(std::move(o)), timer(io) {}

  asio::io_context& io;
  Options options;
  asio::steady_timer timer;
  std::shared_ptr<HttpExchange> exchange;
  std::optional<DockerNetworkSpec> want;     // the latest ensure()
  std::optional<DockerNetworkSpec> running;  // what the round in flight works towards
  std::optional<DockerNetworkSpec> kept;     // the last spec Docker was found or made to match
  std::string last_error;                    // logged once until it changes
  std::chrono::milliseconds backoff = options.backoff_min;
  bool stopping = false;

  void request(http::verb method, std::string target, std::string body,
               std::function<void(Result<HttpResponse>)> done) {
    HttpRequest r;
    r.method = method;
    r.target = "/" + std::string(kDockerApiVersion) + target;
    r.body = std::move(body);
    r.timeout = options.request_timeout;
    r.body_limit = 4u << 20;
    exchange = httpRequest(io.get_executor(), UnixSocketPath{options.socket}, std::move(r),
                           [self = shared_from_this(), done = std::move(done)](auto reply) {
                             self->exchange.reset();
                             if (self->stopping) return;
                             done(std::move(reply));
                           });
  }

  // One round: inspect, then adopt, create, or remove and create.
  void round() {
    if (stopping || running || !want) return;
    running = want;
    request(http::verb::get, "/networks/" + running->name, "",
            [self = shared_from_this()](Result<HttpResponse> r) { self->inspected(std::move(r)); });
  }

  void inspected(Result<HttpResponse> r) {
    if (!r) return retry("inspect: " + r.error().message());
    if (r->status == 404) return create();
    if (r->status != 200) return retry("inspect: status " + std::to_string(r->status));
    auto d = decideDockerNetwork(json::parse(r->body, nullptr, false), *running);
    switch (d.verdict) {
      case DockerNetworkDecision::Verdict::kAdopt:
        return done("adopted " + d.detail);
      case DockerNetworkDecision::Verdict::kRecreate:
        spdlog::warn("containernet: {}", d.detail);
        return request(http::verb::delete_, "/networks/" + d.id, "",
                       [self = shared_from_this()](Result<HttpResponse> r) {
                         if (!r) return self->retry("remove: " + r.error().message());
                         if (r->status != 204 && r->status != 404)
                           return self->retry("remove: status " + std::to_string(r->status) + " " +
                                              r->body.substr(0, 200));
                         self->create();
                       });
      case DockerNetworkDecision::Verdict::kMismatch:
        if (d.detail != last_error) spdlog::error("containernet: {}", d.detail);
        last_error = d.detail;
        kept.reset();
        return next(options.recheck);  // the operator may remove it; then it is created
    }
  }

  void create() {
    std::string body = dockerNetworkCreateBody(*running).dump();
    request(http::verb::post, "/networks/create", body,
            [self = shared_from_this()](Result<HttpResponse> r) {
              if (!r) return self->retry("create: " + r.error().message());
              if (r->status != 201)
                return self->retry("create: status " + std::to_string(r->status) + " " +
                                   r->body.substr(0, 200));
              auto j = json::parse(r->body, nullptr, false);
              std::string id = stringAt(j, "Id");
              self->done("created Docker network " + self->running->name + " (" + id.substr(0, 12) +
                         ") with subnet " + self->running->subnet + " gateway " +
                         self->running->gateway + " bridge " +
                         (self->running->bridge.empty() ? "br-" + id.substr(0, 12)
                                                        : self->running->bridge) +
                         " MTU " + std::to_string(self->running->mtu));
            });
  }

  void done(const std::string& what) {
    bool fresh = kept != running;
    if (fresh) spdlog::info("containernet: {}", what);
    kept = running;
    if (fresh && options.on_kept) options.on_kept();
    last_error.clear();
    backoff = options.backoff_min;
    next(options.recheck);
  }

  void retry(const std::string& why) {
    std::string line = "Docker network " + running->name + ": " + why;
    spdlog::warn("containernet: {}; retrying in {} ms", line, backoff.count());
    auto wait = backoff;
    backoff = std::min(backoff * 2, options.backoff_max);
    next(wait);
  }

  // Ends the round; a newer spec starts the next one at once, else after `after`.
  void next(std::chrono::milliseconds after) {
    bool changed = running != want;
    running.reset();
    if (changed) return round();
    timer.expires_after(after);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->round();
    });
  }
};

DockerNetworkKeeper::DockerNetworkKeeper(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

DockerNetworkKeeper::~DockerNetworkKeeper() {
  stop();
}

void DockerNetworkKeeper::ensure(const DockerNetworkSpec& spec) {
  if (impl_->stopping || impl_->want == spec) return;
  impl_->want = spec;
  if (impl_->running) return;  // the round in flight starts the next one
  impl_->timer.cancel();
  impl_->backoff = impl_->options.backoff_min;
  impl_->round();
}

void DockerNetworkKeeper::stop() {
  impl_->stopping = true;
  impl_->timer.cancel();
  if (impl_->exchange) impl_->exchange->cancel();
  impl_->exchange.reset();
}

}  // namespace elasticdns::agent
