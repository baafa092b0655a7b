"""Processes, devices and parallel wrappers for the trainer.

`lvd train` runs as one process by default and as N data-parallel processes under
`torchrun` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT, on
one node or many). DDP replicates the trained network; FSDP2 (`fully_shard`, one unit
per DiT block plus the root, as torchtitan does) shards weights, gradients and
optimizer state for models whose training state does not fit one GPU. Full state
dicts for checkpoints are gathered with torch.distributed.checkpoint's helpers, which
work for plain, DDP and FSDP modules alike.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from pipelines.common.errors import UsageError

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass
class Dist:
    """This process's place: rank, world size, local rank and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce(self, tensor: torch.Tensor, op: str = "mean") -> torch.Tensor:
        """Mean, sum, min or max over ranks (in place, and returned)."""
        if not self.enabled:
            return tensor
        if op == "mean":
            dist.all_reduce(tensor, dist.ReduceOp.SUM)
            return tensor.div_(self.world_size)
        dist.all_reduce(tensor, getattr(dist.ReduceOp, op.upper()))
        return tensor

    def broadcast_object(self, value):
        """rank 0's value on every rank (for small Python objects)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def resolve_device(setting: str, local_rank: int) -> torch.device:
    if setting == "auto":
        setting = "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda":
        setting = f"cuda:{local_rank}"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {setting} asked for, but CUDA is not available")
    return torch.device(setting)


def init_distributed(device_setting: str) -> Dist:
    """Read torchrun's environment and start the process group (NCCL on GPUs, gloo on
    CPUs); a plain `lvd train` is world size 1 and starts nothing."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    device = resolve_device(device_setting, local_rank)
    if world_size > 1 and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if name not in os.environ:
                raise UsageError(f"WORLD_SIZE is {world_size} but {name} is not set (use torchrun)")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        # long timeout: rank 0 alone writes checkpoints and sample videos
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=60))
        if device.type == "cpu":
            # processes on one machine share its cores; torchrun leaves OMP at 1 otherwise
            local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    return Dist(rank, world_size, local_rank, device)


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def choose_sharding(setting: str, d: Dist, num_params: int) -> str:
    """'none' for one process; else ddp or fsdp ('auto': fsdp when weights, gradients and
    AdamW moments in float32, 16 bytes per parameter, pass 40% of one GPU)."""
    if not d.enabled:
        return "none"
    if setting != "auto":
        return setting
    if d.device.type != "cuda":
        return "ddp"
    total = torch.cuda.get_device_properties(d.device).total_memory
    return "fsdp" if 16 * num_params > 0.4 * total else "ddp"


def wrap(root: nn.Module, d: Dist, sharding: str, shard_units: list[nn.Module]) -> nn.Module:
    """The module the training step calls: `root` itself, DDP(root), or root sharded in
    place with FSDP2 (each of `shard_units`, then the root)."""
    if sharding == "none":
        return root
    if sharding == "ddp":
        ids = [d.device.index] if d.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(root, device_ids=ids)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy()
    if d.device.type == "cuda":
        # bf16 compute and all-gathers, float32 gradient reduction (torchtitan's default)
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for unit in shard_units:
        fully_shard(unit, mp_policy=policy)
    fully_shard(root, mp_policy=policy)
    return root


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def full_state_dict(root: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """Every rank calls this; it returns the full CPU weights under `prefix` (stripped),
    on rank 0 (other ranks get them too unless the model is sharded)."""
    state = get_model_state_dict(unwrap(root), options=_FULL)
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def optimizer_state(root: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's full state keyed by parameter name (collective under FSDP)."""
    return get_optimizer_state_dict(unwrap(root), optimizer, options=_FULL)


def load_optimizer_state(root: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    set_optimizer_state_dict(
        unwrap(root), optimizer, state, options=StateDictOptions(full_state_dict=True)
    )
