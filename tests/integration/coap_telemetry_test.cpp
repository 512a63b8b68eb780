// CoAP telemetry end to end: an in-process CoapServer (plain UDP and DTLS-PSK listeners) with a fake
// IngestSink that records messages, and the real coap-client-openssl over loopback.
#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "adapters/coap/coap_server.hpp"
#include "gateway/devices/device_directory.hpp"
#include "gateway/metrics/registry.hpp"
#include "gateway/pipeline/ingest.hpp"
#include "tests/support/coap_client.hpp"
#include "tests/support/coap_rig.hpp"
#include "tests/support/coap_psk_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/recording_ingest.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/udp_peer.hpp"

using namespace hubgate;
using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "cGFzc3dvcmRwYXNzd29yZA==";

using test::has;
using test::has_code;
using test::RecordingIngest;

struct Server {
    explicit Server(std::chrono::milliseconds upload_idle = std::chrono::seconds(60)) {
        devices.replace_static({{"dev-1", kKey, "thermo"}, {"dev-2", kKey, ""}});
        auto opts = test::coap_rig_options("coap");
        opts.upload_idle = upload_idle;
        server = std::make_unique<coap::CoapServer>(io, opts, devices, ingest, registry);
        thread = test::start_coap_rig(*server, io);
    }
    ~Server() {
        io.stop();
        thread.join();
        server.reset();
    }
    // Bodies of the stored messages, in order.
    std::vector<std::string> bodies() {
        std::vector<std::string> out;
        for (const auto& m : ingest.messages()) out.push_back(m.body);
        return out;
    }
    // hubgate_coap_refused_total{reason=...}.
    std::uint64_t refused(const std::string& reason) {
        return registry.counter("hubgate_coap_refused_total", "", {{"reason", reason}}).value();
    }
    std::string uri(bool dtls, const std::string& path) const { return test::coap_rig_uri(*server, dtls, path); }

    boost::asio::io_context io;
    metrics::Registry registry;
    DeviceDirectory devices;
    RecordingIngest ingest;
    std::unique_ptr<coap::CoapServer> server;
    std::thread thread;
};

// Runs coap-client-openssl (POST) and returns its output; response codes show with -v 6.
test::RunResult post(std::vector<std::string> extra, const std::string& uri) {
    return test::coap_client("post", uri, std::move(extra));
}

}  // namespace

TEST_CASE("a JSON POST over plain UDP is stored with its content type and answered 2.04") {
    Server s;
    auto r = post({"-t", "50", "-e", R"({"t":21})"}, s.uri(false, "/devices/dev-1/messages/events"));
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].body == R"({"t":21})");
    CHECK(msgs[0].device_id == "dev-1");
    CHECK(msgs[0].module_id == "thermo");
    CHECK(msgs[0].system.content_type == "application/json");
}

TEST_CASE("a CBOR POST with query properties carries them as application and system properties") {
    Server s;
    test::TempDir dir;
    const auto file = dir.write("body.cbor", std::string("\xa1\x61t\x15", 4));
    auto r = post({"-t", "60", "-f", file},
                  s.uri(false, "/devices/dev-2/messages/events?room=kitchen&$.mid=m-42&alarm"));
    INFO(r.output);
    CHECK(has_code(r, "2.04"));
    auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].body == std::string("\xa1\x61t\x15", 4));
    CHECK(msgs[0].system.content_type == "application/cbor");
    CHECK(msgs[0].system.message_id == "m-42");
    CHECK(msgs[0].module_id == "coap");  // dev-2 has no module: the listener's
    REQUIRE(msgs[0].properties.find("room"));
    CHECK(msgs[0].properties.find("room")->value == "kitchen");
    CHECK(msgs[0].properties.find("alarm"));
}

TEST_CASE("a 200 KB block-wise upload arrives whole over plain UDP and over DTLS-PSK") {
    Server s;
    test::TempDir dir;
    std::string body(200 * 1024, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
    const auto file = dir.write("big.bin", body);
    auto r1 = post({"-t", "42", "-b", "1024", "-f", file}, s.uri(false, "/devices/dev-1/messages/events"));
    INFO(r1.output);
    CHECK(has_code(r1, "2.04"));
    auto r2 = post({"-t", "42", "-b", "1024", "-f", file, "-u", "dev-1", "-k", kKey},
                   s.uri(true, "/devices/dev-1/messages/events"));
    INFO(r2.output);
    CHECK(has_code(r2, "2.04"));
    auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0].body == body);
    CHECK(msgs[1].body == body);
    CHECK(msgs[1].system.content_type == "application/octet-stream");
    CHECK(msgs[1].module_id == "thermo");  // over coaps too, the device's configured module
}

