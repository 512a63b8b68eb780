// The gateway's own twin as pure functions: the coalesced reported patch (the difference between
// what the hub acknowledged and each device's document now, null for removed properties), IoT Hub's
// 32 KB / 10-level limits, and what the answer to a GET of the twin changes for local devices.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "gateway/twins/gateway_twin_plan.hpp"
#include "gateway/twins/twin_json.hpp"

using namespace hubgate;
using namespace hubgate::twins;
using nlohmann::json;

namespace {

store::ReportedPending pending(std::string id, std::string reported, std::int64_t version, std::string sent = "{}") {
    return {std::move(id), std::move(reported), version, std::move(sent)};
}

}  // namespace

TEST_SUITE("twins") {

TEST_CASE("diff_patch gives the merge patch from one document to another: null for what is gone") {
    CHECK(json::parse(diff_patch(R"({"a":1,"b":{"c":2,"d":3},"e":[1]})", R"({"a":1,"b":{"c":5},"f":true})")) ==
          json::parse(R"({"b":{"c":5,"d":null},"e":null,"f":true})"));
    CHECK(diff_patch(R"({"a":{"b":1}})", R"({"a":{"b":1}})") == "{}");
    CHECK(json::parse(diff_patch(R"({"a":1})", R"({"a":{"b":1}})")) == json::parse(R"({"a":{"b":1}})"));
    // Applying the difference gives the target (RFC 7386 merge, our merge_patch).
    const std::string from = R"({"x":{"y":{"z":1,"w":2}},"k":"v"})";
    const std::string target = R"({"x":{"y":{"w":3}},"n":[null,1]})";
    auto applied = merge_patch(from, diff_patch(from, target));
    REQUIRE(applied.ok());
    CHECK(json::parse(*applied) == json::parse(target));
}

TEST_CASE("many changes of one device become one patch: the difference from what the hub acknowledged") {
    store::ReportedBacklog b;
    // Acknowledged {"a":1,"t":{"min":5,"max":30}}; since then a removed, t.min removed, b added.
    b.pending.push_back(pending("dev-1", R"({"b":2,"t":{"max":30}})", 7, R"({"a":1,"t":{"max":30,"min":5}})"));
    b.sent_bytes.emplace_back("dev-1", std::string(R"({"a":1,"t":{"max":30,"min":5}})").size());
    const auto plan = plan_reported(b);
    REQUIRE(!plan.patch.empty());
    CHECK(json::parse(plan.patch) == json::parse(R"({"devices":{"dev-1":{"a":null,"b":2,"t":{"min":null}}}})"));
    REQUIRE(plan.sent.size() == 1);
    CHECK(plan.sent[0].id == "dev-1");
    CHECK(plan.sent[0].version == 7);
    CHECK(json::parse(plan.sent[0].document) == json::parse(R"({"b":2,"t":{"max":30}})"));
    CHECK_FALSE(plan.more);
}

TEST_CASE("device ids are encoded as keys of the gateway's twin, and several devices share one patch") {
    store::ReportedBacklog b;
    b.pending.push_back(pending("a.b", R"({"x":1})", 1));
    b.pending.push_back(pending("c d", R"({"y":2})", 3));
    const auto plan = plan_reported(b);
    CHECK(json::parse(plan.patch) == json::parse(R"({"devices":{"a%2Eb":{"x":1},"c%20d":{"y":2}}})"));
    CHECK(plan.sent.size() == 2);
}

TEST_CASE("a change that was undone before it was sent sends nothing but is no longer pending") {
    store::ReportedBacklog b;
    b.pending.push_back(pending("dev-1", R"({"a":1})", 4, R"({"a":1})"));
    const auto plan = plan_reported(b);
    CHECK(plan.patch.empty());
    REQUIRE(plan.sent.size() == 1);
    CHECK(plan.sent[0].version == 4);
}

TEST_CASE("a device whose section would push the gateway's reported properties over 32 KB is left out and reported") {
    store::ReportedBacklog b;
    const std::string big_value(20000, 'x');
    const std::string held = R"({"blob":")" + big_value + R"("})";
    b.sent_bytes.emplace_back("big-1", held.size());  // the hub holds 20 KB already
    b.pending.push_back(pending("big-2", held, 2));   // another 20 KB would not fit
    b.pending.push_back(pending("small", R"({"ok":true})", 1));
    const auto plan = plan_reported(b);
    REQUIRE(plan.oversize.size() == 1);
    CHECK(plan.oversize[0].id == "big-2");
    CHECK(plan.oversize[0].limit == Oversize::Limit::bytes);
    CHECK(plan.oversize[0].bytes > kMaxTwinSideBytes);
    CHECK(json::parse(plan.patch) == json::parse(R"({"devices":{"small":{"ok":true}}})"));
    REQUIRE(plan.sent.size() == 1);
    CHECK(plan.sent[0].id == "small");
    CHECK(plan.document_bytes <= kMaxTwinSideBytes);
}

TEST_CASE("a device's shrinking section is always sent, even while the document is near the limit") {
    store::ReportedBacklog b;
    const std::string big(30000, 'x');
    b.sent_bytes.emplace_back("big-1", big.size() + 12);
    b.pending.push_back(pending("big-1", R"({"blob":"small now"})", 3, R"({"blob":")" + big + R"("})"));
    const auto plan = plan_reported(b);
    CHECK(plan.oversize.empty());
    CHECK(json::parse(plan.patch)["devices"]["big-1"]["blob"] == "small now");
}

TEST_CASE("a device nesting deeper than 8 levels would exceed the hub's 10 inside devices.<D> and is left out") {
    store::ReportedBacklog b;
    b.pending.push_back(pending("deep", R"({"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":{"9":1}}}}}}}}})", 1));
    b.pending.push_back(pending("ok8", R"({"1":{"2":{"3":{"4":{"5":{"6":{"7":{"8":1}}}}}}}})", 1));
    const auto plan = plan_reported(b);
    REQUIRE(plan.oversize.size() == 1);
    CHECK(plan.oversize[0].id == "deep");
    CHECK(plan.oversize[0].limit == Oversize::Limit::depth);
    CHECK(plan.oversize[0].depth == 11);
    CHECK(json::parse(plan.patch)["devices"].contains("ok8"));
}

TEST_CASE("a patch holds at most the limit: the devices after it wait for the next one") {
    // Three devices replace 10 KB each: the document keeps its size, the patch carries all three.
    store::ReportedBacklog b;
    const std::string old_doc = R"({"v":")" + std::string(10000, 'y') + R"("})";
    const std::string new_doc = R"({"w":")" + std::string(10000, 'z') + R"("})";
    for (int i = 0; i < 3; ++i) {
        b.pending.push_back(pending("d" + std::to_string(i), new_doc, 2, old_doc));
        b.sent_bytes.emplace_back("d" + std::to_string(i), old_doc.size());
    }
    const auto all = plan_reported(b);
    CHECK(all.sent.size() == 3);
    CHECK_FALSE(all.more);
    const auto plan = plan_reported(b, 25000);  // a smaller limit: the patch is full after two
    CHECK(plan.more);
    CHECK(plan.sent.size() == 2);
    CHECK(plan.patch.size() <= 25000);
    CHECK(plan.oversize.empty());
}

TEST_CASE("the answer to a GET of the gateway's twin names each device's desired document") {
    const auto hub = read_gateway_twin(
        R"({"desired":{"devices":{"a%2Eb":{"interval":30},"gone":null,"bad":5,"dollar":{"$x":1}},"other":1,"$version":12},
            "reported":{"$version":4}})");
    REQUIRE(hub.ok());
    CHECK(hub->version == 12);
    REQUIRE(hub->devices.size() == 2);
    CHECK(hub->devices[0].first == "a.b");
    CHECK(json::parse(hub->devices[0].second) == json::parse(R"({"interval":30})"));
    CHECK(hub->devices[1].first == "gone");
    CHECK(hub->devices[1].second == "{}");
    CHECK(hub->unusable == std::vector<std::string>{"bad", "dollar"});
    CHECK_FALSE(read_gateway_twin("not json").ok());
    CHECK_FALSE(read_gateway_twin(R"({"reported":{}})").ok());
    CHECK(read_gateway_twin(R"({"desired":{"$version":3}})")->devices.empty());
}

