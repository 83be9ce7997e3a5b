"""Every public layer checks its arguments in `__init__`, naming the value received."""

import pytest

from keras_autalk.layers import TCSABlock, TCSAStack, TemporalConv, TemporalSelfAttention

BAD = [
    (TemporalConv, dict(filters=0), "`filters` must be a positive integer. Received: filters=0"),
    (
        TemporalConv,
        dict(filters=8, kernel_size=2.5),
        "`kernel_size` must be a positive integer. Received: kernel_size=2.5",
    ),
    (
        TemporalConv,
        dict(filters=8, dilation_rate=-1),
        "`dilation_rate` must be a positive integer. Received: dilation_rate=-1",
    ),
    (
        TemporalSelfAttention,
        dict(num_heads=0, key_dim=4),
        "`num_heads` must be a positive integer. Received: num_heads=0",
    ),
    (
        TemporalSelfAttention,
        dict(num_heads=2, key_dim="four"),
        "`key_dim` must be a positive integer. Received: key_dim='four'",
    ),
    (
        TemporalSelfAttention,
        dict(num_heads=2, key_dim=4, dropout=1.0),
        r"`dropout` must be a number in \[0, 1\). Received: dropout=1.0",
    ),
    (
        TCSABlock,
        dict(channels=10, num_heads=3),
        "`channels` must be divisible by `num_heads`. Received: channels=10, num_heads=3",
    ),
    (
        TCSABlock,
        dict(channels=8, dilation_rate=0),
        "`dilation_rate` must be a positive integer. Received: dilation_rate=0",
    ),
    (
        TCSABlock,
        dict(channels=8, feedforward_channels=0),
        "`feedforward_channels` must be a positive integer. Received: feedforward_channels=0",
    ),
    (
        TCSAStack,
        dict(channels=12, num_heads=5),
        "`channels` must be divisible by `num_heads`. Received: channels=12, num_heads=5",
    ),
    (TCSAStack, dict(channels=8, dilations=()), r"`dilations` needs at least one dilation rate"),
    (
        TCSAStack,
        dict(channels=8, dilations=(1, 0)),
        "`dilations` must be a positive integer. Received: dilations=0",
    ),
    (
        TCSAStack,
        dict(channels=8, dropout=-0.1),
        r"`dropout` must be a number in \[0, 1\). Received: dropout=-0.1",
    ),
]


@pytest.mark.parametrize(
    "layer, arguments, message",
    BAD,
    ids=[
        f"{layer.__name__}-{'-'.join(map(str, arguments.values()))}" for layer, arguments, _ in BAD
    ],
)
def test_a_bad_argument_is_refused_where_it_is_given(layer, arguments, message):
    with pytest.raises(ValueError, match=message):
        layer(**arguments)


def test_the_conv_ablation_needs_no_divisible_width():
    # Without attention there are no heads to split the channels over.
    assert TCSAStack(channels=10, num_heads=3, use_attention=False).channels == 10
    assert TemporalConv(filters=8.0).filters == 8  # a whole float is a whole number
