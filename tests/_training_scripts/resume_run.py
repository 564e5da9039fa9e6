"""A short, seeded training run used by the crash/resume and determinism tests.

Run it twice with the same arguments: the second run resumes the first one's run directory if that run was
killed (``create_run_dir(resume="auto")``). On completion it writes ``final_weights.npz`` and ``summary.json``
into ``--out-dir``. ``--step-delay`` slows every step down so a test can kill the process mid-epoch.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from llm_tf import training  # noqa: E402

VOCAB, SEQUENCE, EXAMPLES, BATCH = 24, 6, 40, 4


class SlowDown(keras.callbacks.Callback):
    """Sleeps after every step so that the test has time to kill the run mid-epoch."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def build_model(seed):
    token_ids = keras.Input((SEQUENCE,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((SEQUENCE,), dtype="bool", name="padding_mask")
    hidden = keras.layers.Embedding(VOCAB, 16, name="token_embedding")(token_ids)
    hidden = keras.layers.Dense(32, activation="gelu", name="ffn_in")(hidden)
    hidden = keras.layers.Dropout(0.2, seed=seed, name="dropout")(hidden)
    hidden = keras.layers.LayerNormalization(name="final_norm")(hidden)
    logits = keras.layers.Dense(VOCAB, name="lm_head")(hidden)
    return keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, logits)


def make_examples():
    rng = np.random.RandomState(123)
    tokens = rng.randint(1, VOCAB, size=(EXAMPLES, SEQUENCE + 1)).astype("int32")
    lengths = rng.randint(3, SEQUENCE + 2, size=EXAMPLES)
    mask = np.arange(SEQUENCE + 1)[None, :] < lengths[:, None]
    tokens = np.where(mask, tokens, 0)
    inputs = {"token_ids": tokens[:, :-1], "padding_mask": mask[:, :-1]}
    return tf.data.Dataset.from_tensor_slices((inputs, tokens[:, 1:], mask[:, 1:].astype("float32")))


def main():
    parser = training.add_training_arguments(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--step-delay", type=float, default=0.0)
    args = parser.parse_args()

    strategy = training.setup_training(
        strategy=args.strategy, num_cpu_devices=args.num_cpu_devices, precision=args.precision, seed=args.seed
    )
    config = {"seed": args.seed, "epochs": args.epochs, "batch": BATCH, "backup": args.backup_every_n_steps}
    run = training.create_run_dir("resume_test", root=args.runs_root, config=config, resume=args.resume)
    print(f"RUN_DIR {run.path} resumed={run.resumed}", flush=True)
    with strategy.scope():
        model = build_model(args.seed)
        steps = args.epochs * (EXAMPLES // BATCH)
        schedule = training.WarmupCosineDecay(5e-3, warmup_steps=4, total_steps=steps)
        model.compile(
            optimizer=training.build_optimizer(schedule, weight_decay=0.05, global_clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    examples = make_examples()
    batches_for_epoch = training.seeded_epoch_batches(examples, BATCH, seed=args.seed)
    validation = examples.take(12).batch(BATCH)
    extra = [SlowDown(args.step_delay)] if args.step_delay > 0 else []
    result = training.train(
        model,
        batches_for_epoch,
        validation,
        epochs=args.epochs,
        run_dir=run,
        callbacks=extra,
        log_every_n_steps=args.log_every_n_steps,
        backup_every_n_steps=args.backup_every_n_steps,
        tensorboard=False,
        plot=False,
        verbose=0,
    )
    os.makedirs(args.out_dir, exist_ok=True)
    np.savez(os.path.join(args.out_dir, "final_weights.npz"), *[np.asarray(w) for w in model.get_weights()])
    with open(os.path.join(args.out_dir, "summary.json"), "w") as file:
        json.dump(
            {
                "status": result.status,
                "history": result.history,
                "resumed_from": result.resumed_from,
                "run_dir": run.path,
                "optimizer_iterations": int(model.optimizer.iterations.numpy()),
            },
            file,
        )
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
