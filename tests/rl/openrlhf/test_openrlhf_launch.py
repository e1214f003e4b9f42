"""The launcher: its command goes through OpenRLHF 0.11.2's own ``train_ppo_ray`` argument parser and checks,
the dry run starts nothing, bad settings are refused early, and the patches reach the driver and Ray workers."""
from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REASON = "openrlhf is not importable: pip install --no-deps openrlhf==0.11.2 && pip install -e '.[openrlhf-cpu]'"
pytest.importorskip("torch")
pytest.importorskip("openrlhf.cli.train_ppo_ray", reason=REASON)

from medgym.rl.openrlhf import launch as launcher  # noqa: E402
from medgym.rl.openrlhf.launch import LaunchError, agent_path, command, launch, runtime_env  # noqa: E402

HERE = Path(__file__).resolve().parent


class _Parsed(Exception):
    pass


def openrlhf_parse(argv: list[str], monkeypatch) -> object:
    """Run ``python -m openrlhf.cli.train_ppo_ray ARGV`` in-process: OpenRLHF's own parser and argument checks,
    stopped at the first thing ``train()`` does after them (building the DeepSpeed strategy)."""
    import openrlhf.utils
    import ray

    def stop(args):
        raise _Parsed(args)

    monkeypatch.setattr(openrlhf.utils, "get_strategy", stop)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)  # never start Ray
    monkeypatch.setattr(sys, "argv", ["train_ppo_ray", *argv])
    with pytest.raises(_Parsed) as parsed, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module was imported before, as a module
        runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
    return parsed.value.args[0]


def test_command_is_accepted_by_openrlhf_parser(train_config, tmp_path, monkeypatch):
    config = train_config()
    cmd = command(config, tmp_path)
    assert cmd[1:3] == ["-m", "openrlhf.cli.train_ppo_ray"]
    args = openrlhf_parse(cmd[3:], monkeypatch)
    assert args.actor.model_name_or_path == "/models/Qwen2.5-7B-Instruct"
    assert args.train.agent_func_path == str(agent_path()) and Path(args.train.agent_func_path).is_file()
    assert args.reward.remote_url == ["agent"]  # OpenRLHF's agent mode: the env gives the rewards
    assert args.algo.advantage.estimator == "group_norm" and args.critic.model_name_or_path is None
    assert args.algo.kl.init_coef == 0 and not args.algo.kl.use_loss  # no reference model; TT-OPD's KL is ours
    assert args.rollout.n_samples_per_prompt == 3 and args.rollout.batch_size == 8 and args.train.batch_size == 24
    assert args.data.max_len == 16384 and args.data.max_samples == 800 and args.data.apply_chat_template
    assert (args.data.input_key, args.data.label_key) == ("input", "label")
    assert args.train.colocate_all and args.vllm.enable_sleep and args.ds.enable_sleep
    assert args.vllm.num_engines == 8 and args.actor.num_gpus_per_node == 8 and args.ds.zero_stage == 2
    assert args.actor.adam.lr == 5e-7 and args.actor.eps_clip_low_high == (0.2, 0.2)
    assert args.ckpt.load_enable and args.ckpt.path == str(tmp_path / "ckpt")
    assert args.eval.dataset == str(tmp_path / "eval_prompts.jsonl") and args.eval.steps == 10


@pytest.mark.parametrize("sections", [
    {"algorithm": {"name": "grpo", "advantage": "dr_grpo"}, "run": {"eval_every": 0, "tensorboard": False},
     "openrlhf": {"gpus_per_node": 4, "vllm_engines": 2, "vllm_tensor_parallel": 2, "colocate": False}},
    {"rollout": {"group_size": 4, "prompts_per_step": 2}, "optim": {"steps": 3, "warmup_steps": 1},
     "model": {"dtype": "float16"},
     "openrlhf": {"gpus_per_node": 1, "vllm_engines": 1, "extra_args": ["--vllm.enforce_eager"]}},
], ids=["grpo-4gpu-separate", "one-gpu-colocated"])
def test_other_shapes_are_accepted_too(train_config, sections, tmp_path, monkeypatch):
    config = train_config(**sections)
    args = openrlhf_parse(command(config, tmp_path)[3:], monkeypatch)
    o = config.openrlhf
    assert args.actor.num_gpus_per_node == o.gpus_per_node and args.train.colocate_all == o.colocate
    assert args.vllm.num_engines * args.vllm.tensor_parallel_size >= 1


