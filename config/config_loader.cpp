// load_config(): TOML (toml11) -> typed Config. The only file that includes toml11. Every check
// reports `FILE:LINE: what` and keeps going, so one run of check-config shows every problem.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include <toml.hpp>

#include "config/config.hpp"
#include "gateway/translate/rule_set.hpp"
#include "gateway/model/crypto.hpp"
#include "gateway/model/validation.hpp"

namespace hubgate::config {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIdCharset = "1-128 chars: A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '";


const char* type_name(const toml::value& v) {
    switch (v.type()) {
        case toml::value_t::boolean: return "a boolean";
        case toml::value_t::integer: return "an integer";
        case toml::value_t::floating: return "a float";
        case toml::value_t::string: return "a string";
        case toml::value_t::offset_datetime:
        case toml::value_t::local_datetime: return "a date-time";
        case toml::value_t::local_date: return "a date";
        case toml::value_t::local_time: return "a time";
        case toml::value_t::array: return "an array";
        case toml::value_t::table: return "a table";
        case toml::value_t::empty: break;
    }
    return "empty";
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

// Well-formed UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        std::uint32_t cp = n == 1 ? c : c & (0x7f >> n);
        for (std::size_t k = 1; k < n; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n;
    }
    return true;
}

// The literal as written, e.g. to show 99999999999999999999 rather than what toml11 clamped it to.
std::string source_text(const toml::value& v) {
    const auto loc = v.location();
    const auto& line = loc.line_str();
    const std::size_t col = loc.column() > 0 ? loc.column() - 1 : 0;
    if (col >= line.size()) return {};
    return line.substr(col, loc.region());
}

// toml11 3.7 clamps decimal literals beyond int64 to INT64_MIN/MAX instead of failing; tell a real
// extreme from a clamped one by the literal.
bool integer_overflowed(const toml::value& v) {
    const auto i = v.as_integer();
    if (i != std::numeric_limits<std::int64_t>::max() && i != std::numeric_limits<std::int64_t>::min()) return false;
    std::string text;
    for (char c : source_text(v))
        if (c != '_' && c != '+') text += c;
    if (text.rfind("0x", 0) == 0 || text.rfind("0o", 0) == 0 || text.rfind("0b", 0) == 0) return false;
    return text != "9223372036854775807" && text != "-9223372036854775808";
}

// "host:port" or "[v6]:port", port 1-65535.
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& why) {
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            why = "must be \"[v6-address]:port\"";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (host.find(':') == std::string_view::npos) {
            why = "brackets are for IPv6 addresses only";
            return std::nullopt;
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            why = "must be \"host:port\" (or \"[v6-address]:port\")";
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            why = "an IPv6 address needs brackets, e.g. \"[::]:1883\"";
            return std::nullopt;
        }
    }
    if (host.empty()) {
        why = "has no host (use 0.0.0.0 or [::] for every interface)";
        return std::nullopt;
    }
    for (char c : host) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '-' || c == '_' || c == ':' || c == '%';
        if (!ok) {
            why = "has a host with a character that no address or host name contains";
            return std::nullopt;
        }
    }
    unsigned long p = 0;
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        (p = std::stoul(std::string(port))) < 1 || p > 65535) {
        why = "has a port that is not a number between 1 and 65535";
        return std::nullopt;
    }
    return Endpoint{std::string(host), static_cast<std::uint16_t>(p)};
}

std::string resolve(const fs::path& base, const std::string& p) {
    if (p.empty()) return p;
    const fs::path path(p);
    if (path.is_absolute()) return path.lexically_normal().string();
    return (base / path).lexically_normal().string();
}

// Reads the file with POSIX calls so the error says why (ENOENT, EACCES, EISDIR...).
bool read_file(const std::string& path, std::string& out, int& err) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return false;
    }
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            ::close(fd);
            return false;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
}

