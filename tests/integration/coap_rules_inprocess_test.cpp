// CoAP rule paths, in-process (so CI runs them under ASan/UBSan): a CoapServer with translation
// rules and a recording ingest, driven by the real coap-client-openssl over loopback with RFC 8428's
// own SenML examples (tests/data/senml). Pins the answers of DESIGN.md: 2.04 after the commit,
// 4.00 / 4.15 for a payload a rule refuses, 4.04 for an unmatched path, 4.03 for a spoof on coaps.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>

#include "adapters/coap/coap_server.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/translate/translator.hpp"
#include "tests/support/coap_client.hpp"
#include "tests/support/coap_rig.hpp"
#include "tests/support/recording_ingest.hpp"

using namespace hubgate;

namespace {

constexpr const char* kKey = "cGFzc3dvcmRwYXNzd29yZA==";
const std::string kData = HUBGATE_SOURCE_DIR "/tests/data/";

translate::RuleSpec path_rule(std::string name, std::string path, std::string format, std::string on_error) {
    translate::RuleSpec r;
    r.name = std::move(name);
    r.path = std::move(path);
    r.format = std::move(format);
    r.device = "{device}";
    r.module = "sensors";
    r.on_decode_error = std::move(on_error);
    return r;
}

struct Server {
    Server() {
        devices.replace_static({{"dev-1", kKey, ""}});
        std::vector<translate::CompileError> errors;
        translator.set_rules(translate::RuleSet::compile(
            {path_rule("senml", "/senml/{device}", "senml", "refuse"),
             path_rule("strict-json", "/json/{device}", "json", "refuse"),
             path_rule("lenient-json", "/lenient/{device}", "json", "raw")},
            {}, "gw-1", errors));
        REQUIRE(errors.empty());
        auto opts = test::coap_rig_options();
        opts.translator = &translator;
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
    translate::Translator translator{registry};
    test::RecordingIngest ingest;
    std::unique_ptr<coap::CoapServer> server;
    std::thread thread;
};

}  // namespace

TEST_CASE("a SenML pack (Content-Format 110) on a rule path is stored as resolved JSON records and answered 2.04") {
    Server s;
    const auto r = test::coap_client(
        "post", s.uri(false, "/senml/urn-dev-ow-10e2073a01080063?site=roof&$.mid=pack-1"),
        {"-t", "110", "-f", kData + "senml/rfc8428-5.1.2-multiple-data-points.json"});
    INFO(r.output);
    CHECK(test::has_code(r, "2.04"));
    const auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].device_id == "urn-dev-ow-10e2073a01080063");
    CHECK(msgs[0].module_id == "sensors");
    CHECK(msgs[0].system.content_type == "application/json");
    CHECK(msgs[0].system.content_encoding == "utf-8");
    CHECK(msgs[0].system.message_id == "pack-1");  // system properties from the query stay
    REQUIRE(msgs[0].properties.find("site"));
    CHECK(msgs[0].properties.find("site")->value == "roof");
    REQUIRE(msgs[0].properties.find("source-content-type"));
    CHECK(msgs[0].properties.find("source-content-type")->value == "application/senml+json");
    CHECK(msgs[0].body.find(R"("n":"urn:dev:ow:10e2073a01080063:voltage")") != std::string::npos);
    CHECK(msgs[0].body.find(R"("bn")") == std::string::npos);  // base fields resolved away
}

TEST_CASE("SenML in CBOR (112), RFC 8428's own example, is stored as JSON labels") {
    Server s;
    const auto r = test::coap_client("post", s.uri(false, "/senml/dev-cbor"),
                                     {"-t", "112", "-f", kData + "senml/rfc8428-5.1.3-multiple-measurements.cbor"});
    INFO(r.output);
    CHECK(test::has_code(r, "2.04"));
    const auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].body.front() == '[');
    CHECK(msgs[0].body.find(R"("n":)") != std::string::npos);
    CHECK(msgs[0].properties.find("source-content-type")->value == "application/senml+cbor");
}

TEST_CASE("a rule that refuses answers 4.00 for a bad payload and 4.15 for a Content-Format it cannot decode, "
          "nothing is stored") {
    Server s;
    const auto bad = test::coap_client("post", s.uri(false, "/json/dev-2"), {"-t", "50", "-e", "{\"t\":"});
    INFO(bad.output);
    CHECK(test::has_code(bad, "4.00"));
    const auto cbor = test::coap_client("post", s.uri(false, "/json/dev-2"),
                                        {"-t", "60", "-f", kData + "senml/rfc8428-5.1.3-multiple-measurements.cbor"});
    INFO(cbor.output);
    CHECK(test::has_code(cbor, "4.15"));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("a lenient rule keeps an undecodable payload raw with decode-error, an unmatched path is 4.04") {
    Server s;
    const auto raw = test::coap_client("post", s.uri(false, "/lenient/dev-3"), {"-t", "50", "-e", "not json"});
    INFO(raw.output);
    CHECK(test::has_code(raw, "2.04"));
    const auto none = test::coap_client("post", s.uri(false, "/elsewhere/dev-3"), {"-t", "50", "-e", "{}"});
    INFO(none.output);
    CHECK(test::has_code(none, "4.04"));
    const auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].body == "not json");
    CHECK(msgs[0].system.content_type == "application/octet-stream");
    REQUIRE(msgs[0].properties.find("decode-error"));
}

TEST_CASE("on coaps a rule may not name another device than the DTLS identity: 4.03, nothing stored") {
    Server s;
    const auto own = test::coap_client("post", s.uri(true, "/json/dev-1"),
                                       {"-u", "dev-1", "-k", kKey, "-t", "50", "-e", R"({"t":1})"});
    INFO(own.output);
    CHECK(test::has_code(own, "2.04"));
    const auto other = test::coap_client("post", s.uri(true, "/json/dev-9"),
                                         {"-u", "dev-1", "-k", kKey, "-t", "50", "-e", R"({"t":1})"});
    INFO(other.output);
    CHECK(test::has_code(other, "4.03"));
    REQUIRE(s.ingest.messages().size() == 1);
    CHECK(s.ingest.messages()[0].device_id == "dev-1");
}
