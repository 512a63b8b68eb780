// An upstream that is a broker cluster (issue 13, DESIGN.md "Upstream clusters and flapping hubs"):
// three real RabbitMQ nodes with the MQTT plugin and quorum session queues, clustered on loopback
// (tests/support/rabbitmq_cluster.sh). The gateway gets all three as its `url` list. Under QoS 1
// device load the node it is connected to is killed with SIGKILL: the gateway fails over to the next
// node, a persistent subscriber on a surviving node receives every message the devices had
// acknowledged, and C2D sent through the cluster after the failover still reaches a device (the
// gateway's clean-session-0 subscription lives on the cluster, not on the dead node).
//
// The device ids and the batch content type hold dots: RabbitMQ delivers every `.` of a topic as
// `/`, so the gateway runs with percent_encode_dots = true and the subscriber must see the
// property bags intact.
#include <doctest/doctest.h>
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "tests/support/device_load.hpp"
#include "tests/support/gateway.hpp"
#include "tests/support/hub_c2d.hpp"
#include "tests/support/hub_messages.hpp"
#include "tests/support/paho_device.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace hubgate;
using namespace hubgate::test;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr const char* kKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
constexpr int kDevices = 3;
constexpr int kChunk = 300;  // lines per mosquitto_pub run
const std::string kScript = std::string(HUBGATE_SOURCE_DIR) + "/tests/support/rabbitmq_cluster.sh";

bool tcp_port_free(int port) {
    if (port <= 1024 || port > 65535) return false;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// The script's ports: MQTT base..base+2, AMQP base+10.., Erlang distribution base+20...
int free_base_port() {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 200; ++attempt) {
        const int base = 20000 + static_cast<int>(rng() % 1000) * 30;
        bool ok = true;
        for (int off : {0, 1, 2, 10, 11, 12, 20, 21, 22}) ok = ok && tcp_port_free(base + off);
        if (ok) return base;
    }
    return 0;
}

class RabbitCluster {
public:
    explicit RabbitCluster(const TempDir& dir) : dir_(dir.path() + "/rabbitmq") {}
    ~RabbitCluster() { run({"bash", kScript, "stop", dir_}, 20s); }

    // Starts and clusters the three nodes; false (with the script's output) if they cannot start.
    bool start(std::string& why) {
        base_ = free_base_port();
        if (base_ == 0) {
            why = "no free port range";
            return false;
        }
        const auto r = run({"bash", kScript, "start", dir_, std::to_string(base_)}, 240s);
        why = r.output;
        return r.exit_code == 0;
    }
    void kill(int node) { run({"bash", kScript, "kill", dir_, std::to_string(node)}, 20s); }
    std::uint16_t mqtt_port(int node) const { return static_cast<std::uint16_t>(base_ + node - 1); }
    std::string url(int node) const { return "tcp://127.0.0.1:" + std::to_string(mqtt_port(node)); }

private:
    std::string dir_;
    int base_ = 0;
};

// A clean-session-0 QoS 1 subscriber on one node: its quorum session queue holds what arrives for it.
class Subscriber {
public:
    Subscriber(const std::string& uri, const std::string& filter)
        : client_(std::make_unique<mqtt::async_client>(uri, "cluster-check-subscriber", nullptr)) {
        client_->set_message_callback([this](mqtt::const_message_ptr msg) {
            std::lock_guard lock(mu_);
            received_.push_back({msg->get_topic(), msg->get_payload_str()});
        });
        mqtt::connect_options opts;
        opts.set_mqtt_version(MQTTVERSION_3_1_1);
        opts.set_clean_session(false);
        opts.set_keep_alive_interval(60);
        client_->connect(opts)->wait_for(20s);
        client_->subscribe(filter, 1)->wait_for(20s);
    }
    ~Subscriber() {
        try {
            client_->disconnect()->wait_for(2s);
        } catch (const mqtt::exception&) {
        }
    }
    void read_from(std::size_t first, std::vector<ReceivedMessage>& out) const {
        std::lock_guard lock(mu_);
        for (std::size_t i = first; i < received_.size(); ++i) out.push_back(received_[i]);
    }

private:
    std::unique_ptr<mqtt::async_client> client_;
    mutable std::mutex mu_;
    std::vector<ReceivedMessage> received_;
};

// Which of the three urls the gateway reports in use (hubgate_upstream_node{url} = 1); 0 if none.
int node_in_use(Gateway& gw, const RabbitCluster& cluster) {
    for (int n = 1; n <= 3; ++n)
        if (gw.metric("hubgate_upstream_node{url=\"" + cluster.url(n) + "\"}") == 1) return n;
    return 0;
}

std::string dots_encoded(const std::string& topic) {
    std::string out;
    for (const char c : topic) out += c == '.' ? std::string("%2E") : std::string(1, c);
    return out;
}

}  // namespace

