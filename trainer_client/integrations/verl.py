"""Sieve inside verl: a reward function, and α-DPG as verl advantage estimator ``alpha_dpg``.

**Reward.** :func:`compute_score` has verl's reward signature and is named in verl's config::

    reward.custom_reward_function.path=<site-packages>/trainer_client/integrations/verl.py
    reward.custom_reward_function.name=compute_score
    +reward.custom_reward_function.reward_kwargs.url=http://verifier:8000

(or ``SIEVE_TRAIN_VERIFIER__URL`` in the environment, the trainer's own variable). verl's
``BatchRewardManager`` hands over lists (``data_sources``, ``solution_strs``, ``ground_truths``,
``extra_infos``): they go to the verifier through one :class:`~trainer_client.VerifierClient`
call, chunked and concurrent. A single sample is one call. The client is kept per process, so
connections are pooled across steps. What a row holds:

* ``ground_truth``: the formal statement (lean4) or the reference answer (math);
* ``extra_info["header"]`` (lean4, optional; default :data:`~trainer_client.data.DEFAULT_HEADER`)
  and ``extra_info["checker"]`` (``lean4`` or ``math``; default the ``checker`` keyword).

Each score is a dict (verl logs every key): ``score`` 1.0 verified / 0.0 wrong, ``acc`` the same,
``verifier_error`` 1.0 when the verifier failed. A failed sample's ``score`` is ``error_score``,
NaN by default: never a wrong proof. The ``alpha_dpg`` estimator leaves NaN-scored samples out
(advantage 0, outside their group's estimates), as TRL does with ``None``. verl's own estimators
cannot, and a NaN would poison their group, so pass ``error_score=0.0`` with them, which counts
an outage as a wrong proof.

**α-DPG.** :func:`alpha_dpg_token_advantages` is the pure function: token-level rewards, response
mask, group index and the token log-probs of the sampling policy (verl's ``old_log_probs``) and
of the base model (``ref_log_prob``) in; token-level advantages out. They are the numbers
:func:`trainer_client.losses.alpha_dpg_advantages` gives for the sequence log-probs (sums over
the response mask, in float64), broadcast over each response. :func:`register_alpha_dpg`
registers it with verl's ``register_adv_est`` under ``alpha_dpg``; importing this module with
verl installed does so. verl's ``compute_advantage`` hands custom estimators only the rewards,
the mask and the index, so registration also wraps ``compute_advantage`` to pass the two
log-prob tensors for ``alpha_dpg`` (every other estimator goes through untouched).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from trainer_client.client import VerifierClient
from trainer_client.data import CHECKERS
from trainer_client.integrations._request import sample_request
from trainer_client.objectives import ALPHA_DPG, alpha_dpg_advantages
from trainer_client.wire import ProofRequest, verify_non_empty

__all__ = [
    "ESTIMATOR",
    "alpha_dpg_token_advantages",
    "compute_alpha_dpg_outcome_advantage",
    "compute_score",
    "register_alpha_dpg",
]

logger = logging.getLogger(__name__)

#: The name the estimator is registered under (``algorithm.adv_estimator=alpha_dpg``).
ESTIMATOR = ALPHA_DPG.name
#: Environment variables the estimator reads when no value was given to
#: :func:`register_alpha_dpg` (verl's ``AlgoConfig`` takes no extra keys; the environment
#: reaches every Ray process).
ENV_ALPHA, ENV_CLIP, ENV_Z_FLOOR = (
    "SIEVE_ALPHA_DPG_ALPHA",
    "SIEVE_ALPHA_DPG_CLIP",
    "SIEVE_ALPHA_DPG_Z_FLOOR",
)
#: The trainer's own variables for the verifier, read when ``url``/``api_key`` are not given.
ENV_URL, ENV_API_KEY = "SIEVE_TRAIN_VERIFIER__URL", "SIEVE_TRAIN_VERIFIER__API_KEY"


# --------------------------------------------------------------------------------------------
# Reward


def compute_score(
    data_source: Any = None,
    solution_str: str | None = None,
    ground_truth: Any = None,
    extra_info: Mapping[str, Any] | None = None,
    *,
    data_sources: Sequence[Any] | None = None,
    solution_strs: Sequence[str] | None = None,
    ground_truths: Sequence[Any] | None = None,
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    url: str | Sequence[str] | None = None,
    api_key: str | None = None,
    checker: str = "lean4",
    proof_timeout_s: float | None = None,
    error_score: float = math.nan,
    **client_options: Any,
) -> dict[str, float] | list[dict[str, float]]:
    """verl's ``compute_score``: one sample's score, or a list of them for a batch.

    The batch form (``solution_strs=`` and friends, as verl's ``BatchRewardManager`` calls it)
    sends every sample in one client call. ``url``, ``api_key`` and ``client_options`` (e.g.
    ``max_batch``, ``retries``) configure the per-process :class:`VerifierClient`.
    """
    batched = solution_strs is not None
    if solution_strs is not None:
        n = len(solution_strs)
        truths = list(ground_truths) if ground_truths is not None else [None] * n
        infos = list(extra_infos) if extra_infos is not None else [None] * n
        if len(truths) != n or len(infos) != n:
            raise ValueError(
                f"ground_truths/extra_infos: expected {n} entries like solution_strs, "
                f"got {len(truths)} and {len(infos)}"
            )
        texts = list(solution_strs)
    else:
        if solution_str is None:
            raise ValueError("solution_str: required (or pass solution_strs= for a batch)")
        texts, truths, infos = [solution_str], [ground_truth], [extra_info]
    client = _client(url, api_key, client_options)
    requests = [
        _request(f"verl/{i}", text, truth, info or {}, checker, proof_timeout_s)
        for i, (text, truth, info) in enumerate(zip(texts, truths, infos, strict=True))
    ]
    results = verify_non_empty(client, requests)
    scores = [_score(r, error_score) for r in results]
    return scores if batched else scores[0]


def _score(result: Any, error_score: float) -> dict[str, float]:
    if result.failed:
        return {"score": float(error_score), "acc": 0.0, "verifier_error": 1.0}
    value = 1.0 if result.ok else 0.0
    return {"score": value, "acc": value, "verifier_error": 0.0}


def _request(
    id: str,
    text: str,
    truth: Any,
    info: Mapping[str, Any],
    checker: str,
    proof_timeout_s: float | None,
) -> ProofRequest:
    checker = str(info.get("checker") or checker)
    if checker not in CHECKERS:
        raise ValueError(f"checker: expected one of {CHECKERS}, got {checker!r}")
    if truth is None or not str(truth).strip():
        what = "the formal statement" if checker == "lean4" else "the reference answer"
        raise ValueError(f"ground_truth: empty; the {checker} checker needs {what}")
    # verl hands over the response only; a reply holds its own ```lean4 block, or is the proof.
    return sample_request(
        checker, id, text, truth, header=info.get("header"), timeout_s=proof_timeout_s
    )


_clients: dict[tuple, VerifierClient] = {}
_clients_lock = threading.Lock()


def _client(
    url: str | Sequence[str] | None, api_key: str | None, options: Mapping[str, Any]
) -> VerifierClient:
    url = url or os.environ.get(ENV_URL)
    if not url:
        raise ValueError(
            f"url: no verifier URL; pass reward_kwargs.url=... or set {ENV_URL} in the environment"
        )
    urls = tuple(url.split(",") if isinstance(url, str) else url)
    api_key = api_key or os.environ.get(ENV_API_KEY) or None
    key = (urls, api_key, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = VerifierClient(list(urls), api_key=api_key, **options)
        return client


# --------------------------------------------------------------------------------------------
# α-DPG advantages


def alpha_dpg_token_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any],
    old_log_probs: torch.Tensor,
    ref_log_prob: torch.Tensor,
    *,
    alpha: float,
    clip: float = 10.0,
    z_floor: float = 1e-4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """α-DPG advantages in verl's layout: ``(advantages, returns)``, both ``[bs, T]``.

    A response's score is the sum of its masked token-level rewards (verl puts the verifier's
    score on the last token); it is verified when the score is above 0.5, and left out when it
    is NaN (the verifier failed): advantage 0, and no part in its group's Ẑ or baseline. The
    sequence log-probs are the masked sums of ``old_log_probs`` (π, the sampling policy) and
    ``ref_log_prob`` (the base model ``a``) in float64; then
    :func:`trainer_client.losses.alpha_dpg_advantages` gives one advantage per response
    (steps 2–5 of the method notes), broadcast over its response tokens. Rows sharing an
    ``index`` value (verl's ``uid``) are one prompt's group.
    """
    rows, length = token_level_rewards.shape
    for name, tensor in (
        ("response_mask", response_mask),
        ("old_log_probs", old_log_probs),
        ("ref_log_prob", ref_log_prob),
    ):
        if tuple(tensor.shape) != (rows, length):
            raise ValueError(
                f"{name}: expected shape {(rows, length)} like token_level_rewards, "
                f"got {tuple(tensor.shape)}"
            )
    if len(index) != rows:
        raise ValueError(f"index: expected {rows} entries, got {len(index)}")
    mask = response_mask.to(torch.bool)
    zero = torch.zeros((), dtype=torch.float64, device=token_level_rewards.device)
    scores = torch.where(mask, token_level_rewards.to(torch.float64), zero).sum(-1)
    policy = torch.where(mask, old_log_probs.detach().to(torch.float64), zero).sum(-1)
    base = torch.where(mask, ref_log_prob.detach().to(torch.float64), zero).sum(-1)
    codes: dict[Any, int] = {}
    group_ids = torch.tensor(
        [codes.setdefault(_hashable(u), len(codes)) for u in index],
        dtype=torch.long,
        device=scores.device,
    )
    kept = ~torch.isnan(scores)
    values = torch.zeros(rows, dtype=torch.float64, device=scores.device)
    if bool(kept.any()):
        values[kept] = alpha_dpg_advantages(
            policy[kept],
            base[kept],
            scores[kept] > 0.5,
            group_ids[kept],
            alpha=alpha,
            clip=clip,
            z_floor=z_floor,
        )
    advantages = (values.unsqueeze(-1) * mask).to(token_level_rewards.dtype)
    return advantages, advantages.clone()


def _hashable(uid: Any) -> Any:
    return uid.item() if hasattr(uid, "item") else uid


_params: dict[str, float] = {}


def compute_alpha_dpg_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | None = None,
    config: Any = None,
    old_log_probs: torch.Tensor | None = None,
    ref_log_prob: torch.Tensor | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The function registered as ``alpha_dpg`` (verl's estimator signature, plus log-probs).

    α, the clip M and Ẑ's floor come from :func:`register_alpha_dpg`, else from
    ``SIEVE_ALPHA_DPG_ALPHA`` / ``_CLIP`` / ``_Z_FLOOR``, else 0.5, 10 and 1e-4.
    """
    if old_log_probs is None or ref_log_prob is None:
        raise ValueError(
            "alpha_dpg: needs old_log_probs and ref_log_prob; call register_alpha_dpg() (or "
            "import trainer_client.integrations.verl) in the trainer process, and enable the "
            "reference model: actor_rollout_ref.actor.use_kl_loss=True "
            "actor_rollout_ref.actor.kl_loss_coef=0"
        )
    if index is None:
        raise ValueError("alpha_dpg: needs the group index (verl's uid); rollout.n must be > 1")
    if config is not None and _get(config, "use_kl_in_reward", False):
        raise ValueError(
            "alpha_dpg: set algorithm.use_kl_in_reward=False; the base model is already in "
            "α-DPG's target, and a KL term in the reward would hide the verifier's 0/1 score"
        )
    return alpha_dpg_token_advantages(
        token_level_rewards,
        response_mask,
        index,
        old_log_probs,
        ref_log_prob,
        alpha=_param("alpha", ENV_ALPHA, 0.5),
        clip=_param("clip", ENV_CLIP, 10.0),
        z_floor=_param("z_floor", ENV_Z_FLOOR, 1e-4),
    )


compute_alpha_dpg_outcome_advantage._sieve_alpha_dpg = True  # type: ignore[attr-defined]


def _param(name: str, env: str, default: float) -> float:
    if name in _params:
        return _params[name]
    raw = os.environ.get(env)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{env}: expected a number, got {raw!r}") from None


def _get(config: Any, key: str, default: Any) -> Any:
    getter = getattr(config, "get", None)
    if callable(getter):
        return getter(key, default)
    return getattr(config, key, default)


# --------------------------------------------------------------------------------------------
# Registration with verl


def register_alpha_dpg(
    alpha: float | None = None, clip: float | None = None, z_floor: float | None = None
) -> bool:
    """Register ``alpha_dpg`` with verl; ``False`` (and nothing done) when verl is absent.

    Idempotent. Values given here win over the ``SIEVE_ALPHA_DPG_*`` environment. Also wraps
    verl's ``compute_advantage`` (in ``verl.trainer.ppo.ray_trainer`` and the trainer modules
    that imported it by name) so ``alpha_dpg`` receives ``old_log_probs`` and ``ref_log_prob``.
    """
    for name, value in (("alpha", alpha), ("clip", clip), ("z_floor", z_floor)):
        if value is not None:
            _params[name] = float(value)
    if importlib.util.find_spec("verl") is None:
        return False
    from verl.trainer.ppo import core_algos

    registered = core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR)
    # verl loads compute_score by file path, a second copy of this module: its estimator is
    # the same code, so whichever copy registered first stays.
    if not getattr(registered, "_sieve_alpha_dpg", False):
        core_algos.register_adv_est(ESTIMATOR)(compute_alpha_dpg_outcome_advantage)
    _wrap_compute_advantage()
    return True


