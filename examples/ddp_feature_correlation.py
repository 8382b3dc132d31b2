"""DistributedDataParallel training on the digits, with hidden-feature correlations pooled
across ranks by :meth:`corrlib.RunningCorrelation.sync`.

Run it on two CPU processes (gloo backend)::

    torchrun --standalone --nproc_per_node=2 examples/ddp_feature_correlation.py --out results_ddp

and the same training in one process, for comparison::

    python examples/ddp_feature_correlation.py --single --out results_one

Rank 0 (or the single process) writes to ``--out``:

* ``results.json``: settings, per-epoch training loss, the mean absolute off-diagonal
  correlation of the hidden features seen during each epoch, the final validation loss and
  accuracy, and a checksum of the final parameters;
* ``params.pt``: the final ``state_dict`` of the model;
* ``hidden_corr.npy``: the correlation matrix of the hidden features over the validation set.

Why the two runs agree
----------------------
Each rank holds a full copy of the model (DDP broadcasts rank 0's initial parameters), draws
its own share of every global batch through :class:`~torch.utils.data.DistributedSampler`, and
computes the *mean* loss over that share. During ``backward()`` DDP all-reduces the gradients
and divides them by the number of ranks, so every rank applies the mean of the per-rank
gradients. That equals the gradient of the mean loss over the whole global batch only when
the shares are the same size, which this script guarantees: the number of training samples
is a multiple of the global batch size, and the global batch size a multiple of the number
of ranks. (With unequal shares, the rank-average of means is a weighted mean, not the batch
mean.)

The global batches are the same in both modes: ``DistributedSampler`` shuffles with
``torch.randperm`` seeded by ``seed + epoch`` (independent of the number of ranks) and deals
the permutation out round-robin, so that the union of the ranks' ``k``-th local batches is
exactly the ``k``-th block of ``global_batch_size`` indices of the permutation, which is what
one process with ``num_replicas=1`` draws. The two runs therefore differ only by the order of
floating-point sums (about 1e-7 relative per step in float32).

BatchNorm layers would break the equality (each rank would normalise with its own share's
statistics; use ``nn.SyncBatchNorm`` on GPUs), and so would dropout with per-rank random
streams; the model here has neither.

On a GPU cluster the same code runs with ``--backend nccl`` (one process per GPU, set
``--nnodes`` and the rendezvous options of ``torchrun``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import corrlib
from corrlib.data import load_digits_images
from corrlib.models import MLP
from corrlib.summaries import mean_abs_offdiag

N_TRAIN = 1440  # a multiple of the global batch size: every rank gets the same share


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (rank 0 writes)")
    parser.add_argument("--single", action="store_true", help="one process, no torch.distributed")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--global-batch-size", type=int, default=96)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    return parser.parse_args(argv)


def load_data(seed: int) -> tuple[TensorDataset, TensorDataset]:
    """Digits as flat vectors in [0, 1]; a fixed random split of 1440 training samples."""
    images, labels = load_digits_images()
    x = images.flatten(1)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, val = order[:N_TRAIN], order[N_TRAIN:]
    return TensorDataset(x[train], labels[train]), TensorDataset(x[val], labels[val])


def setup(args: argparse.Namespace) -> tuple[int, int, torch.device]:
    """Initialise the process group (torchrun sets the environment); return rank, world, device."""
    if args.single:
        return 0, 1, torch.device("cpu")
    dist.init_process_group(backend=args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device


def all_reduce_sum(values: list[float], device: torch.device, distributed: bool) -> list[float]:
    """Sum a few numbers over the ranks (identity in a single process)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if distributed:
        dist.all_reduce(t)
    return t.tolist()


