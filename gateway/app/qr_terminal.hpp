// A QR code drawn with Unicode half blocks for a terminal: `hubgate devices add --qr` shows a
// device's connection string for phone-based setup. libqrencode does the encoding.
#pragma once

#include <string>
#include <string_view>

#include "gateway/model/result.hpp"

namespace hubgate::app {

// Two modules per character row, a 2-module quiet zone; light modules are drawn (for the usual
// dark terminal background), so the code scans as printed there.
Result<std::string> qr_terminal(std::string_view text);

}  // namespace hubgate::app
