#include "gateway/translate/pattern.hpp"

#include <algorithm>
#include <limits>

namespace hubgate::translate {
namespace {

bool is_name_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// The pattern or topic text whose '/'-separated segments are matched: a CoAP path without its
// leading '/'.
std::size_t segments_start(std::string_view text, PatternSyntax syntax) noexcept {
    return syntax == PatternSyntax::coap_path && !text.empty() && text[0] == '/' ? 1 : 0;
}

}  // namespace

int Pattern::capture_index(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < captures.size(); ++i)
        if (captures[i] == name) return static_cast<int>(i);
    return -1;
}

bool is_reserved_capture_name(std::string_view name) noexcept {
    return name == "gateway" || name == "client" || name == "prop";
}

bool parse_pattern(std::string_view text, PatternSyntax syntax, Pattern& out, std::string& why) {
    out = Pattern{};
    out.text.assign(text);
    out.syntax = syntax;
    const bool coap = syntax == PatternSyntax::coap_path;
    if (text.empty()) {
        why = coap ? "the path is empty; write it with its leading '/', e.g. /sensors/{device}"
                   : "the topic is empty";
        return false;
    }
    if (coap && text[0] != '/') {
        why = "a CoAP path starts with '/', e.g. /sensors/{device}";
        return false;
    }
    if (text.size() > std::numeric_limits<std::uint32_t>::max() / 2) {
        why = "the pattern is too long";
        return false;
    }
    const std::string_view body = text.substr(segments_start(text, syntax));
    std::size_t start = 0;
    while (true) {
        const auto slash = body.find('/', start);
        const auto segment = body.substr(start, slash == std::string_view::npos ? body.npos : slash - start);
        const bool last = slash == std::string_view::npos;
        const std::string shown(segment);

        if (segment.find_first_of("+#") != std::string_view::npos) {
            why = "'" + shown + "': MQTT wildcards (+, #) are not patterns; capture a level with {name}, " +
                  "the rest of the topic with a final {name*}";
            return false;
        }
        const bool braces = segment.find_first_of("{}") != std::string_view::npos;
        if (braces) {
            if (segment.size() < 3 || segment.front() != '{' || segment.back() != '}' ||
                segment.find_first_of("{}", 1) != segment.size() - 1) {
                why = "'" + shown + "': a capture is a whole segment, {name} or a final {name*}";
                return false;
            }
            auto name = segment.substr(1, segment.size() - 2);
            bool rest = false;
            if (name.back() == '*') {
                rest = true;
                name.remove_suffix(1);
                if (!last) {
                    why = "'" + shown + "': a {name*} capture must be the last segment";
                    return false;
                }
            }
            if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char)) {
                why = "'" + shown + "': a capture name is ASCII letters, digits and '_'";
                return false;
            }
            if (is_reserved_capture_name(name)) {
                why = "'" + shown + "': the capture name '" + std::string(name) +
                      "' is reserved (gateway, client and prop are placeholders of their own)";
                return false;
            }
            if (out.capture_index(name) >= 0) {
                why = "'" + shown + "': the capture name '" + std::string(name) + "' is used twice";
                return false;
            }
            out.captures.emplace_back(name);
            out.segments.push_back({rest ? PatternSegment::Kind::rest : PatternSegment::Kind::capture,
                                    std::string(name)});
        } else {
            out.segments.push_back({PatternSegment::Kind::literal, shown});
        }
        if (last) break;
        start = slash + 1;
    }
    return true;
}

