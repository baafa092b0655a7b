"""What every command shares: config loading, errors, run.json, progress, Ray start-up,
and the run folder's shards.

In: presets, YAML/TOML files and `key=value` overrides; a folder to record into.
Out: typed configs, one-line UsageErrors, run.json, atomic Parquet shards.
Uses no other part of pipelines/.
"""
