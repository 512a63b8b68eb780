// MultiDeliverer: routes a C2D delivery to the adapter that can reach the device.
#include <doctest/doctest.h>

#include <set>
#include <vector>

#include "gateway/c2d/multi_deliverer.hpp"

using namespace hubgate;

namespace {

// Reaches the devices in `reachable` (answers completed), others unreachable; records calls.
struct FakeAdapter : C2dDeliverer {
    void deliver(std::string device_id, HubMessage, std::function<void(DeliveryOutcome)> done) override {
        calls.push_back(device_id);
        done(reachable.count(device_id) ? DeliveryOutcome::completed : DeliveryOutcome::unreachable);
    }
    void set_reachability_listener(std::function<void(const std::string&, bool)> fn) override { listener = fn; }
    std::set<std::string> reachable;
    std::vector<std::string> calls;
    std::function<void(const std::string&, bool)> listener;
};

}  // namespace

TEST_CASE("a device the first adapter cannot reach is delivered through the next one") {
    FakeAdapter mqtt, coap;
    coap.reachable = {"dev-1"};
    c2d::MultiDeliverer mux({&mqtt, &coap});
    DeliveryOutcome got = DeliveryOutcome::unreachable;
    mux.deliver("dev-1", HubMessage{}, [&](DeliveryOutcome o) { got = o; });
    CHECK(got == DeliveryOutcome::completed);
    CHECK(mqtt.calls.size() == 1);
    CHECK(coap.calls.size() == 1);
}

TEST_CASE("a device no adapter reaches is unreachable") {
    FakeAdapter mqtt, coap;
    c2d::MultiDeliverer mux({&mqtt, &coap});
    DeliveryOutcome got = DeliveryOutcome::completed;
    mux.deliver("dev-1", HubMessage{}, [&](DeliveryOutcome o) { got = o; });
    CHECK(got == DeliveryOutcome::unreachable);
}

TEST_CASE("a device stays reachable while any adapter reaches it") {
    FakeAdapter mqtt, coap;
    c2d::MultiDeliverer mux({&mqtt, &coap});
    std::vector<bool> seen;
    mux.set_reachability_listener([&](const std::string&, bool r) { seen.push_back(r); });
    mqtt.listener("dev-1", true);
    coap.listener("dev-1", true);
    mqtt.listener("dev-1", false);
    coap.listener("dev-1", false);
    CHECK(seen == std::vector<bool>{true, true, true, false});
}
