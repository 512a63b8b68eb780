#include "adapters/mqtt/session.hpp"

#include "gateway/devices/device_directory.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>
#include <cstring>
#include <spdlog/spdlog.h>

#include "adapters/mqtt/topics.hpp"
#include "gateway/translate/translator.hpp"
#include "gateway/model/property_bag.hpp"
#include "gateway/model/validation.hpp"
#include "gateway/pairing/pairing.hpp"

namespace hubgate::mqtt {

namespace asio = boost::asio;

namespace {

// Per-session buffers start small so 1000 idle devices cost little; they grow only for a packet
// that needs it and shrink back afterwards (DESIGN.md "How to be fast").
constexpr std::size_t kInitialInput = 4096;
constexpr std::size_t kShrinkAbove = 64 * 1024;
// Subscriptions one connection may hold on a rule listener (a bound on what a LAN client costs).
constexpr std::size_t kMaxFilters = 64;

std::string_view as_text(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

Session::Session(std::shared_ptr<MqttServer::Core> core, const ListenerContext& listener, asio::any_io_executor ex)
    : core_owner_(std::move(core)),
      core_(*core_owner_),
      listener_(listener),
      idle_timer_(ex),
      token_timer_(ex),
      retry_timer_(ex),
      in_(kInitialInput) {}

Session::~Session() = default;

void Session::start() {
    core_.counters.connections.add(1);
    remote_ = remote_address();
    arm_idle_timer();  // CONNECT timeout
    start_handshake();
}

void Session::on_handshake(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
        core_.counters.protocol_error("tls_handshake");
        spdlog::warn("mqtt {}: TLS handshake failed: {}", remote_, ec.message());
        close({});
        return;
    }
    do_read();
}

// ---- reading ----------------------------------------------------------------------------------

bool Session::read_allowed() const noexcept {
    return !closed_ && !close_after_flush_ && !holding_ && batches_.size() < core_.options.max_inflight_batches &&
           out_.size() + writing_.size() < core_.options.max_pending_output;
}

void Session::maybe_read() {
    if (!reading_ && read_allowed()) do_read();
}

void Session::do_read() {
    if (in_len_ == in_.size()) in_.resize(in_.size() * 2);  // a partial header at the very end
    reading_ = true;
    start_read(in_.data() + in_len_, in_.size() - in_len_);
}

void Session::on_read(const boost::system::error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {
        if (ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated)
            close(connected_ ? "connection closed by the device" : "");
        else
            close("read failed: " + ec.message());
        return;
    }
    in_len_ += n;
    core_.counters.bytes_received.inc(n);
    if (connected_) arm_idle_timer();  // any traffic counts for keep-alive
    process_input();
    if (closed_) return;
    submit_batch();
    queue_output();
    maybe_finish();
    maybe_read();
}

// Parses every complete packet in the buffer (one syscall's worth of input, many packets).
void Session::process_input() {
    std::size_t off = 0;
    std::size_t need = 0;
    while (!closed_ && !close_after_flush_) {
        const Frame f = next_frame({in_.data() + off, in_len_ - off}, core_.options.max_remaining_length);
        if (f.status == FrameStatus::need_more) {
            if (f.header.header_bytes != 0) need = f.header.packet_size();
            break;
        }
        if (f.status == FrameStatus::too_large) {
            protocol_error("too_large", "packet of " + std::to_string(f.header.remaining_length) +
                                            " bytes is over the limit of " +
                                            std::to_string(core_.options.max_remaining_length));
            return;
        }
        if (f.status == FrameStatus::malformed) {
            protocol_error("malformed", f.reason);
            return;
        }
        if (!handle_frame(f)) return;
        off += f.header.packet_size();
    }
    if (closed_) return;
    if (off != 0) {
        std::memmove(in_.data(), in_.data() + off, in_len_ - off);
        in_len_ -= off;
    }
    if (need > in_.size()) {
        in_.resize(need);  // bounded by max_remaining_length: next_frame refused anything larger
    } else if (in_.size() > kShrinkAbove && in_len_ <= kInitialInput && need <= kInitialInput) {
        std::vector<std::uint8_t> small(kInitialInput);
        std::memcpy(small.data(), in_.data(), in_len_);
        in_.swap(small);
    }
}

bool Session::handle_frame(const Frame& f) {
    if (!connected_) {
        if (f.header.type != PacketType::connect) {
            protocol_error("no_connect", std::string("first packet was ") + std::string(packet_type_name(f.header.type)) +
                                             ", not CONNECT");
            return false;
        }
        return handle_connect(f);
    }
    switch (f.header.type) {
        case PacketType::publish: return handle_publish(f);
        case PacketType::puback: return handle_puback(f);
        case PacketType::subscribe: return handle_subscribe(f);
        case PacketType::unsubscribe: return handle_unsubscribe(f);
        case PacketType::pingreq:
            if (!decode_empty(f)) {
                protocol_error("malformed", "PINGREQ with a body");
                return false;
            }
            encode_pingresp(out_);
            return true;
        case PacketType::disconnect:
            clean_disconnect_ = true;   // §3.14.4: the Will is discarded
            close_after_flush_ = true;  // a clean goodbye: finish the commits in flight, then close
            return true;
        case PacketType::connect:
            protocol_error("second_connect", "a second CONNECT on one connection");
            return false;
        case PacketType::pubrec:
        case PacketType::pubrel:
        case PacketType::pubcomp:
            protocol_error("qos2", "QoS 2 flow packets are not supported (IoT Hub closes the connection)");
            return false;
        default:
            protocol_error("unexpected_packet",
                           std::string(packet_type_name(f.header.type)) + " is not sent by a client");
            return false;
    }
}

bool Session::handle_connect(const Frame& f) {
    const auto r = decode_connect(f);
    if (r.status == DecodeStatus::unacceptable_protocol) {
        core_.counters.refused_connect("protocol_version");
        spdlog::warn("mqtt {}: CONNECT refused (0x01): {}", remote_, r.reason);
        encode_connack(out_, false, 0x01);
        close_after_flush_ = true;
        return true;
    }
    if (!r) {
        protocol_error("malformed_connect", r.reason);
        return false;
    }
    const ConnectPacket& c = r.value;
    Credentials creds{c.client_id, std::nullopt, std::nullopt};
    if (c.has_username) creds.username = c.username;
    if (c.has_password) creds.password = as_text(c.password);
    pairing::Pairing* pairing = core_.options.pairing;
    // The peer's IP (remote_ is ip:port): what pairing lists and what the slow-down is keyed by.
    const std::string ip = remote_.substr(0, remote_.rfind(':'));
    auto auth = authenticate(creds, listener_.auth, core_.devices, core_.now_unix(), pairing, ip);
    if (auth.code != ConnackCode::accepted) {
        core_.counters.refused_connect(auth.counter_reason);
        spdlog::warn("mqtt {}: CONNECT from '{}' refused (0x{:02x}): {}", remote_, c.client_id.substr(0, 128),
                     static_cast<unsigned>(auth.code), auth.reason);
        close_after_flush_ = true;
        const auto delay = pairing ? pairing->auth_failed(ip) : std::chrono::milliseconds(0);
        if (delay.count() == 0) {
            encode_connack(out_, false, static_cast<std::uint8_t>(auth.code));
            return true;
        }
        // Repeated failures from this address: the refusal waits (docs/pairing.md). Reading has
        // stopped (close_after_flush_); the CONNECT timeout still bounds the connection.
        refusal_delayed_ = true;
        token_timer_.expires_after(delay);
        token_timer_.async_wait([self = shared_from_this(), code = static_cast<std::uint8_t>(auth.code)](
                                    const boost::system::error_code& ec) {
            self->refusal_delayed_ = false;
            if (ec || self->closed_) return;
            encode_connack(self->out_, false, code);
            self->queue_output();
            self->maybe_finish();
        });
        return true;
    }
    device_id_ = std::move(auth.device_id);
    module_id_ = std::move(auth.module_id);
    auth_key_ = std::move(auth.key);
    client_id_ = std::string(c.client_id);
    if (c.has_will) will_ = WillMessage{std::string(c.will.topic), std::string(as_text(c.will.message))};
    clean_session_ = c.clean_session;
    keep_alive_ = c.keep_alive;
    connected_ = true;
    const bool present = core_.attach(shared_from_this(), clean_session_);
    encode_connack(out_, present, 0x00);
    core_.counters.accepted.inc();
    spdlog::info("mqtt {}: device {} connected ({}, clean session {}, keep-alive {} s{})", remote_, device_id_,
                 config::to_string(listener_.config.protocol), clean_session_ ? 1 : 0, keep_alive_,
                 present ? ", session resumed" : "");
    if (present) {
        const PersistentSession& kept = core_.persistent[device_id_];
        c2d_subscribed_ = kept.c2d_subscribed;
        filters_ = kept.filters;
        twin_subs_ = kept.twin_subs;
        if (reachable()) core_.set_reachable(device_id_, true);
    }
    arm_idle_timer();
    arm_token_timer(auth.expires_unix);
    return true;
}

bool Session::handle_publish(const Frame& f) {
    const auto r = decode_publish(f);
    if (!r) {
        protocol_error("malformed", r.reason);
        return false;
    }
    const PublishPacket& p = r.value;
    if (p.qos == 2) {
        protocol_error("qos2", "QoS 2 PUBLISH is not supported (IoT Hub closes the connection)");
        return false;
    }
    // The retain flag is accepted and ignored: the gateway keeps no retained messages.
    if (core_.options.twins) {
        if (const auto twin = parse_twin_request(p.topic)) return handle_twin_request(p, *twin);
        if (p.topic.starts_with("$iothub/methods/res/")) return handle_method_response(p);
    }
    const auto topic = parse_d2c_topic(p.topic);
    if (!topic) {
        HubMessage m;
        switch (translate_publish(p.topic, as_text(p.payload), m)) {
            case Fate::store:
                (p.qos == 0 ? core_.counters.messages_qos0 : core_.counters.messages_qos1).inc();
                pending_messages_.push_back(std::move(m));
                pending_ids_.push_back(p.qos == 1 ? p.packet_id : 0);
                return true;
            case Fate::ack_drop:
                ack_drop(p.qos, p.packet_id);
                return true;
            case Fate::close:
                return true;
        }
        return true;
    }
    if (topic->device_id != device_id_) {
        refuse_message("spoofed_topic", "PUBLISH as device '" + std::string(topic->device_id.substr(0, 128)) +
                                            "' on a connection authenticated as '" + device_id_ + "'");
        return true;
    }
    HubMessage m;
    m.body.assign(as_text(p.payload));
    m.device_id = device_id_;
    m.module_id = !topic->module_id.empty() ? std::string(topic->module_id)
                  : !module_id_.empty()      ? module_id_
                                             : listener_.config.module_id;
    if (auto err = apply_property_bag(topic->property_bag, m)) {
        refuse_message("bad_property_bag", err->reason);
        return true;
    }
    if (auto err = normalize_message(m, core_.ids)) {
        refuse_message(check_size(m) ? "oversize" : "invalid_message", err->reason);
        return true;
    }
    (p.qos == 0 ? core_.counters.messages_qos0 : core_.counters.messages_qos1).inc();
    pending_messages_.push_back(std::move(m));
    pending_ids_.push_back(p.qos == 1 ? p.packet_id : 0);
    return true;
}

bool Session::handle_subscribe(const Frame& f) {
    const auto r = decode_subscribe(f);
    if (!r) {
        protocol_error("malformed", r.reason);
        return false;
    }
    std::vector<std::uint8_t> codes;
    codes.reserve(r.value.filters.size());
    bool c2d = false;
    const bool any_filter = rules_listener();
    const bool was_reachable = reachable();
    for (const TopicFilter& tf : r.value.filters) {
        const std::uint8_t granted = tf.qos > 1 ? 1 : tf.qos;  // QoS 2 is granted as QoS 1, as IoT Hub does
        if (const unsigned bit = twin_filter_bit(tf.filter); bit != 0 && core_.options.twins) {
            codes.push_back(0);  // IoT Hub's twin and method topics are QoS 0
            twin_subs_ |= bit;
            if (auto it = core_.persistent.find(device_id_); it != core_.persistent.end())
                it->second.twin_subs = twin_subs_;
        } else if (is_c2d_filter(tf.filter, device_id_)) {
            codes.push_back(granted);
            c2d = true;
        } else if (any_filter && valid_topic_filter(tf.filter)) {
            // Commodity devices subscribe to their own command topics (cmnd/..., .../set): granted,
            // but only C2D for this device or its children is ever sent on them.
            codes.push_back(granted);
            auto it = std::find_if(filters_.begin(), filters_.end(),
                                   [&](const GrantedFilter& g) { return g.filter == tf.filter; });
            if (it != filters_.end()) it->qos = granted;
            else if (filters_.size() < kMaxFilters) filters_.push_back({std::string(tf.filter), granted});
            else codes.back() = 0x80;  // over the per-connection bound
        } else {
            codes.push_back(0x80);
            core_.counters.refused_message("subscribe");
            spdlog::warn("mqtt {}: device {} may not subscribe to '{}' (only devices/{}/messages/devicebound/#)",
                         remote_, device_id_, tf.filter.substr(0, 200), device_id_);
        }
    }
    if (!encode_suback(out_, r.value.packet_id, codes)) {
        protocol_error("malformed", "SUBACK could not be encoded");
        return false;
    }
    if (c2d && !c2d_subscribed_) {
        c2d_subscribed_ = true;
        core_.set_c2d_subscribed(device_id_, true);
    } else if (!was_reachable && reachable()) {
        core_.set_reachable(device_id_, true);
    }
    return true;
}

bool Session::handle_unsubscribe(const Frame& f) {
    const auto r = decode_unsubscribe(f);
    if (!r) {
        protocol_error("malformed", r.reason);
        return false;
    }
    const bool was_reachable = reachable();
    for (const TopicFilter& tf : r.value.filters) {
        if (is_c2d_filter(tf.filter, device_id_) && c2d_subscribed_) c2d_subscribed_ = false;
        twin_subs_ &= ~twin_filter_bit(tf.filter);
        std::erase_if(filters_, [&](const GrantedFilter& g) { return g.filter == tf.filter; });
    }
    if (auto it = core_.persistent.find(device_id_); it != core_.persistent.end()) {
        it->second.c2d_subscribed = c2d_subscribed_;
        it->second.twin_subs = twin_subs_;
    }
    if (was_reachable && !reachable()) core_.set_reachable(device_id_, false);
    encode_unsuback(out_, r.value.packet_id);
    return true;
}

bool Session::handle_puback(const Frame& f) {
    const auto r = decode_packet_id(f);
    if (!r) {
        protocol_error("malformed", r.reason);
        return false;
    }
    auto it = c2d_inflight_.find(r.value.packet_id);
    if (it == c2d_inflight_.end()) return true;  // late or duplicate PUBACK: nothing to complete
    auto done = std::move(it->second);
    c2d_inflight_.erase(it);
    core_.counters.c2d_acked.inc();
    done(DeliveryOutcome::completed);
    return true;
}

void Session::protocol_error(const char* counter_reason, std::string_view why) {
    core_.counters.protocol_error(counter_reason);
    spdlog::warn("mqtt {}{}{}: {}; closing the connection", remote_, device_id_.empty() ? "" : " device ", device_id_,
                 why);
    end_logged_ = true;
    close({});
}

// MQTT 3.1.1 has no negative PUBACK: the device learns of a refusal by the connection closing
// without the PUBACK. Messages before it in the same read are still committed and acknowledged.
void Session::refuse_message(const char* counter_reason, const std::string& why) {
    core_.counters.refused_message(counter_reason);
    spdlog::warn("mqtt {} device {}: message refused ({}), closing without PUBACK: {}", remote_, device_id_,
                 counter_reason, why);
    end_logged_ = true;
    close_after_flush_ = true;
}

// ---- ingest and PUBACKs -----------------------------------------------------------------------

void Session::submit_batch() {
    if (pending_messages_.empty() && pending_drops_.empty()) return;
    auto batch = std::make_shared<Batch>();
    batch->packet_ids = std::move(pending_ids_);
    pending_ids_.clear();
    batch->drops = std::move(pending_drops_);
    pending_drops_.clear();
    batches_.push_back(batch);
    if (pending_messages_.empty()) {
        // Only dropped messages: nothing to store; their PUBACKs follow those of earlier batches.
        batch->resolved = true;
        release_acks();
        return;
    }
    std::vector<HubMessage> messages = std::move(pending_messages_);
    pending_messages_.clear();
    submit(std::move(batch), std::move(messages));
}

void Session::submit(std::shared_ptr<Batch> batch, std::vector<HubMessage> messages) {
    core_.ingest.ingest(std::move(messages), [self = shared_from_this(), batch = std::move(batch),
                                              ex = idle_timer_.get_executor()](IngestResult result) mutable {
        // The store's writer thread: hop back to the session's thread.
        asio::post(ex, [self = std::move(self), batch = std::move(batch), result = std::move(result)]() mutable {
            self->on_ingested(batch, std::move(result));
        });
    });
}

void Session::on_ingested(const std::shared_ptr<Batch>& batch, IngestResult result) {
    batch->acked += result.durable;
    switch (result.outcome) {
        case IngestOutcome::durable:
            batch->resolved = true;
            batch->no_room = false;
            break;
        case IngestOutcome::no_room:
            if (!holding_) {
                core_.counters.backpressure.inc();
                spdlog::warn("mqtt {} device {}: store has no room ({}); holding PUBACKs and pausing reads until it has",
                             remote_, device_id_, result.reason);
            }
            holding_ = true;
            batch->no_room = true;
            batch->held = std::move(result.rest);
            if (!closed_) {
                retry_timer_.expires_after(core_.options.no_room_retry);
                retry_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
                    if (auto self = weak.lock(); self && !ec) self->retry_held();
                });
            }
            break;
        case IngestOutcome::failed:
            batch->resolved = true;  // the rest is not stored and is never acknowledged
            batch->no_room = false;
            spdlog::error("mqtt {} device {}: store failed: {}", remote_, device_id_, result.reason);
            close_after_flush_ = true;
            break;
    }
    if (closed_) return;
    release_acks();
    queue_output();
    maybe_finish();
    maybe_read();
}

