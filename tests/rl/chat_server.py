"""A minimal OpenAI-compatible chat completions server on localhost, generating with a real transformers model.

Used by the endpoint-agent tests in place of `transformers serve` (which needs the serving extra): the agent
talks HTTP to it exactly as to vLLM. Like vLLM with ``--tool-call-parser hermes``, it renders the messages and
tools with the model's chat template, generates greedily, and (when ``parse_tools``) returns the
``<tool_call>`` blocks of the answer as structured ``tool_calls``; without it the markup stays in ``content``.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


class ChatServer:
    """Serve ``model`` under ``name`` at ``http://127.0.0.1:PORT/v1`` (port chosen by the OS) until ``close()``."""

    def __init__(self, model, tokenizer, name: str = "tiny", parse_tools: bool = True, delay: float = 0.0,
                 failures: int = 0):
        """``delay`` seconds of latency per completion (outside the generation lock, as a network adds it);
        the first ``failures`` completions answer HTTP 503, as an overloaded server does."""
        self.model, self.tokenizer, self.name, self.parse_tools = model, tokenizer, name, parse_tools
        self.delay, self.failures = delay, failures
        self.requests: list[dict] = []
        self._lock = threading.Lock()  # one generation at a time, as a single-GPU server would queue them
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client went away (a killed eval run)
                    pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.name, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except ValueError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                if request.get("model") != server.name:
                    self._send(404, {"error": {"message": f"model {request.get('model')!r} not served"}})
                    return
                with server._lock:
                    overloaded = server.failures > 0
                    server.failures -= overloaded
                if overloaded:
                    self._send(503, {"error": {"message": "overloaded, try again"}})
                    return
                time.sleep(server.delay)
                with server._lock:
                    server.requests.append(request)
                    self._send(200, server.complete(request))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def complete(self, request: dict) -> dict:
        import torch

        messages = [{"role": m["role"], "content": m.get("content") or ""} for m in request["messages"]]
        text = self.tokenizer.apply_chat_template(messages, tools=request.get("tools") or None, tokenize=False,
                                                  add_generation_prompt=True)
        ids = torch.tensor([self.tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=int(request.get("max_tokens") or 64),
                                      eos_token_id=self.tokenizer.eos_token_id,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        finish = "length"
        if self.tokenizer.eos_token_id in new:
            new, finish = new[: new.index(self.tokenizer.eos_token_id)], "stop"
        answer = self.tokenizer.decode(new, skip_special_tokens=False)
        message = {"role": "assistant", "content": answer}
        if self.parse_tools:
            calls = []
            for i, match in enumerate(_CALL.finditer(answer)):
                try:
                    call = json.loads(match.group(1))
                except ValueError:
                    continue  # left in the content, as vLLM's parser does
                calls.append({"id": f"call_{len(self.requests)}_{i}", "type": "function",
                              "function": {"name": call.get("name"),
                                           "arguments": json.dumps(call.get("arguments", {}))}})
            if calls:
                message = {"role": "assistant", "content": _CALL.sub("", answer).strip() or None,
                           "tool_calls": calls}
                finish = "tool_calls"
        return {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": self.name, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": ids.shape[1], "completion_tokens": len(new),
                          "total_tokens": ids.shape[1] + len(new)}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
