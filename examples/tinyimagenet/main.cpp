// dyad-tinyimagenet.
#include "trainer.h"
int main() { return 0; }
