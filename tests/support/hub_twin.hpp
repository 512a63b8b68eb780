// The hub's side of the gateway's own twin on the mqtt profile (docs/twins.md), as a cloud service
// would play it on a plain broker: records the gateway's reported patches
// (`devices/{gw}/$iothub/twin/PATCH/properties/reported/#`) and, when told to, answers its twin GETs
// (`devices/{gw}/$iothub/twin/GET/?$rid=R` -> `.../twin/res/200/?$rid=R`) with the desired document
// the test sets, which no broker keeps for the gateway, and the reported one its patches made (merged
// with nlohmann's merge_patch, not hubgate's). A Paho client that keeps its session and resubscribes
// across broker restarts (as HubListener).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hubgate::test {

class HubTwin {
public:
    // Connects and subscribes (waits for the SUBACKs); throws std::runtime_error if the broker refuses.
    explicit HubTwin(std::uint16_t port, std::string gateway_id = "gw-test");
    ~HubTwin();
    HubTwin(const HubTwin&) = delete;
    HubTwin& operator=(const HubTwin&) = delete;

    // GETs are answered 200 with {"desired":<desired>,"reported":<the patches merged>} from now
    // on; `desired` is a JSON object (with its "$version"). Until called, GETs are not answered.
    void answer_gets(const std::string& desired);
    void stop_answering();
    // The reported properties the patches made, as a GET answers them (with "$version").
    std::string reported() const;
    // Forgets them, as a twin deleted and created again at the hub would.
    void reset_reported();

    std::vector<std::string> patches() const;  // reported patch bodies, in arrival order
    std::size_t gets() const;                  // GETs seen (answered or not)
    // True once at least n reported patches arrived within `timeout`.
    bool wait_for_patches(std::size_t n, std::chrono::milliseconds timeout) const;

private:
    struct State;
    std::shared_ptr<State> state_;
};

}  // namespace hubgate::test
