// A translation rule as written in the config file ([[rule]] tables), before compilation. Plain
// strings, so config/ can hold them without knowing the rule engine; compile() in rule_set.hpp
// checks them (check-config reports its errors with FILE:LINE).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hubgate::translate {

struct RuleSpec {
    std::string name;                    // default: "rule-<n>" (1-based position)
    std::vector<std::string> listeners;  // listener names; empty = every listener
    std::string topic;                   // MQTT pattern, or
    std::string path;                    // CoAP pattern (exactly one of topic/path is set)
    std::string format = "json";         // json | cbor | senml | text | binary | auto
    std::string device;                  // template; empty = the connection's authenticated id
    std::string module;                  // template; empty = the device's, else the listener's module
    std::vector<std::pair<std::string, std::string>> properties;  // name -> template, in file order
    std::string time;                    // JSON pointer; empty = none
    std::string field;                   // template, text format only
    std::string c2d_topic;               // template; empty = IoT Hub's devicebound topic
    std::string on_decode_error = "raw";  // raw | refuse
    // Lines for errors: the [[rule]] table, and each key where it is written (0 = not written).
    int line = 0;
    int topic_line = 0, device_line = 0, module_line = 0, properties_line = 0, time_line = 0, field_line = 0,
        c2d_topic_line = 0;
};

}  // namespace hubgate::translate
