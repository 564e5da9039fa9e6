"""AdamW for Transformers: decoupled weight decay that skips biases, normalization weights and embeddings.

Keras's ``AdamW.exclude_from_weight_decay`` only matches the short variable name and is not part of the
optimizer's config, so the exclusions would be lost when a saved model is reloaded. ``SelectiveAdamW`` decides
by the variable's full path and rank and keeps its rules in its config.

``SelectiveAdamW(fused=True)`` updates all weights of one (dtype, decayed or not, learning-rate factor) group as
one flat buffer: one concatenation of the gradients, one chain of elementwise ops, one split back into the
variables, instead of Keras's ~20 ops per variable. Same arithmetic as Keras's AdamW (tested equal after many
steps); the traced training step has a few ops per variable instead of tens, so it traces and compiles faster.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from llm_tf.checks import check_choice, check_number, is_number

DEFAULT_WEIGHT_DECAY_EXCLUSIONS = ("bias", "norm", "embedding")

#: How ``build_optimizer`` updates the weights: ``"fused"`` (a few flat buffers) or ``"per-variable"`` (Keras's
#: own AdamW update, the rule of every result made before the fused update became the default).
OPTIMIZER_UPDATES = ("fused", "per-variable")
_default_optimizer_update = "fused"


def set_optimizer_update(name: str = "fused") -> str:
    """Set the update rule that :func:`build_optimizer` uses when it is not given ``fused``.

    The process-wide default, like Keras's dtype policy: an experiment sets it once at start-up
    (``setup_training(optimizer_update=...)``, the ``--optimizer-update`` flag), and every task that builds an
    optimizer follows it. Both rules give the same weights under XLA; without XLA an embedding's sparse
    gradient is summed per token before squaring by the fused rule and squared row by row by Keras's, so
    ``"per-variable"`` reproduces results made with Keras's update.

    Args:
        name: one of :data:`OPTIMIZER_UPDATES`.

    Returns:
        The rule now in force.

    Example:
        >>> set_optimizer_update("per-variable")
        'per-variable'
        >>> build_optimizer(1e-3).fused
        False
        >>> set_optimizer_update("fused")
        'fused'
    """
    global _default_optimizer_update
    check_choice("optimizer_update", name, OPTIMIZER_UPDATES)
    _default_optimizer_update = name
    return name


def optimizer_update() -> str:
    """The update rule in force (see :func:`set_optimizer_update`): ``"fused"`` or ``"per-variable"``."""
    return _default_optimizer_update


def excluded_from_weight_decay(
    variable, patterns=DEFAULT_WEIGHT_DECAY_EXCLUSIONS, exclude_vectors=True
) -> bool:
    """Whether ``variable`` should be left out of weight decay.

    A variable is excluded when its rank is 0 or 1 and ``exclude_vectors`` is set (biases, LayerNorm gamma and
    beta, scalars), or when one of ``patterns`` occurs (case-insensitively, as a regular expression) in its
    path (e.g. ``"encoder_block_0/attention_norm/gamma"`` or
    ``"token_and_position_embedding/token_embeddings"``).

    Args:
        variable: a ``keras.Variable`` (anything with ``path`` or ``name`` and ``shape``).
        patterns: regular expressions searched in the variable path.
        exclude_vectors: exclude every variable of rank <= 1.

    Returns:
        True when no weight decay should be applied.

    Example:
        >>> excluded_from_weight_decay(keras.Variable(keras.ops.zeros((3,)), name="bias"))
        True
    """
    if exclude_vectors and len(variable.shape) <= 1:
        return True
    path = str(getattr(variable, "path", None) or variable.name)
    return any(re.search(pattern, path, flags=re.IGNORECASE) for pattern in patterns)


@keras.saving.register_keras_serializable(package="llm_tf")
class SelectiveAdamW(keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` whose weight decay skips variables chosen by path and rank.

    See :func:`excluded_from_weight_decay` for the rule. The exclusion settings are part of ``get_config``, so
    a model saved with this optimizer reloads with the same behaviour.

    Args:
        exclude_from_weight_decay_patterns: regular expressions searched in variable paths.
        exclude_vectors: exclude every variable of rank <= 1 (biases, normalization scales and offsets).
        learning_rate_multipliers: optional ``{variable path: factor}``; a variable's Adam step uses
            ``learning_rate * factor`` (e.g. layer-wise decay for fine-tuning; the decoupled weight decay keeps
            the base rate). Paths not listed use factor 1.
        fused: keep the first and second moments of all variables that share a dtype, a weight-decay choice and
            a learning-rate factor in one flat buffer each, and update each such group with one chain of
            elementwise ops over the concatenated gradients (the same arithmetic). The optimizer state then
            holds a few flat vectors instead of two per variable, so a backup made with one setting does not
            restore into the other. Under a ``tf.distribute`` strategy that mirrors variables the per-variable
            update is used (``fused_active`` says which one runs). Sparse gradients (an embedding lookup's
            ``tf.IndexedSlices``) are made dense first, so clipping and Adam see a repeated token's summed
            gradient (Keras squares its rows separately). Not with ``amsgrad``.
        **kwargs: every ``keras.optimizers.AdamW`` argument (``learning_rate``, ``weight_decay``, ``beta_1``,
            ``beta_2``, ``epsilon``, ``clipnorm``, ``global_clipnorm``, ...).

    Returns:
        An optimizer.

    Example:
        >>> optimizer = SelectiveAdamW(learning_rate=1e-3, weight_decay=0.01)
        >>> optimizer.exclude_vectors
        True
    """

    def __init__(
        self,
        exclude_from_weight_decay_patterns=DEFAULT_WEIGHT_DECAY_EXCLUSIONS,
        exclude_vectors=True,
        learning_rate_multipliers=None,
        fused=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if fused and self.amsgrad:
            raise ValueError("SelectiveAdamW(fused=True) does not implement amsgrad; set fused=False or amsgrad=False.")
        self.fused = bool(fused)
        self._fused_groups = []
        multipliers = dict(learning_rate_multipliers or {})
        for path, factor in multipliers.items():
            if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 0:
                raise ValueError(f"`learning_rate_multipliers` must map variable paths to positive numbers; got "
                                 f"{path!r}: {factor!r}.")
        self.learning_rate_multipliers = {str(path): float(factor) for path, factor in multipliers.items()}
        patterns = (
            [exclude_from_weight_decay_patterns]
            if isinstance(exclude_from_weight_decay_patterns, str)
            else list(exclude_from_weight_decay_patterns or ())
        )
        for pattern in patterns:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                raise ValueError(
                    "exclude_from_weight_decay_patterns must hold regular expressions; got "
                    f"exclude_from_weight_decay_patterns={exclude_from_weight_decay_patterns!r}"
                ) from error
        self.exclude_from_weight_decay_patterns = tuple(patterns)
        self.exclude_vectors = bool(exclude_vectors)

    def _use_weight_decay(self, variable):
        # Keras's own exclusions (exclude_from_weight_decay()) still apply; ours are added on top.
        if not super()._use_weight_decay(variable):
            return False
        excluded = excluded_from_weight_decay(
            variable, self.exclude_from_weight_decay_patterns, self.exclude_vectors
        )
        return not excluded

    @property
    def fused_active(self) -> bool:
        """Whether the flat (fused) update runs: ``fused`` was asked for and the optimizer is built for it."""
        return bool(self._fused_groups)

    def build(self, var_list):
        if self.built:
            return
        # By index: under TensorFlow, update_step receives the raw tf.Variable, which has no Keras path.
        self._learning_rate_factors = [self.learning_rate_multipliers.get(v.path, 1.0) for v in var_list]
        if not (self.fused and _plain_variables()):
            super().build(var_list)
            return
        # Keras's base build (iterations, EMA, gradient accumulators) without Adam's per-variable moments.
        keras.optimizers.Optimizer.build(self, var_list)
        groups = {}
        for index, variable in enumerate(var_list):
            key = (keras.backend.standardize_dtype(variable.dtype), self._use_weight_decay(variable),
                   self._learning_rate_factors[index])
            groups.setdefault(key, []).append(index)
        self._fused_groups = []
        for number, ((dtype, decays, factor), indices) in enumerate(groups.items()):
            sizes = [math.prod(var_list[i].shape) for i in indices]
            self._fused_groups.append(_FusedGroup(
                indices=indices, sizes=sizes, dtype=dtype, decays=decays, factor=factor,
                momentum=self.add_variable((sum(sizes),), "zeros", dtype, name=f"fused_momentum_{number}"),
                velocity=self.add_variable((sum(sizes),), "zeros", dtype, name=f"fused_velocity_{number}"),
            ))

    def apply(self, grads, trainable_variables=None):
        if self.fused:
            # Dense before clipping, for the flat update and for the per-variable one under a mirroring strategy
            # alike: clipping and Adam's second moment see a repeated token's summed gradient (with XLA, Keras's
            # gradients are dense too).
            grads = densify_gradients(grads)
        return super().apply(grads, trainable_variables)

    def _apply_weight_decay(self, variables):
        if self.fused_active:
            return  # folded into the flat update (_backend_update_step)
        super()._apply_weight_decay(variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self.fused_active:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        ops = keras.ops
        gradients = {self._get_variable_index(v): g for g, v in zip(grads, trainable_variables)}
        variables = self._trainable_variables
        for group in self._fused_groups:
            dtype = group.dtype
            step = ops.cast(self.iterations + 1, dtype)
            beta_1_power = ops.power(ops.cast(self.beta_1, dtype), step)
            beta_2_power = ops.power(ops.cast(self.beta_2, dtype), step)
            base_rate = ops.cast(learning_rate, dtype)
            rate = base_rate * group.factor if group.factor != 1.0 else base_rate
            alpha = rate * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            # A variable without a gradient (Keras filtered it out) keeps its value and its moments.
            present = [i in gradients for i in group.indices]
            flat_gradient = ops.concatenate([
                ops.reshape(ops.cast(gradients[i], dtype), (-1,)) if i in gradients else ops.zeros((size,), dtype)
                for i, size in zip(group.indices, group.sizes)
            ])
            momentum, velocity = group.momentum, group.velocity
            new_momentum = momentum + ops.multiply(ops.subtract(flat_gradient, momentum), 1 - self.beta_1)
            new_velocity = velocity + ops.multiply(
                ops.subtract(ops.square(flat_gradient), velocity), 1 - self.beta_2)
            if not all(present):
                new_momentum = _keep_segments(new_momentum, momentum, group.sizes, present)
                new_velocity = _keep_segments(new_velocity, velocity, group.sizes, present)
            momentum.assign(new_momentum)
            velocity.assign(new_velocity)
            flat_update = ops.divide(ops.multiply(new_momentum, alpha), ops.add(ops.sqrt(new_velocity), self.epsilon))
            decay = group.decays and self.weight_decay is not None
            weight_decay = ops.cast(self.weight_decay, dtype) if decay else None
            offset = 0
            for i, size, has_gradient in zip(group.indices, group.sizes, present):
                variable = variables[i]
                if has_gradient:
                    value = variable.value
                    if decay:  # as Keras: the decoupled decay first, at the base rate, then the Adam step
                        value = value - value * weight_decay * base_rate
                    variable.assign(value - ops.reshape(flat_update[offset:offset + size], variable.shape))
                offset += size

    def update_step(self, gradient, variable, learning_rate):
        factors = getattr(self, "_learning_rate_factors", None)
        factor = factors[self._get_variable_index(variable)] if factors else 1.0
        if factor != 1.0:
            learning_rate = keras.ops.cast(learning_rate, variable.dtype) * factor
        super().update_step(gradient, variable, learning_rate)

    def excluded_variable_paths(self, variables) -> list[str]:
        """Paths of the ``variables`` this optimizer will not decay.

        Args:
            variables: e.g. ``model.trainable_variables``.

        Returns:
            The excluded variables' paths, in the given order.

        Example:
            >>> SelectiveAdamW().excluded_variable_paths(model.trainable_variables)  # doctest: +SKIP
            ['dense/bias', 'layer_normalization/gamma', 'layer_normalization/beta']
        """
        return [variable.path for variable in variables if not self._use_weight_decay(variable)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "exclude_from_weight_decay_patterns": list(self.exclude_from_weight_decay_patterns),
                "exclude_vectors": self.exclude_vectors,
                "learning_rate_multipliers": dict(self.learning_rate_multipliers),
                "fused": self.fused,
            }
        )
        return config


@dataclasses.dataclass
class _FusedGroup:
    """The variables (by index, with their sizes) that ``SelectiveAdamW(fused=True)`` updates as one flat buffer,
    and the buffer's moments."""

    indices: list
    sizes: list
    dtype: str
    decays: bool
    factor: float
    momentum: object
    velocity: object


def _keep_segments(new, old, sizes, present):
    """``new`` with the segments (of ``sizes``) of the variables that got no gradient taken from ``old``."""
    pieces, offset = [], 0
    for size, has_gradient in zip(sizes, present):
        pieces.append((new if has_gradient else old)[offset:offset + size])
        offset += size
    return keras.ops.concatenate(pieces)


def densify_gradients(grads):
    """``grads`` with every ``tf.IndexedSlices`` (an embedding lookup's sparse gradient) made a dense tensor.

    The rows of a token looked up several times are then summed before anything squares them (Adam's second
    moment, global-norm clipping); Keras's per-variable update squares them one by one. Other backends: unchanged.
    """
    if keras.config.backend() != "tensorflow":
        return list(grads)
    import tensorflow as tf

    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]


