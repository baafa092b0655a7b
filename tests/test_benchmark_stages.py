"""benchmarks/stages.py compares variants at equal DiT compute: check its arithmetic."""

from benchmarks.stages import EXTRA, VARIANTS, schedules, stage_tokens
from pipelines.training.config import small


def test_every_variant_spends_the_small_presets_dit_compute():
    cfg = small()
    tokens = {n: stage_tokens(cfg, n) for n in ("image", "video", "hq")}
    # 32x32 through the 4x VAE and 2x2 patches: 4x4 tokens a latent frame; 9 frames -> 3;
    # and the caption's 12 tokens
    assert tokens == {"image": 32 * (16 + 12), "video": 16 * (48 + 12), "hq": 16 * (48 + 12)}
    plan = schedules()
    assert set(plan) == {*VARIANTS, *EXTRA}
    assert plan["staged"] == {n: getattr(cfg, n).steps for n in tokens}
    budget = sum(plan["staged"][n] * tokens[n] for n in tokens)
    for steps in plan.values():
        spent = sum(steps[n] * tokens[n] for n in tokens)
        assert abs(spent - budget) <= tokens["video"] / 2  # within half a video step
    assert plan["image-video"]["image"] == cfg.image.steps and plan["video"]["image"] == 0
