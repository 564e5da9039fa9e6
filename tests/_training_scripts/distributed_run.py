"""Train a tiny next-token model for a few steps under a given strategy and record what happened.

Modes:
  local        one process, two runs: TensorFlow's default strategy ("single", the reference), then
               MirroredStrategy over ``--cpu-devices`` logical CPU devices ("mirrored").
  worker       one of the workers of a MultiWorkerMirroredStrategy cluster on 127.0.0.1 (``--ports``,
               ``--worker-index``); ``TF_CONFIG`` is set here, before TensorFlow starts.

Every run uses the same initial weights (drawn with NumPy), the same data order and the same global batch, and
trains through ``llm_tf.training.train`` with a run directory (chief writes, backups every 2 steps). It writes
``<out-dir>/<name>.npz`` (final weights) and ``<out-dir>/<name>.json`` (per-step running losses, per-epoch
history, and for workers the example ids each worker received per epoch).
"""

import argparse
import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

VOCAB, SEQUENCE, EXAMPLES, GLOBAL_BATCH, EPOCHS = 20, 5, 32, 8, 2


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("local", "worker"), required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--runs-root", required=True)
    parser.add_argument("--cpu-devices", type=int, default=2)
    parser.add_argument("--ports", default="")
    parser.add_argument("--worker-index", type=int, default=0)
    parser.add_argument("--seed", type=int, default=3)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.mode == "worker":
        ports = [int(port) for port in args.ports.split(",")]
        os.environ["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                "task": {"type": "worker", "index": args.worker_index},
            }
        )

    from llm_tf import training

    if args.mode == "local":
        # Logical devices first: TensorFlow must not be initialised before this.
        mirrored = training.get_strategy("mirrored", num_cpu_devices=args.cpu_devices)
        runs = [("single", training.get_strategy("default")), ("mirrored", mirrored)]
    else:
        strategy = training.get_strategy("auto")
        assert training.is_multi_worker(strategy), type(strategy).__name__
        runs = [(f"worker{args.worker_index}", strategy)]
    training.enable_determinism(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    for name, strategy in runs:
        record, weights = train_once(args, name, strategy)
        np.savez(os.path.join(args.out_dir, f"{name}.npz"), *weights)
        with open(os.path.join(args.out_dir, f"{name}.json"), "w") as file:
            json.dump(record, file)
        print("DONE", name, flush=True)
    if args.mode == "worker":
        # Everything is written; skip the collective runtime's slow teardown (seconds per worker).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def train_once(args, name, strategy):
    import keras
    import tensorflow as tf

    from llm_tf import training

    with strategy.scope():
        token_ids = keras.Input((SEQUENCE,), dtype="int32", name="token_ids")
        padding_mask = keras.Input((SEQUENCE,), dtype="bool", name="padding_mask")
        hidden = keras.layers.Embedding(VOCAB, 8, name="embedding")(token_ids)
        hidden = keras.layers.Dense(16, activation="gelu", name="hidden")(hidden)
        hidden = keras.layers.LayerNormalization(name="norm")(hidden)
        logits = keras.layers.Dense(VOCAB, name="head")(hidden)
        model = keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, logits)
        model.compile(
            optimizer=training.build_optimizer(
                training.WarmupCosineDecay(2e-2, warmup_steps=2, total_steps=8),
                weight_decay=0.01,
                global_clipnorm=0.5,  # small enough to be active: clipping of the global gradient is tested
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    initial = np.random.RandomState(0)
    model.set_weights([initial.normal(0.0, 0.3, size=w.shape).astype("float32") for w in model.get_weights()])

    rng = np.random.RandomState(1)
    tokens = rng.randint(1, VOCAB, size=(EXAMPLES, SEQUENCE + 1)).astype("int32")
    mask = np.arange(SEQUENCE + 1)[None, :] < rng.randint(3, SEQUENCE + 2, size=EXAMPLES)[:, None]
    tokens = np.where(mask, tokens, 0)
    examples = tf.data.Dataset.from_tensor_slices(
        (
            {"token_ids": tokens[:, :-1], "padding_mask": mask[:, :-1]},
            tokens[:, 1:],
            mask[:, 1:].astype("float32"),
        )
    )
    batches_for_epoch = training.seeded_epoch_batches(examples, GLOBAL_BATCH, seed=args.seed)

    class RecordLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step_losses = []

        def on_train_batch_end(self, batch, logs=None):
            self.step_losses.append(float(logs["loss"]))

    recorder = RecordLosses()
    run = training.create_run_dir(
        "distributed_test",
        root=args.runs_root,
        config={"mode": args.mode},
        resume="never",
        run_name="workers" if args.mode == "worker" else name,
        write=training.is_chief(strategy),
    )
    result = training.train(
        model,
        batches_for_epoch,
        epochs=EPOCHS,
        run_dir=run,
        callbacks=[recorder],
        log_every_n_steps=2,
        backup_every_n_steps=2,
        tensorboard=False,
        plot=False,
        verbose=0,
        strategy=strategy,
    )
    record = {
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "step_losses": recorder.step_losses,
        "history": result.history,
        "status": result.status,
        "is_chief": training.is_chief(strategy),
        "run_dir": run.path,
        "evaluate": model.evaluate(batches_for_epoch(0), verbose=0, return_dict=True),
    }
    if args.mode == "worker":
        # Which examples did this worker get? Same pipeline shape as training, with the example index as data.
        ids_for_epoch = training.seeded_epoch_batches(
            tf.data.Dataset.range(EXAMPLES), GLOBAL_BATCH, seed=args.seed
        )
        stream = training.resumable_dataset(ids_for_epoch, EPOCHS, EXAMPLES // GLOBAL_BATCH)
        seen = []
        for batch in strategy.experimental_distribute_dataset(stream):
            local = strategy.experimental_local_results(batch)
            seen.append([int(i) for part in local for i in part.numpy()])
        record["ids_per_step"] = seen
    return record, [np.asarray(w) for w in model.get_weights()]


if __name__ == "__main__":
    main()
