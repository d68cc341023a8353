#include "central/etcd_store.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <cstring>
#include <mutex>
#include <thread>

#include "elasticdns/http_client.hpp"
#include "elasticdns/text.hpp"
#include "elasticdns/validate.hpp"

namespace elasticdns::central {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kBeat{500};         // heartbeat period
constexpr std::chrono::milliseconds kStaleAfter{1500};  // no quorum answer for this long
constexpr std::chrono::milliseconds kWatchRetry{200};   // before reopening a broken watch
constexpr int kStuckBeats = 3;                          // beats ahead of the watch → reopen
constexpr size_t kLoadBodyLimit = size_t{1} << 30;      // a whole topology
constexpr size_t kWatchLineLimit = size_t{64} << 20;    // one watch response

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kB64[(v >> s) & 63];
  }
  if (size_t rest = in.size() - i) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += rest == 2 ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> unbase64(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(kB64, c);
    if (!p || c == '\0') return std::nullopt;
    acc = acc << 6 | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

// The first key after every key that starts with `prefix` (etcd's range_end of a prefix).
std::string prefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<uint8_t>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

// etcd's int64 fields are JSON strings, and absent when zero.
uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (!it->is_string()) return 0;
  return std::strtoull(it->get<std::string>().c_str(), nullptr, 10);
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

constexpr size_t kMaxQuotedBody = 200;  // of an answer that is not etcd's JSON, in errors

// What an error answer of the gateway says: {"error":..,"code":N,"message":..}; any other
// server's (a proxy in between, a port that is not etcd's) as it is, cut short.
std::string etcdMessage(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object()) {
    std::string m = str(j, "message");
    if (m.empty()) m = str(j, "error");
    if (!m.empty()) return m;
  }
  std::string out = "HTTP " + std::to_string(r.status);
  std::string_view body(r.body);
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back())))
    body.remove_suffix(1);
  if (!body.empty() && !j.is_object()) out += ": " + std::string(body.substr(0, kMaxQuotedBody));
  return out;
}

bool isAuthError(const HttpResponse& r, const std::string& message) {
  return r.status == 401 || message.find("auth token") != std::string::npos ||
         message.find("user name is empty") != std::string::npos;
}

// A request worth trying on another member: it may not have reached the quorum.
bool isUnavailable(const HttpResponse& r, const std::string& message) {
  return r.status == 503 || r.status == 504 || r.status == 502 ||
         message.find("no leader") != std::string::npos ||
         message.find("timed out") != std::string::npos ||
         message.find("unavailable") != std::string::npos;
}

struct KeyParts {
  bool meta = false;
  std::optional<protocol::RecordKind> kind;
  std::string key;
};

}  // namespace

struct EtcdStore::Impl {
  EtcdConfig config;
  std::vector<HttpUrl> urls;             // for logs
  std::vector<HttpDestination> dests;    // the same endpoints, with TLS settings for https
  std::shared_ptr<const TlsClient> tls;  // https endpoints
  std::string password;
  std::string meta_key;

  std::mutex token_mu;
  std::string token;  // etcd's auth token (both threads)

  // The serving thread's requests (load, commit): run to completion on a private io_context.
  asio::io_context sync_io;
  size_t sync_endpoint = 0;

  // The follower's thread: the watch and the heartbeat.
  asio::io_context follow_io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  Follow follow;
  std::atomic<size_t> watch_endpoint{0};
  size_t beat_endpoint = 0;
  uint64_t next_revision = 1;  // the watch's next revision
  std::shared_ptr<HttpBodyStream> stream;
  uint64_t stream_id = 0;  // callbacks of an older stream are ignored
  std::string lines;
  std::optional<asio::steady_timer> beat_timer;
  std::optional<asio::steady_timer> retry_timer;
  int beats_ahead = 0;
  size_t beat_failures = 0;  // heartbeats failed in a row
  bool waiting_resume = false;

  // Serving thread only.
  uint64_t loaded_revision = 0;  // etcd's revision of the last load's snapshot
  Clock::time_point last_ok = Clock::now();
  bool healthy = true;

  KeyParts parse(std::string_view full) const {
    KeyParts out;
    if (full.substr(0, config.prefix.size()) != config.prefix) return out;
    std::string_view rest = full.substr(config.prefix.size());
    if (rest == "meta") {
      out.meta = true;
      return out;
    }
    constexpr std::string_view kRecords = "records/";
    if (rest.substr(0, kRecords.size()) != kRecords) return out;
    rest.remove_prefix(kRecords.size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash + 1 == rest.size()) return out;
    out.kind = protocol::kindNamed(rest.substr(0, slash));
    out.key = std::string(rest.substr(slash + 1));
    return out;
  }

