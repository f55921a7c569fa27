"""Personalized generation: generators (fake OpenAI server, tiny local model), best-of-N, guided decoding."""

import json
import socket
import string
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from preflm.data import AnswerMatrix, normalize_frame
from preflm.factorize import RewardFactorization
from preflm.featurize import TextStatsFeaturizer
from preflm.cli import app
from preflm.generate.generators import (
    GenerationConfig,
    GenerationError,
    HFGenerator,
    OpenAIGenerator,
    load_generator,
)
from preflm.generate.personalize import (
    CandidateSet,
    describe_user,
    guided_decoding,
    personalized_best_of_n,
    prompting_baseline,
)
from preflm.onboard import UserProfile


class FakeChatServer(ThreadingHTTPServer):
    """An OpenAI-compatible /v1/chat/completions that answers deterministically.

    The answer echoes the system prompt, the user prompt, the seed and the choice index. ``fail_next``
    replies 500 that many times first (asking, by Retry-After-Ms, for a retry after 10 ms), ``delay``
    sleeps before answering, ``max_choices`` caps ``n`` like servers that ignore it, ``status`` forces
    an error status.
    """

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.requests: list[dict] = []
        self.fail_next = 0
        self.delay = 0.0
        self.max_choices = 100
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status: int, body: dict | str, headers: dict | None = None) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        server: FakeChatServer = self.server
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append(payload)
        if self.path != "/v1/chat/completions":
            return self._reply(404, {"error": "not found"})
        if server.delay:
            time.sleep(server.delay)
        if server.fail_next > 0:
            server.fail_next -= 1
            return self._reply(500, {"error": "transient failure"}, {"Retry-After-Ms": "10"})
        if server.status != 200:
            return self._reply(server.status, {"error": "bad request: unknown model"})
        system = next((m["content"] for m in payload["messages"] if m["role"] == "system"), "")
        user = next(m["content"] for m in payload["messages"] if m["role"] == "user")
        choices = []
        for i in range(min(payload.get("n", 1), server.max_choices)):
            text = f"{system} | {user} | seed {payload['seed']} choice {i}" + " more" * ((payload["seed"] + i) % 5)
            cut = len(text.split()) > payload.get("max_tokens", 10**6)
            choices.append({"index": i, "message": {"role": "assistant", "content": text},
                            "finish_reason": "length" if cut else "stop"})
        usage = {"completion_tokens": sum(len(c["message"]["content"].split()) for c in choices)}
        self._reply(200, {"choices": choices, "usage": usage})


@pytest.fixture
def server():
    srv = FakeChatServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_openai_generator_returns_n_candidates_per_prompt_in_order(server):
    gen = OpenAIGenerator(server.url, "fake-model", concurrency=2)
    prompts = ["first question", "second question", "third question"]
    out = gen.generate(prompts, n=4, config=GenerationConfig(max_new_tokens=20, seed=7, system_prompt="Be nice."))
    assert [len(c) for c in out] == [4, 4, 4]
    for prompt, candidates in zip(prompts, out):
        assert all(prompt in c and c.startswith("Be nice.") for c in candidates)
        assert len(set(candidates)) == 4
    assert len(server.requests) == 3 and {r["n"] for r in server.requests} == {4}
    assert {r["max_tokens"] for r in server.requests} == {20} and {r["model"] for r in server.requests} == {"fake-model"}
    assert gen.tokens_generated > 0


def test_openai_generator_asks_again_when_the_server_ignores_n(server):
    server.max_choices = 1
    gen = OpenAIGenerator(server.url, "m", concurrency=1)
    out = gen.generate(["q"], n=3, config=GenerationConfig(seed=10))
    assert len(out[0]) == 3 and len(set(out[0])) == 3
    assert [r["seed"] for r in server.requests] == [10, 11, 12]


def test_openai_generator_greedy_asks_once_and_repeats(server):
    gen = OpenAIGenerator(server.url, "m")
    out = gen.generate(["q"], n=3, config=GenerationConfig(temperature=0.0))
    assert len(out[0]) == 3 and len(set(out[0])) == 1
    assert server.requests[0]["temperature"] == 0.0 and server.requests[0]["n"] == 1 and len(server.requests) == 1


def test_openai_generator_retries_transient_server_errors(server):
    server.fail_next = 2
    gen = OpenAIGenerator(server.url, "m", max_retries=3)
    out = gen.generate(["q"], n=1)
    assert "q" in out[0][0]
    assert len(server.requests) == 3


