#include "agent/containernet/wireguard_device.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include "agent/containernet/rtnetlink.hpp"
#include "agent/traffic/process.hpp"

extern char** environ;

namespace elasticdns::agent {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kUapiTimeout{2000};
constexpr std::chrono::milliseconds kWgTimeout{5000};
constexpr std::chrono::seconds kStartBound{5};  // wireguard-go up to its UAPI socket
constexpr std::chrono::seconds kStopBound{2};   // SIGTERM to exit, then SIGKILL
constexpr std::chrono::milliseconds kPollPeriod{20};

// `name` as a path: itself when it has a '/', else the first executable in PATH.
std::string findProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return name;
}

// Whether `pid` runs a program named wireguard-go (/proc/PID/comm).
bool isWireGuardGo(pid_t pid) {
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  return comm && std::getline(comm, name) && name == "wireguard-go";
}

pid_t readPid(const std::string& pid_file) {
  std::ifstream in(pid_file);
  long pid = 0;
  if (!(in >> pid) || pid <= 1) return 0;
  return static_cast<pid_t>(pid);
}

void writePid(const std::string& pid_file, pid_t pid) {
  std::string tmp = pid_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << pid << "\n";
    if (!out) return;
  }
  std::rename(tmp.c_str(), pid_file.c_str());
}

// SIGTERM, wait up to kStopBound, SIGKILL. `child`: reap it with waitpid.
void terminate(pid_t pid, bool child) {
  if (pid <= 1) return;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + kStopBound;
  while (Clock::now() < deadline) {
    if (child ? waitpid(pid, nullptr, WNOHANG) == pid : ::kill(pid, 0) != 0) return;
    std::this_thread::sleep_for(kPollPeriod);
  }
  ::kill(pid, SIGKILL);
  if (child) waitpid(pid, nullptr, 0);
}

bool uapiAnswers(const std::string& interface) {
  auto answer = uapiExchange(uapiSocketPath(interface), "get=1\n\n", kUapiTimeout);
  if (!answer) return false;
  OPENSSL_cleanse(answer->data(), answer->size());
  return true;
}

class UserspaceDevice final : public WireGuardDevice {
 public:
  UserspaceDevice(std::string interface, pid_t pid, bool child, std::string pid_file)
      : interface_(std::move(interface)),
        pid_(pid),
        child_(child),
        pid_file_(std::move(pid_file)) {}

  bool kernel() const override { return false; }

  bool alive() override {
    if (pid_ <= 0) return true;  // adopted without a PID: the socket tells
    if (child_) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        spdlog::error("containernet: wireguard-go (PID {}) exited ({}); {} is gone", pid_,
                      WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status)),
                      interface_);
        pid_ = -1;
        return false;
      }
      return true;
    }
    return ::kill(pid_, 0) == 0;
  }

  Result<DeviceState> read() override {
    auto answer = uapiExchange(uapiSocketPath(interface_), "get=1\n\n", kUapiTimeout);
    if (!answer) return answer.error();
    auto state = parseUapiGet(answer.value());
    OPENSSL_cleanse(answer->data(), answer->size());  // it holds the private key
    return state;
  }

  std::optional<Error> apply(const PeerPlan& plan, const DeviceSettings& settings,
                             const std::string&) override {
    auto request = renderUapiSet(plan, settings);
    if (!request) return request.error();
    auto answer = uapiExchange(uapiSocketPath(interface_), request.value(), kUapiTimeout);
    OPENSSL_cleanse(request->data(), request->size());
    if (!answer) return answer.error();
    return parseUapiSetAnswer(answer.value());
  }

  void stopProcess() override {
    if (pid_ <= 0) return;
    terminate(pid_, child_);
    pid_ = -1;
    std::error_code ec;
    std::filesystem::remove(pid_file_, ec);
  }

 private:
  std::string interface_;
  pid_t pid_;
  bool child_;
  std::string pid_file_;
};

class KernelDevice final : public WireGuardDevice {
 public:
  explicit KernelDevice(std::string interface) : interface_(std::move(interface)) {}
  bool kernel() const override { return true; }
  bool alive() override { return rtnl::linkIndex(interface_) != 0; }

  Result<DeviceState> read() override {
    auto r = runProcess({findProgram("wg"), "show", interface_, "dump"}, kWgTimeout);
    if (!r.ok()) {
      OPENSSL_cleanse(r.output.data(), r.output.size());
      return Error{"wg show", "failed (exit " + std::to_string(r.exit_code) + ")"};
    }
    auto state = parseWgDump(r.output);
    OPENSSL_cleanse(r.output.data(), r.output.size());  // it holds the private key
    return state;
  }