void Session::retry_held() {
    if (closed_) return;
    for (auto& b : batches_) {
        if (!b->held.empty()) {
            std::vector<HubMessage> again = std::move(b->held);
            b->held.clear();
            submit(b, std::move(again));
            return;
        }
    }
}

// PUBACKs leave in the order the PUBLISHes arrived (MQTT 3.1.1 §4.6), one gathered write.
void Session::release_acks() {
    while (!batches_.empty()) {
        Batch& b = *batches_.front();
        std::size_t d = 0;
        const auto release_drops_up_to = [&](std::size_t k) {
            for (; d < b.drops.size() && b.drops[d].first <= k; ++d) {
                if (b.drops[d].second != 0) {
                    encode_puback(out_, b.drops[d].second);
                    b.drops[d].second = 0;
                }
            }
        };
        for (std::size_t i = 0; i < b.acked && i < b.packet_ids.size(); ++i) {
            release_drops_up_to(i);
            if (b.packet_ids[i] != 0) {
                encode_puback(out_, b.packet_ids[i]);
                core_.counters.pubacks.inc();
                b.packet_ids[i] = 0;  // acknowledged once
            }
        }
        release_drops_up_to(b.acked);
        if (!b.resolved) break;
        batches_.pop_front();
    }
    holding_ = false;
    for (const auto& b : batches_) holding_ = holding_ || b->no_room;
}

