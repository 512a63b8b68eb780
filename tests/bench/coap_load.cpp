// Load generator for the CoAP ingest benchmark (tests/bench/coap_bench.sh): N clients (one thread,
// libcoap context and UDP session each) post M confirmable JSON telemetry POSTs to
// /devices/cN/messages/events and count the 2.04 answers. One request in flight per client: that is
// CoAP's NSTART = 1 (RFC 7252 4.7), which libcoap enforces, so this is how a real device behaves.
//
//   coap_load PORT CLIENTS MESSAGES_PER_CLIENT PAYLOAD_BYTES   -> prints msgs/s (answered 2.04)
#include <coap3/coap.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Set by the response handler; per thread because each thread owns its context.
thread_local int t_answered = 0;
thread_local int t_failed = 0;

coap_response_t on_response(coap_session_t*, const coap_pdu_t*, const coap_pdu_t* received,
                            const coap_mid_t) {
    if (coap_pdu_get_code(received) == COAP_RESPONSE_CODE(204))
        ++t_answered;
    else
        ++t_failed;
    return COAP_RESPONSE_OK;
}

void add_path(coap_pdu_t* pdu, const std::string& seg) {
    coap_add_option(pdu, COAP_OPTION_URI_PATH, seg.size(),
                    reinterpret_cast<const std::uint8_t*>(seg.data()));
}

void run_client(int port, int index, int messages, const std::string& body, std::atomic<int>& total,
                std::atomic<int>& failed) {
    coap_context_t* ctx = coap_new_context(nullptr);
    coap_address_t dst;
    coap_address_init(&dst);
    dst.addr.sin.sin_family = AF_INET;
    dst.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.addr.sin.sin_port = htons(static_cast<std::uint16_t>(port));
    dst.size = sizeof(sockaddr_in);
    coap_session_t* session = coap_new_client_session(ctx, nullptr, &dst, COAP_PROTO_UDP);
    if (ctx == nullptr || session == nullptr) {
        std::fprintf(stderr, "coap_load: cannot create a client session\n");
        std::exit(1);
    }
    coap_register_response_handler(ctx, on_response);
    std::string device = "c";  // not "c" + to_string(): g++ 12 -O3 false -Wrestrict
    device += std::to_string(index);
    std::uint8_t cf_buf[4];
    const unsigned cf_len =
        coap_encode_var_safe(cf_buf, sizeof cf_buf, COAP_MEDIATYPE_APPLICATION_JSON);

    for (int i = 0; i < messages; ++i) {
        const int before = t_answered + t_failed;
        coap_pdu_t* pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, session);
        std::uint8_t token[8];
        std::size_t token_len = 0;
        coap_session_new_token(session, &token_len, token);
        coap_add_token(pdu, token_len, token);
        add_path(pdu, "devices");
        add_path(pdu, device);
        add_path(pdu, "messages");
        add_path(pdu, "events");
        coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, cf_len, cf_buf);
        coap_add_data(pdu, body.size(), reinterpret_cast<const std::uint8_t*>(body.data()));
        if (coap_send(session, pdu) == COAP_INVALID_MID) {
            std::fprintf(stderr, "coap_load: send failed\n");
            std::exit(1);
        }
        while (t_answered + t_failed == before) coap_io_process(ctx, 1000);
    }
    total += t_answered;
    failed += t_failed;
    coap_session_release(session);
    coap_free_context(ctx);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: coap_load PORT CLIENTS MESSAGES_PER_CLIENT PAYLOAD_BYTES\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const int clients = std::atoi(argv[2]);
    const int messages = std::atoi(argv[3]);
    const auto bytes = static_cast<std::size_t>(std::atoi(argv[4]));
    coap_startup();
    coap_set_log_level(LOG_ERR);

    // A JSON object padded to exactly PAYLOAD_BYTES (the MQTT load uses the same size).
    std::string body = "{\"t\":21.5,\"pad\":\"";
    while (body.size() + 2 < bytes) body += 'x';
    body += "\"}";

    std::atomic<int> total{0};
    std::atomic<int> failed{0};
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
        threads.emplace_back(run_client, port, c, messages, std::cref(body), std::ref(total),
                             std::ref(failed));
    for (auto& t : threads) t.join();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const double secs = std::chrono::duration<double>(elapsed).count();
    coap_cleanup();
    if (failed != 0)
        std::fprintf(stderr, "coap_load: %d requests not answered 2.04\n", failed.load());
    std::printf("%.0f\n", total / secs);
    return failed == 0 ? 0 : 1;
}
