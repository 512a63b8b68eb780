// Reads a real payload from tests/data/ (tests/data/README.md cites each file's source) for the
// translation stage's tests.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace hubgate::test {

// `relative` is under tests/data/, e.g. "tasmota/tele_SENSOR_pow.json"; the bytes as stored.
inline std::string payload(const std::string& relative) {
    const std::string path = std::string(HUBGATE_SOURCE_DIR "/tests/data/") + relative;
    std::ifstream f(path, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "missing test payload " << path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace hubgate::test
