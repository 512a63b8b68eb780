#include "gateway/discovery/avahi_api.hpp"

#include <dlfcn.h>

namespace hubgate::discovery {

namespace {

// The soname the Debian package libavahi-client3 installs (the .deb Depends on it by name:
// cmake/packaging.cmake, as dpkg-shlibdeps cannot see a dlopen'd library).
constexpr const char* kLibrary = "libavahi-client.so.3";

struct Loaded {
    AvahiApi api;
    bool ok = false;
    std::string why;
};

template <typename F>
bool bind(void* handle, F& slot, const char* name, std::string& why) {
    void* f = dlsym(handle, name);  // searches the library and its dependencies (libavahi-common)
    if (!f) {
        const char* e = dlerror();
        why = e ? e : std::string(name) + ": not found";
        return false;
    }
    slot = reinterpret_cast<F>(f);
    return true;
}

Loaded load() {
    Loaded l;
    l.ok = load_avahi_api(kLibrary, l.api, l.why);
    return l;
}

}  // namespace

bool load_avahi_api(const char* library, AvahiApi& a, std::string& why) {
    // Never dlclose'd: avahi's D-Bus connection outlives any one client in libdbus's own state.
    void* h = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* e = dlerror();
        why = e ? e : std::string("cannot load ") + library;
        return false;
    }
    return bind(h, a.client_new, "avahi_client_new", why) && bind(h, a.client_free, "avahi_client_free", why) &&
           bind(h, a.client_errno, "avahi_client_errno", why) &&
           bind(h, a.client_get_host_name_fqdn, "avahi_client_get_host_name_fqdn", why) &&
           bind(h, a.entry_group_new, "avahi_entry_group_new", why) &&
           bind(h, a.entry_group_get_client, "avahi_entry_group_get_client", why) &&
           bind(h, a.entry_group_is_empty, "avahi_entry_group_is_empty", why) &&
           bind(h, a.entry_group_reset, "avahi_entry_group_reset", why) &&
           bind(h, a.entry_group_commit, "avahi_entry_group_commit", why) &&
           bind(h, a.entry_group_add_service_strlst, "avahi_entry_group_add_service_strlst", why) &&
           bind(h, a.entry_group_update_service_txt_strlst, "avahi_entry_group_update_service_txt_strlst", why) &&
           bind(h, a.alternative_service_name, "avahi_alternative_service_name", why) &&
           bind(h, a.strerror, "avahi_strerror", why) && bind(h, a.free, "avahi_free", why) &&
           bind(h, a.string_list_add, "avahi_string_list_add", why) &&
           bind(h, a.string_list_free, "avahi_string_list_free", why);
}

const AvahiApi* avahi_api(std::string* why) {
    static const Loaded loaded = load();  // C++11 magic static: one load, any thread
    if (!loaded.ok && why) *why = loaded.why;
    return loaded.ok ? &loaded.api : nullptr;
}

}  // namespace hubgate::discovery
