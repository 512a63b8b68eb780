// The running gateway: wires every stage (store, metrics, and as they land the adapters, upstream
// and C2D relay) from one Config. The only place that knows every concrete type (STYLE.md, Envoy).
#pragma once

#include <memory>

#include "config/config.hpp"

namespace hubgate::app {

class App {
public:
    explicit App(config::Config cfg);
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // Starts every stage and serves until SIGTERM/SIGINT; then stops accepting, finishes the
    // store's commit in flight and closes. Returns the process exit code.
    int run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace hubgate::app
