// (tests come here)