void PatternTree::add(const Pattern& pattern, std::uint32_t rule) {
    std::uint32_t at = 0;
    for (const auto& segment : pattern.segments) {
        switch (segment.kind) {
        case PatternSegment::Kind::literal: {
            auto& literals = nodes_[at].literals;
            auto it = std::lower_bound(literals.begin(), literals.end(), segment.text,
                                       [](const auto& entry, const std::string& s) { return entry.first < s; });
            if (it != literals.end() && it->first == segment.text) {
                at = it->second;
            } else {
                const auto child = static_cast<std::uint32_t>(nodes_.size());
                literals.insert(it, {segment.text, child});
                nodes_.emplace_back();  // after the insert: `literals` refers into nodes_
                at = child;
            }
            break;
        }
        case PatternSegment::Kind::capture:
            if (nodes_[at].capture == 0) {
                const auto child = static_cast<std::uint32_t>(nodes_.size());
                nodes_.emplace_back();
                nodes_[at].capture = child;
            }
            at = nodes_[at].capture;
            break;
        case PatternSegment::Kind::rest:
            nodes_[at].rest_rules.push_back(rule);
            ++size_;
            return;
        }
    }
    nodes_[at].rules.push_back(rule);
    ++size_;
}

std::uint32_t PatternTree::literal_child(const Node& node, std::string_view segment) const noexcept {
    const auto& literals = node.literals;
    auto it = std::lower_bound(literals.begin(), literals.end(), segment,
                               [](const auto& entry, std::string_view s) { return std::string_view(entry.first) < s; });
    return it != literals.end() && it->first == segment ? it->second : 0;
}

void PatternTree::record(const std::vector<std::uint32_t>& rules, const TopicSpan* rest, Scratch& s) const {
    // Patterns that end at the same node have the same captures: one block serves them all.
    const auto first = static_cast<std::uint32_t>(s.captures.size());
    s.captures.insert(s.captures.end(), s.stack.begin(), s.stack.end());
    if (rest) s.captures.push_back(*rest);
    const auto count = static_cast<std::uint32_t>(s.captures.size()) - first;
    for (auto rule : rules) s.matches.push_back({rule, first, count});
}

void PatternTree::walk(std::uint32_t at, std::size_t segment, std::string_view topic, Scratch& s) const {
    const Node& node = nodes_[at];
    // MQTT keeps wildcards off a first level such as $SYS; the same goes for leading captures.
    const bool dollar_first = segment == 0 && syntax_ == PatternSyntax::mqtt_topic && !topic.empty() &&
                              topic[0] == '$';
    if (!node.rest_rules.empty() && !dollar_first) {
        const TopicSpan rest =
            segment < s.segments.size()
                ? TopicSpan{s.segments[segment].begin,
                            static_cast<std::uint32_t>(topic.size()) - s.segments[segment].begin}
                : TopicSpan{static_cast<std::uint32_t>(topic.size()), 0};
        record(node.rest_rules, &rest, s);
    }
    if (segment == s.segments.size()) {
        if (!node.rules.empty()) record(node.rules, nullptr, s);
        return;
    }
    const TopicSpan here = s.segments[segment];
    if (!node.literals.empty())
        if (const auto child = literal_child(node, here.in(topic)); child != 0) walk(child, segment + 1, topic, s);
    if (node.capture != 0 && here.size > 0 && !dollar_first) {
        s.stack.push_back(here);
        walk(node.capture, segment + 1, topic, s);
        s.stack.pop_back();
    }
}

void PatternTree::match(std::string_view topic, Scratch& s) const {
    s.segments.clear();
    s.stack.clear();
    s.matches.clear();
    s.captures.clear();
    if (size_ == 0 || topic.size() >= std::numeric_limits<std::uint32_t>::max()) return;

    std::size_t start = segments_start(topic, syntax_);
    while (true) {
        const auto slash = topic.find('/', start);
        const auto end = slash == std::string_view::npos ? topic.size() : slash;
        s.segments.push_back({static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(end - start)});
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    walk(0, 0, topic, s);
    // The walk finds matches in tree order; rules are tried in file order. In place, no allocation.
    std::sort(s.matches.begin(), s.matches.end(), [](const Match& a, const Match& b) { return a.rule < b.rule; });
}

}  // namespace hubgate::translate