def _plain_variables() -> bool:
    """Whether variables are plain (not mirrored): always outside TensorFlow; under TensorFlow, no
    ``tf.distribute`` strategy in scope, or a ``OneDeviceStrategy``. Mirrored variables (even over one device)
    are updated through the strategy, one variable at a time."""
    if keras.config.backend() != "tensorflow":
        return True
    import tensorflow as tf

    return not tf.distribute.has_strategy() or isinstance(tf.distribute.get_strategy(), tf.distribute.OneDeviceStrategy)


def build_optimizer(
    learning_rate=1e-3,
    weight_decay=0.01,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    global_clipnorm=1.0,
    clipnorm=None,
    exclude_from_weight_decay=DEFAULT_WEIGHT_DECAY_EXCLUSIONS,
    exclude_vectors=True,
    ema_momentum=None,
    learning_rate_multipliers=None,
    fused=None,
) -> SelectiveAdamW:
    """AdamW with decoupled weight decay (biases, normalization weights, embeddings excluded) and clipping.

    With ``ema_momentum`` the optimizer also keeps an exponential moving average of the weights, which
    ``model.fit`` swaps into the model after the last epoch (Keras's ``use_ema``): evaluate that model.

    Args:
        learning_rate: a float or a ``LearningRateSchedule`` (e.g. :class:`WarmupCosineDecay`).
        weight_decay: decoupled weight-decay coefficient (0 disables it).
        beta_1: Adam's first-moment decay.
        beta_2: Adam's second-moment decay.
        epsilon: Adam's epsilon.
        global_clipnorm: clip the gradients so that their global norm is at most this (``None`` disables).
        clipnorm: clip each gradient's norm separately (``None`` disables; exclusive with
            ``global_clipnorm``).
        exclude_from_weight_decay: regular expressions matched against variable paths to exclude.
        exclude_vectors: also exclude every variable of rank <= 1.
        ema_momentum: momentum of a weight EMA in [0, 1) (e.g. 0.99), or None for no average.
        learning_rate_multipliers: ``{variable path: factor}`` for per-variable learning rates (see
            :class:`SelectiveAdamW`), e.g. from ``llm_tf.tasks.classification.layerwise_learning_rates``.
        fused: update the weights as a few flat buffers (see :class:`SelectiveAdamW`; the same arithmetic, a
            training step that traces and compiles in less time). ``False``: Keras's per-variable update.
            ``None`` (default): the process's rule, :func:`set_optimizer_update` (fused unless set otherwise).

    Returns:
        A :class:`SelectiveAdamW` optimizer.

    Example:
        >>> from llm_tf.training import WarmupCosineDecay
        >>> optimizer = build_optimizer(WarmupCosineDecay(5e-4, 100, 1000), weight_decay=0.01)
        >>> optimizer.global_clipnorm
        1.0
    """
    if is_number(learning_rate):
        check_number("learning_rate", learning_rate, minimum=0, exclusive_minimum=True, finite=True)
    elif not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError(
            "learning_rate must be a positive number or a keras LearningRateSchedule; got "
            f"learning_rate={learning_rate!r}"
        )
    checks = {
        "weight_decay": (weight_decay, 0.0, math.inf),
        "beta_1": (beta_1, 0.0, 1.0),
        "beta_2": (beta_2, 0.0, 1.0),
    }
    for name, (value, low, high) in checks.items():
        check_number(name, value, minimum=low, maximum=high)
    for name, value in {"global_clipnorm": global_clipnorm, "clipnorm": clipnorm}.items():
        check_number(name, value, minimum=0, exclusive_minimum=True, allow_none=True)
    if global_clipnorm is not None and clipnorm is not None:
        raise ValueError(
            "Set only one of global_clipnorm and clipnorm; got "
            f"global_clipnorm={global_clipnorm}, clipnorm={clipnorm}"
        )
    check_number("ema_momentum", ema_momentum, minimum=0, maximum=1, exclusive_maximum=True, allow_none=True)
    ema = {} if ema_momentum is None else {"use_ema": True, "ema_momentum": float(ema_momentum)}
    return SelectiveAdamW(
        learning_rate=learning_rate,
        weight_decay=float(weight_decay),
        beta_1=float(beta_1),
        beta_2=float(beta_2),
        epsilon=float(epsilon),
        global_clipnorm=None if global_clipnorm is None else float(global_clipnorm),
        clipnorm=None if clipnorm is None else float(clipnorm),
        exclude_from_weight_decay_patterns=exclude_from_weight_decay,
        exclude_vectors=exclude_vectors,
        learning_rate_multipliers=learning_rate_multipliers,
        fused=_default_optimizer_update == "fused" if fused is None else bool(fused),
        **ema,
    )
