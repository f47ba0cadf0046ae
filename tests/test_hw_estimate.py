"""Estimated devices: op-type model fitted on this CPU, anchored to published latencies, with an error band."""

import json

import pytest
import numpy as np
from scipy.stats import kendalltau

from hw_profiles import resolve_profile
from hw_profiles.devices import DEVICES_DIR, _load_device, devices
from hw_profiles.opmodel import fit_op_model, op_model, op_type
from hw_profiles.reference_networks import REFERENCE_NETWORKS, mobilenet_v2_ops, mobilenet_v3_large_ops, resnet_ops
from hw_profiles.roofline import anchoring, datasheet_ms
from specialize.cost import arch_cost, head_ops, mbconv_ops, stem_ops
from specialize.errors import SpecializeError
from specialize.sampling import spread_architectures
from specialize.space import get_space

SPACES = ["cifar10", "ponas-imagenet"]


def this_cpu(space_name):
    """This CPU's shipped measured profile at batch 1 and 1 thread (the one the op model is fitted on)."""
    return resolve_profile("this-cpu", get_space(space_name), batch=1, threads=1)


@pytest.mark.parametrize(
    "name,macs",
    [
        ("mobilenet_v1_1.0_224", 569e6),
        ("mobilenet_v2_1.0_224", 300e6),
        ("efficientnet_b0_224", 390e6),
        ("mnasnet_1.0_224", 315e6),
        ("mobilenet_v3_large_1.0_224", 219e6),
    ],
)
def test_reference_networks_have_the_papers_macs(name, macs):
    assert sum(op.macs for op in REFERENCE_NETWORKS[name]()) == pytest.approx(macs, rel=0.015)


@pytest.mark.parametrize(
    "name,params",
    [("mobilenet_v2_1.0_224", 3_504_872), ("efficientnet_b0_224", 5_288_548), ("mnasnet_1.0_224", 4_383_312)],
)
def test_reference_networks_have_torchvisions_parameter_count(name, params):
    """torchvision's documented num_params of mobilenet_v2, efficientnet_b0 and mnasnet1_0 (batch-norm scale
    and shift counted, as here): an exact count catches a wrong width, repeat or squeeze-excite size."""
    assert sum(op.params for op in REFERENCE_NETWORKS[name]()) == params


def test_mobilenet_v3_has_torchvisions_parameter_count_with_its_squeeze_rounding():
    """torchvision rounds V3's squeeze widths to multiples of 8 (72 -> 24); ncnn's timed network does not
    (72 -> 18). The exact count checks the widths MobileNetV3 gives `mbconv_ops` as `mid_channels`."""
    assert sum(op.params for op in mobilenet_v3_large_ops(se_divisor=8)) == 5_483_032
    assert sum(op.params for op in mobilenet_v3_large_ops()) < 5_483_032


def test_op_types():
    space = get_space("ponas-imagenet")
    assert [op_type(op) for op in stem_ops(space)] == ["conv", "depthwise", "pointwise"]
    assert [op_type(op) for op in mbconv_ops(32, 64, 28, 2, 5, 6, True)] == [
        "pointwise",
        "depthwise",
        "squeeze_excite",
        "pointwise",
    ]
    assert [op_type(op) for op in head_ops(space)] == ["pointwise", "pool_fc"]
    assert op_type(mobilenet_v2_ops()[0]) == "conv"


def test_shipped_op_model_is_what_the_fit_gives_on_the_shipped_profiles():
    refit = fit_op_model([this_cpu(s) for s in SPACES])
    assert refit["compute_weight"] == pytest.approx(op_model()["compute_weight"], abs=1e-3)
    assert refit["kernels"] == pytest.approx(op_model()["kernels"], abs=1e-2)


# devices whose source publishes no second network of the spaces' family: their band is unknown and says so
UNCHECKED = {"jetson-orin-nano-super": "onnxsim's TensorRT table has MobileNetV2 and two ResNets (other-family)"}


