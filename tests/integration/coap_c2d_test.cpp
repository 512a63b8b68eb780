// C2D over CoAP end to end: an in-process CoapServer as the C2dDeliverer of a small stand-in for the
// relay (it hands over one message when the device becomes reachable and records outcomes), and the
// real coap-client-openssl over loopback.
#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "adapters/coap/coap_paths.hpp"
#include "adapters/coap/coap_server.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/pipeline/ingest.hpp"
#include "tests/support/coap_client.hpp"
#include "tests/support/coap_rig.hpp"
#include "tests/support/coap_psk_client.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording_ingest.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "cGFzc3dvcmRwYXNzd29yZA==";

using test::RecordingIngest;

struct Server {
    explicit Server(std::uint32_t lock_timeout_seconds = 60) {
        devices.replace_static({{"dev-1", kKey, "thermo"}, {"dev-2", kKey, ""}});
        auto opts = test::coap_rig_options("coap");
        opts.lock_timeout_seconds = lock_timeout_seconds;
        server = std::make_unique<coap::CoapServer>(io, opts, devices, ingest, registry);
        thread = test::start_coap_rig(*server, io);
    }
    ~Server() {
        io.stop();
        thread.join();
        server.reset();
    }
    std::string uri(bool dtls, const std::string& path) const { return test::coap_rig_uri(*server, dtls, path); }

    boost::asio::io_context io;
    metrics::Registry registry;
    DeviceDirectory devices;
    RecordingIngest ingest;
    std::unique_ptr<coap::CoapServer> server;
    std::thread thread;
};

// Stands in for the C2D relay: one queued message per device, handed over when it is reachable and
// not in flight; outcomes are recorded, and not_delivered puts it back with a higher count.
struct FakeRelay {
    explicit FakeRelay(Server& s) : server(s) {
        server.server->set_reachability_listener([this](const std::string& device, bool reachable) {
            if (reachable) pump(device);
        });
    }
    void queue(std::string device, std::string body) {
        std::lock_guard lock(mu);
        queued[device] = std::move(body);
    }
    void pump(const std::string& device) {
        std::string body;
        {
            std::lock_guard lock(mu);
            auto it = queued.find(device);
            if (it == queued.end() || in_flight) return;
            body = it->second;
            in_flight = true;
            ++deliveries;
        }
        HubMessage m;
        m.body = body;
        m.device_id = device;
        m.system.message_id = "m-" + std::to_string(deliveries);
        m.system.content_type = "application/json";
        m.properties.set("color", "red");
        server.server->deliver(device, std::move(m), [this, device](DeliveryOutcome o) {
            {
                std::lock_guard lock(mu);
                in_flight = false;
                outcomes.push_back(o);
                if (o == DeliveryOutcome::completed || o == DeliveryOutcome::rejected) queued.erase(device);
            }
            if (o == DeliveryOutcome::not_delivered) pump(device);
        });
    }
    std::vector<DeliveryOutcome> seen() {
        std::lock_guard lock(mu);
        return outcomes;
    }
    Server& server;
    std::mutex mu;
    std::map<std::string, std::string> queued;
    bool in_flight = false;
    int deliveries = 0;
    std::vector<DeliveryOutcome> outcomes;
};

test::RunResult client(const std::string& method, const std::string& uri, std::vector<std::string> extra = {}) {
    return test::coap_client(method, uri, std::move(extra));
}

using test::etag_of;
using test::has;
using test::properties_of;

}  // namespace

TEST_CASE("GET devicebound with an empty queue answers 2.05 with no payload and no ETag") {
    Server s;
    FakeRelay relay(s);
    auto r = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    INFO(r.output);
    CHECK(has_code(r, "2.05"));
    CHECK(etag_of(r).empty());
}

TEST_CASE("GET devicebound serves the queued message with its lock as an 8-byte ETag and its properties") {
    Server s;
    FakeRelay relay(s);
    relay.queue("dev-1", R"({"cmd":"on"})");
    auto r = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    INFO(r.output);
    CHECK(has_code(r, "2.05"));
    CHECK(has(r, R"({"cmd":"on"})"));
    CHECK(etag_of(r).size() == 16);
    CHECK(properties_of(r).find("color=red") != std::string::npos);
    CHECK(properties_of(r).find("%24.mid=m-1") != std::string::npos);
}

