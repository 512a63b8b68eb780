// CoAP twin resources on an in-process CoapServer (built with the sanitizers by scripts/test.sh) and
// a stand-in TwinSink that answers from its own thread, as the store's writer does: what the real
// store cannot be made to do on demand (fail, hold an answer) and notifications the test sends.
// coap-client-openssl plays the device over loopback.
#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "adapters/coap/coap_server.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/pipeline/twins.hpp"
#include "tests/support/coap_client.hpp"
#include "tests/support/coap_rig.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording_ingest.hpp"

using namespace hubgate;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "dHdpbi1pbnByb2Nlc3Mta2V5";

// Answers on a thread of its own. Reported patches replace the document (merging is the real
// service's business, unit-tested there); `fail` answers 503 as the service does when the store
// fails; `hold` keeps answers back until release().
struct FakeTwins final : TwinSink {
    ~FakeTwins() override {
        release();
        for (auto& t : threads) t.join();
    }
    void get_twin(const std::string& device, std::function<void(TwinAnswer)> done) override {
        answer([this, device, done = std::move(done)] {
            if (fail) return done({503, R"({"errorCode":503001,"message":"store down"})", 0});
            std::lock_guard lock(mu);
            done({200, R"({"desired":{"$version":1},"reported":)" + reported_doc(device) + "}", 0});
        });
    }
    void update_reported(const std::string& device, std::string patch, std::function<void(TwinAnswer)> done) override {
        answer([this, device, patch = std::move(patch), done = std::move(done)] {
            if (fail) return done({503, R"({"errorCode":503001,"message":"store down"})", 0});
            std::lock_guard lock(mu);
            auto& [doc, version] = reported[device];
            doc = patch.substr(1, patch.size() - 2);
            done({204, {}, ++version});
        });
    }
    void get_desired(const std::string&, std::function<void(TwinAnswer)> done) override {
        answer([this, done = std::move(done)] {
            if (fail) return done({503, R"({"errorCode":503001,"message":"store down"})", 0});
            done({200, R"({"$version":1})", 1});
        });
    }
    std::string reported_doc(const std::string& device) {
        auto it = reported.find(device);
        if (it == reported.end()) return R"({"$version":1})";
        const auto& [doc, version] = it->second;
        return "{" + doc + (doc.empty() ? "" : ",") + "\"$version\":" + std::to_string(version) + "}";
    }
    void answer(std::function<void()> f) {
        std::lock_guard lock(mu);
        ++asked;
        threads.emplace_back([this, f = std::move(f)] {
            {
                std::unique_lock wait_lock(mu);
                released_cv.wait(wait_lock, [this] { return !hold; });
            }
            f();
        });
    }
    void release() {
        {
            std::lock_guard lock(mu);
            hold = false;
        }
        released_cv.notify_all();
    }
    int asked_count() {
        std::lock_guard lock(mu);
        return asked;
    }

    std::atomic<bool> fail{false};
    bool hold = false;
    std::mutex mu;
    std::condition_variable released_cv;
    std::map<std::string, std::pair<std::string, std::int64_t>> reported;
    int asked = 0;
    std::vector<std::thread> threads;
};

struct Server {
    Server() {
        devices.replace_static({{"dev-1", kKey, ""}, {"dev-2", kKey, ""}});
        auto opts = test::coap_rig_options();
        opts.twins = &twins;
        server = std::make_unique<coap::CoapServer>(io, opts, devices, ingest, registry);
        thread = test::start_coap_rig(*server, io);
    }
    ~Server() {
        io.stop();
        thread.join();
        server.reset();
    }
    std::string uri(bool dtls, const std::string& path) const { return test::coap_rig_uri(*server, dtls, path); }
    double metric(const std::string& name, const std::string& label_value) {
        const std::string text = registry.render();
        const std::string series = "\n" + name + (label_value.empty() ? "" : "{reason=\"" + label_value + "\"}") + " ";
        const auto at = text.find(series);
        return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size()));
    }

    FakeTwins twins;  // outlives the server: answers may still come after it stopped
    boost::asio::io_context io;
    metrics::Registry registry;
    DeviceDirectory devices;
    test::RecordingIngest ingest;
    std::unique_ptr<coap::CoapServer> server;
    std::thread thread;
};

}  // namespace

