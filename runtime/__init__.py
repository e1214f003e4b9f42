"""medgym.runtime: Gymnasium environments over a compiled build, the tool executor, patient simulator,
reward engine, agents and the evaluation runner. It reads build directories and never imports the compiler."""
from medgym.runtime.build import Build, BuildError
from medgym.runtime.env import MedEnv, make_env

__all__ = ["Build", "BuildError", "MedEnv", "make_env"]
