#include "gateway/translate/rule_set.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "gateway/model/validation.hpp"
#include "gateway/translate/decoder.hpp"
#include "gateway/translate/json_pointer.hpp"
#include "gateway/translate/pattern.hpp"
#include "gateway/translate/template.hpp"

namespace hubgate::translate {
namespace {

constexpr std::string_view kDecodeErrorProperty = "decode-error";
constexpr std::string_view kSourceContentTypeProperty = "source-content-type";
constexpr std::size_t kMaxShownChars = 64;
constexpr std::size_t kMaxTopicBytes = 65535;  // MQTT's UTF-8 string limit

// Device-controlled text in a reason (topics, ids): printable ASCII only, one readable line.
std::string shown(std::string_view text) { return shown_text(text, kMaxShownChars); }

// --- reading time ---------------------------------------------------------------------------------

constexpr std::int64_t kMinTimeMs = -62135596800000;  // 0001-01-01T00:00:00Z
constexpr std::int64_t kMaxTimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z
constexpr double kMillisecondsAbove = 1e11;           // DESIGN.md: larger numbers are epoch ms

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, exact for all years).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

bool is_leap(std::int64_t y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
    static constexpr std::array<unsigned, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

// `YYYY-MM-DDTHH:MM:SS[.fff]Z`; the fraction only when the milliseconds are not zero.
bool format_time(std::int64_t ms, std::string& out) {
    if (ms < kMinTimeMs || ms > kMaxTimeMs) return false;
    std::int64_t days = ms / 86400000;
    std::int64_t rest = ms % 86400000;
    if (rest < 0) {
        rest += 86400000;
        --days;
    }
    std::int64_t y = 0;
    unsigned mo = 0, d = 0;
    civil_from_days(days, y, mo, d);
    const auto sec = rest / 1000;
    const auto milli = rest % 1000;
    char buf[32];
    int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", static_cast<long long>(y), mo, d,
                          static_cast<long long>(sec / 3600), static_cast<long long>(sec / 60 % 60),
                          static_cast<long long>(sec % 60));
    if (milli != 0) n += std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), ".%03lld", static_cast<long long>(milli));
    out.assign(buf, static_cast<std::size_t>(n));
    out.push_back('Z');
    return true;
}

bool digits(std::string_view s, std::size_t at, std::size_t n, int& value) noexcept {
    if (at + n > s.size()) return false;
    value = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        value = value * 10 + (s[i] - '0');
    }
    return true;
}

// ISO 8601 / RFC 3339 date-time: YYYY-MM-DD('T'|' ')HH:MM[:SS[.fraction]][Z|±HH[:MM]|±HHMM].
// Without a zone the time is taken as UTC (Tasmota's "Time" is local time without a zone; the
// gateway cannot know the device's zone). Fractions are cut to milliseconds.
bool parse_iso_time(std::string_view s, std::int64_t& ms) noexcept {
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!digits(s, 0, 4, year) || s.size() < 5 || s[4] != '-' || !digits(s, 5, 2, month) || s.size() < 8 ||
        s[7] != '-' || !digits(s, 8, 2, day))
        return false;
    if (s.size() < 11 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ')) return false;
    if (!digits(s, 11, 2, hour) || s.size() < 14 || s[13] != ':' || !digits(s, 14, 2, minute)) return false;
    std::size_t pos = 16;
    if (pos < s.size() && s[pos] == ':') {
        if (!digits(s, pos + 1, 2, second)) return false;
        pos += 3;
    }
    int milli = 0;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        const auto start = ++pos;
        int scale = 100;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            milli += (s[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start) return false;
    }
    if (year < 1 || month < 1 || month > 12 || day < 1 ||
        static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month)) || hour > 23 ||
        minute > 59 || second > 59)
        return false;
    std::int64_t offset_minutes = 0;
    const auto zone = s.substr(pos);
    if (zone == "Z" || zone == "z" || zone.empty()) {
        // UTC, or no zone: taken as UTC
    } else if (zone[0] == '+' || zone[0] == '-') {
        int oh = 0, om = 0;
        if (!digits(zone, 1, 2, oh)) return false;
        if (zone.size() == 6 && zone[3] == ':') {
            if (!digits(zone, 4, 2, om)) return false;
        } else if (zone.size() == 5) {
            if (!digits(zone, 3, 2, om)) return false;
        } else if (zone.size() != 3) {
            return false;
        }
        if (oh > 23 || om > 59) return false;
        offset_minutes = (zone[0] == '+' ? 1 : -1) * (oh * 60 + om);
    } else {
        return false;
    }
    const auto days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    ms = ((days * 86400 + hour * 3600 + minute * 60 + second) - offset_minutes * 60) * 1000 + milli;
    return true;
}

