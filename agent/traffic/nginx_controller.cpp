#include "agent/traffic/nginx_controller.hpp"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <utility>

#include <spdlog/spdlog.h>

#include "agent/traffic/process.hpp"

namespace elasticdns::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::seconds kHelperTimeout{20};  // nginx -t, systemctl reload, openssl
constexpr const char* kSelfSignedCert = "self-signed.crt";
constexpr const char* kSelfSignedKey = "self-signed.key";

std::optional<std::string> readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Written next to `p` and renamed over it: a reader sees the old file or the new one.
bool writeFileAtomically(const fs::path& p, const std::string& text, std::string& error) {
  fs::path tmp = p;
  tmp += ".elasticdns-tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      error = "cannot write " + tmp.string();
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    error = "cannot move " + tmp.string() + " to " + p.string() + ": " + ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

std::string testConfig(const TrafficSettings& s) {
  std::ostringstream o;
  o << "# Written by elasticdns-agent: the configuration `nginx -t` checks candidates with.\n";
  for (const auto& inc : s.config.test_includes) o << "include " << nginxQuote(inc) << ";\n";
  o << "pid " << nginxQuote((s.work_dir / "nginx-test.pid").string()) << ";\n"
    << "events {}\n"
    << "include " << nginxQuote((s.work_dir / "candidate-stream.conf").string()) << ";\n"
    << "http {\n    include " << nginxQuote((s.work_dir / "candidate-http.conf").string())
    << ";\n}\n";
  return o.str();
}

std::string firstLines(const std::string& text, size_t lines) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  for (size_t i = 0; i < lines && std::getline(in, line); ++i) out += (i ? " | " : "") + line;
  return out;
}

}  // namespace

struct NginxController::Metrics {
  explicit Metrics(metrics::Registry& r)
      : renders(r.counter("elasticdns_traffic_renders_total",
                          "Topologies rendered to nginx configuration")),
        reloads(r.counter("elasticdns_traffic_reloads_total",
                          "nginx reloads after a new configuration was installed")),
        rejected(r.counter("elasticdns_traffic_reload_failures_total",
                           "New nginx configurations not applied, by reason",
                           "reason=\"invalid\"")),
        reload_failed(r.counter("elasticdns_traffic_reload_failures_total",
                                "New nginx configurations not applied, by reason",
                                "reason=\"reload\"")),
        write_failed(r.counter("elasticdns_traffic_reload_failures_total",
                               "New nginx configurations not applied, by reason",
                               "reason=\"write\"")),
        generation(r.gauge("elasticdns_traffic_last_good_generation",
                           "Configurations installed since start (0: none yet)")),
        index(r.gauge("elasticdns_traffic_last_good_index",
                      "Topology index the installed configuration was rendered from")),
        current(r.gauge("elasticdns_traffic_config_current",
                        "1 when nginx runs the configuration of the latest topology")) {}
  metrics::Counter& renders;
  metrics::Counter& reloads;
  metrics::Counter& rejected;
  metrics::Counter& reload_failed;
  metrics::Counter& write_failed;
  metrics::Gauge& generation;
  metrics::Gauge& index;
  metrics::Gauge& current;
};

RenderOptions renderOptionsOf(const TrafficSettings& s) {
  RenderOptions o;
  o.domain = s.domain;
  o.resolver = s.resolver;
  o.valid = s.config.valid;
  o.retries = s.config.retries;
  o.connect_timeout = s.config.connect_timeout;
  fs::path dir = s.config.cert_dir;
  o.certificate_for = [dir](std::string_view name) -> std::optional<CertificatePair> {
    std::string stem = certificateStem(name);
    if (stem.empty()) return std::nullopt;
    std::error_code ec;
    fs::path crt = dir / (stem + ".crt"), key = dir / (stem + ".key");
    if (!fs::is_regular_file(crt, ec) || !fs::is_regular_file(key, ec)) return std::nullopt;
    return CertificatePair{crt.string(), key.string()};
  };
  o.fallback = {(s.work_dir / kSelfSignedCert).string(), (s.work_dir / kSelfSignedKey).string()};
  return o;
}

