"""Learning-rate schedules and NeuS's cosine annealing, as functions of the step.

``step`` is the number of optimiser updates done before the one the value is used for (the
first update has step 0), so a resumed run recomputes exactly the values it would have used.
"""
import math


def learning_rate(config, step: int) -> float:
    """The learning rate of update ``step`` for a fastfield.config.TrainConfig.

    "exponential" (nerf-pytorch): lr * 0.1 ** (step / lr_decay_steps).
    "cosine" (NeuS ``update_learning_rate``): lr * step / warm_up during the warm-up (so the
    first update has lr 0, as in NeuS), then lr * (alpha + (1 - alpha) (1 + cos(pi p)) / 2) with
    p = (step - warm_up) / (iters - warm_up) going 0 -> 1 and alpha = lr_alpha.
    "multistep" (nerfacc's examples, torch MultiStepLR): lr * lr_gamma ** (the number of
    milestones passed), the milestones ``lr_milestones`` given as fractions of ``iters``.
    "ngp" (instant-ngp's tiny-cuda-nn ExponentialDecay, after the same linear warm-up when
    warm_up > 0): lr until lr_decay_start, then lr * lr_decay_base ** k with
    k = (step - lr_decay_start) // lr_decay_interval (integer division, as tiny-cuda-nn's).
    """
    if config.lr_schedule == "exponential":
        return config.lr * 0.1 ** (step / config.lr_decay_steps)
    if config.lr_schedule == "cosine":
        if step < config.warm_up:
            return config.lr * step / config.warm_up
        progress = (step - config.warm_up) / max(config.iters - config.warm_up, 1)
        alpha = config.lr_alpha
        return config.lr * ((math.cos(math.pi * min(progress, 1.0)) + 1.0) * 0.5 * (1.0 - alpha)
                            + alpha)
    if config.lr_schedule == "multistep":
        passed = sum(step >= int(fraction * config.iters) for fraction in config.lr_milestones)
        return config.lr * config.lr_gamma ** passed
    if config.lr_schedule == "ngp":
        if step < config.warm_up:
            return config.lr * step / config.warm_up
        if step < config.lr_decay_start:
            return config.lr
        return config.lr * config.lr_decay_base ** (
            (step - config.lr_decay_start) // config.lr_decay_interval)
    raise ValueError(f"lr_schedule must be 'exponential', 'cosine', 'multistep' or 'ngp', "
                     f"got {config.lr_schedule!r}")


def cos_anneal_ratio(config, step: int) -> float:
    """NeuS ``get_cos_anneal_ratio``: min(1, step / anneal_end), and 1 when anneal_end == 0."""
    if config.anneal_end <= 0:
        return 1.0
    return min(1.0, step / config.anneal_end)
