// Placeholder: replaced by the rule engine.
#include "gateway/translate/rule_set.hpp"
