"""Small helpers shared by every stage: atomic file output, logging, threads."""
