// Topic and path patterns of translation rules (DESIGN.md "Translation rules"), and the segment
// tree that matches one topic against every rule's pattern in a single walk (STYLE.md: mosquitto's
// subscription tree). Built once per rule set; matching allocates nothing once its scratch is warm.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hubgate::translate {

// MQTT topics split on '/'; CoAP paths are written and matched with their leading '/' (the
// segments are what follows it: "/sensors/t1" -> sensors, t1).
enum class PatternSyntax : std::uint8_t { mqtt_topic, coap_path };

struct PatternSegment {
    enum class Kind : std::uint8_t { literal, capture, rest };
    Kind kind = Kind::literal;
    std::string text;  // the literal segment, or the capture's name
};

struct Pattern {
    std::string text;  // as written
    PatternSyntax syntax = PatternSyntax::mqtt_topic;
    std::vector<PatternSegment> segments;
    std::vector<std::string> captures;  // capture names in pattern order (a final {name*} last)

    // The capture's position in `captures`, or -1.
    int capture_index(std::string_view name) const noexcept;
};

// Capture names that templates use for other things.
bool is_reserved_capture_name(std::string_view name) noexcept;

// Parses "tele/{device}/SENSOR", "homie/{device}/$state", "x/{rest*}", "/sensors/{device}".
//  - `{name}` is one whole, non-empty segment; a final `{name*}` is zero or more segments;
//    names are [A-Za-z0-9_]+, unique, and not gateway/client/prop.
//  - Literal segments may be empty ("/home/{device}" has an empty first level, as MQTT allows) and
//    may hold '$'; '+', '#' and braces that are not a whole capture are errors.
// On error returns false and says why in `why` (a sentence for check-config).
bool parse_pattern(std::string_view text, PatternSyntax syntax, Pattern& out, std::string& why);

// A piece of the matched topic: [begin, begin + size).
struct TopicSpan {
    std::uint32_t begin = 0;
    std::uint32_t size = 0;
    std::string_view in(std::string_view topic) const noexcept { return topic.substr(begin, size); }
};

class PatternTree {
public:
    struct Match {
        std::uint32_t rule = 0;           // the number the pattern was added with
        std::uint32_t first_capture = 0;  // into Scratch::captures
        std::uint32_t capture_count = 0;  // = the pattern's captures().size()
    };

    // Buffers a caller keeps per thread and hands to every match(): they keep their capacity, so
    // a warm match allocates nothing.
    struct Scratch {
        std::vector<TopicSpan> segments;
        std::vector<TopicSpan> stack;
        std::vector<Match> matches;       // after match(): every matching rule, ascending
        std::vector<TopicSpan> captures;  // the matches' capture values, in pattern order
    };

    explicit PatternTree(PatternSyntax syntax = PatternSyntax::mqtt_topic) : syntax_(syntax) {}

    // Adds a pattern (of this tree's syntax) for rule number `rule`; each rule at most once.
    void add(const Pattern& pattern, std::uint32_t rule);
    bool empty() const noexcept { return size_ == 0; }

    // Every rule whose pattern matches `topic`, in ascending rule number (file order), with its
    // captures. MQTT: as in subscriptions, a first level that starts with '$' is matched only by a
    // literal, never by a leading {capture} or {rest*} (keeps catch-alls off $SYS-like topics).
    void match(std::string_view topic, Scratch& scratch) const;

private:
    struct Node {
        std::vector<std::pair<std::string, std::uint32_t>> literals;  // sorted by segment -> node
        std::uint32_t capture = 0;                                    // child for {name}; 0 = none
        std::vector<std::uint32_t> rules;       // patterns that end here
        std::vector<std::uint32_t> rest_rules;  // patterns whose final {name*} starts here
    };

    std::uint32_t literal_child(const Node& node, std::string_view segment) const noexcept;
    void walk(std::uint32_t node, std::size_t segment, std::string_view topic, Scratch& s) const;
    void record(const std::vector<std::uint32_t>& rules, const TopicSpan* rest, Scratch& s) const;

    PatternSyntax syntax_;
    std::vector<Node> nodes_ = std::vector<Node>(1);  // nodes_[0] is the root (never a child)
    std::size_t size_ = 0;
};

}  // namespace hubgate::translate