  std::string recordKey(protocol::RecordKind kind, const std::string& key) const {
    return config.prefix + "records/" + std::string(protocol::toString(kind)) + "/" + key;
  }

  HttpRequest request(const std::string& path, const json& body, size_t body_limit) {
    HttpRequest r;
    r.method = http::verb::post;
    r.target = path;
    r.body = body.dump();
    r.timeout = config.timeout;
    r.body_limit = body_limit;
    std::lock_guard lock(token_mu);
    if (!token.empty()) r.headers.emplace_back("Authorization", token);
    return r;
  }

  // One exchange on `io`, run to completion (blocks the calling thread up to the timeout).
  static Result<HttpResponse> exchange(asio::io_context& io, const HttpDestination& to,
                                       HttpRequest r) {
    std::optional<Result<HttpResponse>> out;
    io.restart();
    httpRequest(io.get_executor(), to, std::move(r),
                [&](Result<HttpResponse> res) { out = std::move(res); });
    io.run();
    if (!out) return Error{"etcd", "no answer"};
    return std::move(*out);
  }

  std::optional<Error> authenticate(asio::io_context& io, size_t endpoint) {
    HttpRequest r;
    r.method = http::verb::post;
    r.target = "/v3/auth/authenticate";
    r.body = json{{"name", config.username}, {"password", password}}.dump();
    r.timeout = config.timeout;
    auto res = exchange(io, dests[endpoint], std::move(r));
    if (!res) return res.error();
    if (res->status != 200) return Error{"etcd", "authenticate: " + etcdMessage(res.value())};
    json j = json::parse(res->body, nullptr, false);
    if (!j.is_object() || str(j, "token").empty())
      return Error{"etcd", "authenticate: no token in the answer"};
    std::lock_guard lock(token_mu);
    token = str(j, "token");
    return std::nullopt;
  }

  // A blocking call on the serving thread: each endpoint in turn from the last that answered,
  // until one gives an answer that is not "unavailable". An expired token is renewed once.
  Result<json> call(const std::string& path, const json& body, size_t body_limit = 1 << 20) {
    std::string errors;
    bool renewed = false;
    for (size_t attempt = 0; attempt < urls.size(); ++attempt) {
      size_t endpoint = (sync_endpoint + attempt) % urls.size();
      const HttpUrl& url = urls[endpoint];
      auto res = exchange(sync_io, dests[endpoint], request(path, body, body_limit));
      std::string why;
      if (res && res->status == 200) {
        sync_endpoint = endpoint;
        json j = json::parse(res->body, nullptr, false);
        if (j.is_discarded()) return Error{"etcd", url.host + ":" + url.port + ": not JSON"};
        return j;
      }
      if (res) {
        why = etcdMessage(res.value());
        if (isAuthError(res.value(), why) && !config.username.empty() && !renewed) {
          renewed = true;
          if (auto e = authenticate(sync_io, endpoint)) return *e;
          --attempt;
          continue;
        }
        if (!isUnavailable(res.value(), why)) return Error{"etcd", why};
      } else {
        why = res.error().reason;
        // What a TLS port does to a plain request (etcd's: no answer at all).
        if (!url.https && why.find("end of stream") != std::string::npos)
          why += " (closed without an answer: is it an https:// port?)";
      }
      errors += (errors.empty() ? "" : "; ") + url.host + ":" + url.port + ": " + why;
    }
    return Error{"etcd", "no endpoint answered: " + errors};
  }

  // ---- the follower (its own thread) ----

  void post(std::function<void()> fn) { follow.post(std::move(fn)); }

  void openWatch() {
    if (waiting_resume) return;
    const HttpDestination& to = dests[watch_endpoint % urls.size()];
    json create = {{"key", base64(config.prefix)},
                   {"range_end", base64(prefixEnd(config.prefix))},
                   {"start_revision", std::to_string(next_revision)}};
    HttpRequest r = request("/v3/watch", json{{"create_request", create}}, 0);
    lines.clear();
    uint64_t id = ++stream_id;
    stream = httpOpenBodyStream(follow_io.get_executor(), to, std::move(r),
                                [this, id](Result<unsigned> status) {
                                  if (id != stream_id) return;  // replaced
                                  if (!status) return watchFailed(status.error().message());
                                  if (status.value() != 200)
                                    return watchFailed("HTTP " + std::to_string(status.value()));
                                  readWatch();
                                });
  }

