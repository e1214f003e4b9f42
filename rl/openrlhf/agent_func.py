"""The file OpenRLHF loads by path: ``--train.agent_func_path .../medgym/rl/openrlhf/agent_func.py``.

OpenRLHF's vLLM engine actors execute this file with ``importlib.util.spec_from_file_location`` and build
``AgentExecutor()`` once per engine. The file is executed outside any package and is not registered in
``sys.modules``, so the code lives in the importable ``medgym.rl.openrlhf.agent`` (dataclasses and pickling need
a real module); this file only names the class.
"""
from medgym.rl.openrlhf.agent import AgentExecutor

__all__ = ["AgentExecutor"]
