#include "gateway/model/hub_message.hpp"

#include <algorithm>

namespace hubgate {

void AppProperties::set(std::string name, std::optional<std::string> value) {
    for (auto& p : items_) {
        if (p.name == name) {
            p.value = std::move(value);
            return;
        }
    }
    items_.push_back(AppProperty{std::move(name), std::move(value)});
}

const AppProperty* AppProperties::find(std::string_view name) const noexcept {
    for (const auto& p : items_)
        if (p.name == name) return &p;
    return nullptr;
}

std::optional<std::optional<std::string>> AppProperties::erase(std::string_view name) {
    auto it = std::find_if(items_.begin(), items_.end(), [&](const AppProperty& p) { return p.name == name; });
    if (it == items_.end()) return std::nullopt;
    auto value = std::move(it->value);
    items_.erase(it);
    return value;
}

std::size_t hub_size(const HubMessage& m) noexcept {
    const auto& s = m.system;
    std::size_t n = m.body.size() + s.message_id.size() + s.correlation_id.size() + s.user_id.size() +
                    s.content_type.size() + s.content_encoding.size() + s.creation_time.size() +
                    s.absolute_expiry_time.size() + s.to.size();
    for (const auto& p : m.properties) n += p.name.size() + (p.value ? p.value->size() : 0);
    return n;
}

}  // namespace hubgate
