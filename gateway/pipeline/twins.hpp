// The seam through which device adapters reach device twins (docs/twins.md), like IngestSink for
// messages: adapters know topics, not SQLite or JSON merging. gateway/twins implements it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace hubgate {

// An answer as IoT Hub gives it: status 200 (GET, body = the twin document; get_desired: the desired
// document with `$version`, version = that version), 204 (reported patch
// committed, version = the reported version), or an error status with a JSON error body.
struct TwinAnswer {
    int status = 200;
    std::string body;
    std::int64_t version = 0;
};

class TwinSink {
public:
    virtual ~TwinSink() = default;
    // `done` runs on another thread (the store's writer) once the read or the commit finished.
    virtual void get_twin(const std::string& device_id, std::function<void(TwinAnswer)> done) = 0;
    virtual void update_reported(const std::string& device_id, std::string patch,
                                 std::function<void(TwinAnswer)> done) = 0;
    // The desired document alone, with `$version` (status 200; CoAP's GET of .../twin/desired).
    virtual void get_desired(const std::string& device_id, std::function<void(TwinAnswer)> done) = 0;
};

}  // namespace hubgate
