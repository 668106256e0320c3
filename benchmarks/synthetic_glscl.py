"""Synthetic benchmark: does GLSCL help? Trains a tiny model from scratch on CPU, per variant.

Usage: .venv/bin/python benchmarks/synthetic_glscl.py [--family objects|events] [--quick] [--seeds 0 1 2]

Data, ``--family objects`` (the default; benchmarks/synthetic_data.py): clips of three coloured
shapes in sequence with grey distractors; captions name two of the three in temporal order ("a
blue circle appears after a red square"); every test clip has its reversal (the same frames
played backwards) in the test set, so neither one frame nor an unordered bag of frames separates
the right clip from its reversal. No test clip's set of three objects occurs in training.
``--family events`` (benchmarks/synthetic_events.py, issue 16): two objects appear one after the
other and stay in view; captions name both events (object and motion) in order; each test clip
has a counterpart with the order swapped.

Variants, all trained with the same data, steps, learning rates and seed:
  mean-pool     temporal encoder + mean of frames (frame_pooling="mean", no LIM)
  GIM           temporal encoder + GIM (no LIM)
  GIM+LIM       the full model, reference loss weights (alpha=1e-4, beta=5e-3)
  GIM+LIM -div  without the intra-diversity loss
  GIM+LIM -con  without the inter-consistency loss
  GIM cos       (opt-in) GIM with cosine frame weights, gim_logits="cosine", tau = COSINE_TAU
Every variant is probed every --probe-every steps on the test set (model in eval mode, no
gradients, no random numbers drawn: training is unchanged): feature norms, the entropy of the
GIM frame weights, R@1 of sim1 and sim2 alone, the LIM's concept agreement (issue 16).
Then the similarity-head cost per text-video pair (FLOPs, torch FlopCounterMode) of GLSCL
against an X-Pool-style attention-pooling head, on the same D, T, K.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_data
import synthetic_events
from synthetic_data import SyntheticConfig, SyntheticSplit

from glscl_index.eval.evaluate import embed_clips, embed_texts, evaluate
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.factory import create_random_model
from glscl_index.model.gim import frame_weights
from glscl_index.model.glscl import GLSCL
from glscl_index.model.lim import LocalInteraction
from glscl_index.model.losses import LossConfig
from glscl_index.model.score import glscl_score
from glscl_index.train.config import TrainConfig
from glscl_index.train.frames import ClipFrames
from glscl_index.train.loop import TrainData, train

# A tiny open_clip architecture: text width = embed_dim (the temporal encoder is copied from the
# text tower), context_length >= max_words.
TINY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# GLSCL settings shared by every variant (the variants override pooling and K only).
MODEL = {
    "num_frames": 8, "max_words": 16, "temporal_layers": 2, "num_queries": 4,
    "decoder_layers": 2, "decoder_heads": 4, "decoder_ffn": 128,
}


# tau of the opt-in cosine GIM, fixed before any run: the paper's tau = 3 divided by |e| |v| ~ 80, the
# product of ViT-B/32's text and image feature norms (about 8 and 10), so that the cosine weights are
# as sharp as the paper's at CLIP's scale; not tuned on either family.
COSINE_TAU = 0.04


@dataclass
class Variant:
    name: str
    model: dict = field(default_factory=dict)
    loss: LossConfig = field(default_factory=LossConfig)


VARIANTS = (
    Variant("mean-pool", {"frame_pooling": "mean", "num_queries": 0}),
    Variant("GIM", {"num_queries": 0}),
    Variant("GIM+LIM", {}),
    Variant("GIM+LIM -div", {}, LossConfig(use_diversity=False)),
    Variant("GIM+LIM -con", {}, LossConfig(use_consistency=False)),
    Variant("GIM cos", {"num_queries": 0, "gim_logits": "cosine", "temperature": COSINE_TAU}),
)
DEFAULT_VARIANTS = ("mean-pool", "GIM", "GIM+LIM", "GIM+LIM -div", "GIM+LIM -con")


@dataclass
class Settings:
    data: SyntheticConfig | synthetic_events.EventsConfig
    epochs: int
    batch_size: int = 64
    lr: float = 1e-3  # both learning rates: tiny towers trained from scratch
    warmup_fraction: float = 0.1
    augment: str = ""  # RandAugment policy of training frames; off: the published figures were measured without


def settings_for(family: str, quick: bool, seed: int) -> Settings:
    """Both families have 9,000 training pairs (full) or 1,200 (quick) and 120 or 40 test clips."""
    if family == "events":
        if quick:
            return Settings(synthetic_events.EventsConfig(train_clips=600, test_families=20, seed=seed), epochs=1)
        return Settings(synthetic_events.EventsConfig(train_clips=4500, test_families=60, seed=seed), epochs=4)
    if quick:
        return Settings(SyntheticConfig(train_clips=400, test_families=20, seed=seed), epochs=1)
    return Settings(SyntheticConfig(train_clips=3000, test_families=60, seed=seed), epochs=4)


def make_split(settings: Settings) -> tuple[SyntheticSplit, SyntheticSplit]:
    if isinstance(settings.data, synthetic_events.EventsConfig):
        return synthetic_events.make_split(settings.data)
    return synthetic_data.make_split(settings.data)


class Probe:
    """Measurements of a model in training on the test split (issue 16's candidate causes)."""

    def __init__(self, model: GLSCL, split: SyntheticSplit):
        self.model, self.split, self.clips = model, split, clip_frames(split)
        self.own = torch.from_numpy(split.caption_clip)
        # Events family: the second event's onset; frames before it show the first object alone.
        onsets = getattr(split, "onsets", None)
        self.second_onset = None if onsets is None else torch.from_numpy(onsets[:, 1])[self.own]

    @torch.no_grad()
    def measure(self, step: int) -> dict[str, float]:
        model, cpu = self.model, torch.device("cpu")
        was_training = model.training
        model.eval()  # no dropout: the probe draws no random numbers, so training is unchanged
        try:
            video = embed_clips(model, self.clips, cpu)
            text = embed_texts(model, self.split.captions, cpu)
            scores = model.score(text, video)
        finally:
            model.train(was_training)
        rows = torch.arange(len(self.own))
        # The GIM weights of each caption over its own clip, with the model's tau and logits (for mean-pool,
        # what a GIM would do with its features: its score does not use them).
        weights = frame_weights(text.sentence, video.frames, video.mask, model.config.temperature,
                                model.config.gim_logits)[rows, self.own]  # [C, T]
        entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1) / math.log(weights.shape[-1])
        peak = weights.max(-1).values
        out = {
            "step": step,
            "frame_norm": float(video.frames.norm(dim=-1)[video.mask].mean()),
            "text_norm": float(text.sentence.norm(dim=-1).mean()),
            "logit_scale": float(model.backbone.logit_scale.exp()),
            "entropy": float(entropy.mean()),
            "max_weight": float(peak.mean()),
            "collapsed": float((peak >= 0.9).float().mean()),
            "r1": _r1(scores.total, self.own),
            "r1_sim1": _r1(scores.global_, self.own),
        }
        if self.second_onset is not None:
            early = torch.arange(weights.shape[-1]).unsqueeze(0) < self.second_onset.unsqueeze(1)
            out["early_mass"] = float((weights * early).sum(-1).mean())
        if scores.local is not None and text.concepts is not None and video.concepts is not None:
            out["r1_sim2"] = _r1(scores.local, self.own)
            # <W_k, U_k> of matched pairs; the consistency loss targets C_kk = (1/K) sum_b <U_bk, W_bk> = 0.75.
            out["concept_cos"] = float((text.concepts * video.concepts[self.own]).sum(-1).mean())
        return out


