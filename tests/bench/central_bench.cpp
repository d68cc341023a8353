// Benchmark of elasticdns-central. Starts the given binary on 127.0.0.1:0 with a temp data
// dir, then prints:
//   1. acknowledged writes per second (one client in series, then many clients at once);
//   2. fan-out: N long-poll watchers and one write: time until each watcher has it (p50, p99);
//   3. RSS of central holding 100,000 containers (after serving the full snapshot once).
// usage: central_bench CENTRAL_BINARY [--watchers N] [--containers N] [--writes N]
//                      [--clients N] [--durability full|normal]
//                      [--etcd ENDPOINTS [--replicas N]] (central over etcd, a fresh key
//                      prefix per run; the fan-out's watchers split over N replicas, the
//                      write through the first)
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kToken = "bench-admin-token";

struct Options {
  std::string central;
  size_t watchers = 1000;
  size_t containers = 100'000;
  size_t writes = 10'000;
  size_t clients = 32;
  std::string durability = "full";
  std::string etcd;     // etcd endpoints: central runs with store etcd, a fresh prefix per run
  size_t replicas = 1;  // with etcd: the fan-out's watchers are split over this many replicas
};

struct CentralProcess {
  pid_t pid = -1;
  uint16_t port = 0;
  std::filesystem::path dir;

  void start(const Options& o, size_t replica = 0) {
    std::string prefix = "/central-bench-" + std::to_string(getpid()) + "/";  // all replicas'
    dir = std::filesystem::temp_directory_path() /
          ("central-bench-" + std::to_string(getpid()) + "-" + std::to_string(replica));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "admin.token") << kToken << "\n";
    int out[2];
    if (pipe(out) != 0) std::exit(1);
    pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      close(out[0]);
      std::string data = (dir / "data").string(), token = (dir / "admin.token").string();
      std::vector<const char*> args = {o.central.c_str(), "--listen",    "127.0.0.1:0",
                                       "--data-dir",      data.c_str(),  "--admin-token-file",
                                       token.c_str(),     "--log-level", "warn"};
      if (o.etcd.empty()) {
        args.insert(args.end(), {"--durability", o.durability.c_str()});
      } else {
        args.insert(args.end(), {"--store", "etcd", "--etcd-endpoints", o.etcd.c_str(),
                                 "--etcd-prefix", prefix.c_str()});
      }
      args.push_back(nullptr);
      execv(o.central.c_str(), const_cast<char* const*>(args.data()));
      _exit(127);
    }
    close(out[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    auto colon = line.rfind(':');
    if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
      std::fprintf(stderr, "central did not start: '%s'\n", line.c_str());
      stop();
      std::exit(1);
    }
    port = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  void stop() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
      pid = -1;
    }
    std::filesystem::remove_all(dir);
  }
  long statusKb(const char* field) const {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::string(field).size()));
    return -1;
  }
};

// A keep-alive client that sends requests one after the other.
class SyncClient {
 public:
  explicit SyncClient(uint16_t port) : stream_(io_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  unsigned call(http::verb method, const std::string& target, const std::string& body = {},
                std::string* out = nullptr) {
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + kToken);
    req.body() = body;
    req.prepare_payload();
    http::write(stream_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 32);
    http::read(stream_, buffer_, parser);
    if (out) *out = std::move(parser.get().body());
    return parser.get().result_int();
  }

 private:
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

std::string containerBody(size_t i) {
  char buf[200];
  std::snprintf(
      buf, sizeof buf,
      R"({"service":"svc%zu","version":"v%zu","server":"host%zu","address":"10.%zu.%zu.%zu"})",
      i % 50, i % 20, i % 100, (i >> 16) & 255, (i >> 8) & 255, i & 255);
  return buf;
}

// 64 hex characters, like a Docker id.
std::string containerId(size_t i) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%016zx%016zx%016zx%016zx", i, i * 7919, i * 104729, i + 1);
  return buf;
}

