"""Training: strategies, optimizers and schedules, precision, run directories, callbacks and exact resume.

Typical experiment::

    from llm_tf import training

    parser = training.add_training_arguments(argparse.ArgumentParser())
    args = parser.parse_args()
    strategy = training.setup_training(strategy=args.strategy, num_cpu_devices=args.num_cpu_devices,
                                       precision=args.precision, seed=args.seed)  # + op determinism
    run = training.create_run_dir("news", root=args.runs_root, config=config, resume=args.resume)
    with strategy.scope():
        model = build_model(config)
        schedule = training.WarmupCosineDecay(5e-4, warmup_steps=200, total_steps=total_steps)
        model.compile(optimizer=training.build_optimizer(schedule, weight_decay=0.01), loss=..., metrics=...)
    batches_for_epoch = training.seeded_epoch_batches(examples, batch_size=32, seed=args.seed)
    result = training.train(model, batches_for_epoch, val_batches, epochs=10, run_dir=run,
                            backup_every_n_steps=args.backup_every_n_steps)
"""

from llm_tf.training.callbacks import (
    MetricsCSVLogger,
    SafeModelCheckpoint,
    StopOnNonFiniteLoss,
    current_learning_rate,
    standard_callbacks,
)
from llm_tf.training.data import epoch_seed, infer_steps_per_epoch, resumable_dataset, seeded_epoch_batches
from llm_tf.training.losses import LabelSmoothedCrossentropy
from llm_tf.training.optimizers import (
    DEFAULT_WEIGHT_DECAY_EXCLUSIONS,
    SelectiveAdamW,
    build_optimizer,
    excluded_from_weight_decay,
)
from llm_tf.training.precision import PRECISIONS, enable_determinism, set_precision
from llm_tf.training.resume import (
    CheckpointError,
    ResumableBackup,
    atomic_write,
    atomic_write_bytes,
    atomic_write_csv,
    capture_training_state,
    read_backup,
    restore_training_state,
    write_backup,
)
from llm_tf.training.run_dir import (
    RunDirectory,
    create_run_dir,
    find_resumable_run,
    library_versions,
    machine_info,
    write_json,
    write_results,
)
from llm_tf.training.schedules import NoamSchedule, WarmupCosineDecay
from llm_tf.training.strategy import (
    STRATEGY_NAMES,
    choose_strategy_name,
    configure_cpu_devices,
    get_strategy,
    is_chief,
    is_multi_worker,
    prepare_model_for_strategy,
    resolve_jit_compile,
)
from llm_tf.training.train import (
    TrainingResult,
    add_training_arguments,
    build_for_training,
    setup_training,
    train,
)

__all__ = [
    "DEFAULT_WEIGHT_DECAY_EXCLUSIONS",
    "LabelSmoothedCrossentropy",
    "PRECISIONS",
    "STRATEGY_NAMES",
    "CheckpointError",
    "MetricsCSVLogger",
    "NoamSchedule",
    "ResumableBackup",
    "RunDirectory",
    "SafeModelCheckpoint",
    "SelectiveAdamW",
    "StopOnNonFiniteLoss",
    "TrainingResult",
    "WarmupCosineDecay",
    "add_training_arguments",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_csv",
    "build_for_training",
    "build_optimizer",
    "capture_training_state",
    "choose_strategy_name",
    "configure_cpu_devices",
    "create_run_dir",
    "current_learning_rate",
    "enable_determinism",
    "epoch_seed",
    "excluded_from_weight_decay",
    "find_resumable_run",
    "get_strategy",
    "infer_steps_per_epoch",
    "is_chief",
    "is_multi_worker",
    "library_versions",
    "machine_info",
    "prepare_model_for_strategy",
    "read_backup",
    "resolve_jit_compile",
    "restore_training_state",
    "resumable_dataset",
    "seeded_epoch_batches",
    "set_precision",
    "setup_training",
    "standard_callbacks",
    "train",
    "write_backup",
    "write_json",
    "write_results",
]