def test_openai_generator_gives_up_with_a_clear_error(server):
    server.fail_next = 10
    gen = OpenAIGenerator(server.url, "m", max_retries=2)
    with pytest.raises(GenerationError, match=r"returned HTTP 500.*after 3 attempts"):
        gen.generate(["q"], n=1)
    assert len(server.requests) == 3


def test_openai_generator_does_not_retry_client_errors(server):
    server.status = 400
    gen = OpenAIGenerator(server.url, "m", max_retries=3)
    with pytest.raises(GenerationError, match="HTTP 400.*unknown model"):
        gen.generate(["q"], n=1)
    assert len(server.requests) == 1


def test_openai_generator_times_out(server):
    server.delay = 1.0
    gen = OpenAIGenerator(server.url, "m", timeout=0.1, max_retries=1)
    with pytest.raises(GenerationError, match="timed out"):
        gen.generate(["q"], n=1)


def test_openai_generator_says_when_the_endpoint_is_down():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    gen = OpenAIGenerator(url, "m", max_retries=1)
    with pytest.raises(GenerationError, match=r"unreachable.*is the server running") as err:
        gen.generate(["q"], n=2)
    assert url in str(err.value)


def test_load_generator_parses_specs(server):
    gen = load_generator(f"openai:{server.url}#Qwen/Qwen2.5-1.5B-Instruct")
    assert isinstance(gen, OpenAIGenerator) and gen.model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert load_generator("openai:http://localhost:8000#m").base_url == "http://localhost:8000/v1"
    with pytest.raises(ValueError, match="needs a model after"):
        load_generator("openai:http://localhost:8000/v1")
    with pytest.raises(ValueError, match="unknown generator"):
        load_generator("no-such-generator")
    with pytest.raises(GenerationError, match="local model"):
        gen.continue_text(["q"], [""], 2)


class MeanCodeFeaturizer:
    """Two features of a response: its length in characters and the mean character code."""

    dim = 2

    def spec(self):
        return {"type": "mean-code-test"}

    def transform(self, prompts, responses):
        return np.array([[len(r), np.mean([ord(c) for c in r]) if r else 0.0] for r in responses], dtype=np.float32)


class IdentityRewards:
    """A stand-in reward model whose base rewards are the features themselves (J = 2)."""

    user_weights_ = np.zeros((1, 2))

    def base_rewards(self, features):
        return np.asarray(features, dtype=np.float64)

    def rewards(self, prompts, responses, weights):
        return np.asarray(weights, dtype=np.float64) @ self.base_rewards(MeanCodeFeaturizer().transform(prompts, responses)).T


def test_candidates_are_generated_once_and_reranked_per_user(server):
    gen = OpenAIGenerator(server.url, "m")
    users = {"wordy": [1.0, 0.0], "terse": [-1.0, 0.0]}
    prompts = ["how do I bake bread", "why is the sky blue"]
    picks = personalized_best_of_n(gen, IdentityRewards(), users, prompts, n=5)
    asked = len(server.requests)
    assert picks.scores.shape == (2, 2, 5)
    for p, candidates in enumerate(picks.candidates.candidates):
        lengths = [len(c) for c in candidates]
        assert picks.answers("wordy")[p] == candidates[int(np.argmax(lengths))]
        assert picks.answers("terse")[p] == candidates[int(np.argmin(lengths))]
        assert picks.ranking("wordy", p).best == picks.answers("wordy")[p]
    again = personalized_best_of_n(None, IdentityRewards(), {"x": [0.0, 1.0]}, prompts, candidates=picks.candidates)
    assert len(server.requests) == asked
    assert again.scores.shape == (1, 2, 5)


def test_style_instructions_cycle_over_candidates(server, tmp_path):
    gen = OpenAIGenerator(server.url, "m")
    styles = [None, "Answer briefly.", "Answer with a joke."]
    cands = CandidateSet.generate(gen, ["q1", "q2"], 5, GenerationConfig(system_prompt="Base."), styles)
    assert cands.styles[0] == [None, "Answer briefly.", "Answer with a joke.", None, "Answer briefly."]
    for candidate, style in zip(cands.candidates[1], cands.styles[1]):
        assert candidate.startswith("Base." if style is None else f"Base. {style}") and "q2" in candidate
    assert cands.head(2).candidates == [c[:2] for c in cands.candidates]
    assert CandidateSet.load(cands.save(tmp_path / "c.json")) == cands