TEST_CASE("GET reconciliation: devices get the hub's document, devices absent from it lose their desired properties") {
    const auto hub = read_gateway_twin(
        R"({"desired":{"devices":{"same":{"a":1},"changed":{"a":2,"n":{"x":1}},"new":{"b":true},"bad":7},"$version":9}})");
    REQUIRE(hub.ok());
    const std::vector<std::pair<std::string, std::string>> local{
        {"bad", R"({"keep":1})"},
        {"changed", R"({"a":1,"n":{"x":1,"y":2},"old":0})"},
        {"orphan", R"({"interval":5})"},
        {"same", R"({"a":1})"},
    };
    const auto changes = desired_changes(*hub, local);
    REQUIRE(changes.size() == 3);
    CHECK(changes[0].first == "changed");
    CHECK(json::parse(changes[0].second) == json::parse(R"({"a":2,"n":{"y":null},"old":null})"));
    CHECK(changes[1].first == "new");
    CHECK(json::parse(changes[1].second) == json::parse(R"({"b":true})"));
    CHECK(changes[2].first == "orphan");
    CHECK(json::parse(changes[2].second) == json::parse(R"({"interval":null})"));
}

TEST_CASE("what the hub holds in reported.devices is read from a GET's answer, and compared with what was acknowledged") {
    const auto held = read_gateway_reported(
        R"({"desired":{},"reported":{"devices":{"a%2Eb":{"fw":"1.0"},"odd":3},"other":1,"$version":9}})");
    REQUIRE(held);
    REQUIRE(held->size() == 1);
    CHECK((*held)[0].first == "a.b");
    CHECK(json::parse((*held)[0].second) == json::parse(R"({"fw":"1.0"})"));
    CHECK_FALSE(read_gateway_reported(R"({"desired":{}})").has_value());  // says nothing of reported
    CHECK(read_gateway_reported(R"({"desired":{},"reported":{"$version":1}})")->empty());

    const std::vector<std::pair<std::string, std::string>> acked{
        {"a.b", R"({"fw":"1.0"})"},     // the same: nothing to do
        {"gone", R"({"x":1})"},         // the hub holds nothing for it (twin reset): from {}
        {"never", "{}"},                // nothing acknowledged, nothing held
        {"odd", R"({"y":2})"},          // the hub holds something else
    };
    const std::vector<std::pair<std::string, std::string>> hub{{"a.b", R"({"fw":"1.0"})"}, {"odd", R"({"y":3})"}};
    const auto rebase = reported_rebase(hub, acked);
    REQUIRE(rebase.size() == 2);
    CHECK(rebase[0] == std::pair<std::string, std::string>{"gone", "{}"});
    CHECK(rebase[1].first == "odd");
    CHECK(json::parse(rebase[1].second) == json::parse(R"({"y":3})"));
}

TEST_CASE("a desired patch's $version is read from its body") {
    CHECK(patch_version(R"({"devices":{},"$version":41})") == 41);
    CHECK_FALSE(patch_version(R"({"devices":{}})").has_value());
    CHECK_FALSE(patch_version("[]").has_value());
}

}  // TEST_SUITE