def shutdown() -> None:
    """Leave the process group cleanly, once every rank is done.

    The DDP wrapper holds the process group; if it were destroyed only at interpreter exit,
    after ``destroy_process_group``, gloo's threads could be torn down in the wrong order (we
    saw occasional aborts, "terminate called without an active exception", with PyTorch 2.14).
    So: wait for all ranks, collect the training objects, then destroy the group.
    """
    dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def run(args: argparse.Namespace) -> dict | None:
    """Set up, train, shut down; the results on rank 0 (``None`` on the other ranks)."""
    rank, world, device = setup(args)
    result = train(args, rank, world, device)
    if not args.single:
        shutdown()
    return result


def train(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> dict | None:
    """Train, evaluate, and return the results on rank 0 (``None`` on the other ranks)."""
    distributed = not args.single
    if args.global_batch_size % world or N_TRAIN % args.global_batch_size:
        raise ValueError(
            f"the global batch size ({args.global_batch_size}) must be a multiple of the number "
            f"of ranks ({world}) and divide the {N_TRAIN} training samples"
        )
    # Same seed on every rank: the same initial model (DDP would broadcast rank 0's anyway).
    corrlib.seed_everything(args.seed, num_threads=1)
    train_set, val_set = load_data(args.seed)

    model = MLP(64, hidden=(args.hidden,), out_features=10, activation=nn.Tanh).to(device)
    net = DistributedDataParallel(model) if distributed else model
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()  # the mean over this rank's share of the batch

    sampler = DistributedSampler(
        train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=True
    )
    loader = DataLoader(
        train_set,
        batch_size=args.global_batch_size // world,
        sampler=sampler,
        num_workers=0,
        drop_last=True,
    )

    # Hidden features (output of the first activation) captured by a forward hook.
    captured: dict[str, torch.Tensor] = {}
    model.act1.register_forward_hook(lambda mod, inp, out: captured.__setitem__("h", out))
    running = corrlib.RunningCorrelation(args.hidden, dtype=torch.float64, device=device)

    history: dict[str, list[float]] = {"train_loss": [], "hidden_offdiag": []}
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        running.reset()
        loss_sum, count = 0.0, 0
        net.train()
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(inputs), targets)
            loss.backward()  # DDP: gradients all-reduced and divided by world here
            optimizer.step()
            running.update(captured["h"].detach())
            loss_sum += loss.item() * len(targets)
            count += len(targets)
        running.sync()  # pool the moments of all ranks: the features of the whole epoch
        loss_sum, count = all_reduce_sum([loss_sum, count], device, distributed)
        history["train_loss"].append(loss_sum / count)
        history["hidden_offdiag"].append(float(mean_abs_offdiag(running.compute())))

    # Evaluation: each rank takes every world-th validation sample (no padding, no duplicates).
    net.eval()
    x_val, y_val = val_set.tensors
    x_val, y_val = x_val[rank::world].to(device), y_val[rank::world].to(device)
    running.reset()
    with torch.no_grad():
        logits = model(x_val)
        running.update(captured["h"])
        val = [
            nn.functional.cross_entropy(logits, y_val, reduction="sum").item(),
            (logits.argmax(1) == y_val).sum().item(),
            len(y_val),
        ]
    running.sync()
    val_loss_sum, correct, n_val = all_reduce_sum(val, device, distributed)
    corr = running.compute()

    result = None
    if rank == 0:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        result = {
            "mode": "single" if args.single else "ddp",
            "world_size": world,
            "backend": None if args.single else args.backend,
            "epochs": args.epochs,
            "global_batch_size": args.global_batch_size,
            "n_train": N_TRAIN,
            "n_val": int(n_val),
            **history,
            "val_loss": val_loss_sum / n_val,
            "val_accuracy": correct / n_val,
            "param_checksum": float(sum(v.double().abs().sum() for v in state.values())),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save(state, args.out / "params.pt")
        np.save(args.out / "hidden_corr.npy", corr.cpu().numpy())
        (args.out / "results.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if result is not None:
        print(
            f"{result['mode']} (world size {result['world_size']}): "
            f"final train loss {result['train_loss'][-1]:.3f}, "
            f"val accuracy {result['val_accuracy']:.3f}, "
            f"hidden mean |r| {result['hidden_offdiag'][-1]:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