def test_openrlhf_parser_is_strict(monkeypatch):
    """The parse above is the real one: an old flat flag is refused."""
    with pytest.raises(SystemExit):
        openrlhf_parse(["--pretrain", "/models/x"], monkeypatch)


@pytest.mark.parametrize("sections,message", [
    ({"openrlhf": {"pretrain": None}}, "openrlhf.pretrain"),
    ({"algorithm": {"kl_estimator": "full"}}, "kl_estimator"),
    ({"openrlhf": {"zero_stage": 3}}, "ZeRO-3"),
    ({"rollout": {"group_size": 1}}, "group_size"),
    ({"openrlhf": {"vllm_engines": 4}}, "cover the policy's GPUs"),
    ({"rollout": {"prompts_per_step": 2}}, "at least one micro-batch"),
    ({"rollout": {"prompts_per_step": 3}}, "split evenly"),
    ({"openrlhf": {"extra_args": ["--train.async_enable"]}}, "async"),
])
def test_settings_that_cannot_run_are_refused(train_config, sections, message, tmp_path):
    with pytest.raises(LaunchError, match=message):
        command(train_config(**sections), tmp_path)


def test_zero3_is_fine_for_plain_grpo(train_config, tmp_path):
    assert "--ds.zero_stage" in command(train_config(algorithm={"name": "grpo"}, openrlhf={"zero_stage": 3}), tmp_path)