  void readWatch() {
    if (!stream) return;
    stream->read([this, id = stream_id](Result<std::string> chunk) {
      if (id != stream_id) return;  // replaced
      if (!chunk) return watchFailed(chunk.error().message());
      lines += chunk.value();
      size_t start = 0, nl;
      while ((nl = lines.find('\n', start)) != std::string::npos) {
        std::string_view line(lines.data() + start, nl - start);
        start = nl + 1;
        if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
        if (!onWatchLine(line)) return;
      }
      lines.erase(0, start);
      if (lines.size() > kWatchLineLimit) return watchFailed("an answer over 64 MiB");
      readWatch();
    });
  }

  // One watch response; false when the watch ended.
  bool onWatchLine(std::string_view line) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("result") || !j["result"].is_object()) {
      watchFailed(j.is_object() && j.contains("error") ? j["error"].dump()
                                                       : std::string("an unreadable answer"));
      return false;
    }
    const json& r = j["result"];
    if (r.value("canceled", false)) {
      closeStream();
      if (uint64_t compact = u64(r, "compact_revision")) {
        spdlog::warn(
            "central.etcd: watch from revision {} is behind the compaction at {}: "
            "reloading",
            next_revision, compact);
        waiting_resume = true;
        post([this] { follow.compacted(); });
        return false;
      }
      watchFailed("canceled by etcd");
      return false;
    }
    auto events = r.find("events");
    if (events == r.end() || !events->is_array()) return true;
    uint64_t revision = 0;
    std::vector<RemoteChange> changes;
    auto flush = [&] {
      if (revision == 0) return;
      post([this, revision, c = std::move(changes)]() mutable {
        follow.changes(revision, std::move(c));
      });
      changes = {};
      next_revision = revision + 1;
    };
    for (const json& ev : *events) {
      const json& kv = ev.contains("kv") ? ev["kv"] : json::object();
      uint64_t rev = u64(kv, "mod_revision");
      if (rev != revision) {
        flush();
        revision = rev;
      }
      auto key = unbase64(str(kv, "key"));
      if (!key) continue;
      KeyParts parts = parse(*key);
      if (parts.meta) continue;
      if (!parts.kind) {
        spdlog::warn("central.etcd: ignoring a key that is not central's: {}", *key);
        continue;
      }
      RemoteChange c;
      c.kind = *parts.kind;
      c.key = parts.key;
      c.op = str(ev, "type") == "DELETE" ? protocol::ChangeOp::kDelete : protocol::ChangeOp::kPut;
      if (c.op == protocol::ChangeOp::kPut) c.value = unbase64(str(kv, "value")).value_or("");
      changes.push_back(std::move(c));
    }
    flush();
    return true;
  }

  void closeStream() {
    ++stream_id;
    if (stream) stream->cancel();
    stream.reset();
  }

  void watchFailed(const std::string& why) {
    closeStream();
    size_t next = (watch_endpoint + 1) % urls.size();
    spdlog::warn("central.etcd: the watch on {} ended ({}): resuming from revision {} on {}",
                 urls[watch_endpoint % urls.size()].text(), why, next_revision, urls[next].text());
    watch_endpoint = next;
    retry_timer->expires_after(kWatchRetry);
    retry_timer->async_wait([this](boost::system::error_code ec) {
      if (!ec && !stream) openWatch();
    });
  }

  // The next heartbeat: after kBeat, or at once on the next member after a failed one, until
  // every member failed in a row.
  void beat() {
    bool again = beat_failures % urls.size() != 0;
    beat_timer->expires_after(again ? std::chrono::milliseconds(0) : kBeat);
    beat_timer->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      const HttpDestination& to = dests[beat_endpoint % urls.size()];
      HttpRequest r = request("/v3/kv/range", json{{"key", base64(meta_key)}}, 1 << 16);
      r.timeout = std::min(config.timeout, std::chrono::milliseconds(1000));
      httpRequest(follow_io.get_executor(), to, std::move(r), [this](Result<HttpResponse> res) {
        onBeat(std::move(res));
        beat();
      });
    });
  }

  void onBeat(Result<HttpResponse> res) {
    std::optional<uint64_t> meta_revision;
    if (res && res->status == 200) {
      json j = json::parse(res->body, nullptr, false);
      if (j.is_object()) {
        meta_revision = 0;
        if (j.contains("kvs") && j["kvs"].is_array() && !j["kvs"].empty())
          meta_revision = u64(j["kvs"][0], "mod_revision");
      }
    } else if (res && isAuthError(res.value(), etcdMessage(res.value())) &&
               !config.username.empty()) {
      asio::io_context io;  // renew on this thread; the next beat uses the new token
      if (auto e = authenticate(io, beat_endpoint % urls.size()))
        spdlog::warn("central.etcd: {}", e->message());
    }
    if (!meta_revision) {
      beat_endpoint = (beat_endpoint + 1) % urls.size();
      // No quorum only when no member answered: one member cut off is not the cluster's loss.
      if (++beat_failures % urls.size() == 0)
        post([this] {
          onHealth(false);
          if (follow.beat) follow.beat();
        });
      return;
    }
    beat_failures = 0;
    post([this] {
      onHealth(true);
      if (follow.beat) follow.beat();
    });
    // The quorum has a commit the watch has not delivered for a while: the watch's member is
    // cut off (a watch there stays open and quiet), so follow another one.
    if (!waiting_resume && *meta_revision >= next_revision) {
      if (++beats_ahead >= kStuckBeats) {
        beats_ahead = 0;
        watchFailed("quiet while the quorum is at revision " + std::to_string(*meta_revision));
      }
    } else {
      beats_ahead = 0;
    }
  }

  // Serving thread.
  void onHealth(bool ok) {
    auto now = Clock::now();
    if (ok) last_ok = now;
    bool now_healthy = ok || now - last_ok < kStaleAfter;
    if (now_healthy == healthy) return;
    healthy = now_healthy;
    if (follow.health) follow.health(healthy);
  }
};

