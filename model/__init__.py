"""lvd's latent video diffusion model: plain nn.Modules and small functions.

Public API (import from the submodules named):

    model.config      ModelConfig(vae=VAEConfig, dit=DiTConfig, text_encoder=TextEncoderConfig,
                      diffusion=DiffusionConfig); PRESETS / preset(name) for tiny, small,
                      base, large, xl
    model.config_dict  from_dict(cls, dict) / to_dict(cfg): the one config converter,
                      checked by type; ConfigError
    model.vae         VAE(cfg.vae)
                        .encode(video) -> latents   video (B, 3, T, H, W) in [-1, 1],
                                                    T = 1 + 4k, H and W divisible by 8;
                                                    latents (B, 16, 1 + k, H/8, W/8), scaled
                        .decode(latents) -> video   chunked in time, tiled when large
                        .forward(video) -> (recon, posterior)   training pass
                        .latent_shape(frames, height, width), .num_frames(latent_frames)
                      check_frames(num_frames, temporal_downsample);
                      estimate_scaling_factor(vae, videos) after VAE training
    model.vae_loss    vae_loss(vae, video) -> (loss, logs, recon); Perceptual,
                      PatchDiscriminator3d, discriminator_loss
    model.dit         DiT(cfg.dit)(x_t, t, text_emb, text_mask, cond=None, fps=None,
                      motion_score=None) -> velocity like x_t; .drop_text, .null_text_batch
    model.conditioning  Cond(latents, mask (B, T_lat)); frame_mask(task, T_lat);
                      random_cond(latents, probs)
    model.text_encoder  TextEncoder(cfg.text_encoder)(prompts) -> (emb (B, L, dim),
                      mask (B, L)); TextEncoderError
    model.diffusion   flow_matching_loss(dit, x0, text_emb, text_mask, cfg.diffusion,
                      generator=, reduction='elements'|'samples') -> (loss, logs);
                      generator may be one CPU generator per sample (data parallelism);
                      sample_timesteps, add_noise, timestep_shift
    model.sampler     sample(dit, vae, text_emb, text_mask, frames=, height=, width=,
                      steps=, cfg_scale=, seed=, method='euler'|'heun', cond=) -> video;
                      sample_latents(...); encode_given_frames(vae, frames, T_lat, task)
    model.precision   autocast(device, precision): the one bf16 policy
    model.checkpoint  save_model(dir, config, vae=, dit=); load_model(dir) ->
                      LatentVideoModel(config, vae, dit); load_config(dir)
    model.flops       model_stats(preset_or_config, frames, height, width) -> params and
                      FLOPs per sample; dit_forward_flops(cfg, grid, text_len)

Typical use (the trainer and `lvd generate`):

    cfg = preset("small")
    vae, dit = VAE(cfg.vae), DiT(cfg.dit)
    text = TextEncoder(cfg.text_encoder)
    emb, mask = text(["a red ball rolls left"])
    loss, logs = flow_matching_loss(dit, vae.encode(video), emb, mask, cfg.diffusion)
    video = sample(dit, vae, emb, mask, frames=17, height=64, width=64, seed=0)
    save_model("runs/t1/final", cfg, vae=vae, dit=dit)

This package imports neither curate/ nor pipelines/ nor Ray.
"""
