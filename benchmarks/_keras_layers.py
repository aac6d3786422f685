"""Per-layer milliseconds of the keras.io convolutional VAE's layers in TensorFlow; run by
``profile_conv.py --keras`` inside the TensorFlow venv.

Usage: ``python _keras_layers.py --rounds R --threads T``. Prints one line ``BENCH_RESULT {json}``:
for each of the example's five convolution layers (with their activations, as Keras fuses them in
one layer), the median wall milliseconds over ``R`` rounds of a forward pass and of a forward pass
plus the gradients a training step needs (w.r.t. the kernel and bias, and w.r.t. the input except
for the first layer, whose input is data), each a ``tf.function`` on random tensors of the training
shapes (batch 128, NHWC, the layout TensorFlow uses); and a whole training step of the example
(``VAE.train_step`` from ``_keras_conv.py`` in a ``tf.function``, Adam, batch 128). Layers are timed
round-robin, so load from other processes hits every layer alike.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

BATCH = 128
# name (vaekit's layer), Keras layer, input shape (NHWC), gradient w.r.t. the input too
LAYERS = [
    ("encoder.conv.0", "Conv2D", dict(filters=32, kernel_size=3, strides=2, padding="same", activation="relu"),
     (BATCH, 28, 28, 1), False),
    ("encoder.conv.2", "Conv2D", dict(filters=64, kernel_size=3, strides=2, padding="same", activation="relu"),
     (BATCH, 14, 14, 32), True),
    ("decoder.deconv.0", "Conv2DTranspose", dict(filters=64, kernel_size=3, strides=2, padding="same", activation="relu"),
     (BATCH, 7, 7, 64), True),
    ("decoder.deconv.2", "Conv2DTranspose", dict(filters=32, kernel_size=3, strides=2, padding="same", activation="relu"),
     (BATCH, 14, 14, 64), True),
    ("decoder.deconv.4", "Conv2DTranspose", dict(filters=1, kernel_size=3, strides=1, padding="same", activation="sigmoid"),
     (BATCH, 28, 28, 32), True),
]


def layer_fns(tf, keras) -> dict:  # noqa: ANN001
    """name -> (forward fn, forward+gradients fn), each a compiled tf.function on fixed tensors."""
    fns = {}
    rng = np.random.default_rng(0)
    for name, kind, kwargs, shape, input_grad in LAYERS:
        layer = getattr(keras.layers, kind)(**kwargs)
        x = tf.constant(rng.random(shape, dtype=np.float32))
        y = layer(x)  # builds the weights
        g = tf.constant(rng.standard_normal(y.shape, dtype=np.float32))

        @tf.function
        def fwd(layer=layer, x=x):
            return layer(x)

        @tf.function
        def both(layer=layer, x=x, g=g, input_grad=input_grad):
            with tf.GradientTape() as tape:
                if input_grad:
                    tape.watch(x)
                y = layer(x)
            wrt = ([x] if input_grad else []) + list(layer.trainable_weights)
            return tape.gradient(y, wrt, output_gradients=g)

        fns[name] = (fwd, both)
    return fns


def step_fn(tf, keras, seed: int):  # noqa: ANN001, ANN201
    """One training step of the example, as fit() runs it (a tf.function around train_step)."""
    from _keras_conv import build

    vae, _, _ = build(latent=2, seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam())
    x = tf.constant(np.random.default_rng(seed).random((BATCH, 28, 28, 1), dtype=np.float32))
    vae.optimizer.build(vae.trainable_weights)
    return tf.function(lambda: vae.train_step(x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from _keras_conv import setup_tf

    tf, keras = setup_tf(args.threads, args.seed)
    fns = layer_fns(tf, keras)
    flat = {f"{n}/f": f for n, (f, _) in fns.items()} | {f"{n}/fb": b for n, (_, b) in fns.items()}
    flat["step"] = step_fn(tf, keras, args.seed)
    for f in flat.values():  # trace and warm up
        f()
        f()
    times: dict[str, list[float]] = {k: [] for k in flat}
    for _ in range(args.rounds):
        for k, f in flat.items():
            t = time.perf_counter()
            out = f()
            tf.nest.map_structure(lambda v: v.numpy() if hasattr(v, "numpy") else v, out)  # wait for it
            times[k].append((time.perf_counter() - t) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    layers = [{"layer": n, "forward_ms": round(med[f"{n}/f"], 3), "backward_ms": round(med[f"{n}/fb"] - med[f"{n}/f"], 3)}
              for n, *_ in LAYERS]
    print("BENCH_RESULT " + json.dumps({"layers": layers, "step_ms": round(med["step"], 3),
                                        "tensorflow": tf.__version__, "keras": keras.__version__}), flush=True)


if __name__ == "__main__":
    main()