def _r1(scores: torch.Tensor, own: torch.Tensor) -> float:
    """Text-to-video R@1 (%) of ``scores [C, N]``: the own clip strictly above every other clip."""
    target = scores[torch.arange(len(own)), own].unsqueeze(1)
    others = scores >= target
    return 100.0 * float((others.sum(-1) == 1).float().mean())


class Progress:
    """Prints the running loss every ``every`` steps and probes the model every ``probe_every`` (callbacks)."""

    def __init__(self, label: str, probe: Probe | None = None, every: int = 50, probe_every: int = 20):
        self.label, self.every, self.losses, self.consistency = label, every, [], []
        self.probe, self.probe_every, self.trace = probe, probe_every, []

    def on_start(self, total_steps, start_step):
        self.total = total_steps
        if self.probe is not None:
            self.trace.append(self.probe.measure(start_step))

    def on_step(self, log):
        self.losses.append(log.loss)
        self.consistency.append(log.consistency)
        if log.step % self.every == 0 or log.step == self.total:
            recent = self.losses[-self.every :]
            print(f"  [{self.label}] step {log.step}/{self.total} loss {sum(recent) / len(recent):.3f}", flush=True)
        if self.probe is not None and (log.step % self.probe_every == 0 or log.step == self.total):
            recent = self.consistency[-self.probe_every :]
            self.trace.append({**self.probe.measure(log.step), "consistency_loss": sum(recent) / len(recent)})

    def on_epoch(self, epoch, report, is_best):
        pass