NginxController::NginxController(TrafficSettings settings, metrics::Registry& metrics)
    : settings_(std::move(settings)), metrics_(std::make_unique<Metrics>(metrics)) {
  // What is installed already (a restarted agent): the same rendering then needs no reload.
  installed_http_ = readFile(settings_.config.http_file).value_or("");
  installed_stream_ = readFile(settings_.config.stream_file).value_or("");
}

NginxController::~NginxController() {
  stop();
}

void NginxController::start() {
  thread_ = std::thread([this] { run(); });
}

void NginxController::update(std::shared_ptr<const model::Topology> topology) {
  {
    std::lock_guard lock(mu_);
    next_ = std::move(topology);
  }
  cv_.notify_one();
}

void NginxController::recheck() {
  {
    std::lock_guard lock(mu_);
    if (!next_) next_ = last_;
    retry_failed_ = true;
  }
  cv_.notify_one();
}

void NginxController::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void NginxController::run() {
  while (true) {
    std::shared_ptr<const model::Topology> t;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || next_; });
      if (stopping_) return;
      t = std::move(next_);
      last_ = t;
      if (std::exchange(retry_failed_, false)) {
        failed_http_.clear();
        failed_stream_.clear();
      }
    }
    apply(*t);
  }
}

// The fallback certificate for names without their own: made once, kept in the work directory.
bool NginxController::ensureSelfSigned() {
  fs::path crt = settings_.work_dir / kSelfSignedCert, key = settings_.work_dir / kSelfSignedKey;
  std::error_code ec;
  if (fs::exists(crt, ec) && fs::exists(key, ec)) return true;
  auto r = runProcess(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
       "-subj", "/CN=elasticdns-self-signed", "-keyout", key.string(), "-out", crt.string()},
      kHelperTimeout);
  if (!r.ok()) {
    spdlog::error("traffic: cannot make the self-signed certificate: {}", firstLines(r.output, 3));
    return false;
  }
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write, ec);
  spdlog::warn("traffic: made a self-signed certificate {} for HTTPS names without their own",
               crt.string());
  return true;
}

TrafficOutcome NginxController::apply(const model::Topology& topology) {
  auto rendered = renderTraffic(topology, renderOptionsOf(settings_));
  metrics_->renders.inc();
  if (rendered.warnings != warned_) {
    for (const auto& w : rendered.warnings) spdlog::warn("traffic: {}", w);
    warned_ = rendered.warnings;
  }
  if (rendered.http == installed_http_ && rendered.stream == installed_stream_) {
    if (!reload_pending_) {
      metrics_->current.set(1);
      return TrafficOutcome::kUnchanged;
    }
    std::string error;
    if (!reload(error)) {
      metrics_->reload_failed.inc();
      spdlog::error("traffic: nginx reload failed again: {}", error);
      return TrafficOutcome::kReloadFailed;
    }
    reload_pending_ = false;
    metrics_->reloads.inc();
    metrics_->current.set(1);
    return TrafficOutcome::kInstalled;
  }
  if (rendered.http == failed_http_ && rendered.stream == failed_stream_) {
    metrics_->current.set(0);
    return TrafficOutcome::kRejected;  // logged and counted when it first failed
  }
  return install(rendered, topology.index);
}

// A candidate nginx refused: remembered (so it is logged once), kept for inspection as
// failed-*.conf, counted.
void NginxController::keepRejected(const RenderedTraffic& r) {
  std::error_code ec;
  failed_http_ = r.http;
  failed_stream_ = r.stream;
  fs::rename(settings_.work_dir / "candidate-http.conf", settings_.work_dir / "failed-http.conf",
             ec);
  fs::rename(settings_.work_dir / "candidate-stream.conf",
             settings_.work_dir / "failed-stream.conf", ec);
  metrics_->rejected.inc();
  metrics_->current.set(0);
}

