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

namespace hubgate::mqtt {

void Session::invoke_method(const std::string& name, const std::string& payload, std::chrono::milliseconds timeout,
                            std::function<void(int, std::string)> done) {
    if (closed_ || !connected_ || !(twin_subs_ & kMethods)) {
        done(404, {});
        return;
    }
    const std::string rid = std::to_string(next_method_rid_++);
    topic_scratch_ = "$iothub/methods/POST/" + name + "/?$rid=" + rid;
    if (!encode_publish(out_, topic_scratch_, std::string_view(payload), 0, 0)) {
        done(400, {});
        return;
    }
    auto timer = std::make_unique<asio::steady_timer>(idle_timer_.get_executor());
    timer->expires_after(timeout);
    timer->async_wait([weak = weak_from_this(), rid](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec) return;
        auto it = self->methods_inflight_.find(rid);
        if (it == self->methods_inflight_.end()) return;
        auto d = std::move(it->second.done);
        self->methods_inflight_.erase(it);
        d(504, {});
    });
    methods_inflight_.emplace(rid, PendingMethod{std::move(done), std::move(timer)});
    queue_output();
}

bool Session::handle_method_response(const PublishPacket& p) {
    ack_drop(p.qos, p.packet_id);
    // $iothub/methods/res/{status}/?$rid=R
    const std::string_view rest = p.topic.substr(std::string_view("$iothub/methods/res/").size());
    const auto slash = rest.find('/');
    const auto rid_at = rest.find("$rid=");
    int status = 0;
    for (const char c : rest.substr(0, slash)) {
        if (c < '0' || c > '9' || status > 99999) {
            status = -1;
            break;
        }
        status = status * 10 + (c - '0');
    }
    if (rid_at == std::string_view::npos || status < 0) {
        spdlog::info("mqtt {} device {}: malformed method response topic '{}'; ignored", remote_, device_id_,
                     p.topic.substr(0, 200));
        return true;
    }
    std::string_view rid = rest.substr(rid_at + 5);
    rid = rid.substr(0, rid.find('&'));
    auto it = methods_inflight_.find(std::string(rid));
    if (it == methods_inflight_.end()) return true;  // late (already answered 504) or unknown
    auto done = std::move(it->second.done);
    it->second.timer->cancel();
    methods_inflight_.erase(it);
    done(status, std::string(reinterpret_cast<const char*>(p.payload.data()), p.payload.size()));
    return true;
}

}  // namespace hubgate::mqtt
