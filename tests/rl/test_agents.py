"""Model-backed agents: `hf:PATH` on a local model and `openai:URL` against a real HTTP server on localhost.

The server (tests/rl/chat_server.py) generates with a tiny transformers model taught to submit an answer, so
the whole path is real: HTTP, the chat template, generation, the server's tool-call parsing (or none), the
agent's message bookkeeping, and the env's parser and reward.
"""
from __future__ import annotations

import pytest
from chat_server import ChatServer

from medgym.agents import make_agent
from medgym.runtime.agents import AGENTS, UnknownAgent
from medgym.runtime.env import make_env
from medgym.runtime.evaluate import evaluate, run_episode


@pytest.fixture(scope="module")
def served(submit_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(submit_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(submit_model_dir)
    servers = {"parsed": ChatServer(model, tokenizer), "text": ChatServer(model, tokenizer, parse_tools=False)}
    yield servers
    for server in servers.values():
        server.close()


def _task(mini_build) -> str:
    from medgym.runtime.build import Build

    return Build.open(mini_build).domain("clinic").tasks("train")[0].task_id


def test_openai_agent_plays_an_episode_through_a_real_endpoint(served, mini_build):
    server = served["parsed"]
    env = make_env(mini_build, "clinic")
    agent = make_agent(server.url.replace("http", "openai:http", 1), model="tiny")
    record = run_episode(env, agent, _task(mini_build))
    # the server parsed the model's <tool_call> into tool_calls; the env ran the submission from them
    assert record["submitted"] and record["turns"] == 1 and record["invalid_calls"] == 0
    assert record["answer"] == {"curb65": 1, "disposition": "home", "reasoning": ""} or \
        {k: record["answer"][k] for k in ("curb65", "disposition")} == {"curb65": 1, "disposition": "home"}
    request = server.requests[-1]
    assert request["model"] == "tiny"
    assert {t["function"]["name"] for t in request["tools"]} == set(env.domain.tools)
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert agent.messages[-1]["tool_calls"][0]["function"]["name"] == "submit_answer"
    assert set(record["components"]) >= {"accuracy", "process", "safety", "format", "coherence"}


def test_openai_agent_without_a_server_tool_parser_lets_the_env_parse_the_text(served, mini_build, submit_call):
    server = served["text"]
    env = make_env(mini_build, "clinic")
    agent = make_agent("openai:" + server.url)  # no --model: the agent asks /models
    record = run_episode(env, agent, _task(mini_build))
    assert agent.model == "tiny"
    assert agent.messages[-1]["content"] == submit_call and "tool_calls" not in agent.messages[-1]
    assert record["submitted"] and record["invalid_calls"] == 0


def test_openai_agent_sends_tool_results_back_over_several_turns(served, mini_build):
    """A turn the env cannot run (the model's call is for another patient) gets its error back as a tool message."""
    server = served["parsed"]
    env = make_env(mini_build, "clinic", max_turns=2)
    agent = make_agent("openai:" + server.url, model="tiny")
    observation, info = env.reset(options={"task_id": _task(mini_build)})
    agent.start(env, observation, info)
    first = agent.act(observation, info)
    call_id = first["tool_calls"][0]["id"]
    agent.messages[-1]["tool_calls"][0]["function"]["arguments"] = '{"curb65": 9}'  # invalid: out of range
    observation, reward, terminated, truncated, info = env.step(agent.messages[-1])
    assert not terminated and info["tool_results"][0]["ok"] is False
    agent.act(observation, info)
    sent = server.requests[-1]["messages"]
    assert sent[3] == {"role": "tool", "tool_call_id": call_id, "content": f"error: {info['tool_results'][0]['error']}"}


def test_eval_runs_the_openai_agent_over_tasks(served, mini_build):
    summary = evaluate(mini_build, "openai:" + served["parsed"].url, split="test", limit=2,
                       agent_options={"model": "tiny"})
    assert summary["episodes"] == 2 and summary["submitted"] == 1.0 and summary["invalid_calls"] == 0


def test_openai_agent_reports_an_unreachable_endpoint(mini_build):
    from medgym.rl.agents import EndpointError

    agent = make_agent("openai:http://127.0.0.1:9/v1", model="x", timeout=2)
    env = make_env(mini_build, "clinic")
    with pytest.raises(EndpointError, match=r"127\.0\.0\.1:9/v1/chat/completions"):
        run_episode(env, agent, _task(mini_build))


def test_hf_agent_plays_with_a_local_model(submit_model_dir, mini_build, submit_call):
    from transformers import AutoTokenizer

    # The tiny tokenizer is trained on the shipped specs, so the answer's length in tokens moves with them.
    needed = len(AutoTokenizer.from_pretrained(submit_model_dir)(submit_call + "<|im_end|>")["input_ids"])
    env = make_env(mini_build, "clinic")
    record = run_episode(env, make_agent(f"hf:{submit_model_dir}", max_new_tokens=needed + 8), _task(mini_build))
    assert record["submitted"] and record["turns"] == 1 and record["invalid_calls"] == 0
    assert record["transcript"][2] == {"role": "assistant", "content": submit_call}


def test_model_agents_register_lazily_and_need_a_target():
    with pytest.raises(UnknownAgent, match="needs a target: openai:URL"):
        make_agent("openai")
    assert AGENTS["hf"].__name__ == "HFAgent" and AGENTS["openai"].__name__ == "OpenAIAgent"
    with pytest.raises(ValueError, match="http"):
        make_agent("openai:localhost:8000")
