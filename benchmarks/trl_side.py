"""The TRL side of ``benchmarks/llm_trl.py``: GRPOTrainer and DPOTrainer step times.

Run by the driver in its own virtual environment (torch, transformers, trl; never a
jaxrl dependency), one algorithm per process::

    /work/trl-venv/bin/python benchmarks/trl_side.py --algo grpo --model DIR --data FILE ...

and prints one line ``RESULT{json}``. This file imports nothing from jaxrl: the reward
below is written again in ``llm_trl.py`` (the same formula on the same decoded text).

Timing: a ``TrainerCallback`` reads the wall and process CPU clocks at
``on_step_begin`` and ``on_step_end`` (one optimiser step each, gradient accumulation 1);
the first ``--warmup`` steps are dropped and the median of the rest reported. The GRPO
step is split by timing, inside the same steps, the trainer's own stages: generation
(``model.generate``), the reference forward pass, the reward functions, and the whole
rollout (``_generate_and_score_completions``); the update is the step minus the rollout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def distinct_char_share(text: str) -> float:
    """The benchmark's reward: distinct characters / characters (0 for empty text)."""
    return len(set(text)) / len(text) if text else 0.0


def _read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class _Clock:
    """Per-step wall and CPU times, and the time of named stages inside each step."""

    def __init__(self):
        self.steps: list[dict] = []
        self.stages: dict[str, float] = {}
        self.shapes: dict[str, list[int]] = {}
        self._t0 = self._c0 = 0.0

    def begin(self):
        self.stages = {}
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def end(self):
        wall = time.perf_counter() - self._t0
        cpu = time.process_time() - self._c0
        self.steps.append({"step_s": wall, "step_cpu_s": cpu, **self.stages})

    def add(self, name: str, seconds: float):
        self.stages[name] = self.stages.get(name, 0.0) + seconds


CLOCK = _Clock()


class _Timed:
    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        CLOCK.add(self.name, time.perf_counter() - self.t)
        return False


def _callback():
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            CLOCK.begin()

        def on_step_end(self, args, state, control, **kwargs):
            CLOCK.end()

    return StepClock()


def _common_args(args) -> dict:
    """Trainer settings both algorithms share: CPU, float32, no logging or saving."""
    return dict(
        output_dir=args.workdir,
        max_steps=args.warmup + args.steps,
        learning_rate=args.learning_rate,
        gradient_accumulation_steps=1,
        bf16=False,
        fp16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=10_000,
        disable_tqdm=True,
        seed=args.seed,
        data_seed=args.seed,
        dataloader_num_workers=0,
        max_grad_norm=1.0,
        # TRL's configs default to True; jaxrl keeps activations (ModelConfig.remat=False)
        gradient_checkpointing=False,
    )


def run_grpo(args, model, tokenizer):
    import datasets
    import torch
    from trl import GRPOConfig, GRPOTrainer

    rows = _read_jsonl(args.data)
    data = datasets.Dataset.from_list(
        [{"prompt": [{"role": "user", "content": r["prompt"]}]} for r in rows]
    )

    def distinct_chars(completions, **kwargs):
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return [distinct_char_share(t) for t in texts]

    class TimedGRPOTrainer(GRPOTrainer):
        """GRPOTrainer whose rollout stages add their wall time to ``CLOCK``."""

        def _generate_and_score_completions(self, inputs):
            with _Timed("rollout"):
                return super()._generate_and_score_completions(inputs)

        def _generate_single_turn(self, prompt_ids, *a, **k):
            CLOCK.shapes["prompt_len"] = sorted({len(p) for p in prompt_ids})
            with _Timed("generation"):
                out = super()._generate_single_turn(prompt_ids, *a, **k)
            return out

        def _calculate_rewards(self, *a, **k):
            with _Timed("reward"):
                return super()._calculate_rewards(*a, **k)

        def _get_per_token_logps_and_entropies(self, model, input_ids, *a, **k):
            if model is self.ref_model:
                CLOCK.shapes["sequence_shape"] = list(input_ids.shape)
                with _Timed("reference"):
                    return super()._get_per_token_logps_and_entropies(model, input_ids, *a, **k)
            name = "old_log_probs" if not torch.is_grad_enabled() else "policy_forward"
            with _Timed(name):
                return super()._get_per_token_logps_and_entropies(model, input_ids, *a, **k)

    config = GRPOConfig(
        **_common_args(args),
        per_device_train_batch_size=args.prompts * args.group,
        num_generations=args.group,
        max_completion_length=args.completion_len,
        # every completion runs the full length, as on the jaxrl side (EOS never sampled)
        generation_kwargs={"min_new_tokens": args.completion_len},
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        num_iterations=1,
        beta=args.kl_coef,
        epsilon=0.2,
        loss_type="grpo",  # per-sequence token mean, then mean: jaxrl's seq_mean_token_mean
        scale_rewards="group",
        mask_truncated_completions=False,
        log_completions=False,
        use_vllm=False,
    )
    trainer = TimedGRPOTrainer(
        model=model,
        reward_funcs=[distinct_chars],
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[_callback()],
    )
    trainer.train()
    return {"ref_model_loaded": trainer.ref_model is not None}


def run_dpo(args, model, tokenizer):
    import datasets
    from trl import DPOConfig, DPOTrainer

    rows = _read_jsonl(args.data)
    data = datasets.Dataset.from_list(
        [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]
    )

    class TimedDPOTrainer(DPOTrainer):
        def training_step(self, model, inputs, *a, **k):
            CLOCK.shapes["input_shape"] = list(inputs["input_ids"].shape)
            return super().training_step(model, inputs, *a, **k)

    config = DPOConfig(
        **_common_args(args),
        per_device_train_batch_size=args.batch,
        max_length=None,  # no truncation: the rows are short and of one length
        beta=0.1,
        loss_type=["sigmoid"],
        # jaxrl computes the reference log-probs of every pair once, before training
        precompute_ref_log_probs=args.precompute_ref,
    )
    trainer = TimedDPOTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[_callback()],
    )
    trainer.train()
    return {"precompute_ref_log_probs": args.precompute_ref}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", choices=("grpo", "dpo"), required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=1e-5)
    p.add_argument("--prompts", type=int, default=4, help="GRPO prompts per step")
    p.add_argument("--group", type=int, default=8, help="GRPO completions per prompt")
    p.add_argument("--completion-len", type=int, default=64)
    p.add_argument("--kl-coef", type=float, default=0.04)
    p.add_argument("--batch", type=int, default=8, help="DPO pairs per step")
    p.add_argument("--precompute-ref", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args()
    if os.environ.get("BENCH_CORES"):  # the driver's cores for this run, set before torch starts
        os.sched_setaffinity(0, [int(c) for c in os.environ["BENCH_CORES"].split(",")])

    import torch
    import transformers
    import trl

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.model)
    run = run_grpo if args.algo == "grpo" else run_dpo
    extra = run(args, model, tokenizer)
    timed = CLOCK.steps[args.warmup :]
    if len(timed) < 1:
        raise SystemExit(f"only {len(CLOCK.steps)} steps were timed, fewer than warm-up + 1")
    names = sorted({k for s in timed for k in s})
    out = {
        "impl": "trl",
        "algo": args.algo,
        "versions": {
            "trl": trl.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "torch_threads": torch.get_num_threads(),
        "steps_timed": len(timed),
        "warmup_steps": args.warmup,
        "median": {k: statistics.median(s.get(k, 0.0) for s in timed) for k in names},
        "per_step": timed,
        "shapes": CLOCK.shapes,
        **extra,
    }
    print("RESULT" + json.dumps(out))


if __name__ == "__main__":
    main()