def test_dry_run_prints_the_plan_and_starts_nothing(train_config, mini_build, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    config = train_config(data={"build": str(mini_build), "eval_tasks": 2}, openrlhf={"pretrain": str(model)})
    out = tmp_path / "run"
    assert launch(config, out, dry_run=True) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["command"] == command(config, out) and not out.exists()
    env = plan["runtime_env"]["env_vars"]
    assert env["MEDGYM_OPENRLHF_CONFIG"] == str(out / "medgym-openrlhf.json")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(launcher.bootstrap_dir())
    assert (launcher.bootstrap_dir() / "sitecustomize.py").is_file()
    assert plan["shell"].startswith(f"cd {out} && PYTHONPATH=") and "openrlhf.cli.train_ppo_ray" in plan["shell"]
    assert plan["prompt_rows"] == 800 and plan["eval_rows"] == 2

    remote = train_config(data={"build": str(mini_build)}, openrlhf={"ray_address": "http://head:8265"})
    submit = launcher.plan(remote, out)
    assert submit.command[:5] == ["ray", "job", "submit", "--address", "http://head:8265"]
    assert json.loads(submit.command[6]) == runtime_env(remote, out)
    assert runtime_env(remote, out)["env_vars"]["PYTHONPATH"].endswith(":${PYTHONPATH}")


def test_run_inputs_and_the_settings_the_workers_read(train_config, mini_build, tmp_path, monkeypatch):
    ttopd = pytest.importorskip("medgym.rl.openrlhf.ttopd", reason=REASON)
    from medgym.rl.openrlhf.dataset import TaskLabel

    config = train_config(data={"build": str(mini_build), "eval_tasks": 1}, optim={"steps": 5},
                          algorithm={"kl_coef": 2.0, "kl_estimator": "k1", "kl_aggregation": "sequence_mean",
                                     "ema_every": 4, "hard_copy_every": 12, "max_turn_index": 3})
    run = launcher.plan(config, tmp_path / "run")
    launcher.write_inputs(config, run)
    rows = run.files["prompts"].read_text().splitlines()
    assert len(rows) == 5 * 8 == run.prompt_rows
    assert TaskLabel.parse(json.loads(rows[0])["label"]).build == str(mini_build.resolve())
    assert len(run.files["eval_prompts"].read_text().splitlines()) == 1
    monkeypatch.setenv("MEDGYM_OPENRLHF_CONFIG", runtime_env(config, run.out)["env_vars"]["MEDGYM_OPENRLHF_CONFIG"])
    settings = ttopd.TTOPDSettings.from_env()
    assert settings == ttopd.TTOPDSettings(kl_coef=2.0, estimator="k1", aggregation="seq-mean", ema_every=4,
                                           copy_every=12, context_limit=16384, max_turns=3)


def test_launch_needs_the_gpu_stack(train_config, mini_build, tmp_path):
    """Stand-ins on sys.path are not an install: a real launch on this machine stops before starting anything."""
    with pytest.raises(LaunchError, match="requirements-openrlhf-gpu.txt"):
        launch(train_config(data={"build": str(mini_build)}), tmp_path / "run", dry_run=False)
    assert not (tmp_path / "run").exists()


def test_patches_reach_the_driver_and_ray_workers(train_config, tmp_path):
    """A fresh interpreter with the launcher's environment runs the launcher's command the way
    ``python -m openrlhf.cli.train_ppo_ray`` does, up to ``train()``: there ``PolicyModelActor`` and ``PPOTrainer``
    are medgym's; a Ray worker process has the same patches and hosts the policy actor class."""
    config = train_config()
    run = tmp_path / "run"
    run.mkdir()
    (run / "medgym-openrlhf.json").write_text(json.dumps(config.model_dump(mode="json")))
    env = dict(os.environ)
    env.update(runtime_env(config, run)["env_vars"])
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(HERE / "stubs")])
    env["PROBE_ARGV"] = json.dumps(command(config, run)[3:])
    probe = r"""
import json, os, runpy, sys
import openrlhf.utils, ray

class Stop(Exception):
    pass

def stop(args):  # the first call train() makes after OpenRLHF's checks: look at what train() would build
    main = sys._getframe(1).f_globals
    import openrlhf.trainer.ppo_trainer as trainer
    raise Stop(main["PolicyModelActor"], trainer.PPOTrainer, args.train.agent_func_path)

openrlhf.utils.get_strategy = stop
initialized, ray.is_initialized = ray.is_initialized, lambda: True
sys.argv = ["train_ppo_ray", *json.loads(os.environ["PROBE_ARGV"])]
try:
    runpy.run_module("openrlhf.cli.train_ppo_ray", run_name="__main__")
except Stop as seen:
    actor_class, trainer_class, agent = seen.args
import medgym.rl.openrlhf.ttopd as ttopd
driver = [actor_class is ttopd.TTOPDPolicyModelActor, trainer_class is ttopd.TTOPDPPOTrainer]
ray.is_initialized = initialized
ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")

def inside(policy_actor):  # runs in the policy actor's worker process
    import openrlhf.trainer.ray.ppo_actor as actor
    import medgym.rl.openrlhf.ttopd as ttopd
    return os.getpid(), actor.PolicyModelActor is ttopd.TTOPDPolicyModelActor

policy = ttopd.TTOPDPolicyModelActor.options(num_gpus=0).remote(1, 0, "127.0.0.1", 29555)
address = ray.get(policy.get_master_addr_port.remote())
pid, patched = ray.get(policy.__ray_call__.remote(inside))
ray.shutdown()
print(json.dumps({"driver": driver, "worker": [pid != os.getpid(), patched], "actor": address, "agent": agent}))
"""
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=run, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"driver": [True, True], "worker": [True, True], "actor": ["127.0.0.1", 29555],
                      "agent": str(agent_path())}

    hooked = "import sys; print(any(getattr(f, 'medgym_openrlhf_patches', False) for f in sys.meta_path))"
    on = subprocess.run([sys.executable, "-c", hooked], env=env, capture_output=True, text=True, timeout=60)
    env.pop("MEDGYM_OPENRLHF_CONFIG")  # without a run's config the bootstrap changes nothing
    off = subprocess.run([sys.executable, "-c", hooked], env=env, capture_output=True, text=True, timeout=60)
    assert (on.stdout.strip(), off.stdout.strip(), off.stderr) == ("True", "False", "")