@pytest.mark.parametrize("name", sorted(set(devices()) - set(UNCHECKED)))
def test_anchored_devices_reproduce_their_fit_anchor_and_state_a_band(name):
    device = devices()[name]
    anchor = anchoring(device, device.default_precision)
    profile = resolve_profile(name, get_space("cifar10"))
    assert profile.expected_error == anchor["expected_error"] and profile.hardware["anchor"] == anchor
    for row in anchor["anchors"]:
        assert row["source"] and row["runtime"] and row["latency_ms"] > 0
        if row["role"] == "fit" and row["precision"] == device.default_precision:
            assert abs(row["residual"]) < 1e-3
    checks = [r for r in anchor["anchors"] if r["role"] == "check"]
    assert checks, f"{name} ships without a check anchor at {device.default_precision}: its error band would be unknown"
    assert anchor["expected_error"] >= max(abs(r["residual"]) for r in checks)


@pytest.mark.parametrize("name,macs,params", [("resnet18_v1_224", 1.814e9, 11_689_512),
                                              ("resnet50_v1_224", 3.858e9, 25_557_032)])  # fmt: skip
def test_resnets_have_torchvisions_parameter_count_and_v1s_macs(name, macs, params):
    """torchvision's num_params (the stride's place does not change them); MACs: 1.81G for ResNet-18, and for
    ResNet-50 v1 (stride on the first 1x1) less than torchvision's v1.5, which strides on the 3x3 (4.09G)."""
    ops = REFERENCE_NETWORKS[name]()
    assert sum(op.params for op in ops) == params
    assert sum(op.macs for op in ops) == pytest.approx(macs, rel=0.002)
    v15 = resnet_ops((3, 4, 6, 3), bottleneck=True, stride_on_3x3=True)
    assert sum(op.macs for op in v15) == pytest.approx(4.09e9, rel=0.002)
    assert "conv" in {op_type(op) for op in ops} <= {"conv", "pointwise", "pool_fc"}  # no depthwise, no SE


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_other_family_anchors_set_neither_the_scale_nor_the_band(precision):
    """jetson-orin-nano-super publishes MobileNetV2 and two ResNets per precision (one TensorRT run): MobileNetV2
    alone sets the scale, the ResNets are shown with their residual, and with no check anchor the band is unknown
    (counted as checks, they would give a band of 74-172%)."""
    device = devices()["jetson-orin-nano-super"]
    anchor = anchoring(device, precision)
    rows = {r["network"]: r for r in anchor["anchors"]}
    assert {r["precision"] for r in rows.values()} == {precision}  # its own precision's anchors, int8 too
    fit = rows["mobilenet_v2_1.0_224"]
    assert fit["role"] == "fit" and abs(fit["residual"]) < 1e-3
    assert anchor["scale"] == pytest.approx(
        fit["latency_ms"] / datasheet_ms(REFERENCE_NETWORKS[fit["network"]](), device, precision)
    )
    others = [rows["resnet18_v1_224"], rows["resnet50_v1_224"]]
    assert all(r["role"] == "other-family" and r["residual"] > 0.5 for r in others)
    assert anchor["expected_error"] is None and "no check anchor" in anchor["note"]
    assert resolve_profile("jetson-orin-nano-super", get_space("cifar10"), precision=precision).expected_error is None


def test_an_int8_gpu_estimate_borrows_squeeze_excite_at_the_default_precision():
    """No GPU publishes an int8 EfficientNet-B0: the int8 estimate takes the fp16 factor (squeeze-excite's cost is
    its kernels'), not this CPU's 1, which made squeeze-excite blocks 15x too slow on a GPU."""
    fp16 = anchoring(devices()["jetson-orin-nano-super"], "fp16")
    int8 = anchoring(devices()["jetson-orin-nano-super"], "int8")
    assert int8["se_factor"] == fp16["se_factor"] < 0.25 and "at fp16 (none at int8)" in int8["se_source"]