TEST_CASE("DELETE with the lock answers 2.02 and completes the message") {
    Server s;
    FakeRelay relay(s);
    relay.queue("dev-1", "x");
    auto g = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    const auto lock = etag_of(g);
    REQUIRE(lock.size() == 16);
    auto r = client("delete", s.uri(false, "/devices/dev-1/messages/devicebound/" + lock));
    INFO(r.output);
    CHECK(has_code(r, "2.02"));
    CHECK(relay.seen() == std::vector<DeliveryOutcome>{DeliveryOutcome::completed});
}

TEST_CASE("DELETE with the lock and ?reject answers 2.02 and rejects the message") {
    Server s;
    FakeRelay relay(s);
    relay.queue("dev-1", "x");
    const auto lock = etag_of(client("get", s.uri(false, "/devices/dev-1/messages/devicebound")));
    REQUIRE(lock.size() == 16);
    auto r = client("delete", s.uri(false, "/devices/dev-1/messages/devicebound/" + lock + "?reject"));
    INFO(r.output);
    CHECK(has_code(r, "2.02"));
    CHECK(relay.seen() == std::vector<DeliveryOutcome>{DeliveryOutcome::rejected});
}

TEST_CASE("POST abandon answers 2.04 and the message is served again under a new lock") {
    Server s;
    FakeRelay relay(s);
    relay.queue("dev-1", "again");
    const auto lock = etag_of(client("get", s.uri(false, "/devices/dev-1/messages/devicebound")));
    REQUIRE(lock.size() == 16);
    auto r = client("post", s.uri(false, "/devices/dev-1/messages/devicebound/" + lock + "/abandon"));
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    CHECK(relay.seen() == std::vector<DeliveryOutcome>{DeliveryOutcome::not_delivered});
    auto again = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    INFO(again.output);
    CHECK(has(again, "again"));
    CHECK(etag_of(again).size() == 16);
    CHECK(etag_of(again) != lock);
}

TEST_CASE("DELETE with an unknown lock answers 4.04 and settles nothing") {
    Server s;
    FakeRelay relay(s);
    relay.queue("dev-1", "x");
    (void)client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    auto r = client("delete", s.uri(false, "/devices/dev-1/messages/devicebound/0102030405060708"));
    INFO(r.output);
    CHECK(has_code(r, "4.04"));
    CHECK(relay.seen().empty());
}

TEST_CASE("on coaps a GET of another device's devicebound is refused 4.03") {
    Server s;
    FakeRelay relay(s);
    relay.queue("dev-2", "secret");
    auto r = client("get", s.uri(true, "/devices/dev-2/messages/devicebound"), {"-u", "dev-1", "-k", kKey});
    INFO(r.output);
    CHECK(has_code(r, "4.03"));
    CHECK(!has(r, "secret"));
}

TEST_CASE("an unreached device is reported unreachable to the relay") {
    Server s;
    std::promise<DeliveryOutcome> outcome;
    s.server->deliver("dev-1", HubMessage{}, [&](DeliveryOutcome o) { outcome.set_value(o); });
    auto f = outcome.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    CHECK(f.get() == DeliveryOutcome::unreachable);
}

TEST_CASE("a message larger than one block is served whole through Block2") {
    Server s;
    FakeRelay relay(s);
    const std::string big(3000, 'b');
    // A first GET makes the device reachable, so the next one is answered at once.
    (void)client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    relay.queue("dev-1", big + "end");
    relay.pump("dev-1");
    test::TempDir dir;
    const std::string out = dir.file("body");
    auto r = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-b", "64", "-o", out});
    INFO(r.output.substr(0, 2000));
    CHECK(has(r, "Block2:1/"));
    CHECK(etag_of(r).size() == 16);
    CHECK(dir.read("body") == big + "end");
}

