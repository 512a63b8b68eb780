// IoT Hub's twin topics on a device connection (docs/twins.md): GET and reported PATCH requests,
// answered on `$iothub/twin/res/{status}/?$rid=R` once the store replied (a 204 only after the
// commit), and desired-property notifications. Requests are QoS 0 in the SDKs: the answer is the
// only acknowledgement, and an empty or non-JSON error body crashes the Node SDK, so errors carry
// `{"errorCode":...,"message":...}`.
#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "adapters/mqtt/session.hpp"

namespace hubgate::mqtt {

namespace asio = boost::asio;

namespace {

// The body of an error answer, written here so the adapter needs no JSON library: the message is
// plain ASCII text without quotes or backslashes.
std::string error_json(int code, std::string_view message) {
    std::string out = "{\"errorCode\":" + std::to_string(code) + ",\"message\":\"";
    for (const char c : message) out += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
    out += "\"}";
    return out;
}

}  // namespace

bool Session::handle_twin_request(const PublishPacket& p, const TwinRequest& r) {
    ack_drop(p.qos, p.packet_id);  // a QoS 1 request is acknowledged in order; the answer follows
    std::string rid(r.rid);
    if (r.kind == TwinRequest::Kind::other) {
        spdlog::info("mqtt {} device {}: twin operation '{}' is not served", remote_, device_id_, p.topic.substr(0, 200));
        send_twin_answer(rid, {400, error_json(400027, "this twin operation is not supported by the gateway"), 0});
        return true;
    }
    auto post_back = [self = shared_from_this(), ex = idle_timer_.get_executor(), rid](TwinAnswer a) mutable {
        // The store's writer thread: hop back to the session's thread.
        asio::post(ex, [self = std::move(self), rid = std::move(rid), a = std::move(a)] {
            if (!self->closed_) self->send_twin_answer(rid, a);
        });
    };
    if (r.kind == TwinRequest::Kind::get) {
        core_.options.twins->get_twin(device_id_, std::move(post_back));
    } else {
        std::string patch(reinterpret_cast<const char*>(p.payload.data()), p.payload.size());
        core_.options.twins->update_reported(device_id_, std::move(patch), std::move(post_back));
    }
    return true;
}

void Session::send_twin_answer(const std::string& rid, const TwinAnswer& a) {
    if (!(twin_subs_ & kTwinResponses)) return;  // nobody listens: IoT Hub sends nothing either
    topic_scratch_ = "$iothub/twin/res/" + std::to_string(a.status) + "/?$rid=" + rid;
    if (a.status == 204) topic_scratch_ += "&$version=" + std::to_string(a.version);
    if (!encode_publish(out_, topic_scratch_, std::string_view(a.body), 0, 0)) {
        spdlog::error("mqtt {} device {}: twin answer cannot be encoded", remote_, device_id_);
        return;
    }
    queue_output();
}

void Session::send_desired(const std::string& body, std::int64_t version) {
    if (closed_ || !connected_ || !(twin_subs_ & kTwinDesired)) return;
    topic_scratch_ = "$iothub/twin/PATCH/properties/desired/?$version=" + std::to_string(version);
    if (!encode_publish(out_, topic_scratch_, std::string_view(body), 0, 0)) return;
    queue_output();
}

}  // namespace hubgate::mqtt
