// Placeholder.
#include "trainer.h"