def clip_frames(split: SyntheticSplit) -> ClipFrames:
    count = len(split.frames)
    return ClipFrames(split.frames, np.full(count, split.frames.shape[1], np.int64), np.arange(count))


def run_variant(
    variant: Variant, arch_path: str, train_split, test_split, settings: Settings, seed: int, work: Path,
    probe_every: int,
) -> dict:
    model = create_random_model(arch_path, trained=True, seed=seed, **{**MODEL, **variant.model})
    data = TrainData(clip_frames(train_split), model.backbone.tokenize(train_split.captions), train_split.caption_clip)
    config = TrainConfig(
        epochs=settings.epochs, batch_size=settings.batch_size, lr_new=settings.lr, lr_clip=settings.lr,
        weight_decay=0.0, warmup_fraction=settings.warmup_fraction, seed=seed, mixed_precision=False,
        loss=variant.loss, augment=settings.augment,
    )
    started = time.perf_counter()
    progress = Progress(variant.name, Probe(model, test_split) if probe_every else None, probe_every=probe_every)
    train(model, data, config, work / f"{variant.name}-{seed}", device="cpu", callbacks=progress, resume=False)
    seconds = time.perf_counter() - started
    report = evaluate(model, clip_frames(test_split), test_split.captions, test_split.caption_clip, torch.device("cpu"))
    return {**report.text_to_video, "seconds": seconds, "trace": progress.trace}


# ---------------------------------------------------------------- similarity-head cost


