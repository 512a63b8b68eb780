// gateway/discovery/avahi_api: libavahi-client loaded with dlopen, every function bound, and a
// missing library refused with a reason that names it.
#include <doctest/doctest.h>

#include <string>

#include "gateway/discovery/avahi_api.hpp"

using namespace hubgate;

TEST_CASE("libavahi-client.so.3 loads with every function the advertiser calls bound") {
    discovery::AvahiApi api;
    std::string why;
    REQUIRE_MESSAGE(discovery::load_avahi_api("libavahi-client.so.3", api, why), why);
    const void* bound[] = {
        reinterpret_cast<const void*>(api.client_new), reinterpret_cast<const void*>(api.client_free),
        reinterpret_cast<const void*>(api.client_errno), reinterpret_cast<const void*>(api.client_get_host_name_fqdn),
        reinterpret_cast<const void*>(api.entry_group_new), reinterpret_cast<const void*>(api.entry_group_get_client),
        reinterpret_cast<const void*>(api.entry_group_is_empty), reinterpret_cast<const void*>(api.entry_group_reset),
        reinterpret_cast<const void*>(api.entry_group_commit),
        reinterpret_cast<const void*>(api.entry_group_add_service_strlst),
        reinterpret_cast<const void*>(api.entry_group_update_service_txt_strlst),
        reinterpret_cast<const void*>(api.alternative_service_name), reinterpret_cast<const void*>(api.strerror),
        reinterpret_cast<const void*>(api.free), reinterpret_cast<const void*>(api.string_list_add),
        reinterpret_cast<const void*>(api.string_list_free)};
    for (const void* f : bound) CHECK(f != nullptr);
    // The functions from libavahi-common (a dependency of the client) work through the table.
    CHECK(std::string(api.strerror(AVAHI_ERR_COLLISION)) == "Local name collision");
    char* alt = api.alternative_service_name("hubgate gw-01");
    REQUIRE(alt != nullptr);
    CHECK(std::string(alt) == "hubgate gw-01 #2");
    api.free(alt);
}

TEST_CASE("a missing library is refused with a reason that names it, and binds nothing") {
    discovery::AvahiApi api;
    std::string why;
    CHECK_FALSE(discovery::load_avahi_api("libhubgate-no-such-library.so.0", api, why));
    CHECK(why.find("libhubgate-no-such-library.so.0") != std::string::npos);
    const bool unbound = api.client_new == nullptr;  // nothing half-bound
    CHECK(unbound);
}

TEST_CASE("the process-wide table is loaded once") {
    std::string why;
    const auto* a = discovery::avahi_api(&why);
    REQUIRE_MESSAGE(a != nullptr, why);
    CHECK(discovery::avahi_api(nullptr) == a);
}
