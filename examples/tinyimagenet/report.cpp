// Placeholder.
#include "report.h"
