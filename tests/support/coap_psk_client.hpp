// A DTLS-PSK CoAP client on libcoap's own client API that keeps one DTLS session across requests,
// for what coap-client (one session per run) cannot show: a request, or an Observe notification, on
// a session that began before the gateway's devices changed. Used from one test thread; the server runs in its own context.
#pragma once

#include <arpa/inet.h>
#include <coap3/coap.h>
#include <netinet/in.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace hubgate::test {

class CoapPskClient {
public:
    CoapPskClient(std::uint16_t port, const std::string& identity, const std::string& key)
        : identity_(identity), key_(key) {
        coap_startup();
        ctx_ = coap_new_context(nullptr);
        REQUIRE(ctx_ != nullptr);
        coap_context_set_block_mode(ctx_, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
        coap_register_response_handler(ctx_, &CoapPskClient::on_response);
        coap_address_t dst;
        coap_address_init(&dst);
        dst.addr.sin.sin_family = AF_INET;
        dst.addr.sin.sin_port = htons(port);
        dst.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        dst.size = sizeof(dst.addr.sin);
        coap_dtls_cpsk_t psk{};
        psk.version = COAP_DTLS_CPSK_SETUP_VERSION;
        psk.psk_info.identity.s = reinterpret_cast<const std::uint8_t*>(identity_.data());
        psk.psk_info.identity.length = identity_.size();
        psk.psk_info.key.s = reinterpret_cast<const std::uint8_t*>(key_.data());
        psk.psk_info.key.length = key_.size();
        session_ = coap_new_client_session_psk2(ctx_, nullptr, &dst, COAP_PROTO_DTLS, &psk);
        REQUIRE(session_ != nullptr);
        coap_session_set_app_data(session_, this);
    }
    ~CoapPskClient() {
        coap_session_release(session_);
        coap_free_context(ctx_);
    }
    CoapPskClient(const CoapPskClient&) = delete;
    CoapPskClient& operator=(const CoapPskClient&) = delete;

    struct Response {
        std::string code;  // "2.05"
        std::string payload;
    };

    // Sends a confirmable request on the session; answers (and notifications) queue up for next().
    // `observe`: a GET that registers as an observer (Observe: 0).
    void send(coap_pdu_code_t method, const std::string& path, const std::string& payload = {}, bool observe = false) {
        coap_pdu_t* pdu = coap_pdu_init(COAP_MESSAGE_CON, method, coap_new_message_id(session_),
                                        coap_session_max_pdu_size(session_));
        REQUIRE(pdu != nullptr);
        std::uint8_t token[8];
        std::size_t token_len = 0;
        coap_session_new_token(session_, &token_len, token);
        coap_add_token(pdu, token_len, token);
        if (observe) coap_add_option(pdu, COAP_OPTION_OBSERVE, 0, nullptr);  // option 6 before Uri-Path (11)
        for (std::size_t at = 0; at <= path.size();) {
            const auto slash = std::min(path.find('/', at), path.size());
            coap_add_option(pdu, COAP_OPTION_URI_PATH, slash - at, reinterpret_cast<const std::uint8_t*>(path.data() + at));
            at = slash + 1;
        }
        if (!payload.empty()) coap_add_data(pdu, payload.size(), reinterpret_cast<const std::uint8_t*>(payload.data()));
        REQUIRE(coap_send(session_, pdu) != COAP_INVALID_MID);
    }

    // The next answer or notification, or nullopt when none came within `timeout`.
    std::optional<Response> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (responses_.empty() && std::chrono::steady_clock::now() < deadline) coap_io_process(ctx_, 50);
        if (responses_.empty()) return std::nullopt;
        auto r = std::move(responses_.front());
        responses_.pop_front();
        return r;
    }

    // A confirmable POST of `payload` to `path` ("devices/d/messages/events") on the session;
    // returns the response code as "2.04", or "" when none came within `timeout`.
    std::string post(const std::string& path, const std::string& payload,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        send(COAP_REQUEST_CODE_POST, path, payload);
        const auto r = next(timeout);
        return r ? r->code : std::string();
    }

private:
    static coap_response_t on_response(coap_session_t* s, const coap_pdu_t*, const coap_pdu_t* received,
                                       const coap_mid_t) {
        auto* self = static_cast<CoapPskClient*>(coap_session_get_app_data(s));
        const auto code = static_cast<unsigned>(coap_pdu_get_code(received));
        if (code == 0) return COAP_RESPONSE_OK;  // an empty ACK: the answer follows separately
        Response r;
        r.code = std::to_string(code >> 5) + "." + (code % 32 < 10 ? "0" : "") + std::to_string(code % 32);
        std::size_t len = 0;
        const std::uint8_t* data = nullptr;
        if (coap_get_data(received, &len, &data) && len) r.payload.assign(reinterpret_cast<const char*>(data), len);
        self->responses_.push_back(std::move(r));
        return COAP_RESPONSE_OK;
    }

    std::string identity_;
    std::string key_;
    coap_context_t* ctx_ = nullptr;
    coap_session_t* session_ = nullptr;
    std::deque<Response> responses_;
};

}  // namespace hubgate::test
