// The upstream client against a real mosquitto standing in for the hub: connect, QoS 1 publish,
// hub outage and return on the same port, credentials, C2D kept by the broker while away.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "gateway/upstream/upstream_client.hpp"
#include "tests/support/hub_listener.hpp"
#include "tests/support/mosquitto.hpp"
#include "tests/support/paho_device.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;

namespace {

// Polls `pred` until it holds or `timeout` passes (no timing is asserted, only the outcome).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

// Every (connected, epoch) the state listener saw, in order.
struct StateLog {
    std::mutex mu;
    std::vector<std::pair<bool, std::uint64_t>> events;

    void add(bool up, std::uint64_t epoch) {
        std::lock_guard lock(mu);
        events.emplace_back(up, epoch);
    }
    std::optional<std::pair<bool, std::uint64_t>> last() {
        std::lock_guard lock(mu);
        if (events.empty()) return std::nullopt;
        return events.back();
    }
    bool last_is(bool up, std::uint64_t epoch) { return last() == std::make_pair(up, epoch); }
};

// A publish's outcome: unset until done() ran.
struct Outcome {
    std::atomic<int> calls{0};
    std::atomic<bool> acked{false};

    std::function<void(bool)> callback() {
        return [this](bool ok) {
            acked = ok;
            ++calls;
        };
    }
};

upstream::ClientOptions mqtt_options(const Mosquitto& hub, const std::string& gateway_id) {
    upstream::ClientOptions o;
    o.upstream.profile = config::UpstreamProfile::mqtt;
    o.upstream.url = hub.url();
    o.upstream.gateway_device_id = gateway_id;
    o.gateway_id = gateway_id;
    o.backoff_min = 50ms;
    o.backoff_max = 500ms;  // keeps the reconnect after a restart within the test's seconds
    return o;
}

std::uint64_t counter(metrics::Registry& r, const std::string& name, const metrics::Labels& labels = {}) {
    return r.counter(name, "", labels).value();
}

}  // namespace

TEST_CASE("the client connects (epoch 1) and a QoS 1 publish is acked and reaches the hub on devices/{gw}/messages/events/") {
    TempDir dir;
    Mosquitto hub(dir);
    hub.start();
    HubListener listener(hub.port());
    metrics::Registry registry;
    StateLog states;  // outlives the client, whose thread reports to it until it stops
    upstream::UpstreamClient client(mqtt_options(hub, "gw-01"), registry);
    client.set_state_listener([&](bool up, std::uint64_t epoch) { states.add(up, epoch); });
    client.start();

    REQUIRE(eventually([&] { return states.last_is(true, 1); }));
    CHECK(client.connected());
    CHECK(client.gateway_device_id() == "gw-01");

    const std::string payload("bin\0\xff payload", 13);
    Outcome outcome;
    REQUIRE(client.publish("devices/gw-01/messages/events/%24.mid=m1&k=v", payload, outcome.callback()));
    REQUIRE(eventually([&] { return outcome.calls == 1; }));
    CHECK(outcome.acked);
    REQUIRE(listener.wait_for(1, 10s));
    const auto got = listener.messages();
    CHECK(got[0].topic == "devices/gw-01/messages/events/%24.mid=m1&k=v");
    CHECK(got[0].payload == payload);

    CHECK(counter(registry, "hubgate_upstream_connects_total") == 1);
    CHECK(counter(registry, "hubgate_upstream_publishes_total", {{"result", "acked"}}) == 1);
    CHECK(counter(registry, "hubgate_upstream_published_bytes_total") == payload.size());
    CHECK(registry.gauge("hubgate_upstream_connected", "").value() == 1);

    client.stop();
    CHECK(states.last_is(false, 1));
    CHECK_FALSE(client.connected());
    CHECK(registry.gauge("hubgate_upstream_connected", "").value() == 0);
    CHECK(outcome.calls == 1);  // done() ran exactly once
}