def test_runbook_config_and_command_are_what_the_launcher_runs(monkeypatch):
    """docs/openrlhf-runbook.md: its config validates, and its command is the launcher's, flag for flag."""
    import shlex

    import yaml

    from medgym.rl.config import TrainConfig

    text = (HERE.parents[2] / "docs" / "openrlhf-runbook.md").read_text(encoding="utf-8")
    config_block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = TrainConfig.model_validate(yaml.safe_load(config_block))
    command_block = text.split("```bash\npython -m openrlhf.cli.train_ppo_ray", 1)[1].split("```", 1)[0]
    documented = shlex.split(command_block.replace("\\\n", " "))
    ours = command(config, Path("/shared/runs/qwen7b-ttopd"))[3:]
    agent = ours.index("--train.agent_func_path") + 1
    assert ours[agent] == str(agent_path())
    ours[agent] = "/opt/medgym/rl/openrlhf/agent_func.py"
    assert documented == ours
    args = openrlhf_parse(ours, monkeypatch)
    assert args.rollout.n_samples_per_prompt == 3 and args.train.batch_size == 24


def test_dry_run_refuses_a_model_folder_this_node_lacks(train_config, mini_build, tmp_path, capsys):
    config = train_config(data={"build": str(mini_build)}, openrlhf={"pretrain": str(tmp_path / "absent")})
    with pytest.raises(LaunchError, match="not a Hugging Face model folder on this node"):
        launch(config, tmp_path / "run", dry_run=True)
    assert capsys.readouterr().out == "" and not (tmp_path / "run").exists()
    # submitted to a cluster, the folder lives on its nodes: the plan is printed
    remote = train_config(data={"build": str(mini_build)},
                          openrlhf={"pretrain": str(tmp_path / "absent"), "ray_address": "http://head:8265"})
    assert launch(remote, tmp_path / "run", dry_run=True) == 0


def test_eval_sampling_matches_the_local_evaluation(train_config, tmp_path):
    def eval_temperature(**rollout):
        flags = command(train_config(rollout=rollout, data={"eval_tasks": 2}, run={"eval_every": 5}), tmp_path)
        return float(flags[flags.index("--eval.temperature") + 1])

    assert eval_temperature(temperature=0.8) == 0.0  # greedy, as medgym's local eval
    assert eval_temperature(temperature=0.8, eval_temperature=0.6) == 0.6


def test_ablation_switches_reach_the_openrlhf_tt_opd_settings(train_config):
    ttopd = pytest.importorskip("medgym.rl.openrlhf.ttopd", reason=REASON)
    config = train_config(algorithm={"hints": False, "truncate_turns": False, "ema_every": None,
                                     "hard_copy_every": None, "kl_phase_out": 1.5, "kl_phase_out_steps": 4,
                                     "max_turn_index": 2})
    settings = ttopd.TTOPDSettings.from_config(config)
    assert not settings.hints and settings.context_limit is None and settings.max_turns is None
    schedule = settings.schedule()
    assert (schedule.ema_every, schedule.copy_every, schedule.phase_out_steps) == (None, None, 4)
    on = ttopd.TTOPDSettings.from_config(train_config(algorithm={"max_turn_index": 2}))
    assert on.hints and on.context_limit == 16384 and on.max_turns == 2