TEST_CASE("a held first GET whose message needs Block2 is told to repeat (5.03, Max-Age 0) and the repeat gets it "
          "whole") {
    Server s;
    FakeRelay relay(s);
    const std::string big(3000, 'b');
    relay.queue("dev-1", big + "end");  // waiting before the device's first GET
    auto first = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-b", "64"});
    INFO(first.output.substr(0, 2000));
    CHECK(has_code(first, "5.03"));
    CHECK(has(first, "Max-Age:0"));
    CHECK(has(first, "repeat the GET"));
    test::TempDir dir;
    const std::string out = dir.file("body");
    auto again = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-b", "64", "-o", out});
    INFO(again.output.substr(0, 2000));
    CHECK(etag_of(again).size() == 16);
    CHECK(dir.read("body") == big + "end");
}

TEST_CASE("an Observe registration that waits for a message larger than one block gets it whole through Block2") {
    Server s;
    FakeRelay relay(s);
    const std::string big(3000, 'o');
    relay.queue("dev-1", big + "end");
    test::TempDir dir;
    const std::string out = dir.file("body");
    auto r = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-s", "2", "-b", "64", "-o", out});
    INFO(r.output.substr(0, 2000));
    CHECK(etag_of(r).size() == 16);
    CHECK(dir.read("body") == big + "end");
}

TEST_CASE("an expired lock is a failed delivery and its DELETE answers 4.04") {
    Server s(1);
    FakeRelay relay(s);
    relay.queue("dev-1", "x");
    const auto lock = etag_of(client("get", s.uri(false, "/devices/dev-1/messages/devicebound")));
    REQUIRE(lock.size() == 16);
    for (int i = 0; i < 100 && relay.seen().empty(); ++i) std::this_thread::sleep_for(50ms);
    REQUIRE(!relay.seen().empty());
    CHECK(relay.seen().front() == DeliveryOutcome::not_delivered);
    auto r = client("delete", s.uri(false, "/devices/dev-1/messages/devicebound/" + lock));
    INFO(r.output);
    CHECK(has_code(r, "4.04"));
}

TEST_CASE("an Observe registration on an empty queue succeeds") {
    Server s;
    FakeRelay relay(s);
    auto r = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-s", "1"});
    INFO(r.output);
    CHECK(has_code(r, "2.05"));
    CHECK(has(r, "Observe:"));
    CHECK(etag_of(r).empty());
}

TEST_CASE("an observer of an empty queue gets the next message as a notification and completes it with DELETE") {
    Server s;
    FakeRelay relay(s);
    std::atomic<bool> reachable{false};
    s.server->set_reachability_listener([&](const std::string& device, bool r) {
        if (device == "dev-1" && r) reachable = true;
    });
    // Observes for 6 s; the message is queued once the registration is in.
    auto observing = std::async(std::launch::async, [&] {
        return client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-s", "6"});
    });
    REQUIRE(test::eventually([&] { return reachable.load(); }, 10s));
    // The registration is answered after up to 300 ms; then it counts.
    CHECK(test::eventually(
        [&] { return s.registry.render().find("hubgate_coap_observers 1\n") != std::string::npos; }, 10s));
    relay.queue("dev-1", "notified body");
    relay.pump("dev-1");
    const auto r = observing.get();
    INFO(r.output);
    CHECK(has(r, "notified body"));
    const auto lock = etag_of(r);
    REQUIRE(lock.size() == 16);
    auto del = client("delete", s.uri(false, "/devices/dev-1/messages/devicebound/" + lock));
    INFO(del.output);
    CHECK(has_code(del, "2.02"));
    CHECK(relay.seen() == std::vector<DeliveryOutcome>{DeliveryOutcome::completed});
    // coap-client cancelled its registration when it ended.
    CHECK(test::eventually(
        [&] { return s.registry.render().find("hubgate_coap_observers 0\n") != std::string::npos; }, 10s));
}

