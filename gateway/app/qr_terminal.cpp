#include "gateway/app/qr_terminal.hpp"

#include <qrencode.h>

#include <memory>

namespace hubgate::app {

Result<std::string> qr_terminal(std::string_view text) {
    const std::string input(text);
    // Error correction M (15 %): a connection string of ~150 bytes fits version 8 or so.
    std::unique_ptr<QRcode, decltype(&QRcode_free)> qr(QRcode_encodeString8bit(input.c_str(), 0, QR_ECLEVEL_M),
                                                       &QRcode_free);
    if (!qr) return Error{"cannot encode a QR code for that text"};
    constexpr int kQuiet = 2;
    const int w = qr->width;
    const int size = w + 2 * kQuiet;
    // Dark module -> false. Outside the symbol: the light quiet zone.
    auto light = [&](int x, int y) {
        x -= kQuiet;
        y -= kQuiet;
        if (x < 0 || y < 0 || x >= w || y >= w) return true;
        return (qr->data[y * w + x] & 1) == 0;
    };
    std::string out;
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; ++x) {
            const bool top = light(x, y);
            const bool bottom = y + 1 < size ? light(x, y + 1) : false;
            out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
        }
        out += '\n';
    }
    return out;
}

}  // namespace hubgate::app