// DESIGN.md "Reading time": an ISO-8601 string, or epoch seconds (milliseconds above 10^11).
bool reading_time(const nlohmann::json& v, std::string& out) {
    std::int64_t ms = 0;
    switch (v.type()) {
    case nlohmann::json::value_t::string:
        if (!parse_iso_time(v.get_ref<const std::string&>(), ms)) return false;
        break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: {
        if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxTimeMs)) return false;
        const auto n = v.get<std::int64_t>();
        if (n > static_cast<std::int64_t>(kMillisecondsAbove))
            ms = n;
        else if (n >= kMinTimeMs / 1000)
            ms = n * 1000;
        else
            return false;
        break;
    }
    case nlohmann::json::value_t::number_float: {
        double x = v.get<double>();
        if (!std::isfinite(x)) return false;
        if (x <= kMillisecondsAbove) x *= 1000;
        if (x < static_cast<double>(kMinTimeMs) || x > static_cast<double>(kMaxTimeMs)) return false;
        ms = static_cast<std::int64_t>(std::floor(x + 0.5));
        break;
    }
    default:
        return false;
    }
    return format_time(ms, out);
}

}  // namespace

// --- compiled rules -------------------------------------------------------------------------------

struct Rule {
    std::string name;
    int line = 0;
    Transport transport = Transport::mqtt;
    std::vector<std::string> listeners;  // empty = every listener (named or not)
    Pattern pattern;
    Format format = Format::json;
    bool refuse_on_decode_error = false;
    std::optional<Template> device, module, field, c2d_topic;
    std::vector<std::pair<std::string, Template>> properties;
    std::optional<JsonPointer> time;
    bool want_doc = false;  // a {json:} template or `time`: ask the decoder for the parsed value

    bool applies_on(std::string_view listener) const noexcept {
        if (listeners.empty()) return true;
        for (const auto& l : listeners)
            if (l == listener) return true;
        return false;
    }
};

struct RuleSet::Impl {
    std::string gateway_id;
    std::vector<Rule> rules;  // file order
    std::array<PatternTree, 2> trees{PatternTree(PatternSyntax::mqtt_topic), PatternTree(PatternSyntax::coap_path)};
    std::unordered_map<std::string, std::size_t> by_name;

    const PatternTree& tree(Transport t) const noexcept { return trees[t == Transport::coap ? 1 : 0]; }
};

const char* to_string(Verdict v) noexcept {
    switch (v) {
    case Verdict::accepted: return "accepted";
    case Verdict::unmatched: return "unmatched";
    case Verdict::refused_decode: return "refused_decode";
    case Verdict::refused_format: return "refused_format";
    case Verdict::spoof: return "spoof";
    case Verdict::bad_device_id: return "bad_device_id";
    }
    return "unknown";
}

RuleSet::RuleSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleSet::~RuleSet() = default;

bool RuleSet::empty() const noexcept { return impl_->rules.empty(); }

bool RuleSet::names_listener(std::string_view listener, Transport t) const noexcept {
    for (const auto& r : impl_->rules)
        if (r.transport == t && r.applies_on(listener)) return true;
    return false;
}