// ---- writing ----------------------------------------------------------------------------------

void Session::queue_output() {
    if (write_in_flight_ || out_.empty() || closed_) return;
    writing_.swap(out_);
    out_.clear();
    write_in_flight_ = true;
    start_write(writing_.data(), writing_.size());
}

void Session::on_write(const boost::system::error_code& ec, std::size_t) {
    write_in_flight_ = false;
    writing_.clear();
    if (closed_) return;
    if (ec) {
        close("write failed: " + ec.message());
        return;
    }
    queue_output();
    maybe_finish();
    maybe_read();
}

void Session::maybe_finish() {
    if (!close_after_flush_ || closed_ || refusal_delayed_) return;
    const bool commits_done = batches_.empty() || holding_;
    if (commits_done && !write_in_flight_ && out_.empty()) close({});
}

// ---- C2D ----------------------------------------------------------------------------------------

void Session::deliver(const std::string& device, const HubMessage& m, std::function<void(DeliveryOutcome)> done) {
    if (closed_ || !reachable()) {
        done(DeliveryOutcome::unreachable);
        return;
    }
    // The topic: the device's rule's c2d_topic, else IoT Hub's devicebound topic.
    std::optional<Result<std::string>> rendered;
    if (core_.options.translator) rendered = core_.options.translator->c2d_topic(device, m);
    if (rendered && !*rendered) {
        spdlog::warn("mqtt device {}: C2D message {} rejected: {}", device, m.system.message_id, rendered->error());
        core_.counters.refused_message("c2d_topic");
        done(DeliveryOutcome::rejected);
        return;
    }
    if (rendered)
        topic_scratch_ = std::move(rendered->value());
    else
        format_c2d_topic(topic_scratch_, device, m);
    // QoS min(1, granted) of the first subscription that matches; IoT Hub's own filter for itself.
    int qos = -1;
    if (c2d_subscribed_ && device == device_id_ && !rendered) qos = 1;
    for (const GrantedFilter& g : filters_) {
        if (qos < 0 && topic_matches(g.filter, topic_scratch_)) qos = g.qos;
    }
    if (qos < 0) {
        done(DeliveryOutcome::unreachable);
        return;
    }
    if (qos == 0) {
        if (!encode_publish(out_, topic_scratch_, m.body, 0, 0)) {
            done(DeliveryOutcome::not_delivered);
            return;
        }
        core_.counters.c2d_sent.inc();
        queue_output();
        done(DeliveryOutcome::completed);  // QoS 0: the send is all there is
        return;
    }
    std::uint16_t id = next_packet_id_;
    while (id == 0 || c2d_inflight_.count(id)) ++id;  // ids in use are skipped; 0 is not an id
    next_packet_id_ = static_cast<std::uint16_t>(id + 1);
    if (!encode_publish(out_, topic_scratch_, m.body, 1, id)) {
        spdlog::error("mqtt device {}: C2D message {} cannot be encoded", device_id_, m.system.message_id);
        done(DeliveryOutcome::not_delivered);
        return;
    }
    c2d_inflight_.emplace(id, std::move(done));
    core_.counters.c2d_sent.inc();
    queue_output();
}