EtcdStore::EtcdStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EtcdStore::~EtcdStore() {
  if (impl_->thread.joinable()) {
    impl_->work.reset();
    impl_->follow_io.stop();
    impl_->thread.join();
  }
}

std::optional<Error> checkEtcdTls(const EtcdConfig& c) {
  if (c.tls.cert_file.empty() != c.tls.key_file.empty())
    return c.tls.cert_file.empty() ? Error{"etcd/tls/cert_file", "is required with key_file"}
                                   : Error{"etcd/tls/key_file", "is required with cert_file"};
  size_t https = 0;
  for (const auto& e : c.endpoints) https += e.starts_with("https://");
  if (https != 0 && https != c.endpoints.size())
    return Error{"etcd/endpoints",
                 "mixes http:// and https://: every member is reached the same way"};
  if (https == 0 && !c.endpoints.empty() && !c.tls.empty())
    return Error{"etcd/tls", "is for https:// endpoints; the endpoints are http://"};
  return std::nullopt;
}

Result<std::unique_ptr<EtcdStore>> EtcdStore::open(const EtcdConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->meta_key = config.prefix + "meta";
  if (config.endpoints.empty()) return Error{"etcd.endpoints", "at least one is required"};
  for (const auto& e : config.endpoints) {
    auto url = text::parseHttpUrl(e, text::UrlSchemes::kHttpOrHttps);
    if (!url) return Error{"etcd.endpoints", e + ": " + url.error().reason};
    impl->urls.push_back(url.value());
  }
  if (auto e = checkEtcdTls(config)) return *e;
  if (impl->urls.front().https) {
    auto tls = TlsClient::load(config.tls);
    if (!tls) return Error{"etcd.tls." + tls.error().field, tls.error().reason};
    impl->tls = tls.value();
  }
  for (const auto& url : impl->urls) {
    if (impl->tls)
      impl->dests.emplace_back(HttpsDestination{url, impl->tls});
    else
      impl->dests.emplace_back(url);
  }
  if (!config.username.empty()) {
    auto password = text::readTokenFile(config.password_file);
    if (!password) return Error{"etcd.password_file", password.error().reason};
    impl->password = password.value();
    std::string errors;
    bool ok = false;
    for (size_t i = 0; i < impl->urls.size(); ++i) {
      auto e = impl->authenticate(impl->sync_io, i);
      if (!e) {
        ok = true;
        break;
      }
      errors += (errors.empty() ? "" : "; ") + e->reason;
    }
    if (!ok) return Error{"etcd", "cannot authenticate as '" + config.username + "': " + errors};
  }
  // Only central's keys under the prefix: anything else means the prefix is someone else's.
  auto keys = impl->call("/v3/kv/range",
                         json{{"key", base64(config.prefix)},
                              {"range_end", base64(prefixEnd(config.prefix))},
                              {"keys_only", true},
                              {"limit", "1000000"}},
                         kLoadBodyLimit);
  if (!keys) return keys.error();
  if (keys->contains("kvs") && keys.value()["kvs"].is_array()) {
    for (const json& kv : keys.value()["kvs"]) {
      auto key = unbase64(str(kv, "key"));
      KeyParts parts = key ? impl->parse(*key) : KeyParts{};
      if (!parts.meta && !parts.kind)
        return Error{"etcd.prefix", "'" + config.prefix + "' holds a key that is not central's (" +
                                        (key ? *key : std::string("?")) +
                                        "): choose a prefix of central's own"};
    }
  }
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(impl)));
}