std::shared_ptr<const RuleSet> RuleSet::compile(const std::vector<RuleSpec>& specs,
                                                const std::vector<std::string>& listener_names,
                                                const std::string& gateway_id, std::vector<CompileError>& errors) {
    auto impl = std::make_unique<Impl>();
    impl->gateway_id = gateway_id;
    impl->rules.reserve(specs.size());
    const auto errors_before = errors.size();
    std::unordered_map<std::string, int> name_lines;

    for (std::size_t i = 0; i < specs.size(); ++i) {
        const RuleSpec& spec = specs[i];
        Rule r;
        r.name = spec.name.empty() ? "rule-" + std::to_string(i + 1) : spec.name;
        r.line = spec.line;
        bool ok = true;
        auto error = [&](int key_line, std::string what) {
            errors.push_back({key_line != 0 ? key_line : spec.line, "rule '" + r.name + "': " + what});
            ok = false;
        };

        if (auto [it, fresh] = name_lines.emplace(r.name, spec.line); !fresh)
            error(0, "the name is already used by the rule " +
                         (it->second != 0 ? "at line " + std::to_string(it->second) : std::string("before it")) +
                         "; rule names must be unique (C2D finds a device's rule by its name)");

        for (const auto& l : spec.listeners) {
            bool known = false;
            for (const auto& n : listener_names) known = known || n == l;
            if (!known) error(0, "listeners: no [[listener]] is named '" + l + "'");
        }
        r.listeners = spec.listeners;

        const auto format = parse_format(spec.format);
        if (!format)
            error(0, "format '" + spec.format + "' is not one of json, cbor, senml, text, binary, auto");
        else
            r.format = *format;

        if (spec.on_decode_error == "refuse")
            r.refuse_on_decode_error = true;
        else if (spec.on_decode_error != "raw")
            error(0, "on_decode_error '" + spec.on_decode_error + "' is not raw or refuse");

        // The pattern: its captures are what the templates may use, so they are checked only
        // when it parses (else every capture placeholder would be a second, misleading error).
        bool have_pattern = false;
        if (spec.topic.empty() == spec.path.empty()) {
            error(spec.topic_line, spec.topic.empty() ? "set topic (an MQTT pattern) or path (a CoAP pattern)"
                                                      : "set topic (MQTT) or path (CoAP), not both");
        } else {
            const bool coap = !spec.path.empty();
            r.transport = coap ? Transport::coap : Transport::mqtt;
            std::string why;
            if (parse_pattern(coap ? spec.path : spec.topic, coap ? PatternSyntax::coap_path : PatternSyntax::mqtt_topic,
                              r.pattern, why))
                have_pattern = true;
            else
                error(spec.topic_line, std::string(coap ? "path" : "topic") + " '" + (coap ? spec.path : spec.topic) +
                                           "': " + why);
        }

        const bool binary = format && *format == Format::binary;
        auto compile = [&](const std::string& text, const char* key, int key_line, TemplateContext context,
                           std::optional<Template>& out) {
            if (text.empty() || !have_pattern) return;
            context.captures = &r.pattern.captures;
            context.pattern = r.pattern.text;
            Template t;
            std::string why;
            if (!Template::compile(text, context, t, why)) {
                error(key_line, std::string(key) + " '" + text + "': " + why);
                return;
            }
            if (t.uses_json() && binary) {
                error(key_line, std::string(key) + " '" + text + "': {json:...} needs a JSON body; format binary has none");
                return;
            }
            out = std::move(t);
        };

        compile(spec.device, "device", spec.device_line, {}, r.device);
        compile(spec.module, "module", spec.module_line, {}, r.module);
        // Literal ids are checked now rather than refusing every message later.
        for (auto [t, key, key_line] : {std::tuple{&r.device, "device", spec.device_line},
                                        std::tuple{&r.module, "module", spec.module_line}}) {
            if (*t && (*t)->is_literal() && !is_hub_id((*t)->text()))
                error(key_line, std::string(key) + " '" + (*t)->text() + "' is not an IoT Hub id (" + kHubIdRule + ")");
        }

        for (const auto& [name, value] : spec.properties) {
            if (auto bad = check_app_property_name(name)) {
                error(spec.properties_line, "properties: " + bad->reason);
                continue;
            }
            if (name == kDecodeErrorProperty || name == kSourceContentTypeProperty) {
                error(spec.properties_line, "properties: '" + name + "' is set by the gateway");
                continue;
            }
            bool twice = false;
            for (const auto& p : r.properties) twice = twice || p.first == name;
            if (twice) {
                error(spec.properties_line, "properties: '" + name + "' is set twice");
                continue;
            }
            std::optional<Template> t;
            if (value.empty()) {
                t.emplace();  // an empty value is a value: "key="
            } else {
                compile(value, ("properties." + name).c_str(), spec.properties_line, {}, t);
                if (!t) continue;
            }
            r.properties.emplace_back(name, std::move(*t));
        }

        if (!spec.field.empty()) {
            if (format && *format != Format::text)
                error(spec.field_line, "field applies to format text only (this rule's format is " + spec.format + ")");
            TemplateContext context;
            context.json = false;
            compile(spec.field, "field", spec.field_line, context, r.field);
        }

        if (!spec.time.empty()) {
            JsonPointer pointer;
            std::string why;
            if (!JsonPointer::parse(spec.time, pointer, why))
                error(spec.time_line, "time '" + spec.time + "': " + why);
            else if (binary)
                error(spec.time_line, "time '" + spec.time + "': a time pointer needs a JSON body; format binary has none");
            else
                r.time = std::move(pointer);
        }

        if (!spec.c2d_topic.empty()) {
            if (r.transport == Transport::coap && have_pattern) {
                error(spec.c2d_topic_line, "c2d_topic applies to MQTT rules (topic), not CoAP paths");
            } else {
                TemplateContext context;
                context.json = false;
                context.client = false;
                context.prop = true;
                compile(spec.c2d_topic, "c2d_topic", spec.c2d_topic_line, context, r.c2d_topic);
                if (r.c2d_topic)
                    for (const auto& piece : r.c2d_topic->pieces())
                        if (piece.kind == TemplatePiece::Kind::literal &&
                            piece.text.find_first_of("+#") != std::string::npos) {
                            error(spec.c2d_topic_line, "c2d_topic '" + spec.c2d_topic +
                                                           "': an MQTT topic a message is sent on has no wildcards (+, #)");
                            break;
                        }
            }
        }

        r.want_doc = r.time.has_value() || (r.device && r.device->uses_json()) || (r.module && r.module->uses_json());
        for (const auto& p : r.properties) r.want_doc = r.want_doc || p.second.uses_json();
        if (ok) impl->rules.push_back(std::move(r));
    }
    if (errors.size() != errors_before) return nullptr;

    for (std::size_t i = 0; i < impl->rules.size(); ++i) {
        const Rule& r = impl->rules[i];
        impl->trees[r.transport == Transport::coap ? 1 : 0].add(r.pattern, static_cast<std::uint32_t>(i));
        impl->by_name.emplace(r.name, i);
    }
    return std::shared_ptr<const RuleSet>(new RuleSet(std::move(impl)));
}

