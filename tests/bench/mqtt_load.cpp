// Load generator for the MQTT ingest benchmark: N devices (one thread each) publish M QoS 1
// messages with W in flight, over plain sockets, using hubgate's own codec to build packets. The
// same tool drives mosquitto and hubgate in one run, so the ratio compares brokers, not clients.
//
//   mqtt_load publish PORT DEVICES MESSAGES_PER_DEVICE PAYLOAD_BYTES [KEY]   -> prints msgs/s
//   mqtt_load hold PORT DEVICES SECONDS [KEY]      -> connects DEVICES sessions and holds them
//
// With KEY (base64), device dN authenticates with a SAS token signed by KEY (hubgate); without it,
// no password is sent (mosquitto with allow_anonymous).
// For translation rules (tests/bench/translate_bench.sh), the environment can change what is sent:
//   MQTT_LOAD_TOPIC=zigbee2mqtt/{id}   the topic ({id} = the device's id; default IoT Hub's D2C topic)
//   MQTT_LOAD_BODY=FILE                the payload, from a file (default PAYLOAD_BYTES of 'x')
//   MQTT_LOAD_AUTH=password            username = id, password = KEY as text (auth = "password")
//   MQTT_LOAD_AUTH=none                no username, no password (a broker's anonymous access)
//   MQTT_LOAD_ID_PREFIX=P              device ids P0, P1, ... (default "d"; tests/bench/fleet.sh
//                                      gives each broker node its own, client ids being cluster-wide)
// For the wear benchmark (tests/bench/wear_bench.sh), a paced load instead of as fast as possible:
//   MQTT_LOAD_RATE=R                   R messages/s in total, spread evenly over the devices
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "adapters/mqtt/codec.hpp"
#include "gateway/model/sas_token.hpp"

using namespace hubgate;
using namespace hubgate::mqtt;

