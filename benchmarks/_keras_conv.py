"""The convolutional VAE of the keras.io "Variational AutoEncoder" example (F. Chollet), re-written
here; run by bench_conv.py inside the TensorFlow venv.

Usage: ``python _keras_conv.py DATA.npy --epochs N --threads T --seed S``, where DATA.npy is float32
(N, 28, 28, 1) in [0, 1] (the example uses all 70k MNIST images / 255). Prints one line
``BENCH_RESULT {json}``: per-epoch seconds (a Keras callback), the last epoch's loss,
reconstruction and KL terms, every epoch's terms (``curve``), the trained model's loss on all the images
(``final_model``), and the encoder/decoder parameter counts (69,076 and 65,089).

Same model and objective as the example: two stride-2 3x3 convolutions (32, 64) -> Dense 16 ->
a 2-D Gaussian latent; Dense 7*7*64 -> two stride-2 transposed convolutions (64, 32) -> a sigmoid
transposed convolution; loss = batch mean of (BCE summed over pixels + analytic KL); Adam with
Keras defaults; batch 128; ``fit`` shuffles every epoch. Only ``verbose=0`` differs (no progress bar).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

EXPECTED_PARAMS = {"encoder": 69_076, "decoder": 65_089}


def build(latent: int, seed: int):  # noqa: ANN201 - keras types, imported late
    import keras
    import tensorflow as tf
    from keras import layers, ops

    class Sampling(layers.Layer):
        """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): the reparameterisation trick."""

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.rng = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            mean, log_var = inputs
            eps = keras.random.normal(ops.shape(mean), seed=self.rng)
            return mean + ops.exp(0.5 * log_var) * eps

    image = keras.Input(shape=(28, 28, 1))
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(image)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Dense(16, activation="relu")(layers.Flatten()(h))
    mean = layers.Dense(latent, name="z_mean")(h)
    log_var = layers.Dense(latent, name="z_log_var")(h)
    encoder = keras.Model(image, [mean, log_var, Sampling()([mean, log_var])], name="encoder")

    code = keras.Input(shape=(latent,))
    h = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(code))
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    pixels = layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(h)
    decoder = keras.Model(code, pixels, name="decoder")

    class VAE(keras.Model):
        """Encoder + decoder with a hand-written training step on the negative ELBO."""

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.loss_mean = keras.metrics.Mean(name="loss")
            self.recon_mean = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_mean = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.loss_mean, self.recon_mean, self.kl_mean]

        def train_step(self, x):
            with tf.GradientTape() as tape:
                mean, log_var, z = self.encoder(x)
                x_hat = self.decoder(z)
                # binary_crossentropy averages the size-1 channel axis; sum the 28x28 pixels.
                recon = ops.mean(ops.sum(keras.losses.binary_crossentropy(x, x_hat), axis=(1, 2)))
                kl = -0.5 * (1 + log_var - ops.square(mean) - ops.exp(log_var))
                kl = ops.mean(ops.sum(kl, axis=1))
                total = recon + kl
            grads = tape.gradient(total, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            for tracker, value in zip(self.metrics, (total, recon, kl)):
                tracker.update_state(value)
            return {m.name: m.result() for m in self.metrics}

    return VAE(), encoder, decoder


def setup_tf(threads: int, seed: int):  # noqa: ANN201 - (tensorflow, keras) modules, imported here
    """TensorFlow with ``threads`` intra- and inter-op threads, and Keras seeded with ``seed``."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    keras.utils.set_random_seed(seed)
    return tf, keras


def final_model_loss(encoder, decoder, digits: np.ndarray, batch: int = 1000) -> dict:  # noqa: ANN001
    """The trained model's loss on all of ``digits`` (z sampled, as in training): what vaekit logs
    as ``trainset_loss``. The example itself prints only the running means of fit()."""
    import keras
    from keras import ops

    sums = np.zeros(2)
    for i in range(0, len(digits), batch):
        x = digits[i : i + batch]
        mean, log_var, z = encoder(x, training=False)
        recon = ops.sum(keras.losses.binary_crossentropy(x, decoder(z, training=False)), axis=(1, 2))
        kl = ops.sum(-0.5 * (1 + log_var - ops.square(mean) - ops.exp(log_var)), axis=1)
        sums += [float(ops.sum(recon)), float(ops.sum(kl))]
    recon, kl = sums / len(digits)
    return {"loss": recon + kl, "recon": recon, "kl": kl}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()

    tf, keras = setup_tf(args.threads, args.seed)
    digits = np.load(args.data)
    vae, encoder, decoder = build(latent=2, seed=args.seed)
    vae.compile(optimizer=keras.optimizers.Adam())

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []  # CPU time of all the process's threads
            self.logs: dict = {}
            self.curve: list[dict] = []  # every epoch's running means, as Keras prints them

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self.start)
            self.cpu_seconds.append(time.process_time() - self.cpu_start)
            self.logs = {k: float(v) for k, v in (logs or {}).items()}
            self.curve.append(self.logs)
            print(f"epoch {epoch + 1}: {self.seconds[-1]:.2f}s {self.logs}", flush=True)

    timer = EpochTimer()
    vae.fit(digits, epochs=args.epochs, batch_size=args.batch_size, verbose=0, callbacks=[timer])
    params = {"encoder": encoder.count_params(), "decoder": decoder.count_params()}
    result = {
        "seconds": [round(s, 4) for s in timer.seconds],
        "cpu_seconds": [round(s, 4) for s in timer.cpu_seconds],
        "loss": timer.logs.get("loss"),
        "recon": timer.logs.get("reconstruction_loss"),
        "kl": timer.logs.get("kl_loss"),
        "curve": [{"loss": e.get("loss"), "recon": e.get("reconstruction_loss"), "kl": e.get("kl_loss")}
                  for e in timer.curve],
        "final_model": final_model_loss(encoder, decoder, digits),
        "params": params,
        "params_match_tutorial": params == EXPECTED_PARAMS,
        "jit_compile": bool(getattr(vae, "jit_compile", False)),
        "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter": tf.config.threading.get_inter_op_parallelism_threads()},
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "images": int(len(digits)),
    }
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
