"""Registry and model contracts: exact context, no time padding/stride, chunking, gradients."""

import pytest
import torch
from torch import nn

from asr.models import create_model, get_entry, list_models
from asr.nn import Resample

SPEECH = ["resnet22", "bl_resnet22_a4_b1", "bl_resnet22_a4_b2", "bl_resnet22_a4_b3", "bl_resnet22_a2_b3",
          "bl_resnet22_a4_b1_cat", "bl_pyr_resnet22_a4_b1"]
IMAGE = ["resnet50", "resnet101", "resnet152", "bl_resnet50", "bl_resnet50_a2_b2", "bl_resnet50_a4_b2",
         "bl_resnet50_a4_b4", "bl_resnet101", "bl_resnet152", "resnext50_32x4d", "bl_resnext50_32x4d",
         "bl_resnext101_32x4d", "bl_resnext101_64x4d", "seresnext50_32x4d", "bl_seresnext50_32x4d",
         "bl_seresnext101_32x4d"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = dict(width=8, in_bins=40, num_classes=30, head_dim=16)


def small(name, **kw):
    torch.manual_seed(0)
    return create_model(name, **{**SMALL, **kw})


def test_registry_round_trip():
    assert set(SPEECH) <= set(list_models(kind="speech"))
    assert set(IMAGE) <= set(list_models(kind="image"))
    assert not set(list_models(kind="speech")) & set(list_models(kind="image"))
    assert list_models(pattern="bl_resnet22_*") == [n for n in SPEECH if n.startswith("bl_resnet22_")]
    for name in list_models():
        assert list_models().count(name) == 1
        assert get_entry(name).baseline in list_models()
    with pytest.raises(KeyError, match="bl_resnet22_a4_b1"):
        create_model("bl_resnet22_a4_b9")


def test_defaults_and_overrides():
    with torch.device("meta"):
        m = create_model("bl_resnet22_a2_b3")
        img = create_model("bl_resnet50")
    assert (m.num_classes, m.in_bins, m.in_chans, m.classifier.in_features) == (32000, 64, 3, 512)
    assert m.trunk[0].conv.out_channels == 128 and m.out_bins == 4
    assert img.num_classes == 1000
    m = create_model("bl_resnet22_a2_b3", width=32, in_bins=40, num_classes=500, head_dim=256)
    assert (m.num_classes, m.in_bins, m.classifier.out_features, m.classifier.in_features) == (500, 40, 500, 256)
    assert m.trunk[0].conv.out_channels == 32 and m.out_bins == 3


@pytest.mark.parametrize("name", SPEECH)
@pytest.mark.parametrize("bins", [40, 48])
def test_exact_context(name, bins):
    m = small(name, in_bins=bins).eval()
    left, right = m.context
    # stem + 22 convolutions on the deepest path, each consumes one frame per side
    assert (left, right) == (23, 23)
    with torch.no_grad():
        for t in (1, 4, 9):
            y = m(torch.randn(1, 3, t + left + right, bins))
            assert y.shape == (1, t, 30)
    with pytest.raises(ValueError, match="46"):
        m(torch.randn(1, 3, left + right, bins))
    with pytest.raises(ValueError, match="bins|frames"):
        m(torch.randn(1, 3, 60, bins + 1))


@pytest.mark.parametrize("name", SPEECH)
def test_no_stride_or_padding_in_time(name):
    m = small(name)
    layers = [mod for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d))]
    assert len(layers) > 25
    for mod in layers:
        stride = mod.stride if isinstance(mod.stride, tuple) else (mod.stride,) * 2
        padding = mod.padding if isinstance(mod.padding, tuple) else (mod.padding,) * 2
        assert stride[0] == 1 and padding[0] == 0, mod
    # resampling never changes the number of frames
    seen = []
    for mod in m.modules():
        if isinstance(mod, Resample):
            mod.register_forward_hook(lambda _m, inp, out: seen.append((inp[0].shape[2], out.shape[2])))
    with torch.no_grad():
        m.eval()(torch.randn(1, 3, 50, 40))
    assert all(a == b for a, b in seen)
    assert bool(seen) == name.startswith("bl_")


def _randomise_bn(model):
    g = torch.Generator().manual_seed(1)
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g, dtype=torch.float64) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=g, dtype=torch.float64) * 0.1)


@pytest.mark.parametrize("name", SPEECH)
def test_chunked_equals_full(name):
    # float64 so that the 1e-5 bound tests the alignment, not float32 rounding of large logits
    m = small(name).eval().double()
    _randomise_bn(m)
    left, right = m.context
    frames, chunk = 23, 8
    x = torch.randn(1, 3, frames + left + right, 40, dtype=torch.float64)
    with torch.no_grad():
        full = m(x)
        parts = []
        for start in range(0, frames, chunk):
            n = min(chunk, frames - start)
            parts.append(m(x[:, :, start:start + n + left + right]))
    chunked = torch.cat(parts, dim=1)
    assert chunked.shape == full.shape == (1, frames, 30)
    assert (chunked - full).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", SPEECH)
def test_gradients_reach_every_parameter(name):
    m = small(name).train()
    left, right = m.context
    out = m(torch.randn(2, 3, 3 + left + right, 40))
    torch.nn.functional.cross_entropy(out.reshape(-1, 30), torch.randint(0, 30, (6,))).backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_seed_fixes_weights():
    """The caller's seed alone fixes the initial weights: same seed, same weights; another, others."""
    def build(seed):
        torch.manual_seed(seed)
        return create_model("bl_resnet22_a4_b1", **SMALL).state_dict()

    a, b, c = build(0), build(0), build(1)
    for n in a:
        assert torch.equal(a[n], b[n]), n
    convs = [n for n in a if n.endswith("conv.weight") or n.endswith("classifier.weight")]
    assert convs and all(not torch.equal(a[n], c[n]) for n in convs)


@pytest.mark.parametrize("name", ["bl_resnet50", "bl_seresnext50_32x4d", "resnext50_32x4d"])
def test_image_forward_odd_size(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=7).eval()
    assert m.num_classes == 7
    with torch.no_grad():
        assert m(torch.randn(1, 3, 65, 65)).shape == (1, 7)  # odd sizes: upsample to the exact target
    assert any(isinstance(x, nn.Conv2d) and x.padding[0] > 0 for x in m.modules())


def test_checkpoint_with_a_conv_classifier_loads_into_the_linear_one():
    """State dicts written when the classifier was a 1x1 Conv2d (weight (classes, head, 1, 1)) load,
    and the model computes the same per-frame scores as that convolution did."""
    torch.manual_seed(0)
    m = create_model("resnet22", **SMALL).eval()
    sd = m.state_dict()
    old = dict(sd, **{"classifier.weight": sd["classifier.weight"][:, :, None, None].clone()})
    fresh = create_model("resnet22", **SMALL).eval()
    fresh.load_state_dict(old)
    x = torch.randn(1, 3, 60, SMALL["in_bins"])
    with torch.no_grad():
        h = m.head(m.trunk(x))
        conv = torch.nn.functional.conv2d(h, old["classifier.weight"], sd["classifier.bias"])
        torch.testing.assert_close(fresh(x), conv.squeeze(3).transpose(1, 2), atol=1e-5, rtol=0)