def test_squeeze_excite_is_fitted_where_a_gpu_publishes_it_and_borrowed_by_the_other_gpus():
    """One scale carried this CPU's squeeze-excite (about 18 conv kernels' overhead) to GPUs, making
    EfficientNet-B0 on jetson-agx-orin 4.4x too slow; its B0 fit anchor now sets SE's weight there."""
    orin = anchoring(devices()["jetson-agx-orin"], "fp16")
    assert 0 < orin["se_factor"] < 0.25 and "this device" in orin["se_source"]
    b0 = next(r for r in orin["anchors"] if r["network"] == "efficientnet_b0_224")
    assert abs(b0["residual"]) < 1e-3
    profile = resolve_profile("jetson-agx-orin", get_space("cifar10"))
    index = {(c.kernel, c.expansion, c.se): i for i, c in enumerate(profile.space.candidates) if not c.is_skip}
    plain, se = index[3, 6, False], index[3, 6, True]
    assert profile.latency_ms[1, se] < 3 * profile.latency_ms[1, plain]  # was 15x: the SE term dominated
    for name in ("jetson-orin-nano", "nvidia-t4"):
        borrowed = anchoring(devices()[name], devices()[name].default_precision)
        assert borrowed["se_factor"] == orin["se_factor"] and "jetson-agx-orin" in borrowed["se_source"]
    pi = anchoring(devices()["raspberry-pi-4"], "fp32")
    assert pi["se_factor"] == 1.0 and "this CPU" in pi["se_source"]


def test_the_gpu_squeeze_excite_factor_holds_on_a_network_it_was_not_fitted_on():
    """MobileNetV3-Large on jetson-agx-orin (same ncnn run, squeeze-excite in 8 of 15 blocks) is a check:
    with this CPU's squeeze-excite weight it would come out about 3x too slow; with the factor fitted on
    EfficientNet-B0 it lands inside the device's band. MNASNet-1.0, the search space's own blocks, checks
    the plain scale on three devices."""
    device = devices()["jetson-agx-orin"]
    orin = anchoring(device, "fp16")
    v3 = next(r for r in orin["anchors"] if r["network"] == "mobilenet_v3_large_1.0_224")
    assert v3["role"] == "check" and abs(v3["residual"]) <= orin["expected_error"]
    unfactored = orin["scale"] * datasheet_ms(REFERENCE_NETWORKS[v3["network"]](), device, "fp16", se_factor=1.0)
    assert unfactored / v3["latency_ms"] > 2
    for name in ("jetson-agx-orin", "nvidia-t4", "raspberry-pi-5"):
        rows = anchoring(devices()[name], "fp16")["anchors"]
        mnasnet = next(r for r in rows if r["network"] == "mnasnet_1.0_224")
        assert mnasnet["role"] == "check" and abs(mnasnet["residual"]) < 0.25


def test_a_device_without_anchors_says_its_error_is_unknown(tmp_path):
    data = json.loads((DEVICES_DIR / "raspberry-pi-4.json").read_text())
    for kept, note in (([], "no published anchor"), (data["anchors"][:1], "no check anchor")):
        path = tmp_path / "device.json"
        path.write_text(json.dumps({**data, "anchors": kept}))
        anchor = anchoring(_load_device(path), "fp32")
        assert anchor["expected_error"] is None and note in anchor["note"]


def test_raspberry_pi_4_is_registered_and_anchored():
    anchor = anchoring(devices()["raspberry-pi-4"], "fp32")
    assert {r["network"] for r in anchor["anchors"]} == {"mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224"}
    assert resolve_profile("rpi4", get_space("cifar10")).name == "raspberry-pi-4"


