"""Training several recurrent models as ONE batched model (stacked weights, ``torch.func``).

The experiment trains every cell with several seeds. Instead of a Python loop of runs, the M
models (same architecture, different initial weights and data orders) are stacked with
``torch.func.stack_module_state`` and trained together: each step evaluates the per-model losses
with ``vmap(functional_call(...))`` over the stacked parameters and takes all M gradients in one
reverse pass of their sum (the models share no parameter, so ∂(Σ_m L_m)/∂θ_m = ∂L_m/∂θ_m;
``vmap(grad(...))`` gives the same numbers but costs several times more on a CPU),
clips each model's gradient to its own global norm, and applies a batched optimizer step written
here over the stacked tensors (SGD, AdamW, RMSprop; the formulas of ``torch.optim``'s
single-tensor implementations, so the ensemble reproduces each run trained alone). The
best-validation weights of each model are kept, with learning curves (train loss, validation
loss and R² per epoch).

Each model m draws its mini-batch order from its own ``torch.Generator`` seeded with
``seeds[m]``, so model m of an ensemble sees exactly the batches it would see trained alone
(:func:`train_reference`, the straightforward ``torch.optim`` loop, is that run).

Shapes: stacked tensors carry a leading model axis (model, ...); data are (batch, time, input)
and targets (batch, time, out). The models' ``forward(x)`` returns ŷ (batch, time, out), or a
tuple whose first element is ŷ.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ._progress import progress_bar

__all__ = ["OPTIMIZERS", "TrainConfig", "TrainResult", "train_ensemble", "train_reference",
           "ensemble_predict", "r_squared"]

OPTIMIZERS = ("sgd", "adamw", "rmsprop")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (config A of the paper: AdamW, lr 1e−3, wd 1e−4, clip 1.0, batch 512,
    750 epochs).

    Attributes:
        optimizer: ``"sgd"``, ``"adamw"`` or ``"rmsprop"``.
        lr: learning rate η > 0.
        weight_decay: decoupled (AdamW) or L2 (SGD, RMSprop) weight decay, ≥ 0.
        epochs: passes over the training split, ≥ 1.
        batch_size: sequences per step, ≥ 1.
        clip: maximal global gradient norm of each model (0: no clipping).
        betas, eps: AdamW moments and denominator guard; ``rmsprop_alpha`` RMSprop's decay.
        momentum: SGD/RMSprop momentum (0 in the paper).
        eval_batch: validation sequences per forward pass (memory bound only).
    """

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 10
    batch_size: int = 64
    clip: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    rmsprop_alpha: float = 0.99
    momentum: float = 0.0
    eval_batch: int = 1024

    def __post_init__(self):
        validate_training(self)