TEST_CASE("a DTLS observer whose key a reload changed gets an empty notification, not the message, and the lock expires") {
    Server s(1);  // lock timeout 1 s
    FakeRelay relay(s);
    test::CoapPskClient dev(s.server->ports().at(1), "dev-1", kKey);
    dev.send(COAP_REQUEST_CODE_GET, "devices/dev-1/messages/devicebound", {}, true);
    const auto registered = dev.next();
    REQUIRE(registered.has_value());
    CHECK(registered->code == "2.05");  // empty queue: registered
    s.devices.replace_static({{"dev-1", "bmV3LWtleS1uZXcta2V5LW5ldw==", "thermo"}, {"dev-2", kKey, ""}});
    relay.queue("dev-1", "for the old key's holder? no");
    relay.pump("dev-1");
    const auto note = dev.next();
    REQUIRE(note.has_value());
    CHECK(note->code == "2.05");  // libcoap 4.3.1 crashes on an error notification (see notify())
    CHECK(note->payload.empty());
    // The session no longer counts as an observer: the lock expires undelivered.
    CHECK(test::eventually([&] { return !relay.seen().empty(); }, 10s));
    CHECK(relay.seen().front() == DeliveryOutcome::not_delivered);
    CHECK(s.registry.render().find("hubgate_coap_observers 0") != std::string::npos);
    // Its next request is refused, and the server serves others.
    dev.send(COAP_REQUEST_CODE_GET, "devices/dev-1/messages/devicebound");
    const auto after = dev.next();
    REQUIRE(after.has_value());
    CHECK(after->code == "4.01");
    CHECK(test::has_code(client("get", s.uri(false, "/devices/dev-2/messages/devicebound")), "2.05"));
}

TEST_CASE("a device that only observes stays reachable past the lock timeout") {
    Server s(1);
    std::vector<bool> changes;
    std::mutex mu;
    s.server->set_reachability_listener([&](const std::string& device, bool r) {
        std::lock_guard lock(mu);
        if (device == "dev-1") changes.push_back(r);
    });
    // 4 s of observing: four lock timeouts.
    const auto r = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-s", "4"});
    INFO(r.output);
    REQUIRE(has(r, "Observe:"));
    std::lock_guard lock(mu);
    CHECK(changes == std::vector<bool>{true});
}

TEST_CASE("a POST to devicebound or to a lock path is 4.04 and is not taken as telemetry") {
    Server s;
    FakeRelay relay(s);
    auto a = client("post", s.uri(false, "/devices/dev-1/messages/devicebound"), {"-e", "x"});
    INFO(a.output);
    CHECK(has_code(a, "4.04"));
    auto b = client("post", s.uri(false, "/devices/dev-1/messages/devicebound/0102030405060708"), {"-e", "y"});
    INFO(b.output);
    CHECK(has_code(b, "4.04"));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("a device that polled once and let its lock expire counts as away until its next request") {
    Server s(1);
    FakeRelay relay(s);
    std::vector<bool> changes;
    std::mutex mu;
    s.server->set_reachability_listener([&](const std::string& device, bool r) {
        {
            std::lock_guard lock(mu);
            if (device == "dev-1") changes.push_back(r);
        }
        if (r) relay.pump(device);
    });
    auto seen_changes = [&] {
        std::lock_guard lock(mu);
        return changes;
    };
    relay.queue("dev-1", "valve-42");
    REQUIRE(etag_of(client("get", s.uri(false, "/devices/dev-1/messages/devicebound"))).size() == 16);
    REQUIRE(test::eventually([&] { return !relay.seen().empty(); }, 10s));
    CHECK(relay.seen().front() == DeliveryOutcome::not_delivered);
    CHECK(test::eventually([&] { return seen_changes() == std::vector<bool>{true, false}; }, 10s));
    // Three more lock timeouts pass: a device that is away is not handed the message again (each
    // hand-over would raise its delivery count until it was dead-lettered).
    std::this_thread::sleep_for(3s);
    CHECK(seen_changes() == std::vector<bool>{true, false});
    // The relay's hand-over right after the expiry was refused as unreachable, and no lock followed.
    CHECK(relay.seen() == std::vector<DeliveryOutcome>{DeliveryOutcome::not_delivered, DeliveryOutcome::unreachable});
    // Its next GET finds the message again, under a new lock.
    const auto again = client("get", s.uri(false, "/devices/dev-1/messages/devicebound"));
    INFO(again.output);
    CHECK(has(again, "valve-42"));
    CHECK(etag_of(again).size() == 16);
}
