// The part of libavahi-client (and libavahi-common, its dependency) the advertiser calls, loaded
// with dlopen the first time a listener is to be advertised. A gateway with nothing to advertise
// (listeners on loopback, `[discovery] mdns = false`) then never maps avahi, libdbus, libsystemd
// and the compression and crypto libraries libsystemd needs: 1.2 MB of idle RSS on amd64
// (docs/BENCHMARKS.md, "Memory"). Only advertiser.cpp includes this header.
#pragma once

#include <string>

#include <avahi-client/client.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>

namespace hubgate::discovery {

struct AvahiApi {
    decltype(&::avahi_client_new) client_new = nullptr;
    decltype(&::avahi_client_free) client_free = nullptr;
    decltype(&::avahi_client_errno) client_errno = nullptr;
    decltype(&::avahi_client_get_host_name_fqdn) client_get_host_name_fqdn = nullptr;
    decltype(&::avahi_entry_group_new) entry_group_new = nullptr;
    decltype(&::avahi_entry_group_get_client) entry_group_get_client = nullptr;
    decltype(&::avahi_entry_group_is_empty) entry_group_is_empty = nullptr;
    decltype(&::avahi_entry_group_reset) entry_group_reset = nullptr;
    decltype(&::avahi_entry_group_commit) entry_group_commit = nullptr;
    decltype(&::avahi_entry_group_add_service_strlst) entry_group_add_service_strlst = nullptr;
    decltype(&::avahi_entry_group_update_service_txt_strlst) entry_group_update_service_txt_strlst = nullptr;
    decltype(&::avahi_alternative_service_name) alternative_service_name = nullptr;
    decltype(&::avahi_strerror) strerror = nullptr;
    decltype(&::avahi_free) free = nullptr;
    decltype(&::avahi_string_list_add) string_list_add = nullptr;
    decltype(&::avahi_string_list_free) string_list_free = nullptr;
};

// The table from libavahi-client.so.3, loaded once (thread-safe) and kept for the life of the
// process; null when the library or one of its functions is missing, with *why saying which.
const AvahiApi* avahi_api(std::string* why);

// Loads `library` and binds every function of `api`: false with `why` (dlerror's text, which names
// the library or the function) when it cannot. What avahi_api() does once; separate for its tests.
bool load_avahi_api(const char* library, AvahiApi& api, std::string& why);

}  // namespace hubgate::discovery
