"""lm-eval's HFLM with greedy `generate_until` requests decoded by mixsd's loop.

lm-eval's own path batches requests into `model.generate` calls with a dynamic cache: on a GPU it is launch-bound
(benchmarks/gpu_decode.py: 1,232 tokens/s against 10,857 through the static loop on an H200). Here each greedy
request becomes one job of the targets' loop at lam 1 (one cache row, continuous batching, the static compiled
step on CUDA), with lm-eval's stop strings checked on the decoded tail after every token. The contexts are
encoded exactly as HFLM encodes them, and the text is post-processed as HFLM does (cut at the first stop string).
Log-likelihood requests and sampled generations (temperature > 0) go through HFLM unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from tqdm.auto import tqdm

from mixsd.chat import format_of, stop_ids
from mixsd.evaluation.generation import greedy
from mixsd.targets.engine import Job


def stop_strings(tokenizer, strings: list[str]) -> Callable[[list[int]], bool]:
    """True once the decoded tail of the tokens holds one of `strings` (a few tokens more than the longest)."""
    lookback = max(len(tokenizer.encode(s, add_special_tokens=False)) for s in strings) + 2
    return lambda tokens: any(s in tokenizer.decode(tokens[-lookback:]) for s in strings)


class LoopLM(HFLM):
    """HFLM whose greedy generations run through `MixedDecoder` (see the module docstring)."""

    def __init__(self, *args, decode: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.decode = decode

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """lm-eval's chat turns in the tokenizer's prompt format, as every other prompt of the evaluation."""
        fmt = format_of(self.tokenizer)
        return fmt.render(self.tokenizer, chat_history, add_generation_prompt=add_generation_prompt)

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        jobs, sampled = [], []
        for i, request in enumerate(requests):
            context, gen_kwargs = request.args
            kwargs = normalize_gen_kwargs(dict(gen_kwargs), self.max_gen_toks)
            if kwargs.get("do_sample") or (kwargs.get("temperature") or 0) > 0:
                sampled.append(i)
                continue
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            budget = kwargs.pop("max_gen_toks")
            ids, _ = self.tok_batch_encode(
                [context], left_truncate_len=self.max_length - budget, truncation=self.truncation
            )
            prompt = ids[0].tolist()
            stop = stop_strings(self.tokenizer, until) if until else None
            jobs.append(Job(str(i), prompt, prompt, max_new_tokens=budget, payload=until, stop=stop))

        out: list[str | None] = [None] * len(requests)
        if jobs:
            batch = self.batch_size if isinstance(self.batch_size, int) else 16  # "auto" probes memory for HF's path
            stops = stop_ids(self.tokenizer, self.model) | {self.eot_token_id}
            bar = tqdm(total=len(jobs), disable=disable_tqdm or self.rank != 0, desc="generate_until (mixsd loop)")
            for result in greedy(self.model, jobs, stops, batch_size=batch, decode=self.decode):
                tokens = result.token_ids
                if isinstance(self.think_end_token, int) and self.think_end_token in tokens:  # as HFLM: keep the answer
                    tokens = tokens[len(tokens) - tokens[::-1].index(self.think_end_token) :]
                text = postprocess_generated_text(
                    generation=self.tok_decode(tokens),
                    stop=result.job.payload,
                    think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None,
                )
                i = int(result.job.key)
                out[i] = text
                self.cache_hook.add_partial("generate_until", requests[i].args, text)
                bar.update(1)
            bar.close()
        if sampled:
            texts = super().generate_until([requests[i] for i in sampled], disable_tqdm)
            for i, text in zip(sampled, texts, strict=True):
                out[i] = text
        return out
