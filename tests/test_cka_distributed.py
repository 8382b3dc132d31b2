"""MinibatchCKA.sync() on a real two-process gloo group (CPU): CKA over a distributed
evaluation equals CKA of one process that saw every batch."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from corrlib.similarity import MinibatchCKA

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")


def _layers(n: int = 360) -> list[torch.Tensor]:
    """Three related 'layers' of the same n samples (the last a conv-like map)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64) + 1.0
    h = torch.relu(x @ torch.randn(6, 10, generator=g, dtype=torch.float64))
    maps = (h @ torch.randn(10, 2 * 3 * 3, generator=g, dtype=torch.float64)).view(n, 2, 3, 3)
    return [x, h, maps]


def _feed(acc: MinibatchCKA, layers: list[torch.Tensor], batch_ids: list[int], dtype, pair: bool):
    for b in batch_ids:
        batch = [layer[b * 30 : (b + 1) * 30].to(dtype) for layer in layers]
        if pair:
            acc.update(batch[0], batch[2])
        else:
            acc.update(batch)
    return acc


def _worker(rank: int, world: int, init_file: str, shards: list, dtype, pair: bool, out) -> None:
    # a file rendezvous: no TCP port to race for with tests running in parallel
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = _feed(MinibatchCKA(), _layers(), shards[rank], dtype, pair)
        acc.sync()
        out[rank] = (acc.n_batches, acc.n_samples, acc.compute())
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("shards", "dtype", "pair"),
    [
        ([[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 11]], torch.float64, False),
        ([[], list(range(12))], torch.float32, True),  # an empty rank takes the others' form
    ],
)
def test_synced_cka_equals_one_process_over_all_batches(shards, dtype, pair, tmp_path):
    manager = mp.Manager()
    out = manager.dict()
    mp.start_processes(
        _worker,
        args=(2, str(tmp_path / "rendezvous"), shards, dtype, pair, out),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    expected = _feed(MinibatchCKA(), _layers(), list(range(12)), dtype, pair).compute()
    for rank in range(2):
        n_batches, n_samples, cka = out[rank]
        assert (n_batches, n_samples) == (12, 360)
        assert cka.dtype == dtype and cka.shape == expected.shape
        torch.testing.assert_close(cka, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(out[0][2], out[1][2])  # identical on every rank
    if not pair:
        assert 0.2 < float(expected[0, 2]) < 0.99  # a non-trivial value