TEST_CASE("when the hub stops the client reports disconnected and refuses publishes and when it returns on the same port the client reconnects by itself with epoch 2") {
    TempDir dir;
    Mosquitto hub(dir);
    hub.start();
    HubListener listener(hub.port());
    metrics::Registry registry;
    StateLog states;  // outlives the client, whose thread reports to it until it stops
    upstream::UpstreamClient client(mqtt_options(hub, "gw-02"), registry);
    client.set_state_listener([&](bool up, std::uint64_t epoch) { states.add(up, epoch); });
    client.start();
    REQUIRE(eventually([&] { return states.last_is(true, 1); }));

    hub.stop();
    REQUIRE(eventually([&] { return states.last_is(false, 1); }));
    Outcome refused;
    CHECK_FALSE(client.publish("devices/gw-02/messages/events/", "x", refused.callback()));
    CHECK(refused.calls == 0);  // refused at once: done is not called
    CHECK(counter(registry, "hubgate_upstream_disconnects_total") == 1);

    hub.start();
    REQUIRE(eventually([&] { return states.last_is(true, 2); }));
    Outcome outcome;
    REQUIRE(client.publish("devices/gw-02/messages/events/", "after", outcome.callback()));
    REQUIRE(eventually([&] { return outcome.calls == 1; }));
    CHECK(outcome.acked);
    REQUIRE(listener.wait_for(1, 10s));
    CHECK(listener.messages().back().payload == "after");
    CHECK(counter(registry, "hubgate_upstream_connects_total") == 2);
    client.stop();  // before the Outcomes its callbacks point at go
}

TEST_CASE("a publish the hub never acknowledged gets done(false) when the connection drops") {
    TempDir dir;
    Mosquitto hub(dir);
    hub.start();
    metrics::Registry registry;
    StateLog states;  // outlives the client, whose thread reports to it until it stops
    upstream::UpstreamClient client(mqtt_options(hub, "gw-03"), registry);
    client.set_state_listener([&](bool up, std::uint64_t epoch) { states.add(up, epoch); });
    client.start();
    REQUIRE(eventually([&] { return states.last_is(true, 1); }));

    hub.pause();  // the PUBLISH reaches the socket, no PUBACK can come back
    Outcome outcome;
    REQUIRE(client.publish("devices/gw-03/messages/events/", "lost", outcome.callback()));
    hub.kill();
    REQUIRE(eventually([&] { return outcome.calls == 1; }));
    CHECK_FALSE(outcome.acked);
    CHECK(states.last_is(false, 1));
    CHECK(counter(registry, "hubgate_upstream_publishes_total", {{"result", "failed"}}) == 1);
    client.stop();  // before the Outcome its callback points at goes
}

TEST_CASE("mqtt profile: the CONNECT carries the configured username and password") {
    TempDir dir;
    MosquittoOptions opts;
    opts.allow_anonymous = false;
    opts.users = {{"gateway", "s3cret"}};
    Mosquitto hub(dir, opts);
    hub.start();

    SUBCASE("the right password is accepted") {
        metrics::Registry registry;
        auto o = mqtt_options(hub, "gw-04");
        o.upstream.username = "gateway";
        o.upstream.password = "s3cret";
        upstream::UpstreamClient client(o, registry);
        client.start();
        CHECK(eventually([&] { return client.connected(); }));
    }
    SUBCASE("a wrong password is refused and counted as a connect failure") {
        metrics::Registry registry;
        auto o = mqtt_options(hub, "gw-04");
        o.upstream.username = "gateway";
        o.upstream.password = "wrong";
        upstream::UpstreamClient client(o, registry);
        client.start();
        REQUIRE(eventually([&] { return counter(registry, "hubgate_upstream_connect_failures_total") >= 2; }));
        CHECK_FALSE(client.connected());
        CHECK(counter(registry, "hubgate_upstream_connects_total") == 0);
    }
}

TEST_CASE("C2D: the client subscribes to devices/{gw}/messages/devicebound/# and gets what the broker kept while it was away (clean session 0)") {
    TempDir dir;
    Mosquitto hub(dir);
    hub.start();
    metrics::Registry registry;
    std::mutex mu;
    std::vector<ReceivedMessage> received;
    auto on_message = [&](const std::string& topic, const std::string& payload) {
        std::lock_guard lock(mu);
        received.push_back({topic, payload});
    };
    auto count = [&] {
        std::lock_guard lock(mu);
        return received.size();
    };

    {
        upstream::UpstreamClient first(mqtt_options(hub, "gw-05"), registry);
        first.set_message_listener(on_message);
        first.start();
        REQUIRE(eventually([&] { return first.connected(); }));
        const auto live = run({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(hub.port()), "-q", "1",
                               "-t", "devices/gw-05/messages/devicebound/%24.mid=live", "-m", "while-up"});
        REQUIRE(live.exit_code == 0);
        REQUIRE(eventually([&] { return count() == 1; }));
        first.stop();
    }
    const auto queued = run({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(hub.port()), "-q", "1", "-t",
                             "devices/gw-05/messages/devicebound/%24.mid=queued", "-m", "while-away"});
    REQUIRE(queued.exit_code == 0);

    upstream::UpstreamClient second(mqtt_options(hub, "gw-05"), registry);
    second.set_message_listener(on_message);
    second.start();
    REQUIRE(eventually([&] { return count() == 2; }));
    std::lock_guard lock(mu);
    CHECK(received[0].topic == "devices/gw-05/messages/devicebound/%24.mid=live");
    CHECK(received[0].payload == "while-up");
    CHECK(received[1].topic == "devices/gw-05/messages/devicebound/%24.mid=queued");
    CHECK(received[1].payload == "while-away");
}

