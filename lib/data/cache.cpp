// Placeholder: replaced by the real code.
#include "dyad/data.h"
