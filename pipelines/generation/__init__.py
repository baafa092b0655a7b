"""`lvd generate`: videos from a trained model folder.

In: a training run, checkpoint or model folder; prompts; optional first and last frames.
Out: H.264 mp4 files with a JSON sidecar or run.json.
Uses common/ and training/ (its config, text encoder and the prompts-to-video loop).
"""