namespace {

std::string id_prefix() {
    const char* p = std::getenv("MQTT_LOAD_ID_PREFIX");
    return p ? p : "d";
}

int connect_tcp(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        std::perror("connect");
        std::exit(1);
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void send_all(int fd, const Buffer& b) {
    std::size_t off = 0;
    while (off < b.size()) {
        const ssize_t n = ::send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            std::perror("send");
            std::exit(1);
        }
        off += static_cast<std::size_t>(n);
    }
}

// Reads until `want` packets of type `type` arrived; returns false on EOF.
struct Reader {
    int fd;
    std::vector<std::uint8_t> buf = std::vector<std::uint8_t>(1 << 16);
    std::size_t len = 0;
    // Returns how many packets of `type` were read in one recv (at least one unless EOF).
    int read_some(PacketType type, std::uint8_t* connack_rc = nullptr) {
        const ssize_t n = ::recv(fd, buf.data() + len, buf.size() - len, 0);
        if (n <= 0) return -1;
        len += static_cast<std::size_t>(n);
        int count = 0;
        std::size_t off = 0;
        for (;;) {
            const Frame f = next_frame({buf.data() + off, len - off}, 1 << 20);
            if (f.status != FrameStatus::complete) break;
            if (f.header.type == type) {
                ++count;
                if (connack_rc && f.body.size() == 2) *connack_rc = f.body[1];
            }
            off += f.header.packet_size();
        }
        std::copy(buf.begin() + static_cast<std::ptrdiff_t>(off), buf.begin() + static_cast<std::ptrdiff_t>(len), buf.begin());
        len -= off;
        return count;
    }
};

int open_session(int port, const std::string& id, const char* key) {
    const int fd = connect_tcp(port);
    ConnectPacket c;
    c.client_id = id;
    c.clean_session = true;
    c.keep_alive = 600;
    const char* auth = std::getenv("MQTT_LOAD_AUTH");
    const bool plain = auth && std::string(auth) == "password";
    const std::string username = plain ? id : "bench/" + id + "/?api-version=2021-04-12";
    c.has_username = !(auth && std::string(auth) == "none");  // none: anonymous (RabbitMQ)
    if (c.has_username) c.username = username;
    std::string password;
    if (key && plain) {
        password = key;
        c.has_password = true;
        c.password = {reinterpret_cast<const std::uint8_t*>(password.data()), password.size()};
    } else if (key) {
        auto t = make_sas_token("bench/devices/" + id, key, std::time(nullptr) + 3600);
        if (!t) {
            std::fprintf(stderr, "bad key: %s\n", t.error().c_str());
            std::exit(1);
        }
        password = t.value();
        c.has_password = true;
        c.password = {reinterpret_cast<const std::uint8_t*>(password.data()), password.size()};
    }
    Buffer out;
    if (!encode_connect(out, c)) std::exit(1);
    send_all(fd, out);
    Reader r{fd};
    std::uint8_t rc = 0xFF;
    while (r.read_some(PacketType::connack, &rc) == 0) {
    }
    if (rc != 0) {
        std::fprintf(stderr, "CONNACK %u for %s\n", rc, id.c_str());
        std::exit(1);
    }
    return fd;
}

void publish_loop(int fd, const std::string& id, int messages, const std::string& payload, double interval_s,
                  double phase, std::atomic<long>& acked_total) {
    constexpr int kWindow = 64;
    const auto start = std::chrono::steady_clock::now();
    // Paced (interval_s > 0): message i leaves at start + (i + phase) * interval; devices get evenly
    // spread phases, so the gateway sees one message every interval / devices, not bursts.
    auto due = [&](int i) {
        return start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(interval_s * (i + phase)));
    };
    std::string topic = "devices/" + id + "/messages/events/";
    if (const char* t = std::getenv("MQTT_LOAD_TOPIC")) {
        topic = t;
        if (const auto at = topic.find("{id}"); at != std::string::npos) topic.replace(at, 4, id);
    }
    Reader r{fd};
    Buffer out;
    int sent = 0, acked = 0;
    std::uint16_t pid = 0;
    while (acked < messages) {
        out.clear();
        while (sent < messages && sent - acked < kWindow) {
            if (interval_s > 0 && std::chrono::steady_clock::now() < due(sent)) break;  // not due yet
            if (++pid == 0) pid = 1;
            if (!encode_publish(out, topic, payload, 1, pid)) std::exit(1);
            ++sent;
        }
        if (!out.empty()) send_all(fd, out);
        if (interval_s > 0 && sent < messages && sent - acked < kWindow) {
            // Wait for a PUBACK or the next message's time, whichever comes first.
            const auto wait = due(sent) - std::chrono::steady_clock::now();
            pollfd p{fd, POLLIN, 0};
            const int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
            if (ms > 0 && ::poll(&p, 1, ms) == 0) continue;
            if (ms <= 0) continue;
        }
        const int n = r.read_some(PacketType::puback);
        if (n < 0) {
            std::fprintf(stderr, "%s: connection closed after %d acks\n", id.c_str(), acked);
            std::exit(1);
        }
        acked += n;
    }
    acked_total += acked;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: mqtt_load publish PORT DEVICES MESSAGES PAYLOAD [KEY] | hold PORT DEVICES SECONDS [KEY]\n");
        return 2;
    }
    const std::string mode = argv[1];
    const int port = std::atoi(argv[2]);
    const int devices = std::atoi(argv[3]);
    if (mode == "hold") {
        const int seconds = std::atoi(argv[4]);
        const char* key = argc > 5 ? argv[5] : nullptr;
        std::vector<int> fds;
        for (int i = 0; i < devices; ++i) fds.push_back(open_session(port, id_prefix() + std::to_string(i), key));
        std::printf("connected %d\n", devices);
        std::fflush(stdout);
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        for (int fd : fds) ::close(fd);
        return 0;
    }
    const int messages = std::atoi(argv[4]);
    std::string payload(static_cast<std::size_t>(argc > 5 ? std::atoi(argv[5]) : 200), 'x');
    if (const char* f = std::getenv("MQTT_LOAD_BODY")) {
        std::FILE* in = std::fopen(f, "rb");
        if (!in) {
            std::fprintf(stderr, "cannot read %s\n", f);
            return 2;
        }
        payload.clear();
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) payload.append(buf, n);
        std::fclose(in);
    }
    const char* key = argc > 6 ? argv[6] : nullptr;
    std::vector<int> fds;
    for (int i = 0; i < devices; ++i) fds.push_back(open_session(port, id_prefix() + std::to_string(i), key));
    std::atomic<long> acked{0};
    const char* rate = std::getenv("MQTT_LOAD_RATE");
    const double interval_s = rate && std::atof(rate) > 0 ? devices / std::atof(rate) : 0.0;
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < devices; ++i)
        threads.emplace_back(publish_loop, fds[static_cast<std::size_t>(i)], id_prefix() + std::to_string(i), messages,
                             std::cref(payload), interval_s, static_cast<double>(i) / devices, std::ref(acked));
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.0f\n", static_cast<double>(acked.load()) / secs);
    for (int fd : fds) ::close(fd);
    return 0;
}
