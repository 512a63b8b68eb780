// Internal to adapters/mqtt: one device connection's state machine, Beast-style
// (do_read -> on_read -> handle packets -> ingest -> on_ingested -> write PUBACKs -> do_read).
// The transport (TCP or TLS) is a template parameter of SessionOn<Stream> in session_transport.hpp.
#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <deque>
#include <optional>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "adapters/mqtt/codec.hpp"
#include "adapters/mqtt/server_core.hpp"
#include "adapters/mqtt/topics.hpp"
#include "gateway/pipeline/ingest.hpp"
#include "gateway/pipeline/twins.hpp"

namespace hubgate::mqtt {

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(std::shared_ptr<MqttServer::Core> core, const ListenerContext& listener, boost::asio::any_io_executor ex);
    virtual ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start();
    // Closes the connection (idempotent); `why` is logged once unless empty.
    void close(std::string_view why);
    bool closed() const noexcept { return closed_; }

    const std::string& device_id() const noexcept { return device_id_; }
    // After a device reload: whether a SAS-authenticated device is gone from the directory or has a
    // different key or module than when it connected.
    bool credentials_changed() const;
    bool c2d_subscribed() const noexcept { return c2d_subscribed_; }
    // Whether C2D can reach this connection at all: the IoT Hub C2D filter, or any filter granted on
    // a rule listener (commodity devices subscribe to their own command topics).
    bool reachable() const noexcept { return c2d_subscribed_ || !filters_.empty(); }
    const std::vector<GrantedFilter>& filters() const noexcept { return filters_; }
    // Which of IoT Hub's twin and method filters it holds (TwinFilterBit, topics.hpp).
    unsigned twin_subs() const noexcept { return twin_subs_; }
    // A desired-property change for this connection's device (session_twin.cpp): sent QoS 0 on
    // `$iothub/twin/PATCH/properties/desired/?$version=V` when it subscribed to desired patches.
    void send_desired(const std::string& body, std::int64_t version);
    // A direct method for this connection's device (session_twin.cpp); see MqttServer::invoke_method.
    void invoke_method(const std::string& name, const std::string& payload, std::chrono::milliseconds timeout,
                       std::function<void(int, std::string)> done);
    // Publishes one C2D message for `device` (this connection's device, or a child of this bridge)
    // on the topic its rule's c2d_topic gives, else IoT Hub's devicebound topic, at QoS min(1,
    // granted); `done` gets completed on PUBACK (at QoS 0: once sent), unreachable when no
    // subscription matches, rejected when the rule cannot render the topic, or not_delivered on close.
    void deliver(const std::string& device, const HubMessage& m, std::function<void(DeliveryOutcome)> done);

protected:
    // Transport hooks, implemented by SessionOn<Stream>.
    virtual void start_handshake() = 0;  // calls on_handshake()
    virtual void start_read(void* data, std::size_t size) = 0;  // calls on_read()
    virtual void start_write(const void* data, std::size_t size) = 0;  // calls on_write()
    virtual void shutdown_transport() = 0;
    virtual std::string remote_address() const = 0;

    void on_handshake(const boost::system::error_code& ec);
    void on_read(const boost::system::error_code& ec, std::size_t n);
    void on_write(const boost::system::error_code& ec, std::size_t n);

    std::string remote_;

private:
    // One store commit this session is waiting for: the QoS 1 packet ids of its messages, in order.
    struct Batch {
        std::vector<std::uint16_t> packet_ids;  // 0 for QoS 0 messages
        // QoS 1 messages acknowledged without storing (dropped by a rule or the listener's
        // `unmatched`): (k, packet id) is acknowledged once the first k messages are.
        std::vector<std::pair<std::size_t, std::uint16_t>> drops;
        std::vector<HubMessage> held;           // messages the store had no room for (retried)
        std::size_t acked = 0;                  // how many leading entries are durable
        bool resolved = false;
        bool no_room = false;                   // waiting for the store to have room (reads paused)
    };

