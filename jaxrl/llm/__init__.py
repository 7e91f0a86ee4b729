"""Small causal transformers as policies: generation, SFT, reward model, DPO, GRPO, RLHF-PPO.

Modules: ``transformer`` (the model: the toy configuration and the Llama/Qwen decoders, KV
cache, save/load), ``checkpoint`` (Hugging Face directories in and out), ``tokenizer``
(a pretrained model's tokenizer and chat template), ``lora`` (adapters), ``sharding``
(FSDP × data-parallel meshes), ``testing`` (tiny offline model directories),
``generate`` (sampling with and without a KV cache, log-probs of given completions),
``tasks`` (tokenizer, verifiable and preference tasks, registry), ``data`` (dataset files
as tasks: JSONL rows, chat template, length limits), ``rewards`` (host reward functions:
exact answer, format, soft overlong, user functions), ``sft``, ``reward_model``, ``dpo``
(trainers: a Config and a ``train_*`` function each), ``training`` (shared pieces: optimiser,
data order, starting model) and ``runner`` (the one host loop of every stage: evaluations,
checkpoints, resume).

Sequence layout, shared by every module: batch-major ``[B, T]`` arrays; a row is a
left-padded prompt ``[B, P]`` followed by a right-padded completion ``[B, C]``; masks
are 1 on real tokens (a completion's EOS included); positions count real tokens only.
"""

from jaxrl.llm import (
    checkpoint,
    data,
    dpo,
    grpo,
    lora,
    reward_model,
    rewards,
    rl_loop,
    rlhf,
    roles,
    runner,
    sft,
    sharding,
    tasks,
    tokenizer,
    training,
    transformer,
)
from jaxrl.llm.checkpoint import *
from jaxrl.llm.data import *
from jaxrl.llm.dpo import *
from jaxrl.llm.generate import *
from jaxrl.llm.generate import __all__ as _generate_all  # the function shadows the module
from jaxrl.llm.grpo import *
from jaxrl.llm.lora import *
from jaxrl.llm.reward_model import *
from jaxrl.llm.rewards import *
from jaxrl.llm.rl_loop import *
from jaxrl.llm.rlhf import *
from jaxrl.llm.roles import *
from jaxrl.llm.runner import *
from jaxrl.llm.sft import *
from jaxrl.llm.sharding import *
from jaxrl.llm.tasks import *
from jaxrl.llm.tokenizer import *
from jaxrl.llm.training import *
from jaxrl.llm.transformer import *

__all__ = [
    *transformer.__all__,
    *checkpoint.__all__,
    *tokenizer.__all__,
    *lora.__all__,
    *sharding.__all__,
    *_generate_all,
    *tasks.__all__,
    *data.__all__,
    *rewards.__all__,
    *runner.__all__,
    *training.__all__,
    *sft.__all__,
    *reward_model.__all__,
    *dpo.__all__,
    *roles.__all__,
    *rl_loop.__all__,
    *grpo.__all__,
    *rlhf.__all__,
]
