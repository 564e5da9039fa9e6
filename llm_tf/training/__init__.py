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

import importlib

# Each public name and the module that defines it. Names load on first use (PEP 562), so importing one
# module of this package (the optimizer, say, when a saved model is reloaded) does not load the others.
_SUBMODULES = ("callbacks", "data", "loop", "losses", "optimizers", "precision", "resume", "run_dir", "schedules",
               "strategy", "timing")
_NAME_TO_MODULE = {
    "MetricsCSVLogger": "llm_tf.training.callbacks",
    "SafeModelCheckpoint": "llm_tf.training.callbacks",
    "StopOnNonFiniteLoss": "llm_tf.training.callbacks",
    "current_learning_rate": "llm_tf.training.callbacks",
    "standard_callbacks": "llm_tf.training.callbacks",
    "epoch_seed": "llm_tf.training.data",
    "infer_steps_per_epoch": "llm_tf.training.data",
    "resumable_dataset": "llm_tf.training.data",
    "seeded_epoch_batches": "llm_tf.training.data",
    "LabelSmoothedCrossentropy": "llm_tf.training.losses",
    "DEFAULT_WEIGHT_DECAY_EXCLUSIONS": "llm_tf.training.optimizers",
    "SelectiveAdamW": "llm_tf.training.optimizers",
    "build_optimizer": "llm_tf.training.optimizers",
    "excluded_from_weight_decay": "llm_tf.training.optimizers",
    "OPTIMIZER_UPDATES": "llm_tf.training.optimizers",
    "optimizer_update": "llm_tf.training.optimizers",
    "set_optimizer_update": "llm_tf.training.optimizers",
    "NATIVE_BFLOAT16_CPU_FEATURES": "llm_tf.training.precision",
    "PRECISIONS": "llm_tf.training.precision",
    "bfloat16_emulation_warning": "llm_tf.training.precision",
    "enable_determinism": "llm_tf.training.precision",
    "set_precision": "llm_tf.training.precision",
    "CheckpointError": "llm_tf.training.resume",
    "ResumableBackup": "llm_tf.training.resume",
    "atomic_write": "llm_tf.training.resume",
    "atomic_write_bytes": "llm_tf.training.resume",
    "atomic_write_csv": "llm_tf.training.resume",
    "capture_training_state": "llm_tf.training.resume",
    "read_backup": "llm_tf.training.resume",
    "restore_training_state": "llm_tf.training.resume",
    "write_backup": "llm_tf.training.resume",
    "RunDirectory": "llm_tf.training.run_dir",
    "create_run_dir": "llm_tf.training.run_dir",
    "find_resumable_run": "llm_tf.training.run_dir",
    "cpu_description": "llm_tf.training.run_dir",
    "cpu_summary": "llm_tf.training.run_dir",
    "library_versions": "llm_tf.training.run_dir",
    "machine_info": "llm_tf.training.run_dir",
    "write_json": "llm_tf.training.run_dir",
    "write_results": "llm_tf.training.run_dir",
    "NoamSchedule": "llm_tf.training.schedules",
    "WarmupCosineDecay": "llm_tf.training.schedules",
    "STRATEGY_NAMES": "llm_tf.training.strategy",
    "choose_strategy_name": "llm_tf.training.strategy",
    "configure_cpu_devices": "llm_tf.training.strategy",
    "get_strategy": "llm_tf.training.strategy",
    "is_chief": "llm_tf.training.strategy",
    "is_multi_worker": "llm_tf.training.strategy",
    "prepare_model_for_strategy": "llm_tf.training.strategy",
    "has_accelerator": "llm_tf.training.strategy",
    "resolve_jit_compile": "llm_tf.training.strategy",
    "TrainingResult": "llm_tf.training.loop",
    "add_training_arguments": "llm_tf.training.loop",
    "build_for_training": "llm_tf.training.loop",
    "setup_training": "llm_tf.training.loop",
    "train": "llm_tf.training.loop",
}

__all__ = sorted(_NAME_TO_MODULE)


def __getattr__(name):
    if name in _NAME_TO_MODULE:
        value = getattr(importlib.import_module(_NAME_TO_MODULE[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # ``training.resume.BACKUP_FILE_NAME`` and the like
        return importlib.import_module(f"llm_tf.training.{name}")
    raise AttributeError(f"module 'llm_tf.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