class XPoolHead(nn.Module):
    """X-Pool's text-conditioned attention pooling ("Transformer" of Gorti et al., CVPR 2022), one head.

    LayerNorm -> Q from the text, K/V from the frames (D x D projections) -> softmax over T ->
    output projection -> LayerNorm -> residual linear -> LayerNorm; score = cos(text, pooled).
    """

    def __init__(self, width: int):
        super().__init__()
        self.norm_in, self.norm_attn, self.norm_out = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.q_proj, self.k_proj, self.v_proj = (
            nn.Linear(width, width),
            nn.Linear(width, width),
            nn.Linear(width, width),
        )
        self.out_proj, self.linear = nn.Linear(width, width), nn.Linear(width, width)

    def video_side(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames ``[V, T, D]`` -> keys, values ``[V, T, D]`` (per video: cacheable offline)."""
        frames = self.norm_in(frames)
        return self.k_proj(frames), self.v_proj(frames)

    def text_side(self, sentence: torch.Tensor) -> torch.Tensor:
        """sentence ``[Q, D]`` -> queries ``[Q, D]`` (once per query)."""
        return self.q_proj(self.norm_in(sentence))

    def pair_scores(
        self, sentence: torch.Tensor, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """The per-(text, video) part -> cosine scores ``[Q, V]``."""
        logits = torch.einsum("qd,vtd->qvt", queries, keys) / math.sqrt(keys.shape[-1])
        pooled = torch.einsum("qvt,vtd->qvd", logits.softmax(-1), values)
        pooled = self.norm_attn(self.out_proj(pooled))
        pooled = self.norm_out(pooled + self.linear(pooled))
        return torch.nn.functional.cosine_similarity(self.norm_in(sentence).unsqueeze(1), pooled, dim=-1)


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def head_costs(width: int, frames: int, concepts: int, words: int, decoder_layers: int, decoder_heads: int,
               decoder_ffn: int, videos: int = 256) -> dict[str, float]:
    """FLOPs of each similarity head for one text against ``videos`` videos, per pair / query / video."""
    torch.manual_seed(0)
    sentence, tokens = torch.randn(1, width), torch.randn(1, words, width)
    video_frames = torch.randn(videos, frames, width)
    frame_mask, token_mask = torch.ones(videos, frames, dtype=torch.bool), torch.ones(1, words, dtype=torch.bool)
    lim = LocalInteraction(GLSCLConfig(
        clip_config={"embed_dim": width}, num_queries=concepts, decoder_layers=decoder_layers,
        decoder_heads=decoder_heads, decoder_ffn=decoder_ffn,
    )).eval().requires_grad_(False)
    textual = lim(tokens, token_mask).detach()
    visual = lim(video_frames, frame_mask).detach()
    xpool = XPoolHead(width).eval().requires_grad_(False)
    keys, values = xpool.video_side(video_frames)
    queries = xpool.text_side(sentence)
    return {
        "glscl_pair": count_flops(lambda: glscl_score(sentence, video_frames, frame_mask, textual, visual, 3.0, 0.5))
        / videos,
        "glscl_pair_sim1": count_flops(lambda: glscl_score(sentence, video_frames, frame_mask, None, None, 3.0, 0.5))
        / videos,
        # The per-video Gram matrix V V^T inside global_similarity does not depend on the query.
        "glscl_gram": count_flops(lambda: torch.einsum("vtd,vsd->vts", video_frames, video_frames)) / videos,
        "glscl_query": count_flops(lambda: lim(tokens, token_mask)),
        "glscl_video": count_flops(lambda: lim(video_frames, frame_mask)) / videos,
        "xpool_pair": count_flops(lambda: xpool.pair_scores(sentence, queries, keys, values)) / videos,
        "xpool_query": count_flops(lambda: xpool.text_side(sentence)),
        "xpool_video": count_flops(lambda: xpool.video_side(video_frames)) / videos,
    }


# ---------------------------------------------------------------- report


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def binomial_se(percent: float, trials: int) -> float:
    """Standard error (points) of a rate of ``percent`` % measured on ``trials`` captions of one run."""
    p = percent / 100
    return 100 * math.sqrt(p * (1 - p) / trials)


def print_results(results: dict[str, list[dict]], test_split: SyntheticSplit) -> None:
    queries, clips = len(test_split.captions), len(test_split.frames)
    print(f"\ntext-to-video on {queries} test captions x {clips} test clips (chance R@1 = {100 / clips:.1f}%); "
          f"mean ± std over seeds, (binomial standard error of one run at the mean, {queries} captions)")
    print("| variant | R@1 | R@5 | MdR | train s | per seed R@1 / R@5 |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        cells = []
        for key in ("R@1", "R@5"):
            values = [r[key] for r in runs]
            cells.append(f"{mean_std(values)} ({binomial_se(statistics.mean(values), queries):.1f})")
        cells += [mean_std([r[k] for r in runs]) for k in ("MdR", "seconds")]
        cells.append(", ".join(f"{r['R@1']:.1f} / {r['R@5']:.1f}" for r in runs))
        print(f"| {name} | " + " | ".join(cells) + " |")


TRACE_COLUMNS = (
    ("frame_norm", "|v_t|"), ("text_norm", "|e|"), ("logit_scale", "logit scale"), ("entropy", "H(a)/log T"),
    ("max_weight", "max a_t"), ("collapsed", "share max a_t >= 0.9"), ("early_mass", "a mass before 2nd onset"),
    ("r1", "R@1"), ("r1_sim1", "R@1 sim1"), ("r1_sim2", "R@1 sim2"), ("concept_cos", "<U_k,W_k>"),
    ("consistency_loss", "consistency loss"),
)


def print_traces(results: dict[str, list[dict]], every: int) -> None:
    """Probe measurements over training, mean over seeds, every ``every`` steps (and the last)."""
    print("\ntraining trace on the test split (mean over seeds). a = GIM frame weights of each caption over its own "
          "clip with the model's tau (mean-pool: what a GIM would give on its features; unused by its score)")
    for name, runs in results.items():
        traces = [r["trace"] for r in runs if r.get("trace")]
        if not traces:
            continue
        steps = [p["step"] for p in traces[0]]
        keep = [i for i, step in enumerate(steps) if step % every == 0 or i == len(steps) - 1]
        columns = [(key, label) for key, label in TRACE_COLUMNS if key in traces[0][-1]]
        print(f"\n{name}\n| step | " + " | ".join(label for _, label in columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for i in keep:
            cells = []
            for key, _ in columns:
                values = [t[i][key] for t in traces if key in t[i]]
                cells.append(f"{statistics.mean(values):.3g}" if values else "")
            print(f"| {steps[i]} | " + " | ".join(cells) + " |")


def print_costs(shapes: list[tuple[str, dict]]) -> None:
    print("\nsimilarity-head cost (FLOPs counted by torch FlopCounterMode: matmuls only)")
    print("| shapes | GLSCL per pair | of which Gram (query-independent) | X-Pool per pair | X-Pool / GLSCL | "
          "X-Pool / GLSCL w/o Gram | GLSCL per query (text LIM) | X-Pool per query | "
          "GLSCL per video (offline) | X-Pool per video (cacheable) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, c in shapes:
        print(
            f"| {label} | {c['glscl_pair']:,.0f} | {c['glscl_gram']:,.0f} | {c['xpool_pair']:,.0f} | "
            f"{c['xpool_pair'] / c['glscl_pair']:.1f}x | "
            f"{c['xpool_pair'] / (c['glscl_pair'] - c['glscl_gram']):.1f}x | "
            f"{c['glscl_query']:,.0f} | {c['xpool_query']:,.0f} | {c['glscl_video']:,.0f} | {c['xpool_video']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("objects", "events"), default="objects",
                        help="data: three objects in sequence (synthetic_data.py) or two persistent events "
                        "(synthetic_events.py)")
    parser.add_argument("--quick", action="store_true", help="tiny data, one epoch: a smoke run of a minute or two")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds (data, init, batches): mean ± std")
    parser.add_argument("--epochs", type=int, help="override the number of epochs")
    parser.add_argument("--batch-size", type=int, help="override the batch size")
    parser.add_argument("--lr", type=float, help="override the learning rate (all parameters)")
    parser.add_argument("--augment", default="", help="RandAugment policy of the training frames, e.g. the official "
                        "rand-m7-n4-mstd0.5-inc1 (default: none, as the figures in docs/benchmarks.md)")
    parser.add_argument("--variants", nargs="+", choices=[v.name for v in VARIANTS], default=list(DEFAULT_VARIANTS),
                        help=f"variants to train (default: {', '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--jobs", type=int, default=len(DEFAULT_VARIANTS), help="variants trained at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per variant")
    parser.add_argument("--probe-every", type=int, default=20, help="steps between probes of the model (0: none)")
    parser.add_argument("--trace-every", type=int, default=40, help="steps between rows of the printed trace")
    parser.add_argument("--json", type=Path, help="also write every run's metrics and trace to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.seeds or [args.seed]
    variants = [v for v in VARIANTS if v.name in args.variants]
    started = time.perf_counter()
    results: dict[str, list[dict]] = {v.name: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        arch_path = work / "tiny-clip.json"
        arch_path.write_text(json.dumps(TINY_CLIP))
        for seed in seeds:
            settings = settings_for(args.family, args.quick, seed)
            settings.epochs = args.epochs or settings.epochs
            settings.batch_size = args.batch_size or settings.batch_size
            settings.lr = args.lr or settings.lr
            settings.augment = args.augment
            train_split, test_split = make_split(settings)
            print(f"{args.family} family, seed {seed}: {len(train_split.frames)} train clips / "
                  f"{len(train_split.captions)} captions, {len(test_split.frames)} test clips / "
                  f"{len(test_split.captions)} captions; "
                  f"{settings.epochs} epochs of batch {settings.batch_size}", flush=True)
            # One process per variant, one torch thread each: on a small shared CPU this beats
            # running them one after the other with the threads split across one model.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=torch.set_num_threads,
                                     initargs=(args.threads,)) as pool:
                futures = {
                    variant.name: pool.submit(run_variant, variant, str(arch_path), train_split, test_split,
                                              settings, seed, work, args.probe_every)
                    for variant in variants
                }
                for name, future in futures.items():
                    result = future.result()
                    results[name].append(result)
                    print(f"  {name}: R@1 {result['R@1']:.1f}  R@5 {result['R@5']:.1f}  "
                          f"MdR {result['MdR']:.1f}  ({result['seconds']:.0f} s)", flush=True)
            if args.json:  # after every seed, so an interrupted run keeps what it measured
                args.json.write_text(json.dumps({"command": sys.argv, "results": results}, indent=1))
    print_results(results, test_split)
    if args.probe_every:
        print_traces(results, args.trace_every)
    d, t, k = TINY_CLIP["embed_dim"], MODEL["num_frames"], MODEL["num_queries"]
    print_costs(
        [
            (
                f"this benchmark (D={d}, T={t}, K={k}, L={MODEL['max_words']})",
                head_costs(
                    d, t, k, MODEL["max_words"], MODEL["decoder_layers"], MODEL["decoder_heads"], MODEL["decoder_ffn"]
                ),
            ),
            ("ViT-B/32 reference (D=512, T=12, K=8, L=32)", head_costs(512, 12, 8, 32, 3, 8, 2048)),
        ]
    )
    command = " ".join(["python", "benchmarks/synthetic_glscl.py", *sys.argv[1:]])
    print(f"\ncommand: {command}\ntotal wall time: {time.perf_counter() - started:.0f} s "
          f"({args.jobs} variants at a time, {args.threads} torch thread(s) each)")


if __name__ == "__main__":
    main()
