"""A trained run as a Hugging Face model directory: ``jaxrl llm export RUN --out DIR``.

A stage writes its model into ``RUN/model/`` (``params.msgpack`` and
``model_config.json``, :func:`jaxrl.llm.save_model`) and, when it started from a
Hugging Face directory, that directory's tokenizer files beside them. Export folds
any LoRA adapters into their kernels (``W ← W + (α/r)·A B``,
:func:`jaxrl.llm.lora.merge_lora`), drops value and reward heads, writes
``config.json`` and ``model.safetensors`` (:func:`jaxrl.llm.save_pretrained`) and
copies the tokenizer files: ``transformers.AutoModelForCausalLM.from_pretrained(DIR)``,
vLLM and ``jaxrl llm generate --model DIR`` read the result.
"""

from __future__ import annotations

import os
import shutil

__all__ = ["TOKENIZER_FILES", "copy_tokenizer", "model_dir", "export_run"]

# What a Hugging Face directory keeps beside the weights for its tokenizer and its
# generation defaults (the stop tokens a trainer's generation uses come from here).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def copy_tokenizer(source: str, target: str) -> list[str]:
    """Copies the tokenizer files ``source`` holds into ``target`` (created).

    Returns:
        The names copied (empty when ``source`` holds none).
    """
    names = [n for n in TOKENIZER_FILES if os.path.isfile(os.path.join(source, n))]
    if names:
        os.makedirs(target, exist_ok=True)
    for name in names:
        if os.path.abspath(source) != os.path.abspath(target):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
    return names


def model_dir(run: str) -> str:
    """The directory of a run holding ``model_config.json``: ``RUN/model`` or ``RUN`` itself.

    Raises:
        ValueError: neither holds a model written by a jaxrl stage.
    """
    for cand in (os.path.join(run, "model"), run):
        if os.path.isfile(os.path.join(cand, "model_config.json")):
            return cand
    if not os.path.isdir(run):
        raise ValueError(f"{run}: no such directory")
    raise ValueError(
        f"{run}: no model/model_config.json (not a run directory of jaxrl llm sft|rm|dpo|grpo|rlhf)"
    )


def export_run(run: str, out: str) -> dict:
    """Writes the model of run directory ``run`` to ``out`` as a Hugging Face directory.

    Args:
        run: a run directory of a language-model stage (or its ``model/`` directory).
        out: output directory (created; existing files of the same names are replaced).

    Returns:
        ``{"model_type", "num_params", "lora_rank", "tokenizer_files"}``: what was written
        (``lora_rank`` is the rank merged away, 0 for full fine-tuning).

    Raises:
        ValueError: one line: no model in ``run``, a toy model (it has no Hugging Face
            architecture) or a reward model (its head is not part of a causal LM).
    """
    import jax

    from jaxrl.llm.checkpoint import save_pretrained
    from jaxrl.llm.lora import merge_lora
    from jaxrl.llm.transformer import load_model

    where = model_dir(run)
    params, config = load_model(where)
    if config.model_type == "toy":
        raise ValueError(
            f"{run}: the model is jaxrl's toy transformer, which has no Hugging Face format; "
            "export needs a stage started from --model DIR (llama, qwen2, qwen3)"
        )
    if config.reward_head:
        raise ValueError(
            f"{run}: a reward model (scalar head) is not a causal language model; "
            "export a policy run (sft, dpo, grpo, rlhf)"
        )
    if os.path.abspath(out) in (os.path.abspath(run), os.path.abspath(where)):
        raise ValueError(f"--out {out}: must differ from the run directory")
    merged_config, merged = merge_lora(config, params)
    merged_config = merged_config.replace(value_head=False)
    save_pretrained(out, merged_config, merged)
    copied = copy_tokenizer(where, out)
    sizes = [x.size for x in jax.tree_util.tree_leaves(merged)]
    return {
        "model_type": config.model_type,
        "num_params": int(sum(sizes)),
        "lora_rank": config.lora_rank,
        "tokenizer_files": copied,
    }
