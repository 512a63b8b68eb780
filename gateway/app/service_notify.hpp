// systemd's notify protocol, as sd_notify(3) documents it for reimplementation: READY=1,
// WATCHDOG=1 and STOPPING=1 as datagrams on $NOTIFY_SOCKET, and the watchdog period from
// $WATCHDOG_USEC. Written here rather than linking libsystemd, which maps libsystemd, libgcrypt,
// libgpg-error, libzstd, liblzma, liblz4 and libcap (1 MB of RSS) into a gateway that only ever
// sends these one-line datagrams (docs/BENCHMARKS.md, "Memory").
#pragma once

#include <chrono>
#include <string_view>

namespace hubgate::app {

// Sends STATE to the service manager. False when there is none ($NOTIFY_SOCKET unset) or the send
// failed (the gateway runs on either way; systemd's own sd_notify behaves the same).
bool notify_service_manager(std::string_view state);

// The watchdog period the service manager asked for: $WATCHDOG_USEC, when $WATCHDOG_PID is unset or
// names this process; zero otherwise.
std::chrono::microseconds service_watchdog_period();

}  // namespace hubgate::app
