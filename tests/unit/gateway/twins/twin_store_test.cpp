// TwinService on a real store: GET documents, reported patches answered 204 with rising versions
// after the commit, desired patches from the gateway's own twin reaching the listener, and twins
// read back after the store is reopened.
#include <doctest/doctest.h>

#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "gateway/metrics/registry.hpp"
#include "gateway/twins/twin_service.hpp"
#include "store/store.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate;
using nlohmann::json;

namespace {

struct Rig {
    test::TempDir dir;
    metrics::Registry registry;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<twins::TwinService> service;

    Rig() { open(); }
    void open() {
        service.reset();
        if (store) store->close();
        store.reset();
        store::Options o;
        o.limits.path = dir.file("hubgate.db");
        o.limits.commit_window_ms = 0;
        auto s = store::Store::open(std::move(o), registry);
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? std::string() : s.error()));
        store = std::move(s.value());
        service = std::make_unique<twins::TwinService>(*store);
    }
    TwinAnswer get(const std::string& id) {
        std::promise<TwinAnswer> p;
        service->get_twin(id, [&](TwinAnswer a) { p.set_value(std::move(a)); });
        return p.get_future().get();
    }
    TwinAnswer report(const std::string& id, const std::string& patch) {
        std::promise<TwinAnswer> p;
        service->update_reported(id, patch, [&](TwinAnswer a) { p.set_value(std::move(a)); });
        return p.get_future().get();
    }
};

}  // namespace

TEST_SUITE("twins") {

TEST_CASE("a device without a twin reads empty documents at version 1") {
    Rig rig;
    const auto a = rig.get("dev-1");
    CHECK(a.status == 200);
    CHECK(json::parse(a.body) == json::parse(R"({"desired":{"$version":1},"reported":{"$version":1}})"));
}

TEST_CASE("reported patches are merged, answered 204 with rising versions, and survive reopening the store") {
    Rig rig;
    auto a = rig.report("dev-1", R"({"fw":"1.0","temp":{"max":30,"min":10}})");
    CHECK(a.status == 204);
    CHECK(a.version == 2);  // the empty document was version 1: its first change is 2, as on IoT Hub
    a = rig.report("dev-1", R"({"temp":{"min":null},"fw":"1.1"})");
    CHECK(a.status == 204);
    CHECK(a.version == 3);
    rig.open();
    const auto g = rig.get("dev-1");
    CHECK(json::parse(g.body) ==
          json::parse(R"({"desired":{"$version":1},"reported":{"fw":"1.1","temp":{"max":30},"$version":3}})"));
    const auto read = store::read_twin(rig.dir.file("hubgate.db"), "dev-1");
    REQUIRE(read.ok());
    REQUIRE(read->has_value());
    CHECK((*read)->reported_version == 3);
    CHECK(rig.get("dev-2").body == R"({"desired":{"$version":1},"reported":{"$version":1}})");
}

TEST_CASE("a refused reported patch is answered 400 with an error body and changes nothing") {
    Rig rig;
    const auto a = rig.report("dev-1", "[1,2]");
    CHECK(a.status == 400);
    const auto body = json::parse(a.body);
    CHECK(body.contains("errorCode"));
    CHECK(body.contains("message"));
    CHECK(rig.report("dev-1", R"({"x":1})").version == 2);  // the refusal used no version
}

TEST_CASE("a desired patch of the gateway's twin reaches each named device with its own version") {
    Rig rig;
    std::mutex mu;
    std::vector<std::tuple<std::string, std::string, std::int64_t>> seen;
    std::promise<void> three;
    rig.service->set_desired_listener([&](const std::string& d, std::string body, std::int64_t v) {
        std::lock_guard lock(mu);
        seen.emplace_back(d, std::move(body), v);
        if (seen.size() == 3) three.set_value();
    });
    CHECK(rig.service->apply_gateway_desired(
              R"({"devices":{"a%2Eb":{"interval":30},"dev-2":{"mode":"eco"}},"other":1,"$version":9})") == 2);
    CHECK(rig.service->apply_gateway_desired(R"({"devices":{"a%2Eb":{"interval":null,"led":true}}})") == 1);
    three.get_future().wait();
    std::lock_guard lock(mu);
    REQUIRE(seen.size() == 3);
    for (const auto& [d, body, v] : seen) {
        if (d == "dev-2") {
            CHECK(json::parse(body) == json::parse(R"({"mode":"eco","$version":2})"));
        } else {
            CHECK(d == "a.b");
        }
    }
    CHECK(json::parse(rig.get("a.b").body)["desired"] == json::parse(R"({"led":true,"$version":3})"));
}

TEST_CASE("get_desired reads the desired document alone, and the document listener gets the whole document after each change") {
    Rig rig;
    std::mutex mu;
    std::vector<std::pair<std::string, std::int64_t>> docs;
    std::promise<void> two;
    rig.service->set_desired_document_listener([&](const std::string& d, std::string doc, std::int64_t v) {
        std::lock_guard lock(mu);
        CHECK(d == "dev-1");
        docs.emplace_back(std::move(doc), v);
        if (docs.size() == 2) two.set_value();
    });
    std::promise<TwinAnswer> fresh;
    rig.service->get_desired("dev-1", [&](TwinAnswer a) { fresh.set_value(std::move(a)); });
    const auto a = fresh.get_future().get();
    CHECK(a.status == 200);
    CHECK(json::parse(a.body) == json::parse(R"({"$version":1})"));
    rig.service->update_desired("dev-1", R"({"interval":30,"mode":"eco"})");
    rig.service->update_desired("dev-1", R"({"mode":null,"led":true})");
    two.get_future().wait();
    std::lock_guard lock(mu);
    REQUIRE(docs.size() == 2);
    CHECK(json::parse(docs[0].first) == json::parse(R"({"interval":30,"mode":"eco","$version":2})"));
    CHECK(json::parse(docs[1].first) == json::parse(R"({"interval":30,"led":true,"$version":3})"));
    CHECK(docs[1].second == 3);
    std::promise<TwinAnswer> later;
    rig.service->get_desired("dev-1", [&](TwinAnswer x) { later.set_value(std::move(x)); });
    const auto b = later.get_future().get();
    CHECK(json::parse(b.body) == json::parse(docs[1].first));
    CHECK(b.version == 3);
}

}  // TEST_SUITE