// Writes containers [first, first+count) from `clients` threads; returns seconds taken.
double writeContainers(uint16_t port, size_t first, size_t count, size_t clients) {
  std::atomic<size_t> next{first};
  std::atomic<size_t> failed{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (size_t t = 0; t < clients; ++t)
    threads.emplace_back([&] {
      SyncClient c(port);
      for (size_t i; (i = next.fetch_add(1)) < first + count;)
        if (c.call(http::verb::put, "/v1/containers/" + containerId(i), containerBody(i)) != 200)
          failed.fetch_add(1);
    });
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (failed) std::fprintf(stderr, "  %zu writes failed\n", failed.load());
  return secs;
}

uint64_t currentIndex(uint16_t port) {
  SyncClient c(port);
  std::string body;
  c.call(http::verb::get, "/healthz", {}, &body);
  auto pos = body.find("\"index\":");
  return std::stoull(body.substr(pos + 8));
}

double metric(uint16_t port, const std::string& name) {
  SyncClient c(port);
  std::string body;
  c.call(http::verb::get, "/metrics", {}, &body);
  auto pos = body.find("\n" + name + " ");
  return pos == std::string::npos ? -1 : std::stod(body.substr(pos + name.size() + 2));
}

// One long-poll on its own connection; records when its answer arrived.
struct Watcher : std::enable_shared_from_this<Watcher> {
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::empty_body> req;
  http::response<http::string_body> res;
  Clock::time_point done{};
  bool ok = false;

  explicit Watcher(asio::io_context& io) : stream(io) {}
  void start(uint16_t port, uint64_t index) {
    req = {http::verb::get, "/v1/topology?index=" + std::to_string(index) + "&wait=120s", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + kToken);
    stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                         [self = shared_from_this()](beast::error_code ec) {
                           if (ec) return;
                           http::async_write(self->stream, self->req,
                                             [self](beast::error_code ec2, size_t) {
                                               if (!ec2) self->read();
                                             });
                         });
  }
  void read() {
    http::async_read(stream, buffer, res,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->done = Clock::now();
                       self->ok = !ec && self->res.result_int() == 200 &&
                                  self->res.body().find("\"kind\":\"delta\"") != std::string::npos;
                     });
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: central_bench CENTRAL_BINARY [--watchers N] [--containers N] "
                 "[--writes N] [--clients N] [--durability full|normal] "
                 "[--etcd http://HOST:PORT,... [--replicas N]]\n");
    return 2;
  }
  o.central = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string f = argv[i], v = argv[i + 1];
    if (f == "--watchers")
      o.watchers = std::stoul(v);
    else if (f == "--containers")
      o.containers = std::stoul(v);
    else if (f == "--writes")
      o.writes = std::stoul(v);
    else if (f == "--clients")
      o.clients = std::stoul(v);
    else if (f == "--durability")
      o.durability = v;
    else if (f == "--etcd")
      o.etcd = v;
    else if (f == "--replicas")
      o.replicas = std::max<size_t>(1, std::stoul(v));
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  signal(SIGPIPE, SIG_IGN);

  CentralProcess central;
  central.start(o);
  std::string load;
  std::getline(std::ifstream("/proc/loadavg"), load);
  std::string store = o.etcd.empty() ? "sqlite, durability " + o.durability : "etcd";
  std::printf("central pid %d on 127.0.0.1:%u, store %s, %u cpus, loadavg %s\n", central.pid,
              central.port, store.c_str(), std::thread::hardware_concurrency(), load.c_str());

  // 1. Acknowledged writes per second.
  size_t serial = std::min<size_t>(o.writes / 5, 2000);
  double s1 = writeContainers(central.port, 0, serial, 1);
  std::printf("writes, 1 client in series:   %zu in %.2f s = %.0f acknowledged writes/s\n", serial,
              s1, double(serial) / s1);
  double s2 = writeContainers(central.port, serial, o.writes, o.clients);
  std::printf("writes, %zu clients at once:  %zu in %.2f s = %.0f acknowledged writes/s\n",
              o.clients, o.writes, s2, double(o.writes) / s2);
  size_t written = serial + o.writes;

  // 2. Fan-out to N watchers (over the replicas, the write through the first).
  std::vector<CentralProcess> others(o.etcd.empty() ? 0 : o.replicas - 1);
  for (size_t r = 0; r < others.size(); ++r) others[r].start(o, r + 1);
  {
    std::vector<uint16_t> ports = {central.port};
    for (auto& c : others) ports.push_back(c.port);
    asio::io_context io;
    uint64_t index = currentIndex(central.port);
    for (uint16_t p : ports)  // the other replicas follow the writes of part 1 first
      while (currentIndex(p) != index) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::vector<std::shared_ptr<Watcher>> watchers;
    for (size_t i = 0; i < o.watchers; ++i) {
      watchers.push_back(std::make_shared<Watcher>(io));
      watchers.back()->start(ports[i % ports.size()], index);
    }
    std::thread loop([&] { io.run(); });
    auto deadline = Clock::now() + std::chrono::seconds(60);
    auto waiting = [&] {
      double n = 0;
      for (uint16_t p : ports) n += metric(p, "elasticdns_central_watchers");
      return n;
    };
    while (waiting() < double(o.watchers) && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::printf("fan-out: %.0f watchers waiting on %zu replica(s)\n", waiting(), ports.size());
    double commit_before = metric(central.port, "elasticdns_central_commit_seconds_sum");
    std::vector<double> fanout_before;
    for (uint16_t p : ports)
      fanout_before.push_back(metric(p, "elasticdns_central_fanout_seconds_sum"));
    auto t0 = Clock::now();
    SyncClient(central.port)
        .call(http::verb::put, "/v1/containers/" + containerId(written), containerBody(written));
    auto acked = Clock::now();
    ++written;
    loop.join();
    double commit_ms =
        (metric(central.port, "elasticdns_central_commit_seconds_sum") - commit_before) * 1000;
    std::string fanout_ms;
    for (size_t r = 0; r < ports.size(); ++r) {
      char buf[32];
      std::snprintf(
          buf, sizeof buf, "%s%.2f", r ? " / " : "",
          (metric(ports[r], "elasticdns_central_fanout_seconds_sum") - fanout_before[r]) * 1000);
      fanout_ms += buf;
    }
    std::vector<double> ms;
    size_t ok = 0;
    for (auto& w : watchers)
      if (w->ok) {
        ++ok;
        ms.push_back(std::chrono::duration<double, std::milli>(w->done - t0).count());
      }
    std::printf(
        "fan-out: %zu/%zu watchers got the write; from sending it: p50 %.2f ms, p99 %.2f ms, "
        "max %.2f ms (the write itself was acknowledged after %.2f ms)\n",
        ok, o.watchers, percentile(ms, 0.5), percentile(ms, 0.99), percentile(ms, 1.0),
        std::chrono::duration<double, std::milli>(acked - t0).count());
    std::printf(
        "fan-out: of which the store's commit took %.2f ms; after it: p50 %.2f ms, "
        "p99 %.2f ms\n",
        commit_ms, percentile(ms, 0.5) - commit_ms, percentile(ms, 0.99) - commit_ms);
    std::printf(
        "fan-out: central handed the change to every watcher's socket in %s ms "
        "(elasticdns_central_fanout_seconds per replica; the rest is the kernel and this "
        "client)\n",
        fanout_ms.c_str());
  }
  for (auto& c : others) c.stop();

  // 3. RSS at N containers.
  if (o.containers > written) {
    double s3 = writeContainers(central.port, written, o.containers - written, o.clients);
    std::printf("filled to %zu containers in %.1f s (%.0f writes/s)\n", o.containers, s3,
                double(o.containers - written) / s3);
  }
  std::printf("RSS at %zu containers: %ld MB (before any full snapshot)\n",
              std::max(o.containers, written), central.statusKb("VmRSS:") / 1024);
  {
    SyncClient c(central.port);
    std::string body;
    auto start = Clock::now();
    c.call(http::verb::get, "/v1/topology", {}, &body);
    std::printf("full snapshot: %.1f MB in %.0f ms\n", double(body.size()) / 1e6,
                std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::printf("RSS at %zu containers: %ld MB after serving the snapshot (peak %ld MB)\n",
              std::max(o.containers, written), central.statusKb("VmRSS:") / 1024,
              central.statusKb("VmHWM:") / 1024);
  central.stop();
  return 0;
}