// toml11's messages are multi-line ascii art; keep the headline, the line it points at last
// (for "defined twice" that is the second definition) and that pointer's remark.
ConfigError syntax_error_to_config_error(const std::string& file, const toml::exception& e) {
    std::istringstream in(e.what());
    std::string headline;
    std::getline(in, headline);
    if (headline.rfind("[error] ", 0) == 0) headline.erase(0, 8);
    if (headline.rfind("toml::", 0) == 0) {
        const auto colon = headline.find(": ");
        if (colon != std::string::npos) headline.erase(0, colon + 2);
    }
    int line = static_cast<int>(e.location().line());
    std::string remark;
    int current = 0;
    for (std::string l; std::getline(in, l);) {
        const auto bar = l.find(" | ");
        const auto bar_end = l.find(" |");
        if (bar != std::string::npos) {
            const std::string num = l.substr(0, bar);
            const auto first = num.find_first_not_of(' ');
            if (first != std::string::npos && num.find_first_not_of("0123456789", first) == std::string::npos) {
                current = std::stoi(num.substr(first));
                continue;
            }
        }
        if (bar_end == std::string::npos) continue;
        std::string rest = l.substr(bar_end + 2);
        const auto mark = rest.find_first_of("^~");
        if (mark == std::string::npos || rest.find_first_not_of(' ') != mark) continue;
        rest.erase(0, rest.find_first_not_of("^~-", mark));
        if (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
        if (current > 0) line = current;
        remark = rest;
    }
    while (!headline.empty() && (headline.back() == '.' || headline.back() == ' ')) headline.pop_back();
    std::string what = headline.empty() ? "TOML syntax error" : headline;
    if (!remark.empty() && remark != "here") what += " (" + remark + ")";
    return ConfigError{file, line, what};
}

class Loader {
public:
    explicit Loader(std::string file) : file_(std::move(file)) {}

    LoadResult run(const std::string& text);

private:
    struct Pending {
        ConfigError error;
        unsigned column;
    };

    std::string file_;
    std::vector<Pending> errors_;
    Config cfg_;

    void error(int line, unsigned column, std::string what) {
        errors_.push_back({ConfigError{file_, line, std::move(what)}, column});
    }
    void error_at(const toml::value& v, std::string what) {
        const auto loc = v.location();
        error(static_cast<int>(loc.line()), loc.column(), std::move(what));
    }
    static int line_of(const toml::value* v) { return v ? static_cast<int>(v->location().line()) : 0; }

    static const toml::value* find(const toml::value& table, const char* key) {
        const auto& t = table.as_table();
        const auto it = t.find(key);
        return it == t.end() ? nullptr : &it->second;
    }

    void check_keys(const toml::value& table, const std::string& where, const std::vector<std::string>& allowed) {
        for (const auto& [key, v] : table.as_table()) {
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
                error_at(v, "unknown key \"" + key + "\" in " + where + "; allowed keys: " + join(allowed));
        }
    }

    const toml::value* get_string(const toml::value& t, const char* key, const std::string& name, std::string& out) {
        const toml::value* v = find(t, key);
        if (!v) return nullptr;
        if (!v->is_string()) {
            error_at(*v, name + " must be a string, not " + type_name(*v));
            return nullptr;
        }
        out = v->as_string().str;
        return v;
    }

    const toml::value* get_bool(const toml::value& t, const char* key, const std::string& name, bool& out) {
        const toml::value* v = find(t, key);
        if (!v) return nullptr;
        if (!v->is_boolean()) {
            error_at(*v, name + " must be a boolean (true or false), not " + type_name(*v));
            return nullptr;
        }
        out = v->as_boolean();
        return v;
    }

    template <class U>
    void get_uint(const toml::value& t, const char* key, const std::string& name, U& out, std::uint64_t min,
                  std::uint64_t max = std::numeric_limits<U>::max()) {
        const toml::value* v = find(t, key);
        if (!v) return;
        if (!v->is_integer()) {
            error_at(*v, name + " must be an integer, not " + type_name(*v));
            return;
        }
        const std::int64_t i = v->as_integer();
        if (integer_overflowed(*v) || i < 0 || static_cast<std::uint64_t>(i) < min ||
            static_cast<std::uint64_t>(i) > max) {
            std::string text = source_text(*v);
            if (text.empty()) text = std::to_string(i);
            const std::string range = max == std::numeric_limits<U>::max() && min > 0
                                          ? "at least " + std::to_string(min)
                                          : "between " + std::to_string(min) + " and " + std::to_string(max);
            error_at(*v, name + " = " + text + " is out of range: must be " + range);
            return;
        }
        out = static_cast<U>(i);
    }

    template <class E>
    const toml::value* get_enum(const toml::value& t, const char* key, const std::string& name,
                                const std::vector<std::pair<std::string, E>>& allowed, E& out) {
        std::string s;
        const toml::value* v = get_string(t, key, name, s);
        if (!v) return nullptr;
        std::vector<std::string> names;
        for (const auto& [n, e] : allowed) {
            if (n == s) {
                out = e;
                return v;
            }
            names.push_back(n);
        }
        error_at(*v, name + " = \"" + s + "\" is not allowed; allowed values: " + join(names));
        return nullptr;
    }

    const toml::value* get_id(const toml::value& t, const char* key, const std::string& name, std::string& out,
                              const char* what) {
        const toml::value* v = get_string(t, key, name, out);
        if (v && !is_hub_id(out)) {
            error_at(*v, name + " = \"" + out + "\" is not a valid " + what + " (" + kIdCharset + ")");
            return nullptr;
        }
        return v;
    }

    void get_endpoint(const toml::value& t, const char* key, const std::string& name, Endpoint& out) {
        std::string s;
        const toml::value* v = get_string(t, key, name, s);
        if (!v) return;
        std::string why;
        if (auto ep = parse_endpoint(s, why))
            out = *ep;
        else
            error_at(*v, name + " = \"" + s + "\": " + why);
    }

    // A section given as `[name]`; anything else is a type error.
    const toml::value* section(const toml::value& root, const char* name) {
        const toml::value* v = find(root, name);
        if (v && !v->is_table()) {
            error_at(*v, std::string(name) + " must be a table ([" + name + "]), not " + type_name(*v));
            return nullptr;
        }
        return v;
    }

    // `[[name]]`: an array of tables.
    std::vector<const toml::value*> table_array(const toml::value& root, const char* name) {
        std::vector<const toml::value*> out;
        const toml::value* v = find(root, name);
        if (!v) return out;
        if (!v->is_array()) {
            error_at(*v, std::string(name) + " must be an array of tables ([[" + name + "]]), not " + type_name(*v));
            return out;
        }
        for (const auto& item : v->as_array()) {
            if (item.is_table())
                out.push_back(&item);
            else
                error_at(item, std::string(name) + " entries must be tables ([[" + name + "]]), not " + type_name(item));
        }
        return out;
    }

    void load_gateway(const toml::value& root);
    void load_listeners(const toml::value& root);
    void load_upstream(const toml::value& root);
    void load_store(const toml::value& root);
    void load_c2d(const toml::value& root);
    void load_metrics(const toml::value& root);
    void load_discovery(const toml::value& root);
    void load_devices(const toml::value& root);
    void load_pairing(const toml::value& root);
    void load_rules(const toml::value& root);
    void resolve_paths();
};

void Loader::load_gateway(const toml::value& root) {
    const toml::value* t = section(root, "gateway");
    if (!t) return;
    check_keys(*t, "[gateway]", {"id", "data_dir", "log_level", "max_seen_devices"});
    get_uint(*t, "max_seen_devices", "gateway.max_seen_devices", cfg_.gateway.max_seen_devices, 0, 1000000);
    get_id(*t, "id", "gateway.id", cfg_.gateway.id, "device id");
    if (const auto* v = get_string(*t, "data_dir", "gateway.data_dir", cfg_.gateway.data_dir);
        v && cfg_.gateway.data_dir.empty())
        error_at(*v, "gateway.data_dir must not be empty");
    if (const auto* v = get_string(*t, "log_level", "gateway.log_level", cfg_.gateway.log_level)) {
        static const std::vector<std::string> levels{"trace", "debug", "info", "warn", "error"};
        if (std::find(levels.begin(), levels.end(), cfg_.gateway.log_level) == levels.end())
            error_at(*v, "gateway.log_level = \"" + cfg_.gateway.log_level +
                             "\" is not allowed; allowed values: " + join(levels));
    }
}

void Loader::load_listeners(const toml::value& root) {
    // No listener is valid: an upstream-only gateway (and the integration harness) runs without one.
    const auto tables = table_array(root, "listener");

    // Same bind + same transport cannot both be bound; remember the first one's line.
    std::map<std::pair<std::string, bool>, int> binds;  // (endpoint, is_udp) -> line
    std::map<std::string, int> listener_names;          // listener name -> line
    for (const toml::value* t : tables) {
        Listener l;
        l.line = line_of(t);
        check_keys(*t, "[[listener]]",
                   {"name", "protocol", "bind", "auth", "module_id", "tls_cert", "tls_key", "connect_timeout_seconds",
                    "unmatched"});
        if (const toml::value* v = get_string(*t, "name", "listener.name", l.name)) {
            const bool ok = !l.name.empty() && l.name.size() <= 64 &&
                            l.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
                                std::string::npos;
            if (!ok) {
                error_at(*v, "listener.name = \"" + l.name + "\" must be 1-64 chars of A-Z a-z 0-9 - _ .");
            } else if (const auto [it, inserted] = listener_names.emplace(l.name, l.line); !inserted) {
                error_at(*v, "duplicate listener name \"" + l.name + "\": the listener at line " +
                                 std::to_string(it->second) + " already has it");
            }
        }
        {
            Unmatched u = Unmatched::refuse;
            if (get_enum<Unmatched>(*t, "unmatched", "listener.unmatched",
                                    {{"refuse", Unmatched::refuse}, {"drop", Unmatched::drop}, {"raw", Unmatched::raw}}, u))
                l.unmatched = u;
        }

        const toml::value* proto = get_enum<Protocol>(
            *t, "protocol", "listener.protocol",
            {{"mqtt", Protocol::mqtt}, {"mqtts", Protocol::mqtts}, {"coap", Protocol::coap}, {"coaps", Protocol::coaps}},
            l.protocol);
        if (!proto) {
            if (!find(*t, "protocol"))
                error(l.line, 0, "listener.protocol is required (allowed values: mqtt, mqtts, coap, coaps)");
            continue;  // bind default, auth and TLS rules all depend on the protocol
        }

        switch (l.protocol) {
            case Protocol::mqtt: l.bind = {"0.0.0.0", 1883}; l.auth = ListenerAuth::sas; break;
            case Protocol::mqtts: l.bind = {"0.0.0.0", 8883}; l.auth = ListenerAuth::sas; break;
            case Protocol::coap: l.bind = {"0.0.0.0", 5683}; l.auth = ListenerAuth::none; break;
            case Protocol::coaps: l.bind = {"0.0.0.0", 5684}; l.auth = ListenerAuth::psk; break;
        }
        const toml::value* bind = find(*t, "bind");
        get_endpoint(*t, "bind", "listener.bind", l.bind);

        std::vector<std::pair<std::string, ListenerAuth>> auths;
        switch (l.protocol) {
            case Protocol::mqtt:
            case Protocol::mqtts:
                auths = {{"sas", ListenerAuth::sas}, {"password", ListenerAuth::password}, {"none", ListenerAuth::none}};
                break;
            case Protocol::coap: auths = {{"none", ListenerAuth::none}}; break;
            case Protocol::coaps: auths = {{"psk", ListenerAuth::psk}}; break;
        }
        std::string auth;
        if (const toml::value* v = get_string(*t, "auth", "listener.auth", auth)) {
            std::vector<std::string> names;
            bool found = false;
            for (const auto& [n, a] : auths) {
                names.push_back(n);
                if (n == auth) {
                    l.auth = a;
                    found = true;
                }
            }
            if (!found)
                error_at(*v, "listener.auth = \"" + auth + "\" is not allowed for protocol " + to_string(l.protocol) +
                                 "; allowed values: " + join(names));
        }

        get_id(*t, "module_id", "listener.module_id", l.module_id, "module id");

        const toml::value* cert = get_string(*t, "tls_cert", "listener.tls_cert", l.tls_cert);
        const toml::value* key = get_string(*t, "tls_key", "listener.tls_key", l.tls_key);
        if (l.protocol == Protocol::mqtts) {
            if (!find(*t, "tls_cert")) error(l.line, 0, "listener.tls_cert is required for protocol mqtts");
            if (!find(*t, "tls_key")) error(l.line, 0, "listener.tls_key is required for protocol mqtts");
            if (cert && l.tls_cert.empty()) error_at(*cert, "listener.tls_cert must not be empty");
            if (key && l.tls_key.empty()) error_at(*key, "listener.tls_key must not be empty");
        } else {
            if (cert) error_at(*cert, std::string("listener.tls_cert is only used by mqtts listeners, not ") + to_string(l.protocol));
            if (key) error_at(*key, std::string("listener.tls_key is only used by mqtts listeners, not ") + to_string(l.protocol));
        }

        get_uint(*t, "connect_timeout_seconds", "listener.connect_timeout_seconds", l.connect_timeout_seconds, 1, 3600);
        if (const auto* v = find(*t, "connect_timeout_seconds");
            v && l.protocol != Protocol::mqtt && l.protocol != Protocol::mqtts)
            error_at(*v, std::string("listener.connect_timeout_seconds is only used by mqtt and mqtts listeners, not ") +
                             to_string(l.protocol));

        const bool udp = l.protocol == Protocol::coap || l.protocol == Protocol::coaps;
        const auto [it, inserted] = binds.emplace(std::make_pair(l.bind.to_string(), udp), l.line);
        if (!inserted) {
            const int line = bind ? line_of(bind) : l.line;
            error(line, bind ? bind->location().column() : 0,
                  "duplicate listener bind " + l.bind.to_string() + (udp ? " (udp)" : " (tcp)") +
                      ": the listener at line " + std::to_string(it->second) + " already binds it");
        }
        cfg_.listeners.push_back(std::move(l));
    }
}

void Loader::load_upstream(const toml::value& root) {
    Upstream& u = cfg_.upstream;
    const toml::value* t = section(root, "upstream");
    const toml::value empty_table(toml::table{});  // not {}: that would be an array holding a table
    const toml::value& tab = t ? *t : empty_table;
    const int line = line_of(t);
    if (t)
        check_keys(tab, "[upstream]", {"profile", "connection_string", "url", "client_id", "username", "password",
                                       "ca_file", "batch", "max_batch_bytes", "max_batch_delay_ms",
                                       "fast_retry_seconds", "backoff_max_ms", "percent_encode_dots"});
    else if (find(root, "upstream"))
        return;  // present but not a table: already reported

    const bool profile_ok = find(tab, "profile") == nullptr ||
                            get_enum<UpstreamProfile>(tab, "profile", "upstream.profile",
                                                      {{"azure-iot-hub", UpstreamProfile::azure_iot_hub},
                                                       {"mqtt", UpstreamProfile::mqtt}},
                                                      u.profile) != nullptr;

    std::string cs_text;
    const toml::value* cs = get_string(tab, "connection_string", "upstream.connection_string", cs_text);
    // `url`: one string, or a list of them (a cluster's nodes).
    std::vector<const toml::value*> url_values;
    if (const toml::value* v = find(tab, "url")) {
        if (v->is_array()) {
            if (v->as_array().empty()) error_at(*v, "upstream.url must not be an empty list");
            for (const auto& item : v->as_array()) {
                if (!item.is_string()) {
                    error_at(item, std::string("upstream.url entries must be strings, not ") + type_name(item));
                    continue;
                }
                u.urls.push_back(item.as_string().str);
                url_values.push_back(&item);
            }
        } else if (v->is_string()) {
            u.urls.push_back(v->as_string().str);
            url_values.push_back(v);
        } else {
            error_at(*v, std::string("upstream.url must be a string or a list of strings, not ") + type_name(*v));
        }
        if (!u.urls.empty()) u.url = u.urls.front();
    }
    const toml::value* encode_dots = get_bool(tab, "percent_encode_dots", "upstream.percent_encode_dots",
                                              u.percent_encode_dots);
    get_string(tab, "client_id", "upstream.client_id", u.client_id);
    get_string(tab, "username", "upstream.username", u.username);
    get_string(tab, "password", "upstream.password", u.password);
    get_string(tab, "ca_file", "upstream.ca_file", u.ca_file);
    get_bool(tab, "batch", "upstream.batch", u.batch);
    get_uint(tab, "max_batch_bytes", "upstream.max_batch_bytes", u.max_batch_bytes, 1024, 262144);
    get_uint(tab, "max_batch_delay_ms", "upstream.max_batch_delay_ms", u.max_batch_delay_ms, 0, 60000);
    get_uint(tab, "fast_retry_seconds", "upstream.fast_retry_seconds", u.fast_retry_seconds, 0, 86400);
    get_uint(tab, "backoff_max_ms", "upstream.backoff_max_ms", u.backoff_max_ms, 100, 3600000);
    if (!profile_ok) return;

    if (u.profile == UpstreamProfile::azure_iot_hub) {
        if (!find(tab, "connection_string")) {
            error(line, 0,
                  "upstream.connection_string is required for profile azure-iot-hub "
                  "(HostName=...;DeviceId=...;SharedAccessKey=...)");
        } else if (cs) {
            auto parsed = parse_connection_string(cs_text);
            if (!parsed) {
                error_at(*cs, "upstream.connection_string: " + parsed.error());
            } else if (!parsed->module_id.empty()) {
                // The upstream identity receives C2D, and IoT Hub modules cannot.
                error_at(*cs, "upstream.connection_string names a module (ModuleId=" + parsed->module_id +
                                  "); the upstream identity must be a device");
            } else {
                u.gateway_device_id = parsed->device_id;
                u.connection_string = std::move(*parsed);
            }
        }
        for (const char* k : {"url", "client_id", "username", "password", "percent_encode_dots"})
            if (const auto* v = find(tab, k))
                error_at(*v, std::string("upstream.") + k + " is only used by profile mqtt, not azure-iot-hub");
    } else {
        if (cs) error_at(*cs, "upstream.connection_string is only used by profile azure-iot-hub, not mqtt");
        if (!find(tab, "url")) {
            error(line, 0, "upstream.url is required for profile mqtt (tcp://host:port or ssl://host:port)");
        } else {
            std::set<std::string> seen;
            for (std::size_t i = 0; i < url_values.size(); ++i) {
                const std::string& text = u.urls[i];
                std::string why;
                const bool scheme = text.rfind("tcp://", 0) == 0 || text.rfind("ssl://", 0) == 0;
                if (!scheme)
                    error_at(*url_values[i], "upstream.url = \"" + text + "\" must start with tcp:// or ssl://");
                else if (!parse_endpoint(std::string_view(text).substr(6), why))
                    error_at(*url_values[i], "upstream.url = \"" + text + "\": the address " + why);
                else if (!seen.insert(text).second)
                    error_at(*url_values[i], "upstream.url lists \"" + text + "\" twice");
            }
        }
        if (encode_dots && u.percent_encode_dots && cfg_.gateway.id.find('.') != std::string::npos)
            error_at(*encode_dots, "upstream.percent_encode_dots needs a gateway.id without '.' (\"" +
                                       cfg_.gateway.id + "\"): the gateway's own topics carry it unencoded");
        if (u.client_id.empty()) u.client_id = cfg_.gateway.id;
        u.gateway_device_id = cfg_.gateway.id;
    }
}

void Loader::load_store(const toml::value& root) {
    const toml::value* t = section(root, "store");
    if (!t) return;
    Store& s = cfg_.store;
    check_keys(*t, "[store]", {"path", "max_bytes", "max_messages", "ttl_seconds", "on_full", "durability",
                              "commit_window_ms"});
    if (const auto* v = get_string(*t, "path", "store.path", s.path); v && s.path.empty())
        error_at(*v, "store.path must not be empty");
    get_uint(*t, "max_bytes", "store.max_bytes", s.max_bytes, 1048576);
    get_uint(*t, "max_messages", "store.max_messages", s.max_messages, 1);
    get_uint(*t, "ttl_seconds", "store.ttl_seconds", s.ttl_seconds, 60);
    get_enum<OnFull>(*t, "on_full", "store.on_full",
                     {{"drop-oldest", OnFull::drop_oldest}, {"reject-new", OnFull::reject_new}}, s.on_full);
    get_enum<Durability>(*t, "durability", "store.durability",
                         {{"power", Durability::power}, {"process", Durability::process}}, s.durability);
    get_uint(*t, "commit_window_ms", "store.commit_window_ms", s.commit_window_ms, 0, 1000);
}

void Loader::load_c2d(const toml::value& root) {
    const toml::value* t = section(root, "c2d");
    if (!t) return;
    C2d& c = cfg_.c2d;
    check_keys(*t, "[c2d]", {"queue_depth", "max_delivery_count", "default_ttl_seconds", "lock_timeout_seconds",
                             "feedback_max_records", "feedback_max_delay_ms"});
    get_uint(*t, "queue_depth", "c2d.queue_depth", c.queue_depth, 1, 10000);
    get_uint(*t, "max_delivery_count", "c2d.max_delivery_count", c.max_delivery_count, 1, 100);
    get_uint(*t, "default_ttl_seconds", "c2d.default_ttl_seconds", c.default_ttl_seconds, 1);
    get_uint(*t, "lock_timeout_seconds", "c2d.lock_timeout_seconds", c.lock_timeout_seconds, 1);
    get_uint(*t, "feedback_max_records", "c2d.feedback_max_records", c.feedback_max_records, 1, 500);
    get_uint(*t, "feedback_max_delay_ms", "c2d.feedback_max_delay_ms", c.feedback_max_delay_ms, 1);
}

void Loader::load_metrics(const toml::value& root) {
    const toml::value* t = section(root, "metrics");
    if (!t) return;
    check_keys(*t, "[metrics]", {"bind"});
    get_endpoint(*t, "bind", "metrics.bind", cfg_.metrics.bind);
}

// The instance name is a DNS-SD instance label: UTF-8 text of at most 63 bytes (RFC 6763 4.1.1),
// shown to people in browsers; `{gateway}` is the only placeholder.
void Loader::load_discovery(const toml::value& root) {
    const toml::value* t = section(root, "discovery");
    if (!t) return;
    check_keys(*t, "[discovery]", {"mdns", "instance"});
    get_bool(*t, "mdns", "discovery.mdns", cfg_.discovery.mdns);
    std::string s;
    const toml::value* v = get_string(*t, "instance", "discovery.instance", s);
    if (!v) return;
    std::string literal = s;  // without the placeholders
    for (std::size_t at; (at = literal.find("{gateway}")) != std::string::npos;) literal.erase(at, 9);
    std::string why;
    if (s.empty() || std::all_of(s.begin(), s.end(), [](char c) { return c == ' '; }))
        why = "must not be empty";
    else if (literal.find_first_of("{}") != std::string::npos)
        why = "has a brace that is not part of {gateway} (the only placeholder)";
    else if (!is_valid_utf8(s))
        why = "is not valid UTF-8";
    else if (std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        why = "has a control character";
    else if (literal.size() > 63)
        why = "is longer than 63 bytes (a DNS-SD instance name's limit)";
    if (!why.empty()) {
        error_at(*v, "discovery.instance = \"" + s + "\" " + why);
        return;
    }
    cfg_.discovery.instance = std::move(s);
}

void Loader::load_devices(const toml::value& root) {
    std::map<std::string, int> seen;  // id -> line of its first definition
    for (const toml::value* t : table_array(root, "device")) {
        Device d;
        d.line = line_of(t);
        check_keys(*t, "[[device]]", {"id", "key", "module_id", "children"});
        bool ok = true;
        if (const toml::value* v = get_string(*t, "children", "device.children", d.children)) {
            const bool printable = std::all_of(d.children.begin(), d.children.end(),
                                               [](char c) { return c > 0x20 && c < 0x7f; });
            if (d.children.empty() || d.children.size() > 256 || !printable) {
                error_at(*v, "device.children = \"" + d.children +
                                 "\" must be a glob of 1-256 printable ASCII chars without spaces (e.g. \"zb-*\")");
                ok = false;
            }
        }
        const toml::value* id = get_id(*t, "id", "device.id", d.id, "device id");
        if (!find(*t, "id")) error(d.line, 0, "device.id is required");
        ok = ok && id;

        const toml::value* key = get_string(*t, "key", "device.key", d.key);
        if (!find(*t, "key")) {
            error(d.line, 0, "device.key is required (base64 of at least 16 bytes)");
            ok = false;
        } else if (key) {
            auto bytes = base64_decode(d.key);
            if (!bytes) {
                error_at(*key, "device.key is not valid base64: " + bytes.error());
                ok = false;
            } else if (bytes->size() < 16) {
                error_at(*key, "device.key decodes to " + std::to_string(bytes->size()) +
                                   " bytes; at least 16 are required");
                ok = false;
            }
        } else {
            ok = false;
        }
        if (find(*t, "module_id") && !get_id(*t, "module_id", "device.module_id", d.module_id, "module id")) ok = false;

        if (id) {
            const auto [it, inserted] = seen.emplace(d.id, d.line);
            if (!inserted) {
                error_at(*id, "duplicate device id \"" + d.id + "\": already defined at line " +
                                  std::to_string(it->second));
                ok = false;
            }
        }
        if (ok) cfg_.devices.push_back(std::move(d));
    }
}

// [pairing] and [[enrollment]] (docs/pairing.md).
void Loader::load_pairing(const toml::value& root) {
    if (const toml::value* t = section(root, "pairing")) {
        check_keys(*t, "[pairing]", {"window_seconds"});
        get_uint(*t, "window_seconds", "pairing.window_seconds", cfg_.pairing.window_seconds, 1, 86400);
    }
    std::map<std::string, int> seen;
    for (const toml::value* t : table_array(root, "enrollment")) {
        Enrollment e;
        e.line = line_of(t);
        check_keys(*t, "[[enrollment]]", {"id", "key", "module_id", "register"});
        bool ok = true;
        const toml::value* id = get_id(*t, "id", "enrollment.id", e.id, "enrollment id");
        if (!find(*t, "id")) error(e.line, 0, "enrollment.id is required");
        ok = ok && id;
        const toml::value* key = get_string(*t, "key", "enrollment.key", e.key);
        if (!find(*t, "key")) {
            error(e.line, 0, "enrollment.key is required (the group key: base64 of at least 16 bytes)");
            ok = false;
        } else if (key) {
            auto bytes = base64_decode(e.key);
            if (!bytes) {
                error_at(*key, "enrollment.key is not valid base64: " + bytes.error());
                ok = false;
            } else if (bytes->size() < 16) {
                error_at(*key, "enrollment.key decodes to " + std::to_string(bytes->size()) +
                                   " bytes; at least 16 are required");
                ok = false;
            }
        } else {
            ok = false;
        }
        if (find(*t, "module_id") && !get_id(*t, "module_id", "enrollment.module_id", e.module_id, "module id"))
            ok = false;
        get_enum<EnrollmentRegister>(*t, "register", "enrollment.register",
                                     {{"window", EnrollmentRegister::window}, {"always", EnrollmentRegister::always}},
                                     e.register_mode);
        if (id) {
            const auto [it, inserted] = seen.emplace(e.id, e.line);
            if (!inserted) {
                error_at(*id, "duplicate enrollment id \"" + e.id + "\": already defined at line " +
                                  std::to_string(it->second));
                ok = false;
            }
        }
        if (ok) cfg_.enrollments.push_back(std::move(e));
    }
}

void Loader::load_rules(const toml::value& root) {
    const auto tables = table_array(root, "rule");
    std::size_t index = 0;
    for (const toml::value* t : tables) {
        ++index;
        translate::RuleSpec r;
        r.line = line_of(t);
        check_keys(*t, "[[rule]]",
                   {"name", "listeners", "topic", "path", "format", "device", "module", "properties", "time", "field",
                    "c2d_topic", "on_decode_error"});
        r.name = "rule-" + std::to_string(index);
        get_string(*t, "name", "rule.name", r.name);
        if (const toml::value* v = find(*t, "listeners")) {
            if (!v->is_array()) {
                error_at(*v, "rule.listeners must be an array of listener names, not " + std::string(type_name(*v)));
            } else {
                for (const auto& item : v->as_array()) {
                    if (item.is_string())
                        r.listeners.push_back(item.as_string().str);
                    else
                        error_at(item, "rule.listeners entries must be strings (listener names), not " +
                                           std::string(type_name(item)));
                }
            }
        }
        r.topic_line = line_of(get_string(*t, "topic", "rule.topic", r.topic));
        if (const int l = line_of(get_string(*t, "path", "rule.path", r.path)); l && !r.topic_line) r.topic_line = l;
        get_string(*t, "format", "rule.format", r.format);
        r.device_line = line_of(get_string(*t, "device", "rule.device", r.device));
        r.module_line = line_of(get_string(*t, "module", "rule.module", r.module));
        r.time_line = line_of(get_string(*t, "time", "rule.time", r.time));
        r.field_line = line_of(get_string(*t, "field", "rule.field", r.field));
        r.c2d_topic_line = line_of(get_string(*t, "c2d_topic", "rule.c2d_topic", r.c2d_topic));
        get_string(*t, "on_decode_error", "rule.on_decode_error", r.on_decode_error);
        if (const toml::value* v = find(*t, "properties")) {
            r.properties_line = line_of(v);
            if (!v->is_table()) {
                error_at(*v, "rule.properties must be a table (properties = { name = \"template\" }), not " +
                                 std::string(type_name(*v)));
            } else {
                // toml11 keeps tables unordered: restore the order in which they are written.
                std::vector<std::pair<const std::string*, const toml::value*>> items;
                for (const auto& [k, pv] : v->as_table()) items.emplace_back(&k, &pv);
                std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
                    const auto la = a.second->location(), lb = b.second->location();
                    return std::make_pair(la.line(), la.column()) < std::make_pair(lb.line(), lb.column());
                });
                for (const auto& [k, pv] : items) {
                    if (!pv->is_string())
                        error_at(*pv, "rule.properties." + *k + " must be a string (a template), not " +
                                          type_name(*pv));
                    else
                        r.properties.emplace_back(*k, pv->as_string().str);
                }
            }
        }
        // A rule for MQTT topics may not name a CoAP listener, nor a CoAP path rule an MQTT one.
        for (const std::string& name : r.listeners) {
            for (const Listener& l : cfg_.listeners) {
                if (l.name != name) continue;
                const bool udp = l.protocol == Protocol::coap || l.protocol == Protocol::coaps;
                if (!r.topic.empty() && udp)
                    error(r.line, 0, "rule " + r.name + " has a topic (MQTT) but names listener \"" + name +
                                         "\", a " + to_string(l.protocol) + " listener (use path for CoAP)");
                if (!r.path.empty() && !udp)
                    error(r.line, 0, "rule " + r.name + " has a path (CoAP) but names listener \"" + name +
                                         "\", a " + to_string(l.protocol) + " listener (use topic for MQTT)");
            }
        }
        cfg_.rules.push_back(std::move(r));
    }
    if (cfg_.rules.empty()) return;
    std::vector<std::string> listener_names;
    for (const Listener& l : cfg_.listeners)
        if (!l.name.empty()) listener_names.push_back(l.name);
    std::vector<translate::CompileError> errors;
    translate::RuleSet::compile(cfg_.rules, listener_names, cfg_.gateway.id, errors);
    for (auto& e : errors) error(e.line, 0, std::move(e.what));
}

