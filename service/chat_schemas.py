"""Request and response models of the OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`).

They follow OpenAI's chat-completions shapes, so that the official clients and the chat tools
built on them (Open WebUI, LibreChat) read them, plus Chancery's own fields, which those clients
keep as extra fields: `citations` on the message and the response, `chancery` on the response.

Unlike Chancery's own request models these are open: a chat tool sends parameters of its own
(`top_p`, `user`, `stop`, ...), and refusing them would make it unusable, so a field the model
does not name is ignored. A parameter Chancery cannot honour (tools, images, several choices,
log-probabilities, a response format other than text) is typed so that only its harmless values
validate, and is refused with a 400 that names it (`service.routers.chat_errors`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import AnswererName, CitationOut, CleanText

MAX_MESSAGES = 200
MAX_CONTENT_CHARS = 50_000
"""A message's text; earlier assistant turns carry answers and their source lists, far shorter.
The body limit of the route bounds the whole conversation."""
MAX_MODEL_CHARS = 100
DEFAULT_MODEL = "chancery"
"""The model that answers from the collection `default`; `chancery/NAME` answers from NAME."""

MAX_PARTS = 100
Text = Annotated[CleanText, Field(max_length=MAX_CONTENT_CHARS)]


class TextPart(BaseModel):
    """A part of a message's content; only text is read (no images, audio or files)."""

    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"] = Field(
        description="`system` and `developer` messages are accepted and ignored: the answer rests "
        "on the documents, and Chancery's own instructions say how it is written. Tool "
        "messages are refused (no tools are offered)."
    )
    content: Text | Annotated[list[TextPart], Field(max_length=MAX_PARTS)] | None = Field(
        default=None, description="Text, or parts of type `text`."
    )
    name: str | None = None


class StreamOptions(BaseModel):
    include_usage: bool = Field(
        default=False, description="Send a last chunk, with no choices, that carries `usage`."
    )


class TextFormat(BaseModel):
    type: Literal["text"]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(
        min_length=1,
        max_length=MAX_MODEL_CHARS,
        description="`chancery` answers from the collection `default`, `chancery/NAME` from the "
        "collection NAME (`GET /v1/models` lists them); any other is a 404.",
        examples=[DEFAULT_MODEL],
    )
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=MAX_MESSAGES,
        description="The conversation; the last message is the user's question (at most 2,000 "
        "characters), and earlier user turns inform the search for it.",
    )
    stream: bool = Field(
        default=False,
        strict=True,
        description="Answer as server-sent `chat.completion.chunk` events, one per verified "
        "sentence, ending with `data: [DONE]`.",
    )
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Passed to the LLM of generative answers."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Passed to the LLM of generative answers (at most half its context window).",
    )
    max_completion_tokens: int | None = Field(
        default=None, ge=1, description="The same as `max_tokens`, which it takes precedence over."
    )
    answerer: AnswererName | None = Field(
        default=None,
        description="Chancery: `extractive` or `generative` (400 when no LLM is configured). "
        "Default: the service's setting.",
    )
    sources: bool = Field(
        default=True,
        strict=True,
        description="Chancery: end the content with a `Sources:` list (or, when the documents "
        "do not answer, the closest passages), for clients that ignore `citations`.",
    )
    # What Chancery cannot do; only the values that ask for nothing validate.
    n: int | None = Field(default=None, ge=1, le=1, description="One choice only.")
    logprobs: Literal[False] | None = Field(default=None, description="Not offered.")
    top_logprobs: None = Field(default=None, description="Not offered.")
    tools: None = Field(default=None, description="Not offered: Chancery calls no tools.")
    tool_choice: Literal["none"] | None = None
    functions: None = Field(default=None, description="Not offered.")
    function_call: Literal["none"] | None = None
    response_format: TextFormat | None = Field(default=None, description="Text only.")


class ChatCitation(CitationOut):
    url: str = Field(
        description="The cited page on this server's web page, the quote highlighted: "
        "/documents/{doc_id}/pages/{page}?collection=...&quote=...&start=...&end=..."
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(
        description="The answer, each sentence followed by its markers [n], then (unless "
        "`sources` is false) a `Sources:` list; `answer_start`/`answer_end` index into it."
    )
    refusal: None = None
    citations: list[ChatCitation]


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChanceryDetails(BaseModel):
    """How the answer came to be, beyond what OpenAI's shape says."""

    question: str = Field(
        description="The question that was searched and answered: the last user message, or, "
        "in a conversation, that message made standalone from the earlier turns."
    )
    rewritten_by: Literal["none", "rules", "llm"] = Field(
        description="`none`: the last message as asked; `rules`: with the names and topic words "
        "of earlier user turns added; `llm`: rewritten by the LLM."
    )
    abstained: bool
    answerer: AnswererName
    fallback: str | None
    dropped: list[str]
    notes: list[str]
    collection: str
    index_version: str
    usage: Literal["llm", "estimate"] = Field(
        description="`llm`: `usage` is what the LLM reported; `estimate`: word pieces of the "
        "embedding model's tokenizer (question and passages read, answer written)."
    )


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = Field(description="The index version that answered.")
    choices: list[Choice]
    usage: Usage
    citations: list[ChatCitation] = Field(description="The message's citations, again.")
    chancery: ChanceryDetails


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    citations: list[ChatCitation] | None = Field(
        default=None,
        description="The citations of the sentence this chunk carries; on the last chunk, all "
        "of the answer's.",
    )


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: list[ChatCitation] | None = Field(
        default=None, description="On the last chunk with a choice: all the citations."
    )
    chancery: ChanceryDetails | None = Field(
        default=None, description="On the last chunk with a choice."
    )


class ModelOut(BaseModel):
    id: str = Field(examples=[DEFAULT_MODEL])
    object: Literal["model"] = "model"
    created: int = Field(description="Always 0: collections record no creation time.")
    owned_by: str = "chancery"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class ChatErrorBody(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None
    code: str | None


class ChatError(BaseModel):
    """OpenAI's error envelope, which its clients raise as `BadRequestError`,
    `NotFoundError`, ..."""

    error: ChatErrorBody
