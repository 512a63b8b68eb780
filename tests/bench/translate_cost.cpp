// Cost of one translation per decoder, for callgrind (tests/bench/translate_bench.sh): compiles one
// rule, then translates one real payload (tests/data/) N times. Run with N and with 0 under
// callgrind; (difference) / N = instructions per message for that rule and decoder.
//
//   translate_cost FORMAT TOPIC_PATTERN TOPIC PAYLOAD_FILE N [TIME_POINTER] [CONTENT_FORMAT]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "gateway/translate/rule_set.hpp"

using namespace hubgate;

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: translate_cost FORMAT PATTERN TOPIC PAYLOAD_FILE N [TIME_POINTER] [CONTENT_FORMAT]\n");
        return 2;
    }
    translate::RuleSpec spec;
    spec.name = "bench";
    spec.format = argv[1];
    const std::string pattern = argv[2];
    (pattern.front() == '/' ? spec.path : spec.topic) = pattern;
    spec.device = "{device}";
    spec.module = "bench";
    spec.properties = {{"source", "bench"}, {"site", "{gateway}"}};
    if (argc > 6 && *argv[6]) spec.time = argv[6];
    std::vector<translate::CompileError> errors;
    auto rules = translate::RuleSet::compile({spec}, {}, "gw-bench", errors);
    if (!rules) {
        for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.what.c_str());
        return 1;
    }
    std::ifstream in(argv[4], std::ios::binary);
    const std::string payload((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const long n = std::atol(argv[5]);
    translate::Inbound msg;
    msg.transport = pattern.front() == '/' ? translate::Transport::coap : translate::Transport::mqtt;
    msg.topic = argv[3];
    msg.payload = payload;
    if (argc > 7) msg.content_format = static_cast<std::uint16_t>(std::atoi(argv[7]));
    msg.receive_ms = 1700000000000;
    const translate::ChildPolicy none;
    std::size_t bytes = 0;
    for (long i = 0; i < n; ++i) {
        auto t = rules->translate(msg, none);
        if (t.verdict != translate::Verdict::accepted || t.decode_error) {
            std::fprintf(stderr, "not accepted: %s\n", t.reason.c_str());
            return 1;
        }
        bytes += t.message.body.size();
    }
    std::printf("%zu\n", bytes);
    return 0;
}