TEST_CASE("a 3-node RabbitMQ cluster: the node in use is killed under load, the gateway fails over, nothing "
          "acknowledged is lost and C2D still arrives") {
    TempDir dir;
    RabbitCluster cluster(dir);
    std::string why;
    if (!cluster.start(why)) {
        // The only skip: the broker cannot start here at all (no rabbitmq-server, no Erlang).
        MESSAGE("SKIPPED: the RabbitMQ cluster cannot start on this machine: " << why);
        return;
    }
    // Held before the load: RabbitMQ acknowledges and drops a QoS 1 publish nothing is bound to.
    Subscriber subscriber(cluster.url(3), "devices/+/messages/events/#");

    const std::uint16_t metrics_port = free_tcp_port();
    const std::uint16_t device_port = free_tcp_port();
    std::vector<DeviceLoad> loads(kDevices);
    std::string extra = listener_toml("mqtt", device_port, "sas", "edge");
    for (int d = 0; d < kDevices; ++d) {
        loads[d].id = "cluster.dev-" + std::to_string(d);
        extra += device_toml(loads[d].id, kKey);
    }
    const std::string c2d_device = "cluster.c2d-target";
    extra += device_toml(c2d_device, kKey);
    const std::string urls = "[\"" + cluster.url(1) + "\", \"" + cluster.url(2) + "\", \"" + cluster.url(3) + "\"]";
    Gateway gw(dir, minimal_config(dir, metrics_port, extra, {}, urls, "percent_encode_dots = true\n"), metrics_port);
    REQUIRE_MESSAGE(gw.wait_ready(), gw.process().output());
    REQUIRE(eventually([&] { return gw.metric("hubgate_upstream_connected") == 1; }, 30s));
    const int first_node = node_in_use(gw, cluster);
    REQUIRE_MESSAGE(first_node == 1, "the gateway should use the list's first node, uses " << first_node);
    const auto status_before = run({HUBGATE_BINARY, "status", "-c", gw.config_path()});
    CHECK_MESSAGE(status_before.output.find(cluster.url(1)) != std::string::npos, status_before.output);

    // The C2D target, connected through the whole test (clean session 0 keeps its subscription).
    PahoDevice target("tcp://127.0.0.1:" + std::to_string(device_port), c2d_device, device_token(c2d_device, kKey));
    REQUIRE(target.connect(false) == 0);
    REQUIRE(target.subscribe("devices/" + c2d_device + "/messages/devicebound/#", 1) == 1);

    std::atomic<bool> stop_load{false};
    std::vector<std::thread> devices;
    for (auto& load : loads)
        devices.push_back(start_device_load(dir, load, device_port, kKey,
                                            "devices/" + load.id + "/messages/events/kind=telemetry.v1", kChunk, 20ms,
                                            stop_load));

    // Load flows through node 1 for a while, then node 1 dies.
    REQUIRE(eventually([&] { return gw.metric("hubgate_upstream_messages_relayed_total") >= 6000; }, 60s));
    const double relayed_before = gw.metric("hubgate_upstream_messages_relayed_total");
    const auto killed_at = SteadyClock::now();
    cluster.kill(first_node);
    int second_node = 0;
    const bool failed_over = eventually(
        [&] {
            second_node = node_in_use(gw, cluster);
            return gw.metric("hubgate_upstream_connected") == 1 && second_node != 0 && second_node != first_node;
        },
        60s);
    const double failover_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - killed_at).count();
    REQUIRE_MESSAGE(failed_over, "no failover within 60 s; node in use " << second_node);
    // More load through the new node, then the devices stop.
    REQUIRE(eventually([&] { return gw.metric("hubgate_upstream_messages_relayed_total") >= relayed_before + 6000; },
                       60s));
    stop_load = true;
    for (auto& t : devices) t.join();

    // Every acknowledged key, removed as it is seen at the hub.
    std::unordered_set<std::string> missing = acked_keys(loads);
    const std::size_t acked_total = missing.size();

    HubTraffic traffic;
    std::size_t decoded = 0;
    std::size_t read = 0;
    const bool complete = eventually(
        [&] {
            std::vector<ReceivedMessage> more;
            subscriber.read_from(read, more);
            read += more.size();
            append_hub_traffic(traffic, more);
            for (; decoded < traffic.messages.size(); ++decoded) missing.erase(body_key(traffic.messages[decoded].message));
            return missing.empty();
        },
        120s);
    const auto counts = count_arrivals(traffic, [](const HubMessage& m) { return body_key(m); });
    MESSAGE("acked " << acked_total << " messages; the subscriber got " << traffic.messages.size() << " ("
                     << counts.size() << " distinct) in " << traffic.publishes.size() << " publishes; FAILOVER from node "
                     << first_node << " to node " << second_node << " in " << failover_ms << " ms");
    for (const auto& e : traffic.errors) FAIL_CHECK("undecodable publish at the subscriber: " << e);
    CHECK_MESSAGE(complete, missing.size() << " acknowledged messages never reached the subscriber, e.g. "
                                           << (missing.empty() ? "" : *missing.begin()));
    // The bags survived RabbitMQ's `.` -> `/`: device ids and the application property with a dot.
    bool saw_property = false;
    for (const auto& r : traffic.messages) {
        if (r.message.device_id.rfind("cluster.dev-", 0) != 0) continue;
        const auto* kind = r.message.properties.find("kind");
        saw_property = kind && kind->value && *kind->value == "telemetry.v1";
        if (!saw_property) break;
    }
    CHECK(saw_property);

    // C2D through a surviving node after the failover reaches the device.
    C2dSend c2d("cluster-c2d-1", c2d_device);
    c2d.with_body("after failover");
    const auto sent = mosquitto_pub(cluster.mqtt_port(first_node == 3 ? 2 : 3), "cloud-sender", std::nullopt,
                                    {"-q", "1", "-t", dots_encoded(c2d_topic(c2d, "gw-test")), "-m", c2d.body});
    REQUIRE_MESSAGE(sent.exit_code == 0, sent.output);
    const auto got = target.next_message(30s);
    REQUIRE_MESSAGE(got.has_value(), "C2D through the cluster never reached the device; gateway log:\n"
                                         << gw.process().output().substr(0, 4000));
    CHECK(got->payload == "after failover");
    CHECK(got->topic.find("%24.mid=cluster-c2d-1") != std::string::npos);

    const auto status = run({HUBGATE_BINARY, "status", "-c", gw.config_path()});
    CHECK_MESSAGE(status.output.find(cluster.url(second_node)) != std::string::npos, status.output);
}