def validate_training(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` naming the first violated condition of a training configuration."""
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose one of {list(OPTIMIZERS)}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"learning rate lr must be > 0; got {cfg.lr}")
    if not cfg.weight_decay >= 0:
        raise ValueError(f"weight_decay must be ≥ 0; got {cfg.weight_decay}")
    if int(cfg.epochs) < 1 or int(cfg.batch_size) < 1 or int(cfg.eval_batch) < 1:
        raise ValueError("epochs, batch_size and eval_batch must be ≥ 1; got "
                         f"{cfg.epochs}, {cfg.batch_size}, {cfg.eval_batch}")
    if not cfg.clip >= 0:
        raise ValueError(f"gradient clip must be ≥ 0 (0: off); got {cfg.clip}")
    if not all(0 <= b < 1 for b in cfg.betas) or not 0 <= cfg.rmsprop_alpha < 1:
        raise ValueError("betas and rmsprop_alpha must lie in [0, 1)")
    if not 0 <= cfg.momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1); got {cfg.momentum}")
    if not (math.isfinite(cfg.eps) and cfg.eps > 0):
        raise ValueError(f"eps (the optimizer's denominator term) must be finite and > 0; "
                         f"got {cfg.eps}")


@dataclass
class TrainResult:
    """What :func:`train_ensemble` returns (every tensor has a leading model axis M).

    Attributes:
        params: best-validation parameters, name → (model, ...).
        buffers: buffers (constant gates, LayerNorm has none), name → (model, ...).
        opt_state: optimizer state at the best-validation epoch (AdamW ``exp_avg_sq`` and
            ``step``; RMSprop ``square_avg``), what the optimizer base rates Λ are read from.
        train_loss, val_loss, val_r2: learning curves (model, epoch).
        best_epoch: (model,) index of the kept epoch, −1 for a model whose validation loss was
            never finite (it keeps its initial weights); ``diverged`` (model,) non-finite loss
            seen.
    """

    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    opt_state: dict[str, dict[str, torch.Tensor]]
    train_loss: torch.Tensor
    val_loss: torch.Tensor
    val_r2: torch.Tensor
    best_epoch: torch.Tensor
    diverged: torch.Tensor
    seeds: list[int] = field(default_factory=list)

    def model(self, base: nn.Module, m: int) -> nn.Module:
        """A standalone copy of ``base`` holding model m's kept weights."""
        out = copy.deepcopy(base)
        state = {k: v[m] for k, v in {**self.params, **self.buffers}.items()}
        out.load_state_dict(state, strict=True)
        return out

    def best_val_r2(self) -> torch.Tensor:
        """R² at each model's kept epoch (NaN for a model that never had a finite loss)."""
        kept = self.val_r2.gather(1, self.best_epoch.clamp_min(0).view(-1, 1))[:, 0]
        return torch.where(self.best_epoch >= 0, kept, torch.full_like(kept, math.nan))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainResult":
        return cls(**d)


def r_squared(sse: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """R² = 1 − SSE/SST with SST the sum of squares of ``y`` about its mean."""
    sst = ((y - y.mean()) ** 2).sum()
    return 1.0 - sse / sst


def _prediction(out):
    return out[0] if isinstance(out, tuple) else out


def _stack(models: Sequence[nn.Module]):
    if len(models) == 0:
        raise ValueError("need at least one model to train")
    kinds = {type(m) for m in models}
    if len(kinds) != 1:
        raise ValueError("an ensemble stacks models of one class; "
                         f"got {sorted(k.__name__ for k in kinds)}")
    params, buffers = stack_module_state(list(models))
    params = {k: v.detach().clone() for k, v in params.items()}
    buffers = {k: v.detach().clone() for k, v in buffers.items()}
    base = copy.deepcopy(models[0]).to("meta")
    return base, params, buffers


def _loss_fn(base):
    def loss(p, b, x, y):
        yhat = _prediction(functional_call(base, (p, b), (x,)))
        return torch.mean((yhat - y) ** 2)
    return loss


def ensemble_predict(base: nn.Module, params, buffers, x: torch.Tensor, *,
                     chunk: int = 1024) -> torch.Tensor:
    """ŷ (model, batch, time, out) of every stacked model on the same inputs x
    (batch, time, input)."""
    def one(p, b, xb):
        return _prediction(functional_call(base, (p, b), (xb,)))
    f = vmap(one, in_dims=(0, 0, None))
    with torch.no_grad():
        return torch.cat([f(params, buffers, x[i:i + chunk]) for i in range(0, len(x), chunk)], 1)


def _clip(grads: dict, max_norm: float) -> dict:
    """Scale each model's gradient to global norm ≤ max_norm (``clip_grad_norm_`` per model)."""
    sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads.values())
    coef = torch.clamp(max_norm / (sq.sqrt() + 1e-6), max=1.0)
    return {k: g * coef.view(-1, *([1] * (g.dim() - 1))) for k, g in grads.items()}


def _init_state(cfg: TrainConfig, params: dict) -> dict:
    z = {k: torch.zeros_like(v) for k, v in params.items()}
    if cfg.optimizer == "adamw":
        return {"exp_avg": z, "exp_avg_sq": {k: v.clone() for k, v in z.items()}, "step": 0}
    if cfg.optimizer == "rmsprop":
        return {"square_avg": z, "momentum_buffer": {k: v.clone() for k, v in z.items()}, "step": 0}
    return {"momentum_buffer": z, "step": 0}


@torch.no_grad()
def _step(cfg: TrainConfig, params: dict, grads: dict, state: dict) -> None:
    """One optimizer step over stacked parameters, in place
    (torch.optim's single-tensor formulas)."""
    state["step"] += 1
    t, lr, wd = state["step"], cfg.lr, cfg.weight_decay
    for k, p in params.items():
        g = grads[k]
        if cfg.optimizer == "adamw":
            b1, b2 = cfg.betas
            p.mul_(1 - lr * wd)
            m, v = state["exp_avg"][k], state["exp_avg_sq"][k]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(1 - b2 ** t)).add_(cfg.eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1 ** t))
        elif cfg.optimizer == "rmsprop":
            if wd:
                g = g.add(p, alpha=wd)
            sq = state["square_avg"][k]
            sq.mul_(cfg.rmsprop_alpha).addcmul_(g, g, value=1 - cfg.rmsprop_alpha)
            avg = sq.sqrt().add_(cfg.eps)
            if cfg.momentum:
                buf = state["momentum_buffer"][k]
                buf.mul_(cfg.momentum).addcdiv_(g, avg)
                p.add_(buf, alpha=-lr)
            else:
                p.addcdiv_(g, avg, value=-lr)
        else:
            if wd:
                g = g.add(p, alpha=wd)
            if cfg.momentum:
                buf = state["momentum_buffer"][k]
                if t == 1:
                    buf.copy_(g)
                else:
                    buf.mul_(cfg.momentum).add_(g)
                g = buf
            p.add_(g, alpha=-lr)


def _snapshot_state(cfg: TrainConfig, state: dict) -> dict:
    keep = {"adamw": ["exp_avg_sq"], "rmsprop": ["square_avg"], "sgd": []}[cfg.optimizer]
    return {k: {n: v.clone() for n, v in state[k].items()} for k in keep}


def _to_device(tree, device):
    """A copy of a nest of dicts of tensors (and plain numbers) on ``device``."""
    if isinstance(tree, dict):
        return {k: _to_device(v, device) for k, v in tree.items()}
    return tree.detach().to(device, copy=True) if torch.is_tensor(tree) else tree


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (model,) mask shaped to broadcast against a stacked tensor (model, ...)."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _check_data(x, y, name):
    if x.dim() != 3 or y.dim() != 3 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"{name}: x must be (batch, time, input) and y (batch, time, out) with "
                         f"matching batch and time; got {tuple(x.shape)} and {tuple(y.shape)}")


def train_ensemble(models: Sequence[nn.Module], seeds: Sequence[int], x_train, y_train, x_val,
                   y_val, cfg: TrainConfig, *, progress: bool = True,
                   desc: str = "training", checkpoint: Callable | None = None,
                   resume: dict | None = None) -> TrainResult:
    """Train M models of one class together as one batched model (see the module docstring).

    Args:
        models: M initialised modules of one class (their initial weights are copied, not changed).
        seeds: M integers; model m's mini-batch order comes from
            ``Generator().manual_seed(seeds[m])``.
        x_train, y_train: (batch, time, input) and (batch, time, out), on the training device.
        x_val, y_val: the validation split, same layout.
        cfg: :class:`TrainConfig`.
        progress: a tqdm bar over epochs (postfix: mean validation R²).
        checkpoint: called after every epoch as ``checkpoint(epoch, snapshot)``; ``snapshot()``
            returns everything the run needs to go on (weights, optimizer state, the kept
            weights, curves, the seeds' generator states) as a dict of CPU tensors, built only
            when called, so the callback decides how often to pay for it.
        resume: such a snapshot: training goes on from the epoch after it, and ends exactly
            where the uninterrupted run would (the same batches, the same arithmetic).

    Returns:
        :class:`TrainResult` with the best-validation weights and the learning curves.

    Raises:
        ValueError: no models, models of different classes, len(seeds) ≠ M, malformed data,
            or a ``resume`` snapshot of another configuration or other seeds.
    """
    validate_training(cfg)
    if len(seeds) != len(models):
        raise ValueError(f"one seed per model: got {len(seeds)} seeds for {len(models)} models")
    _check_data(x_train, y_train, "training split")
    _check_data(x_val, y_val, "validation split")
    base, params, buffers = _stack(models)
    n_models, n = len(models), x_train.shape[0]
    dev = x_train.device
    params = {k: v.to(dev).requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.to(dev) for k, v in buffers.items()}
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    loss_fn = vmap(_loss_fn(base))
    names = list(params)
    state = _init_state(cfg, params)
    best = {k: v.detach().clone() for k, v in params.items()}
    best_state = _snapshot_state(cfg, state)
    best_loss = torch.full((n_models,), math.inf, device=dev)
    best_epoch = torch.full((n_models,), -1, dtype=torch.long)   # −1: no finite epoch yet
    diverged = torch.zeros(n_models, dtype=torch.bool)
    curves = {k: torch.full((n_models, cfg.epochs), math.nan) for k in ("train", "val", "r2")}
    bs = int(cfg.batch_size)
    first = 0
    if resume is not None:
        if resume.get("config") != dataclasses.asdict(cfg) or resume.get("seeds") != [
                int(s) for s in seeds]:
            raise ValueError("the resume snapshot belongs to another training configuration "
                             "or other seeds")
        first = int(resume["epoch"]) + 1
        with torch.no_grad():
            for k in names:
                params[k].copy_(resume["params"][k])
        state = _to_device(resume["state"], dev)
        best, best_state = _to_device(resume["best"], dev), _to_device(resume["best_state"], dev)
        best_loss = resume["best_loss"].to(dev)
        best_epoch, diverged = resume["best_epoch"].clone(), resume["diverged"].clone()
        curves = {k: v.clone() for k, v in resume["curves"].items()}
        for g, st in zip(gens, resume["generators"]):
            g.set_state(st)

    def snapshot(epoch: int) -> dict:
        return {"epoch": epoch, "config": dataclasses.asdict(cfg),
                "seeds": [int(s) for s in seeds],
                "params": _to_device({k: v.detach() for k, v in params.items()}, "cpu"),
                "state": _to_device(state, "cpu"), "best": _to_device(best, "cpu"),
                "best_state": _to_device(best_state, "cpu"), "best_loss": best_loss.cpu(),
                "best_epoch": best_epoch.clone(), "diverged": diverged.clone(),
                "curves": {k: v.clone() for k, v in curves.items()},
                "generators": [g.get_state() for g in gens]}

    bar = progress_bar(range(first, cfg.epochs), desc=f"{desc} ×{n_models}", enabled=progress)
    for epoch in bar:
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)
        total = torch.zeros(n_models, device=dev)
        for lo in range(0, n, bs):
            idx = perms[:, lo:lo + bs]
            with torch.enable_grad():
                loss = loss_fn(params, buffers, x_train[idx], y_train[idx])
                # the models are independent: d(Σ_m L_m)/dθ_m = dL_m/dθ_m, one backward for all
                grads = dict(zip(names,
                                 torch.autograd.grad(loss.sum(), [params[k] for k in names])))
            if cfg.clip > 0:
                grads = _clip(grads, cfg.clip)
            _step(cfg, params, grads, state)
            total += loss.detach() * idx.shape[1]
        curves["train"][:, epoch] = (total / n).cpu()
        yhat = ensemble_predict(base, params, buffers, x_val, chunk=cfg.eval_batch)
        sse = ((yhat - y_val) ** 2).flatten(1).sum(1)
        val = sse / y_val.numel()
        curves["val"][:, epoch] = val.cpu()
        curves["r2"][:, epoch] = r_squared(sse, y_val).cpu()
        diverged |= ~torch.isfinite(val.cpu()) | ~torch.isfinite(total.cpu())
        better = torch.isfinite(val) & (val < best_loss)
        if bool(better.any()):
            best_loss = torch.where(better, val, best_loss)
            best_epoch[better.cpu()] = epoch
            for k in best:
                best[k] = torch.where(_rows(better, best[k]), params[k].detach(), best[k])
            for group, tensors in _snapshot_state(cfg, state).items():
                for k, v in tensors.items():
                    best_state[group][k] = torch.where(_rows(better, v), v, best_state[group][k])
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(val_r2=f"{float(curves['r2'][:, epoch].nanmean()):.3f}")
        if checkpoint is not None:
            checkpoint(epoch, lambda epoch=epoch: snapshot(epoch))
    # optimizer steps taken when the kept weights were reached (AdamW's bias correction); 0 for
    # a model that never had a finite validation loss (its initial weights and state are kept)
    best_state["step"] = {"step": (best_epoch + 1) * math.ceil(n / bs)}
    return TrainResult(params=best, buffers=buffers, opt_state=best_state,
                       train_loss=curves["train"], val_loss=curves["val"], val_r2=curves["r2"],
                       best_epoch=best_epoch, diverged=diverged, seeds=[int(s) for s in seeds])


def train_reference(model: nn.Module, seed: int, x_train, y_train, cfg: TrainConfig) -> nn.Module:
    """The straightforward single run: ``torch.optim`` + ``clip_grad_norm_``, no validation.

    Same batch order as model m of :func:`train_ensemble` with ``seeds[m] = seed``; the tests
    check the ensemble against it and the benchmark times it. Returns the trained copy.
    """
    validate_training(cfg)
    model = copy.deepcopy(model).to(x_train.device)
    ps = list(model.parameters())
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(ps, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                                weight_decay=cfg.weight_decay, foreach=False)
    elif cfg.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(ps, lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.eps,
                                  weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                                  foreach=False)
    else:
        opt = torch.optim.SGD(ps, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay, foreach=False)
    gen = torch.Generator().manual_seed(int(seed))
    n, bs = x_train.shape[0], int(cfg.batch_size)
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen).to(x_train.device)
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs]
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((_prediction(model(x_train[idx])) - y_train[idx]) ** 2)
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(ps, cfg.clip)
            opt.step()
    return model