// --- translation ----------------------------------------------------------------------------------

namespace {

// Rules tried in turn often share a format: decode once per (format, field, doc wanted).
struct DecodeCache {
    bool filled = false;
    Format format = Format::json;
    std::string field;
    bool doc = false;
    Decoded decoded;

    const Decoded& get(Format f, const std::string& wrap_field, bool want_doc, const Inbound& in) {
        if (filled && format == f && field == wrap_field && (doc || !want_doc)) return decoded;
        DecodeInput input;
        input.bytes = in.payload;
        input.content_format = in.content_format;
        input.receive_ms = in.receive_ms;
        input.field = wrap_field;
        input.want_doc = want_doc;
        decoded = decode(f, input);
        filled = true;
        format = f;
        field = wrap_field;
        doc = want_doc;
        return decoded;
    }
};

std::string describe_miss(const Rule& r, const char* key, const TemplatePiece* piece) {
    return "rule '" + r.name + "' matched but {json:" + (piece ? piece->pointer.text() : std::string()) + "} in " +
           key + " names no string or number in the body";
}

}  // namespace

Translation RuleSet::translate(const Inbound& in, const ChildPolicy& children) const {
    // Per-thread buffers keep their capacity: a warm match allocates nothing.
    thread_local PatternTree::Scratch scratch;
    thread_local std::vector<std::string_view> captures;

    Translation t;
    const Impl& im = *impl_;
    im.tree(in.transport).match(in.topic, scratch);
    const std::string_view client = in.auth_device.empty() ? in.client_id : in.auth_device;
    DecodeCache cache;
    std::string field;

    for (const auto& m : scratch.matches) {
        const Rule& r = im.rules[m.rule];
        if (!r.applies_on(in.listener)) continue;
        captures.clear();
        for (std::uint32_t k = 0; k < m.capture_count; ++k)
            captures.push_back(scratch.captures[m.first_capture + k].in(in.topic));
        TemplateValues values;
        values.captures = captures.data();
        values.capture_count = captures.size();
        values.client = client;
        values.gateway = im.gateway_id;

        field.clear();
        if (r.field) (void)r.field->render(values, field);
        const Decoded& d = cache.get(r.format, field, r.want_doc, in);
        const bool raw = d.status != DecodeStatus::ok;
        if (raw && r.refuse_on_decode_error) {
            t.verdict = d.status == DecodeStatus::unsupported_format ? Verdict::refused_format : Verdict::refused_decode;
            t.rule = r.name;
            // Adapters and logs put "rule NAME" before a reason; a decode reason is the decoder's.
            t.reason = std::string("format ") + to_string(r.format) + ": " + d.reason;
            return t;
        }
        values.doc = !raw && d.has_doc ? &d.doc : nullptr;

        // Templates that need the body fall back when it was kept raw (DESIGN.md): the device and
        // module to the connection's, a property is left out.
        HubMessage& msg = t.message;
        msg = HubMessage{};
        const TemplatePiece* failed = nullptr;
        const bool device_templated = r.device && !(raw && r.device->uses_json());
        if (!device_templated)
            msg.device_id.assign(client);
        else if (r.device->render(values, msg.device_id, &failed) != RenderStatus::ok) {
            if (t.reason.empty()) t.reason = describe_miss(r, "device", failed);
            continue;
        }
        const bool module_templated = r.module && !(raw && r.module->uses_json());
        if (!module_templated)
            msg.module_id.assign(in.default_module);
        else if (r.module->render(values, msg.module_id, &failed) != RenderStatus::ok) {
            if (t.reason.empty()) t.reason = describe_miss(r, "module", failed);
            continue;
        }
        if (const auto n = r.properties.size() + (in.query ? in.query->size() : 0); n != 0) msg.properties.reserve(n + 1);
        bool missed = false;
        for (const auto& [name, value_template] : r.properties) {
            if (raw && value_template.uses_json()) continue;
            std::string value;
            if (value_template.render(values, value, &failed) != RenderStatus::ok) {
                if (t.reason.empty()) t.reason = describe_miss(r, ("properties." + name).c_str(), failed);
                missed = true;
                break;
            }
            msg.properties.set(name, std::move(value));
        }
        if (missed) continue;

        // This rule is the one: whatever follows is its verdict.
        t.rule = r.name;
        t.reason.clear();
        if (!is_hub_id(msg.device_id) || (module_templated && !is_hub_id(msg.module_id))) {
            const bool device_bad = !is_hub_id(msg.device_id);
            t.verdict = Verdict::bad_device_id;
            t.reason = "rule '" + r.name + "' gives " + (device_bad ? "device" : "module") + " id '" +
                       shown(device_bad ? msg.device_id : msg.module_id) + "', which is not an IoT Hub id (" +
                       kHubIdRule + ")";
            msg = HubMessage{};
            return t;
        }

        if (in.query)
            for (const auto& p : *in.query)
                if (!msg.properties.find(p.name)) msg.properties.set(p.name, p.value);

        if (raw) {
            msg.body.assign(in.payload);
            msg.system.content_type = "application/octet-stream";
            msg.properties.set(std::string(kDecodeErrorProperty), d.reason);
            t.decode_error = true;
            t.reason = std::string("format ") + to_string(r.format) + ": " + d.reason;
        } else {
            if (r.time) {
                const nlohmann::json* at = values.doc ? r.time->resolve(*values.doc) : nullptr;
                if (!at || !reading_time(*at, msg.system.creation_time)) {
                    msg.system.creation_time.clear();
                    t.time_ignored = true;
                }
            }
            if (d.is_json) {
                msg.system.content_type = "application/json";
                msg.system.content_encoding = "utf-8";
                if (!d.source_content_type.empty())
                    msg.properties.set(std::string(kSourceContentTypeProperty), std::string(d.source_content_type));
            } else {
                msg.system.content_type = "application/octet-stream";
            }
            msg.body = std::move(cache.decoded.body);
        }

        t.route.rule = r.name;
        t.route.captures.reserve(captures.size());
        for (std::size_t k = 0; k < captures.size(); ++k)
            t.route.captures.emplace_back(r.pattern.captures[k], captures[k]);

        // Last: `children` is the caller's code and the per-thread buffers are no longer needed.
        if (!in.auth_device.empty() && msg.device_id != in.auth_device &&
            !(children && children(in.auth_device, msg.device_id))) {
            t.verdict = Verdict::spoof;
            t.reason = "rule '" + r.name + "' gives device '" + shown(msg.device_id) +
                       "' but the connection is device '" + shown(in.auth_device) +
                       "', which may not speak for it (no children glob of its own matches)";
            msg = HubMessage{};
            t.route = Route{};
            t.decode_error = false;
            t.time_ignored = false;
            return t;
        }
        t.verdict = Verdict::accepted;
        return t;
    }

    t.message = HubMessage{};
    t.verdict = Verdict::unmatched;
    if (t.reason.empty())
        t.reason = "no rule for " + std::string(in.transport == Transport::coap ? "path '" : "topic '") +
                   shown(in.topic) + "'" + (in.listener.empty() ? "" : " on listener '" + shown(in.listener) + "'");
    return t;
}