    void do_read();
    void maybe_read();
    bool read_allowed() const noexcept;
    void process_input();
    // Each returns false when the connection must close (close() already called).
    bool handle_frame(const Frame& f);
    bool handle_connect(const Frame& f);
    bool handle_publish(const Frame& f);
    bool handle_subscribe(const Frame& f);
    bool handle_unsubscribe(const Frame& f);
    bool handle_puback(const Frame& f);
    // Twin requests (session_twin.cpp): answered on `$iothub/twin/res/...` once the store replied.
    bool handle_twin_request(const PublishPacket& p, const TwinRequest& r);
    void send_twin_answer(const std::string& rid, const TwinAnswer& a);
    // `$iothub/methods/res/{status}/?$rid=R`: the device's answer to invoke_method.
    bool handle_method_response(const PublishPacket& p);
    struct PendingMethod {
        std::function<void(int, std::string)> done;
        std::unique_ptr<boost::asio::steady_timer> timer;
    };
    std::unordered_map<std::string, PendingMethod> methods_inflight_;
    std::uint64_t next_method_rid_ = 1;
    // The rules path (session_rules.cpp): a topic outside the IoT Hub dialect.
    enum class Fate { store, ack_drop, close };
    Fate translate_publish(std::string_view topic, std::string_view payload, HubMessage& out, bool will = false);
    void ack_drop(std::uint8_t qos, std::uint16_t packet_id);
    bool rules_listener() const noexcept;
    void publish_will();
    void protocol_error(const char* counter_reason, std::string_view why);
    void refuse_message(const char* counter_reason, const std::string& why);

    void submit_batch();
    void submit(std::shared_ptr<Batch> batch, std::vector<HubMessage> messages);
    void on_ingested(const std::shared_ptr<Batch>& batch, IngestResult result);
    void maybe_finish();
    void retry_held();
    void release_acks();

    void queue_output();  // starts a write if output is pending and none is in flight
    void arm_idle_timer();
    void arm_token_timer(std::int64_t expires_unix);
    void finish_close();

    std::shared_ptr<MqttServer::Core> core_owner_;  // keeps the shared state alive while this session is
    MqttServer::Core& core_;
    const ListenerContext& listener_;
    boost::asio::steady_timer idle_timer_;   // CONNECT timeout, then keep-alive x 1.5
    boost::asio::steady_timer token_timer_;  // SAS expiry
    boost::asio::steady_timer retry_timer_;  // store had no room

    // Input: bytes [0, in_len_) of in_ are unparsed. Starts small, grows for a large packet only.
    std::vector<std::uint8_t> in_;
    std::size_t in_len_ = 0;
    bool reading_ = false;

    // Output: out_ collects encoded packets while writing_ is on the wire.
    Buffer out_;
    Buffer writing_;
    bool write_in_flight_ = false;

    // Decoded in this read, submitted as one ingest call (one store commit group entry).
    std::vector<HubMessage> pending_messages_;
    std::vector<std::uint16_t> pending_ids_;
    std::vector<std::pair<std::size_t, std::uint16_t>> pending_drops_;
    std::deque<std::shared_ptr<Batch>> batches_;  // in submission order; PUBACKs leave in this order
    bool holding_ = false;  // the store had no room: reading paused until the held messages fit

    bool connected_ = false;
    bool clean_session_ = true;
    bool close_after_flush_ = false;
    bool refusal_delayed_ = false;  // a refused CONNECT's CONNACK waits on token_timer_ (auth slow-down)
    bool closed_ = false;
    bool end_logged_ = false;  // the reason for closing was already logged
    bool c2d_subscribed_ = false;
    std::uint16_t keep_alive_ = 0;
    std::string device_id_;
    std::string module_id_;
    std::string auth_key_;  // the key its SAS token was verified with (empty for auth = none)
    std::string client_id_;
    bool clean_disconnect_ = false;  // DISCONNECT received: the Will is not published
    struct WillMessage {
        std::string topic;
        std::string payload;
    };
    std::optional<WillMessage> will_;
    std::vector<GrantedFilter> filters_;  // granted on a rule listener (any filter, QoS <= 1)
    unsigned twin_subs_ = 0;              // TwinFilterBit mask

    std::uint16_t next_packet_id_ = 1;
    std::unordered_map<std::uint16_t, std::function<void(DeliveryOutcome)>> c2d_inflight_;
    std::string topic_scratch_;
};

}  // namespace hubgate::mqtt
