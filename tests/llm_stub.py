"""A scripted OpenAI-compatible chat server for tests of the generative answerer.

No usable LLM runs on the test machines' CPUs, so tests talk to this server over real HTTP,
through the real clients (`openai`, `langchain_openai.ChatOpenAI(base_url=...)`). A test sets
`ScriptedLLM.script`, a function from the parsed request to a `Reply`, and reads back every
request the client sent.

The server speaks as much of the protocol as those clients parse: `POST /v1/chat/completions`,
plain or `"stream": true` (server-sent `chat.completion.chunk` events ending with
`data: [DONE]`, usage in a final chunk without choices when `stream_options.include_usage`), and
`GET /v1/models`. Any other body field (`response_format`, `max_tokens`, `temperature`, ...) is
accepted and recorded, never checked: asserting on `ChatRequest.body` is the test's business.
The real server `make llm-smoke` runs (llama-cpp-python's) differs in two ways a stub cannot
show: `response_format` of type `json_schema` gets a 500 there (`json_object` with a `schema`
works), and it ignores `max_completion_tokens` (send `max_tokens`).

What the clients raise per failure mode, measured with openai 3.54 and langchain-openai 1.7 and
pinned by tests/test_llm_stub.py. ChatOpenAI raises subclasses of the openai client's exceptions
(`langchain_openai.chat_models.base.OpenAIAPIError` is an `openai.InternalServerError`), so one
translation serves both:

- status 500 (`server_error`): `openai.InternalServerError` (an `openai.APIStatusError`,
  `.status_code` 500), after `max_retries` retries (default 2: tests pass `max_retries=0`).
- a client `timeout` shorter than the reply (`slow`): `openai.APITimeoutError` (an
  `openai.APIConnectionError`), plain or streaming.
- a stream dropped before `[DONE]` (`cut_after_chunks`): `openai.APIConnectionError` while
  iterating, after the chunks that did arrive. It wraps `httpx2.RemoteProtocolError`: openai 3
  runs on `httpx2`, not `httpx`, so an `except httpx.HTTPError` would miss its transport errors.
- nothing listening: `openai.APIConnectionError`.
- a 200 body that is not JSON (`garbage`), plain: `json.JSONDecodeError`, a `ValueError` and
  *not* an `openai.OpenAIError`. Streaming, the openai client finds no SSE event in it and
  ends quietly with no chunk at all; ChatOpenAI's `.stream` raises
  `ValueError("No generation chunks were returned")`.

So an answerer catches `openai.OpenAIError` and `ValueError` around the call and the iteration,
and treats a stream that ends without a `finish_reason` as failed, to give its fallback or a
clean 503.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import uvicorn

DONT_KNOW = "I don't know."
NOT_IN_PASSAGES = "The passages do not answer this question."
MODEL_ID = "stub"

# Attribute values are quoted, so a `>` inside a title does not end the tag.
_PASSAGE = re.compile(r'<passage\s+n="(\d+)"(?:"[^"]*"|[^">])*>\n?(.*?)\n?</passage>', re.DOTALL)
_QUESTION = re.compile(r"<question>(.*?)</question>", re.DOTALL)
_SENTENCE_END = re.compile(r"\.\s")
_MARKER = re.compile(r"\s*\[\d+\]")
_MARKER_CUT = re.compile(r"\s*\[\d*$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ChatRequest:
    """What the client sent to /v1/chat/completions, parsed."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    body: dict[str, Any]
    """The whole JSON body, with every field the client set."""

    def user_text(self) -> str:
        """The text of the last user message (content parts joined)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""

    def passages(self) -> dict[int, str]:
        """The numbered `<passage n="...">` blocks of the last user message, text as written
        there (no entity unescaping), without the newlines right inside the tags."""
        return {int(n): text for n, text in _PASSAGE.findall(self.user_text())}

    def question(self) -> str | None:
        match = _QUESTION.search(self.user_text())
        return match.group(1).strip() if match else None


@dataclass(frozen=True)
class Reply:
    """What the server answers to one request."""

    text: str = ""
    """The assistant content."""
    status: int = 200
    """Non-200: an OpenAI-style error JSON body with this status instead of an answer."""
    raw_body: bytes | None = None
    """Sent as is with status 200 and content-type application/json (malformed JSON, garbage)."""
    delay_s: float = 0.0
    """Wait before answering (to trigger client timeouts)."""
    cut_after_chunks: int | None = None
    """Streaming only: drop the connection after this many content chunks, without [DONE]."""
    chunk_chars: int = 12
    """Streaming: the content is sent in pieces of this many characters."""
    chunk_delay_s: float = 0.0
    """Streaming: wait before each content chunk, so a client can leave mid-stream."""
    usage: tuple[int, int] = (0, 0)
    """Prompt and completion tokens to report; (0, 0) means estimate (4 characters a token)."""
    finish_reason: str = "stop"
    """The choice's finish_reason: "length" plays a reply cut short by `max_tokens`."""


