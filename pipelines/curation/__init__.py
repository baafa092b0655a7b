"""`lvd curate`: raw videos in, clip shards out, on Ray Data.

In: INPUT arguments (files, folders, globs, list files) and a CurateConfig.
Out: OUT/videos and OUT/clips Parquet shards (one row per input file, one per clip),
committed atomically and resumable, and OUT/run.json.
Uses common/ and the curate/ library (analysis in an isolated child process per video,
model stages as Ray actors).
"""