TEST_CASE("a DTLS-PSK client with the wrong key gets no answer and nothing is stored") {
    Server s;
    auto r = post({"-e", "x", "-u", "dev-1", "-k", "wrong-key"}, s.uri(true, "/devices/dev-1/messages/events"));
    INFO(r.output);
    CHECK_FALSE(has_code(r, "2.04"));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("a DTLS session is refused 4.01 once its device is removed or its key changes, and others go on") {
    Server s;
    const auto port = s.server->ports().at(1);
    test::CoapPskClient one(port, "dev-1", kKey);
    test::CoapPskClient two(port, "dev-2", kKey);
    CHECK(one.post("devices/dev-1/messages/events", "one before") == "2.04");
    CHECK(two.post("devices/dev-2/messages/events", "two before") == "2.04");
    // A reload gives dev-1 a new key: its session shook hands with the old one.
    s.devices.replace_static({{"dev-1", "bmV3LWtleS1uZXcta2V5LW5ldw==", "thermo"}, {"dev-2", kKey, ""}});
    CHECK(one.post("devices/dev-1/messages/events", "one after the key change") == "4.01");
    CHECK(two.post("devices/dev-2/messages/events", "two still") == "2.04");
    // A reload removes dev-2.
    s.devices.replace_static({{"dev-1", "bmV3LWtleS1uZXcta2V5LW5ldw==", "thermo"}});
    CHECK(two.post("devices/dev-2/messages/events", "two after removal") == "4.01");
    CHECK(s.bodies() == std::vector<std::string>{"one before", "two before", "two still"});
    CHECK(s.refused("revoked") == 2);
}

TEST_CASE("on plain coap a new device id beyond max_seen_devices is refused 4.03 and known ids go on") {
    Server s;
    s.devices.set_seen_limit(1);
    CHECK(has_code(post({"-e", "first"}, s.uri(false, "/devices/open-1/messages/events")), "2.04"));
    const auto r = post({"-e", "second"}, s.uri(false, "/devices/open-2/messages/events"));
    INFO(r.output);
    CHECK(has_code(r, "4.03"));
    CHECK(has(r, "max_seen_devices"));
    // A C2D GET names a device as well.
    CHECK(has_code(test::coap_client("get", s.uri(false, "/devices/open-3/messages/devicebound")), "4.03"));
    CHECK(has_code(post({"-e", "again"}, s.uri(false, "/devices/open-1/messages/events")), "2.04"));
    CHECK(has_code(post({"-e", "configured"}, s.uri(false, "/devices/dev-2/messages/events")), "2.04"));
    CHECK(s.bodies() == std::vector<std::string>{"first", "again", "configured"});
    CHECK(s.refused("seen_devices_full") == 2);
}

TEST_CASE("device dev-1 authenticated by PSK cannot post as dev-2 (4.03)") {
    Server s;
    auto r = post({"-e", "x", "-u", "dev-1", "-k", kKey}, s.uri(true, "/devices/dev-2/messages/events"));
    INFO(r.output);
    CHECK(has_code(r, "4.03"));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("a bad device id in the path is 4.00 and an unknown resource 4.04") {
    Server s;
    auto r1 = post({"-e", "x"}, s.uri(false, "/devices/bad%20id/messages/events"));
    INFO(r1.output);
    CHECK(has_code(r1, "4.00"));
    auto r2 = post({"-e", "x"}, s.uri(false, "/devices/dev-1/messages/somewhere"));
    INFO(r2.output);
    CHECK(has_code(r2, "4.04"));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("GET and DELETE on a devicebound lock path with no such lock answer 4.04, never a false 2.02") {
    Server s;
    for (const char* method : {"get", "delete"}) {
        const auto r = test::run({"coap-client-openssl", "-m", method, "-v", "6", "-B", "5",
                                  s.uri(false, "/devices/dev-1/messages/devicebound/0a0b")},
                                 15s);
        INFO(method << ": " << r.output);
        CHECK(has_code(r, "4.04"));
        CHECK_FALSE(has_code(r, "2.02"));
    }
}

TEST_CASE("a body over 256 KB is refused with 4.13") {
    Server s;
    test::TempDir dir;
    const auto file = dir.write("huge.bin", std::string(262145, 'x'));
    auto r = post({"-b", "1024", "-f", file}, s.uri(false, "/devices/dev-1/messages/events"));
    INFO(r.output);
    CHECK(has_code(r, "4.13"));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("when the store has no room the answer is 5.03 with Max-Age") {
    Server s;
    s.ingest.full = true;
    auto r = post({"-e", "x"}, s.uri(false, "/devices/dev-1/messages/events"));
    INFO(r.output);
    CHECK(has_code(r, "5.03"));
    CHECK(has(r, "Max-Age:"));
}

TEST_CASE("a malformed query is 4.00 and another client keeps posting fine") {
    Server s;
    auto bad = post({"-e", "x"}, s.uri(false, "/devices/dev-1/messages/events?a=%25zz"));
    INFO(bad.output);
    CHECK(has_code(bad, "4.00"));
    auto good = post({"-e", "y"}, s.uri(false, "/devices/dev-2/messages/events?a=1"));
    INFO(good.output);
    CHECK(has_code(good, "2.04"));
    auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].device_id == "dev-2");
    CHECK(s.registry.render().find("hubgate_coap_refused_total{reason=\"bad_properties\"} 1") != std::string::npos);
}

namespace {

using test::UdpPeer;

constexpr std::uint8_t kContinue = 2 << 5 | 31;
constexpr std::uint8_t kChanged = 2 << 5 | 4;
constexpr std::uint8_t kTooLarge = 4 << 5 | 13;
constexpr std::uint8_t kIncomplete = 4 << 5 | 8;
constexpr std::uint8_t kUnavailable = 5 << 5 | 3;


// The response code (class << 5 | detail) answering `token`, ACKing a separate response; nullopt on
// timeout. Empty ACKs (code 0) are skipped.
std::optional<std::uint8_t> wait_code(UdpPeer& peer, std::uint8_t token, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto d = peer.receive(200ms);
        if (!d || d->size() < 5) continue;
        const std::uint8_t type = ((*d)[0] >> 4) & 0x3;
        if (type == 0) peer.send({0x60, 0x00, (*d)[2], (*d)[3]});
        if (((*d)[0] & 0x0f) == 1 && (*d)[4] == token && (*d)[1] != 0) return (*d)[1];
    }
    return std::nullopt;
}

// CON POST /devices/dev-1/messages/events, Content-Format 50, message id `mid`, 1-byte token.
std::vector<std::uint8_t> telemetry_post(std::uint16_t mid, std::uint8_t token, const std::string& body) {
    std::vector<std::uint8_t> d{0x41, 0x02, static_cast<std::uint8_t>(mid >> 8), static_cast<std::uint8_t>(mid & 0xff), token};
    auto option = [&](std::uint8_t delta, const std::string& v) {
        d.push_back(static_cast<std::uint8_t>(delta << 4 | v.size()));
        d.insert(d.end(), v.begin(), v.end());
    };
    option(11, "devices");  // Uri-Path (11)
    option(0, "dev-1");
    option(0, "messages");
    option(0, "events");
    d.push_back(0x11);  // Content-Format (12) = 50, application/json
    d.push_back(50);
    d.push_back(0xff);
    d.insert(d.end(), body.begin(), body.end());
    return d;
}

}  // namespace

TEST_CASE("a retransmitted confirmable POST is stored once and answered 2.04 both times") {
    Server s;
    UdpPeer peer(s.server->ports().at(0));
    const auto request = telemetry_post(0x1234, 0x7a, "{\"n\":1}");
    peer.send(request);
    CHECK(wait_code(peer, 0x7a, 5s) == std::optional<std::uint8_t>(kChanged));
    peer.send(request);  // same endpoint, same message id: a retransmission, not a new message
    CHECK(wait_code(peer, 0x7a, 5s) == std::optional<std::uint8_t>(kChanged));
    const auto stored = s.ingest.messages();
    CHECK(stored.size() == 1);
    CHECK(s.registry.render().find("hubgate_coap_duplicates_total 1") != std::string::npos);
    // A new message id from the same endpoint is a new message.
    peer.send(telemetry_post(0x1235, 0x7b, "{\"n\":2}"));
    CHECK(wait_code(peer, 0x7b, 5s) == std::optional<std::uint8_t>(kChanged));
    CHECK(s.ingest.messages().size() == 2);
}

namespace {

// One block of a Block1 upload to /devices/dev-1/messages/events: block `num`, `more` to come,
// 1024-byte blocks (SZX 6); `size1` announces the whole body when non-zero.
std::vector<std::uint8_t> block_post(std::uint16_t mid, std::uint8_t token, std::uint32_t num, bool more,
                                     const std::string& body, std::uint32_t size1 = 0) {
    std::vector<std::uint8_t> d{0x41, 0x02, static_cast<std::uint8_t>(mid >> 8), static_cast<std::uint8_t>(mid & 0xff), token};
    auto option = [&](unsigned delta, std::vector<std::uint8_t> v) {
        const auto nibble = [](unsigned x) { return x < 13 ? x : 13u; };
        d.push_back(static_cast<std::uint8_t>(nibble(delta) << 4 | nibble(static_cast<unsigned>(v.size()))));
        if (delta >= 13) d.push_back(static_cast<std::uint8_t>(delta - 13));
        if (v.size() >= 13) d.push_back(static_cast<std::uint8_t>(v.size() - 13));
        d.insert(d.end(), v.begin(), v.end());
    };
    auto text = [](const std::string& s) { return std::vector<std::uint8_t>(s.begin(), s.end()); };
    auto uint = [](std::uint32_t v) {
        std::vector<std::uint8_t> out;
        for (; v; v >>= 8) out.insert(out.begin(), static_cast<std::uint8_t>(v & 0xff));
        return out;
    };
    option(11, text("devices"));  // Uri-Path (11)
    option(0, text("dev-1"));
    option(0, text("messages"));
    option(0, text("events"));
    option(16, uint(num << 4 | (more ? 8u : 0u) | 6u));  // Block1 (27)
    if (size1) option(33, uint(size1));                  // Size1 (60)
    d.push_back(0xff);
    d.insert(d.end(), body.begin(), body.end());
    return d;
}

// A whole upload in two blocks (message ids mid and mid + 1, tokens token and token + 1): 2.31 for
// the first, 2.04 for the last.
void upload_two_blocks(UdpPeer& peer, std::uint16_t mid, std::uint8_t token, const std::string& first,
                       const std::string& last) {
    peer.send(block_post(mid, token, 0, true, first));
    REQUIRE(wait_code(peer, token, 5s) == std::optional<std::uint8_t>(kContinue));
    peer.send(block_post(static_cast<std::uint16_t>(mid + 1), static_cast<std::uint8_t>(token + 1), 1, false, last));
    CHECK(wait_code(peer, static_cast<std::uint8_t>(token + 1), 5s) == std::optional<std::uint8_t>(kChanged));
}

}  // namespace

TEST_CASE("an upload whose Size1 announces more than 256 KB is refused 4.13 at its first block") {
    Server s;
    UdpPeer peer(s.server->ports().at(0));
    peer.send(block_post(0x2000, 0x01, 0, true, std::string(1024, 'x'), 300 * 1024));
    CHECK(wait_code(peer, 0x01, 5s) == std::optional<std::uint8_t>(kTooLarge));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("a block-wise upload without Size1 is refused 4.13 at the first block past 256 KB") {
    Server s;
    UdpPeer peer(s.server->ports().at(0));
    const std::string block(1024, 'y');
    std::uint32_t num = 0;
    for (; num < 256; ++num) {  // 256 KB exactly: every block is taken
        peer.send(block_post(static_cast<std::uint16_t>(0x3000 + num), static_cast<std::uint8_t>(num), num, true, block));
        REQUIRE_MESSAGE(wait_code(peer, static_cast<std::uint8_t>(num), 5s) == std::optional<std::uint8_t>(kContinue),
                        "block " << num);
    }
    peer.send(block_post(0x3100, 0xaa, num, false, "z"));  // one byte more
    CHECK(wait_code(peer, 0xaa, 5s) == std::optional<std::uint8_t>(kTooLarge));
    CHECK(s.ingest.messages().empty());
}

TEST_CASE("a block that skips ahead of the upload is refused 4.08 and a whole upload after it is stored") {
    Server s;
    UdpPeer peer(s.server->ports().at(0));
    const std::string block(1024, 'q');
    peer.send(block_post(0x4000, 0x01, 0, true, block));
    REQUIRE(wait_code(peer, 0x01, 5s) == std::optional<std::uint8_t>(kContinue));
    peer.send(block_post(0x4001, 0x02, 2, true, block));  // block 1 never sent
    CHECK(wait_code(peer, 0x02, 5s) == std::optional<std::uint8_t>(kIncomplete));
    CHECK(s.ingest.messages().empty());

    upload_two_blocks(peer, 0x4002, 0x03, block, "tail");
    CHECK(s.bodies() == std::vector<std::string>{block + "tail"});
}

TEST_CASE("an upload left idle past its limit is dropped: its next block is 4.08 and a new upload is stored") {
    Server s(1s);  // 60 s in production
    UdpPeer peer(s.server->ports().at(0));
    const std::string block(1024, 'i');
    peer.send(block_post(0x4100, 0x01, 0, true, block));
    REQUIRE(wait_code(peer, 0x01, 5s) == std::optional<std::uint8_t>(kContinue));
    peer.send(block_post(0x4101, 0x02, 1, true, block));
    REQUIRE(wait_code(peer, 0x02, 5s) == std::optional<std::uint8_t>(kContinue));
    std::this_thread::sleep_for(2s);  // idle past the limit (a wait, not a timing assertion)
    peer.send(block_post(0x4102, 0x03, 2, false, "late"));
    CHECK(wait_code(peer, 0x03, 5s) == std::optional<std::uint8_t>(kIncomplete));
    CHECK(s.ingest.messages().empty());
    // The device starts over and its upload is stored whole.
    upload_two_blocks(peer, 0x4103, 0x04, block, "again");
    CHECK(s.bodies() == std::vector<std::string>{block + "again"});
}

TEST_CASE("a repeated block of an upload (new message id) is acknowledged again and stored once") {
    Server s;
    UdpPeer peer(s.server->ports().at(0));
    const std::string block(1024, 'r');
    const std::string second(1024, 's');
    peer.send(block_post(0x5000, 0x01, 0, true, block));
    REQUIRE(wait_code(peer, 0x01, 5s) == std::optional<std::uint8_t>(kContinue));
    peer.send(block_post(0x5001, 0x02, 1, true, second));
    REQUIRE(wait_code(peer, 0x02, 5s) == std::optional<std::uint8_t>(kContinue));
    peer.send(block_post(0x5002, 0x03, 1, true, second));  // block 1 again, as after a lost 2.31
    REQUIRE(wait_code(peer, 0x03, 5s) == std::optional<std::uint8_t>(kContinue));
    peer.send(block_post(0x5003, 0x04, 2, false, "end"));
    CHECK(wait_code(peer, 0x04, 5s) == std::optional<std::uint8_t>(kChanged));
    const auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].body == block + second + "end");
}