Script = Callable[[ChatRequest], Reply]


def dont_know(request: ChatRequest) -> Reply:
    """The default script."""
    return Reply(text=DONT_KNOW)


def first_sentence(text: str) -> str:
    """Up to and including the first full stop followed by white space, else the whole text;
    leading lines with no full stop (a chunk opens with its heading: "Summary") are skipped."""
    lines = text.strip().splitlines()
    # A heading is no sentence, and Chancery splits sentences at line breaks too, so quoting
    # one along with the sentence after it would make a sentence without a marker.
    while len(lines) > 1 and not _SENTENCE_END.search(lines[0] + " "):
        lines.pop(0)
    text = "\n".join(lines)
    match = _SENTENCE_END.search(text)
    return text[: match.start() + 1] if match else text


def good_answer(request: ChatRequest) -> Reply:
    """Passage 1's first sentence verbatim with " [1]", then passage 2's with " [2]" if any."""
    passages = request.passages()
    parts = [f"{first_sentence(passages[n])} [{n}]" for n in (1, 2) if n in passages]
    return Reply(text=" ".join(parts) if parts else NOT_IN_PASSAGES)


def fixed(text: str, **reply_fields: Any) -> Script:
    """Always the same reply."""
    reply = Reply(text=text, **reply_fields)
    return lambda request: reply


def not_in_passages(request: ChatRequest) -> Reply:
    return Reply(text=NOT_IN_PASSAGES)


def server_error(request: ChatRequest) -> Reply:
    return Reply(status=500)


def garbage(request: ChatRequest) -> Reply:
    return Reply(raw_body=b"{not json")


def slow(delay_s: float, then: Script = good_answer) -> Script:
    """`then`'s reply, sent after `delay_s`."""
    return lambda request: replace(then(request), delay_s=delay_s)