@pytest.mark.parametrize("space_name", SPACES)
def test_estimate_ranks_this_cpus_networks_better_than_macs_alone(space_name):
    """Truth: this CPU's shipped measured profile, validated against whole networks when it was made."""
    space = get_space(space_name)
    measured, estimated = this_cpu(space_name), resolve_profile("raspberry-pi-4", space)
    archs = spread_architectures(space, 60, seed=3)
    truth = [measured.predict_ms(a) for a in archs]
    tau_estimate = kendalltau([estimated.predict_ms(a) for a in archs], truth)[0]
    tau_macs = kendalltau([arch_cost(a)["macs"] for a in archs], truth)[0]
    assert tau_estimate > tau_macs


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"network": "resnet50"}, "not one of"),
        ({"latency_ms": -1}, "positive"),
        ({"role": "guess"}, "role"),
    ],
)
def test_bad_anchor_names_the_file(tmp_path, change, needle):
    data = json.loads((DEVICES_DIR / "raspberry-pi-4.json").read_text())
    data["anchors"][0].update(change)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecializeError, match=needle) as info:
        _load_device(path)
    assert str(path) in str(info.value)


def write_timings(path, profile, archs, truth):
    path.write_text(json.dumps({"timings": [{"arch": str(a), "latency_ms": truth(a)} for a in archs]}))


def test_few_shot_calibration_fits_the_device_terms_and_reports_leave_one_out(tmp_path):
    from hw_profiles.fewshot import calibrate_profile_with_timings

    space = get_space("cifar10")
    estimate, measured = resolve_profile("raspberry-pi-4", space), this_cpu("cifar10")
    fit_archs = spread_architectures(space, 12, seed=5)
    write_timings(tmp_path / "t.json", estimate, fit_archs, measured.predict_ms)
    calibrated = calibrate_profile_with_timings(estimate, tmp_path / "t.json")
    few_shot = calibrated.hardware["few_shot"]
    assert calibrated.kind == "estimated" and few_shot["networks"] == 12
    assert calibrated.expected_error == few_shot["loo_mape"] < few_shot["estimate_mape"]
    held = spread_architectures(space, 30, seed=6)
    error = np.mean([abs(calibrated.predict_ms(a) / measured.predict_ms(a) - 1) for a in held])
    before = np.mean([abs(estimate.predict_ms(a) / measured.predict_ms(a) - 1) for a in held])
    assert error < before


def test_few_shot_needs_5_to_20_timings_of_the_profiles_space(tmp_path):
    from hw_profiles.fewshot import calibrate_profile_with_timings

    space = get_space("cifar10")
    estimate = resolve_profile("raspberry-pi-4", space)
    write_timings(tmp_path / "few.json", estimate, spread_architectures(space, 3), lambda a: 1.0)
    with pytest.raises(SpecializeError, match="5 to 20"):
        calibrate_profile_with_timings(estimate, tmp_path / "few.json")
    (tmp_path / "bad.json").write_text(json.dumps({"timings": [{"arch": "k9e9", "latency_ms": 1}] * 6}))
    with pytest.raises(SpecializeError, match="entry 0"):
        calibrate_profile_with_timings(estimate, tmp_path / "bad.json")


def test_raspberry_pi_5_at_int8_is_scaled_by_its_own_int8_row_and_says_its_band_is_unknown():
    """ncnn's mobilenet_int8 row of the same Pi 5 log as its fp16 anchors: the int8 estimate is scaled by it (not
    borrowed from fp16), and with no second MobileNet-family int8 row nothing checks it, so the band is unknown."""
    anchor = anchoring(devices()["raspberry-pi-5"], "int8")
    fits = [(r["network"], r["latency_ms"]) for r in anchor["anchors"] if r["role"] == "fit"]
    assert fits == [("mobilenet_v1_1.0_224", 8.82)]
    assert {r["precision"] for r in anchor["anchors"]} == {"int8"}
    assert anchor["expected_error"] is None and "no check anchor" in anchor["note"]
