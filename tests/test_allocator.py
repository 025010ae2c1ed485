"""The caching allocator: reuse, statistics, empty_cache, the out-of-memory path,
and torch.ocl's memory functions built on it."""

import contextlib
import gc

import numpy as np
import pytest
import torch

from oclcore import runtime

MiB = 1 << 20
IDLE_MIN = 4096  # allocations after which an unrequested size counts as idle (allocator.c)


@pytest.fixture
def dev():
    d = runtime.device(0)
    gc.collect()
    d.synchronize()
    return d


@contextlib.contextmanager
def memory_limit(dev, extra, empty_cache=True):
    """Lets the allocator reserve only ``extra`` bytes beyond what it holds now (after emptying its
    cache, so that no cached block can serve the request)."""
    if empty_cache:
        dev.empty_cache()
    dev.memory_limit = dev.memory_stats()["reserved_bytes"] + extra
    try:
        yield
    finally:
        dev.memory_limit = 0


def test_freed_block_is_reused(dev):
    b = dev.alloc(100_000)
    handle = b.handle
    del b
    before = dev.memory_stats()
    b = dev.alloc(100_000)
    after = dev.memory_stats()
    assert after["cache_hits"] == before["cache_hits"] + 1
    assert after["segments_created"] == before["segments_created"]
    assert after["reserved_bytes"] == before["reserved_bytes"]
    assert b.handle == handle


def test_a_loop_of_the_same_sizes_creates_no_buffers_after_its_first_step(dev):
    sizes = [100_000, 3000, 250_000, 700, 1_500_000, 64, 9 * MiB]
    for step in range(3):
        if step == 1:
            s1 = dev.memory_stats()
        bufs = [dev.alloc(n) for n in sizes]
        del bufs[1], bufs[3]
        bufs += [dev.alloc(n) for n in sizes[:3]]
        del bufs
    s2 = dev.memory_stats()
    assert s2["segments_created"] == s1["segments_created"]
    assert s2["cache_hits"] - s1["cache_hits"] == 2 * (len(sizes) + 3)


def test_statistics_track_allocations_and_frees(dev):
    s0 = dev.memory_stats()
    bufs = [dev.alloc(n) for n in (1, 1000, 5000, 3 * MiB + 5)]
    s1 = dev.memory_stats()
    held = sum(b.capacity for b in bufs)
    assert all(b.capacity >= b.nbytes for b in bufs)
    assert s1["allocated_bytes"] - s0["allocated_bytes"] == held
    assert s1["requested_bytes"] - s0["requested_bytes"] == 1 + 1000 + 5000 + 3 * MiB + 5
    assert s1["allocations"] - s0["allocations"] == 4
    assert s1["reserved_bytes"] >= s1["allocated_bytes"]
    assert s1["max_allocated_bytes"] >= s1["allocated_bytes"]
    assert s1["max_reserved_bytes"] >= s1["reserved_bytes"]
    del bufs
    s2 = dev.memory_stats()
    assert s2["allocated_bytes"] == s0["allocated_bytes"]
    assert s2["requested_bytes"] == s0["requested_bytes"]
    assert s2["frees"] - s0["frees"] == 4
    assert s2["max_allocated_bytes"] >= s1["allocated_bytes"]  # the peak stays
    dev.reset_peak_stats()
    s3 = dev.memory_stats()
    assert s3["max_allocated_bytes"] == s3["allocated_bytes"]
    assert s3["max_reserved_bytes"] == s3["reserved_bytes"]


def test_a_step_whose_peak_is_freed_keeps_its_blocks_through_a_miss(dev):
    params = dev.alloc(1000)
    for step in range(3):
        activations = [dev.alloc(20 * MiB) for _ in range(4)]  # 80 MiB at the peak
        if step == 2:
            s0 = dev.memory_stats()
        del activations  # as backward frees them
        extra = dev.alloc((step + 1) * 64 * 1024 + 512)  # a size not seen before: a miss
        del extra
    activations = [dev.alloc(20 * MiB) for _ in range(4)]
    assert dev.memory_stats()["segments_created"] - s0["segments_created"] == 1  # only the miss
    del activations, params