std::optional<Result<std::string>> RuleSet::c2d_topic(const Route& route, const HubMessage& c2d) const {
    const auto it = impl_->by_name.find(route.rule);
    if (it == impl_->by_name.end()) return std::nullopt;
    const Rule& r = impl_->rules[it->second];
    if (!r.c2d_topic) return std::nullopt;

    std::vector<std::string_view> captures;
    captures.reserve(r.pattern.captures.size());
    for (const auto& name : r.pattern.captures) {
        const std::pair<std::string, std::string>* found = nullptr;
        for (const auto& c : route.captures)
            if (c.first == name) found = &c;
        if (!found)
            return Result<std::string>(Error{"rule '" + r.name + "' needs the capture '" + name +
                                             "' for its c2d_topic, which the device's remembered route lacks (the "
                                             "rule changed since its last message)"});
        captures.push_back(found->second);
    }
    TemplateValues values;
    values.captures = captures.data();
    values.capture_count = captures.size();
    values.gateway = impl_->gateway_id;
    values.props = &c2d.properties;
    std::string topic;
    const TemplatePiece* failed = nullptr;
    if (r.c2d_topic->render(values, topic, &failed) != RenderStatus::ok)
        return Result<std::string>(Error{"C2D message has no application property '" +
                                         (failed ? failed->text : std::string()) + "' that rule '" + r.name +
                                         "' needs for its c2d_topic"});
    if (topic.empty() || topic.size() > kMaxTopicBytes || topic.find_first_of(std::string_view("+#\0", 3)) != std::string::npos)
        return Result<std::string>(Error{"rule '" + r.name + "' renders the c2d_topic '" + shown(topic) +
                                         "', which is not an MQTT topic name (empty, too long, or with +, # or NUL)"});
    return Result<std::string>(std::move(topic));
}

}  // namespace hubgate::translate