#: Modules that bind verl's ``compute_advantage`` by name (``from ... import compute_advantage``).
_BINDERS = (
    "verl.trainer.ppo.ray_trainer",
    "verl.trainer.main_ppo_sync",
    "verl.experimental.separation.ray_trainer",
)


def _wrap_compute_advantage() -> None:
    # verl is an optional extra: imported only when alpha_dpg is registered with it.
    ray_trainer: Any = importlib.import_module("verl.trainer.ppo.ray_trainer")
    current = ray_trainer.compute_advantage
    original = getattr(current, "__wrapped__", current)
    if getattr(current, "_sieve_alpha_dpg", False):
        wrapped = current
    else:
        wrapped = _make_wrapper(original, ray_trainer.compute_response_mask)
    for name in _BINDERS:
        module: Any = sys.modules.get(name)
        if module is not None and getattr(module, "compute_advantage", None) is original:
            module.compute_advantage = wrapped


def _make_wrapper(original: Any, compute_response_mask: Any) -> Any:
    @functools.wraps(original)
    def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(adv_estimator, "value", adv_estimator)
        if name != ESTIMATOR:
            return original(data, adv_estimator, *args, **kwargs)
        # (data, adv_estimator, gamma, lam, num_repeat, norm_adv_by_std_in_grpo, config)
        config = kwargs.get("config", args[4] if len(args) > 4 else None)
        batch = data.batch
        if "response_mask" not in batch.keys():  # noqa: SIM118 (TensorDict has no `in`)
            batch["response_mask"] = compute_response_mask(data)
        missing = [k for k in ("old_log_probs", "ref_log_prob") if k not in batch.keys()]  # noqa: SIM118
        if missing:
            raise ValueError(
                f"alpha_dpg: the batch has no {missing}; enable the reference model with "
                "actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0"
            )
        advantages, returns = compute_alpha_dpg_outcome_advantage(
            token_level_rewards=batch["token_level_rewards"],
            response_mask=batch["response_mask"],
            index=data.non_tensor_batch["uid"],
            config=config,
            old_log_probs=batch["old_log_probs"],
            ref_log_prob=batch["ref_log_prob"],
        )
        batch["advantages"] = advantages
        batch["returns"] = returns
        return data

    compute_advantage._sieve_alpha_dpg = True  # type: ignore[attr-defined]
    return compute_advantage


# Importing the module where verl is installed (VERL_USE_EXTERNAL_MODULES, a user's entry point,
# or verl loading compute_score) is enough to make ``algorithm.adv_estimator=alpha_dpg`` work.
# A verl that does not import leaves compute_score usable, and says why alpha_dpg is missing.
try:
    register_alpha_dpg()
except ImportError as exc:  # pragma: no cover - depends on the verl installation
    logger.warning("alpha_dpg not registered: verl does not import (%s)", exc)
