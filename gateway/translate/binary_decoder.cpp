// The `binary` decoder: the bytes stay bytes (content type application/octet-stream), whatever the
// Content-Format said.
#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

Decoded decode_binary(const DecodeInput& in) {
    Decoded d;
    d.is_json = false;
    d.body.assign(in.bytes.data(), in.bytes.size());
    return d;
}

}  // namespace hubgate::translate::detail