def test_large_sizes_round_to_quarters_of_a_power_of_two_and_share_blocks(dev):
    a = dev.alloc(5 * MiB + 1)
    assert a.capacity == 6 * MiB  # (quarters of 4 MiB)
    handle = a.handle
    del a
    b = dev.alloc(6 * MiB - 4096)  # another request of the same rounded size takes it back
    assert b.handle == handle and b.nbytes == 6 * MiB - 4096
    c = dev.alloc(700)
    assert c.capacity == 1024
    # distinct blocks are independent memory
    b.fill(b"\x11")
    c.fill(b"\x22")
    out = np.empty(6 * MiB - 4096, np.uint8)
    b.read(out)
    assert (out == 0x11).all()
    del b, c


def test_free_blocks_of_sizes_no_longer_requested_are_released_on_a_miss(dev):
    dev.empty_cache()
    dev.reset_peak_stats()
    live = dev.alloc(1000)
    for mib in (10, 12, 14, 16, 20, 24):  # 96 MiB of distinct sizes, each freed at once
        dev.alloc(mib * MiB)
    s0 = dev.memory_stats()
    assert s0["reserved_bytes"] >= 96 * MiB
    fresh = dev.alloc(40 * MiB)  # a miss, but those sizes were requested just now: they stay
    del fresh
    s1 = dev.memory_stats()
    assert s1["segments_freed"] == s0["segments_freed"]
    # a loop of cached small blocks: the big sizes fall idle (IDLE_MIN allocations, or more when an
    # earlier test of this process reused a size after a longer gap)
    assert s1["idle_after"] >= IDLE_MIN
    for _ in range(s1["idle_after"]):
        dev.alloc(1000)
    fresh = dev.alloc(48 * MiB)  # a miss while free blocks outweigh the peak of live ones: idle sizes go first
    s2 = dev.memory_stats()
    assert s2["segments_freed"] - s1["segments_freed"] == 7  # the six and the 40 MiB block
    assert s2["reserved_bytes"] == s1["reserved_bytes"] - 136 * MiB + 48 * MiB + 1024  # (+ the loop's block)
    del live, fresh


def test_a_loop_whose_phases_need_more_blocks_than_its_peak_keeps_them(dev):
    """Three phases per step, each with its own sizes (as a network's layers): the size classes'
    peaks add up to far more than the peak of live bytes plus the slack. Every size is requested
    once a step, so from the second step on no block is created or released (resnet18 at batch
    64 re-created a third of its blocks every step when a miss released every free block)."""
    dev.empty_cache()
    dev.reset_peak_stats()
    counts = []
    for step in range(5):
        s0 = dev.memory_stats()
        for mib in (32, 40, 48, 56):  # (sizes that need no rounding)
            phase = [dev.alloc(mib * MiB) for _ in range(3)]  # at most 168 MiB live
            del phase
        s1 = dev.memory_stats()
        counts.append((s1["segments_created"] - s0["segments_created"], s1["segments_freed"] - s0["segments_freed"]))
    assert counts[0] == (12, 0)
    assert counts[1:] == [(0, 0)] * 4
    assert dev.memory_stats()["reserved_bytes"] >= 3 * (32 + 40 + 48 + 56) * MiB  # > peak + 64 MiB


def test_empty_cache_releases_only_unused_buffers(dev):
    keep = dev.alloc(30 * MiB)
    drop = dev.alloc(40 * MiB)
    del drop
    s0 = dev.memory_stats()
    dev.empty_cache()
    s1 = dev.memory_stats()
    assert s1["reserved_bytes"] <= s0["reserved_bytes"] - 40 * MiB
    assert s1["segments_freed"] > s0["segments_freed"]
    assert s1["allocated_bytes"] == s0["allocated_bytes"]
    keep.fill(b"\x05")  # the live block is intact
    out = np.empty(16, np.uint8)
    keep.read(out, 30 * MiB - 16)
    assert (out == 5).all()


def test_allocation_over_the_limit_raises_out_of_memory(dev):
    with memory_limit(dev, 16 * MiB):
        ooms = dev.memory_stats()["ooms"]
        with pytest.raises(torch.OutOfMemoryError) as info:
            dev.alloc(64 * MiB)
        text = str(info.value)
        assert str(64 * MiB) in text and dev.name in text
        assert dev.memory_stats()["ooms"] == ooms + 1
        dev.alloc(MiB)  # what fits still works
    dev.alloc(64 * MiB)  # and the full device after the limit is lifted


