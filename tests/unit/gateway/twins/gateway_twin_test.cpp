// GatewayTwin on a real store with a fake upstream (a publish function the test answers): reported
// changes made while disconnected or while a patch is in flight become one patch, a lost patch is
// sent again with everything in it, delivery is recorded in the store (a reopened store sends only
// what was not acknowledged), and the answer to the GET on connect changes local devices.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "gateway/twins/gateway_twin.hpp"
#include "gateway/twins/twin_service.hpp"
#include "store/store.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct Published {
    std::string topic;
    std::string payload;
    std::function<void(bool)> done;
};

// The upstream as the test sees it: every publish is kept until the test answers it.
struct FakeHub {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Published> published;
    bool accept = true;

    twins::UpstreamTwinPort port(bool puback = true) {
        twins::UpstreamTwinPort p;
        p.topic_base = "devices/gw/";
        p.delivered_on_puback = puback;
        p.publish = [this](const std::string& topic, std::string payload, std::function<void(bool)> done, bool) {
            std::lock_guard lock(mu);
            if (!accept) return false;
            published.push_back({topic, std::move(payload), std::move(done)});
            cv.notify_all();
            return true;
        };
        return p;
    }
    // Waits (generously) for the n-th publish whose topic holds `what`; a copy of it.
    std::optional<Published> wait(const std::string& what, std::size_t n = 1) {
        std::unique_lock lock(mu);
        std::optional<Published> found;
        cv.wait_for(lock, 10s, [&] {
            std::size_t seen = 0;
            for (const auto& p : published)
                if (p.topic.find(what) != std::string::npos && ++seen == n) {
                    found = p;
                    return true;
                }
            return false;
        });
        return found;
    }
    std::size_t count(const std::string& what) {
        std::lock_guard lock(mu);
        std::size_t n = 0;
        for (const auto& p : published) n += p.topic.find(what) != std::string::npos;
        return n;
    }
};

struct Rig {
    test::TempDir dir;
    metrics::Registry registry;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<twins::TwinService> service;
    std::unique_ptr<twins::GatewayTwin> gateway;
    FakeHub hub;
    std::mutex desired_mu;
    std::vector<std::pair<std::string, std::string>> desired_seen;  // device, notification body

    explicit Rig(bool puback = true) { open(puback); }
    ~Rig() { close(); }
    void close() {
        if (gateway) gateway->stop();
        if (store) store->close();
        gateway.reset();
        service.reset();
        store.reset();
    }
    void open(bool puback = true) {
        close();
        store::Options o;
        o.limits.path = dir.file("hubgate.db");
        o.limits.commit_window_ms = 0;
        auto s = store::Store::open(std::move(o), registry);
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? std::string() : s.error()));
        store = std::move(s.value());
        service = std::make_unique<twins::TwinService>(*store, &registry);
        twins::GatewayTwinOptions opts;
        opts.get_timeout = 200ms;
        opts.retry_after = 50ms;
        gateway = std::make_unique<twins::GatewayTwin>(*service, *store, hub.port(puback), opts, registry);
        service->set_reported_listener([this](const std::string&) { gateway->reported_changed(); });
        service->set_desired_listener([this](const std::string& d, std::string body, std::int64_t) {
            std::lock_guard lock(desired_mu);
            desired_seen.emplace_back(d, std::move(body));
        });
        gateway->start();
    }
    void report(const std::string& id, const std::string& patch) {
        std::promise<TwinAnswer> p;
        service->update_reported(id, patch, [&](TwinAnswer a) { p.set_value(std::move(a)); });
        REQUIRE(p.get_future().get().status == 204);
    }
    json desired(const std::string& id) {
        std::promise<TwinAnswer> p;
        service->get_twin(id, [&](TwinAnswer a) { p.set_value(std::move(a)); });
        return json::parse(p.get_future().get().body)["desired"];
    }
    double metric(const std::string& needle) {
        const std::string text = registry.render();
        const auto at = text.find("\n" + needle + " ");
        if (at == std::string::npos) return -1;
        return std::stod(text.substr(at + needle.size() + 2));
    }
    bool eventually(const std::function<bool()>& f) {
        for (int i = 0; i < 500; ++i) {
            if (f()) return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
};

const std::string kPatch = "devices/gw/$iothub/twin/PATCH/properties/reported/?$rid=";
const std::string kGet = "devices/gw/$iothub/twin/GET/?$rid=";

std::string rid_of(const std::string& topic) { return topic.substr(topic.find("$rid=") + 5); }

}  // namespace