Result<StoredState> EtcdStore::load() {
  Impl& d = *impl_;
  auto r = d.call(
      "/v3/kv/range",
      json{{"key", base64(d.config.prefix)}, {"range_end", base64(prefixEnd(d.config.prefix))}},
      kLoadBodyLimit);
  if (!r) return r.error();
  StoredState out;
  model::Topology& t = out.topology;
  // Every event up to this revision is in the snapshot: the watch starts after it (not after
  // the index, which is older when keys outside central's were written since).
  uint64_t loaded_revision =
      r.value().contains("header") ? u64(r.value()["header"], "revision") : 0;
  if (r->contains("kvs") && r.value()["kvs"].is_array()) {
    for (const json& kv : r.value()["kvs"]) {
      auto key = unbase64(str(kv, "key"));
      auto value = unbase64(str(kv, "value"));
      if (!key || !value) return Error{"etcd", "a key or value is not base64"};
      KeyParts parts = d.parse(*key);
      if (parts.meta) {
        t.index = u64(kv, "mod_revision");
        continue;
      }
      if (!parts.kind) return Error{"etcd.prefix", "not central's key: " + *key};
      if (auto e =
              putStoredRecord(t, std::string(protocol::toString(*parts.kind)), parts.key, *value))
        return *e;
    }
  }
  if (auto e = validate::checkTopology(t)) return *e;
  t.recomputeDerived();
  d.loaded_revision = loaded_revision;
  return out;
}

Result<uint64_t> EtcdStore::commit(const std::vector<StoredChange>& changes, uint64_t base) {
  Impl& d = *impl_;
  if (changes.size() + 1 > d.config.max_txn_ops)
    return Error{"store", "a commit of " + std::to_string(changes.size()) +
                              " changes is more than etcd.max_txn_ops allows (" +
                              std::to_string(d.config.max_txn_ops) + ")"};
  json success = json::array();
  for (const StoredChange& c : changes) {
    std::string key = base64(d.recordKey(c.kind, c.key));
    if (c.op == protocol::ChangeOp::kPut)
      success.push_back({{"request_put", {{"key", key}, {"value", base64(c.value)}}}});
    else
      success.push_back({{"request_delete_range", {{"key", key}}}});
  }
  success.push_back({{"request_put", {{"key", base64(d.meta_key)}, {"value", ""}}}});
  json txn = {{"compare", json::array({{{"key", base64(d.meta_key)},
                                        {"target", "MOD"},
                                        {"result", "EQUAL"},
                                        {"mod_revision", std::to_string(base)}}})},
              {"success", std::move(success)}};
  auto r = d.call("/v3/kv/txn", txn);
  if (!r) return r.error();
  if (!r->value("succeeded", false))
    return Error{kCommitConflict, "the store moved past " + std::to_string(base)};
  uint64_t revision = r->contains("header") ? u64(r.value()["header"], "revision") : 0;
  if (revision <= base) return Error{"etcd", "a txn answer without a revision"};
  return revision;
}

size_t EtcdStore::maxChangesPerCommit() const {
  return impl_->config.max_txn_ops - 1;
}

std::optional<std::chrono::milliseconds> EtcdStore::staleFor() const {
  if (impl_->healthy) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - impl_->last_ok);
}

void EtcdStore::follow(Follow follow) {
  Impl& d = *impl_;
  d.follow = std::move(follow);
  d.next_revision = d.loaded_revision + 1;
  d.last_ok = Clock::now();
  d.work.emplace(d.follow_io.get_executor());
  d.beat_timer.emplace(d.follow_io);
  d.retry_timer.emplace(d.follow_io);
  asio::post(d.follow_io, [&d] {
    d.openWatch();
    d.beat();
  });
  d.thread = std::thread([&d] { d.follow_io.run(); });
}

void EtcdStore::resume() {
  Impl& d = *impl_;
  asio::post(d.follow_io, [&d, index = d.loaded_revision] {
    d.waiting_resume = false;
    d.next_revision = index + 1;
    d.closeStream();
    d.openWatch();
  });
}

std::string EtcdStore::watchEndpoint() const {
  return impl_->urls[impl_->watch_endpoint % impl_->urls.size()].text();
}

}  // namespace elasticdns::central
