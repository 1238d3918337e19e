"""The LLM a ministry runs, reached through LangChain's OpenAI-compatible chat model.

Any server that speaks `/v1/chat/completions` will do: vLLM, llama.cpp's server, Ollama, a
hosted API. Every way it can fail (unreachable, too slow, an error status, a body that is not
a chat completion) becomes one `LlmError` that says what happened, so that the service answers
503 or falls back instead of a 500. The request is always streamed: one code path, and closing
the stream (a client that went away) closes the connection, which stops the server's work.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from service.errors import UnavailableError

if TYPE_CHECKING:
    from langchain_core.messages import AIMessageChunk

log = logging.getLogger("chancery")


class LlmError(UnavailableError):
    """The LLM did not answer usably; the message says why, in words."""

    def __init__(self, message: str, dropped: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.dropped = dropped
        """Why each sentence drafted before the failure was dropped."""


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int = 512
    temperature: float = 0.0
    json_output: bool = False
    """Ask for a JSON object (`response_format` json_object); the draft is still read as plain
    text when the reply is not that JSON."""


@dataclass
class TokenUsage:
    """The tokens the LLM reported for the requests of one answer, added up."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reported: bool = False
    """Whether any request's usage was reported (a server may send none)."""

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.reported = True


@dataclass(frozen=True)
class LlmOptions:
    """One request's overrides of `LlmConfig` (None keeps the configured value), and where to
    add the usage the server reports (it is then asked to report it)."""

    temperature: float | None = None
    max_tokens: int | None = None
    usage: TokenUsage | None = None

    def applied(self, config: LlmConfig) -> LlmConfig:
        return replace(
            config,
            temperature=config.temperature if self.temperature is None else self.temperature,
            max_tokens=config.max_tokens if self.max_tokens is None else self.max_tokens,
        )


@dataclass(frozen=True)
class Delta:
    """A piece of the model's reply; the last one says why the model stopped."""

    text: str
    finish_reason: str | None = None


class ChatModel(Protocol):
    def stream(self, system: str, user: str, options: LlmOptions | None = None) -> Iterator[Delta]:
        """The reply to `user` under `system`, piece by piece, with `options` for this request;
        raises `LlmError`."""
        ...


class LangChainChat:
    """`langchain_openai.ChatOpenAI` pointed at `config.base_url`."""

    def __init__(self, config: LlmConfig) -> None:
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        self.config = config
        extra: dict[str, object] = {"max_tokens": config.max_tokens}
        if config.json_output:
            # json_object, not json_schema: llama.cpp's server answers json_schema with a 500.
            extra["response_format"] = {"type": "json_object"}
        self._extra = extra
        self._model = ChatOpenAI(
            model=config.model,
            base_url=config.base_url,
            # Local servers need no key, but the client insists on one.
            api_key=SecretStr(config.api_key or "not-needed"),
            timeout=config.timeout_s,
            max_retries=0,
            temperature=config.temperature,
            # max_tokens in the body itself: langchain-openai would send it as
            # max_completion_tokens, which llama.cpp's server ignores.
            extra_body=extra,
            streaming=True,
        )

    def stream(self, system: str, user: str, options: LlmOptions | None = None) -> Iterator[Delta]:
        from langchain_core.messages import HumanMessage, SystemMessage

        messages = [SystemMessage(system), HumanMessage(user)]
        # A generator, though typed as an iterator: it must be closed to close the response.
        chunks = cast(
            "Generator[AIMessageChunk, None, None]",
            self._model.stream(messages, **self._overrides(options)),
        )
        usage = options.usage if options is not None else None
        received = False
        try:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except Exception as exc:
                    raise LlmError(self._explain(exc, received)) from exc
                received = True
                if usage is not None and chunk.usage_metadata:
                    reported = chunk.usage_metadata
                    usage.add(reported["input_tokens"], reported["output_tokens"])
                reason = chunk.response_metadata.get("finish_reason")
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text or reason:
                    yield Delta(text, reason if isinstance(reason, str) else None)
        finally:
            # Closes the HTTP response: the server stops generating for a client that left.
            chunks.close()

    def _overrides(self, options: LlmOptions | None) -> dict[str, Any]:
        """The request's parameters that differ from the model's: sent per call, so one client
        (and its connection pool) serves every request."""
        if options is None:
            return {}
        config = options.applied(self.config)
        overrides: dict[str, Any] = {}
        if config.temperature != self.config.temperature:
            overrides["temperature"] = config.temperature
        if config.max_tokens != self.config.max_tokens:
            overrides["extra_body"] = {**self._extra, "max_tokens": config.max_tokens}
        if options.usage is not None:
            overrides["stream_usage"] = True  # stream_options.include_usage: a last chunk
        return overrides

    def _explain(self, error: Exception, received: bool) -> str:
        """What went wrong, in words. The openai client wraps its transport's errors (of an
        httpx it vendors) in its own, so those are all that need telling apart; anything else
        (a JSON or a LangChain ValueError) means the reply was not a chat completion."""
        import openai

        where = f"the LLM at {self.config.base_url} (model {self.config.model})"
        if isinstance(error, openai.APITimeoutError):
            why = f"did not answer within {self.config.timeout_s:g} s"
        elif isinstance(error, openai.APIConnectionError):
            why = "broke off its reply (connection lost)" if received else "cannot be reached"
        elif isinstance(error, openai.APIStatusError):
            why = f"answered with HTTP status {error.status_code}"
        else:
            why = "sent a reply that is not a chat completion"
        log.warning("%s %s: %s: %s", where, why, type(error).__name__, error)
        return f"{where} {why}"
