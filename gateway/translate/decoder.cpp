// Placeholder: replaced by the decoders.
#include "gateway/translate/decoder.hpp"