// ---- timers and closing -----------------------------------------------------------------------

void Session::arm_idle_timer() {
    std::chrono::milliseconds limit{0};
    if (!connected_) limit = std::chrono::seconds(listener_.config.connect_timeout_seconds);
    else if (keep_alive_ != 0) limit = std::chrono::milliseconds(keep_alive_ * 1500);  // 1.5 x (§3.1.2.10)
    if (limit.count() == 0) {
        idle_timer_.cancel();
        return;
    }
    idle_timer_.expires_after(limit);
    idle_timer_.async_wait([weak = weak_from_this(), connected = connected_](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec || self->closed_) return;
        if (connected) {
            self->core_.counters.keepalive_timeouts.inc();
            self->close("keep-alive expired: nothing received for 1.5 x " + std::to_string(self->keep_alive_) + " s");
        } else {
            self->core_.counters.protocol_error("connect_timeout");
            spdlog::info("mqtt {}: no CONNECT within {} s; closing", self->remote_,
                         self->listener_.config.connect_timeout_seconds);
            self->close({});
        }
    });
}

void Session::arm_token_timer(std::int64_t expires_unix) {
    if (expires_unix == 0) return;
    const auto left = std::max<std::int64_t>(0, expires_unix - core_.now_unix());
    token_timer_.expires_after(std::chrono::seconds(left));
    token_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec || self->closed_) return;
        self->core_.counters.token_expiries.inc();
        self->close("SAS token expired; the device must reconnect with a fresh one");
    });
}