TEST_SUITE("twins") {

TEST_CASE("reported changes made while disconnected go up as one patch on connect, null for removed properties") {
    Rig rig;
    rig.report("dev-1", R"({"a":1,"t":{"min":5,"max":30}})");
    rig.report("dev-1", R"({"t":{"min":null},"b":2})");
    rig.report("dev-2", R"({"x":"y"})");
    rig.gateway->connection(true, 1);
    const auto p = rig.hub.wait(kPatch);
    REQUIRE(p);
    CHECK(json::parse(p->payload) ==
          json::parse(R"({"devices":{"dev-1":{"a":1,"b":2,"t":{"max":30}},"dev-2":{"x":"y"}}})"));
    p->done(true);
    // The hub acknowledged everything: a removal now is a null for exactly that property.
    rig.report("dev-1", R"({"a":null})");
    const auto q = rig.hub.wait(kPatch, 2);
    REQUIRE(q);
    CHECK(json::parse(q->payload) == json::parse(R"({"devices":{"dev-1":{"a":null}}})"));
    q->done(true);
    CHECK(rig.eventually([&] { return rig.metric("hubgate_twin_reported_pending") == 0; }));
    CHECK(rig.metric(R"(hubgate_twin_requests_total{op="upstream_reported",result="ok"})") == 2);
}

TEST_CASE("changes made while a patch is in flight wait for it and go up together in the next one") {
    Rig rig;
    rig.gateway->connection(true, 1);
    rig.report("dev-1", R"({"a":1})");
    const auto first = rig.hub.wait(kPatch);
    REQUIRE(first);
    rig.report("dev-1", R"({"a":2,"b":1})");
    rig.report("dev-1", R"({"b":null,"c":3})");
    CHECK(rig.hub.count(kPatch) == 1);  // nothing more before the first is acknowledged
    first->done(true);
    const auto second = rig.hub.wait(kPatch, 2);
    REQUIRE(second);
    CHECK(json::parse(second->payload) == json::parse(R"({"devices":{"dev-1":{"a":2,"c":3}}})"));
}

TEST_CASE("a patch lost with its connection is sent again with the changes made since, after the next connect") {
    Rig rig;
    rig.gateway->connection(true, 1);
    rig.report("dev-1", R"({"a":1,"z":0})");
    const auto first = rig.hub.wait(kPatch);
    REQUIRE(first);
    first->done(true);
    rig.report("dev-1", R"({"z":null})");
    const auto lost = rig.hub.wait(kPatch, 2);
    REQUIRE(lost);
    rig.gateway->connection(false, 1);
    lost->done(false);
    rig.report("dev-1", R"({"b":2})");
    rig.gateway->connection(true, 2);
    const auto again = rig.hub.wait(kPatch, 3);
    REQUIRE(again);
    CHECK(json::parse(again->payload) == json::parse(R"({"devices":{"dev-1":{"z":null,"b":2}}})"));
}

TEST_CASE("what the hub acknowledged is recorded in the store: after a restart only the rest goes up") {
    Rig rig;
    rig.gateway->connection(true, 1);
    rig.report("dev-1", R"({"a":1})");
    const auto first = rig.hub.wait(kPatch);
    REQUIRE(first);
    first->done(true);
    REQUIRE(rig.eventually([&] { return rig.metric("hubgate_twin_reported_pending") == 0; }));
    rig.report("dev-1", R"({"a":null,"b":2})");  // never acknowledged: the gateway stops first
    REQUIRE(rig.hub.wait(kPatch, 2));
    rig.open();
    rig.gateway->connection(true, 1);
    const auto resent = rig.hub.wait(kPatch, 3);
    REQUIRE(resent);
    CHECK(json::parse(resent->payload) == json::parse(R"({"devices":{"dev-1":{"a":null,"b":2}}})"));
}

TEST_CASE("on azure-iot-hub a patch counts as delivered on the hub's 204, not on the PUBACK") {
    Rig rig(false);
    rig.gateway->connection(true, 1);
    rig.report("dev-1", R"({"a":1})");
    const auto first = rig.hub.wait(kPatch);
    REQUIRE(first);
    first->done(true);  // PUBACK only
    rig.report("dev-1", R"({"b":1})");
    CHECK(rig.hub.count(kPatch) == 1);
    rig.gateway->response(204, rid_of(first->topic), "");
    const auto second = rig.hub.wait(kPatch, 2);
    REQUIRE(second);
    CHECK(json::parse(second->payload) == json::parse(R"({"devices":{"dev-1":{"b":1}}})"));
}

TEST_CASE("on connect the gateway GETs its twin and local devices get the hub's desired documents") {
    Rig rig;
    rig.gateway->desired_patch(R"({"devices":{"dev-1":{"interval":10,"mode":"eco"},"dev-2":{"x":1}},"$version":3})");
    rig.gateway->connection(true, 1);
    const auto get = rig.hub.wait(kGet);
    REQUIRE(get);
    get->done(true);
    rig.gateway->response(200, rid_of(get->topic),
                          R"({"desired":{"devices":{"dev-1":{"interval":30},"dev-3":{"on":true}},"$version":7},)"
                          R"("reported":{"$version":2}})");
    CHECK(rig.desired("dev-1") == json::parse(R"({"interval":30,"$version":3})"));
    CHECK(rig.desired("dev-2") == json::parse(R"({"$version":3})"));  // absent from the hub's: cleared
    CHECK(rig.desired("dev-3") == json::parse(R"({"on":true,"$version":2})"));
    std::lock_guard lock(rig.desired_mu);
    // Connected devices are told the difference, as a desired patch.
    bool dev1 = false;
    for (const auto& [d, body] : rig.desired_seen)
        if (d == "dev-1" && json::parse(body) == json::parse(R"({"interval":30,"mode":null,"$version":3})")) dev1 = true;
    CHECK(dev1);
    CHECK(rig.metric(R"(hubgate_twin_requests_total{op="upstream_get",result="ok"})") == 1);
}

TEST_CASE("a desired patch newer than the GET's answer that arrived before it is applied again over it") {
    Rig rig;
    rig.gateway->connection(true, 1);
    const auto get = rig.hub.wait(kGet);
    REQUIRE(get);
    rig.gateway->desired_patch(R"({"devices":{"dev-1":{"interval":60}},"$version":8})");
    rig.gateway->response(200, rid_of(get->topic), R"({"desired":{"devices":{"dev-1":{"interval":30}},"$version":7}})");
    CHECK(rig.desired("dev-1")["interval"] == 60);
}

TEST_CASE("a GET answer whose reported section is not what the hub acknowledged makes the next patch the difference from it") {
    Rig rig;
    rig.gateway->connection(true, 1);
    const auto get = rig.hub.wait(kGet);
    REQUIRE(get);
    rig.report("dev-1", R"({"a":1,"b":2})");
    const auto first = rig.hub.wait(kPatch);
    REQUIRE(first);
    // The GET is answered while the first patch is in flight: the hub holds something else for dev-1.
    rig.gateway->response(200, rid_of(get->topic),
                          R"({"desired":{"$version":1},"reported":{"devices":{"dev-1":{"a":1,"c":3}},"$version":4}})");
    first->done(true);  // acknowledged after the answer: not recorded over what the hub was found to hold
    const auto second = rig.hub.wait(kPatch, 2);
    REQUIRE(second);
    CHECK(json::parse(second->payload) == json::parse(R"({"devices":{"dev-1":{"b":2,"c":null}}})"));
}

TEST_CASE("a GET answer with a reset twin (no reported devices) sends every device's reported properties again") {
    Rig rig;
    rig.gateway->connection(true, 1);
    rig.report("dev-1", R"({"a":1})");
    const auto first = rig.hub.wait(kPatch);
    REQUIRE(first);
    first->done(true);
    REQUIRE(rig.eventually([&] { return rig.metric("hubgate_twin_reported_pending") == 0; }));
    rig.gateway->connection(false, 1);
    rig.gateway->connection(true, 2);
    const auto get = rig.hub.wait(kGet, 2);
    REQUIRE(get);
    rig.gateway->response(200, rid_of(get->topic), R"({"desired":{"$version":1},"reported":{"$version":1}})");
    const auto again = rig.hub.wait(kPatch, 2);
    REQUIRE(again);
    CHECK(json::parse(again->payload) == json::parse(R"({"devices":{"dev-1":{"a":1}}})"));
}

TEST_CASE("a GET nobody answers times out, is counted, and changes nothing") {
    Rig rig;
    rig.gateway->desired_patch(R"({"devices":{"dev-1":{"interval":10}}})");
    rig.gateway->connection(true, 1);
    REQUIRE(rig.hub.wait(kGet));
    CHECK(rig.eventually(
        [&] { return rig.metric(R"(hubgate_twin_requests_total{op="upstream_get",result="timeout"})") == 1; }));
    CHECK(rig.desired("dev-1")["interval"] == 10);
    // Reported patches go on regardless.
    rig.report("dev-1", R"({"a":1})");
    CHECK(rig.hub.wait(kPatch));
}

TEST_CASE("a device too large for the gateway's reported properties is counted once per change, the others go up") {
    Rig rig;
    rig.gateway->connection(true, 1);
    const std::string big = R"({"blob":")" + std::string(33000, 'x') + R"("})";
    rig.report("big", big);
    rig.report("small", R"({"a":1})");
    const auto p = rig.hub.wait(kPatch);
    REQUIRE(p);
    CHECK(json::parse(p->payload) == json::parse(R"({"devices":{"small":{"a":1}}})"));
    p->done(true);
    CHECK(rig.eventually([&] {
        return rig.metric(R"(hubgate_twin_oversize_total{side="reported",limit="bytes"})") == 1 &&
               rig.metric("hubgate_twin_reported_pending") == 1;
    }));
}

}  // TEST_SUITE
