"""Building blocks of asr.nn: axis policy, crop, resampling, blocks, Big-Little merge."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from asr.nn import (IMAGE, SPEECH, BasicBlock, BigLittle, Bottleneck, ConvBNAct, Pool, Resample, center_crop_to,
                    make_transition, time_context)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_policy_axes():
    assert SPEECH.stride(2) == (1, 2) and SPEECH.padding(3) == (0, 1) and SPEECH.pool_kernel(3) == (1, 3)
    assert IMAGE.stride(2) == (2, 2) and IMAGE.padding(7) == (3, 3)
    assert SPEECH.resample_size((10, 4), (3, 8)) == (10, 8)
    assert IMAGE.resample_size((10, 4), (3, 8)) == (3, 8)


def test_conv_speech_shrinks_time_and_strides_frequency_only():
    conv = ConvBNAct(2, 4, 3, 2, SPEECH)
    y = conv(torch.randn(1, 2, 20, 9))
    assert y.shape == (1, 4, 18, 5)  # time 20 - 2, bins ceil(9 / 2)
    assert conv.context == (1, 1)
    assert conv.conv.stride == (1, 2) and conv.conv.padding == (0, 1)
    with pytest.raises(ValueError):
        ConvBNAct(2, 4, 3, 1, SPEECH, padding=(1, 1))


def test_conv_image_keeps_size():
    assert ConvBNAct(3, 8, 3, 1, IMAGE)(torch.randn(1, 3, 11, 13)).shape == (1, 8, 11, 13)


def test_center_crop():
    x = torch.arange(10.0).view(1, 1, 10, 1)
    assert center_crop_to(x, (6, 1)).flatten().tolist() == [2, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="cannot crop"):
        center_crop_to(x, (11, 1))


def test_resample_frequency_only_to_odd_size():
    x = torch.randn(2, 3, 7, 5)
    y = Resample(SPEECH)(x, (4, 9))  # the reference time size is ignored: time is never resampled
    assert y.shape == (2, 3, 7, 9)
    # every frame is resampled on its own: equals 1-D linear interpolation of that frame
    ref = F.interpolate(x.reshape(-1, 1, 5), size=9, mode="linear", align_corners=False).reshape(2, 3, 7, 9)
    torch.testing.assert_close(y, ref)
    assert Resample(IMAGE)(x, (4, 9)).shape == (2, 3, 4, 9)


def _zero_body(block):
    for m in block.body.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)
    return block.eval()


def test_basic_block_shortcut_is_centre_cropped():
    block = _zero_body(BasicBlock(4, 4, 1, SPEECH, num_convs=2))
    assert block.context == (2, 2)
    x = torch.randn(1, 4, 12, 6)
    y = block(x)
    assert y.shape == (1, 4, 8, 6)
    # with a zero residual branch the block is relu(shortcut), frames 2..9 of the input
    torch.testing.assert_close(y, torch.relu(x[:, :, 2:10]))


def test_strided_block_shortcut_pools_frequency_only():
    block = _zero_body(BasicBlock(4, 8, 2, SPEECH, num_convs=1))
    x = torch.randn(1, 4, 9, 7)
    y = block(x)
    assert y.shape == (1, 8, 7, 4)
    assert block.context == (1, 1)
    pooled = F.avg_pool2d(x, (1, 3), (1, 2), (0, 1))[:, :, 1:8]
    proj = block.shortcut.body[1]
    torch.testing.assert_close(y, torch.relu(proj(pooled)))


def test_bottleneck_grouped_se_params():
    b = Bottleneck(64, 256, 1, IMAGE, inner=128, groups=32, se=True)
    convs = 64 * 128 + 128 * 128 * 9 // 32 + 128 * 256 + 64 * 256  # 1x1, grouped 3x3, 1x1, shortcut 1x1
    bns = 2 * (128 + 128 + 256 + 256)
    se = 256 * 16 + 16 + 16 * 256 + 256
    assert sum(p.numel() for p in b.parameters()) == convs + bns + se
    assert b(torch.randn(1, 64, 9, 9)).shape == (1, 256, 9, 9)
    with pytest.raises(ValueError):
        Bottleneck(64, 256, 1, IMAGE, inner=100, groups=32)
    with pytest.raises(ValueError, match="time"):
        Bottleneck(64, 256, 1, SPEECH, se=True)


def _speech_bl(merge):
    little = nn.Sequential(BasicBlock(8, 2, 1, SPEECH, num_convs=1), ConvBNAct(2, 8, 1, policy=SPEECH, act=False))
    big = nn.Sequential(BasicBlock(8, 8, 2, SPEECH, num_convs=2), BasicBlock(8, 8, 1, SPEECH, num_convs=1))
    return BigLittle([little, big], 8, SPEECH, merge=merge, branch_channels=[8, 8])


@pytest.mark.parametrize("merge", ["add", "cat"])
def test_big_little_crops_little_and_upsamples_big(merge):
    m = _speech_bl(merge).eval()
    assert m.context == (3, 3)  # deepest branch: three 3x3 convs
    x = torch.randn(2, 8, 15, 7)  # 7 bins: the Big-Branch runs at 4 and is resampled back to 7
    y = m(x)
    assert y.shape == (2, 8, 9, 7)
    if merge == "add":
        little, big = m.branches
        ref = little(x)[:, :, 2:11] + F.interpolate(big(x), size=(9, 7), mode="bilinear", align_corners=False)
        torch.testing.assert_close(y, torch.relu(ref))
    else:
        assert sum(p.numel() for p in m.fuse.parameters()) == 16 * 8 + 2 * 8
    with pytest.raises(ValueError):
        BigLittle([nn.Identity()], 8, SPEECH, merge="max")


def test_time_context_sums_sequential():
    seq = nn.Sequential(ConvBNAct(1, 2, 3, 1, SPEECH), nn.ReLU(), BasicBlock(2, 2, 1, SPEECH, num_convs=2))
    assert time_context(seq) == (3, 3)
    assert time_context(nn.ReLU()) == (0, 0)


def test_transition():
    t = make_transition(8, 16, 2, SPEECH)
    assert t.context == (1, 1) and t(torch.randn(1, 8, 5, 8)).shape == (1, 16, 3, 4)
    t = make_transition(64, 64, 1, IMAGE, kind="bottleneck")
    assert t(torch.randn(1, 64, 5, 5)).shape == (1, 64, 5, 5)
    with pytest.raises(ValueError):
        make_transition(8, 8, 1, SPEECH, kind="dense")


@pytest.mark.parametrize("policy, size", [(SPEECH, (9, 7)), (SPEECH, (5, 40)), (IMAGE, (7, 7)), (IMAGE, (56, 57))])
def test_pool_equals_average_pooling(policy, size):
    pool = Pool(2, policy)
    x = torch.randn(2, 5, *size)
    k = (1, 3) if policy is SPEECH else (3, 3)
    pad = (0, 1) if policy is SPEECH else (1, 1)
    torch.testing.assert_close(pool(x), F.avg_pool2d(x, k, policy.stride(2), pad))


@pytest.mark.parametrize("n_in,n_out", [(10, 20), (5, 10), (3, 5), (4, 4), (7, 3)])
def test_frequency_resampling_is_one_matrix_product_equal_to_bilinear(n_in, n_out):
    """Speech resampling (frequency only) runs as `x @ M`: the numbers of F.interpolate's bilinear
    resampling, forward and backward, within float rounding."""
    x = torch.randn(2, 3, 11, n_in, dtype=torch.float64, requires_grad=True)
    ref = F.interpolate(x, size=(11, n_out), mode="bilinear", align_corners=False)
    y = Resample(SPEECH)(x, (11, n_out))
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)
    g = torch.randn_like(ref)
    (gx_ref,) = torch.autograd.grad(ref, x, g)
    (gx,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(gx, gx_ref, atol=1e-12, rtol=0)


@pytest.mark.parametrize("merge", ["add", "cat"])
def test_branch_and_shortcut_inputs_cropped_before_they_compute(merge):
    """The shallower branch and a strided shortcut get the input frames their output keeps (cropped
    first), with the numbers of computing on every frame and cropping the output afterwards."""
    torch.manual_seed(0)
    little = nn.Sequential(BasicBlock(4, 2, 1, SPEECH, num_convs=1), ConvBNAct(2, 4, 1, policy=SPEECH, act=False))
    big = nn.Sequential(BasicBlock(4, 4, 2, SPEECH), BasicBlock(4, 4, 1, SPEECH))
    m = BigLittle([little, big], 4, SPEECH, merge=merge, branch_channels=[4, 4]).eval()
    x = torch.randn(2, 4, 23, 8, dtype=torch.float64)
    m = m.double()
    with torch.no_grad():
        outs = [b(x) for b in m.branches]  # every frame, then crop and resample: the reference
        full = outs[0].shape[3]
        length = min(o.shape[2] for o in outs)
        aligned = [center_crop_to(F.interpolate(o, size=(o.shape[2], full), mode="bilinear", align_corners=False)
                                  if o.shape[3] != full else o, (length, full)) for o in outs]
        ref = m.fuse(aligned[0] + aligned[1]) if merge == "add" else m.fuse(torch.cat(aligned, 1))
        torch.testing.assert_close(m(x), ref, atol=1e-12, rtol=0)
        block = m.branches[1][0]  # strided: pooled shortcut, body shortens time by 4
        y = block.body(x)
        ref = block.relu(y + center_crop_to(block.shortcut(x), tuple(y.shape[2:])))
        torch.testing.assert_close(block(x), ref, atol=1e-12, rtol=0)