bool Session::credentials_changed() const {
    if (!connected_ || listener_.auth == AuthMode::none) return false;
    const auto rec = core_.devices.find(device_id_);
    return !rec || rec->key != auth_key_ || rec->module_id != module_id_;
}

void Session::close(std::string_view why) {
    if (closed_) return;
    closed_ = true;
    // One line per connection end: the reason when there is one, else a plain "disconnected" for
    // devices (a refusal or protocol error has already said why in its own line).
    if (!why.empty()) spdlog::info("mqtt {}{}{}: {}", remote_, device_id_.empty() ? "" : " device ", device_id_, why);
    else if (connected_ && !end_logged_) spdlog::info("mqtt {} device {}: disconnected", remote_, device_id_);
    idle_timer_.cancel();
    token_timer_.cancel();
    retry_timer_.cancel();
    shutdown_transport();
    auto inflight = std::move(c2d_inflight_);
    c2d_inflight_.clear();
    for (auto& [id, done] : inflight) done(DeliveryOutcome::not_delivered);
    auto methods = std::move(methods_inflight_);
    methods_inflight_.clear();
    for (auto& [rid, m] : methods) {
        m.timer->cancel();
        m.done(404, {});  // the device went away before answering
    }
    // Not when the gateway itself stops: the device is not gone, and its Will (Tasmota's "Offline")
    // would tell the hub a lie.
    if (connected_ && !clean_disconnect_ && will_ && !core_.stopped) publish_will();
    if (connected_) core_.detach(this, clean_session_);
    core_.remove(this);
    core_.counters.connections.add(-1);
}

}  // namespace hubgate::mqtt
