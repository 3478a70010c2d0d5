import threading

import pytest
import torch

from segmnv3.device import (
    CpuFeatures,
    cpu_features,
    int8_saturates,
    int8_weight_bits,
    native_bf16,
    openvino_precision,
    read_cpu_flags,
)

AVX2 = CpuFeatures(frozenset({"sse4_2", "avx2", "fma"}))
ZEN4 = CpuFeatures(frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}))
SAPPHIRE_RAPIDS = CpuFeatures(frozenset({"avx2", "avx512f", "amx_bf16", "amx_int8", "amx_tile"}))
ALDER_LAKE = CpuFeatures(frozenset({"avx2", "avx_vnni"}))


@pytest.mark.parametrize(
    "cpu, bf16, vnni, amx",
    [
        (AVX2, False, False, False),
        (ZEN4, True, True, False),
        (SAPPHIRE_RAPIDS, True, True, True),
        (ALDER_LAKE, False, True, False),
    ],  # fmt: skip
)
def test_what_each_kind_of_cpu_computes_natively(cpu, bf16, vnni, amx):
    assert (cpu.bf16, cpu.vnni, cpu.amx) == (bf16, vnni, amx)
    assert native_bf16(torch.device("cpu"), cpu) == bf16
    assert int8_weight_bits("auto", cpu) == (8 if vnni else 7)
    assert int8_saturates(8, cpu) == (not vnni) and not int8_saturates(7, cpu)


def test_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n\n")
    flags = read_cpu_flags(info)
    assert {"avx2", "avx512_bf16", "avx512_vnni"} <= flags and "amx_bf16" not in flags
    assert CpuFeatures(flags).describe() == "avx2 avx512f avx512_vnni avx512_bf16"
    assert read_cpu_flags(tmp_path / "missing") == frozenset()
    assert CpuFeatures().describe() == "unknown CPU flags" and not CpuFeatures().bf16


def test_this_machine_is_read_from_proc_cpuinfo():
    assert cpu_features() == CpuFeatures(read_cpu_flags("/proc/cpuinfo"))


def test_int8_weight_bits_choices():
    assert int8_weight_bits(7) == 7 and int8_weight_bits("8") == 8
    with pytest.raises(ValueError, match="int8 weight bits '9'; choose 7, 8 or auto"):
        int8_weight_bits("9")


def test_openvino_precision_compares_types_not_text():
    ov = pytest.importorskip("openvino")
    assert openvino_precision(ov.Type.bf16) == "bf16"  # prints as <Type: 'bfloat16'>
    assert openvino_precision(ov.Type.f32) == "fp32"
    with pytest.raises(ValueError, match="unknown inference precision"):
        openvino_precision(ov.Type.i64)


def test_one_torch_thread_nests_overlaps_and_restores():
    from segmnv3.device import one_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
            with one_torch_thread():  # nested (a phone backend inside Segmenter.predict)
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 1  # still inside the outer block
            seen, ready, leave = [], threading.Event(), threading.Event()

            def other():  # another thread's block overlaps this one, and outlives it
                with one_torch_thread():
                    seen.append(torch.get_num_threads())
                    ready.set()
                    leave.wait(10)
                seen.append(torch.get_num_threads())

            worker = threading.Thread(target=other)
            worker.start()
            assert ready.wait(10)
        assert torch.get_num_threads() == 2  # this thread left its outermost block
        leave.set()
        worker.join(10)
        assert seen == [1, 2]  # the setting before the first block, not the other's 1
        with pytest.raises(ValueError, match="inside"):
            with one_torch_thread():
                raise ValueError("raised inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_one_torch_thread_leaves_a_torch_without_openmp_alone(monkeypatch):
    from segmnv3.device import one_torch_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(torch._C, "has_openmp", False)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
