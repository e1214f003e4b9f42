"""medgym.rl.openrlhf: train compiled medgym environments with GRPO and TT-OPD on OpenRLHF 0.11.x (Ray + vLLM).

OpenRLHF has a multi-turn agent interface but no teacher, no on-policy distillation and no turn-level KL. This
package extends it thinly; the math is ``medgym.rl``'s, unchanged.

``dataset``   the prompt JSONL (``medgym export openrlhf``): the opening as chat messages, a JSON label per task.
``agent``     ``AgentExecutor`` (named by ``agent_func.py``, the file for ``--train.agent_func_path``) runs one
              compiled env per sample inside each vLLM engine, renders the opening with the chat template and the
              domain's tools, returns tool results as environment feedback, and at the end the reward (composite
              or accuracy, cosine shaped when configured) with every reward component and the episode counts in
              the logs.
``ttopd``     TT-OPD inside the Ray workers: an EMA teacher in each policy actor, teacher log-probs on the
              student's own sequences with the outcome-conditioned hint inserted and realigned, carried in
              ``Experience.base_action_log_probs``, ``lambda * KL`` over the kept turns' assistant tokens added to
              the actor loss, and the EMA schedule applied after each step's update, before the weights go to vLLM.
``patches``   installs ``ttopd``'s classes into OpenRLHF in every process of a run (the bootstrap
              ``sitecustomize`` on ``PYTHONPATH`` calls it; it does nothing unless ``MEDGYM_OPENRLHF_CONFIG`` is set).
``launch``    a training config in, a ``python -m openrlhf.cli.train_ppo_ray`` command and Ray runtime env out.

``dataset``, ``launch`` and ``patches`` import without OpenRLHF (``patches`` needs only the standard library).
"""

CONFIG_ENV = "MEDGYM_OPENRLHF_CONFIG"
"""Names the run's resolved training config (JSON) for the Ray workers; set by the launcher's runtime env."""

__all__ = ["CONFIG_ENV"]