def _fit_length_model():
    """A real RewardFactorization on text statistics: user "brief" likes short answers, "wordy" long ones."""
    short = ["Yes.", "No.", "Sure thing.", "Fine.", "Ok then."]
    long = ["Here is a long and careful answer with many words in it, explained step by step.",
            "Let me explain this at length, with context, examples and a few caveats as well.",
            "This answer goes on for a while, covering background, details and a summary too."]
    rows = [{"user_id": user, "prompt": "q", "response_a": s, "response_b": l, "preference": "a" if user == "brief" else "b"}
            for user in ("brief", "wordy") for s in short for l in long]
    matrix = AnswerMatrix.from_frame(normalize_frame(pd.DataFrame(rows)))
    featurizer = TextStatsFeaturizer()
    features = featurizer.transform(list(matrix.item_prompts), list(matrix.item_responses))
    model = RewardFactorization(n_factors=2, head="linear", val_fraction=0.0, max_steps=300, featurizer_spec=featurizer.spec())
    return model.fit(features, matrix, progress=False)


def test_prompting_baseline_tells_the_llm_the_styles_the_user_likes(server):
    model = _fit_length_model()
    gen = OpenAIGenerator(server.url, "m")
    styles = [None, "Answer briefly.", "Answer in great detail, covering background, examples and caveats."]
    probes = CandidateSet.generate(gen, ["how do I bake bread", "why is the sky blue"], 6, GenerationConfig(), styles)
    brief = model.user_weights_[model.user_index("brief")]
    wordy = model.user_weights_[model.user_index("wordy")]
    assert describe_user(model, brief, probes)[0][0] == "Answer briefly."
    assert describe_user(model, wordy, probes)[0][0] == styles[2]
    prompted = prompting_baseline(gen, model, {"brief": brief, "wordy": wordy}, ["q"], candidates=probes, top=1)
    assert "Answer briefly." in prompted.system_prompts[0] and styles[2] not in prompted.system_prompts[0]
    assert styles[2] in prompted.texts[1][0]
    profile = UserProfile("u", list(brief), np.eye(2).tolist(),
                          answers=[{"prompt": "q", "response_a": "Yes.", "response_b": "A long answer.", "preference": 1.0}])
    by_answers = prompting_baseline(gen, model, profile, ["q"], mode="answers")
    assert "Chosen: Yes." in by_answers.system_prompts[0] and "Rejected: A long answer." in by_answers.system_prompts[0]


