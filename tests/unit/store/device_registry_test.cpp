#include <doctest/doctest.h>

#include <filesystem>
#include <future>

#include "store/device_registry.hpp"
#include "tests/unit/store/store_test_support.hpp"

using namespace hubgate;
using namespace hubgate::store;
using namespace hubgate::store::testing;

namespace {

std::unique_ptr<DeviceRegistry> open_registry(const std::string& path, bool create = true) {
    auto r = DeviceRegistry::open(path, create);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error()));
    return std::move(r.value());
}

std::vector<std::string> ids(const std::vector<RegisteredDevice>& devices) {
    std::vector<std::string> out;
    for (const auto& d : devices) out.push_back(d.id);
    return out;
}

bool seen_sync(Store& store, const std::string& id) {
    std::promise<bool> p;
    store.device_seen(id, [&p](bool added) { p.set_value(added); });
    return p.get_future().get();
}

}  // namespace

TEST_CASE("a registry opened before any gateway creates a store the gateway then opens") {
    StoreFixture f;
    {
        auto reg = open_registry(f.options.limits.path);
        REQUIRE(reg->add({"pump-7", "a2V5", "pumps", 42, "pump-7-*", ""}).value());
    }
    auto store = f.open();  // same schema version, nothing to migrate
    auto reg = open_registry(f.options.limits.path, false);
    const auto devices = reg->registered().value();
    REQUIRE(devices.size() == 1);
    CHECK(devices[0].id == "pump-7");
    CHECK(devices[0].key == "a2V5");
    CHECK(devices[0].module_id == "pumps");
    CHECK(devices[0].added_ms == 42);
    CHECK(devices[0].children == "pump-7-*");
}

TEST_CASE("without create, a missing store is an error and no file is made") {
    StoreFixture f;
    auto r = DeviceRegistry::open(f.options.limits.path, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find(f.options.limits.path) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(f.options.limits.path));
}

TEST_CASE("adding an id twice keeps the first key") {
    StoreFixture f;
    auto reg = open_registry(f.options.limits.path);
    CHECK(reg->add({"dev-1", "Zmlyc3Q=", "", 0, "", ""}).value());
    CHECK_FALSE(reg->add({"dev-1", "c2Vjb25k", "m", 0, "", ""}).value());
    const auto devices = reg->registered().value();
    REQUIRE(devices.size() == 1);
    CHECK(devices[0].key == "Zmlyc3Q=");
    CHECK(devices[0].module_id.empty());
    CHECK(devices[0].added_ms > 0);  // stamped when not given
}

TEST_CASE("registered devices are listed by id and remove takes one out") {
    StoreFixture f;
    auto reg = open_registry(f.options.limits.path);
    for (const char* id : {"c", "a", "b"}) REQUIRE(reg->add({id, "a2V5", "", 0, "", ""}).value());
    CHECK(ids(reg->registered().value()) == std::vector<std::string>{"a", "b", "c"});
    CHECK(reg->remove("b").value());
    CHECK_FALSE(reg->remove("b").value());
    CHECK_FALSE(reg->remove("nobody").value());
    CHECK(ids(reg->registered().value()) == std::vector<std::string>{"a", "c"});
}

TEST_CASE("the registry works beside a running store: sees its seen ids, and removing one forgets it") {
    StoreFixture f;
    auto store = f.open();
    REQUIRE(seen_sync(*store, "lamp-2"));
    REQUIRE(seen_sync(*store, "lamp-1"));
    auto reg = open_registry(f.options.limits.path, false);
    CHECK(reg->seen().value() == std::vector<std::string>{"lamp-1", "lamp-2"});
    REQUIRE(reg->add({"pump-1", "a2V5", "", 0, "", ""}).value());
    CHECK(reg->remove("lamp-1").value());
    CHECK(reg->seen().value() == std::vector<std::string>{"lamp-2"});
    CHECK(ids(reg->registered().value()) == std::vector<std::string>{"pump-1"});
    // The store still writes after the registry's transactions (no lock left behind).
    CHECK(seen_sync(*store, "lamp-1"));
    CHECK(append_sync(*store, make_messages("m-", 1, 3)).durable == 3);
    store.reset();
    // And what the store wrote, a new registry connection reads.
    CHECK(open_registry(f.options.limits.path, false)->seen().value() == std::vector<std::string>{"lamp-1", "lamp-2"});
}

TEST_CASE("two processes' first opens of a new store race and both succeed (migration under the lock)") {
    // The CLI and a starting gateway may open a new file at the same moment. Both read version 0;
    // the one that takes the write lock second must see the other's migration, not redo it.
    for (int round = 0; round < 20; ++round) {
        StoreFixture f;
        std::promise<void> go;
        auto start = go.get_future().share();
        auto open_one = [&] {
            start.wait();
            auto r = DeviceRegistry::open(f.options.limits.path, true);
            return r.ok() ? std::string() : r.error();
        };
        auto a = std::async(std::launch::async, open_one);
        auto b = std::async(std::launch::async, open_one);
        go.set_value();
        const auto ea = a.get();
        const auto eb = b.get();
        INFO("round ", round);
        CHECK_MESSAGE(ea.empty(), ea);
        CHECK_MESSAGE(eb.empty(), eb);
        if (!ea.empty() || !eb.empty()) break;
    }
}

TEST_CASE("a device's route is replaced, read back after a restart, and forgotten with the device") {
    StoreFixture f;
    {
        auto store = f.open();
        store->device_route({"zb-lamp", "z2m", "device=zb-lamp", "z2m-bridge"});
        store->device_route({"zb-lamp", "z2m-set", "device=zb-lamp&x=a%26b", "z2m-bridge"});
        REQUIRE(seen_sync(*store, "zb-lamp"));  // after the routes, in order: they are committed too
    }
    auto reg = open_registry(f.options.limits.path, false);
    const auto routes = reg->routes().value();
    REQUIRE(routes.size() == 1);
    CHECK(routes[0] == StoredRoute{"zb-lamp", "z2m-set", "device=zb-lamp&x=a%26b", "z2m-bridge"});
    REQUIRE(reg->remove("zb-lamp").value());
    CHECK(reg->routes().value().empty());
}

TEST_CASE("removing a device deletes its twin, as IoT Hub deletes a deleted device's twin") {
    StoreFixture f;
    {
        auto store = f.open();
        std::promise<TwinUpdate> done;
        store->twin_update("thermo-1", TwinSide::reported, [](const std::string&) { return Result<std::string>{R"({"fw":"1.2"})"}; },
                           [&](TwinUpdate u) { done.set_value(std::move(u)); });
        REQUIRE(done.get_future().get().version == 2);
    }
    REQUIRE(read_twin(f.options.limits.path, "thermo-1").value().has_value());
    auto reg = open_registry(f.options.limits.path, false);
    CHECK(reg->remove("thermo-1").value());
    CHECK_FALSE(read_twin(f.options.limits.path, "thermo-1").value().has_value());
}
