// The `senml` decoder (RFC 8428 resolved records): not written yet.
#include "gateway/translate/decoders.hpp"

namespace hubgate::translate::detail {

Decoded decode_senml(const DecodeInput&, SenmlEncoding, bool) {
    return failure(DecodeStatus::unsupported_format, "the senml decoder is not available yet");
}

}  // namespace hubgate::translate::detail