def cut_mid_sentence(request: ChatRequest) -> Reply:
    """`good_answer` broken off halfway: streaming, the connection drops after about half the
    chunks; otherwise the first half of the text, without markers."""
    reply = good_answer(request)
    if request.stream:
        chunks = math.ceil(len(reply.text) / reply.chunk_chars)
        return replace(reply, cut_after_chunks=max(1, chunks // 2))
    half = _MARKER.sub("", reply.text[: len(reply.text) // 2])
    return replace(reply, text=_MARKER_CUT.sub("", half))


class ScriptedLLM:
    """OpenAI-compatible /v1/chat/completions and /v1/models, served by uvicorn on a free
    loopback port in a background thread; `with ScriptedLLM() as llm:` starts and stops it."""

    def __init__(self, script: Script = dont_know, port: int = 0) -> None:
        self.script: Script = script
        self.port = port
        """0: a free port, chosen at start()."""
        self.requests: list[ChatRequest] = []
        self.script_errors: list[BaseException] = []
        """Exceptions the script raised (each answered with a 500)."""
        self.base_url = ""
        self._closed_early = 0
        # Requests that arrived before a reset() must not count in the next test's figures.
        self._generation = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def closed_early(self) -> int:
        """How many streams the client left while the script still had content to send."""
        with self._lock:
            return self._closed_early

    def reset(self) -> None:
        """Back to the default script, with no requests, errors or early closes recorded."""
        with self._lock:
            self._generation += 1
            self.script = dont_know
            self.requests.clear()
            self.script_errors.clear()
            self._closed_early = 0

    def start(self) -> None:
        # A socket bound here, not a port number picked and then bound, so no race for the port.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            interface="asgi3",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scripted LLM server did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            # A stream a client never closed keeps the graceful shutdown waiting.
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ScriptedLLM:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # The ASGI application. Raw ASGI rather than Starlette, because a stream has to notice the
    # client leaving: uvicorn silently drops what is sent after a disconnect, so only the
    # http.disconnect message tells, and this app listens for it itself.

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/")
        if path == "/v1/models" and method == "GET":
            models = {
                "object": "list",
                "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "tests"}],
            }
            await _send_json(send, 200, models)
        elif path == "/v1/chat/completions" and method == "POST":
            await self._chat(receive, send)
        elif path in ("/v1/models", "/v1/chat/completions"):
            await _send_error(send, 405, f"{method} is not allowed on {path}")
        else:
            await _send_error(send, 404, f"no route {path}")

    async def _chat(self, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        try:
            body = json.loads(raw)
            request = ChatRequest(
                model=str(body["model"]),
                messages=list(body["messages"]),
                stream=bool(body.get("stream", False)),
                body=body,
            )
        except (ValueError, KeyError, TypeError) as exc:
            await _send_error(send, 400, f"not a chat completion request: {exc!r}")
            return
        with self._lock:
            generation = self._generation
            self.requests.append(request)
            script = self.script
        try:
            reply = script(request)
        except Exception as exc:
            with self._lock:
                self.script_errors.append(exc)
            await _send_error(send, 500, f"the script raised {exc!r}")
            return

        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        try:
            if reply.delay_s and await _wait(disconnected, reply.delay_s):
                if request.stream and reply.status == 200 and reply.raw_body is None:
                    self._count_closed_early(generation)
                return
            if reply.raw_body is not None:
                await _send_bytes(send, 200, reply.raw_body, b"application/json")
            elif reply.status != 200:
                await _send_error(send, reply.status, f"scripted error {reply.status}")
            elif request.stream:
                if not await self._stream(request, reply, send, disconnected):
                    self._count_closed_early(generation)
            else:
                await _send_json(send, 200, self._completion(request, reply))
        finally:
            watcher.cancel()

    async def _stream(
        self, request: ChatRequest, reply: Reply, send: Send, disconnected: asyncio.Event
    ) -> bool:
        """Send the reply as SSE chunks; False if the client left before the last one."""
        completion_id = f"chatcmpl-stub-{next(self._ids)}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            event = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                event["usage"] = None
            return _sse(event)

        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        size = max(1, reply.chunk_chars)
        pieces = [reply.text[i : i + size] for i in range(0, len(reply.text), size)]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        await _send_part(send, chunk({"role": "assistant", "content": ""}, None))
        for sent, piece in enumerate(pieces):
            if reply.cut_after_chunks is not None and sent >= reply.cut_after_chunks:
                # Returning with the response incomplete makes uvicorn close the connection
                # (and log an error saying so).
                return True
            if reply.chunk_delay_s and await _wait(disconnected, reply.chunk_delay_s):
                return False
            if disconnected.is_set():
                return False
            await _send_part(send, chunk({"content": piece}, None))
        if reply.cut_after_chunks is not None:
            return True
        await _send_part(send, chunk({}, reply.finish_reason))
        if include_usage:
            await _send_part(
                send,
                _sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": request.model,
                        "system_fingerprint": None,
                        "choices": [],
                        "usage": _usage(request, reply),
                    }
                ),
            )
        await _send_part(send, b"data: [DONE]\n\n")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    def _completion(self, request: ChatRequest, reply: Reply) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-stub-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": _usage(request, reply),
        }

    def _count_closed_early(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._closed_early += 1


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _usage(request: ChatRequest, reply: Reply) -> dict[str, int]:
    prompt, completion = reply.usage
    if (prompt, completion) == (0, 0):
        prompt = sum(_tokens(_content_text(m.get("content"))) for m in request.messages)
        completion = _tokens(reply.text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    # The body has been read, so the next message uvicorn delivers is the disconnect.
    while (await receive())["type"] != "http.disconnect":
        pass
    disconnected.set()


async def _wait(disconnected: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less if the client leaves; True if it left."""
    try:
        await asyncio.wait_for(disconnected.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def _send_part(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _send_bytes(send: Send, status: int, data: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    await _send_bytes(send, status, json.dumps(payload).encode(), b"application/json")


async def _send_error(send: Send, status: int, message: str) -> None:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    error = {"message": message, "type": kind, "param": None, "code": None}
    await _send_json(send, status, {"error": error})
