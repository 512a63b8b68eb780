// The `cbor` decoder (RFC 8949 §6.1 conversion to JSON): not written yet.
#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

Decoded decode_cbor(const DecodeInput&) {
    return failure(DecodeStatus::unsupported_format, "the cbor decoder is not available yet");
}

}  // namespace hubgate::translate::detail