TrafficOutcome NginxController::install(const RenderedTraffic& r, uint64_t index) {
  std::error_code ec;
  fs::create_directories(settings_.work_dir, ec);
  if (r.http.find("ssl_certificate") != std::string::npos) ensureSelfSigned();
  std::string error;
  fs::path cand_http = settings_.work_dir / "candidate-http.conf";
  fs::path cand_stream = settings_.work_dir / "candidate-stream.conf";
  fs::path test_conf = settings_.work_dir / "nginx-test.conf";
  if (!writeFileAtomically(cand_http, r.http, error) ||
      !writeFileAtomically(cand_stream, r.stream, error) ||
      !writeFileAtomically(test_conf, testConfig(settings_), error)) {
    metrics_->write_failed.inc();
    metrics_->current.set(0);
    spdlog::error("traffic: {}", error);
    return TrafficOutcome::kWriteFailed;
  }
  auto test =
      runProcess({settings_.config.nginx, "-t", "-q", "-e", "stderr", "-c", test_conf.string()},
                 kHelperTimeout);
  if (!test.ok()) {
    keepRejected(r);
    spdlog::error(
        "traffic: nginx rejected the configuration of topology index {}; nginx keeps the last "
        "good one; the candidate is {}/failed-*.conf: {}",
        index, settings_.work_dir.string(), firstLines(test.output, 5));
    return TrafficOutcome::kRejected;
  }
  // Stream first: a reload between the two moves sees an http file that is either old or new,
  // and a stream file nginx -t accepted with it.
  if (!writeFileAtomically(settings_.config.stream_file, r.stream, error) ||
      !writeFileAtomically(settings_.config.http_file, r.http, error)) {
    metrics_->write_failed.inc();
    metrics_->current.set(0);
    spdlog::error("traffic: {}", error);
    return TrafficOutcome::kWriteFailed;
  }
  if (auto e = checkMainConfig(); !e.empty()) {
    // Put the last good files back: nginx has not been reloaded, so it never saw these.
    std::string restore_error;
    if (!writeFileAtomically(settings_.config.stream_file, installed_stream_, restore_error) ||
        !writeFileAtomically(settings_.config.http_file, installed_http_, restore_error))
      spdlog::error("traffic: cannot put the last good files back: {}", restore_error);
    keepRejected(r);
    spdlog::error(
        "traffic: nginx rejected {} with the configuration of topology index {}; the last good "
        "files are back; the candidate is {}/failed-*.conf: {}",
        settings_.config.main_conf, index, settings_.work_dir.string(), e);
    return TrafficOutcome::kRejected;
  }
  installed_http_ = r.http;
  installed_stream_ = r.stream;
  failed_http_.clear();
  failed_stream_.clear();
  const uint64_t generation = ++generation_;
  metrics_->generation.set(static_cast<double>(generation));
  metrics_->index.set(static_cast<double>(index));
  if (!reload(error)) {
    reload_pending_ = true;
    metrics_->reload_failed.inc();
    metrics_->current.set(0);
    spdlog::error(
        "traffic: installed the configuration of topology index {} but the nginx "
        "reload failed: {}",
        index, error);
    return TrafficOutcome::kReloadFailed;
  }
  reload_pending_ = false;
  metrics_->reloads.inc();
  metrics_->current.set(1);
  spdlog::info("traffic: nginx reloaded with the configuration of topology index {}", index);
  return TrafficOutcome::kInstalled;
}

std::string NginxController::checkMainConfig() {
  if (settings_.config.main_conf.empty()) return "";
  auto r = runProcess(
      {settings_.config.nginx, "-t", "-q", "-e", "stderr", "-c", settings_.config.main_conf},
      kHelperTimeout);
  if (r.ok()) return "";
  return r.output.empty() ? "nginx -t failed" : firstLines(r.output, 5);
}

bool NginxController::reload(std::string& error) {
  if (settings_.config.reload == NginxReload::kSystemctl) {
    auto r = runProcess({"/usr/bin/systemctl", "reload", settings_.config.unit}, kHelperTimeout);
    if (!r.ok())
      error = "systemctl reload " + settings_.config.unit + ": " + firstLines(r.output, 3);
    return r.ok();
  }
  auto text = readFile(settings_.config.pid_file);
  long pid = 0;
  if (text) {
    try {
      pid = std::stol(*text);
    } catch (const std::exception&) {
      pid = 0;
    }
  }
  if (pid <= 1) {
    error = "no nginx PID in " + settings_.config.pid_file;
    return false;
  }
  if (kill(static_cast<pid_t>(pid), SIGHUP) != 0) {
    error = "SIGHUP to PID " + std::to_string(pid) + ": " + strerror(errno);
    return false;
  }
  return true;
}

}  // namespace elasticdns::agent
