"""RunningCorrelation.sync() on a real two-process gloo group (CPU)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import corrlib

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")


def _worker(
    rank: int, world: int, init_file: str, data: torch.Tensor, sizes: list, dtype, out
) -> None:
    # a file rendezvous: no TCP port to race for with tests running in parallel
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        shard = torch.split(data, sizes)[rank]
        rc = corrlib.RunningCorrelation(data.shape[1], dtype=dtype)
        for batch in shard.split(7):
            rc.update(batch)
        rc.sync()
        out[rank] = (rc.n, rc.compute(), rc.mean.clone())
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(("sizes", "dtype"), [([40, 25], torch.float64), ([0, 30], None)])
def test_sync_pools_every_rank(sizes, dtype, tmp_path):
    g = torch.Generator().manual_seed(0)
    data = torch.randn(sum(sizes), 4, generator=g, dtype=torch.float64) + 3.0
    manager = mp.Manager()
    out = manager.dict()
    mp.start_processes(
        _worker,
        args=(2, str(tmp_path / "rendezvous"), data, sizes, dtype, out),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    expected = corrlib.corr_matrix(data)
    for rank in range(2):
        n, r, mean = out[rank]
        assert n == sum(sizes)
        assert r.dtype == torch.float64  # an empty rank takes the dtype of the others' data
        torch.testing.assert_close(r, expected)
        torch.testing.assert_close(mean, data.mean(0))
    assert torch.equal(out[0][1], out[1][1])  # identical on every rank


def _sync_unsync_worker(rank: int, world: int, init_file: str, data: torch.Tensor, out) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        shard = data.split(30)[rank]
        rc = corrlib.RunningCorrelation(data.shape[1]).update(shard)
        acc = corrlib.similarity.MinibatchCKA()
        for b in shard.split(10):
            acc.update(b, b[:, :2] ** 2)
        local = (rc.compute(), acc.compute())
        results = {}
        for name, stat in (("rc", rc), ("cka", acc)):
            stat.sync()
            try:
                stat.sync()  # a second sync would count every row twice
                results[name + " second sync"] = "no error"
            except RuntimeError as error:
                results[name + " second sync"] = str(error)
            results[name + " synced"] = stat.compute()
            stat.unsync()
            results[name + " unsynced"] = stat.compute()
        results["n"] = (rc.n, acc.n_samples)
        results["local"] = local
        rc.sync()  # after unsync, syncing again gives the global state again
        results["n again"] = rc.n
        out[rank] = results
    finally:
        dist.destroy_process_group()


def test_sync_twice_raises_and_unsync_restores_the_local_state(tmp_path):
    g = torch.Generator().manual_seed(1)
    data = torch.randn(60, 4, generator=g, dtype=torch.float64) + 2.0
    manager = mp.Manager()
    out = manager.dict()
    mp.start_processes(
        _sync_unsync_worker,
        args=(2, str(tmp_path / "rendezvous"), data, out),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    whole_cka = corrlib.similarity.MinibatchCKA()
    for b in data.split(10):
        whole_cka.update(b, b[:, :2] ** 2)
    for rank in range(2):
        r = out[rank]
        assert "synced already" in r["rc second sync"] and "synced already" in r["cka second sync"]
        torch.testing.assert_close(r["rc synced"], corrlib.corr_matrix(data))
        torch.testing.assert_close(r["cka synced"], whole_cka.compute(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(r["rc unsynced"], r["local"][0], rtol=0, atol=0)
        torch.testing.assert_close(r["cka unsynced"], r["local"][1], rtol=0, atol=0)
        assert r["n"] == (30, 30) and r["n again"] == 60