TEST_SUITE("coap twins in process") {

TEST_CASE("when the store fails a twin GET and a reported patch are answered 5.03 with the JSON error, and later ones work") {
    Server s;
    s.twins.fail = true;
    auto r = test::coap_client("get", s.uri(false, "/devices/d-1/twin"));
    INFO(r.output);
    CHECK(test::has_code(r, "5.03"));
    CHECK(test::has(r, "503001"));
    r = test::coap_client("patch", s.uri(false, "/devices/d-1/twin/reported"), {"-e", R"({"a":1})"});
    INFO(r.output);
    CHECK(test::has_code(r, "5.03"));
    CHECK(test::has(r, "503001"));
    CHECK(s.metric("hubgate_coap_refused_total", "store_failed") == 2);
    s.twins.fail = false;
    r = test::coap_client("patch", s.uri(false, "/devices/d-1/twin/reported"), {"-e", R"({"a":1})"});
    INFO(r.output);
    CHECK(test::has_code(r, "2.04"));
    CHECK(test::has(r, R"({"$version":1})"));
    r = test::coap_client("get", s.uri(false, "/devices/d-1/twin"));
    INFO(r.output);
    CHECK(test::has(r, R"("reported":{"a":1,"$version":1})"));
}

TEST_CASE("observers of twin/desired get each change, a big document block-wise, and an empty 2.05, never an error, once the device is removed") {
    Server s;
    test::Process observer({"coap-client-openssl", "-m", "get", "-v", "6", "-B", "60", "-s", "55", "-u", "dev-1", "-k",
                            kKey, s.uri(true, "/devices/dev-1/twin/desired")});
    REQUIRE_MESSAGE(test::eventually([&] { return s.metric("hubgate_coap_twin_observers", "") == 1; }, 10s),
                    observer.output());
    s.server->twin_desired("dev-2", R"({"not":"dev-1's","$version":2})", 2);  // another device's change
    s.server->twin_desired("dev-1", R"({"interval":30,"$version":2})", 2);
    REQUIRE_MESSAGE(test::eventually([&] { return observer.output().find(R"("interval":30)") != std::string::npos; }, 10s),
                    observer.output());
    std::string big = R"({"table":")" + std::string(3000, 'x') + R"(","$version":3})";
    s.server->twin_desired("dev-1", big, 3);
    // coap-client prints each block as it comes: the last one ends the document.
    REQUIRE_MESSAGE(test::eventually([&] { return observer.output().find(R"(x","$version":3}')") != std::string::npos; }, 10s),
                    observer.output());
    CHECK(observer.output().find("Block2:2/_/1024, Size2:" + std::to_string(big.size())) != std::string::npos);
    CHECK(observer.output().find("dev-1's") == std::string::npos);

    // A reload removes dev-1: its next notification is an empty 2.05 (libcoap 4.3.1 clients crash on
    // error-coded notifications) and it no longer counts as an observer.
    s.devices.replace_static({{"dev-2", kKey, ""}});
    s.server->twin_desired("dev-1", R"({"interval":60,"$version":4})", 4);
    REQUIRE_MESSAGE(test::eventually([&] { return s.metric("hubgate_coap_twin_observers", "") == 0; }, 10s),
                    observer.output());
    CHECK(s.metric("hubgate_coap_refused_total", "revoked") == 1);
    const std::string out = observer.output();
    CHECK(out.find(R"("interval":60)") == std::string::npos);
    CHECK(out.find("c:4.") == std::string::npos);
    CHECK(out.find("c:5.") == std::string::npos);
    CHECK(observer.running());
}

TEST_CASE("a server stopped while a twin answer is pending sends nothing and frees the request when the answer comes") {
    Server s;
    s.twins.hold = true;
    test::Process device({"coap-client-openssl", "-m", "patch", "-v", "6", "-B", "3", "-e", R"({"a":1})",
                          s.uri(false, "/devices/d-1/twin/reported")});
    REQUIRE_MESSAGE(test::eventually([&] { return s.twins.asked_count() == 1; }, 10s), device.output());
    std::promise<void> stopped;
    boost::asio::post(s.io, [&] {
        s.server->stop();
        stopped.set_value();
    });
    REQUIRE(stopped.get_future().wait_for(10s) == std::future_status::ready);
    s.twins.release();
    device.wait(10s);
    INFO(device.output());
    CHECK(device.output().find("c:2.04") == std::string::npos);
}

}  // TEST_SUITE
