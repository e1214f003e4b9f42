"""Stand-in for ``vllm.inputs.TokensPrompt`` (a typed dict in vLLM)."""


class TokensPrompt(dict):
    pass
