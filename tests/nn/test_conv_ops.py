"""vaekit.nn.conv_ops: the same function, gradients and parameters as torch's own layers."""

import pytest
import torch
from torch import nn

from vaekit.config import resolve
from vaekit.models import build
from vaekit.nn.conv import fast_layers, reference_layers
from vaekit.nn.conv_ops import Conv2d, ConvTranspose2d, ReLU

CASES = [  # (class, torch's class, args, kwargs, input shape): keras-conv's five layers and odd sizes
    (Conv2d, nn.Conv2d, (1, 32, 3), {"stride": 2, "padding": 1}, (6, 1, 28, 28)),
    (Conv2d, nn.Conv2d, (32, 64, 3), {"stride": 2, "padding": 1}, (6, 32, 14, 14)),
    (Conv2d, nn.Conv2d, (3, 8, 5), {"stride": 2, "padding": 2}, (6, 3, 13, 11)),
    (ConvTranspose2d, nn.ConvTranspose2d, (64, 64, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (6, 64, 7, 7)),
    (ConvTranspose2d, nn.ConvTranspose2d, (64, 32, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (6, 64, 14, 14)),
    (ConvTranspose2d, nn.ConvTranspose2d, (32, 1, 3), {"padding": 1}, (6, 32, 28, 28)),
    (ConvTranspose2d, nn.ConvTranspose2d, (8, 3, 3), {"stride": 2, "padding": 1}, (6, 8, 7, 6)),
]


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("ours, theirs, args, kwargs, shape", CASES)
def test_outputs_and_gradients_equal_torchs_layer(ours, theirs, args, kwargs, shape, layout):
    torch.manual_seed(0)
    ref = theirs(*args, **kwargs)
    new = ours(*args, **kwargs)
    new.load_state_dict(ref.state_dict())  # the same parameters, under the same names
    assert list(new.state_dict()) == list(ref.state_dict())
    ref, new = ref.to(memory_format=layout), new.to(memory_format=layout)
    x = torch.randn(shape).contiguous(memory_format=layout)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, y_new = ref(x1), new(x2)
    torch.testing.assert_close(y_new, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y_ref).contiguous()  # a gradient in the other layout is brought back
    y_ref.backward(g)
    y_new.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-5)
    for a, b in zip(new.parameters(), ref.parameters()):  # float32 sums of ~5,000 terms: 1e-5 of the largest
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5 * float(b.grad.abs().max()))


def test_keras_conv_model_equals_the_reference_layers_with_the_same_weights():
    cfg = resolve("keras-conv").model
    torch.manual_seed(0)
    with fast_layers():
        model = build(cfg, (1, 28, 28))
    with reference_layers():
        ref = build(cfg, (1, 28, 28))
    from vaekit.nn import conv_ops

    assert any(isinstance(m, conv_ops.ConvTranspose2d) for m in model.modules())  # the fast layers
    assert not any(isinstance(m, conv_ops.ConvTranspose2d) for m in ref.modules())
    ref.load_state_dict(model.state_dict())  # old checkpoints load into the new layers and back
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    x = torch.rand(16, 1, 28, 28)
    torch.manual_seed(1)
    loss = model(x, None).loss
    torch.manual_seed(1)
    ref_loss = ref(x, None).loss
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-4)
    loss.backward()
    ref_loss.backward()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4, msg=name)


def test_blocks_are_built_from_the_fast_layers_by_default():
    from vaekit.nn import conv_ops

    model = build(resolve("keras-conv").model, (1, 28, 28))
    kinds = {type(m) for m in model.modules()}
    assert {conv_ops.Conv2d, conv_ops.ConvTranspose2d, conv_ops.ReLU} <= kinds
    assert not kinds & {nn.Conv2d, nn.ConvTranspose2d}


@pytest.mark.parametrize("ours, theirs, args, kwargs, shape", [CASES[1], CASES[4], CASES[5]])
def test_graph_captures_and_transforms_see_torchs_own_ops(ours, theirs, args, kwargs, shape):
    """Tracing (what the ONNX exporter does) records aten convolutions, not an opaque Python
    autograd.Function, and torch.func's jacrev (the contractive AE) gives torch's Jacobian."""
    torch.manual_seed(0)
    ref, new = theirs(*args, **kwargs), ours(*args, **kwargs)
    new.load_state_dict(ref.state_dict())
    x = torch.randn(2, *shape[1:])
    block = nn.Sequential(new, ReLU())
    graph = str(torch.jit.trace(block, x).inlined_graph)
    assert "aten::_convolution" in graph and "PythonOp" not in graph
    jac = torch.func.jacrev(lambda v: block(v[None])[0].sum((1, 2)))(x[0])
    jac_ref = torch.func.jacrev(lambda v: ref(v[None])[0].relu().sum((1, 2)))(x[0])
    torch.testing.assert_close(jac, jac_ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the no-grad path (evaluation, sampling) is the same function
        torch.testing.assert_close(block(x), ref(x).relu(), rtol=1e-5, atol=1e-5)
