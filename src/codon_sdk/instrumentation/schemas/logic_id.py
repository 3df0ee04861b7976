"""The documented ``codon_sdk.instrumentation.schemas.logic_id`` import path."""

from codon_sdk.identity import AgentClass, LogicRequest, NodeEdge, Topology, generate_logic_id

__all__ = ["AgentClass", "LogicRequest", "NodeEdge", "Topology", "generate_logic_id"]