def test_allocation_frees_the_cache_before_failing(dev):
    dev.empty_cache()
    cached = dev.alloc(20 * MiB)
    del cached  # now a cached, unused segment
    with memory_limit(dev, 4 * MiB, empty_cache=False):
        s0 = dev.memory_stats()
        b = dev.alloc(22 * MiB)  # fits only once the cached 20 MiB are released
        s1 = dev.memory_stats()
    assert b.nbytes == 22 * MiB
    assert s1["segments_freed"] > s0["segments_freed"]
    assert s1["ooms"] == s0["ooms"]


def test_allocation_above_max_alloc_raises_out_of_memory(dev):
    with pytest.raises(torch.OutOfMemoryError) as info:
        dev.alloc(dev.max_alloc + 1)
    text = str(info.value)
    assert str(dev.max_alloc + 1) in text and dev.name in text
    b = dev.alloc(1024)
    b.write(np.arange(1024, dtype=np.uint8))


def test_torch_out_of_memory_names_size_and_device(dev):
    with memory_limit(dev, 8 * MiB):
        with pytest.raises(torch.OutOfMemoryError) as info:
            torch.empty(16 * MiB // 4 + 1, device="ocl")
        assert dev.name in str(info.value)
        assert str(16 * MiB + 4) in str(info.value)
    x = torch.arange(10.0, device="ocl")
    assert (x * 2).cpu().tolist() == [2.0 * i for i in range(10)]


def test_memory_limit_property(dev):
    assert dev.memory_limit == dev.global_mem
    dev.memory_limit = 123 * MiB
    try:
        assert dev.memory_limit == 123 * MiB
    finally:
        dev.memory_limit = 0
    assert dev.memory_limit == dev.global_mem
    with pytest.raises(ValueError):
        dev.memory_limit = -1


# ---- torch.ocl memory functions ----

def test_torch_ocl_memory_functions(dev):
    ocl = torch.ocl
    base = ocl.memory_allocated()
    assert base == dev.memory_stats()["allocated_bytes"]
    x = torch.empty(MiB, device="ocl")  # 4 MiB
    assert ocl.memory_allocated() - base >= 4 * MiB
    assert ocl.memory_allocated(0) == ocl.memory_allocated("ocl:0") == ocl.memory_allocated(torch.device("ocl"))
    assert ocl.memory_reserved() >= ocl.memory_allocated()
    assert ocl.max_memory_allocated() >= ocl.memory_allocated()
    assert ocl.max_memory_reserved() >= ocl.memory_reserved()
    del x
    assert ocl.memory_allocated() == base
    assert ocl.max_memory_allocated() >= base + 4 * MiB
    ocl.reset_peak_memory_stats()
    assert ocl.max_memory_allocated() == ocl.memory_allocated()
    assert ocl.max_memory_reserved() == ocl.memory_reserved()
    ocl.empty_cache()
    assert ocl.memory_reserved() <= ocl.max_memory_reserved()
    stats = ocl.memory_stats()
    assert stats["allocated_bytes"] == ocl.memory_allocated()
    summary = ocl.memory_summary()
    assert isinstance(summary, str) and dev.name in summary and "Allocated memory" in summary
    with pytest.raises(RuntimeError):
        ocl.memory_allocated(99)
    with pytest.raises(ValueError):
        ocl.memory_allocated("cpu")


def test_tensors_return_memory_when_freed(dev):
    base = torch.ocl.memory_allocated()
    for _ in range(3):
        a = torch.randn(256, 256, device="ocl")
        b = (a * 2 + 1).relu()
        del a, b
    assert torch.ocl.memory_allocated() == base


def test_at_the_limit_the_least_recently_requested_sizes_go_first(dev):
    dev.empty_cache()
    for mib in (8, 10, 12):  # cached in this order: 8 MiB requested least recently
        dev.alloc(mib * MiB)
    s0 = dev.memory_stats()
    with memory_limit(dev, 6 * MiB, empty_cache=False):
        b = dev.alloc(14 * MiB)  # needs 8 MiB more than the limit allows: the 8 MiB block is enough
        s1 = dev.memory_stats()
        assert s1["segments_freed"] - s0["segments_freed"] == 1
        assert s1["reserved_bytes"] == s0["reserved_bytes"] - 8 * MiB + 14 * MiB
        hits = s1["cache_hits"]
        c, d = dev.alloc(10 * MiB), dev.alloc(12 * MiB)  # the recent sizes are still cached
        assert dev.memory_stats()["cache_hits"] == hits + 2
    del b, c, d