  // One `wg set` per reconcile with every peer change (kernel WireGuard speaks generic
  // netlink, which `wg` implements).
  std::optional<Error> apply(const PeerPlan& plan, const DeviceSettings& settings,
                             const std::string& private_key_file) override {
    auto r =
        runProcess(wgSetArguments(findProgram("wg"), interface_, plan, settings, private_key_file),
                   kWgTimeout);
    if (!r.ok()) return Error{"wg set", r.output};
    return std::nullopt;
  }

  void stopProcess() override {}

 private:
  std::string interface_;
};

Result<std::unique_ptr<WireGuardDevice>> spawnWireGuardGo(const ContainerNetConfig& config,
                                                          const std::string& pid_file) {
  const std::string program = findProgram(config.wireguard_go);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);  // its log
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);     // none of our sockets
  std::vector<std::string> argv = {program, "-f", config.interface};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Error{"userspace", "cannot run " + program + ": " + strerror(rc)};
  auto deadline = Clock::now() + kStartBound;
  while (true) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid)
      return Error{"userspace",
                   program + " exited (" +
                       (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                          : "signal " + std::to_string(WTERMSIG(status))) +
                       ") before its UAPI socket " + uapiSocketPath(config.interface) +
                       " answered"};
    if (uapiAnswers(config.interface)) break;
    if (Clock::now() > deadline) {
      terminate(pid, true);
      return Error{"userspace", program + ": no UAPI socket " + uapiSocketPath(config.interface) +
                                    " within 5 s"};
    }
    std::this_thread::sleep_for(kPollPeriod);
  }
  writePid(pid_file, pid);
  spdlog::info("containernet: started {} -f {} (PID {})", program, config.interface, pid);
  return std::unique_ptr<WireGuardDevice>(
      std::make_unique<UserspaceDevice>(config.interface, pid, true, pid_file));
}

}  // namespace

Result<std::unique_ptr<WireGuardDevice>> openWireGuardDevice(const ContainerNetConfig& config,
                                                             const std::string& pid_file) {
  using Impl = WireGuardImplementation;
  const std::string& name = config.interface;
  if (config.implementation != Impl::kKernel && uapiAnswers(name)) {
    pid_t pid = readPid(pid_file);
    if (pid > 0 && !isWireGuardGo(pid)) pid = 0;
    spdlog::info("containernet: adopted the wireguard-go serving {} (PID {})", name,
                 pid > 0 ? std::to_string(pid) : "unknown");
    return std::unique_ptr<WireGuardDevice>(
        std::make_unique<UserspaceDevice>(name, pid, false, pid_file));
  }
  if (rtnl::linkIndex(name) != 0) {
    if (config.implementation != Impl::kUserspace) {
      auto device = std::make_unique<KernelDevice>(name);
      if (device->read()) return std::unique_ptr<WireGuardDevice>(std::move(device));
    }
    return Error{"interface", "an interface named " + name +
                                  " exists and is no WireGuard device this agent can configure"};
  }
  std::string kernel_failure;
  if (config.implementation != Impl::kUserspace) {
    int e = rtnl::createLink(name, "wireguard");
    if (e == 0) return std::unique_ptr<WireGuardDevice>(std::make_unique<KernelDevice>(name));
    kernel_failure = std::string("kernel WireGuard: ") + strerror(e) +
                     (e == EOPNOTSUPP ? " (no wireguard module)" : "");
    if (config.implementation == Impl::kKernel) return Error{"kernel", kernel_failure};
  }
  if (!kernel_failure.empty())
    spdlog::info("containernet: {}; trying userspace {}", kernel_failure, config.wireguard_go);
  auto spawned = spawnWireGuardGo(config, pid_file);
  if (!spawned && !kernel_failure.empty())
    return Error{"auto", kernel_failure + "; userspace: " + spawned.error().reason};
  return spawned;
}

std::optional<Error> removeWireGuardDevice(const ContainerNetConfig& config,
                                           const std::string& pid_file) {
  pid_t pid = readPid(pid_file);
  if (pid > 0 && isWireGuardGo(pid)) terminate(pid, false);
  std::error_code ec;
  std::filesystem::remove(pid_file, ec);
  int e = rtnl::deleteLink(config.interface);
  if (e != 0 && e != ENODEV)
    return Error{"interface", "cannot delete " + config.interface + ": " + strerror(e)};
  return std::nullopt;
}

}  // namespace elasticdns::agent
