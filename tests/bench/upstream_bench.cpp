// Forwarder figures: answer-cache lookup (hit), forward() served from cache (through the
// io_context), and a forwarded miss to a loopback responder (UDP round trip + matching).
//   upstream_bench [iterations]     (default 200000; the miss loop runs iterations/20)
// Sends traffic only to 127.0.0.1 (an in-process responder thread).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "agent/upstream/answer_cache.hpp"
#include "agent/upstream/forwarder.hpp"
#include "support/dns_util.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::udp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::vector<uint8_t> query(const std::string& name, uint16_t id) {
  return elasticdns::testing::makeQuery(name, LDNS_RR_TYPE_A, {.id = id});
}

std::vector<uint8_t> reply(std::span<const uint8_t> q) {
  return elasticdns::testing::makeReply(
      q, LDNS_RCODE_NOERROR,
      {"www.example.test. 300 IN A 192.0.2.1", "www.example.test. 300 IN A 192.0.2.2",
       "www.example.test. 300 IN A 192.0.2.3"});
}

double nsPer(Clock::duration d, size_t n) {
  return std::chrono::duration<double, std::nano>(d).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace elasticdns;
  size_t iterations = argc > 1 ? std::stoul(argv[1]) : 200'000;
  auto q = query("www.example.test.", 1);
  auto r = reply(q);

  // 1. AnswerCache::lookup, hit: copy, TTL ageing walk, ID/name echo.
  agent::AnswerCache cache(10'000, 3600s, 300s);
  agent::wire::Query parsed;
  agent::wire::parseQuery(q, parsed);
  const auto question = agent::wire::questionOf(parsed, q);
  auto key = agent::AnswerCache::keyOf(question, parsed.has_edns, parsed.edns_do);
  auto t0 = Clock::now();
  cache.insert(key, r, t0);
  size_t bytes = 0;
  auto start = Clock::now();
  for (size_t i = 0; i < iterations; ++i) bytes += cache.lookup(key, q, question, t0 + 5s)->size();
  auto lookup_ns = nsPer(Clock::now() - start, iterations);

  // 2. Forwarder::forward served from cache, including the post to the io_context.
  asio::io_context io;
  metrics::Registry reg;
  udp::socket responder(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  agent::UpstreamConfig config;
  config.servers = {responder.local_endpoint()};
  agent::Forwarder forwarder(io, config, reg);
  std::thread echo([&] {
    std::array<uint8_t, 2048> buf;
    udp::endpoint from;
    boost::system::error_code ec;
    while (true) {
      size_t n = responder.receive_from(asio::buffer(buf), from, 0, ec);
      if (ec || n == 0) return;
      auto a = reply(std::span(buf.data(), n));
      responder.send_to(asio::buffer(a), from, 0, ec);
    }
  });
  size_t answered = 0;
  auto done = [&](std::span<const uint8_t> reply) { answered += !reply.empty(); };
  forwarder.forward(parsed, q, done);  // first one fills the cache
  io.run();
  io.restart();
  start = Clock::now();
  for (size_t i = 0; i < iterations; ++i) {
    forwarder.forward(parsed, q, done);
    io.poll();
  }
  auto hit_ns = nsPer(Clock::now() - start, iterations);

  // 3. Misses: distinct names, each a real UDP round trip to the loopback responder.
  size_t misses = std::max<size_t>(iterations / 20, 100);
  std::vector<double> latencies;
  latencies.reserve(misses);
  for (size_t i = 0; i < misses; ++i) {
    auto mq = query("n" + std::to_string(i) + ".example.test.", 7);
    auto s = Clock::now();
    bool got = false;
    agent::wire::Query mparsed;
    agent::wire::parseQuery(mq, mparsed);
    forwarder.forward(mparsed, mq, [&](std::span<const uint8_t> rep) { got = !rep.empty(); });
    io.restart();
    while (!got && io.run_one()) {
    }
    latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
    answered += got;
  }
  std::sort(latencies.begin(), latencies.end());
  echo.detach();  // blocked in receive_from; the process exits below

  std::printf("cache lookup (hit, 3 A records): %.0f ns/op (%zu ops, %zu bytes)\n", lookup_ns,
              iterations, bytes);
  std::printf("forward() served from cache:     %.0f ns/op (%zu ops)\n", hit_ns, iterations);
  std::printf("forward() miss to loopback UDP:  p50 %.1f us, p99 %.1f us (%zu queries)\n",
              latencies[latencies.size() / 2], latencies[latencies.size() * 99 / 100], misses);
  std::printf("answered: %zu\n", answered);
  std::fflush(stdout);
  std::_Exit(0);  // the echo thread may still be blocked in receive_from
}