TEST_CASE("twin answers on devices/{gw}/$iothub/twin/res/# reach the response listener with their status and $rid, "
          "and every connect's state reaches each added state listener") {
    TempDir dir;
    Mosquitto hub(dir);
    hub.start();
    metrics::Registry registry;
    std::mutex mu;
    std::vector<std::pair<int, std::string>> answers;  // status, rid
    std::string body;
    StateLog added;
    upstream::UpstreamClient client(mqtt_options(hub, "gw-06"), registry);
    client.set_twin_response_listener([&](int status, const std::string& rid, const std::string& b) {
        std::lock_guard lock(mu);
        answers.emplace_back(status, rid);
        body = b;
    });
    client.add_state_listener([&](bool up, std::uint64_t epoch) { added.add(up, epoch); });
    client.start();
    REQUIRE(eventually([&] { return added.last_is(true, 1); }));
    // The subscription is asynchronous: answer until one arrives.
    const auto got = [&] {
        std::lock_guard lock(mu);
        return !answers.empty();
    };
    for (int i = 0; i < 50 && !got(); ++i) {
        const auto r = run({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(hub.port()), "-t",
                            "devices/gw-06/$iothub/twin/res/204/?$rid=r7&$version=12", "-m", "{}"});
        REQUIRE(r.exit_code == 0);
        eventually(got, 200ms);
    }
    std::lock_guard lock(mu);
    REQUIRE(!answers.empty());
    CHECK(answers[0] == std::pair<int, std::string>{204, "r7"});
    CHECK(body == "{}");
}

// The reconnect schedule against real Paho return codes (gateway/upstream/reconnect_policy.hpp): an
// unreachable hub is retried every few hundred ms, one that refuses backs off at once, by cause.
namespace {

double gauge(metrics::Registry& r, const std::string& name) { return r.gauge(name, "").value(); }

upstream::ClientOptions schedule_options(const std::string& url, const std::string& gateway_id) {
    upstream::ClientOptions o;
    o.upstream.profile = config::UpstreamProfile::mqtt;
    o.upstream.url = url;
    o.upstream.gateway_device_id = gateway_id;
    o.gateway_id = gateway_id;
    return o;  // the defaults: 150-400 ms for 30 s, then 1 s doubling to 10 s
}

}  // namespace

TEST_CASE("an unreachable hub (TCP refused) is retried every 150-400 ms, counted as cause unreachable") {
    metrics::Registry registry;
    upstream::UpstreamClient client(
        schedule_options("tcp://127.0.0.1:" + std::to_string(free_tcp_port()), "gw-06"), registry);
    client.start();
    std::this_thread::sleep_for(3s);
    const auto backoff = gauge(registry, "hubgate_upstream_backoff_ms");
    client.stop();
    const auto unreachable = counter(registry, "hubgate_upstream_reconnect_failures_total", {{"cause", "unreachable"}});
    // 3 s, at most 400 ms apart plus the attempt (Paho takes up to ~100 ms to report a refused TCP
    // connect): at least 5 attempts, where a backoff from 1 s would make at most 3; at least 150 ms
    // apart: at most 21.
    CHECK(unreachable >= 5);
    CHECK(unreachable <= 21);
    CHECK(counter(registry, "hubgate_upstream_reconnect_failures_total", {{"cause", "refused"}}) == 0);
    CHECK(counter(registry, "hubgate_upstream_reconnects_total", {{"cause", "unreachable"}}) + 1 >= unreachable);
    CHECK(backoff >= 150);
    CHECK(backoff <= 400);
    CHECK(counter(registry, "hubgate_upstream_connect_failures_total") == unreachable);  // the old total stays
}

