"""Stage 10: the RESULTS.md report, from what stages 1-9 wrote (``collect``), with the
strategies compared by time-to-target (``compare``) and written out (``render``)."""