TEST_CASE("when 16 MB of block-wise uploads are in progress the block past it is refused 5.03 and the held uploads "
          "still finish") {
    Server s;
    const std::string block(1024, 'u');
    auto upload = [&](UdpPeer& peer, std::uint32_t blocks) {
        for (std::uint32_t num = 0; num < blocks; ++num) {
            const auto token = static_cast<std::uint8_t>(num);
            peer.send(block_post(static_cast<std::uint16_t>(num), token, num, true, block));
            REQUIRE_MESSAGE(wait_code(peer, token, 5s) == std::optional<std::uint8_t>(kContinue), "block " << num);
        }
    };
    // 64 clients (sessions), each 255 KB into an upload it has not finished: 16320 KB held.
    std::vector<std::unique_ptr<UdpPeer>> peers;
    for (int p = 0; p < 64; ++p) {
        peers.push_back(std::make_unique<UdpPeer>(s.server->ports().at(0)));
        upload(*peers.back(), 255);
    }
    // A 65th gets the last 64 KB of the 16 MB, and no more.
    UdpPeer late(s.server->ports().at(0));
    upload(late, 64);
    late.send(block_post(0x7000, 0xaa, 64, true, block));
    CHECK(wait_code(late, 0xaa, 5s) == std::optional<std::uint8_t>(kUnavailable));
    CHECK(s.ingest.messages().empty());
    // A held upload finishes (its last block again, now marked last) and is stored whole.
    peers[0]->send(block_post(0x0100, 0xee, 254, false, block));
    CHECK(wait_code(*peers[0], 0xee, 5s) == std::optional<std::uint8_t>(kChanged));
    const auto msgs = s.ingest.messages();
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].body == std::string(255 * 1024, 'u'));
}
