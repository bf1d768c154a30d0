"""The tool-calling loop on the Anthropic Messages API, bounded and retried.

The loop is bounded four ways (model calls, tool calls, tokens, wall clock); on its last
model call the tools are withdrawn (tool_choice "none") so the model must answer. Transient
API failures (429, 5xx, overloaded, network) are retried with jittered exponential backoff up
to a cap; after that `ModelUnavailable` is raised and the caller falls back to the offline
planner. The system prompt and the tool definitions are marked for prompt caching.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from agent.errors import VigilError
from tools.base import Toolbox

if TYPE_CHECKING:  # the SDK is big (~50 MB, ~1 s): it loads with the first model client
    import anthropic

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class ModelUnavailable(VigilError):
    """The model API kept failing (or is not configured): use the offline planner."""


class ModelSettings(BaseSettings):
    """Model and limits, from the environment (VIGIL_MODEL, VIGIL_MAX_MODEL_CALLS, ...)."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    model: str = "claude-sonnet-5-5"
    max_model_calls: int = Field(6, ge=1)
    max_tool_calls: int = Field(24, ge=0)
    max_total_tokens: int = Field(120_000, ge=1000)
    wall_clock_s: float = Field(120.0, gt=0)
    max_output_tokens: int = Field(2048, ge=64)
    retry_attempts: int = Field(4, ge=1)
    retry_max_wait_s: float = Field(8.0, gt=0)
    request_timeout_s: float = Field(60.0, gt=0)
    # US dollars per million tokens: input, output, cache write, cache read.
    price_input: float = 3.0
    price_output: float = 15.0
    price_cache_write: float = 3.75
    price_cache_read: float = 0.30


class Usage(BaseModel):
    model_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    retries: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_write_tokens
            + self.cache_read_tokens
        )

    def cost_usd(self, s: ModelSettings) -> float:
        return (
            self.input_tokens * s.price_input
            + self.output_tokens * s.price_output
            + self.cache_write_tokens * s.price_cache_write
            + self.cache_read_tokens * s.price_cache_read
        ) / 1e6


class LoopResult(BaseModel):
    final_text: str
    stopped: str  # answered | model_call_limit | tool_call_limit | token_limit | time_limit
    usage: Usage
    messages: list[dict[str, Any]]


def wrap_untrusted(source: str, text: str) -> str:
    """Mark text from the systems under investigation as data, never instructions."""
    clean = text.replace("</untrusted>", "</untrusted_>")  # it cannot close the wrapper
    return f'<untrusted source="{source}">\n{clean}\n</untrusted>'


def _retryable(exc: BaseException) -> bool:
    import anthropic

    if isinstance(exc, anthropic.APIConnectionError | anthropic.APITimeoutError):
        return True
    return isinstance(exc, anthropic.APIStatusError) and exc.status_code in RETRY_STATUS


def _block_dict(block: Any) -> dict[str, Any]:
    data: dict[str, Any] = block.model_dump(mode="json", exclude_none=True, warnings=False)
    return data


class AgentLoop:
    def __init__(
        self,
        client: anthropic.Anthropic,
        settings: ModelSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self.sleep = sleep

    def _create(self, usage: Usage, **kwargs: Any) -> Any:
        import anthropic

        s = self.settings
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_random_exponential(multiplier=0.5, max=s.retry_max_wait_s),
            stop=stop_after_attempt(s.retry_attempts) | stop_after_delay(s.wall_clock_s),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        usage.retries += 1
                    return self.client.messages.create(**kwargs)
        except anthropic.APIError as exc:
            raise ModelUnavailable(f"model API failed: {type(exc).__name__}: {exc}") from exc
        raise ModelUnavailable("model API gave no answer")  # pragma: no cover

    def run(self, system: str, user: str, toolbox: Toolbox) -> LoopResult:
        s = self.settings
        began = self.clock()
        usage = Usage()
        tools = toolbox.definitions()
        if tools:
            tools[-1] = {**tools[-1], "cache_control": {"type": "ephemeral"}}
        system_blocks = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
        stopped = "model_call_limit"
        final_text = ""
        while usage.model_calls < s.max_model_calls:
            over_time = self.clock() - began >= s.wall_clock_s
            last = (
                usage.model_calls == s.max_model_calls - 1
                or usage.tool_calls >= s.max_tool_calls
                or usage.total_tokens >= s.max_total_tokens
                or over_time
            )
            request: dict[str, Any] = {
                "model": s.model,
                "max_tokens": s.max_output_tokens,
                "system": system_blocks,
                "messages": messages,
                "timeout": s.request_timeout_s,
            }
            request["tools"] = tools
            if last:
                # Tools stay defined (the history holds tool_use blocks, and the cached prefix
                # stays the same) but the model may not call them: it must answer.
                request["tool_choice"] = {"type": "none"}
                stopped = (
                    "time_limit"
                    if over_time
                    else "tool_call_limit"
                    if usage.tool_calls >= s.max_tool_calls
                    else "token_limit"
                    if usage.total_tokens >= s.max_total_tokens
                    else "model_call_limit"
                )
                messages.append(
                    {
                        "role": "user",
                        "content": "No more tools: answer now with the JSON object.",
                    }
                )
                _merge_user_turns(messages)
            response = self._create(usage, **request)
            usage.model_calls += 1
            u = response.usage
            usage.input_tokens += u.input_tokens or 0
            usage.output_tokens += u.output_tokens or 0
            usage.cache_write_tokens += getattr(u, "cache_creation_input_tokens", 0) or 0
            usage.cache_read_tokens += getattr(u, "cache_read_input_tokens", 0) or 0
            content = [_block_dict(b) for b in response.content]
            messages.append({"role": "assistant", "content": content})
            calls = [b for b in response.content if b.type == "tool_use"]
            text = "".join(b.text for b in response.content if b.type == "text")
            if not calls or last:
                final_text = text
                if not calls:
                    stopped = "answered" if not last else stopped
                break
            results = []
            for block in calls:
                usage.tool_calls += 1
                if usage.tool_calls > s.max_tool_calls:
                    body, ok = "tool call limit reached: answer with what you have", False
                else:
                    result = toolbox.call(block.name, block.input)
                    body, ok = wrap_untrusted(f"tool {block.name}", result.content), result.ok
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": block.id,
                        "content": body,
                        "is_error": not ok,
                    }
                )
            messages.append({"role": "user", "content": results})
        return LoopResult(final_text=final_text, stopped=stopped, usage=usage, messages=messages)


def _merge_user_turns(messages: list[dict[str, Any]]) -> None:
    """Two user turns in a row (tool results, then 'answer now') become one."""
    if len(messages) < 2 or messages[-2]["role"] != "user":
        return
    last = messages.pop()
    prev = messages[-1]
    blocks = (
        prev["content"]
        if isinstance(prev["content"], list)
        else [{"type": "text", "text": prev["content"]}]
    )
    extra = (
        last["content"]
        if isinstance(last["content"], list)
        else [{"type": "text", "text": last["content"]}]
    )
    prev["content"] = blocks + extra


def parse_json_answer(text: str) -> dict[str, Any] | None:
    """The first JSON object in the model's answer (it may wrap it in prose or a fence)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        in_str = False
        escape = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        value = json.loads(text[start : i + 1])
                    except json.JSONDecodeError:
                        break
                    return value if isinstance(value, dict) else None
        start = text.find("{", start + 1)
    return None