void Loader::resolve_paths() {
    // data_dir is relative to the config file's directory, so a config and its data can move together.
    std::error_code ec;
    fs::path config_dir = fs::path(file_).parent_path();
    fs::path abs = fs::absolute(config_dir.empty() ? fs::path(".") : config_dir, ec);
    if (ec) abs = config_dir;
    const std::string data_dir = resolve(abs, cfg_.gateway.data_dir);
    cfg_.gateway.data_dir = data_dir;
    cfg_.store.path = resolve(data_dir, cfg_.store.path);
    cfg_.upstream.ca_file = resolve(data_dir, cfg_.upstream.ca_file);
    for (Listener& l : cfg_.listeners) {
        l.tls_cert = resolve(data_dir, l.tls_cert);
        l.tls_key = resolve(data_dir, l.tls_key);
    }
}

LoadResult Loader::run(const std::string& text) {
    LoadResult result;
    toml::value root;
    try {
        std::istringstream in(text);
        root = toml::parse(in, file_);
    } catch (const toml::exception& e) {
        result.errors.push_back(syntax_error_to_config_error(file_, e));
        return result;
    }

    cfg_.file = file_;
    check_keys(root, "the top level",
               {"gateway", "listener", "upstream", "store", "c2d", "metrics", "discovery", "device", "rule",
                "pairing", "enrollment"});
    load_gateway(root);  // first: upstream defaults (client_id, {gw}) come from gateway.id
    load_listeners(root);
    load_upstream(root);
    load_store(root);
    load_c2d(root);
    load_metrics(root);
    load_discovery(root);
    load_devices(root);
    load_pairing(root);
    load_rules(root);
    resolve_paths();

    // File order; errors about something missing from the whole file (line 0) come last.
    std::stable_sort(errors_.begin(), errors_.end(), [](const Pending& a, const Pending& b) {
        const auto key = [](const Pending& p) {
            return std::make_pair(p.error.line == 0 ? std::numeric_limits<int>::max() : p.error.line, p.column);
        };
        return key(a) < key(b);
    });
    for (auto& p : errors_) result.errors.push_back(std::move(p.error));
    if (result.errors.empty()) result.config = std::move(cfg_);
    return result;
}

}  // namespace

LoadResult load_config(const std::string& path) {
    std::string text;
    int err = 0;
    if (!read_file(path, text, err)) {
        LoadResult r;
        r.errors.push_back(ConfigError{path, 0, std::string("cannot read: ") + std::strerror(err)});
        return r;
    }
    try {
        return Loader(path).run(text);
    } catch (const std::exception& e) {
        // Never throw to the caller; a toml11 surprise still ends as a readable refusal.
        LoadResult r;
        r.errors.push_back(ConfigError{path, 0, std::string("cannot load: ") + e.what()});
        return r;
    }
}

}  // namespace hubgate::config
