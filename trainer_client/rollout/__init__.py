"""Rollout: drawing k completions per prompt, one backend per module behind one interface.

- :mod:`.batch`: :class:`Samples`, the batch every backend returns (token ids, masks, log-probs);
- :mod:`.base`: the :class:`Sampler` interface and what backends share (seeding, streaming);
- :mod:`.hf`: :class:`HFSampler`, ``transformers`` models in this process (the default);
- :mod:`.vllm`: :class:`VLLMSampler`, a colocated vLLM engine and the weight push into it;
- :mod:`.scoring`: :func:`token_logprobs`, the one log-prob function (scoring with the actor).
"""

from trainer_client.rollout.base import STREAM_PARTS, ChunkedSampler, Sampler
from trainer_client.rollout.batch import Samples, in_prompt_order
from trainer_client.rollout.hf import HFSampler
from trainer_client.rollout.scoring import token_logprobs
from trainer_client.rollout.vllm import VLLM_VERSIONS, VLLMSampler

__all__ = [
    "STREAM_PARTS",
    "VLLM_VERSIONS",
    "ChunkedSampler",
    "HFSampler",
    "Sampler",
    "Samples",
    "VLLMSampler",
    "in_prompt_order",
    "token_logprobs",
]
