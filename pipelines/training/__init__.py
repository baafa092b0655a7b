"""`lvd train`: the VAE, then the DiT in Stable Video Diffusion's stages, on clip shards.

In: a curated or filtered run folder (its clips, selected per stage by selection's
rules) and a TrainConfig.
Out: RUN/checkpoints (exact resume), RUN/vae and RUN/final model folders (safetensors +
config.json, as model.checkpoint reads them), metrics.jsonl, sample videos, run.json.
command.py resolves the config and starts the Trainer (trainer.py: the loop); the
networks (networks.py) and the trainer's counters are handed to the Checkpointer.
Uses common/, selection/ and model/.
"""
