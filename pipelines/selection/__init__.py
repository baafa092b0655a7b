"""`lvd filter` and `lvd report`: which curated clips to keep, and what a run holds.

In: a curated (or filtered) run folder and rules (thresholds, percentile cuts,
near-duplicate removal).
Out: a filtered run folder with the same layout, and a self-contained HTML report.
The rules module is what training stages select their clips with, too. Uses common/.
"""
