"""`lvd export`: a run's clips as mp4 files in the layouts other trainers read.

In: a curated or filtered run folder (local or a URI). Out: clip files plus a manifest
(clips.parquet, Open-Sora's CSV, CogVideoX's prompts.txt/videos.txt) or WebDataset tars.
"""