def test_generate_cli_prints_the_users_best_candidate(server, tmp_path):
    model = _fit_length_model()
    model.save(tmp_path / "model")
    UserProfile("wordy", list(model.user_weights_[model.user_index("wordy")]), np.eye(model.n_weights).tolist()).save(tmp_path / "p.json")
    args = ["generate", "how do I bake bread", "--reward-model", str(tmp_path / "model"), "--profile", str(tmp_path / "p.json"),
            "--model-name-or-path", f"openai:{server.url}#m", "-n", "4", "--show-candidates"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "best-of-n answer for wordy" in result.output and "4 candidates scored" in result.output
    assert "in detail" in result.output.split("best-of-n answer")[1]
    table = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    document = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert document["user_id"] == "wordy" and document["answer"] in result.stdout
    assert table[0] == ["rank", "reward", "style", "candidate"]
    assert [[("* " if c["chosen"] else "") + str(c["rank"]), f"{c['reward']:+.3f}", c["style"], c["candidate"]]
            for c in document["candidates"]] == table[1:]
    down = CliRunner().invoke(app, args[:-5] + ["--model-name-or-path", f"openai:http://127.0.0.1:{_closed_port()}/v1#m"])
    assert down.exit_code == 2 and "unreachable" in down.output
    no_user = CliRunner().invoke(app, ["generate", "q", "--reward-model", str(tmp_path / "model"), "--method", "guided"])
    assert no_user.exit_code == 2 and "needs --user-id" in no_user.output


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-layer Llama and a character-level tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = list(string.ascii_letters + string.digits + string.punctuation + " \n")
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
    tokenizer.chat_template = (
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=None, eos_token_id=1, pad_token_id=0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return HFGenerator(str(tiny_model_dir), device="cpu", batch_size=16)


def test_hf_generator_greedy_is_deterministic_and_sampling_is_seeded(tiny):
    greedy = GenerationConfig(max_new_tokens=12, temperature=0.0)
    first = tiny.generate(["hello there", "a longer prompt here"], n=3, config=greedy)
    assert [len(c) for c in first] == [3, 3] and all(len(set(c)) == 1 for c in first)
    assert tiny.generate(["hello there", "a longer prompt here"], n=1, config=greedy) == [c[:1] for c in first]
    sample = GenerationConfig(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=3)
    a = tiny.generate(["hello there"], n=6, config=sample)
    assert a == tiny.generate(["hello there"], n=6, config=sample)
    assert len(set(a[0])) > 1
    assert a != tiny.generate(["hello there"], n=6, config=sample.replace(seed=4))
    before = tiny.tokens_generated
    tiny.generate(["x"], n=2, config=sample)
    assert 0 < tiny.tokens_generated - before <= 2 * 12


def test_hf_generator_shared_prompt_cache_matches_separate_encoding(tiny):
    greedy = GenerationConfig(max_new_tokens=10, temperature=0.0)
    contexts = [tiny.render("short"), tiny.render("a much longer prompt to pad the batch")]
    shared = tiny._sample(contexts, 3, greedy, 10)
    tiny.share_prefix = False
    try:
        separate = tiny._sample(contexts, 3, greedy, 10)
    finally:
        tiny.share_prefix = True
    assert shared == separate and all(len(row) == 3 for row in shared)


def test_hf_generator_continues_a_partial_answer(tiny):
    config = GenerationConfig(max_new_tokens=5, temperature=1.0, seed=1)
    out = tiny.continue_text(["hi", "yo"], ["Sure, ", ""], n=3, config=config)
    assert [len(row) for row in out] == [3, 3]
    for prefix, row in zip(["Sure, ", ""], out):
        for c in row:
            assert c.text.startswith(prefix) and 0 <= c.new_tokens <= 5
            assert c.finished or c.new_tokens == 5
            assert len(c.text) - len(prefix) <= c.new_tokens


def test_guided_decoding_follows_each_users_reward(tiny):
    users = {"high": [0.0, 1.0], "low": [0.0, -1.0]}
    prompts = ["tell me something", "another question"]
    config = GenerationConfig(max_new_tokens=12, temperature=1.0, seed=0)
    guided = guided_decoding(tiny, IdentityRewards(), users, prompts, n=4, block_tokens=4, config=config)
    assert len(guided.texts) == 2 and all(len(t) == 2 for t in guided.texts)
    assert guided.steps <= 3
    assert np.all(guided.tokens <= 4 * 12) and guided.tokens_generated > 0
    mean_code = lambda texts: MeanCodeFeaturizer().transform(None, texts)[:, 1]
    assert np.all(mean_code(guided.texts[0]) > mean_code(guided.texts[1]))
    sampled = tiny.generate(prompts, n=4, config=config)
    plain = np.array([mean_code(c) for c in sampled])
    assert mean_code(guided.texts[0]).mean() > plain.mean() > mean_code(guided.texts[1]).mean()


def test_best_of_n_on_a_local_model_with_styles(tiny):
    styles = [None, "Be brief."]
    picks = personalized_best_of_n(tiny, IdentityRewards(), {"a": [1.0, 0.0], "b": [-1.0, 0.0]}, ["q"], n=4,
                                   config=GenerationConfig(max_new_tokens=8, seed=2), style_instructions=styles)
    assert picks.candidates.styles[0] == [None, "Be brief.", None, "Be brief."]
    assert picks.candidates.tokens_generated > 0
    lengths = [len(c) for c in picks.candidates.candidates[0]]
    assert len(picks.answers("a")[0]) == max(lengths) and len(picks.answers("b")[0]) == min(lengths)


def test_answers_say_whether_max_new_tokens_cut_them(server, tiny):
    gen = OpenAIGenerator(server.url, "m")
    answers = gen.generate(["a question"], n=4, config=GenerationConfig(max_new_tokens=8, seed=0))[0]
    assert [a.truncated for a in answers] == [len(a.split()) > 8 for a in answers]
    assert any(a.truncated for a in answers) and not all(a.truncated for a in answers)
    short = tiny.generate(["q"], 2, GenerationConfig(max_new_tokens=2, temperature=1.0, seed=1))[0]
    assert all(a.truncated for a in short) and isinstance(short[0], str)
