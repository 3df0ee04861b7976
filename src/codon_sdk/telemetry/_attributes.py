"""The catalogue of span and metric attribute names the SDK emits.

Codon attributes carry identity (which workload, which node spec, which run)
and the link to the ledger; ``gen_ai.*`` names follow the OpenTelemetry GenAI
semantic conventions (v1.41). Values are plain ``str`` enums, usable anywhere
a string attribute name is.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "CodonBaseAttributes",
    "CodonGraphAttributes",
    "CodonLedgerAttributes",
    "CodonNodeAttributes",
    "CodonSpanNames",
    "CodonWorkloadAttributes",
    "GenAIAttributes",
    "GenAIMetrics",
    "GenAIOperations",
]


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class CodonBaseAttributes(_StrEnum):
    """Attributes on every Codon span."""

    ORG_NAMESPACE = "org.namespace"
    ORGANIZATION_ID = "codon.organization.id"


class CodonWorkloadAttributes(_StrEnum):
    """Which workload, logic and deployment a span belongs to."""

    WORKLOAD_ID = "codon.workload.id"
    LOGIC_ID = "codon.workload.logic_id"
    RUN_ID = "codon.workload.run_id"
    DEPLOYMENT_ID = "codon.workload.deployment_id"
    NAME = "codon.workload.name"
    VERSION = "codon.workload.version"


class CodonNodeAttributes(_StrEnum):
    """The node spec a span ran, and the activation."""

    NODESPEC_ID = "codon.nodespec.id"
    NODESPEC_NAME = "codon.nodespec.name"
    NODESPEC_ROLE = "codon.nodespec.role"
    NODESPEC_CODE_HASH = "codon.nodespec.code_hash"
    MODEL_NAME = "codon.nodespec.model_name"
    MODEL_VERSION = "codon.nodespec.model_version"
    TOKEN_ID = "codon.node.token_id"
    ATTEMPT = "codon.node.attempt"
    STATUS = "codon.node.status"
    DURATION_MS = "codon.node.duration_ms"


class CodonGraphAttributes(_StrEnum):
    """Attributes of framework graphs (LangGraph) wrapped by an adapter."""

    FRAMEWORK = "codon.graph.framework"
    THREAD_ID = "codon.graph.thread_id"
    PARENT_RUN_ID = "codon.graph.parent_run_id"


class CodonLedgerAttributes(_StrEnum):
    """The position of a span's events in the run's ledger."""

    SEQ = "codon.ledger.seq"
    SEQ_END = "codon.ledger.seq_end"
    HEAD = "codon.ledger.head"
    EVENT_COUNT = "codon.ledger.event_count"
    EFFECT_SERVED = "codon.ledger.effect_served"


class CodonSpanNames(_StrEnum):
    """Span name prefixes."""

    NODE_PREFIX = "codon.node."
    WORKFLOW_PREFIX = "invoke_workflow "


class GenAIAttributes(_StrEnum):
    """OpenTelemetry GenAI semantic convention attributes (v1.41)."""

    OPERATION_NAME = "gen_ai.operation.name"
    PROVIDER_NAME = "gen_ai.provider.name"
    REQUEST_MODEL = "gen_ai.request.model"
    REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
    REQUEST_TEMPERATURE = "gen_ai.request.temperature"
    REQUEST_TOP_P = "gen_ai.request.top_p"
    REQUEST_TOP_K = "gen_ai.request.top_k"
    REQUEST_SEED = "gen_ai.request.seed"
    REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
    REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
    REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
    REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
    REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
    RESPONSE_MODEL = "gen_ai.response.model"
    RESPONSE_ID = "gen_ai.response.id"
    RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
    USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
    USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
    USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
    USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
    USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
    OUTPUT_TYPE = "gen_ai.output.type"
    CONVERSATION_ID = "gen_ai.conversation.id"
    WORKFLOW_NAME = "gen_ai.workflow.name"
    AGENT_NAME = "gen_ai.agent.name"
    INPUT_MESSAGES = "gen_ai.input.messages"
    OUTPUT_MESSAGES = "gen_ai.output.messages"
    SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
    EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
    OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
    OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
    OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
    TOKEN_TYPE = "gen_ai.token.type"
    SERVER_ADDRESS = "server.address"
    SERVER_PORT = "server.port"
    ERROR_TYPE = "error.type"
    COST_USD = "codon.gen_ai.cost.usd"


class GenAIOperations(_StrEnum):
    """Values of ``gen_ai.operation.name``."""

    CHAT = "chat"
    TEXT_COMPLETION = "text_completion"
    EMBEDDINGS = "embeddings"
    GENERATE_CONTENT = "generate_content"
    INVOKE_WORKFLOW = "invoke_workflow"
    INVOKE_AGENT = "invoke_agent"
    EXECUTE_TOOL = "execute_tool"


class GenAIMetrics(_StrEnum):
    """Metric instrument names."""

    TOKEN_USAGE = "gen_ai.client.token.usage"
    OPERATION_DURATION = "gen_ai.client.operation.duration"
    NODE_DURATION = "codon.node.duration"
    RUN_COST = "codon.run.cost"
    RUN_DURATION = "codon.run.duration"
    REQUEST_CACHE = "codon.request_cache.lookups"