TEST_CASE("a hub that refuses (CONNACK 5, or a TLS certificate that does not verify) is backed off at once, "
          "counted as cause refused") {
    TempDir dir;
    MosquittoOptions opts;
    std::string url;
    SUBCASE("CONNACK 5: no credentials where the broker wants them") { opts.allow_anonymous = false; }
    SUBCASE("TLS: a self-signed server certificate the system trust store does not know") {
        const auto r = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", dir.file("server.key"), "-out", dir.file("server.crt")});
        REQUIRE_MESSAGE(r.exit_code == 0, r.output);
        const auto tls_port = free_tcp_port();
        opts.extra_config = {"listener " + std::to_string(tls_port) + " 127.0.0.1",
                             "certfile " + dir.file("server.crt"), "keyfile " + dir.file("server.key")};
        url = "ssl://127.0.0.1:" + std::to_string(tls_port);
    }
    Mosquitto hub(dir, opts);
    hub.start();
    if (url.empty()) url = hub.url();
    REQUIRE(wait_for_tcp(static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1))), 5s));

    metrics::Registry registry;
    upstream::UpstreamClient client(schedule_options(url, "gw-07"), registry);
    client.start();
    std::this_thread::sleep_for(3s);
    const auto backoff = gauge(registry, "hubgate_upstream_backoff_ms");
    client.stop();
    const auto refused = counter(registry, "hubgate_upstream_reconnect_failures_total", {{"cause", "refused"}});
    // Attempts at 0, then 0.5-1 s, then 1-2 s later, then 2-4 s later: two or three in 3 s.
    CHECK(refused >= 2);
    CHECK(refused <= 3);
    CHECK(counter(registry, "hubgate_upstream_reconnect_failures_total", {{"cause", "unreachable"}}) == 0);
    CHECK(counter(registry, "hubgate_upstream_reconnects_total", {{"cause", "refused"}}) >= 1);
    CHECK(backoff >= 500);
    CHECK(counter(registry, "hubgate_upstream_connects_total") == 0);
}

// A url list (a broker cluster, DESIGN.md "Upstream clusters and flapping hubs"): the first node that
// answers is used, a lost node fails over to the next at once, and the client stays on a node that
// works. Two mosquittos stand in for cluster nodes; a closed port for a dead one.
namespace {

double node_gauge(metrics::Registry& r, const std::string& url) {
    return r.gauge("hubgate_upstream_node", "", {{"url", url}}).value();
}

upstream::ClientOptions list_options(std::vector<std::string> urls, const std::string& gateway_id) {
    upstream::ClientOptions o = schedule_options(urls.front(), gateway_id);
    o.upstream.urls = std::move(urls);
    return o;
}

}  // namespace

TEST_CASE("a url list: a dead first node is skipped, a lost node fails over to the next, and the client stays "
          "there when the old node returns") {
    TempDir dir_a;
    TempDir dir_b;
    Mosquitto a(dir_a);
    Mosquitto b(dir_b);
    a.start();
    b.start();
    HubListener at_a(a.port());
    HubListener at_b(b.port());
    const std::string dead = "tcp://127.0.0.1:" + std::to_string(free_tcp_port());

    metrics::Registry registry;
    StateLog states;
    upstream::UpstreamClient client(list_options({dead, a.url(), b.url()}, "gw-10"), registry);
    client.set_state_listener([&](bool up, std::uint64_t epoch) { states.add(up, epoch); });
    client.start();
    REQUIRE(eventually([&] { return states.last_is(true, 1); }));
    CHECK(node_gauge(registry, a.url()) == 1);
    CHECK(node_gauge(registry, dead) == 0);
    CHECK(node_gauge(registry, b.url()) == 0);
    CHECK(counter(registry, "hubgate_upstream_connect_failures_total") == 1);  // the dead node, once

    a.stop();
    REQUIRE(eventually([&] { return states.last_is(true, 2); }));
    CHECK(node_gauge(registry, b.url()) == 1);
    CHECK(node_gauge(registry, a.url()) == 0);
    // Straight from a to b: the dead node comes after b in the list and was not tried.
    CHECK(counter(registry, "hubgate_upstream_connect_failures_total") == 1);

    // a returns; the client stays on b: a publish goes to b.
    a.start();
    Outcome outcome;
    REQUIRE(client.publish("devices/gw-10/messages/events/k=v", "to b", outcome.callback()));
    REQUIRE(eventually([&] { return outcome.calls == 1; }));
    CHECK(outcome.acked);
    REQUIRE(at_b.wait_for(1, 10s));
    CHECK(at_b.messages()[0].payload == "to b");
    CHECK(at_a.size() == 0);
    CHECK(node_gauge(registry, b.url()) == 1);
    client.stop();
    CHECK(node_gauge(registry, b.url()) == 0);
}
